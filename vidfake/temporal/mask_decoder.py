"""A finer blend-mask map: a small U-Net-style decoder over the backbone's earlier maps.

The mask head (a 1x1 convolution on the backbone's last feature map) sees the face at
stride 32: 5x5 cells for a 160 px crop, too coarse to show a blending boundary. Face
X-ray and Locate-and-Verify read earlier, finer feature maps for that; so does this
decoder. Starting from the last map, it upsamples step by step and adds each earlier
stage's map (strides 16, 8 and 4, through 1x1 convolutions), smoothing with a 3x3
convolution after each step, and predicts logits at stride 4 (40x40 for 160 px).

Its output is a *refinement* of the mask head's: ``logits = upsample(coarse) + residual``
with the residual's last layer initialised to zero, so a decoder added to a trained
checkpoint starts out exactly at that checkpoint's (bilinearly upsampled) map and training
only adds detail. It reads features and writes nothing back, so the frame score and
embeddings are the same with or without it.

The earlier maps come from timm's ``forward_intermediates`` in the same backbone pass that
gives the last map (see :meth:`vidfake.temporal.encoder.FrameEncoder.forward_pyramid`);
which of timm's ``feature_info`` entries to take is :func:`skip_indices`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MaskDecoder", "skip_indices", "SKIP_STRIDES", "DECODER_WIDTH"]

SKIP_STRIDES = (16, 8, 4)  # the earlier maps the decoder adds, deepest first; its output is at the last
DECODER_WIDTH = 32  # channels inside the decoder (small: about 75k weights on EfficientNet-Lite0)


def skip_indices(feature_info: Sequence[dict], name: str) -> list[int]:
    """Indices into timm's ``feature_info`` (which ``forward_intermediates`` takes) of the
    backbone's maps at :data:`SKIP_STRIDES`, deepest first: for each stride the last
    stage with that reduction. ``ValueError`` naming the strides the backbone has when one
    is missing."""
    reductions = [int(info["reduction"]) for info in feature_info]
    indices = []
    for stride in SKIP_STRIDES:
        found = [i for i, r in enumerate(reductions) if r == stride]
        if not found:
            raise ValueError(f"model.mask_decoder needs feature maps at strides {list(SKIP_STRIDES)}; "
                             f"{name} has strides {reductions} (use a CNN backbone such as tf_efficientnet_lite0, "
                             "or set mask_decoder: false)")
        indices.append(found[-1])
    return indices


def _block(channels: int) -> nn.Sequential:
    """3x3 convolution, GroupNorm (batch-size independent: training and scoring agree), ReLU."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                         nn.GroupNorm(8, channels), nn.ReLU(inplace=True))


class MaskDecoder(nn.Module):
    """``forward(coarse (N,h,w), fmap (N,C,h,w), skips [deepest .. stride 4]) -> (N,H/4,W/4)`` logits.

    Args:
        deep_channels: channels of the backbone's last map (``fmap``).
        skip_channels: channels of the earlier maps, in :data:`SKIP_STRIDES` order.
        width: channels inside the decoder.
    """

    def __init__(self, deep_channels: int, skip_channels: Sequence[int], width: int = DECODER_WIDTH):
        super().__init__()
        self.deep = nn.Conv2d(deep_channels, width, 1)
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, 1) for c in skip_channels)
        self.blocks = nn.ModuleList(_block(width) for _ in skip_channels)
        self.out = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.out.weight)  # starts as the coarse map, upsampled
        nn.init.zeros_(self.out.bias)

    def forward(self, coarse: Tensor, fmap: Tensor, skips: Sequence[Tensor]) -> Tensor:
        """Mask logits at the resolution of the last (finest) of ``skips``."""
        if len(skips) != len(self.laterals):
            raise ValueError(f"the mask decoder takes {len(self.laterals)} earlier maps, got {len(skips)}")
        x = torch.relu(self.deep(fmap))
        for lateral, block, skip in zip(self.laterals, self.blocks, skips):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(x + lateral(skip))
        base = F.interpolate(coarse.unsqueeze(1), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return (base + self.out(x)).squeeze(1)
