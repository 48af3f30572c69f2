"""``vidfake serve`` survives restarts and files that take too long: jobs are in SQLite,
so queued and interrupted jobs complete after a restart, once each."""
from __future__ import annotations

import signal

import pytest

from tests.serve.helpers import Server, all_jobs, upload, wait_done
from vidfake.serve.store import JobStore
from vidfake.testing import media

pytestmark = pytest.mark.slow  # end-to-end: several server starts


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restart_media")
    return media.moving_face_video(folder / "clip.mp4", n_frames=20, size=(160, 120), face_height=60).path


def stored_statuses(data_dir) -> dict[str, str]:
    store = JobStore(data_dir / "jobs.sqlite3")
    try:
        return {job.id: job.status for job in store.list(1000)}
    finally:
        store.close()


def test_queued_and_running_jobs_complete_after_a_stop_and_after_a_crash(tmp_path, checkpoint, clip):
    data = tmp_path / "data"
    # 1. a clean stop (SIGTERM) with jobs waiting (uploads are taken while the model loads):
    # nothing is left marked running
    server = Server(checkpoint, data).start(wait_ready=False)
    with server.client() as c:
        first = [upload(c, clip).json()["id"] for _ in range(3)]
    assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    after_stop = stored_statuses(data)
    assert set(after_stop) == set(first) and "running" not in after_stop.values()
    assert "queued" in after_stop.values()

    # 2. a crash (SIGKILL of the server and its workers) with jobs queued and one running
    server = Server(checkpoint, data).start()
    with server.client() as c:
        second = [upload(c, clip).json()["id"] for _ in range(2)]
        statuses = {j["id"]: j["status"] for j in all_jobs(c)}
    assert "queued" in statuses.values()
    server.kill()
    assert set(stored_statuses(data)) == set(first + second)

    # 3. after the restart every job completes, exactly once
    with Server(checkpoint, data) as restarted, restarted.client() as c:
        jobs = [wait_done(c, job_id) for job_id in first + second]
        assert [j["status"] for j in jobs] == ["done"] * 5, [j.get("error") for j in jobs]
        assert all(j["verdict"]["status"] == "ok" and j["faces"] for j in jobs)
        listed = [j["id"] for j in all_jobs(c, limit=2)]
        assert sorted(listed) == sorted(first + second)  # none lost, none duplicated
        assert all(1 <= j["attempts"] <= 3 for j in jobs)
        assert sorted(p.name for p in (data / "uploads").iterdir()) == sorted(first + second)


def test_a_job_past_its_time_limit_fails_and_the_service_recovers(tmp_path, checkpoint, clip):
    with Server(checkpoint, tmp_path / "data", "--job-timeout", "0.05") as server, server.client() as c:
        job = wait_done(c, upload(c, clip).json()["id"])
        assert job["status"] == "failed" and "0.05 s limit" in job["error"] and job["verdict"] is None
        assert c.get("/healthz").status_code == 200
        server.wait_ready(60)  # a fresh worker loads the model again
        assert c.get("/readyz").json()["workers_ready"] == 1
        assert "was abandoned" in server.log()
