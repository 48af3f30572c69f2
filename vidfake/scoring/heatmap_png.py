"""Draw one heat-map picture: the face crop with the map over it, the region's box, and a
caption band (frame, time, score, how the map was made) with the colour scale.

Pure drawing (numpy, PIL, a matplotlib colour map); no torch, no model, so it can be
tested and reused alone. The map is stretched to the picture with bilinear smoothing and
laid over the face semi-transparently: more opaque where it is hotter, so the face stays
visible where the map is cold.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIDE = 320  # picture side of the face part, pixels (crops are usually 160-224 px)
LINE_H = 16  # caption line height, pixels
BAR_H = 10  # colour scale height, pixels
ALPHA = (0.15, 0.6)  # the overlay's opacity from the cold end of the scale to the hot end
COLORMAP = "jet"


def colorize(heat: np.ndarray, value_range: tuple[float, float], side: int) -> np.ndarray:
    """``(side, side, 4)`` float RGBA in [0,1]: ``heat`` scaled to ``value_range``, stretched
    to ``side`` px (bilinear), coloured, with an opacity that grows with the value."""
    import matplotlib

    low, high = value_range
    scaled = np.clip((heat.astype(np.float32) - low) / max(high - low, 1e-12), 0.0, 1.0)
    stretched = np.asarray(Image.fromarray(scaled, mode="F").resize((side, side), Image.BILINEAR))
    rgba = matplotlib.colormaps[COLORMAP](np.clip(stretched, 0.0, 1.0))
    rgba[..., 3] = ALPHA[0] + (ALPHA[1] - ALPHA[0]) * np.clip(stretched, 0.0, 1.0)
    return rgba


def render_heatmap(crop: np.ndarray, heat: np.ndarray, value_range: tuple[float, float],
                   box: tuple[float, float, float, float], caption: Sequence[str], out: Path) -> Path:
    """Write the picture to ``out`` (PNG) and return its path.

    Args:
        crop: ``(S,S,3)`` uint8 face crop.
        heat: ``(h,w)`` map over the crop, any resolution.
        value_range: the map values drawn as the cold and the hot end of the colour scale.
        box: the region, ``x1,y1,x2,y2`` as fractions of the crop's side.
        caption: lines written under the face.
    """
    face = np.asarray(Image.fromarray(crop).resize((SIDE, SIDE), Image.BICUBIC), np.float32) / 255.0
    overlay = colorize(heat, value_range, SIDE)
    alpha = overlay[..., 3:]
    blended = (face * (1 - alpha) + overlay[..., :3] * alpha) * 255.0
    height = SIDE + LINE_H * len(caption) + BAR_H + LINE_H + 8
    picture = Image.new("RGB", (SIDE, height), (255, 255, 255))
    picture.paste(Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8)), (0, 0))
    draw = ImageDraw.Draw(picture)
    x1, y1, x2, y2 = (round(v * SIDE) for v in box)
    draw.rectangle((x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=(255, 255, 255), width=2)
    font = ImageFont.load_default(size=12)
    for i, line in enumerate(caption):
        draw.text((4, SIDE + 2 + i * LINE_H), line, fill=(20, 20, 20), font=font)
    _colour_scale(picture, draw, value_range, SIDE + 4 + LINE_H * len(caption), font)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out, format="PNG")
    return out


def _colour_scale(picture: Image.Image, draw: ImageDraw.ImageDraw, value_range: tuple[float, float], top: int,
                  font: ImageFont.ImageFont) -> None:
    """The colour scale from the cold to the hot end, labelled with both values."""
    import matplotlib

    ramp = matplotlib.colormaps[COLORMAP](np.linspace(0.0, 1.0, SIDE - 8))[:, :3]
    bar = np.repeat((ramp[None] * 255).astype(np.uint8), BAR_H, axis=0)
    picture.paste(Image.fromarray(bar), (4, top))
    low, high = value_range
    draw.text((4, top + BAR_H + 1), f"{low:.3g}", fill=(20, 20, 20), font=font)
    draw.text((SIDE - 4, top + BAR_H + 1), f"{high:.3g}", fill=(20, 20, 20), font=font, anchor="ra")
