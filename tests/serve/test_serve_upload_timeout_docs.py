"""The service's slow-client limit (408, connection closed) and its offline /docs page."""
from __future__ import annotations

import asyncio
import re
import socket
import time

import pytest

from tests.serve.helpers import Server
from vidfake.serve.uploads import UploadRejected, receive_upload

BOUNDARY = "vidfakeboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _body(payload: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n\r\n'.encode()
    return head + payload + f"\r\n--{BOUNDARY}--\r\n".encode()


async def _trickle(data: bytes, size: int, pause_s: float):
    for i in range(0, len(data), size):
        await asyncio.sleep(pause_s)
        yield data[i : i + size]


async def _stall(data: bytes):
    yield data
    await asyncio.Event().wait()  # the client sends nothing more and never hangs up


def test_a_trickling_or_stalled_upload_gets_408_within_the_limit(tmp_path):
    body = _body(b"x" * 2000)
    for name, chunks in (("trickle", _trickle(body, 100, 0.05)), ("stall", _stall(body[:500]))):
        start = time.monotonic()
        with pytest.raises(UploadRejected) as rejected:
            asyncio.run(receive_upload(CONTENT_TYPE, None, chunks, tmp_path / name, 10_000, timeout_s=0.4))
        assert rejected.value.status == 408 and "0.4 s limit" in rejected.value.message
        assert rejected.value.headers == {"Connection": "close"}
        assert 0.35 < time.monotonic() - start < 2.0


def test_an_upload_within_the_limit_is_received(tmp_path):
    body = _body(b"y" * 2000)
    received = asyncio.run(receive_upload(CONTENT_TYPE, None, _trickle(body, 500, 0.01), tmp_path / "ok", 10_000,
                                          timeout_s=5.0))
    assert received.size == 2000 and (tmp_path / "ok").read_bytes() == b"y" * 2000


@pytest.fixture(scope="module")
def server(tmp_path_factory, checkpoint):
    root = tmp_path_factory.mktemp("serve-limits")
    server = Server(checkpoint, root / "data", "--upload-timeout", "2")
    with server.start(wait_ready=False) as running:  # uploads and pages do not wait for the model
        yield running


def _read_until_closed(sock: socket.socket, limit_s: float) -> bytes:
    """Everything the server sends until it closes the connection (fails past ``limit_s``)."""
    sock.settimeout(limit_s)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_slow_client_gets_408_and_its_connection_is_closed(server):
    body = _body(b"z" * 100_000)
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[:1000])  # then nothing: a client stuck mid-upload
        answer = _read_until_closed(sock, limit_s=20)
    elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"--upload-timeout" in answer
    assert 1.5 < elapsed < 15
    assert not list((server.data_dir / "uploads").glob("*")), "the partial upload must be deleted"


def test_docs_work_offline_with_the_assets_served_by_the_app(server):
    with server.client(token=None) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and not [s for s in sources if s.startswith(("http:", "https:", "//"))]
        for source in sources:
            if source.startswith("/"):
                asset = client.get(source)
                assert asset.status_code == 200 and len(asset.content) > 100, source
        bundle = client.get("/docs/assets/swagger-ui-bundle.js")
        assert b"SwaggerUIBundle" in bundle.content
        assert client.get("/openapi.json").json()["openapi"].startswith("3.")
        assert 'href="/docs"' in client.get("/").text  # the web page links to it
