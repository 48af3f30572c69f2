"""The face detector's settings, apart from the detector itself.

Named ``FaceDetectorConfig`` (``face_detector`` in ``ExtractConfig`` and in saved
configs) so it is never mistaken for the deepfake model. Kept free of torch so that what only needs the numbers (``vidfake extract --help`` shows
the defaults, configs are read from checkpoints) does not pay for importing it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaceDetectorConfig:
    """Every face detector threshold in one place; saved with extraction records and checkpoints."""

    max_side: int = 640  # detection copy's long side, pixels
    min_face_size: int = 20  # smallest face searched, pixels at detection scale
    stage_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN P-, R-, O-Net
    min_score: float = 0.9  # detections below this confidence are dropped
    batch_size: int = 16  # frames per MTCNN call
    keyframe_interval: int = 4  # full search on every k-th sampled frame; 1 = every frame
    device: str = "cpu"
