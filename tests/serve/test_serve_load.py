"""``vidfake serve`` under load: many uploads from concurrent clients against a short
queue. Every upload is either accepted and completes, or is refused with 503 and a
Retry-After; no job is lost or duplicated."""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serve.helpers import Server, all_jobs, upload, wait_done
from vidfake.testing import media

UPLOADS, CLIENTS, QUEUE = 50, 8, 4
TIME_BOUND_S = 240.0

pytestmark = pytest.mark.slow  # end-to-end: a server and dozens of uploads


def test_50_uploads_from_8_clients(tmp_path, checkpoint):
    clip = media.moving_face_video(tmp_path / "clip.mp4", n_frames=20, size=(160, 120), face_height=60).path
    with Server(checkpoint, tmp_path / "data", "--queue-size", str(QUEUE)) as server:
        start = time.monotonic()

        def one_client(count: int) -> list[tuple[int, str | None, str | None]]:
            out = []
            with server.client() as c:
                for _ in range(count):
                    r = upload(c, clip)
                    out.append((r.status_code, r.json().get("id"), r.headers.get("retry-after")))
            return out

        shares = [UPLOADS // CLIENTS + (i < UPLOADS % CLIENTS) for i in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [r for part in pool.map(one_client, shares) for r in part]

        codes = Counter(code for code, _, _ in results)
        assert sum(codes.values()) == UPLOADS and set(codes) <= {202, 503}, codes
        assert codes[503] > 0, "the queue bound was never reached"
        assert all(retry is not None and int(retry) >= 1 for code, _, retry in results if code == 503)
        accepted = [job_id for code, job_id, _ in results if code == 202]
        assert len(accepted) >= QUEUE and len(set(accepted)) == len(accepted)

        with server.client() as c:
            jobs = [wait_done(c, job_id, timeout_s=TIME_BOUND_S) for job_id in accepted]
            assert all(j["status"] == "done" and j["verdict"]["status"] == "ok" for j in jobs)
            listed = [j["id"] for j in all_jobs(c, limit=10)]
        assert sorted(listed) == sorted(accepted)  # every accepted job exactly once, nothing else
        assert all(j["attempts"] == 1 for j in jobs)
        assert time.monotonic() - start < TIME_BOUND_S
