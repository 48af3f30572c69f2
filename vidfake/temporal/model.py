"""The detector: frame encoder + temporal transformer + optional audio-visual sync head.

``DeepfakeDetector.forward`` takes one face track per row::

    frames (B,T,3,S,S) float in [0,1] (or uint8), S = config.input_size
    times  (B,T) float seconds (any origin; only differences matter)
    mask   (B,T) bool, True = valid frame; every row needs >= 1 valid frame
    mouths (B,T,3,M,M) float in [0,1] (or uint8), M = config.mouth_size, same frames
           as ``frames`` and *consecutive* at ``fps`` (optional)
    audio  (B,S) float32 mono at config.audio_sample_rate, starting at frame 0 (optional)
    fps    (B,) float (required with audio)
    audio_mask (B,) bool, True = this row has audio (default: all True when audio given)

and returns a :class:`DetectorOutput`. All logits are "fake" logits (sigmoid -> P(fake)).
Positions of ``frame_logits`` (and ``mask_logits``) where ``mask`` is False hold 0 and
mean nothing. With ``config.mask_head``, ``mask_logits (B,T,h,w)`` are per-frame blend-mask
logits (sigmoid -> P(pixel was blended)) for heat maps: on the backbone's last grid (S/32),
or at S/4 with ``config.mask_decoder`` (40x40 for a 160 px crop).

Clip logit::

    clip_logit = transformer_logit + mean(valid frame_logits)
                 + sync_weight * sync.logit     (only where used_sync)
                 + mouth_weight * max(mouth.logit, 0)   (with config.mouth_motion, where available)

``sync_weight`` is a learned scalar initialised to 0.1, so an untrained sync head barely
moves the decision. ``mouth_weight`` (the mouth-motion head,
:mod:`vidfake.temporal.mouth_motion`, which reads the face crops' mouth region over the
run and the audio when there is some) starts at 0: the head changes no score until its
weight is fitted on a development set. Only a positive mouth logit counts (a natural
mouth is no evidence of a real video; :func:`~vidfake.temporal.mouth_motion.mouth_evidence`).

A row uses the sync head when the head is enabled, ``mouths``,
``audio`` and ``fps`` are given, ``audio_mask`` is True for it and it has at least
``sync_window`` consecutive valid frames; otherwise ``used_sync`` is False and the clip
logit is the visual one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidfake.temporal.config import ModelConfig
from vidfake.temporal.encoder import FrameEncoder
from vidfake.temporal.mouth_motion import MouthMotionHead, MouthMotionOutput, mouth_evidence
from vidfake.temporal.sync import SyncHead, SyncOutput
from vidfake.temporal.transformer import TemporalTransformer, check_sequence

__all__ = ["DeepfakeDetector", "DetectorOutput", "create_model", "SYNC_WEIGHT_INIT"]

SYNC_WEIGHT_INIT = 0.1


@dataclass
class DetectorOutput:
    """frame_logits (B,T): per-frame fake logits (0 at padded positions).
    clip_logit (B,): the clip's fake logit (visual + gated sync where used).
    sync: the sync head's output for all rows, or None (head disabled / no audio given).
    used_sync (B,) bool: rows whose clip_logit includes the sync logit.
    clip_embedding (B,D): the pooled temporal embedding.
    mask_logits (B,T,h,w): blend-mask logits per frame (model.mask_head; h = S/32, or S/4
        with model.mask_decoder), else None."""

    frame_logits: Tensor
    clip_logit: Tensor
    sync: SyncOutput | None
    used_sync: Tensor
    clip_embedding: Tensor
    mask_logits: Tensor | None = None
    mouth: MouthMotionOutput | None = None


class DeepfakeDetector(nn.Module):
    """Frame encoder + temporal transformer (+ lip-sync head with ``config.sync``); see the
    module docstring for the inputs and the clip logit.

    Args:
        config: the architecture (saved in every checkpoint).
        pretrained: read ``config.pretrained_path`` into the backbone (False when a
            checkpoint's state dict will replace every weight).
    """

    def __init__(self, config: ModelConfig, pretrained: bool = True):
        super().__init__()
        self.config = config
        self.encoder = FrameEncoder(config, pretrained=pretrained)
        self.temporal = TemporalTransformer(config)
        if config.sync:
            self.sync = SyncHead(config)
            self.sync_weight = nn.Parameter(torch.tensor(SYNC_WEIGHT_INIT))
        else:
            self.sync = None
            self.sync_weight = None
        if config.mouth_motion:
            self.mouth_motion = MouthMotionHead(config)
            self.mouth_weight = nn.Parameter(torch.tensor(0.0))
        else:
            self.mouth_motion = None
            self.mouth_weight = None

    def forward(
        self,
        frames: Tensor,
        times: Tensor,
        mask: Tensor | None = None,
        mouths: Tensor | None = None,
        audio: Tensor | None = None,
        fps: Tensor | float | None = None,
        audio_mask: Tensor | None = None,
    ) -> DetectorOutput:
        """Score ``B`` face tracks of ``T`` frames (shapes and units in the module docstring).

        Returns:
            A :class:`DetectorOutput`: per-frame and clip fake logits, the sync head's
            output where it ran, and blend-mask logits with ``config.mask_head``.
        """
        if frames.ndim != 5:
            raise ValueError(f"frames must be (B,T,3,S,S), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=frames.device)
        check_sequence(frames.new_empty(b, t, 0), times, mask)  # shapes + >= 1 valid per row

        # every valid frame of every clip through the encoder as one batch
        emb_valid, logit_valid, mask_valid = self.encoder(frames[mask])
        mask_logits = None
        if mask_valid is not None:
            mask_logits = mask_valid.new_zeros(b, t, *mask_valid.shape[1:])
            mask_logits[mask] = mask_valid
        emb = emb_valid.new_zeros(b, t, emb_valid.shape[-1])
        emb[mask] = emb_valid
        frame_logits = logit_valid.new_zeros(b, t)
        frame_logits[mask] = logit_valid

        clip_embedding, clip_logit = self.temporal(emb, times, mask, frame_logits=frame_logits)

        sync_out = None
        used = torch.zeros(b, dtype=torch.bool, device=frames.device)
        if self.sync is not None and mouths is not None and audio is not None:
            if mouths.shape[:2] != (b, t):
                raise ValueError(f"mouths {tuple(mouths.shape)} must be (B,T,3,M,M) with (B,T)=({b},{t})")
            sync_out = self.sync(mouths, audio, fps, mask=mask, audio_mask=audio_mask)
            used = sync_out.available
            gated = self.sync_weight * sync_out.logit.to(clip_logit.dtype)
            clip_logit = clip_logit + torch.where(used, gated, torch.zeros_like(gated))
        mouth_out = None
        if self.mouth_motion is not None:
            mouth_out = self.mouth_motion(frames, mask, audio, fps, audio_mask)
            weighted = self.mouth_weight * mouth_evidence(mouth_out.logit).to(clip_logit.dtype)
            clip_logit = clip_logit + torch.where(mouth_out.available, weighted, torch.zeros_like(weighted))
        return DetectorOutput(
            frame_logits=frame_logits,
            clip_logit=clip_logit,
            sync=sync_out,
            used_sync=used,
            clip_embedding=clip_embedding,
            mask_logits=mask_logits,
            mouth=mouth_out,
        )


def create_model(config: ModelConfig | None = None, *, pretrained: bool = True) -> DeepfakeDetector:
    """Build the detector described by ``config`` (timm-style factory).

    ``pretrained=True`` loads ``config.pretrained_path`` into the backbone when set;
    pass ``pretrained=False`` when rebuilding from a checkpoint whose state dict will
    replace all weights (the original weights file need not exist then)."""
    return DeepfakeDetector(config or ModelConfig(), pretrained=pretrained)
