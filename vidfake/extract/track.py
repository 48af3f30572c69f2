"""Link per-frame detections into one ``FaceTrack`` per person.

Greedy association frame by frame: a detection joins the track whose last box overlaps
it most (IoU), or, for fast motion where boxes no longer overlap, the nearest track
whose centre is within ``max_center_shift`` face sizes and whose size is similar.
Frames inside a track where the face was missed are filled by interpolating in time;
boxes are then smoothed over time, because jittering crops make a real face flicker the
way a fake one does. Tracks that are too short or too small are dropped.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vidfake.extract.detect import FrameDetections


@dataclass(frozen=True)
class TrackerConfig:
    """When detections in successive frames count as the same face, and which tracks are kept."""
    iou_threshold: float = 0.3
    max_center_shift: float = 1.0  # in face sizes per sampled frame, for matches without overlap
    max_size_ratio: float = 1.6  # a match may not grow or shrink by more than this
    max_gap: int = 8  # sampled frames a track may go unseen before it ends
    min_detections: int = 2  # tracks seen fewer times are dropped (unless the video is that short)
    min_track_fraction: float = 0.1  # ... or seen on fewer than this fraction of the sampled frames
    min_face_size: float = 24.0  # pixels at full resolution, median box side
    smoothing_sigma_s: float = 0.1  # Gaussian smoothing of boxes over time, seconds
    duplicate_iou: float = 0.5  # tracks that take turns on one face (median IoU over their overlap) are merged


@dataclass
class FaceTrack:
    """One person's face over the sampled frames it spans.

    Arrays are aligned with ``frame_indices``; ``detected`` is False where the box was
    interpolated (its ``score`` is then 0)."""

    track_id: int
    frame_indices: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray  # (T,4) smoothed x1,y1,x2,y2, full resolution
    raw_boxes: np.ndarray  # (T,4) before smoothing (interpolated where not detected)
    landmarks: np.ndarray  # (T,5,2)
    scores: np.ndarray  # (T,)
    detected: np.ndarray  # (T,) bool

    @property
    def size(self) -> float:
        """Median side of the face box, pixels."""
        return float(np.median(np.maximum(self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1])))

    def __len__(self) -> int:
        return len(self.frame_indices)

    def subset(self, keep: np.ndarray) -> FaceTrack:
        """The same track on fewer frames (``keep``: boolean mask or positions)."""
        return FaceTrack(
            self.track_id,
            self.frame_indices[keep],
            self.timestamps[keep],
            self.boxes[keep],
            self.raw_boxes[keep],
            self.landmarks[keep],
            self.scores[keep],
            self.detected[keep],
        )

    def to_dict(self) -> dict:
        """The track as JSON-ready lists, rounded to the precision worth storing."""
        return {
            "track_id": self.track_id,
            "frame_indices": self.frame_indices.tolist(),
            "timestamps": np.round(self.timestamps, 4).tolist(),
            "boxes": np.round(self.boxes, 1).tolist(),
            "landmarks": np.round(self.landmarks, 1).tolist(),
            "scores": np.round(self.scores, 4).tolist(),
            "detected": self.detected.tolist(),
            "size": round(self.size, 1),
        }


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N,4)`` and ``(M,4)`` boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class _Chain:
    """Detections linked so far: positions in the sampled-frame list and what was seen."""

    track_id: int
    steps: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    landmarks: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def _side(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])


def _match(last_boxes: np.ndarray, gaps: np.ndarray, boxes: np.ndarray, config: TrackerConfig) -> list[tuple[int, int]]:
    """Greedy pairs (chain, detection): best IoU first, then nearest centre for the rest.

    The centre shift allowed grows with the number of sampled frames since a chain was
    last seen (``gaps``): a face walking across the frame moves further in four steps
    than in one, which matters when the detector skips frames."""
    if not len(last_boxes) or not len(boxes):
        return []
    iou = box_iou(last_boxes, boxes)
    centres_a = (last_boxes[:, :2] + last_boxes[:, 2:]) / 2
    centres_b = (boxes[:, :2] + boxes[:, 2:]) / 2
    sides_a, sides_b = _side(last_boxes), _side(boxes)
    shift = np.linalg.norm(centres_a[:, None] - centres_b[None], axis=-1) / np.maximum(sides_a[:, None], 1e-6)
    ratio = np.maximum(sides_a[:, None], sides_b[None]) / np.maximum(np.minimum(sides_a[:, None], sides_b[None]), 1e-6)
    similar = ratio <= config.max_size_ratio
    # IoU pairs rank first (cost below 0), centre-distance pairs after them.
    reachable = shift <= config.max_center_shift * gaps[:, None]
    cost = np.where(iou >= config.iou_threshold, -iou, np.where(similar & reachable, shift / gaps[:, None], np.inf))
    pairs = []
    while np.isfinite(cost).any():
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        pairs.append((int(i), int(j)))
        cost[i, :] = np.inf
        cost[:, j] = np.inf
    return pairs


def link_detections(detections: Sequence[FrameDetections], config: TrackerConfig) -> list[_Chain]:
    """Online association over sampled frames in order. Earlier links never change when
    later frames are added, so track ids are stable as a video is processed in parts."""
    chains: list[_Chain] = []
    for step, found in enumerate(detections):
        active = [c for c in chains if step - c.steps[-1] <= config.max_gap]
        last = np.asarray([c.boxes[-1] for c in active], np.float32).reshape(-1, 4)
        gaps = np.asarray([step - c.steps[-1] for c in active], np.float64)
        taken = set()
        for ci, di in _match(last, gaps, found.boxes, config):
            chain = active[ci]
            chain.steps.append(step)
            chain.boxes.append(found.boxes[di])
            chain.landmarks.append(found.landmarks[di])
            chain.scores.append(float(found.scores[di]))
            taken.add(di)
        for di in range(len(found)):
            if di not in taken:
                chains.append(_Chain(len(chains), [step], [found.boxes[di]], [found.landmarks[di]], [float(found.scores[di])]))
    return _merge_interleaved(chains, config)


def _merge_interleaved(chains: list[_Chain], config: TrackerConfig) -> list[_Chain]:
    """Merge chains that took turns on one face.

    With sparse sampling a fast face can be farther from its own chain's last box than
    allowed, start a second chain, and the two then share its detections: two tracks of
    one person over the same time. Two chains are one face when they were never seen on
    the same frame (two people are) and their boxes overlap where their spans overlap."""
    merged: list[_Chain] = []
    for chain in chains:
        target = next((m for m in merged if _took_turns(m, chain, config)), None)
        if target is None:
            merged.append(chain)
            continue
        order = np.argsort(target.steps + chain.steps, kind="stable")
        for name in ("steps", "boxes", "landmarks", "scores"):
            values = getattr(target, name) + getattr(chain, name)
            setattr(target, name, [values[i] for i in order])
    return merged


def _took_turns(a: _Chain, b: _Chain, config: TrackerConfig) -> bool:
    if set(a.steps) & set(b.steps):
        return False
    lo, hi = max(a.steps[0], b.steps[0]), min(a.steps[-1], b.steps[-1])
    probe = np.asarray([s for s in sorted(set(a.steps) | set(b.steps)) if lo <= s <= hi], np.float64)
    if probe.size < 2:
        return False  # one after the other, not at the same time: linking's business
    boxes_a, boxes_b = (interp_rows(probe, c.steps, np.asarray(c.boxes)) for c in (a, b))
    return float(np.median(np.diag(box_iou(boxes_a, boxes_b)))) >= config.duplicate_iou


def interp_rows(x_new, x, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of per-detection arrays (boxes ``(N,4)``, landmarks ``(N,5,2)``)
    from positions ``x`` onto ``x_new``, every coordinate independently."""
    values = np.asarray(values, np.float64)
    x_new = np.atleast_1d(np.asarray(x_new, np.float64))
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(x_new, x, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(x_new),) + values.shape[1:])


def _interpolate(steps: np.ndarray, values: np.ndarray, times: np.ndarray, all_steps: np.ndarray) -> np.ndarray:
    """Linear interpolation in time of per-detection values onto every spanned step."""
    return interp_rows(times[all_steps], times[steps], values)


def _smooth(values: np.ndarray, times: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted average over time (handles uneven sampling)."""
    if sigma <= 0 or len(values) < 2:
        return values
    weights = np.exp(-0.5 * ((times[:, None] - times[None, :]) / sigma) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    flat = values.reshape(len(values), -1)
    return (weights @ flat).reshape(values.shape)


def chain_to_track(chain: _Chain, frame_indices: np.ndarray, timestamps: np.ndarray, config: TrackerConfig) -> FaceTrack:
    """Turn matched detections into a track: fill gaps by interpolation and smooth the boxes over time."""
    steps = np.asarray(chain.steps)
    span = np.arange(steps[0], steps[-1] + 1)
    boxes = _interpolate(steps, np.asarray(chain.boxes, np.float64), timestamps, span)
    landmarks = _interpolate(steps, np.asarray(chain.landmarks, np.float64), timestamps, span)
    detected = np.isin(span, steps)
    scores = np.zeros(len(span), np.float32)
    scores[np.searchsorted(span, steps)] = chain.scores
    times = timestamps[span]
    # Smooth centre and size rather than corners, so a box never turns inside out.
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2
    centre_s, half_s = _smooth(centre, times, config.smoothing_sigma_s), _smooth(half, times, config.smoothing_sigma_s)
    shift = (centre_s - centre)[:, None, :]
    return FaceTrack(
        track_id=chain.track_id,
        frame_indices=frame_indices[span],
        timestamps=times,
        boxes=np.concatenate([centre_s - half_s, centre_s + half_s], axis=1).astype(np.float32),
        raw_boxes=boxes.astype(np.float32),
        landmarks=(landmarks + shift).astype(np.float32),
        scores=scores,
        detected=detected,
    )


def select_tracks(tracks: Sequence[FaceTrack], n_steps: int, config: TrackerConfig) -> list[FaceTrack]:
    """Drop short and tiny tracks; order the rest biggest and longest first.

    A track must be seen ``min_detections`` times and on ``min_track_fraction`` of the
    sampled frames (false detections rarely persist), or on every sampled frame when the
    plan has fewer frames than that (a single image is a one-frame plan)."""
    needed = min(max(config.min_detections, math.ceil(config.min_track_fraction * n_steps)), n_steps)
    kept = [t for t in tracks if t.detected.sum() >= needed and t.size >= config.min_face_size]
    return sorted(kept, key=lambda t: (-(t.detected.sum() * t.size), t.track_id))


class Tracker:
    """Face tracks over sampled frames, built as the frames arrive: the one path from
    detections to tracks. The video pipeline feeds it segment by segment (``add``, then
    ``tracks`` to crop the segment), an image is a one-frame video, and ``build_tracks``
    is the same in one call, so what the tests check is what the product runs.

    Track ids are the link order's (first seen, first numbered) and never change as later
    frames arrive; ``select`` keeps the ids and orders the kept tracks biggest and longest
    first."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.detections: list[FrameDetections] = []

    def add(self, detections: Sequence[FrameDetections]) -> Tracker:
        """Append the detections of the next sampled frames (in order)."""
        self.detections += list(detections)
        return self

    def tracks(self, frame_indices: Sequence[int], timestamps: np.ndarray) -> list[FaceTrack]:
        """Every track so far, short ones included (a segment's crops are cut before the
        last segment decides which tracks survive); ``frame_indices`` and ``timestamps``:
        of the frames added so far, in order."""
        frame_indices, timestamps = np.asarray(frame_indices), np.asarray(timestamps)
        return [chain_to_track(c, frame_indices, timestamps, self.config)
                for c in link_detections(self.detections, self.config)]

    def select(self, tracks: Sequence[FaceTrack]) -> list[FaceTrack]:
        """The tracks worth keeping over all frames added, biggest and longest first."""
        return select_tracks(tracks, len(self.detections), self.config)

    def predicted_boxes(self, pending: Sequence[FrameDetections], first: int, between: Sequence[int]) -> dict[int, np.ndarray]:
        """Where each track is expected on the in-between frames of a segment being
        detected (``pending``: its detections so far, the segment starting at step
        ``first``): boxes interpolated in step order from the tracks around each frame."""
        predicted: dict[int, list] = {i: [] for i in between}
        for chain in link_detections([*self.detections, *pending], self.config):
            for i in between:
                if chain.steps[0] < first + i < chain.steps[-1]:
                    predicted[i].append(interp_rows(first + i, chain.steps, chain.boxes)[0])
        return {i: np.asarray(b, np.float32).reshape(-1, 4) for i, b in predicted.items()}


def build_tracks(
    frame_indices: np.ndarray,
    timestamps: np.ndarray,
    detections: Sequence[FrameDetections],
    config: TrackerConfig | None = None,
) -> list[FaceTrack]:
    """The kept tracks over the sampled frames, biggest and longest first: ``Tracker`` in one call."""
    tracker = Tracker(config).add(detections)
    return tracker.select(tracker.tracks(frame_indices, np.asarray(timestamps, np.float64)))
