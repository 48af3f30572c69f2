"""Face crops of a few chosen frames, cut again from the file exactly as extraction cut them.

Scoring streams its crops through the model and keeps none (memory stays bounded however
long the video); a later look at a handful of frames (the heat maps of the most suspicious
ones) reads those frames again with the same decoder, turns them as the search that kept
the faces did, and cuts them with the pipeline's own ``crop_face`` at the boxes the track
recorded, so the pixels are the ones the model saw.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidfake.extract.crop import CropConfig, crop_face
from vidfake.extract.pipeline import load_image
from vidfake.extract.video import Backend, VideoProbe, open_video, turn_frames


def read_frames(path: Path, kind: str, indices: Sequence[int], turn: int = 0, decoder: Backend = "auto",
                probed: VideoProbe | None = None) -> dict[int, np.ndarray]:
    """Frame index -> the frame as extraction saw it: upright, then turned ``turn`` degrees
    counterclockwise (``MediaFaces.rotation_retry``). An image is frame 0.

    Raises the decoder's ``DecodeError`` when a frame that decoded before does not now."""
    wanted = sorted({int(i) for i in indices})
    if kind == "image":
        return {0: load_image(path)}
    with open_video(path, decoder, probed) as reader:
        frames = turn_frames(reader.read(wanted), turn)
    return dict(zip(wanted, frames))


def recut_faces(frames: dict[int, np.ndarray], boxes: dict[int, np.ndarray], crop: CropConfig) -> dict[int, np.ndarray]:
    """Frame index -> the ``(crop.size, crop.size, 3)`` face crop at that frame's box."""
    return {i: crop_face(frames[i], np.asarray(box, np.float32), crop) for i, box in boxes.items()}
