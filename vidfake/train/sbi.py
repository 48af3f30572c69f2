"""Self-blended images (SBI; Shiohara & Yamasaki, CVPR 2022).

A pseudo-fake is made from one real face crop alone: a *source* copy of the crop is
slightly transformed (colour, sharpness, a small scale and shift) and blended back into
the original (the *target*) through a soft face-shaped mask. A detector trained on these
learns the blending boundary and the source/target statistical mismatch that every face
swap leaves, without ever seeing a particular manipulation method.

Inputs are the crops written by ``vidfake extract``: square RGB uint8 images (face box
plus a margin) with the 5 MTCNN landmarks (left eye, right eye, nose, left / right mouth
corner) in crop pixel coordinates.

Every random choice lives in a :class:`BlendParams` (sizes as fractions of the crop side,
so one set fits any crop size); :func:`self_blend_clip` draws one set per clip and jitters
it a little per frame, as real swaps flicker slightly but do not change from frame to
frame.

Only numpy and Pillow are used; a 224 px crop takes a few milliseconds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_N_DEFORM = 3  # Fourier harmonics of the radial mask deformation
_REF_SIZE = 224.0  # crop side the pixel-valued sharpness settings are tuned for


@dataclass(frozen=True)
class SBIConfig:
    """How a self-blended fake is made: the source's mismatch, the mask and the blend."""

    # source/target mismatch
    color_jitter: float = 0.1  # max relative change of brightness/contrast/saturation and per-channel shift (x255)
    sharpen_or_blur: float = 0.5  # probability of a sharpen or blur on the source
    max_scale: float = 0.05  # source resized by 1 ± this (about the face centre)
    max_shift: float = 0.03  # source shifted by up to this fraction of the crop side
    # mask
    mask_dilate: float = 0.15  # landmark hull grown by this fraction of the face size
    mask_deform: float = 0.1  # amplitude of the random radial deformation of the mask outline
    blur_min: float = 0.02  # Gaussian blur sigma of the mask edge, fraction of crop side
    blur_max: float = 0.08
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # SBI's blend ratio choices


@dataclass(frozen=True)
class BlendParams:
    """Every random choice of one self-blend; neutral values give ``source == image``."""

    brightness: float = 1.0  # multiplicative
    contrast: float = 1.0  # about the mean grey level
    saturation: float = 1.0  # 0 = grey, 1 = unchanged
    channel_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)  # added, in 0..255 units
    sharpness: str = "none"  # "none" | "blur" | "sharpen"
    sharp_amount: float = 0.0  # 0..1 strength of the blur / sharpen
    scale: float = 1.0  # source zoom about the face centre
    shift: tuple[float, float] = (0.0, 0.0)  # (dx, dy), fraction of the crop side
    deform: tuple[float, ...] = (0.0,) * _N_DEFORM  # radial deformation amplitude per harmonic
    deform_phase: tuple[float, ...] = (0.0,) * _N_DEFORM  # phase per harmonic (radians)
    mask_blur: float = 0.05  # Gaussian sigma of the mask edge, fraction of the crop side
    blend_ratio: float = 1.0  # the mask is multiplied by this

    @classmethod
    def identity(cls, **overrides) -> BlendParams:
        """Neutral parameters (no colour/sharpness/geometry change), optionally overridden."""
        return cls(**overrides)


def sample_params(rng: np.random.Generator, config: SBIConfig = SBIConfig()) -> BlendParams:
    """Draw one random set of blend parameters."""
    j = config.color_jitter

    def u(lim, n=None):
        return rng.uniform(-lim, lim, n)

    sharpness = "none"
    if rng.random() < config.sharpen_or_blur:
        sharpness = "blur" if rng.random() < 0.5 else "sharpen"
    return BlendParams(
        brightness=float(1 + u(j)),
        contrast=float(1 + u(j)),
        saturation=float(1 + u(j)),
        channel_shift=tuple(float(v) for v in u(j * 255, 3)),
        sharpness=sharpness,
        sharp_amount=float(rng.uniform(0, 1)) if sharpness != "none" else 0.0,
        scale=float(1 + u(config.max_scale)),
        shift=tuple(float(v) for v in u(config.max_shift, 2)),
        deform=tuple(float(v) / (k + 1) for k, v in enumerate(u(config.mask_deform, _N_DEFORM))),
        deform_phase=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, _N_DEFORM)),
        mask_blur=float(rng.uniform(config.blur_min, config.blur_max)),
        blend_ratio=float(rng.choice(np.asarray(config.blend_ratios, dtype=np.float64))),
    )


def jitter_params(params: BlendParams, rng: np.random.Generator, amount: float = 0.1) -> BlendParams:
    """A slightly varied copy of ``params`` (per-frame flicker within one clip).

    Each continuous parameter's deviation from neutral is scaled by ``1 ± amount`` (uniform),
    and the deformation phases move by up to ``amount`` radians; the sharpness kind and the
    blend ratio stay fixed. ``amount == 0`` returns ``params`` unchanged, and neutral
    parameters stay neutral.
    """
    if amount <= 0:
        return params

    def j(value: float, neutral: float = 0.0) -> float:
        return float(neutral + (value - neutral) * (1 + rng.uniform(-amount, amount)))

    return dataclasses.replace(
        params,
        brightness=j(params.brightness, 1.0),
        contrast=j(params.contrast, 1.0),
        saturation=j(params.saturation, 1.0),
        channel_shift=tuple(j(v) for v in params.channel_shift),
        sharp_amount=float(np.clip(j(params.sharp_amount), 0.0, 1.0)),
        scale=j(params.scale, 1.0),
        shift=tuple(j(v) for v in params.shift),
        deform=tuple(j(v) for v in params.deform),
        deform_phase=tuple(float(p + rng.uniform(-amount, amount)) for p in params.deform_phase),
        mask_blur=j(params.mask_blur),
    )


# ---------------------------------------------------------------------------- mask


def _size_hw(size) -> tuple[int, int]:
    if np.isscalar(size):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (Andrew's monotone chain) of a few 2-D points."""
    pts = sorted(map(tuple, points))
    if len(pts) <= 2:
        return np.asarray(pts, dtype=np.float64)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


def _face_points(landmarks: np.ndarray, h: int, w: int) -> tuple[np.ndarray, float]:
    """Outline points of the face (landmarks + forehead, chin, jaw, temples) and face size."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    le, re, _nose, lmo, rmo = lm
    eye_mid, mouth_mid = (le + re) / 2, (lmo + rmo) / 2
    iod = float(np.linalg.norm(re - le))
    em = float(np.linalg.norm(eye_mid - mouth_mid))
    if not np.isfinite(lm).all() or iod < 2 or em < 2:
        # unusable landmarks: a face-sized ellipse in the middle of the crop
        face = min(h, w) / 1.4
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts = np.stack([w / 2 + 0.4 * face * np.cos(t), h / 2 + 0.5 * face * np.sin(t)], 1)
        return pts, face
    x_axis = (re - le) / iod
    up = (eye_mid - mouth_mid) / em
    pts = np.stack([
        le, re, lmo, rmo, _nose,
        le + 0.65 * em * up, re + 0.65 * em * up, eye_mid + 0.8 * em * up,  # forehead
        mouth_mid - 0.45 * em * up,  # chin
        lmo - 0.2 * em * up - 0.1 * iod * x_axis, rmo - 0.2 * em * up + 0.1 * iod * x_axis,  # jaw
        le - 0.25 * iod * x_axis, re + 0.25 * iod * x_axis,  # temples / cheeks
    ])
    face = max(2.5 * iod, 2.6 * em)
    return pts, face


def face_mask(landmarks: np.ndarray, size, params: BlendParams, config: SBIConfig = SBIConfig()) -> np.ndarray:
    """Soft face mask ``(H, W)`` float32 in [0, 1] (1 on the inner face, 0 far outside).

    The convex hull of the landmarks plus forehead/chin/jaw points is grown by
    ``config.mask_dilate`` of the face size, deformed radially by a smooth random
    function of angle (``params.deform``), filled, and its edge blurred with a Gaussian of
    ``params.mask_blur`` of the crop side. The blend ratio is *not* applied here.
    ``size`` is the crop side (or ``(H, W)``).
    """
    h, w = _size_hw(size)
    pts, face = _face_points(landmarks, h, w)
    hull = _convex_hull(pts)
    centre = hull.mean(axis=0)
    # densify the outline so the radial deformation bends the edges, not only the corners
    nxt = np.roll(hull, -1, axis=0)
    t = np.linspace(0, 1, 8, endpoint=False)[None, :, None]
    outline = (hull[:, None] + t * (nxt - hull)[:, None]).reshape(-1, 2)
    off = outline - centre
    radius = np.linalg.norm(off, axis=1, keepdims=True)
    direction = off / np.maximum(radius, 1e-6)
    theta = np.arctan2(off[:, 1], off[:, 0])
    factor = 1.0 + sum(a * np.cos((k + 1) * theta + p) for k, (a, p) in enumerate(zip(params.deform, params.deform_phase)))
    factor = np.clip(factor, 0.5, 1.5)[:, None]
    outline = centre + direction * (radius * factor + config.mask_dilate * face)

    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in outline], fill=255)
    sigma = params.mask_blur * min(h, w)
    if sigma > 0.1:
        img = img.filter(ImageFilter.GaussianBlur(sigma))
    mask = np.asarray(img, dtype=np.float32)
    peak = float(mask.max())
    if peak <= 0:
        return np.zeros((h, w), np.float32)
    return np.clip(mask / peak, 0.0, 1.0)


# ---------------------------------------------------------------------------- source


def _colour(x: np.ndarray, p: BlendParams) -> np.ndarray:
    """Saturation, contrast, brightness, per-channel shift on float 0..255 RGB."""
    if p.saturation != 1.0:
        grey = x @ np.asarray([0.299, 0.587, 0.114], np.float32)
        x = grey[..., None] + p.saturation * (x - grey[..., None])
    if p.contrast != 1.0:
        mean = float((x @ np.asarray([0.299, 0.587, 0.114], np.float32)).mean())
        x = mean + p.contrast * (x - mean)
    if p.brightness != 1.0:
        x = x * p.brightness
    if any(p.channel_shift):
        x = x + np.asarray(p.channel_shift, np.float32)
    return x


def _sharpness(img: Image.Image, p: BlendParams, side: int) -> Image.Image:
    k = side / _REF_SIZE
    if p.sharpness == "blur":
        return img.filter(ImageFilter.GaussianBlur((0.4 + 1.4 * p.sharp_amount) * k))
    if p.sharpness == "sharpen":
        return img.filter(ImageFilter.UnsharpMask(radius=2.0 * k, percent=int(60 + 120 * p.sharp_amount), threshold=0))
    return img


def _geometry(img: Image.Image, p: BlendParams, centre: np.ndarray) -> Image.Image:
    """Zoom by ``p.scale`` about ``centre`` and shift by ``p.shift`` (edges replicated)."""
    w, h = img.size
    dx, dy = p.shift[0] * w, p.shift[1] * h
    if p.scale == 1.0 and dx == 0 and dy == 0:
        return img
    pad = int(np.ceil(abs(p.scale - 1) * max(w, h) + max(abs(dx), abs(dy)))) + 2
    arr = np.pad(np.asarray(img), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    big = Image.fromarray(arr)
    # output pixel (u, v) of the crop samples input (cx + (u - cx - dx) / s, ...) of the crop
    s = p.scale
    cx, cy = float(centre[0]), float(centre[1])
    a, e = 1 / s, 1 / s
    c = cx - (cx + dx) / s + pad  # in padded coordinates (output offset 0, input offset pad)
    f = cy - (cy + dy) / s + pad
    out = big.transform((w, h), Image.Transform.AFFINE, (a, 0, c, 0, e, f), resample=Image.Resampling.BILINEAR)
    return out


def make_source(image: np.ndarray, landmarks: np.ndarray, params: BlendParams) -> np.ndarray:
    """The transformed copy of ``image`` that gets blended in (uint8, same shape)."""
    h, w = image.shape[:2]
    img = Image.fromarray(np.ascontiguousarray(image))
    img = _sharpness(img, params, min(h, w))
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    centre = lm.mean(axis=0) if np.isfinite(lm).all() else np.array([w / 2, h / 2])
    img = _geometry(img, params, centre)
    x = _colour(np.asarray(img, dtype=np.float32), params)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- blend


def self_blend(
    image: np.ndarray, landmarks: np.ndarray, params: BlendParams, config: SBIConfig = SBIConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """One self-blended image: ``(fake uint8 (H,W,3), mask float32 (H,W))``.

    ``fake = m * source + (1 - m) * image`` with ``m = face_mask(...) * blend_ratio``, the
    returned mask (the blending-boundary target for a Face X-ray style head). Pixels with
    ``m == 0`` are exactly the input.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H,W,3) uint8, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    mask = face_mask(landmarks, (h, w), params, config) * np.float32(params.blend_ratio)
    if not mask.any():
        return image.copy(), mask.astype(np.float32)
    source = make_source(image, landmarks, params).astype(np.float32)
    target = image.astype(np.float32)
    m = mask[..., None]
    fake = target + m * (source - target)
    return np.clip(np.rint(fake), 0, 255).astype(np.uint8), mask.astype(np.float32)


def self_blend_clip(
    frames: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    config: SBIConfig = SBIConfig(),
    jitter: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Self-blend every frame of a clip ``(T,H,W,3)`` with one parameter set.

    One :class:`BlendParams` is drawn for the clip; each frame uses it jittered by
    ``jitter`` (see :func:`jitter_params`; 0 = identical). Landmarks are ``(T,5,2)``.
    Returns ``(fakes uint8 (T,H,W,3), masks float32 (T,H,W))``.
    """
    frames = np.asarray(frames)
    landmarks = np.asarray(landmarks)
    if frames.ndim != 4 or landmarks.shape[:1] != frames.shape[:1]:
        raise ValueError(f"frames {frames.shape} and landmarks {landmarks.shape} do not match")
    base = sample_params(rng, config)
    fakes = np.empty_like(frames, dtype=np.uint8)
    masks = np.empty(frames.shape[:3], np.float32)
    for t in range(frames.shape[0]):
        p = jitter_params(base, rng, jitter) if jitter > 0 else base
        fakes[t], masks[t] = self_blend(frames[t], landmarks[t], p, config)
    return fakes, masks


TEMPORAL_KINDS = ("flicker", "partial")


def temporal_self_blend_clip(
    frames: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    kind: str,
    config: SBIConfig = SBIConfig(),
    flicker: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temporal pseudo-fakes: what a face swap does over time that one frame does not show.

    ``kind``:

    * ``"flicker"``: each frame gets its own blend, far from the clip's (parameters jittered
      by ``flicker`` and a fresh blend ratio per frame), like a swap whose colour match and
      mask are re-estimated frame by frame and do not hold still;
    * ``"partial"``: one ordinary clip blend over a contiguous span of the clip only (at
      least a quarter of it and never all of it), like a swap that drops out or starts
      mid-clip.

    Returns ``(fakes uint8 (T,H,W,3), masks float32 (T,H,W), blended bool (T,))``;
    ``blended`` says which frames were touched (the per-frame labels). Clips of one frame
    have no time to vary: they are refused.
    """
    frames = np.asarray(frames)
    landmarks = np.asarray(landmarks)
    if kind not in TEMPORAL_KINDS:
        raise ValueError(f"kind must be one of {TEMPORAL_KINDS}, got {kind!r}")
    if frames.ndim != 4 or landmarks.shape[:1] != frames.shape[:1]:
        raise ValueError(f"frames {frames.shape} and landmarks {landmarks.shape} do not match")
    n = frames.shape[0]
    if n < 2:
        raise ValueError("a temporal pseudo-fake needs a clip of at least 2 frames")
    blended = np.zeros(n, bool)
    if kind == "flicker":
        base = sample_params(rng, config)
        ratios = np.asarray(config.blend_ratios, dtype=np.float64)
        fakes = np.empty_like(frames, dtype=np.uint8)
        masks = np.empty(frames.shape[:3], np.float32)
        for t in range(n):
            p = dataclasses.replace(jitter_params(base, rng, flicker), blend_ratio=float(rng.choice(ratios)))
            fakes[t], masks[t] = self_blend(frames[t], landmarks[t], p, config)
        blended[:] = True
        return fakes, masks, blended
    length = int(rng.integers(max(1, n // 4), n))  # 1/4 of the clip .. all but one frame
    start = int(rng.integers(0, n - length + 1))
    span = slice(start, start + length)
    fakes = np.array(frames, dtype=np.uint8, copy=True)
    masks = np.zeros(frames.shape[:3], np.float32)
    fakes[span], masks[span] = self_blend_clip(frames[span], landmarks[span], rng, config)
    blended[span] = True
    return fakes, masks, blended


__all__ = [
    "TEMPORAL_KINDS",
    "temporal_self_blend_clip",
    "SBIConfig",
    "BlendParams",
    "sample_params",
    "jitter_params",
    "face_mask",
    "make_source",
    "self_blend",
    "self_blend_clip",
]
