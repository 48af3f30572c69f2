"""Clips of one face track into padded model inputs: pure functions, no model, no state.

The model takes a batch of clips as fixed-size tensors with a mask, so clips of different
lengths are zero-padded to the longest; ``clip_batches`` bounds how many face crops go
through the model at once, whatever the sampling plan. The audio for the lip-sync head is
cut per clip from the video's audio track on the frames' clock.

torch is imported inside the functions: importing ``vidfake.scoring`` must stay cheap, so
an unreadable file is answered before torch loads.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from vidfake.extract.video import AudioTrack
from vidfake.scoring.clip_stream import StreamedClip

if TYPE_CHECKING:
    import torch

FRAMES_PER_BATCH = 64  # face crops through the model at once: bounds memory whatever the plan
MIN_AUDIO_S = 0.2  # a clip with less audio than this (or silence) does not use the sync head


@dataclass
class ClipBatch:
    """Padded clips of one face track, ready for the model."""

    frames: torch.Tensor  # (B,T,3,S,S) float in [0,1]
    times: torch.Tensor  # (B,T) seconds
    mask: torch.Tensor  # (B,T) True where a frame is present
    mouths: torch.Tensor | None  # (B,T,3,M,M)
    lengths: list[int]  # per clip: frames present


class AudioBatch(NamedTuple):
    """The audio the sync head needs for a ``ClipBatch``, one row per clip."""

    samples: torch.Tensor  # (B,N) float, zero-padded to the longest clip's audio
    fps: torch.Tensor  # (B,) the video's frame rate
    mask: torch.Tensor  # (B,) True where the clip has enough audible sound


def clip_batches(clips: list[StreamedClip], frames_per_batch: int = FRAMES_PER_BATCH) -> Iterator[list[StreamedClip]]:
    """``clips`` in order, in groups of at most ``frames_per_batch`` frames (counting every
    clip as long as the longest; at least one clip a group)."""
    per_batch = max(1, frames_per_batch // max(len(c.frame_indices) for c in clips))
    for first in range(0, len(clips), per_batch):
        yield clips[first : first + per_batch]


def pad(clips: list[StreamedClip], input_size: int, mouth_size: int | None = None) -> ClipBatch:
    """Clips zero-padded to the longest, crops resized to ``input_size``. ``mouth_size``:
    the mouth crops' side for a model with a sync head (None: no mouths); the batch has
    mouths only when every clip has them.

    Args:
        clips: complete clips of one track (see ``vidfake.scoring.clip_stream``).
        input_size: the model's face crop side in pixels.
        mouth_size: the sync head's mouth crop side, or None when the model has none.

    Returns:
        The padded batch; ``lengths`` says how many frames of each clip are real.
    """
    import torch

    lengths = [len(c.frame_indices) for c in clips]
    length = max(lengths)
    frames = torch.zeros((len(clips), length, 3, input_size, input_size))
    times = torch.zeros((len(clips), length))
    mask = torch.zeros((len(clips), length), dtype=torch.bool)
    use_mouths = mouth_size is not None and all(c.mouths is not None for c in clips)
    mouths = torch.zeros((len(clips), length, 3, mouth_size, mouth_size)) if use_mouths else None
    for b, (clip, n) in enumerate(zip(clips, lengths)):
        frames[b, :n] = to_tensor(clip.crops, input_size)
        times[b, :n] = torch.as_tensor(clip.timestamps, dtype=torch.float32)
        mask[b, :n] = True
        if mouths is not None:
            mouths[b, :n] = to_tensor(clip.mouths, mouth_size)
    return ClipBatch(frames, times, mask, mouths, lengths)


def audio_batch(batch: ClipBatch, audio: AudioTrack | None, fps: float | None) -> AudioBatch | None:
    """Each clip's audio, from its first frame to one frame past its last; None when the
    sync head cannot run (no audio track, no mouth crops, or a still image)."""
    if audio is None or batch.mouths is None or fps is None:
        return None
    import torch

    spans = []
    for b, n in enumerate(batch.lengths):
        start = float(batch.times[b, 0])
        end = float(batch.times[b, n - 1]) + 1.0 / fps
        spans.append(audio.window(start, end))
    samples = torch.zeros((len(spans), max(len(s) for s in spans)))
    for b, span in enumerate(spans):
        samples[b, : len(span)] = torch.from_numpy(span)
    audible = torch.tensor([len(s) > audio.sample_rate * MIN_AUDIO_S and np.abs(s).max() > 0 for s in spans])
    return AudioBatch(samples, torch.full((len(spans),), float(fps)), audible)


def to_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N,H,W,3) crops -> float (N,3,size,size) in [0,1]."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    if tensor.shape[-1] != size:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return tensor
