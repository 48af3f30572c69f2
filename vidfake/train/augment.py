"""Clip-consistent augmentations that imitate what wild video does to faces.

Training faces (FF++, DFDC, self-blended images) are comparatively clean, while the
faces the detector meets in the wild have been through cameras, editors, uploads and
re-uploads. Each op below imitates one of those stages so the model learns blending /
temporal artefacts that survive them, instead of relying on pristine-pixel cues that
the first re-encode destroys:

* **flip** (geometric) -- faces appear mirrored (selfie cameras mirror the preview);
  removes the left/right bias of a dataset. The only op that moves pixels, so it is the
  only one applied to ``masks`` (SBI blend masks stay aligned with the clip).
* **colour jitter** (brightness, contrast, saturation, hue) -- white balance, exposure,
  camera tone curves and social-media filters shift colour globally; blend boundaries
  must not be detected by a colour mismatch that grading wipes out or creates.
* **cutout** -- hands, microphones, glasses and overlays occlude part of the face; the
  model must not depend on one facial region. Same rectangle in every frame (an
  occluder that jumps every frame would be a fake temporal cue). Masks are unchanged.
* **rescale** (downscale, then upscale back) -- faces are small in the source frame and
  are resampled by players, editors and our own face crop; this removes the
  high-frequency detail that pristine-data detectors over-fit to.
* **blur** -- defocus, motion blur and denoising/beauty filters soften faces.
* **noise** -- sensor noise in low light. By default the same noise field is used for
  every frame so the augmentation never injects frame-to-frame flicker (flicker is a
  fake cue the temporal model should learn from content); ``noise_per_frame=True``
  draws independent noise per frame like a real sensor.
* **JPEG** -- thumbnails, screenshots and frame-by-frame pipelines are JPEG-coded:
  8x8 block artefacts and chroma subsampling.
* **black border** -- a face near the frame's edge, or a face photo whose face fills the
  picture (aligned face datasets), reaches past the frame, and the crop pads that part
  black (:mod:`vidfake.extract.crop`). Put on real and fake crops alike, at the end of the
  chain as the crop does, so padding never tells one class from the other. The blend
  masks are zeroed under the border (nothing blended shows there).
* **video recompression** -- nearly every wild video was (re)encoded by a platform with
  a lossy codec: blocking, ringing, smoothing of fine texture and temporal prediction
  (P/B frames) that partially copies detail across frames. A real round trip (PyAV, in
  memory) through one of ``codecs`` reproduces that: H.264 (CRF), VP9 (CRF), MPEG-1,
  MPEG-2 or MPEG-4 Part 2 (a fixed quantiser), each with its own block pattern and
  quantisation, so a detector cannot tie one codec's look to a label. For a single image
  (T < 2) a JPEG round trip is used instead, unless ``codec_on_images`` (then the frame is
  coded as a key frame, as every video's first frame is). Video recompression and JPEG
  are exclusive.

Ops run in the order of a capture-to-upload chain: flip, colour, cutout, rescale, blur,
noise, compression, then the crop's black border. Every random choice for a clip is drawn once by
:func:`sample_augment` into a frozen :class:`AugmentParams` and applied identically to
every frame by :func:`apply_augment` (a clip is uint8 ``(T, H, W, 3)``, an image is T=1).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "AugmentConfig",
    "AugmentParams",
    "sample_augment",
    "apply_augment",
    "augment_clip",
    "jpeg_roundtrip",
    "h264_roundtrip",
    "video_roundtrip",
    "VIDEO_CODECS",
]

_DOWN_MODES = ("area", "bilinear", "bicubic")
_UP_MODES = ("bilinear", "bicubic", "nearest")
_COLOR_OPS = ("brightness", "contrast", "saturation", "hue")

# the recompression codecs: name -> (PyAV encoder, decoder)
VIDEO_CODECS = {
    "h264": ("libx264", "h264"),
    "vp9": ("libvpx-vp9", "vp9"),
    "mpeg1": ("mpeg1video", "mpeg1video"),
    "mpeg2": ("mpeg2video", "mpeg2video"),
    "mpeg4": ("mpeg4", "mpeg4"),
}


def _check_range(name: str, rng: tuple, lo: float, hi: float) -> None:
    if len(rng) != 2 or not (lo <= rng[0] <= rng[1] <= hi):
        raise ValueError(f"{name} must be (lo, hi) with {lo} <= lo <= hi <= {hi}, got {rng}")


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and parameter ranges of the augmentations (ranges are inclusive)."""

    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 95)
    p_video_codec: float = 0.2
    crf: tuple[int, int] = (23, 40)  # H.264
    codec_preset: str = "veryfast"
    codecs: tuple[str, ...] = ("h264",)  # drawn uniformly; names of VIDEO_CODECS
    vp9_crf: tuple[int, int] = (30, 60)
    mpeg_quantiser: tuple[int, int] = (2, 20)  # MPEG-1/2/4 Part 2 (2 best, 31 worst)
    codec_on_images: bool = False  # code single frames with the video codec (a key frame), not JPEG
    p_rescale: float = 0.3
    scale: tuple[float, float] = (0.35, 0.9)
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_noise: float = 0.2
    noise_std: tuple[float, float] = (2.0, 8.0)
    noise_per_frame: bool = False
    p_color: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    p_cutout: float = 0.2
    cutout_frac: tuple[float, float] = (0.1, 0.3)
    p_flip: float = 0.5
    p_border: float = 0.1
    border_frac: tuple[float, float] = (0.05, 0.3)  # band width per padded side, of the crop side

    def __post_init__(self) -> None:
        for name in ("p_jpeg", "p_video_codec", "p_rescale", "p_blur", "p_noise", "p_color",
                     "p_cutout", "p_flip", "p_border"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)
        _check_range("crf", self.crf, 0, 51)
        _check_range("vp9_crf", self.vp9_crf, 0, 63)
        _check_range("mpeg_quantiser", self.mpeg_quantiser, 1, 31)
        unknown = [name for name in self.codecs if name not in VIDEO_CODECS]
        if not self.codecs or unknown:
            raise ValueError(f"codecs must name some of {sorted(VIDEO_CODECS)}, got {list(self.codecs)}")
        _check_range("scale", self.scale, 1e-6, 1.0)
        _check_range("blur_sigma", self.blur_sigma, 1e-6, math.inf)
        _check_range("noise_std", self.noise_std, 0.0, math.inf)
        _check_range("cutout_frac", self.cutout_frac, 0.0, 1.0)
        _check_range("border_frac", self.border_frac, 0.0, 0.5)
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError("hue must be in [0, 0.5]")


@dataclass(frozen=True)
class AugmentParams:
    """Every random choice for one clip; the defaults are the identity transform.

    ``size`` is the ``(H, W)`` the params were sampled for (the cutout box is in pixels).
    ``crf`` set means recompression with ``codec`` at that quality (the CRF of H.264 and
    VP9, the quantiser of the MPEG codecs); for a clip with T < 2 it falls back to JPEG at
    ``jpeg_quality`` unless ``codec_on_images``. ``jpeg_quality`` alone means a JPEG round trip.
    """

    size: tuple[int, int]
    flip: bool = False
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    color_order: tuple[int, ...] = (0, 1, 2, 3)
    cutout: tuple[int, int, int, int] | None = None  # (y0, x0, y1, x1), end-exclusive
    cutout_fill: tuple[int, int, int] = (0, 0, 0)
    scale: float | None = None
    scale_down_mode: str = "area"
    scale_up_mode: str = "bilinear"
    blur_sigma: float | None = None
    noise_std: float | None = None
    noise_seed: int = 0
    noise_per_frame: bool = False
    jpeg_quality: int | None = None
    crf: int | None = None
    codec_preset: str = "veryfast"
    codec: str = "h264"
    codec_on_images: bool = False
    border: tuple[int, int, int, int] | None = None  # black band (top, bottom, left, right), pixels

    @property
    def has_color(self) -> bool:
        """Whether any colour setting differs from the identity."""
        return (self.brightness, self.contrast, self.saturation, self.hue) != (1.0, 1.0, 1.0, 0.0)


# ---------------------------------------------------------------------------------------
# sampling


def _jitter(rng: np.random.Generator, amount: float) -> float:
    return float(rng.uniform(1.0 - amount, 1.0 + amount)) if amount > 0 else 1.0


def sample_augment(rng: np.random.Generator, config: AugmentConfig,
                   size: tuple[int, int]) -> AugmentParams:
    """Draw every random choice for one clip of frame size ``size = (H, W)``.

    A fixed number of draws per op keeps the stream simple; the same rng state always
    gives the same params.
    """
    H, W = int(size[0]), int(size[1])
    if H < 1 or W < 1:
        raise ValueError(f"size must be positive (H, W), got {size}")
    kw: dict = {"size": (H, W)}

    kw["flip"] = bool(rng.random() < config.p_flip)

    if rng.random() < config.p_color:
        kw["brightness"] = _jitter(rng, config.brightness)
        kw["contrast"] = _jitter(rng, config.contrast)
        kw["saturation"] = _jitter(rng, config.saturation)
        kw["hue"] = float(rng.uniform(-config.hue, config.hue)) if config.hue > 0 else 0.0
        kw["color_order"] = tuple(int(i) for i in rng.permutation(4))

    if rng.random() < config.p_cutout:
        fh, fw = rng.uniform(*config.cutout_frac, size=2)
        ch = min(H, max(1, int(round(fh * H))))
        cw = min(W, max(1, int(round(fw * W))))
        y0 = int(rng.integers(0, H - ch + 1))
        x0 = int(rng.integers(0, W - cw + 1))
        kw["cutout"] = (y0, x0, y0 + ch, x0 + cw)
        kw["cutout_fill"] = tuple(int(v) for v in rng.integers(0, 256, size=3))

    if rng.random() < config.p_rescale:
        kw["scale"] = float(rng.uniform(*config.scale))
        kw["scale_down_mode"] = _DOWN_MODES[int(rng.integers(len(_DOWN_MODES)))]
        kw["scale_up_mode"] = _UP_MODES[int(rng.integers(len(_UP_MODES)))]

    if rng.random() < config.p_blur:
        kw["blur_sigma"] = float(rng.uniform(*config.blur_sigma))

    if rng.random() < config.p_noise:
        kw["noise_std"] = float(rng.uniform(*config.noise_std))
        kw["noise_seed"] = int(rng.integers(0, 2**63 - 1))
        kw["noise_per_frame"] = bool(config.noise_per_frame)

    if rng.random() < config.p_video_codec:
        kw["crf"] = int(rng.integers(config.crf[0], config.crf[1] + 1))
        kw["codec_preset"] = config.codec_preset
        if config.codecs != ("h264",):  # (H.264 alone draws as it always did)
            codec = config.codecs[int(rng.integers(len(config.codecs)))]
            quality = {"h264": config.crf, "vp9": config.vp9_crf}.get(codec, config.mpeg_quantiser)
            kw["codec"] = codec
            kw["crf"] = int(rng.integers(quality[0], quality[1] + 1))
        kw["codec_on_images"] = config.codec_on_images
        # fallback for single images
        kw["jpeg_quality"] = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    elif rng.random() < config.p_jpeg:
        kw["jpeg_quality"] = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))

    if rng.random() < config.p_border:  # drawn last: the other ops' draws stay as they were
        sides = rng.random(4) < 0.5
        if not sides.any():  # a face photo smaller than the crop square: padded all round
            sides[:] = True
        fracs = rng.uniform(*config.border_frac, size=4)
        extents = (H, H, W, W)
        kw["border"] = tuple(int(round(f * e)) if on else 0 for on, f, e in zip(sides, fracs, extents))

    return AugmentParams(**kw)


# ---------------------------------------------------------------------------------------
# ops (float ops on a (T, 3, H, W) float32 tensor in [0, 255])

_GRAY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32)
# RGB <-> YIQ; a hue shift is a rotation of the (I, Q) chroma plane.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.595716, -0.274453, -0.321263],
                         [0.211456, -0.522591, 0.311135]], dtype=torch.float32)
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("tchw,c->thw", x, _GRAY).unsqueeze(1)


def _color(x: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    for op in p.color_order:
        name = _COLOR_OPS[op]
        if name == "brightness" and p.brightness != 1.0:
            x = x * p.brightness
        elif name == "contrast" and p.contrast != 1.0:
            mean = _gray(x).mean()  # one mean for the whole clip: same map for every frame
            x = mean + p.contrast * (x - mean)
        elif name == "saturation" and p.saturation != 1.0:
            g = _gray(x)
            x = g + p.saturation * (x - g)
        elif name == "hue" and p.hue != 0.0:
            a = 2.0 * math.pi * p.hue
            c, s = math.cos(a), math.sin(a)
            rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float32)
            m = _YIQ2RGB @ rot @ _RGB2YIQ
            x = torch.einsum("ij,tjhw->tihw", m, x)
        else:
            continue
        x = x.clamp(0.0, 255.0)
    return x


def _rescale(x: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    H, W = x.shape[-2:]
    small = (max(1, int(round(H * p.scale))), max(1, int(round(W * p.scale))))
    if small == (H, W):
        return x
    if p.scale_down_mode == "area":
        y = F.interpolate(x, size=small, mode="area")
    else:
        y = F.interpolate(x, size=small, mode=p.scale_down_mode, align_corners=False, antialias=True)
    if p.scale_up_mode == "nearest":
        y = F.interpolate(y, size=(H, W), mode="nearest")
    else:
        y = F.interpolate(y, size=(H, W), mode=p.scale_up_mode, align_corners=False)
    return y.clamp(0.0, 255.0)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3.0 * sigma)))
    k = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    T, C, H, W = x.shape
    y = x.reshape(T * C, 1, H, W)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(T, C, H, W)


def _noise(x: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    T, C, H, W = x.shape
    g = np.random.default_rng(p.noise_seed)
    shape = (T, C, H, W) if p.noise_per_frame else (1, C, H, W)
    n = torch.from_numpy(g.standard_normal(shape, dtype=np.float32))
    return (x + p.noise_std * n).clamp(0.0, 255.0)


# ---------------------------------------------------------------------------------------
# compression round trips (uint8 (T, H, W, 3) in and out)


def jpeg_roundtrip(clip: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode every frame as JPEG at ``quality`` with Pillow, in memory."""
    out = np.empty_like(clip)
    for t, frame in enumerate(clip):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as im:
            out[t] = np.asarray(im.convert("RGB"))
    return out


def h264_roundtrip(clip: np.ndarray, crf: int, preset: str = "veryfast", fps: int = 25) -> np.ndarray:
    """Encode the clip with libx264 (yuv420p, ``crf``) and decode it back, in memory."""
    return video_roundtrip(clip, "h264", crf, preset=preset, fps=fps)


def video_roundtrip(clip: np.ndarray, codec: str, quality: int, preset: str = "veryfast", fps: int = 25) -> np.ndarray:
    """Encode the clip with ``codec`` (a :data:`VIDEO_CODECS` name, yuv420p) at ``quality``
    (CRF for H.264 and VP9, a fixed quantiser 1-31 for the MPEG codecs) and decode it back,
    in memory. A one-frame clip becomes one key frame.

    Odd frame sizes are edge-padded to even for 4:2:0 and cropped back afterwards.
    """
    if codec not in VIDEO_CODECS:
        raise ValueError(f"unknown codec {codec!r}; one of {sorted(VIDEO_CODECS)}")
    encoder, decoder = VIDEO_CODECS[codec]
    T, H, W, _ = clip.shape
    ph, pw = H % 2, W % 2
    src = np.pad(clip, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge") if (ph or pw) else clip
    enc = av.CodecContext.create(encoder, "w")
    enc.width, enc.height = W + pw, H + ph
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps, 1)
    if codec == "h264":
        enc.options = {"crf": str(int(quality)), "preset": preset}
    elif codec == "vp9":  # constant quality (b=0), fast settings
        enc.options = {"crf": str(int(quality)), "b": "0", "deadline": "realtime", "cpu-used": "8"}
    else:  # MPEG-1/2/4 Part 2: a fixed quantiser, as `ffmpeg -q:v` gives
        enc.options = {"qmin": str(int(quality)), "qmax": str(int(quality))}
    enc.thread_count = 1  # deterministic and cheap for small face clips
    dec = av.CodecContext.create(decoder, "r")
    dec.thread_count = 1
    decoded: list[np.ndarray] = []

    def _decode(packets) -> None:
        for pkt in packets:
            for fr in dec.decode(pkt):
                decoded.append(fr.to_ndarray(format="rgb24"))

    for t in range(T):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(src[t]), format="rgb24")
        frame.pts = t
        _decode(enc.encode(frame))
    _decode(enc.encode(None))
    for fr in dec.decode(None):
        decoded.append(fr.to_ndarray(format="rgb24"))
    if len(decoded) != T:
        raise RuntimeError(f"{codec} round trip returned {len(decoded)} frames for {T}")
    return np.stack(decoded)[:, :H, :W]


# ---------------------------------------------------------------------------------------
# apply


def _mask_w_axis(masks: np.ndarray, clip_shape: tuple[int, ...]) -> int:
    """Width axis of ``masks``; raises if the shape does not match the clip."""
    T, H, W, _ = clip_shape
    if masks.ndim == 2 and masks.shape == (H, W):  # one mask for the whole clip
        return 1
    if masks.ndim in (3, 4) and masks.shape[:3] == (T, H, W):  # (T, H, W) or (T, H, W, C)
        return 2
    raise ValueError(f"masks shape {masks.shape} does not match clip {clip_shape} "
                     "(expected (H, W), (T, H, W) or (T, H, W, C))")


def apply_augment(clip: np.ndarray, params: AugmentParams,
                  masks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply ``params`` identically to every frame of ``clip`` (uint8 ``(T, H, W, 3)``).

    Returns a new uint8 clip of the same shape and ``masks`` (``(H, W)``, ``(T, H, W)`` or
    ``(T, H, W, C)``) transformed by the geometric ops only (the flip), or None.
    """
    clip = np.asarray(clip)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] < 1:
        raise ValueError(f"clip must be uint8 (T>=1, H, W, 3), got {clip.dtype} {clip.shape}")
    T, H, W, _ = clip.shape
    if tuple(params.size) != (H, W):
        raise ValueError(f"params were sampled for size {params.size}, clip frames are {(H, W)}")

    out_masks = None
    if masks is not None:
        masks = np.asarray(masks)
        w_axis = _mask_w_axis(masks, clip.shape)
        out_masks = np.flip(masks, axis=w_axis).copy() if params.flip else masks.copy()

    out = clip[:, :, ::-1] if params.flip else clip

    float_ops = (params.has_color or params.cutout is not None or params.scale is not None
                 or params.blur_sigma is not None or params.noise_std is not None)
    if float_ops:
        x = torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2).float()
        if params.has_color:
            x = _color(x, params)
        if params.cutout is not None:
            y0, x0, y1, x1 = params.cutout
            x[:, :, y0:y1, x0:x1] = torch.tensor(params.cutout_fill, dtype=torch.float32).view(1, 3, 1, 1)
        if params.scale is not None:
            x = _rescale(x, params)
        if params.blur_sigma is not None:
            x = _blur(x, params.blur_sigma)
        if params.noise_std is not None:
            x = _noise(x, params)
        out = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()

    if params.crf is not None and (T >= 2 or params.codec_on_images):
        out = video_roundtrip(np.ascontiguousarray(out), params.codec, params.crf, params.codec_preset)
    elif params.jpeg_quality is not None:
        out = jpeg_roundtrip(np.ascontiguousarray(out), params.jpeg_quality)

    out = np.ascontiguousarray(out)
    if out is clip:
        out = clip.copy()
    if params.border is not None:
        out = _black_border(out, params.border, h_axis=1, w_axis=2)
        if out_masks is not None:
            w_axis = _mask_w_axis(out_masks, clip.shape)
            out_masks = _black_border(out_masks, params.border, h_axis=w_axis - 1, w_axis=w_axis)
    return out, out_masks


def _black_border(array: np.ndarray, border: tuple[int, int, int, int], h_axis: int, w_axis: int) -> np.ndarray:
    """Zero bands of ``(top, bottom, left, right)`` pixels along the given axes (in place)."""
    top, bottom, left, right = border
    height, width = array.shape[h_axis], array.shape[w_axis]
    for axis, index in ((h_axis, slice(0, top)), (h_axis, slice(height - bottom, height)),
                        (w_axis, slice(0, left)), (w_axis, slice(width - right, width))):
        if index.stop > index.start:
            view = [slice(None)] * array.ndim
            view[axis] = index
            array[tuple(view)] = 0
    return array


def augment_clip(clip: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None,
                 masks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample params for ``clip`` from ``rng`` / ``config`` and apply them (see :func:`apply_augment`)."""
    config = config if config is not None else AugmentConfig()
    clip = np.asarray(clip)
    if clip.ndim != 4:
        raise ValueError(f"clip must be (T, H, W, 3), got shape {clip.shape}")
    params = sample_augment(rng, config, clip.shape[1:3])
    return apply_augment(clip, params, masks)
