"""Self-made mouth fakes: the lip-sync analogue of self-blended images.

A lip-sync tool (Wav2Lip and its descendants) keeps a real video and re-generates its
lower face, usually at low resolution (96 px faces), and pastes it back through a soft
mask. What gives such a fake away is the mouth region over time: softer than the rest of
the face, a seam on the lower face, a mouth that moves with other speech than the face.
These fakes are made from real talking clips alone, on the CPU, as many as wanted:

* the lower face comes from the same clip at *another moment* (so it moves with other
  words than the audio and the upper face), or from the same frame (the seam and the
  re-rendering alone);
* it is aligned to each target frame by a similarity transform of the nose and the mouth
  corners (``align_to``), re-rendered through a down- and up-scale and a blur, as a
  low-resolution generator would, optionally colour-matched to the target;
* and blended through a soft elliptical lower-face mask (``lower_face_mask``) that covers
  the mouth and stops below the nose. The audio is left as it was.

Inputs are ``vidfake extract`` crops: square RGB uint8 frames with the 5 MTCNN landmarks
(left eye, right eye, nose, left / right mouth corner) in crop pixels. numpy and Pillow only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["MouthFakeConfig", "MouthFakeParams", "align_to", "lower_face_mask", "mouth_fake_clip", "sample_params"]

_NOSE, _MOUTH_LEFT, _MOUTH_RIGHT = 2, 3, 4


@dataclass(frozen=True)
class MouthFakeConfig:
    """The ranges every mouth fake's parameters are drawn from."""

    other_time_prob: float = 0.5  # lower face from another moment of the clip (else the same frame)
    render_scale: tuple[float, float] = (0.3, 0.7)  # down-scale factor before scaling back up (96 px of 224: 0.43)
    blur: tuple[float, float] = (0.0, 0.012)  # Gaussian sigma after re-rendering, fraction of the crop side
    mask_width: tuple[float, float] = (1.0, 1.4)  # ellipse half-width, in mouth widths
    mask_height: tuple[float, float] = (0.9, 1.3)  # ellipse half-height, in mouth widths
    feather: tuple[float, float] = (0.02, 0.06)  # Gaussian sigma of the mask edge, fraction of the crop side
    colour_match_prob: float = 0.5  # match the source's colour statistics to the target inside the mask


@dataclass(frozen=True)
class MouthFakeParams:
    """Every random choice of one mouth fake (one set per clip)."""

    offset: int = 0  # frames between a target frame and the frame its lower face comes from (0: the same)
    render_scale: float = 1.0
    blur: float = 0.0
    mask_width: float = 1.2
    mask_height: float = 1.1
    feather: float = 0.04
    colour_match: bool = False


def sample_params(rng: np.random.Generator, n_frames: int, config: MouthFakeConfig = MouthFakeConfig()) -> MouthFakeParams:
    """Draw one clip's parameters; an offset needs at least 2 frames (else the same frame)."""
    def between(bounds: tuple[float, float]) -> float:
        return float(rng.uniform(*bounds))

    offset = 0
    if n_frames >= 2 and rng.random() < config.other_time_prob:
        offset = int(rng.integers(max(1, n_frames // 4), n_frames))
    return MouthFakeParams(offset, between(config.render_scale), between(config.blur), between(config.mask_width),
                           between(config.mask_height), between(config.feather),
                           bool(rng.random() < config.colour_match_prob))


def lower_face_mask(landmarks: np.ndarray, size: int, width: float = 1.2, height: float = 1.1,
                    feather: float = 0.04) -> np.ndarray:
    """Soft lower-face mask ``(size, size)`` float32 in [0, 1]: an ellipse around the mouth
    (``width`` and ``height`` in mouth widths), its top cut a little below the nose tip so the
    upper face stays the target's, the edge blurred by ``feather`` of the crop side."""
    lm = np.asarray(landmarks, np.float64).reshape(5, 2)
    left, right, nose = lm[_MOUTH_LEFT], lm[_MOUTH_RIGHT], lm[_NOSE]
    centre = (left + right) / 2
    mouth_width = max(float(np.linalg.norm(right - left)), 1.0)
    rx, ry = width * mouth_width, height * mouth_width
    top = nose[1] + 0.25 * (centre[1] - nose[1])  # between nose tip and mouth
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    draw.ellipse([centre[0] - rx, centre[1] - ry, centre[0] + rx, centre[1] + ry], fill=255)
    draw.rectangle([0, 0, size, max(0.0, top)], fill=0)
    sigma = feather * size
    if sigma > 0.1:
        img = img.filter(ImageFilter.GaussianBlur(sigma))
    mask = np.asarray(img, np.float32) / 255.0
    return mask


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking ``src`` points
    onto ``dst`` in the least-squares sense (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(sigma) @ flip) / max((s ** 2).sum() / len(src), 1e-12))
    return np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])


def align_to(source: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """``source`` warped so its nose and mouth corners land on the target's (uint8, same shape)."""
    points = [_NOSE, _MOUTH_LEFT, _MOUTH_RIGHT]
    src = np.asarray(source_landmarks, np.float64).reshape(5, 2)[points]
    dst = np.asarray(target_landmarks, np.float64).reshape(5, 2)[points]
    forward = np.vstack([_similarity(src, dst), [0, 0, 1]])
    inverse = np.linalg.inv(forward)[:2]  # PIL maps output pixels to input pixels
    h, w = source.shape[:2]
    image = Image.fromarray(np.ascontiguousarray(source))
    return np.asarray(image.transform((w, h), Image.Transform.AFFINE, tuple(inverse.ravel()),
                                      resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128)))


def _render(image: np.ndarray, scale: float, blur: float) -> np.ndarray:
    """Down- and up-scaled (as a low-resolution generator's output), then blurred."""
    h, w = image.shape[:2]
    img = Image.fromarray(image)
    if scale < 1.0:
        small = (max(8, round(w * scale)), max(8, round(h * scale)))
        img = img.resize(small, Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BICUBIC)
    if blur * w > 0.1:
        img = img.filter(ImageFilter.GaussianBlur(blur * w))
    return np.asarray(img)


def _match_colour(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` with its per-channel mean and spread inside ``mask`` set to the target's."""
    weights = mask[..., None] / max(float(mask.sum()), 1e-6)
    out = source.astype(np.float32)
    for c in range(3):
        s_mean, t_mean = float((out[..., c] * weights[..., 0]).sum()), float((target[..., c] * weights[..., 0]).sum())
        s_std = float(np.sqrt(((out[..., c] - s_mean) ** 2 * weights[..., 0]).sum())) or 1.0
        t_std = float(np.sqrt(((target[..., c].astype(np.float32) - t_mean) ** 2 * weights[..., 0]).sum()))
        out[..., c] = (out[..., c] - s_mean) * (t_std / s_std) + t_mean
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def mouth_fake_clip(frames: np.ndarray, landmarks: np.ndarray, params: MouthFakeParams) -> tuple[np.ndarray, np.ndarray]:
    """A lip-sync pseudo-fake of a real clip ``(T,H,W,3)`` uint8 with landmarks ``(T,5,2)``:
    ``(fakes uint8 (T,H,W,3), masks float32 (T,H,W))``. Frame ``t``'s lower face comes from
    frame ``(t + offset) % T``, aligned, re-rendered, optionally colour-matched, and blended
    through its mask; pixels where the mask is 0 are exactly the input."""
    frames, landmarks = np.asarray(frames), np.asarray(landmarks, np.float64)
    if frames.ndim != 4 or frames.dtype != np.uint8 or landmarks.shape != (len(frames), 5, 2):
        raise ValueError(f"expected frames (T,H,W,3) uint8 and landmarks (T,5,2), got {frames.shape} {frames.dtype} "
                         f"and {landmarks.shape}")
    n, h, w = frames.shape[:3]
    if h != w:
        raise ValueError(f"expected square crops, got {h}x{w}")
    fakes = np.empty_like(frames)
    masks = np.empty((n, h, w), np.float32)
    for t in range(n):
        s = (t + params.offset) % n
        mask = lower_face_mask(landmarks[t], h, params.mask_width, params.mask_height, params.feather)
        source = align_to(frames[s], landmarks[s], landmarks[t]) if s != t else frames[t]
        source = _render(source, params.render_scale, params.blur)
        if params.colour_match:
            source = _match_colour(source, frames[t], mask)
        m = mask[..., None]
        fake = frames[t].astype(np.float32) + m * (source.astype(np.float32) - frames[t].astype(np.float32))
        fakes[t] = np.clip(np.rint(fake), 0, 255).astype(np.uint8)
        masks[t] = mask
    return fakes, masks
