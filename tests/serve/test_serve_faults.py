"""The service under faults, on loopback and with bounded waits: a worker killed by a
signal mid-job, a disk that fills up during an upload or when a verdict is stored.

The worker tests run the real pool and real worker processes (killed with ``os.kill``)
with a stand-in task that needs no model (``FakeScoreTask``); the disk tests run the app
in-process with writes that fail as a full disk makes them fail (ENOSPC, SQLite's
"database or disk is full"). One end-to-end test repeats the kill on a real server."""
from __future__ import annotations

import builtins
import errno
import os
import signal
import sqlite3
import time

import pytest

from tests.serve.helpers import Server, upload, wait_done
from tests.tiny_models import write_tiny_checkpoint
from vidfake.serve.config import ServeSettings
from vidfake.serve.store import JobStore
from vidfake.serve.worker import ScoringPool
from vidfake.testing import media

FAKE_TASK = "tests.serve.helpers:FakeScoreTask"
WAIT_S = 120.0  # a fresh worker process starts in about a second; the shared test machine is slow


def wait_for(check, what: str, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@pytest.fixture
def service(tmp_path):
    """A job store and a one-worker pool running the stand-in task."""
    settings = ServeSettings(checkpoint=tmp_path / "unused.safetensors", data_dir=tmp_path / "data",
                             job_timeout_s=60, worker_start_timeout_s=WAIT_S)
    settings.uploads_dir.mkdir(parents=True)
    settings.faces_dir.mkdir()
    store = JobStore(settings.database)
    pool = ScoringPool(settings, store, task=FAKE_TASK)
    yield settings, store, pool
    pool.stop()
    store.close()


def queue(settings: ServeSettings, store: JobStore, job_id: str, command: str) -> str:
    job_id = job_id.ljust(32, "0")
    (settings.uploads_dir / job_id).write_text(command)
    store.create(job_id, f"{job_id[:8]}.mp4", "video", len(command), {}, queue_max=100)
    return job_id


def calls(settings: ServeSettings, job_id: str) -> list[int]:
    """The pids of the workers that started on this job, in order."""
    path = settings.uploads_dir / f"{job_id}.calls"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def finished(store: JobStore, job_id: str):
    job = store.get(job_id)
    return job if job.status in ("done", "failed") else None


def test_a_worker_killed_mid_job_is_replaced_and_the_job_scored_again_once(service):
    settings, store, pool = service
    job_id = queue(settings, store, "a", "sleep:1.5")
    pool.start()
    first = wait_for(lambda: calls(settings, job_id), "the worker to start the job")[0]
    os.kill(first, signal.SIGKILL)
    job = wait_for(lambda: finished(store, job_id), "the job to finish")
    assert job.status == "done" and job.error is None
    pids = calls(settings, job_id)
    assert len(pids) == 2 and pids[0] == first and pids[1] != first and job.verdict["pid"] == pids[1]
    assert job.verdict["warnings"] == [
        "a worker scoring this file stopped (the worker process was killed by SIGKILL); "
        "it was scored again on a fresh worker"]


def test_a_worker_killed_twice_fails_the_job_and_the_next_job_is_scored(service):
    settings, store, pool = service
    job_id = queue(settings, store, "b", "sleep:30")
    after = queue(settings, store, "c", "sleep:0")
    pool.start()
    first = wait_for(lambda: calls(settings, job_id), "the first worker")[0]
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: calls(settings, job_id)[1:], "the second worker")[0]
    os.kill(second, signal.SIGTERM)
    job = wait_for(lambda: finished(store, job_id), "the job to fail")
    assert job.status == "failed" and job.verdict is None
    assert job.error == ("scoring failed: the worker died 2 times on this file (the worker process was killed by "
                         "SIGKILL; then the worker process was killed by SIGTERM); the file may be malformed, "
                         "or the machine short of memory")
    assert not (settings.faces_dir / job_id).exists()
    nxt = wait_for(lambda: finished(store, after), "the next job")
    assert nxt.status == "done" and calls(settings, after)[0] not in (first, second)


def test_a_file_the_worker_reports_or_raises_on_is_not_retried(service):
    settings, store, pool = service
    unreadable = queue(settings, store, "d", "unreadable")
    raising = queue(settings, store, "e", "raise")
    pool.start()
    job = wait_for(lambda: finished(store, unreadable), "the unreadable file's job")
    assert job.status == "done" and job.verdict["status"] == "unreadable" and job.verdict["warnings"] == []
    job = wait_for(lambda: finished(store, raising), "the raising job")
    assert job.status == "failed" and job.error == "scoring failed: ValueError: the handler failed"
    assert len(calls(settings, unreadable)) == 1 and len(calls(settings, raising)) == 1
    assert calls(settings, unreadable) == calls(settings, raising)  # the same worker, still alive


@pytest.mark.parametrize("failure, message", [
    (sqlite3.OperationalError("database or disk is full"),
     "the verdict could not be stored (database or disk is full); the server's disk may be full"),
    (KeyError("surprise"), "the service failed while handling this job (KeyError: 'surprise')"),
])
def test_a_verdict_that_cannot_be_stored_fails_its_job_not_the_service(service, monkeypatch, failure, message):
    settings, store, pool = service
    first = queue(settings, store, "f", "sleep:0")
    second = queue(settings, store, "g", "sleep:0")
    real_finish = store.finish

    def finish(job_id, verdict, faces):
        if job_id == first:
            (settings.faces_dir / job_id).mkdir(exist_ok=True)  # thumbnails the worker had written
            raise failure
        return real_finish(job_id, verdict, faces)

    monkeypatch.setattr(store, "finish", finish)
    pool.start()
    job = wait_for(lambda: finished(store, first), "the first job")
    assert job.status == "failed" and job.error == message
    assert not (settings.faces_dir / first).exists()
    assert wait_for(lambda: finished(store, second), "the second job").status == "done"


# -- the disk fills up during an upload -------------------------------------------------------


class FillingDisk:
    """A file on a disk with ``room`` bytes left: the write that does not fit stores what
    fits and raises ENOSPC, as the kernel's write does."""

    def __init__(self, path, mode: str, room: int):
        self.file = builtins.open(path, mode)
        self.room = room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.file.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


@pytest.fixture
def app_client(tmp_path, monkeypatch):
    """The app in-process with its job store and upload path; no model worker is started
    (these tests never get as far as scoring)."""
    from fastapi.testclient import TestClient

    from vidfake.serve.app import create_app
    from vidfake.serve.worker import ProbePool

    monkeypatch.setattr(ScoringPool, "start", lambda self: None)
    monkeypatch.setattr(ProbePool, "warm_up", lambda self: None)
    settings = ServeSettings(checkpoint=tmp_path / "unused.safetensors", data_dir=tmp_path / "data")
    app = create_app(settings)
    with TestClient(app) as client:
        yield settings, app.state.service, client


def test_a_disk_that_fills_during_an_upload_gives_507_and_leaves_nothing_behind(app_client, monkeypatch, tmp_path):
    from vidfake.serve import uploads

    settings, service, client = app_client
    monkeypatch.setattr(uploads, "open", lambda path, mode: FillingDisk(path, mode, room=20_000), raising=False)
    video = media.moving_face_video(tmp_path / "clip.mp4", n_frames=30)
    assert video.path.stat().st_size > 20_000
    response = upload(client, video.path)
    assert response.status_code == 507
    assert "disk is full" in response.json()["detail"] and "discarded" in response.json()["detail"]
    assert list(settings.uploads_dir.iterdir()) == []
    assert service.store.count() == 0 and client.get("/v1/jobs").json()["jobs"] == []


def test_a_job_row_that_cannot_be_written_gives_507_and_leaves_nothing_behind(app_client, monkeypatch, tmp_path):
    from vidfake.serve.media_check import MediaFacts

    settings, service, client = app_client
    monkeypatch.setattr(service, "check_upload", lambda path: MediaFacts("image", width=320, height=240, format="JPEG"))

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(service.store, "create", full)
    response = upload(client, media.face_image(tmp_path / "face.jpg").path)
    assert response.status_code == 507 and "disk is full" in response.json()["detail"]
    assert list(settings.uploads_dir.iterdir()) == []
    assert service.store.count() == 0


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_scoring_worker_killed_mid_job_is_retried_on_a_fresh_one(tmp_path):
    """`vidfake serve` with the real model worker: SIGKILL it while it scores (a clip big
    enough to take a few seconds) and the job still completes, saying so."""
    slow = write_tiny_checkpoint(tmp_path / "tiny.safetensors", plan="uniform:48")  # 48 frames: seconds of work
    clip = media.moving_face_video(tmp_path / "clip.mp4", n_frames=60, size=(640, 480), face_height=160).path
    with Server(slow, tmp_path / "data", "--log-level", "info") as server, server.client() as client:
        job_id = upload(client, clip).json()["id"]
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running", "the job to start")
        pid = int(wait_for(lambda: _scorer_pid(server.log()), "the worker's pid in the log"))
        os.kill(pid, signal.SIGKILL)
        job = wait_done(client, job_id, timeout_s=WAIT_S * 2)
    assert job["status"] == "done" and job["verdict"]["status"] == "ok", job
    assert any("killed by SIGKILL" in w and "scored again on a fresh worker" in w for w in job["verdict"]["warnings"])


def _scorer_pid(log: str) -> str | None:
    started = [line.rsplit("(pid ", 1)[1].rstrip(")") for line in log.splitlines() if "scorer-0 started (pid " in line]
    return started[-1] if started else None
