"""Square face crops and mouth crops cut from full-resolution frames.

A crop is the square around the (smoothed) face box, enlarged by ``margin`` of the box
side on every side so the blending boundary of a swapped face stays inside the crop,
resized to ``size``. Parts of the square outside the frame are padded black rather than
shifted, so the face stays centred for faces near an edge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class CropConfig:
    """Sizes and margins of the face and mouth crops."""
    size: int = 224  # face crop side, pixels
    margin: float = 0.2  # fraction of the face box side added on each side
    mouth_size: int = 96  # mouth crop side, pixels
    mouth_scale: float = 0.5  # mouth crop side as a fraction of the face box side


def square_region(box: np.ndarray, margin: float) -> np.ndarray:
    """Integer ``x1,y1,x2,y2`` of the enlarged square around a box's centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * margin)
    half = max(side / 2, 1.0)
    return np.array([round(cx - half), round(cy - half), round(cx + half), round(cy + half)], np.int64)


def cut_padded(frame: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` (may extend past the frame), black where outside it."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in region)
    out = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = frame[sy1:sy2, sx1:sx2]
    return out


def _resize(patch: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.BILINEAR, reducing_gap=2.0))


def crop_face(frame: np.ndarray, box: np.ndarray, config: CropConfig) -> np.ndarray:
    """One ``(size,size,3)`` uint8 face crop."""
    return _resize(cut_padded(frame, square_region(box, config.margin)), config.size)


def mouth_box(box: np.ndarray, landmarks: np.ndarray, config: CropConfig) -> np.ndarray:
    """Square around the mouth (mid-point of the two mouth-corner landmarks)."""
    centre = landmarks[3:5].mean(axis=0)
    half = max(box[2] - box[0], box[3] - box[1]) * config.mouth_scale / 2
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half], np.float32)


def crop_mouth(frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray, config: CropConfig) -> np.ndarray:
    """One ``(mouth_size,mouth_size,3)`` uint8 mouth crop for the lip-sync head."""
    region = square_region(mouth_box(box, landmarks, config), 0.0)
    return _resize(cut_padded(frame, region), config.mouth_size)
