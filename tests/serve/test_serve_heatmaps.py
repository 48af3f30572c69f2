"""Heat maps in ``vidfake serve``: drawn by the worker with the job's thumbnails, named in
the verdict without a server path, listed with URLs on the job, served behind the token,
and gone with the job's other files (delete, retention)."""
from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from tests.serve.helpers import Server, upload, wait_done
from vidfake.serve.heatmap_files import heatmap_links, name_only
from vidfake.testing import media

TOKEN = "heat-token"
RETENTION_H = 0.006  # about 22 s: long enough to look at the pictures, short enough to see them purged


def test_links_name_the_pictures_by_file_name_only():
    verdict = {"tracks": [
        {"id": 0, "heatmaps": {"method": "grad_cam", "label": "Grad-CAM", "map_size": [2, 2], "frames": [
            {"frame": 7, "time": 0.28, "score": 0.6, "file": "/srv/data/faces/abc/heatmaps/t0_f000007.png",
             "peak": 0.01, "box": [1.0, 2.0, 30.0, 40.0], "note": "n"}]}},
        {"id": 1},  # a track without maps (none drawn)
    ]}
    name_only(verdict)
    assert verdict["tracks"][0]["heatmaps"]["frames"][0]["file"] == "t0_f000007.png"
    assert heatmap_links("/v1/jobs/abc", verdict) == [{
        "track_id": 0, "method": "grad_cam", "label": "Grad-CAM", "frame": 7, "time": 0.28, "score": 0.6,
        "peak": 0.01, "box": [1.0, 2.0, 30.0, 40.0], "note": "n", "url": "/v1/jobs/abc/heatmaps/t0_f000007.png"}]
    assert heatmap_links("/v1/jobs/abc", None) == []


@pytest.mark.slow
def test_a_jobs_heat_maps_are_served_with_its_data_and_deleted_with_it(tmp_path, checkpoint):
    # the tiny checkpoint has no mask head: the maps are Grad-CAM
    video = media.moving_face_video(tmp_path / "clip.mp4", n_frames=40)
    image = media.face_image(tmp_path / "still.jpg")
    data = tmp_path / "data"
    args = ["--heatmap-frames", "2", "--retention-hours", str(RETENTION_H)]
    with Server(checkpoint, data, *args, token=TOKEN, env={"VIDFAKE_TOKEN": TOKEN}) as server, server.client() as c:
        job = wait_done(c, upload(c, video.path).json()["id"])
        assert job["status"] == "done" and job["verdict"]["status"] == "ok"
        tracks = job["verdict"]["tracks"]
        named = [(t["id"], e) for t in tracks for e in t["heatmaps"]["frames"]]
        assert len(named) == 2 * len(tracks) and all("/" not in e["file"] for _, e in named)
        assert [(h["track_id"], h["frame"]) for h in job["heatmaps"]] == [(t, e["frame"]) for t, e in named]
        folder = data / "faces" / job["id"] / "heatmaps"
        assert sorted(p.name for p in folder.iterdir()) == sorted(e["file"] for _, e in named)
        for picture in job["heatmaps"]:
            assert picture["method"] == "grad_cam" and picture["label"].startswith("Grad-CAM")
            x1, y1, x2, y2 = picture["box"]
            assert 0 <= x1 < x2 <= video.width and 0 <= y1 < y2 <= video.height
            response = c.get(picture["url"])
            assert response.status_code == 200 and response.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(response.content)).format == "PNG"
        with server.client(token=None) as anonymous:
            assert anonymous.get(job["heatmaps"][0]["url"]).status_code == 401
        base = f"/v1/jobs/{job['id']}/heatmaps/"
        for bad in ("t0_f999999.png", "..%2F..%2Fjobs.sqlite3", "notes.txt"):
            assert c.get(base + bad).status_code == 404

        still = wait_done(c, upload(c, image.path).json()["id"])
        assert still["heatmaps"] and c.get(still["heatmaps"][0]["url"]).status_code == 200
        assert c.delete(f"/v1/jobs/{still['id']}").status_code == 204
        assert not (data / "faces" / still["id"]).exists()

        deadline = time.monotonic() + 120
        while not c.get(job["url"]).json()["files_purged"]:
            assert time.monotonic() < deadline, "the retention sweep never purged the job"
            time.sleep(0.5)
        purged = c.get(job["url"]).json()
        assert purged["heatmaps"] == [] and purged["verdict"]["tracks"][0]["heatmaps"]  # the record stays
        assert not folder.exists() and c.get(job["heatmaps"][0]["url"]).status_code == 404
