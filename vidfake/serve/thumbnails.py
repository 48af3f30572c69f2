"""Face thumbnails for a verdict's tracks, so a moderator sees whose face got which score.

The verdict records each track's first frame and the face box on it; the thumbnail is
that frame, read again, cropped with the pipeline's own ``crop_face`` (same square and
margin the model saw), saved as a small JPEG. One frame per track is read, so this costs
a fraction of scoring. It runs in the scoring worker, under the job's time limit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vidfake.extract.crop import CropConfig, crop_face
from vidfake.extract.pipeline import load_image
from vidfake.extract.video import open_video, turn_frames


def thumbnail_name(track_id: int) -> str:
    """File name of a track's thumbnail inside its job's folder."""
    return f"{int(track_id)}.jpg"


def save_face_thumbnails(
    media: Path, kind: str, tracks: list[dict], out_dir: Path, size: int, margin: float, turn: int = 0
) -> list[dict]:
    """Write ``out_dir/<track id>.jpg`` for every track; returns ``[{"track_id", "frame"}]``.
    ``turn``: the verdict's ``rotation_retry`` (its boxes are in frames turned that much)."""
    if not tracks:
        return []
    firsts = [int(t["frame_indices"][0]) if t.get("frame_indices") else 0 for t in tracks]
    if kind == "image":
        frames = {0: load_image(media)}
    else:
        with open_video(media) as reader:
            wanted = sorted(set(firsts))
            frames = dict(zip(wanted, turn_frames(reader.read(wanted), turn)))
    out_dir.mkdir(parents=True, exist_ok=True)
    config = CropConfig(size=size, margin=margin)
    saved = []
    for track, frame_index in zip(tracks, firsts):
        crop = crop_face(frames[frame_index], np.asarray(track["box_first"], np.float32), config)
        Image.fromarray(crop).save(out_dir / thumbnail_name(track["id"]), quality=90)
        saved.append({"track_id": int(track["id"]), "frame": frame_index})
    return saved
