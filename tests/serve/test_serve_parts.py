"""``vidfake serve``'s parts without a server: settings, the job store, streamed uploads,
the header check, killable child processes, retention."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from vidfake.serve.config import ServeSettings, parse_resolution
from vidfake.serve.media_check import check_limits, inspect_media
from vidfake.serve.process import ChildDied, ChildProcess, ChildStartError, TaskTimeout
from vidfake.serve.retention import purge_expired, remove_orphans
from vidfake.serve.store import JobStore, QueueFull
from vidfake.serve.uploads import UploadRejected, display_name, receive_upload
from vidfake.testing import media


def settings(tmp_path: Path, **kw) -> ServeSettings:
    return ServeSettings(checkpoint=tmp_path / "model.safetensors", data_dir=tmp_path / "data", **kw)


# -- settings ----------------------------------------------------------------------------


def test_resolution_parsing_and_orientation(tmp_path):
    assert parse_resolution("1920x1080") == (1920, 1080)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_resolution("1080p")
    s = settings(tmp_path, max_resolution=(1920, 1080))
    assert s.resolution_allowed(1080, 1920)  # portrait under a landscape limit
    assert not s.resolution_allowed(1921, 1080) and not s.resolution_allowed(1200, 1200)


def test_settings_refuse_nonsense(tmp_path):
    with pytest.raises(ValueError, match="workers must be at least 1.*queue_max"):
        settings(tmp_path, workers=0, queue_max=0)
    with pytest.raises(ValueError, match="token is empty"):
        settings(tmp_path, token="  ")


# -- job store ---------------------------------------------------------------------------


def test_store_life_cycle_queue_bound_and_paging(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    ids = [f"{i:032x}" for i in range(5)]
    for job_id in ids[:3]:
        store.create(job_id, "a.mp4", "video", 10, {"width": 2}, queue_max=3)
    with pytest.raises(QueueFull):
        store.create(ids[3], "b.mp4", "video", 10, {}, queue_max=3)
    first = store.claim_next()
    assert first.id == ids[0] and first.status == "running" and first.attempts == 1
    store.create(ids[3], "b.mp4", "video", 10, {}, queue_max=3)  # a slot freed up
    assert store.queue_position(store.get(ids[3])) == 2
    assert store.finish(first.id, {"status": "ok", "score": 0.3}, [{"track_id": 0, "frame": 0}])
    assert store.get(first.id).verdict["score"] == 0.3 and store.get(first.id).faces[0]["track_id"] == 0
    page1 = store.list(2)
    page2 = store.list(2, before=page1[-1].seq)
    assert [j.id for j in page1 + page2] == [ids[3], ids[2], ids[1], ids[0]]
    assert store.delete(ids[1]).id == ids[1] and store.get(ids[1]) is None
    assert not store.finish(ids[1], {}, [])  # deleted while running: result dropped
    store.close()


def test_store_recovers_interrupted_jobs_and_gives_up_on_repeat_offenders(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    store.create("a" * 32, "a.mp4", "video", 1, {}, 10)
    store.create("b" * 32, "b.mp4", "video", 1, {}, 10)
    store.claim_next()
    store.close()  # the service died with job a running
    store = JobStore(path)
    assert store.recover(max_attempts=2) == (1, 0)
    assert store.get("a" * 32).status == "queued"
    assert store.claim_next().id == "a" * 32  # still first in line, attempt 2
    assert store.recover(max_attempts=2) == (0, 1)  # died on it twice: failed with the reason
    failed = store.get("a" * 32)
    assert failed.status == "failed" and "2 times" in failed.error
    store.close()


def test_store_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    path.write_text("not sqlite " * 100)
    with pytest.raises(RuntimeError, match="cannot use the job database"):
        JobStore(path)


# -- uploads -----------------------------------------------------------------------------


def test_display_name_is_never_a_path():
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\me\\clip.mp4") == "clip.mp4"
    assert display_name("..") == "upload" and display_name("") == "upload"
    assert display_name("a\x00b\u202e.mp4") == "ab.mp4"
    assert len(display_name("x" * 1000)) == 200


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZ") -> tuple[str, bytes]:
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


async def chunks(data: bytes, size: int = 1000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def receive(ctype: str, body: bytes, target: Path, max_bytes: int, length: str | None = None):
    return asyncio.run(receive_upload(ctype, length, chunks(body), target, max_bytes))


def test_upload_is_streamed_to_disk_with_other_fields_skipped(tmp_path):
    payload = os.urandom(50_000)
    ctype, body = multipart([("note", None, b"hello"), ("file", "../../x/clip.mp4", payload)])
    received = receive(ctype, body, tmp_path / "u", 60_000)
    assert received.filename == "clip.mp4" and received.size == len(payload)
    assert (tmp_path / "u").read_bytes() == payload


def test_upload_limits_and_malformed_requests(tmp_path):
    ctype, body = multipart([("file", "big.bin", os.urandom(20_000))])
    with pytest.raises(UploadRejected) as streamed:  # no Content-Length: caught while streaming
        receive(ctype, body, tmp_path / "a", 10_000)
    assert streamed.value.status == 413 and "MB limit" in streamed.value.message
    with pytest.raises(UploadRejected) as declared:  # declared too large: refused before reading
        asyncio.run(receive_upload(ctype, str(10**9), chunks(b"never read"), tmp_path / "b", 10_000))
    assert declared.value.status == 413 and not (tmp_path / "b").exists()
    cases = [
        ("application/json", b"{}", "multipart/form-data"),
        (*multipart([("other", "a.mp4", b"x")]), "no form field 'file'"),
        (*multipart([("file", "a.mp4", b"x"), ("file", "b.mp4", b"y")]), "one file per request"),
    ]
    for i, (ctype, body, message) in enumerate(cases):
        with pytest.raises(UploadRejected, match=message) as error:
            receive(ctype, body, tmp_path / f"c{i}", 10_000)
        assert error.value.status == 400
    ctype, body = multipart([("file", "a.mp4", b"x" * 5000)])
    with pytest.raises(UploadRejected, match="ended before the file was complete"):
        receive(ctype, body[:3000], tmp_path / "d", 10_000)


# -- header check ------------------------------------------------------------------------


def test_header_check_identifies_content_not_names(tmp_path):
    video = media.moving_face_video(tmp_path / "v.bin", n_frames=25, size=(160, 120), face_height=60)
    image = media.face_image(tmp_path / "i.jpg")
    facts = inspect_media(video.path)
    assert facts.kind == "video" and (facts.width, facts.height) == (160, 120) and facts.has_audio
    assert abs(facts.duration - 1.0) < 0.05
    renamed = tmp_path / "photo.mp4"
    renamed.write_bytes(image.path.read_bytes())
    assert inspect_media(renamed).kind == "image"
    rejected = {
        "text": media.not_a_video(tmp_path / "text.mp4"),
        "empty": media.zero_byte_file(tmp_path / "empty.mp4"),
        "truncated": media.truncated_copy(video.path, tmp_path / "cut.mp4"),
        "playlist": tmp_path / "list",
        "tiff": tmp_path / "face.tiff",
    }
    rejected["playlist"].write_text(f"#EXTM3U\n#EXTINF:1.0,\n{video.path}\n#EXT-X-ENDLIST\n")
    from PIL import Image

    Image.open(image.path).save(rejected["tiff"])
    for name, path in rejected.items():
        facts = inspect_media(path)
        assert facts.kind is None, name
        assert str(tmp_path) not in facts.reason, "server paths must not leak into messages"
    assert "empty" in inspect_media(rejected["empty"]).reason
    assert "TIFF images are not supported" in inspect_media(rejected["tiff"]).reason


def test_limits(tmp_path):
    s = settings(tmp_path, max_duration_s=0.5, max_resolution=(320, 240))
    video = media.moving_face_video(tmp_path / "v.mp4", n_frames=25, size=(160, 120), face_height=60)
    assert "longer than the 0.5 s limit" in check_limits(inspect_media(video.path), s)
    big = media.face_image(tmp_path / "big.png", size=(640, 480))
    assert "640x480, larger than the 320x240 limit" in check_limits(inspect_media(big.path), s)
    assert check_limits(inspect_media(media.face_image(tmp_path / "ok.jpg").path), s) is None


# -- child processes ---------------------------------------------------------------------


def test_child_answers_is_killed_past_its_limit_and_restarts():
    # the handler is imported by name inside the child: tests.serve.helpers.SleepTask
    child = ChildProcess("tests.serve.helpers:SleepTask", name="test", start_timeout_s=60)
    try:
        first = child.call({"echo": 1}, timeout_s=30)
        assert first["echo"] == 1
        with pytest.raises(RuntimeError, match="KeyError"):  # a handler error is an answer; the child lives
            child.call({"raise": "boom"}, timeout_s=30)
        assert child.call({"echo": 2}, timeout_s=30)["pid"] == first["pid"]
        start = time.monotonic()
        with pytest.raises(TaskTimeout):
            child.call({"sleep": 60}, timeout_s=0.5)
        assert time.monotonic() - start < 15 and not child.ready
        with pytest.raises(ChildDied, match="exited with code 7"):
            child.call({"crash": True}, timeout_s=30)
        assert child.call({"echo": 3}, timeout_s=30)["pid"] != first["pid"]  # a fresh process
    finally:
        child.close()


def test_child_setup_failure_is_reported_as_fatal():
    child = ChildProcess("tests.serve.helpers:SleepTask", {"fail_setup": True}, start_timeout_s=60, name="bad")
    with pytest.raises(ChildStartError, match="set-up refused") as error:
        child.start()
    assert error.value.fatal


# -- retention ---------------------------------------------------------------------------


def test_retention_deletes_files_of_old_jobs_and_orphans(tmp_path):
    s = settings(tmp_path, retention_hours=1)
    for folder in (s.uploads_dir, s.faces_dir):
        folder.mkdir(parents=True)
    store = JobStore(s.database)
    old, recent = "a" * 32, "b" * 32
    for job_id in (old, recent):
        store.create(job_id, "x.mp4", "video", 1, {}, 10)
        (s.uploads_dir / job_id).write_bytes(b"v")
        (s.faces_dir / job_id).mkdir()
        (s.faces_dir / job_id / "0.jpg").write_bytes(b"j")
        store.claim_next()
        store.finish(job_id, {"status": "ok"}, [{"track_id": 0, "frame": 0}])
    orphan = s.uploads_dir / ("c" * 32 + ".part")
    orphan.write_bytes(b"partial")
    now = time.time()
    store._db.execute("UPDATE jobs SET finished_at = ? WHERE id = ?", (now - 7200, old))
    assert purge_expired(store, s, now=now) == 1
    assert not (s.uploads_dir / old).exists() and not (s.faces_dir / old).exists()
    assert (s.uploads_dir / recent).exists() and (s.faces_dir / recent / "0.jpg").exists()
    assert store.get(old).purged and store.get(old).verdict == {"status": "ok"}  # the verdict stays
    assert remove_orphans(store, s, now=now) == 0  # too young: may still be arriving
    assert remove_orphans(store, s, min_age_s=0) == 1 and not orphan.exists()
    store.close()
