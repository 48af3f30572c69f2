"""Mouth-motion head: does the mouth region look re-generated over time?

A lip-sync fake (Wav2Lip and its descendants) is in sync with its new audio by
construction, so an offset test cannot catch it. What gives it away is the mouth region
itself over a run of frames: softer than the rest of the face (the generator works at
96 px), teeth and lips that flicker from frame to frame, a seam on the lower face, mouth
shapes that fit the sound loosely. This head looks at exactly that.

Inputs are the detector's own face crops ``frames (B,T,3,S,S)`` (a run of consecutive
frames, as a ``clips:`` plan gives) and, where the clip has sound, its ``audio (B,S)``
at ``config.audio_sample_rate``, starting at frame 0, with ``fps (B,)``:

* the lower-middle part of each crop (:data:`MOUTH_REGION`, where the mouth sits in a
  face crop) becomes a grey ``mouth_motion_size`` picture, with its frame-to-frame
  difference as a second channel (flicker shows there);
* how much the mouth region changes from frame to frame against how much the upper face
  (:data:`UPPER_REGION`, eyes and brows) changes, as two log energies per frame
  (:func:`motion_energy`): a lip-sync generator redraws the lower face on every frame, so
  the mouth flickers and moves more than the rest of the face does, while the upper face
  carries the head's and the camera's motion, which the ratio cancels;
* a small 2-D CNN embeds each frame; the audio's log-mel frames are averaged over each
  video frame's duration and projected, with a flag saying whether there is sound
  (a video without audio still gets a score);
* two 1-D temporal convolutions over the frames, a masked mean, and two linear heads:
  ``logit`` (positive = the mouth looks re-generated) and ``moved_logit``, the auxiliary
  sync pretext (is the audio moved against the lips?), which teaches the features to
  follow speech.

In the detector the head's logit counts only where it is positive (:func:`mouth_evidence`):
a mouth that looks re-generated is evidence of a fake, but one that looks natural is no
evidence of a real video, since face swaps, reenactments and AI video carry natural mouth
motion. Adding the negative side as well pulled such fakes down: on wild-dev the one-sided
term kept the detector's AUC where the two-sided one lowered it
(``benchmarks/results/mouth_motion.json``).

A sample is *unavailable* (``available`` False, logits 0) with fewer than
:data:`MIN_FRAMES` valid frames. Uses the face crops only, so no separate mouth
extraction is needed and the self-made mouth fakes (:mod:`vidfake.train.mouth_fakes`),
made on face crops, are seen exactly as scoring sees a video.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidfake.temporal.config import ModelConfig
from vidfake.temporal.sync import MEL_HOP_S, log_mel

__all__ = ["MouthMotionHead", "MouthMotionOutput", "MOUTH_REGION", "UPPER_REGION", "MIN_FRAMES", "mouth_regions",
           "motion_energy", "mouth_evidence", "per_frame_mel"]

MOUTH_REGION = (0.50, 0.94, 0.20, 0.80)  # (top, bottom, left, right) of the face crop, as fractions
UPPER_REGION = (0.18, 0.47, 0.20, 0.80)  # eyes and brows: the reference for the face's own motion
MIN_FRAMES = 4
_ENERGY_CENTRE = -4.0  # about log(0.018), a talking face's typical change: centres the energies near 0
_GREY = (0.299, 0.587, 0.114)


@dataclass
class MouthMotionOutput:
    """``logit (B,)`` the mouth looks re-generated; ``moved_logit (B,)`` the audio is moved
    (meaningful with sound); ``available (B,)`` bool, ``has_audio (B,)`` bool."""

    logit: Tensor
    moved_logit: Tensor
    available: Tensor
    has_audio: Tensor


def _grey_region(frames: Tensor, region: tuple[float, float, float, float]) -> Tensor:
    """``frames (B,T,3,S,S)`` -> ``(B,T,h,w)``: the grey picture of one region of the crops."""
    s = frames.shape[-1]
    top, bottom, left, right = (round(f * s) for f in region)
    return (frames[:, :, :, top:bottom, left:right] * frames.new_tensor(_GREY).view(1, 1, 3, 1, 1)).sum(2)


def mouth_regions(frames: Tensor, size: tuple[int, int]) -> Tensor:
    """``frames (B,T,3,S,S)`` in [0,1] -> ``(B,T,2,H,W)``: the grey mouth region and its
    difference from the previous frame (0 for the first)."""
    b, t = frames.shape[:2]
    grey = _grey_region(frames, MOUTH_REGION).flatten(0, 1).unsqueeze(1)  # (B*T, 1, h, w)
    grey = F.interpolate(grey, size=size, mode="area").view(b, t, 1, *size)
    diff = torch.cat([torch.zeros_like(grey[:, :1]), grey[:, 1:] - grey[:, :-1]], dim=1)
    return torch.cat([grey - 0.5, diff * 4.0], dim=2)


def mouth_evidence(logit: Tensor) -> Tensor:
    """What a mouth-motion logit adds to a clip's fake logit (before its weight): the
    logit where positive, else 0 (see the module docstring)."""
    return logit.clamp(min=0)


def motion_energy(frames: Tensor) -> Tensor:
    """``frames (B,T,3,S,S)`` in [0,1] -> ``(B,T,2)``: ``log(mean |change| + 1e-3)`` of the
    grey mouth region and of the upper face from the previous frame to this one (frame 0
    takes frame 1's values; a one-frame clip gets ``log(1e-3)``)."""
    energies = []
    for region in (MOUTH_REGION, UPPER_REGION):
        grey = _grey_region(frames, region)
        change = (grey[:, 1:] - grey[:, :-1]).abs().mean(dim=(2, 3))  # (B, T-1)
        change = torch.cat([change[:, :1], change], dim=1) if change.shape[1] else grey.new_zeros(grey.shape[:2])
        energies.append(torch.log(change + 1e-3))
    return torch.stack(energies, dim=-1)


def per_frame_mel(audio: Tensor, fps: Tensor, frames: int, sample_rate: int, n_mels: int) -> Tensor:
    """``audio (B,S)`` -> ``(B,T,n_mels)``: each video frame's mean log-mel over its duration,
    standardised per clip (silence and missing audio read as zeros)."""
    mel = log_mel(audio, sample_rate, n_mels)  # (B, n_mels, M)
    b, _, m = mel.shape
    cumsum = F.pad(mel.cumsum(-1), (1, 0))  # (B, n_mels, M+1)
    t = torch.arange(frames + 1, device=audio.device, dtype=torch.float32)
    fps = fps.to(torch.float32).clamp(min=1e-3).view(b, 1)
    edges = (t.view(1, -1) / fps / MEL_HOP_S).floor().long().clamp(0, m)  # (B, T+1)
    start, end = edges[:, :-1], torch.maximum(edges[:, 1:], (edges[:, :-1] + 1).clamp(max=m))
    def take(idx: Tensor) -> Tensor:  # the cumulative sums at each frame's edge, every mel bin
        return cumsum.gather(2, idx.unsqueeze(1).expand(b, n_mels, frames))

    count = (end - start).clamp(min=1).unsqueeze(1).float()
    means = ((take(end) - take(start)) / count).transpose(1, 2)  # (B, T, n_mels)
    centred = means - means.mean(dim=(1, 2), keepdim=True)
    scale = centred.flatten(1).std(dim=1).clamp(min=1e-3).view(b, 1, 1)
    return centred / scale


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class MouthMotionHead(nn.Module):
    """See the module docstring. ``config.mouth_motion_size`` is the mouth picture's side."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        size = config.mouth_motion_size
        self.size = (size, round(size * 4 / 3))  # the region is wider than tall
        dim = config.mouth_motion_dim
        self.visual = nn.Sequential(_conv(2, 16), _conv(16, 32), _conv(32, 64), _conv(64, dim),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.audio = nn.Linear(config.n_mels, dim // 2)
        self.temporal = nn.Sequential(
            nn.Conv1d(dim + dim // 2 + 1 + 2, dim, 3, padding=1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Conv1d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True))
        self.fake = nn.Linear(dim, 1)
        self.moved = nn.Linear(dim, 1)

    def forward(self, frames: Tensor, mask: Tensor, audio: Tensor | None = None, fps: Tensor | float | None = None,
                audio_mask: Tensor | None = None) -> MouthMotionOutput:
        """``frames (B,T,3,S,S)`` float in [0,1] (uint8 accepted), ``mask (B,T)`` valid frames;
        ``audio (B,S)``, ``fps`` and ``audio_mask (B,)`` as the sync head takes them."""
        if frames.ndim != 5 or mask.shape != frames.shape[:2]:
            raise ValueError(f"frames must be (B,T,3,S,S) with mask (B,T), got {tuple(frames.shape)}, "
                             f"{tuple(mask.shape)}")
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255.0
        b, t = mask.shape
        x = mouth_regions(frames.float(), self.size) * mask.view(b, t, 1, 1, 1)
        visual = self.visual(x.flatten(0, 1)).view(b, t, -1)
        has_audio = torch.zeros(b, dtype=torch.bool, device=frames.device)
        sound = visual.new_zeros(b, t, self.config.n_mels)
        if audio is not None and fps is not None and audio.numel():
            audible = audio.abs().amax(dim=1) > 0
            has_audio = audible if audio_mask is None else audio_mask.bool() & audible
            fps_t = torch.as_tensor(fps, dtype=torch.float32, device=frames.device).expand(b)
            sound = per_frame_mel(audio, fps_t, t, self.config.audio_sample_rate, self.config.n_mels)
            sound = sound * has_audio.view(b, 1, 1)
        flag = has_audio.view(b, 1, 1).float().expand(b, t, 1)
        energy = (motion_energy(frames.float()) - _ENERGY_CENTRE) * mask.view(b, t, 1)
        features = torch.cat([visual, self.audio(sound) * flag, flag, energy], dim=-1).transpose(1, 2)  # (B, C, T)
        hidden = self.temporal(features).transpose(1, 2)  # (B, T, dim)
        weights = mask.float().unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        available = mask.sum(1) >= MIN_FRAMES
        zero = torch.zeros_like(available, dtype=pooled.dtype)
        logit = torch.where(available, self.fake(pooled).squeeze(-1), zero)
        moved = torch.where(available & has_audio, self.moved(pooled).squeeze(-1), zero)
        return MouthMotionOutput(logit=logit, moved_logit=moved, available=available, has_audio=has_audio)
