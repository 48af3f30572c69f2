"""Receive one multipart upload, streamed to disk under a size limit.

Framework form parsing spools the whole body (to memory, then a temporary file) before a
handler runs, so an oversized upload would be received in full before it could be
refused. Here the body is parsed as it arrives (python-multipart's streaming parser)
and the ``file`` field is written chunk by chunk to a server-named file; the moment it
passes the limit the request is answered 413. A declared ``Content-Length`` over the
limit is refused before a byte is read. The whole body must arrive within a time limit:
a client that trickles (or stalls) past it is answered 408 and its connection closed, so
slow clients cannot hold the server's connections for ever.

The client's file name is kept for display only (``display_name``); it never becomes a
path.
"""
from __future__ import annotations

import asyncio
import errno
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FIELD = "file"  # the form field carrying the video or image
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers on top of the file itself
MAX_NAME = 200  # characters of the client's file name kept for display
DISK_FULL_MESSAGE = ("the server's disk is full: the upload could not be stored and was discarded; "
                     "try again later (the operator must free space in the data folder)")


class UploadRejected(Exception):
    """The request cannot be accepted; ``status`` is the HTTP answer to give."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class ReceivedUpload:
    """What was saved of a completed upload."""
    filename: str  # display name from the client (sanitised), never a path
    size: int  # bytes written


def display_name(raw: str) -> str:
    """The client's name reduced to something safe to show: its last path component,
    printable characters only, at most ``MAX_NAME`` long; ``upload`` when nothing is left."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Co", "Cs"))
    name = name.strip()[:MAX_NAME]
    return name if name not in ("", ".", "..") else "upload"


def is_disk_full(error: BaseException) -> bool:
    """The file system (or the user's quota) has no room left; SQLite says so in words."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return "disk is full" in str(error) or "database or disk is full" in str(error)


def too_slow(timeout_s: float) -> UploadRejected:
    """The 408 refusal for an upload past its time limit; it closes the connection."""
    return UploadRejected(408, f"the upload took longer than the {timeout_s:g} s limit (--upload-timeout); "
                               "send it again over a faster connection", headers={"Connection": "close"})


async def _with_deadline(body: AsyncIterator[bytes], timeout_s: float | None) -> AsyncIterator[bytes]:
    """``body``'s chunks, as long as all of them arrive within ``timeout_s`` seconds of the
    first wait (None: no limit); past it, UploadRejected 408."""
    if timeout_s is None:
        async for chunk in body:
            yield chunk
        return
    deadline = time.monotonic() + timeout_s
    chunks = aiter(body)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(chunks), max(0.0, deadline - time.monotonic()))
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise too_slow(timeout_s) from None
        yield chunk


def too_large_message(max_bytes: int) -> str:
    """The 413 message for an upload over the size limit, naming the option that sets it."""
    return f"the upload is larger than the {max_bytes / 1024 / 1024:g} MB limit (--max-upload-mb)"


class _FileWriter:
    """python-multipart callbacks that write the ``file`` part to ``out`` and skip the rest."""

    def __init__(self, out: BinaryIO, max_bytes: int):
        self.out = out
        self.max_bytes = max_bytes
        self.size = 0
        self.filename: str | None = None
        self.files_seen = 0
        self.file_complete = False
        self._in_file = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        if params.get(b"name", b"").decode("utf-8", "replace") != FIELD:
            return  # another form field: its data is skipped
        self.files_seen += 1
        if self.files_seen > 1:
            raise UploadRejected(400, f"send one file per request (form field '{FIELD}' appears twice)")
        self.filename = display_name(params.get(b"filename", b"upload").decode("utf-8", "replace"))
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise UploadRejected(413, too_large_message(self.max_bytes))
        self.out.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self.file_complete = True
        self._in_file = False


async def receive_upload(
    content_type: str, content_length: str | None, body: AsyncIterator[bytes], target: Path, max_bytes: int,
    timeout_s: float | None = None,
) -> ReceivedUpload:
    """Stream the ``file`` field of a multipart body into ``target`` (created, never
    overwritten). Raises UploadRejected: 400 for a malformed request, 413 past the limit,
    408 when the whole body has not arrived within ``timeout_s`` seconds (None: no limit).
    The caller deletes ``target`` on any exception."""
    body = _with_deadline(body, timeout_s)
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRejected(400, f"send the file as multipart/form-data in the form field '{FIELD}' "
                                  f"(e.g. curl -F {FIELD}=@video.mp4)")
    if content_length is not None and content_length.strip().isdigit():
        if int(content_length) > max_bytes + MULTIPART_SLACK:
            raise UploadRejected(413, too_large_message(max_bytes))
    try:
        with open(target, "xb") as out:
            writer = _FileWriter(out, max_bytes)
            parser = MultipartParser(boundary, writer.callbacks())
            try:
                async for chunk in body:
                    if chunk:
                        parser.write(chunk)
                parser.finalize()
            except MultipartParseError as error:
                raise UploadRejected(400, f"the multipart body is malformed: {error}") from None
    except OSError as error:  # the write, or the flush when the file closes
        if is_disk_full(error):
            raise UploadRejected(507, DISK_FULL_MESSAGE) from None
        raise
    if writer.files_seen == 0:
        raise UploadRejected(400, f"no form field '{FIELD}' in the upload (e.g. curl -F {FIELD}=@video.mp4)")
    if not writer.file_complete:
        raise UploadRejected(400, "the upload ended before the file was complete")
    return ReceivedUpload(filename=writer.filename or "upload", size=writer.size)
