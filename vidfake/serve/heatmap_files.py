"""A job's heat-map pictures: where the worker draws them, how the verdict names them, and
the links the API gives.

The pictures live with the job's face thumbnails, in ``faces/<id>/heatmaps/``, so the
retention sweep, ``DELETE /v1/jobs/<id>`` and the orphan clean-up remove them with the rest
of the job's files. The stored verdict names each picture by its bare file name (never a
server path); ``GET /v1/jobs/<id>/heatmaps/<name>`` serves it, behind the same token as
the rest of the API, and only names of the form the worker writes are looked up.
"""
from __future__ import annotations

import re
from pathlib import Path

HEATMAP_DIR = "heatmaps"  # under the job's faces folder
NAME = re.compile(r"t\d+_f\d{6}\.png")  # heatmap_name("", track, frame)


def heatmap_folder(faces_dir: Path) -> Path:
    """Where the worker draws a job's pictures (``faces_dir``: the job's thumbnail folder)."""
    return faces_dir / HEATMAP_DIR


def heatmap_path(faces_dir: Path, job_id: str, name: str) -> Path | None:
    """Where job ``job_id``'s picture ``name`` is kept (``faces_dir``: the service's faces
    folder); None for a name the worker never writes, so no request names another file."""
    return heatmap_folder(faces_dir / job_id) / name if NAME.fullmatch(name) else None


def name_only(record: dict) -> dict:
    """The verdict with each heat map's ``file`` cut to its name (the folder is the server's)."""
    for track in record.get("tracks", []):
        for entry in track.get("heatmaps", {}).get("frames", []):
            entry["file"] = Path(entry["file"]).name
    return record


def heatmap_links(job_url: str, verdict: dict | None) -> list[dict]:
    """One entry per picture the verdict names, best frame first within each track, with
    the URL that serves it: track id, method and its label, frame, time, score, peak, box."""
    links = []
    for track in (verdict or {}).get("tracks", []):
        maps = track.get("heatmaps")
        if not maps:
            continue
        for entry in maps["frames"]:
            links.append({"track_id": track["id"], "method": maps["method"], "label": maps["label"],
                          **{k: entry[k] for k in ("frame", "time", "score", "peak", "box")},
                          **({"note": entry["note"]} if "note" in entry else {}),
                          "url": f"{job_url}/heatmaps/{entry['file']}"})
    return links
