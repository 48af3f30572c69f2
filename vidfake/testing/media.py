"""Synthetic test media, generated on the fly with PyAV.

Tests of decoding, face detection, tracking and cropping need *real encoded*
video (H.264 in mp4, AAC audio, rotation flags, variable frame rate, broken
files), but checking binary fixtures into the repository is heavy and opaque.
These helpers write small files (320x240, about 2 s) in well under a second,
and return the ground truth needed to assert on them (where the face is in each
frame, the true timestamps, the rotation flag).

Conventions used throughout:

* Frames are ``uint8`` RGB arrays shaped ``(H, W, 3)``; boxes are float
  ``x1, y1, x2, y2`` in pixels of the *display* (upright) frame.
* Every generated video (except the broken-file helpers) burns a binary frame
  index into a strip along the bottom edge of the display frame, so a test can
  ask :func:`read_frame_index` which frame a decoder actually returned.
* Rotation uses FFmpeg's display-matrix sign, which is what PyAV reports as
  ``VideoFrame.rotation``: the angle in degrees, counter-clockwise, by which
  the stored picture must be turned to be shown upright. So a stored frame is
  made upright with ``np.rot90(stored, k=rotation // 90)``. A typical phone
  portrait clip (legacy ``rotate=90`` tag, stored picture needs a 90 degree
  *clockwise* turn) reads back as ``rotation == -90`` and is fixed with
  ``np.rot90(stored, k=-1)``. FFmpeg reports a 180 degree flag as ``-180``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image

# --------------------------------------------------------------------------- #
# Ground-truth constants
# --------------------------------------------------------------------------- #

#: Region of ``skimage.data.astronaut()`` cut out as the pasted "head" patch
#: (x1, y1, x2, y2): hair, face and a little neck/collar, so a detector sees a
#: natural head rather than a floating face mask.
ASTRONAUT_HEAD_CROP: tuple[int, int, int, int] = (146, 20, 306, 200)

#: The face inside the astronaut image (x1, y1, x2, y2), as MTCNN boxes it on
#: the full 512x512 image. Ground-truth face boxes are this box mapped into the
#: pasted patch, so they are directly comparable to a detector's output.
ASTRONAUT_FACE_BOX: tuple[float, float, float, float] = (181.0, 62.0, 268.0, 172.0)

#: Bits of the frame index burnt into the bottom strip (up to 1023 frames).
FRAME_CODE_BITS = 10
#: Height in pixels of the bottom strip holding the frame-index code.
FRAME_CODE_HEIGHT = 16

_BLACK, _WHITE = 16, 235  # inside the limited (TV) range, so nothing clips

#: Audio defaults: a 440 Hz tone at 16 kHz, the rate the audio model consumes.
SAMPLE_RATE = 16000
TONE_HZ = 440.0


@dataclass(frozen=True)
class GeneratedVideo:
    """A generated video file and what is known to be in it.

    ``face_boxes`` is ``(T, 4)`` for one face, ``(T, N, 4)`` for N faces and
    ``(T, 0, 4)`` for none. ``patch_boxes`` has the same shape and holds the
    rectangle of the whole pasted head patch (hair included), which is larger
    than the face box. ``timestamps`` are true presentation times in seconds.
    ``width``/``height`` are *display* dimensions; for ``rotation`` of +-90 the
    stored (decoded) frames are ``height`` wide and ``width`` tall.
    """

    path: Path
    n_frames: int
    fps: float
    width: int
    height: int
    face_boxes: np.ndarray
    has_audio: bool
    duration: float
    timestamps: np.ndarray
    rotation: int = 0
    patch_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))


@dataclass(frozen=True)
class GeneratedImage:
    """A still image file with its single face's ground-truth box (x1, y1, x2, y2)."""

    path: Path
    width: int
    height: int
    face_box: np.ndarray


# --------------------------------------------------------------------------- #
# Core writer
# --------------------------------------------------------------------------- #


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    codec: str = "libx264",
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    *,
    crf: int = 12,
    faststart: bool = False,
) -> Path:
    """Encode ``frames`` (T, H, W, 3) uint8 RGB into an mp4 at ``path``.

    Video is H.264 (yuv420p; ``crf`` 12 keeps decoded frames within a few grey
    levels of the input) with x264's ``veryfast`` preset, which still uses
    B-frames, so decoders meet reordered packets as in real files. ``audio``,
    a mono float array in [-1, 1], is added as AAC in the same container.

    ``rotation`` (degrees counter-clockwise, normally a multiple of 90) only sets the
    display-matrix flag; the frames are written exactly as given, so pass
    frames that are already stored sideways (see the module docstring).

    ``pts`` gives explicit per-frame timestamps in ``time_base`` units
    (default 1/1000 s) for a variable-frame-rate stream; without it frame ``i``
    is at ``i / fps``. ``faststart`` moves the index (moov atom) to the front,
    which decides whether a truncated copy can still be opened.
    """
    frames = np.asarray(frames)
    _check_frames(frames)
    n_frames, height, width, _ = frames.shape
    if pts is None:
        frame_pts = list(range(n_frames))
        tb = Fraction(1, 1) / Fraction(fps).limit_denominator(1001)
    else:
        if len(pts) != n_frames or any(b <= a for a, b in zip(pts, pts[1:])):
            raise ValueError("pts needs one strictly increasing value per frame")
        frame_pts = [int(p) for p in pts]
        tb = time_base if time_base is not None else Fraction(1, 1000)

    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        video = _add_video_stream(container, codec, fps, width, height, tb, crf)
        if rotation % 360:
            video.set_display_rotation(rotation)
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.layout = "mono"

        durations = _frame_durations(frame_pts)
        for rgb, p in zip(frames, frame_pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = p, tb
            container.mux(_with_durations(video.encode(frame), durations, tb))
        # Flush: x264 holds back about 10 frames (lookahead and B-frames) until here.
        container.mux(_with_durations(video.encode(None), durations, tb))

        if audio_stream is not None:
            _encode_audio(container, audio_stream, audio, sample_rate)
    return path


def _check_frames(frames: np.ndarray) -> None:
    """Reject input the yuv420p H.264 path would silently mangle."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("need at least one frame")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError("yuv420p needs even frame width and height")


def _frame_durations(frame_pts: list[int]) -> dict[int, int]:
    """Each frame lasts until the next one; the last repeats the previous gap (or 1 tick)."""
    gaps = [b - a for a, b in zip(frame_pts, frame_pts[1:])]
    gaps.append(gaps[-1] if gaps else 1)
    return dict(zip(frame_pts, gaps))


def _with_durations(
    packets: list[av.Packet], durations: dict[int, int], time_base: Fraction
) -> list[av.Packet]:
    """Stamp packet durations, which libx264 leaves at 0.

    Without them the mp4 muxer guesses the last frame's duration, so the
    container's reported duration of a VFR stream would be off by a frame.
    """
    for packet in packets:
        pts = Fraction(packet.pts) * packet.time_base / time_base
        packet.duration = int(durations[int(pts)] * time_base / packet.time_base)
    return packets


def _add_video_stream(
    container: av.container.OutputContainer,
    codec: str,
    fps: float | Fraction,
    width: int,
    height: int,
    time_base: Fraction,
    crf: int,
) -> av.video.stream.VideoStream:
    """Add a yuv420p video stream whose encoder counts time in ``time_base``."""
    if codec == "libx264":
        # One thread: x264's output depends on its thread count, and byte-identical
        # files on every machine keep tests (e.g. where a truncation cuts) reproducible.
        options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
    else:
        options = {}
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(codec, rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = time_base
    stream.time_base = time_base  # a hint: the mp4 muxer may pick a finer one
    if codec != "libx264":
        stream.bit_rate = 4_000_000  # no crf; a generous rate keeps quality high
    return stream


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    audio: np.ndarray,
    sample_rate: int,
) -> None:
    """Encode a mono float signal; PyAV re-chunks it into AAC's 1024-sample frames."""
    samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, 0, Fraction(1, sample_rate)
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


# --------------------------------------------------------------------------- #
# Picture building blocks
# --------------------------------------------------------------------------- #


def sine_tone(duration: float, sample_rate: int = SAMPLE_RATE, freq: float = TONE_HZ) -> np.ndarray:
    """A mono float32 sine at half amplitude: easy to recognise in a spectrum."""
    t = np.arange(int(round(duration * sample_rate)), dtype=np.float64) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def background(height: int, width: int) -> np.ndarray:
    """A static, smooth grey backdrop with a faint texture.

    Smooth so it compresses to almost nothing, textured so it is not a flat
    field that some detectors or trackers treat specially.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = 110 + 30 * (x / width) + 8 * np.sin(x / 9.0) * np.sin(y / 7.0)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def draw_frame_code(frame: np.ndarray, index: int) -> np.ndarray:
    """Burn ``index`` as black/white blocks (MSB first) into the bottom strip, in place.

    Blocks are tens of pixels wide so the code survives lossy compression and
    can be read back with :func:`read_frame_index`.
    """
    if not 0 <= index < 2**FRAME_CODE_BITS:
        raise ValueError(f"frame index {index} does not fit in {FRAME_CODE_BITS} bits")
    height, width = frame.shape[:2]
    block = width // FRAME_CODE_BITS
    frame[height - FRAME_CODE_HEIGHT :, :] = 128
    for bit in range(FRAME_CODE_BITS):
        on = (index >> (FRAME_CODE_BITS - 1 - bit)) & 1
        x = bit * block
        frame[height - FRAME_CODE_HEIGHT :, x : x + block] = _WHITE if on else _BLACK
    return frame


def read_frame_index(frame: np.ndarray) -> int:
    """Decode the index that :func:`draw_frame_code` burnt into an upright frame."""
    height, width = frame.shape[:2]
    block = width // FRAME_CODE_BITS
    strip = frame[height - FRAME_CODE_HEIGHT + 4 : height - 4].astype(np.float32)
    index = 0
    for bit in range(FRAME_CODE_BITS):
        centre = strip[:, bit * block + 4 : (bit + 1) * block - 4]
        index = (index << 1) | int(centre.mean() > 128)
    return index


@lru_cache(maxsize=8)
def _head_patch(height: int, flip: bool) -> np.ndarray:
    """The astronaut's head, resized to ``height`` pixels tall, optionally mirrored."""
    from skimage import data  # imported lazily: only face videos need it

    x1, y1, x2, y2 = ASTRONAUT_HEAD_CROP
    crop = Image.fromarray(data.astronaut()[y1:y2, x1:x2])
    width = int(round(crop.width * height / crop.height))
    patch = np.asarray(crop.resize((width, height), Image.LANCZOS))
    patch = patch[:, ::-1].copy() if flip else patch.copy()
    patch.setflags(write=False)  # shared through the cache: nobody may paint on it
    return patch


def head_patch(face_height: int, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The head patch sized so its face is about ``face_height`` px tall.

    Returns the patch and the face box inside it (x1, y1, x2, y2, relative to
    the patch's top-left corner), which is what a face detector should report.
    """
    cx1, cy1, cx2, cy2 = ASTRONAUT_HEAD_CROP
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE_BOX
    patch_height = int(round(face_height * (cy2 - cy1) / (fy2 - fy1)))
    patch = _head_patch(patch_height, flip)
    sx = patch.shape[1] / (cx2 - cx1)
    sy = patch.shape[0] / (cy2 - cy1)
    box = np.array([(fx1 - cx1) * sx, (fy1 - cy1) * sy, (fx2 - cx1) * sx, (fy2 - cy1) * sy])
    if flip:
        box[[0, 2]] = patch.shape[1] - box[[2, 0]]
    return patch, box


def _paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> np.ndarray:
    """Paste ``patch`` with its top-left corner at integer (x, y); return its box."""
    h, w = patch.shape[:2]
    frame[y : y + h, x : x + w] = patch
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def _linspace_int(start: int, stop: int, n: int) -> np.ndarray:
    """``n`` integer positions from ``start`` to ``stop``: motion on whole pixels."""
    return np.round(np.linspace(start, stop, n)).astype(int)


def _cfr_timestamps(n_frames: int, fps: float) -> np.ndarray:
    """Frame ``i`` of a constant-rate stream is shown at ``i / fps`` seconds."""
    return np.arange(n_frames, dtype=np.float64) / fps


# --------------------------------------------------------------------------- #
# Videos
# --------------------------------------------------------------------------- #


def moving_face_frames(
    n_frames: int = 50, size: tuple[int, int] = (320, 240), face_height: int = 88
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upright frames of one head sliding left to right, not yet encoded.

    Returns ``(frames (T, H, W, 3), face_boxes (T, 4), patch_boxes (T, 4))``;
    handy for feeding :func:`write_video` with other settings (codec, faststart).
    """
    width, height = size
    patch, face_in_patch = head_patch(face_height)
    ph, pw = patch.shape[:2]
    if pw + 8 > width or ph + FRAME_CODE_HEIGHT > height:
        raise ValueError(f"frame {size} too small for a {pw}x{ph} head patch")
    y = (height - FRAME_CODE_HEIGHT - ph) // 2
    xs = _linspace_int(4, width - pw - 4, n_frames)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    bg = background(height, width)
    patch_boxes = np.empty((n_frames, 4))
    for i, x in enumerate(xs):
        frames[i] = bg
        patch_boxes[i] = _paste(frames[i], patch, int(x), y)
        draw_frame_code(frames[i], i)
    face_boxes = np.tile(patch_boxes[:, :2], 2) + face_in_patch  # shift by top-left corner
    return frames, face_boxes, patch_boxes


def moving_face_video(
    path: Path,
    n_frames: int = 50,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    with_audio: bool = True,
    *,
    face_height: int = 88,
) -> GeneratedVideo:
    """One frontal face moving horizontally across a grey backdrop, with a 440 Hz tone.

    The head moves on whole pixels at constant speed and stays vertically
    centred, clear of the frame-code strip. ``size`` is (width, height).
    """
    frames, face_boxes, patch_boxes = moving_face_frames(n_frames, size, face_height)
    duration = n_frames / fps
    audio = sine_tone(duration) if with_audio else None
    write_video(path, frames, fps=fps, audio=audio)
    return GeneratedVideo(
        path=path, n_frames=n_frames, fps=float(fps), width=size[0], height=size[1],
        face_boxes=face_boxes, has_audio=with_audio, duration=duration,
        timestamps=_cfr_timestamps(n_frames, fps), patch_boxes=patch_boxes,
    )


def two_faces_video(
    path: Path,
    n_frames: int = 50,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    with_audio: bool = True,
    *,
    face_heights: tuple[int, int] = (80, 64),
) -> GeneratedVideo:
    """Two faces in the left and right halves moving vertically in opposite directions.

    Face 0 (left half, ``face_heights[0]``) moves down; face 1 (right half, a
    mirrored and smaller copy) moves up. They never overlap, so a tracker that
    swaps identities is wrong, not unlucky. ``face_boxes`` is (T, 2, 4).
    """
    width, height = size
    usable = height - FRAME_CODE_HEIGHT
    heads = [head_patch(face_heights[0]), head_patch(face_heights[1], flip=True)]
    for patch, _ in heads:
        if patch.shape[1] > width // 2 or patch.shape[0] > usable:
            raise ValueError(f"frame {size} too small for two heads of {patch.shape[:2]}")
    (p0, f0), (p1, f1) = heads
    x0 = (width // 2 - p0.shape[1]) // 2
    x1 = width // 2 + (width // 2 - p1.shape[1]) // 2
    ys0 = _linspace_int(0, usable - p0.shape[0], n_frames)
    ys1 = _linspace_int(usable - p1.shape[0], 0, n_frames)

    frames = np.empty((n_frames, height, width, 3), np.uint8)
    bg = background(height, width)
    patch_boxes = np.empty((n_frames, 2, 4))
    for i in range(n_frames):
        frames[i] = bg
        patch_boxes[i, 0] = _paste(frames[i], p0, x0, int(ys0[i]))
        patch_boxes[i, 1] = _paste(frames[i], p1, x1, int(ys1[i]))
        draw_frame_code(frames[i], i)
    face_boxes = np.tile(patch_boxes[..., :2], 2) + np.stack([f0, f1])

    duration = n_frames / fps
    write_video(path, frames, fps=fps, audio=sine_tone(duration) if with_audio else None)
    return GeneratedVideo(
        path=path, n_frames=n_frames, fps=float(fps), width=width, height=height,
        face_boxes=face_boxes, has_audio=with_audio, duration=duration,
        timestamps=_cfr_timestamps(n_frames, fps), patch_boxes=patch_boxes,
    )


def rotated_face_video(
    path: Path,
    rotation: int = 90,
    n_frames: int = 50,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    with_audio: bool = True,
    *,
    face_height: int = 88,
) -> GeneratedVideo:
    """The moving face stored sideways, with a display-rotation flag that makes it upright.

    ``rotation`` is in the PyAV/FFmpeg convention (counter-clockwise degrees,
    what ``VideoFrame.rotation`` reads back; see the module docstring). The
    stored frames are ``np.rot90(display, k=-(rotation // 90))``, so only a reader
    that honours the flag sees an upright face. ``size``, ``width``/``height``
    and the boxes are all in display (upright) coordinates; the returned
    ``rotation`` is the value PyAV reports (180 reads back as -180).
    """
    if rotation % 90:
        raise ValueError("rotation must be a multiple of 90 degrees")
    display, face_boxes, patch_boxes = moving_face_frames(n_frames, size, face_height)
    stored = np.ascontiguousarray(np.rot90(display, k=-(rotation // 90), axes=(1, 2)))
    duration = n_frames / fps
    audio = sine_tone(duration) if with_audio else None
    write_video(path, stored, fps=fps, audio=audio, rotation=rotation)
    return GeneratedVideo(
        path=path, n_frames=n_frames, fps=float(fps), width=size[0], height=size[1],
        face_boxes=face_boxes, has_audio=with_audio, duration=duration,
        timestamps=_cfr_timestamps(n_frames, fps), rotation=_ffmpeg_rotation(rotation),
        patch_boxes=patch_boxes,
    )


def _ffmpeg_rotation(degrees: int) -> int:
    """Normalise to [-180, 180) as FFmpeg reports it: 270 reads as -90, 180 as -180."""
    return (degrees + 180) % 360 - 180


def no_face_video(
    path: Path,
    n_frames: int = 50,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    with_audio: bool = True,
) -> GeneratedVideo:
    """Moving coloured shapes and a patch of noise, no face: the negative case.

    There is motion and texture, so "no detection" cannot come from a blank
    frame. ``face_boxes`` is (T, 0, 4). The audio is a 440 Hz tone as well.
    """
    width, height = size
    usable = height - FRAME_CODE_HEIGHT
    rng = np.random.default_rng(0)
    bg = background(height, width)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        f = frames[i]
        f[:] = bg
        rx = int(t * (width - 60))
        f[20:70, rx : rx + 60] = (200, 40, 40)  # red block sliding right
        cx, cy = width - 30 - t * (width - 60), usable - 40
        f[(xx - cx) ** 2 + (yy - cy) ** 2 < 25**2] = (40, 60, 200)  # blue disc sliding left
        f[90:122, 140:172] = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)  # flicker
        draw_frame_code(f, i)
    duration = n_frames / fps
    write_video(path, frames, fps=fps, audio=sine_tone(duration) if with_audio else None)
    return GeneratedVideo(
        path=path, n_frames=n_frames, fps=float(fps), width=width, height=height,
        face_boxes=np.zeros((n_frames, 0, 4)), has_audio=with_audio, duration=duration,
        timestamps=_cfr_timestamps(n_frames, fps), patch_boxes=np.zeros((n_frames, 0, 4)),
    )


def vfr_level(index: int) -> int:
    """The flat grey level of frame ``index`` in :func:`vfr_video` (steps of 8, wrapping)."""
    return 24 + (index * 8) % 208


def vfr_video(
    path: Path,
    n_frames: int = 40,
    gaps_ms: tuple[int, ...] = (20, 60),
    size: tuple[int, int] = (320, 240),
    with_audio: bool = False,
) -> GeneratedVideo:
    """A variable-frame-rate stream: the gaps between frames cycle through ``gaps_ms``.

    Each frame is a flat grey of :func:`vfr_level` (index) plus the frame-code
    strip, so a test can tell exactly which frame a timestamp-based lookup
    returned. ``timestamps`` holds the true times in seconds (frame 0 at 0);
    ``fps`` is the average rate. The last frame lasts as long as the gap before
    it, which is where ``duration`` (and the container's stream duration) ends.
    """
    if n_frames < 2:
        raise ValueError("a variable frame rate needs at least two frames")
    width, height = size
    gaps = [gaps_ms[i % len(gaps_ms)] for i in range(n_frames - 1)]
    pts_ms = np.concatenate([[0], np.cumsum(gaps)]).astype(int)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        frames[i] = vfr_level(i)
        draw_frame_code(frames[i], i)
    duration = (pts_ms[-1] + gaps[-1]) / 1000
    audio = sine_tone(duration) if with_audio else None
    write_video(path, frames, fps=n_frames / duration, audio=audio, pts=pts_ms.tolist(),
                time_base=Fraction(1, 1000))
    return GeneratedVideo(
        path=path, n_frames=n_frames, fps=n_frames / duration, width=width, height=height,
        face_boxes=np.zeros((n_frames, 0, 4)), has_audio=with_audio, duration=duration,
        timestamps=pts_ms / 1000.0, patch_boxes=np.zeros((n_frames, 0, 4)),
    )


# --------------------------------------------------------------------------- #
# Broken inputs and stills
# --------------------------------------------------------------------------- #


def zero_byte_file(path: Path) -> Path:
    """An empty file with a video extension: the "upload failed" case."""
    path.write_bytes(b"")
    return path


def truncated_copy(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """Copy only the first ``fraction`` of ``src``'s bytes: an interrupted download.

    What a reader then sees depends on where ``src`` keeps its index: with the
    moov atom at the end (the :func:`write_video` default) the copy cannot be
    opened at all; with ``faststart=True`` it opens and the first frames decode,
    then decoding either just stops or raises ``av.error.InvalidDataError``
    (decord refuses to open it at all), depending on where the cut falls.
    """
    if not 0 <= fraction < 1:
        raise ValueError("fraction must be in [0, 1)")
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def not_a_video(path: Path) -> Path:
    """A plain text file carrying a video extension: the "wrong file type" case."""
    path.write_text("This is not a video, whatever its extension says.\n" * 20)
    return path


def face_image(
    path: Path, size: tuple[int, int] = (320, 240), face_height: int = 88
) -> GeneratedImage:
    """A still of the astronaut's head centred on the grey backdrop, as JPEG or PNG.

    The format follows the suffix of ``path`` (.jpg/.jpeg or .png).
    """
    width, height = size
    patch, face_in_patch = head_patch(face_height)
    frame = background(height, width)
    x = (width - patch.shape[1]) // 2
    y = (height - patch.shape[0]) // 2
    box = _paste(frame, patch, x, y)
    is_jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    Image.fromarray(frame).save(path, **({"quality": 95} if is_jpeg else {}))
    face_box = box[[0, 1, 0, 1]] + face_in_patch
    return GeneratedImage(path=path, width=width, height=height, face_box=face_box)

