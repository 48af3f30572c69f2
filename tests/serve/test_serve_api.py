"""The HTTP API of ``vidfake serve``: a real server on loopback (started with the CLI),
real uploads of generated videos and images, a bearer token and tight limits."""
from __future__ import annotations

import os

import httpx
import pytest

from tests.serve.helpers import Server, all_jobs, upload, wait_done
from vidfake.testing import media

TOKEN = "s3cret-token"
LIMITS = ["--max-upload-mb", "1", "--max-duration", "3", "--max-resolution", "400x300", "--queue-size", "20"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_media")
    return {
        "video": media.moving_face_video(folder / "face.mp4"),
        "image": media.face_image(folder / "portrait.jpg"),
        "long": media.moving_face_video(folder / "long.mp4", n_frames=100, size=(160, 120), face_height=60),
        "wide": media.face_image(folder / "wide.png", size=(640, 480)),
        "text": media.not_a_video(folder / "renamed.mp4"),
        "empty": media.zero_byte_file(folder / "empty.mp4"),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory, checkpoint):
    data = tmp_path_factory.mktemp("serve_api") / "data"
    with Server(checkpoint, data, *LIMITS, env={"VIDFAKE_TOKEN": TOKEN}, token=TOKEN) as running:
        yield running


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


def uploads_on_disk(server) -> list[str]:
    return sorted(p.name for p in (server.data_dir / "uploads").iterdir())


def test_video_job_life_cycle(server, client, files, checkpoint):
    response = upload(client, files["video"].path)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued" and len(created["id"]) == 32
    assert response.headers["location"] == f"/v1/jobs/{created['id']}"
    first = client.get(created["url"]).json()
    assert first["status"] in ("queued", "running", "done")
    job = wait_done(client, created["id"])
    assert job["status"] == "done", job
    assert job["started_at"] and job["finished_at"] and job["attempts"] == 1
    assert job["media"]["width"] == 320 and job["media"]["has_audio"] is True

    # the verdict is the `vidfake score --json` record for the same file and model
    from vidfake import Scorer

    expected = Scorer(checkpoint).score_video(files["video"].path).to_dict()
    verdict = job["verdict"]
    assert set(verdict) == set(expected)
    assert verdict["path"] == "face.mp4"  # the uploaded name, not the server's storage path
    for key in ("kind", "status", "label", "threshold", "model", "media", "audio", "warnings"):
        assert verdict[key] == expected[key], key
    # the service also draws heat maps (serve --heatmap-frames); apart from them the tracks are the same
    assert [{k: v for k, v in t.items() if k != "heatmaps"} for t in verdict["tracks"]] == expected["tracks"]
    assert all(t["heatmaps"]["frames"] for t in verdict["tracks"])
    assert verdict["score"] == pytest.approx(expected["score"], abs=1e-6)
    assert [t["frame"] for t in verdict["timeline"]] == [t["frame"] for t in expected["timeline"]]
    assert job["score"] == verdict["score"] and job["label"] == verdict["label"]

    # one thumbnail per face track, served as JPEG
    assert sorted(f["track_id"] for f in job["faces"]) == sorted(t["id"] for t in verdict["tracks"])
    for face in job["faces"]:
        thumb = client.get(face["url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content[:2] == b"\xff\xd8"
    assert client.get(f"{created['url']}/faces/99.jpg").status_code == 404

    # listed, then deleted with its upload and thumbnails
    assert created["id"] in [j["id"] for j in all_jobs(client)]
    assert created["id"] in uploads_on_disk(server)
    assert client.delete(created["url"]).status_code == 204
    assert client.get(created["url"]).status_code == 404
    assert client.delete(created["url"]).status_code == 404
    assert created["id"] not in uploads_on_disk(server)
    assert not (server.data_dir / "faces" / created["id"]).exists()


def test_example_job_scores_the_packaged_clip_without_an_upload(server, client):
    from vidfake.examples import EXAMPLE_FILE, example_path

    response = client.post("/v1/jobs/example")
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued" and response.headers["location"] == created["url"] == f"/v1/jobs/{created['id']}"
    job = wait_done(client, created["id"])
    assert job["status"] == "done" and job["kind"] == "video" and job["filename"] == EXAMPLE_FILE
    assert job["media"]["width"] == 360 and job["media"]["height"] == 288 and job["media"]["has_audio"] is True
    verdict = job["verdict"]
    assert verdict["path"] == EXAMPLE_FILE and verdict["status"] == "ok" and 0 <= verdict["score"] <= 1
    assert verdict["audio"]["used"] is True and len(verdict["tracks"]) == 1 and len(job["faces"]) == 1
    # the server's copy is an upload like any other: deleting the job removes the copy only
    assert created["id"] in uploads_on_disk(server)
    assert client.delete(created["url"]).status_code == 204
    assert created["id"] not in uploads_on_disk(server) and example_path().is_file()


def test_image_job_and_client_name_never_used_as_path(server, client, files):
    response = upload(client, files["image"].path, name="../../../../tmp/evil name.jpg")
    assert response.status_code == 202, response.text
    job = wait_done(client, response.json()["id"])
    assert job["status"] == "done" and job["kind"] == "image" and job["filename"] == "evil name.jpg"
    assert job["verdict"]["status"] == "ok" and job["verdict"]["kind"] == "image"
    assert len(job["verdict"]["timeline"]) == 1 and job["faces"]
    assert response.json()["id"] in uploads_on_disk(server)  # stored under the server-made id
    assert not (server.data_dir.parent / "evil name.jpg").exists()


def test_renamed_text_empty_and_truncated_files_get_415(server, client, files, tmp_path):
    truncated = media.truncated_copy(files["video"].path, tmp_path / "cut.mp4")
    before = uploads_on_disk(server)
    for path in (files["text"], files["empty"], truncated):
        response = upload(client, path)
        assert response.status_code == 415, (path.name, response.text)
        assert "not a video or an image" in response.json()["detail"]
        assert str(server.data_dir) not in response.json()["detail"]
    assert uploads_on_disk(server) == before  # nothing kept


def test_video_named_like_an_image_is_still_a_video(client, files):
    response = upload(client, files["video"].path, name="holiday.png")
    assert response.status_code == 202
    job = wait_done(client, response.json()["id"])
    assert job["kind"] == "video" and job["verdict"]["kind"] == "video"


def test_too_long_and_too_large_resolution_get_422(client, files):
    response = upload(client, files["long"].path)
    assert response.status_code == 422 and "longer than the 3 s limit" in response.json()["detail"]
    response = upload(client, files["wide"].path)
    assert response.status_code == 422 and "640x480, larger than the 400x300 limit" in response.json()["detail"]


def test_oversized_uploads_get_413_declared_or_streamed(server, client, files):
    big = files["folder"] / "big.mp4"
    big.write_bytes(files["video"].path.read_bytes() + os.urandom(1_200_000))
    response = upload(client, big)  # Content-Length says it is too big: refused before reading
    assert response.status_code == 413 and "1 MB limit" in response.json()["detail"]

    def chunked_body():  # no Content-Length: the limit is found while streaming to disk
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for _ in range(40):
            yield os.urandom(64 * 1024)
        yield b"\r\n--B--\r\n"

    response = client.post("/v1/jobs", content=chunked_body(), headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert response.status_code == 413
    assert not [p for p in uploads_on_disk(server) if p.endswith(".part")]


def test_malformed_requests_get_400(client):
    assert client.post("/v1/jobs", json={"file": "x"}).status_code == 400
    response = client.post("/v1/jobs", files={"video": ("a.mp4", b"x")})
    assert response.status_code == 400 and "no form field 'file'" in response.json()["detail"]
    assert client.get("/v1/jobs/not-a-job").status_code == 404
    assert client.get("/v1/jobs", params={"status": "bogus"}).status_code == 422


def test_token_required_everywhere_but_health_checks(server, files):
    with server.client(token=None) as anonymous, server.client(token="wrong") as wrong:
        for c in (anonymous, wrong):
            for method, path in [("GET", "/v1/jobs"), ("GET", "/v1/model"), ("GET", "/openapi.json"),
                                 ("GET", "/v1/jobs/" + "0" * 32), ("DELETE", "/v1/jobs/" + "0" * 32),
                                 ("POST", "/v1/jobs/example")]:
                response = c.request(method, path)
                assert response.status_code == 401, (method, path)
                assert response.headers["www-authenticate"] == "Bearer"
            assert upload(c, files["image"].path).status_code == 401
            assert c.get("/healthz").json() == {"status": "ok"}
            assert c.get("/readyz").status_code == 200
            assert c.get("/").status_code == 200  # the page holds no data; it asks for the token


def test_model_health_and_openapi(client):
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["workers_ready"] == 1
    model = client.get("/v1/model").json()
    assert model["checkpoint"] == "tiny.safetensors" and model["version"] == "untrained"
    assert len(model["sha256"]) == 64 and model["untrained"] is True and model["plan"] == "clips:2x8"
    assert model["keyframe_interval"] == 4  # the checkpoint's own: the service was started without an override
    assert model["lip_sync_head"] is True and model["mouth_motion_head"] is False
    schema = client.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/example", "/v1/jobs/{job_id}", "/v1/model", "/healthz", "/readyz"} <= set(schema["paths"])
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"]
    assert {"408", "413", "415", "422", "503", "401"} <= set(schema["paths"]["/v1/jobs"]["post"]["responses"])
    docs = client.get("/docs")  # Swagger UI from the installed package, no CDN (tests/serve/test_serve_upload_timeout_docs.py)
    assert docs.status_code == 200 and "https://" not in docs.text


def test_page_and_static_files_are_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


def test_cors_is_off_by_default(client):
    response = client.options("/v1/jobs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def test_paging_is_stable(client, files):
    ids = [upload(client, files["image"].path).json()["id"] for _ in range(3)]
    listed = [j["id"] for j in all_jobs(client, limit=2)]
    assert len(listed) == len(set(listed))
    assert listed[:3] == ids[::-1]  # newest first
    for job_id in ids:
        wait_done(client, job_id)
    with pytest.raises(httpx.HTTPStatusError):
        client.get("/v1/jobs", params={"limit": 0}).raise_for_status()
