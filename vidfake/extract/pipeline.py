"""decode -> detect -> track -> crop for one video or image: the code path shared by
``vidfake extract`` and scoring, so a face is found and cut the same way everywhere.

Memory stays bounded: frames are decoded in chunks and full-resolution frames are held
for one segment of the plan at a time (``max_buffer_mb``); only detections (a few
numbers a face) and the small crops outlive a segment.

Speed comes from three choices: decoding only the planned frames, detecting on a
downscaled copy, and running the full detector on every ``keyframe_interval``-th sampled
frame only, with the tracker predicting the boxes between and O-Net checking them (a
frame where a predicted face is not confirmed gets the full search).
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vidfake.extract.crop import CropConfig, crop_face, crop_mouth
from vidfake.extract.detect import DetectorConfig, FaceDetector, FrameDetections, detection_scale, downscale
from vidfake.extract.sampling import parse_plan
from vidfake.extract.track import (
    FaceTrack,
    TrackerConfig,
    chain_to_track,
    interp_rows,
    link_detections,
    select_tracks,
)
from vidfake.extract.video import Backend, DecodeError, VideoInfo, open_video


class MediaError(DecodeError):
    """Input the pipeline refuses (unreadable image, resolution beyond the limit)."""


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that decides which faces come out; saved with every extraction record
    (and later in checkpoints) so training and scoring cut faces the same way."""

    plan: str = "uniform:32"
    detector: DetectorConfig = field(default_factory=DetectorConfig)
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
        """Rebuild from ``to_dict`` output (e.g. a checkpoint's saved settings)."""
        nested = {"detector": DetectorConfig, "tracker": TrackerConfig, "crop": CropConfig}
        values = dict(data)
        for key, kind in nested.items():
            if key in values:
                part = dict(values[key])
                if kind is DetectorConfig and "stage_thresholds" in part:
                    part["stage_thresholds"] = tuple(part["stage_thresholds"])
                values[key] = kind(**part)
        return cls(**values)


@dataclass
class FaceClip:
    """One tracked face: its track and crops aligned with ``track.frame_indices``."""

    track: FaceTrack
    crops: np.ndarray  # (T,S,S,3) uint8
    mouths: np.ndarray | None  # (T,M,M,3) uint8


@dataclass(frozen=True)
class ImageInfo:
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


@contextmanager
def _timed(totals: dict[str, float], stage: str) -> Iterator[None]:
    """Add the block's wall time to ``totals[stage]`` (reported per file)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        totals[stage] += time.perf_counter() - start


class FaceExtractor:
    """Holds the detector (load it once, reuse it across files)."""

    def __init__(self, config: ExtractConfig | None = None):
        self.config = config or ExtractConfig()
        self.detector = FaceDetector(self.config.detector)

    def _check_size(self, path: Path, width: int, height: int) -> None:
        if width * height > self.config.max_pixels:
            raise MediaError(
                f"{path}: {width}x{height} exceeds the {self.config.max_pixels / 1e6:.0f} MP limit; "
                "downscale the video first or raise max_pixels"
            )

    def extract_video(self, path: str | Path) -> MediaFaces:
        path = Path(path)
        cfg = self.config
        timings: dict[str, float] = defaultdict(float)
        with _timed(timings, "decode"):
            reader = open_video(path, cfg.decoder)
        info = reader.info
        self._check_size(path, info.width, info.height)
        wanted = parse_plan(cfg.plan).indices(info.num_frames)
        frame_bytes = info.width * info.height * 3
        segment_len = max(1, (cfg.max_buffer_mb << 20) // frame_bytes)
        scale = detection_scale(info.width, info.height, cfg.detector.max_side)

        decoded: list[int] = []
        tracks: list[FaceTrack] = []
        detections: list[FrameDetections] = []
        crops: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}
        with reader:
            for start in range(0, len(wanted), segment_len):
                segment = wanted[start : start + segment_len]
                with _timed(timings, "decode"):
                    # one chunk the size of the segment: the buffer is bounded already
                    seg_indices, frames = next(reader.iter_chunks(segment, len(segment)), (None, None))
                if seg_indices is None:
                    break
                with _timed(timings, "detect"):
                    small = downscale(frames, cfg.detector.max_side)
                    detections += self._detect_segment(small, scale, detections)
                first_step = len(decoded)
                decoded += seg_indices.tolist()
                with _timed(timings, "track"):
                    chains = link_detections(detections, cfg.tracker)
                    times = reader.timestamps[np.asarray(decoded)]
                    tracks = [chain_to_track(c, np.asarray(decoded), times, cfg.tracker) for c in chains]
                    if start + segment_len >= len(wanted):  # last segment: no crops for tracks to be dropped
                        tracks = select_tracks(tracks, len(decoded), cfg.tracker)
                with _timed(timings, "crop"):
                    self._crop_segment(frames, first_step, tracks, decoded, crops)
                del frames, small
            timestamps = reader.timestamps[np.asarray(decoded, dtype=np.int64)]

        if not decoded:
            raise DecodeError(f"{path}: none of the {len(wanted)} planned frames could be decoded")
        warnings = []
        if len(decoded) < len(wanted):
            warnings.append(f"{len(wanted) - len(decoded)} of {len(wanted)} planned frames could not be decoded")
        with _timed(timings, "track"):
            tracks = select_tracks(tracks, len(decoded), cfg.tracker)
        faces = self._assemble(tracks, decoded, crops)
        return MediaFaces("video", info, cfg.plan, np.asarray(decoded), timestamps, faces, warnings, dict(timings))

    def _detect_segment(
        self, small: np.ndarray, scale: float, history: list[FrameDetections]
    ) -> list[FrameDetections]:
        """Full search on keyframes; predicted-and-refined boxes on the frames between."""
        n, first = len(small), len(history)
        interval = self.config.detector.keyframe_interval
        keys = sorted({i for i in range(n) if (first + i) % interval == 0} | {n - 1})
        result: list[FrameDetections] = [FrameDetections() for _ in range(n)]
        for i, found in zip(keys, self.detector.detect(small[keys], scale)):
            result[i] = found
        between = sorted(set(range(n)) - set(keys))
        if not between:
            return result
        predicted = self._predict_boxes(history + result, first, between)
        refined = self.detector.refine(small[between], scale, [predicted[i] for i in between])
        retry = []
        for i, found in zip(between, refined):
            result[i] = found
            around = [k for k in keys if k < i][-1:] + [next(k for k in keys if k > i)]
            if len(found) < max(1, *(len(result[k]) for k in around)):
                retry.append(i)  # fewer faces than the keyframes around it: look properly
        if retry:
            for i, found in zip(retry, self.detector.detect(small[retry], scale)):
                result[i] = found
        return result

    def _predict_boxes(self, detections: list[FrameDetections], first: int, between: list[int]) -> dict[int, np.ndarray]:
        """Boxes interpolated in step order from the tracks around each in-between frame."""
        predicted = {i: [] for i in between}
        for chain in link_detections(detections, self.config.tracker):
            for i in between:
                if chain.steps[0] < first + i < chain.steps[-1]:
                    predicted[i].append(interp_rows(first + i, chain.steps, chain.boxes)[0])
        return {i: np.asarray(b, np.float32).reshape(-1, 4) for i, b in predicted.items()}

    def _crop_segment(self, frames, first_step, tracks, decoded, crops) -> None:
        cfg = self.config.crop
        positions = {idx: first_step + k for k, idx in enumerate(decoded[first_step:])}
        for track in tracks:
            for t, frame_index in enumerate(track.frame_indices.tolist()):
                step = positions.get(frame_index)
                if step is None or (track.track_id, step) in crops:
                    continue
                frame = frames[step - first_step]
                box, marks = track.boxes[t], track.landmarks[t]
                mouth = crop_mouth(frame, box, marks, cfg) if self.config.mouths else None
                crops[(track.track_id, step)] = (crop_face(frame, box, cfg), mouth, box)

    def _assemble(self, tracks: list[FaceTrack], decoded: list[int], crops: dict) -> list[FaceClip]:
        """Final tracks with their crops; the boxes recorded are the ones the crops were cut at."""
        step_of = {idx: k for k, idx in enumerate(decoded)}
        faces = []
        for new_id, track in enumerate(tracks[:1] if self.config.largest_face_only else tracks):
            keys = [(track.track_id, step_of[int(i)]) for i in track.frame_indices]
            have = np.array([k in crops for k in keys])
            track = track.subset(have)
            kept = [crops[k] for k, ok in zip(keys, have) if ok]
            if not kept:
                continue
            track.boxes = np.stack([k[2] for k in kept]).astype(np.float32)
            track.track_id = new_id
            mouths = np.stack([k[1] for k in kept]) if self.config.mouths else None
            faces.append(FaceClip(track, np.stack([k[0] for k in kept]), mouths))
        return faces

    def extract_image(self, path: str | Path) -> MediaFaces:
        """A still image is a one-frame video: same detector, same crop."""
        path = Path(path)
        timings: dict[str, float] = defaultdict(float)
        with _timed(timings, "decode"):
            frame = load_image(path)
        self._check_size(path, frame.shape[1], frame.shape[0])
        scale = detection_scale(frame.shape[1], frame.shape[0], self.config.detector.max_side)
        with _timed(timings, "detect"):
            found = self.detector.detect(downscale(frame[None], self.config.detector.max_side), scale)
        zero = np.zeros(1, dtype=np.int64)
        with _timed(timings, "track"):
            chains = link_detections(found, self.config.tracker)
            tracks = [chain_to_track(c, zero, np.zeros(1), self.config.tracker) for c in chains]
        crops: dict = {}
        with _timed(timings, "crop"):
            self._crop_segment(frame[None], 0, tracks, [0], crops)
        tracks = select_tracks(tracks, 1, self.config.tracker)
        info = ImageInfo(str(path), frame.shape[1], frame.shape[0])
        faces = self._assemble(tracks, [0], crops)
        return MediaFaces("image", info, "image", zero, np.zeros(1), faces, [], dict(timings))


def load_image(path: Path) -> np.ndarray:
    """RGB uint8, upright per its EXIF orientation (phone photos store it there)."""
    if not path.exists() or path.stat().st_size == 0:
        raise MediaError(f"{path}: missing or empty file")
    try:
        with Image.open(path) as image:
            return np.array(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, Image.DecompressionBombError, ValueError) as error:
        raise MediaError(f"{path}: not a readable image ({error})") from None
