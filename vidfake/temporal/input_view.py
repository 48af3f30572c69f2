"""What the frame encoder's backbone sees of a face crop: the crop itself, or its
high-frequency residual.

A second ensemble member should see something the first does not (DAME's ensemble,
Locate-and-Verify's RGB and frequency streams). Blending seams, up-sampling and a
generator's texture live in the finest detail of a picture, which an RGB encoder shares
with colour, lighting and identity. The ``"highpass"`` view keeps only that detail: the
crop minus a Gaussian blur of itself (sigma 1 px, 5 x 5, reflected at the border), divided
by :data:`HIGHPASS_SCALE` so it has about unit spread, the way a normalised RGB input has.
The filter is fixed, not learned, so the view is the same at training and scoring time
and nothing about it is saved but its name (``ModelConfig.input_view``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HIGHPASS_SCALE", "HighPassView", "gaussian_kernel"]

# the residual's standard deviation over 300 random 160 px training crops was 0.020
# (per crop 0.013-0.028 from the 10th to the 90th percentile)
HIGHPASS_SCALE = 0.02
_SIGMA_PX = 1.0
_KERNEL_PX = 5


def gaussian_kernel(size: int = _KERNEL_PX, sigma: float = _SIGMA_PX) -> Tensor:
    """A normalised ``(size, size)`` Gaussian (sums to 1, so a flat picture has no residual)."""
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


class HighPassView(nn.Module):
    """``(N,3,S,S)`` floats in [0,1] -> ``(crop - blur(crop)) / HIGHPASS_SCALE``, same shape."""

    def __init__(self) -> None:
        super().__init__()
        kernel = gaussian_kernel().expand(3, 1, _KERNEL_PX, _KERNEL_PX).contiguous()
        self.register_buffer("kernel", kernel, persistent=False)  # fixed: not in the state dict

    def forward(self, frames: Tensor) -> Tensor:
        """The residual of ``frames (N,3,S,S)``, in units of :data:`HIGHPASS_SCALE`."""
        pad = _KERNEL_PX // 2
        blurred = F.conv2d(F.pad(frames, (pad, pad, pad, pad), mode="reflect"),
                           self.kernel.to(frames.dtype), groups=3)
        return (frames - blurred) / HIGHPASS_SCALE
