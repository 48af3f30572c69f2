"""Temporal transformer over the per-frame embeddings of one face track.

Design
------
* **Time, not index.** Frames are not sampled uniformly (sparse plans, dropped frames,
  variable frame rate), so positions come from timestamps: a sinusoidal encoding of
  ``t - t_first_valid`` in seconds, with periods spaced geometrically from
  ``MIN_PERIOD_S`` (two frames at 25 fps) up to ``config.time_scale_s``, passed through a
  learned linear map and added to the embeddings.
* **Variable length.** ``mask`` (True = valid) becomes the key padding mask; padded
  embeddings and times are zeroed before use, so whatever the caller left there (even
  NaN) cannot leak into the result. A sequence gives the same output alone or padded in
  a batch with longer ones (up to float rounding).
* **Pooling.** ``"cls"``: a learned CLS token (no time encoding) is prepended and its
  output is the clip embedding; it attends to valid positions only. ``"attention"``:
  a learned score per position, softmax over valid positions, weighted mean.
* **Residual frame path (length 1 = still images).** ``forward(..., frame_logits=...)``
  adds the mean of the valid per-frame logits to the transformer's logit::

      clip_logit = head(clip_embedding) + mean_{valid t} frame_logits[t]

  The head is initialised to zero, so an untrained transformer passes the frame
  classifier's verdict through unchanged, and training learns a temporal *correction*.
  With T = 1 the clip logit is the frame classifier's logit plus a correction computed
  from that one embedding, so a still image is scored by the part of the model that is
  trained on every frame, never by a transformer that has only seen sequences.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vidfake.temporal.config import ModelConfig

__all__ = ["TemporalTransformer", "TimeEncoding", "check_sequence", "masked_mean", "MIN_PERIOD_S"]

MIN_PERIOD_S = 0.08  # shortest period of the time encoding: two frames at 25 fps


def check_sequence(emb: Tensor, times: Tensor, mask: Tensor) -> None:
    """Validate ``emb (B,T,D)``, ``times (B,T)``, ``mask (B,T) bool`` with >= 1 valid per row."""
    if emb.ndim != 3:
        raise ValueError(f"embeddings must be (B,T,D), got {tuple(emb.shape)}")
    if times.shape != emb.shape[:2] or mask.shape != emb.shape[:2]:
        raise ValueError(
            f"times {tuple(times.shape)} and mask {tuple(mask.shape)} must be (B,T) = {tuple(emb.shape[:2])}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be bool (True = valid), got {mask.dtype}")
    if emb.shape[1] == 0 or not bool(mask.any(dim=1).all()):
        raise ValueError("every sequence needs at least one valid position (mask row all False)")


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values (B,T)`` over ``mask (B,T)`` per row (rows need >= 1 valid)."""
    values = values.masked_fill(~mask, 0.0)
    return values.sum(dim=1) / mask.sum(dim=1).clamp(min=1).to(values.dtype)


class TimeEncoding(nn.Module):
    """Sinusoidal encoding of times in seconds: ``(B,T) -> (B,T,dim)``."""

    def __init__(self, dim: int, max_period_s: float, min_period_s: float = MIN_PERIOD_S):
        super().__init__()
        if dim % 2:
            raise ValueError(f"time encoding width must be even, got {dim}")
        n = dim // 2
        max_period_s = max(float(max_period_s), min_period_s)
        if n == 1:
            periods = torch.tensor([max_period_s], dtype=torch.float64)
        else:
            periods = torch.logspace(math.log10(min_period_s), math.log10(max_period_s), n, dtype=torch.float64)
        self.register_buffer("angular", (2 * math.pi / periods).float(), persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        """``(B,T)`` seconds -> ``(B,T,dim)`` sines and cosines."""
        angles = t.unsqueeze(-1).float() * self.angular
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TemporalTransformer(nn.Module):
    """``forward(emb (B,T,D), times (B,T) s, mask (B,T) bool, frame_logits=None)
    -> (clip_embedding (B,D), clip_logit (B,))``; see the module docstring."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.embed_dim
        if d % config.temporal_heads:
            raise ValueError(f"embed_dim {d} must be divisible by temporal_heads {config.temporal_heads}")
        if config.pooling not in ("cls", "attention"):
            raise ValueError(f"pooling must be 'cls' or 'attention', got {config.pooling!r}")
        self.pooling = config.pooling
        self.time_encoding = TimeEncoding(d, config.time_scale_s)
        self.time_proj = nn.Linear(d, d)
        layer = nn.TransformerEncoderLayer(
            d_model=d,
            nhead=config.temporal_heads,
            dim_feedforward=4 * d,
            dropout=config.temporal_dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=config.temporal_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        if self.pooling == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        else:
            self.pool_score = nn.Linear(d, 1)
        self.head = nn.Linear(d, 1)
        nn.init.zeros_(self.head.weight)  # start as "mean of the frame logits", see module doc
        nn.init.zeros_(self.head.bias)

    def forward(
        self, emb: Tensor, times: Tensor, mask: Tensor, frame_logits: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(clip_embedding (B,D), clip_logit (B,))``; ``frame_logits`` (B,T), when given,
        add their valid mean to the clip logit."""
        check_sequence(emb, times, mask)
        valid = mask.unsqueeze(-1)
        emb = emb.masked_fill(~valid, 0.0)
        # time relative to the first valid frame of each row
        first = mask.to(torch.int64).argmax(dim=1, keepdim=True)
        times = times.masked_fill(~mask, 0.0)
        rel = (times - times.gather(1, first)).masked_fill(~mask, 0.0)
        x = emb + self.time_proj(self.time_encoding(rel).to(emb.dtype))
        x = x.masked_fill(~valid, 0.0)

        if self.pooling == "cls":
            b = x.shape[0]
            x = torch.cat([self.cls_token.expand(b, -1, -1).to(x.dtype), x], dim=1)
            keep = torch.cat([mask.new_ones(b, 1), mask], dim=1)
            h = self.encoder(x, src_key_padding_mask=~keep)
            pooled = h[:, 0]
        else:
            h = self.encoder(x, src_key_padding_mask=~mask)
            scores = self.pool_score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=1).masked_fill(~mask, 0.0)
            pooled = (weights.unsqueeze(-1) * h.masked_fill(~valid, 0.0)).sum(dim=1)

        logit = self.head(pooled).squeeze(-1)
        if frame_logits is not None:
            if frame_logits.shape != mask.shape:
                raise ValueError(f"frame_logits {tuple(frame_logits.shape)} must be (B,T) = {tuple(mask.shape)}")
            logit = logit + masked_mean(frame_logits, mask)
        return pooled, logit
