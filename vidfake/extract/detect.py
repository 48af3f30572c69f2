"""Face detection with facenet-pytorch's MTCNN (its weights ship inside its wheel).

Detection runs on a copy of each frame downscaled so its long side is at most
``max_side`` pixels: MTCNN's cost grows with pixels (about 200 ms a 1080p frame on a
2-core CPU against 50 ms at 640x360) while faces worth scoring stay well above its
minimum size. Boxes and landmarks are mapped back to full-resolution coordinates.

``refine`` re-checks predicted boxes with MTCNN's last stage only (O-Net on 48x48
crops): the pipeline runs the full detector on some sampled frames and lets the tracker
predict where each face is on the frames between, which O-Net confirms and corrects for
a fraction of the cost of a full pyramid search.

torch is imported inside the functions that use it: the pipeline imports this module for
its types, and a file can be probed (and refused) without paying seconds for torch.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vidfake.extract.detect_config import FaceDetectorConfig  # re-exported: it lives apart so reading it needs no torch

if TYPE_CHECKING:
    import torch


@dataclass
class FrameDetections:
    """Faces found in one frame, in full-resolution pixel coordinates."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # x1, y1, x2, y2
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))  # eyes, nose, mouth

    def __len__(self) -> int:
        return len(self.scores)

    def keep(self, mask: np.ndarray) -> FrameDetections:
        """Only the faces where ``mask`` is true."""
        return FrameDetections(self.boxes[mask], self.scores[mask], self.landmarks[mask])


def detection_scale(width: int, height: int, max_side: int) -> float:
    """Factor from full resolution to the detection copy (never upscales)."""
    return min(1.0, max_side / max(width, height))


def downscale(frames: np.ndarray | Sequence[np.ndarray], max_side: int) -> np.ndarray:
    """The detection copy of a batch of uint8 frames (one array, or a sequence of frames of
    one size), as one array.

    Antialiased, so small faces survive; torch's uint8 channels-last path does a 1080p
    frame in about 2 ms on CPU, six times faster than PIL. Frames given apart are resized
    one by one (the same numbers), never stacked at full resolution first."""
    if not isinstance(frames, np.ndarray):
        return np.stack([downscale(frame[None], max_side)[0] for frame in frames])
    height, width = frames.shape[1:3]
    scale = detection_scale(width, height, max_side)
    if scale >= 1.0:
        return frames
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return _resample(batch, size).permute(0, 2, 3, 1).contiguous().numpy()


class FaceDetector:
    """Batched MTCNN on CPU or CUDA. Inputs are the detection copies (see ``downscale``);
    ``scale`` maps results back to the full-resolution frame."""

    def __init__(self, config: FaceDetectorConfig | None = None):
        import torch
        from facenet_pytorch import MTCNN

        self.config = config or FaceDetectorConfig()
        self.device = torch.device(self.config.device)
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.config.min_face_size,
            thresholds=list(self.config.stage_thresholds),
            post_process=False,
            device=self.device,
        ).eval()

    def detect(self, small_frames: np.ndarray, scale: float) -> list[FrameDetections]:
        """Full MTCNN search on each detection-copy frame (uint8 ``(B,h,w,3)``)."""
        import torch

        results: list[FrameDetections] = []
        for start in range(0, len(small_frames), self.config.batch_size):
            batch = torch.as_tensor(small_frames[start : start + self.config.batch_size], device=self.device)
            with torch.inference_mode(), _antialiased_resampling():
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for b, p, pt in zip(boxes, probs, points):
                if b is None:
                    results.append(FrameDetections())
                    continue
                found = FrameDetections(
                    np.asarray(b, np.float32) / scale,
                    np.asarray(p, np.float32),
                    np.asarray(pt, np.float32) / scale,
                )
                results.append(found.keep(found.scores >= self.config.min_score))
        return results

    def refine(self, small_frames: np.ndarray, scale: float, boxes: list[np.ndarray]) -> list[FrameDetections]:
        """Confirm and correct predicted full-resolution ``boxes`` (one ``(N,4)`` array per
        frame) with O-Net. A box O-Net rejects is dropped from the result."""
        import torch

        crops, owners, squares = [], [], []
        for frame_i, frame_boxes in enumerate(boxes):
            frame_boxes = np.asarray(frame_boxes, np.float32).reshape(-1, 4) * scale
            if not len(frame_boxes):
                continue
            # one frame in float at a time: a whole segment in float is 4x its uint8 size
            frame = torch.as_tensor(small_frames[frame_i], device=self.device).permute(2, 0, 1).float()
            for box in frame_boxes:
                square = _square(box)
                crops.append(_crop_padded(frame, square, 48))
                owners.append(frame_i)
                squares.append(square)
        out = [FrameDetections() for _ in boxes]
        if not crops:
            return out
        with torch.inference_mode():
            reg, points, probs = self._mtcnn.onet((torch.stack(crops) - 127.5) * 0.0078125)
        reg, points, scores = reg.cpu().numpy(), points.cpu().numpy(), probs[:, 1].cpu().numpy()
        squares_arr = np.asarray(squares, np.float32)
        side = squares_arr[:, 2:3] - squares_arr[:, 0:1]
        new_boxes = squares_arr + reg * np.concatenate([side, side, side, side], axis=1)
        landmarks = np.stack(
            [squares_arr[:, 0:1] + side * points[:, :5], squares_arr[:, 1:2] + side * points[:, 5:]], axis=-1
        )
        owners_arr = np.asarray(owners)
        for frame_i in range(len(boxes)):
            mine = (owners_arr == frame_i) & (scores >= self.config.min_score)
            out[frame_i] = FrameDetections(
                (new_boxes[mine] / scale).astype(np.float32),
                scores[mine].astype(np.float32),
                (landmarks[mine] / scale).astype(np.float32),
            )
        return out


def _square(box: np.ndarray) -> np.ndarray:
    """The square around a box's centre with its longer side, as O-Net expects."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


def _crop_padded(frame: torch.Tensor, box: np.ndarray, size: int) -> torch.Tensor:
    """A ``(3,size,size)`` resample of ``box`` from a ``(3,H,W)`` float frame; outside is black."""
    import torch

    _, height, width = frame.shape
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    region = torch.zeros((3, y2 - y1, x2 - x1), dtype=frame.dtype, device=frame.device)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        region[:, sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = frame[:, sy1:sy2, sx1:sx2]
    return _resample(region[None], (size, size))[0]


def _resample(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


def _resample_for_nets(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``_resample`` handed on channels-last: MTCNN's convolutions and max-pooling then run
    in that layout, which on CPU nearly halves a full search (8 frames at 640x360: 0.83 to
    0.46 CPU-seconds, torch 2.11, one thread), with the same scores and boxes within 1e-4 px."""
    import torch

    return _resample(images, size).contiguous(memory_format=torch.channels_last)


@contextmanager
def _antialiased_resampling() -> Iterator[None]:
    """Swap facenet-pytorch's resampler for antialiased bilinear during a detect call.

    MTCNN resamples every candidate box with torch's ``area`` mode, which on CPU costs
    about 15 ms for a large box (torch 2.11): textured frames with hundreds of candidates
    took 250 ms+ a frame. Antialiased bilinear is the same kind of low-pass filter at
    about 0.5 ms. Restored on exit so other users of facenet-pytorch see no change.
    """
    from facenet_pytorch.models.utils import detect_face

    original = detect_face.imresample
    detect_face.imresample = _resample_for_nets
    try:
        yield
    finally:
        detect_face.imresample = original
