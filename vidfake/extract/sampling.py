"""Sampling plans: which frame indices of a video to read.

One implementation serves extraction, scoring, training and evaluation, so a checkpoint's
plan (saved as its string form, e.g. ``"clips:4x8/2"``) picks the very same frames
everywhere. Plans work on frame indices in presentation order; the reader maps them to
real timestamps, so variable-frame-rate video is handled below this layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

PlanKind = Literal["uniform", "clips", "all", "every"]


class PlanError(ValueError):
    """A sampling plan string or its parameters make no sense."""


@dataclass(frozen=True)
class SamplingPlan:
    """A rule that turns a frame count into sorted, unique frame indices.

    - ``uniform(n)``: n frames spread evenly from first to last (fewer if the video is short).
    - ``clips(n_clips, clip_len, stride)``: n_clips runs of ``clip_len`` frames taken
      ``stride`` frames apart, the runs spread evenly over the video. Consecutive frames
      are what the temporal model and the lip-sync head need.
    - ``all``: every frame.
    - ``every(k)``: every k-th frame starting at 0.
    """

    kind: PlanKind
    n: int = 0
    clip_len: int = 1
    stride: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "clips", "all", "every"):
            raise PlanError(f"unknown sampling plan {self.kind!r}: use uniform, clips, all or every")
        if self.kind in ("uniform", "clips", "every") and self.n < 1:
            raise PlanError(f"{self.kind} needs a positive count, got {self.n}")
        if self.clip_len < 1 or self.stride < 1:
            raise PlanError(f"clip length and stride must be positive, got {self.clip_len} and {self.stride}")

    def indices(self, num_frames: int) -> np.ndarray:
        """Frame indices (int64, sorted, unique) for a video of ``num_frames`` frames."""
        if num_frames <= 0:
            return np.zeros(0, dtype=np.int64)
        if self.kind == "all":
            return np.arange(num_frames, dtype=np.int64)
        if self.kind == "every":
            return np.arange(0, num_frames, self.n, dtype=np.int64)
        if self.kind == "uniform":
            picks = np.linspace(0, num_frames - 1, min(self.n, num_frames))
            return np.unique(np.round(picks).astype(np.int64))
        return self._clip_indices(num_frames)

    def clip_groups(self, num_frames: int) -> list[np.ndarray]:
        """The plan's frames split into its clips (one group per clip; one group otherwise)."""
        if self.kind != "clips":
            return [self.indices(num_frames)]
        starts = self._clip_starts(num_frames)
        if starts.size == 0:  # shorter than one clip: the one short clip indices() keeps
            short = self._clip_indices(num_frames)
            return [short] if short.size else []
        return [s + self._offsets() for s in starts]

    @property
    def clip_span(self) -> int:
        """Frames from a clip's first frame to its last, both included."""
        return (self.clip_len - 1) * self.stride + 1

    def _offsets(self) -> np.ndarray:
        return np.arange(self.clip_len, dtype=np.int64) * self.stride

    def _clip_starts(self, num_frames: int) -> np.ndarray:
        if self.clip_span > num_frames:
            return np.zeros(0, dtype=np.int64)
        starts = np.linspace(0, num_frames - self.clip_span, self.n)
        return np.unique(np.round(starts).astype(np.int64))

    def _clip_indices(self, num_frames: int) -> np.ndarray:
        starts = self._clip_starts(num_frames)
        if starts.size == 0:
            # A video shorter than one clip: keep what there is rather than nothing, so
            # short uploads are still scored; the clip is simply shorter.
            return np.arange(0, num_frames, self.stride, dtype=np.int64)[: self.clip_len]
        return np.unique((starts[:, None] + self._offsets()[None, :]).ravel())

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "clips":
            return f"clips:{self.n}x{self.clip_len}/{self.stride}"
        return f"{self.kind}:{self.n}"


def uniform(n: int) -> SamplingPlan:
    """``n`` frames spread evenly over the video."""
    return SamplingPlan("uniform", n=n)


def clips(n_clips: int, clip_len: int, stride: int = 1) -> SamplingPlan:
    """``n_clips`` evenly spread clips of ``clip_len`` frames, ``stride`` frames apart."""
    return SamplingPlan("clips", n=n_clips, clip_len=clip_len, stride=stride)


def all_frames() -> SamplingPlan:
    """Every frame of the video."""
    return SamplingPlan("all")


def every(k: int) -> SamplingPlan:
    """Every ``k``-th frame."""
    return SamplingPlan("every", n=k)


def parse_plan(text: str) -> SamplingPlan:
    """Parse ``uniform:32``, ``clips:4x8`` / ``clips:4x8/2``, ``every:5`` or ``all``."""
    spec = text.strip().lower()
    try:
        if spec == "all":
            return all_frames()
        kind, _, arg = spec.partition(":")
        if kind == "uniform":
            return uniform(int(arg))
        if kind == "every":
            return every(int(arg))
        if kind == "clips":
            shape, _, stride = arg.partition("/")
            n_clips, _, clip_len = shape.partition("x")
            return clips(int(n_clips), int(clip_len), int(stride) if stride else 1)
    except ValueError as error:
        if isinstance(error, PlanError):
            raise
        raise PlanError(f"cannot read sampling plan {text!r}: {error}") from None
    raise PlanError(f"unknown sampling plan {text!r}: use uniform:N, clips:NxL[/S], every:K or all")
