"""decode -> detect -> track -> crop for one video or image: the code path shared by
``vidfake extract`` and scoring, so a face is found and cut the same way everywhere.

Memory stays bounded: frames are decoded in chunks and full-resolution frames are held
for one segment of the plan at a time (``max_buffer_mb``); only detections (a few
numbers a face) and the small crops outlive a segment, and with a crop sink the crops
leave too, after the segment's frames are freed.

Speed comes from three choices: decoding only the planned frames, detecting on a
downscaled copy, and running the full detector on every ``keyframe_interval``-th sampled
frame only, with the tracker predicting the boxes between and O-Net checking them (a
frame where a predicted face is not confirmed gets the full search).
"""
from __future__ import annotations

import json
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vidfake.extract.crop import CropConfig, crop_face, crop_mouth
from vidfake.extract.detect import FaceDetector, FaceDetectorConfig, FrameDetections, detection_scale, downscale
from vidfake.extract.sampling import parse_plan
from vidfake.extract.track import FaceTrack, Tracker, TrackerConfig
from vidfake.extract.video import (
    Backend,
    DecodeError,
    VideoInfo,
    VideoProbe,
    open_video,
    probe_packets,
    turn_frames,
)
from vidfake.utils.config import from_dict
from vidfake.utils.memory import release_freed_memory


class MediaError(DecodeError):
    """Input the pipeline refuses (unreadable image, resolution beyond the limit)."""


RETRY_TURNS = (90, 270)  # counterclockwise turns searched when a video has no upright face


# What Pillow raises on a damaged image, by plugin: OSError (truncated data, bad mode),
# SyntaxError (a PNG chunk or JPEG marker that is not one), ValueError and struct.error
# (header fields out of range), EOFError (data ends inside a header), and its bomb check.
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that decides which faces come out; saved with every extraction record
    (and later in checkpoints) so training and scoring cut faces the same way."""

    plan: str = "uniform:32"
    face_detector: FaceDetectorConfig = field(default_factory=FaceDetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    decoder: Backend = "auto"
    max_buffer_mb: int = 512  # full-resolution frames held at once
    max_pixels: int = 8192 * 4352  # refuse larger frames (8K UHD passes) rather than exhaust memory
    largest_face_only: bool = False
    mouths: bool = True

    def __post_init__(self) -> None:
        parse_plan(self.plan)  # fail early on a bad plan string

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists), as saved in records and checkpoints."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> ExtractConfig:
        """Rebuild from ``to_dict`` output (e.g. a checkpoint's saved settings), older
        key names included (see :func:`current_extract_keys`)."""
        return from_dict(cls, current_extract_keys(data), "extract config")


def current_extract_keys(data: dict) -> dict:
    """A saved extract config (a checkpoint's or an extraction folder's) with the face
    detector's settings under ``face_detector``. Configs saved before that rename, the
    packaged default model's among them, call them ``detector``; they are read, never
    written that way again."""
    if "detector" not in data:
        return dict(data)
    if "face_detector" in data:
        raise ValueError("extract config has both 'detector' (the old name of 'face_detector') and 'face_detector'")
    values = {key: value for key, value in data.items() if key != "detector"}
    values["face_detector"] = data["detector"]
    return values


@dataclass
class FaceClip:
    """One tracked face: its track and crops aligned with ``track.frame_indices``
    (both None when the crops were handed to a ``CropSink`` instead of kept)."""

    track: FaceTrack
    crops: np.ndarray | None  # (T,S,S,3) uint8
    mouths: np.ndarray | None  # (T,M,M,3) uint8
    source_id: int = -1  # the track's id while the video was read: what a crop sink was told


# Takes one provisional track's crops from one segment, in frame order:
# (track_id, frame_indices, timestamps, crops (T,S,S,3), mouths (T,M,M,3) or None).
CropSink = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], None]


@dataclass(frozen=True)
class ImageInfo:
    """A still image's path and upright size (what ``VideoInfo`` is for a video)."""

    path: str
    width: int
    height: int


@dataclass
class MediaFaces:
    """What extraction found in one file."""

    kind: str  # "video" or "image"
    info: VideoInfo | ImageInfo
    plan: str
    frame_indices: np.ndarray  # sampled frames that decoded
    timestamps: np.ndarray
    faces: list[FaceClip]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rotation_retry: int = 0  # degrees counterclockwise the frames were turned to find faces (0: upright)


@contextmanager
def _timed(totals: dict[str, float], stage: str) -> Iterator[None]:
    """Add the block's wall time to ``totals[stage]`` (reported per file)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        totals[stage] += time.perf_counter() - start


class FaceExtractor:
    """Holds the detector (loaded on the first file that needs it, then reused), so a
    run of files that all fail their probe never loads it."""

    def __init__(self, config: ExtractConfig | None = None):
        self.config = config or ExtractConfig()
        self.plan = parse_plan(self.config.plan)  # parsed once, not per file

    def segment_bytes(self, width: int, height: int, num_frames: int) -> int:
        """The most bytes of full-resolution frames extraction holds at once for a video of
        this size: the planned frames, or one ``max_buffer_mb`` segment of them."""
        frame_bytes = width * height * 3
        segment_len = max(1, (self.config.max_buffer_mb << 20) // frame_bytes)
        return min(len(self.plan.indices(num_frames)), segment_len) * frame_bytes

    @cached_property
    def detector(self) -> FaceDetector:
        """The face detector, loaded on first use."""
        return FaceDetector(self.config.face_detector)

    def _check_size(self, path: Path, width: int, height: int) -> None:
        if width * height > self.config.max_pixels:
            raise MediaError(
                f"{path}: {width}x{height} exceeds the {self.config.max_pixels / 1e6:.0f} MP limit; "
                "downscale the video first or raise max_pixels"
            )

    def probe(self, path: str | Path, kind: str) -> VideoProbe | None:
        """Check a file before any detector or model is needed: it exists, is not empty,
        opens as a video with frames (packet headers only) or as an image (its header),
        and is within the pixel limit. Raises DecodeError / MediaError as extraction
        would; returns the video's probe for ``extract_video(probed=...)``."""
        path = Path(path)
        if kind == "image":
            width, height = probe_image(path)
            self._check_size(path, width, height)
            return None
        probed = probe_packets(path)
        self._check_size(path, probed[0].width, probed[0].height)
        return probed

    def extract_video(
        self, path: str | Path, probed: VideoProbe | None = None, sink_for: Callable[[int], CropSink] | None = None
    ) -> MediaFaces:
        """Faces of the planned frames. When none is found upright, the frames are searched
        again turned 90 and 270 degrees (a phone clip whose rotation flag is wrong, or a clip
        stored sideways); the turn that finds the most face frames is kept and recorded in
        ``MediaFaces.rotation_retry``, boxes then being in the turned frame's coordinates.

        ``sink_for(turn)``: a sink per search that takes the crops segment by segment as they
        are cut, so they are not all held until the end (the faces then carry no crops; the
        sink of the search whose ``rotation_retry`` is returned has the ones that count)."""
        path = Path(path)
        probed = probed if probed is not None else probe_packets(path)
        faces = self._extract_turned(path, probed, 0, None if sink_for is None else sink_for(0))
        if faces.faces:
            return faces
        spent = Counter(faces.timings)
        for turn in RETRY_TURNS:
            turned = self._extract_turned(path, probed, turn, None if sink_for is None else sink_for(turn))
            spent.update(turned.timings)
            if _face_frames(turned) > _face_frames(faces):
                faces = turned
        faces.timings = dict(spent)  # the retries' time is part of this file's cost
        if faces.rotation_retry:
            faces.warnings.append(
                f"no face upright: faces were found with the frames turned {faces.rotation_retry} degrees "
                "counterclockwise (a wrong rotation flag, or a clip stored sideways); boxes are in the turned frame")
        return faces

    def _extract_turned(self, path: Path, probed: VideoProbe, turn: int, sink: CropSink | None) -> MediaFaces:
        cfg = self.config
        timings: dict[str, float] = defaultdict(float)
        with _timed(timings, "decode"):
            reader = open_video(path, cfg.decoder, probed)
        info = reader.info
        self._check_size(path, info.width, info.height)
        wanted = self.plan.indices(info.num_frames)
        frame_bytes = info.width * info.height * 3
        segment_len = max(1, (cfg.max_buffer_mb << 20) // frame_bytes)
        segmented = len(wanted) > segment_len  # see release_freed_memory: worth its cost on long plans only
        scale = detection_scale(info.width, info.height, cfg.face_detector.max_side)

        decoded: list[int] = []
        tracks: list[FaceTrack] = []
        tracker = Tracker(cfg.tracker)
        crops: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}
        with reader:
            for start in range(0, len(wanted), segment_len):
                segment = wanted[start : start + segment_len]
                with _timed(timings, "decode"):
                    seg_indices, frames = reader.read_frames(segment)  # the segment bounds them already
                if not len(seg_indices):
                    break
                frames = [turn_frames(frame, turn) for frame in frames]
                with _timed(timings, "detect"):
                    small = downscale(frames, cfg.face_detector.max_side)
                    tracker.add(_detect_segment(self.detector, small, scale, tracker, cfg))
                first_step = len(decoded)
                decoded += seg_indices.tolist()
                with _timed(timings, "track"):
                    tracks = tracker.tracks(decoded, reader.timestamps[np.asarray(decoded)])
                    if start + segment_len >= len(wanted):  # last segment: no crops for tracks to be dropped
                        tracks = tracker.select(tracks)
                with _timed(timings, "crop"):
                    _crop_segment(frames, first_step, tracks, decoded, crops, cfg)
                # the segment's frames go before the sink runs the model on its crops, so
                # the two largest buffers of scoring are never held together
                del frames, small
                if segmented:
                    release_freed_memory()
                if sink is not None:
                    _hand_over(crops, first_step, decoded, reader.timestamps, sink, segmented)
            timestamps = reader.timestamps[np.asarray(decoded, dtype=np.int64)]

        if not decoded:
            raise DecodeError(f"{path}: none of the {len(wanted)} planned frames could be decoded")
        warnings = []
        if len(decoded) < len(wanted):
            warnings.append(f"{len(wanted) - len(decoded)} of {len(wanted)} planned frames could not be decoded")
        with _timed(timings, "track"):
            tracks = tracker.select(tracks)
        faces = _assemble(tracks, decoded, crops, cfg)
        return MediaFaces("video", info, cfg.plan, np.asarray(decoded), timestamps, faces, warnings, dict(timings),
                          rotation_retry=turn)

    def extract_image(self, path: str | Path) -> MediaFaces:
        """A still image is a one-frame video: same detector, same crop."""
        path = Path(path)
        timings: dict[str, float] = defaultdict(float)
        with _timed(timings, "decode"):
            frame = load_image(path)
        self._check_size(path, frame.shape[1], frame.shape[0])
        scale = detection_scale(frame.shape[1], frame.shape[0], self.config.face_detector.max_side)
        with _timed(timings, "detect"):
            found = self.detector.detect(downscale(frame[None], self.config.face_detector.max_side), scale)
        zero = np.zeros(1, dtype=np.int64)
        tracker = Tracker(self.config.tracker).add(found)
        with _timed(timings, "track"):
            tracks = tracker.tracks(zero, np.zeros(1))
        crops: dict = {}
        with _timed(timings, "crop"):
            _crop_segment(frame[None], 0, tracks, [0], crops, self.config)
        tracks = tracker.select(tracks)
        info = ImageInfo(str(path), frame.shape[1], frame.shape[0])
        faces = _assemble(tracks, [0], crops, self.config)
        return MediaFaces("image", info, "image", zero, np.zeros(1), faces, [], dict(timings))


# -- the steps of one segment ------------------------------------------------------------


def _detect_segment(
    detector: FaceDetector, small: np.ndarray, scale: float, tracker: Tracker, cfg: ExtractConfig
) -> list[FrameDetections]:
    """Full search on keyframes (every ``keyframe_interval``-th sampled frame, and the
    segment's last); on the frames between, boxes predicted from the tracks around them
    and checked by the detector's refine stage. A frame where fewer faces are confirmed
    than the keyframes around it hold is searched in full after all."""
    n, first = len(small), len(tracker.detections)
    interval = cfg.face_detector.keyframe_interval
    keys = sorted({i for i in range(n) if (first + i) % interval == 0} | {n - 1})
    result: list[FrameDetections] = [FrameDetections() for _ in range(n)]
    for i, found in zip(keys, detector.detect(small[keys], scale)):
        result[i] = found
    between = sorted(set(range(n)) - set(keys))
    if not between:
        return result
    predicted = tracker.predicted_boxes(result, first, between)
    refined = detector.refine(small[between], scale, [predicted[i] for i in between])
    retry = []
    for i, found in zip(between, refined):
        result[i] = found
        around = [k for k in keys if k < i][-1:] + [next(k for k in keys if k > i)]
        if len(found) < max(1, *(len(result[k]) for k in around)):
            retry.append(i)  # fewer faces than the keyframes around it: look properly
    if retry:
        for i, found in zip(retry, detector.detect(small[retry], scale)):
            result[i] = found
    return result


def _crop_segment(frames: Sequence[np.ndarray], first_step: int, tracks: list[FaceTrack], decoded: list[int], crops: dict,
                  cfg: ExtractConfig) -> None:
    """Cut each track's face (and mouth) on the segment's frames into ``crops``, keyed by
    (track id, step), with the box it was cut at; a step already cut is left alone."""
    positions = {idx: first_step + k for k, idx in enumerate(decoded[first_step:])}
    for track in tracks:
        for t, frame_index in enumerate(track.frame_indices.tolist()):
            step = positions.get(frame_index)
            if step is None or (track.track_id, step) in crops:
                continue
            frame = frames[step - first_step]
            box, marks = track.boxes[t], track.landmarks[t]
            mouth = crop_mouth(frame, box, marks, cfg.crop) if cfg.mouths else None
            crops[(track.track_id, step)] = (crop_face(frame, box, cfg.crop), mouth, box)


def _assemble(tracks: list[FaceTrack], decoded: list[int], crops: dict, cfg: ExtractConfig) -> list[FaceClip]:
    """Final tracks with their crops; the boxes recorded are the ones the crops were cut at."""
    step_of = {idx: k for k, idx in enumerate(decoded)}
    faces = []
    for new_id, track in enumerate(tracks[:1] if cfg.largest_face_only else tracks):
        keys = [(track.track_id, step_of[int(i)]) for i in track.frame_indices]
        have = np.array([k in crops for k in keys])
        track = track.subset(have)
        kept = [crops[k] for k, ok in zip(keys, have) if ok]
        if not kept:
            continue
        track.boxes = np.stack([k[2] for k in kept]).astype(np.float32)
        source_id, track.track_id = track.track_id, new_id
        if kept[0][0] is None:  # streamed: the sink has the crops
            faces.append(FaceClip(track, None, None, source_id))
            continue
        mouths = np.stack([k[1] for k in kept]) if cfg.mouths else None
        faces.append(FaceClip(track, np.stack([k[0] for k in kept]), mouths, source_id))
    return faces


def _hand_over(crops: dict, first_step: int, decoded: list[int], timestamps: np.ndarray, sink: CropSink,
               release: bool = False) -> None:
    """Give the sink the crops cut in the segment starting at ``first_step``, one call per
    track in frame order, keeping only the boxes they were cut at. A track's crops are
    stacked and dropped from ``crops`` before its sink call, so they are not held twice
    while the sink runs the model."""
    by_track: dict[int, list[int]] = defaultdict(list)
    for track_id, step in crops:
        if step >= first_step:
            by_track[track_id].append(step)
    for track_id, steps in sorted(by_track.items()):
        steps.sort()
        cut = [crops[(track_id, step)] for step in steps]
        frames = np.asarray([decoded[step] for step in steps], np.int64)
        faces = np.stack([c[0] for c in cut])
        mouths = np.stack([c[1] for c in cut]) if cut[0][1] is not None else None
        for step, (_, _, box) in zip(steps, cut):
            crops[(track_id, step)] = (None, None, box)
        del cut
        sink(track_id, frames, timestamps[frames], faces, mouths)
        if release:  # what the sink freed (a model's batches) goes back before the next track's turn
            release_freed_memory()


def _face_frames(faces: MediaFaces) -> int:
    return sum(len(face.track) for face in faces.faces)


def probe_image(path: Path) -> tuple[int, int]:
    """An image's upright (width, height) from its header alone; MediaError as ``load_image``."""
    if not path.exists() or path.stat().st_size == 0:
        raise MediaError(f"{path}: missing or empty file")
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation: 5-8 turn the image a quarter
    except IMAGE_ERRORS as error:
        raise MediaError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def load_image(path: Path) -> np.ndarray:
    """RGB uint8, upright per its EXIF orientation (phone photos store it there)."""
    if not path.exists() or path.stat().st_size == 0:
        raise MediaError(f"{path}: missing or empty file")
    try:
        with Image.open(path) as image:
            return np.array(ImageOps.exif_transpose(image).convert("RGB"))
    except IMAGE_ERRORS as error:
        raise MediaError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
