"""Face crops streamed from extraction to the model in bounded clips.

Extraction hands over each segment's crops per face track as it cuts them; ``ClipStream``
buffers them per track and sends a clip to the model as soon as the clip can no longer
change, keeping only its logits. So the crops held at once are one segment's plus a
bounded buffer per track, whatever the video's length (an ``every:K`` plan over an hour
of video holds no more than over a minute).

When a clip is complete:

- ``clips`` plans: a track's frames inside one of the plan's clips form one model clip,
  complete once a frame of a later plan clip (or the end of the video) arrives;
- other plans (``uniform``, ``every``, ``all``): a track is cut into clips of at most
  ``max_clip`` frames. While at least two clips' worth is buffered the first ``max_clip``
  frames go; at the end the rest is split into equal parts, so a track of up to
  ``2 * max_clip - 1`` frames is cut exactly as if it had been seen whole.

Tracks are provisional while a video is read (a short one may be dropped at the end):
results are kept per provisional track id and the caller takes those of the tracks that
survive, with ``finish``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vidfake.extract.sampling import SamplingPlan


@dataclass
class StreamedClip:
    """One clip of one track, ready for the model."""

    frame_indices: np.ndarray  # (T,) video frame indices
    timestamps: np.ndarray  # (T,) seconds
    crops: np.ndarray  # (T,S,S,3) uint8
    mouths: np.ndarray | None  # (T,M,M,3) uint8


@dataclass
class ClipResult:
    """What the model said about one clip; the crops are gone by now."""

    frame_indices: np.ndarray
    logit: float
    frame_logits: np.ndarray  # aligned with frame_indices
    sync: tuple[float, int] | None = None  # (confidence, offset in frames) when the sync head was used
    mouth: float | None = None  # the mouth-motion head's logit, where the model has one and the clip was long enough


@dataclass
class _Buffer:
    frame_indices: list[np.ndarray] = field(default_factory=list)
    timestamps: list[np.ndarray] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)
    mouths: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(part) for part in self.frame_indices)

    def take(self, n: int) -> StreamedClip:
        """Remove and return the first ``n`` buffered frames. The clip and the rest are
        views of one joined array, so taking clip after clip copies the crops once."""
        parts = {name: _joined(getattr(self, name)) for name in ("frame_indices", "timestamps", "crops")}
        mouths = _joined(self.mouths) if self.mouths else None
        clip = StreamedClip(parts["frame_indices"][:n], parts["timestamps"][:n], parts["crops"][:n],
                            None if mouths is None else mouths[:n])
        self.frame_indices = [parts["frame_indices"][n:]]
        self.timestamps = [parts["timestamps"][n:]]
        self.crops = [parts["crops"][n:]]
        self.mouths = [] if mouths is None else [mouths[n:]]
        return clip

    def compact(self) -> None:
        """Copy what is left out of the joined array the clips taken were views of, so
        that array is freed with them."""
        self.crops = [np.concatenate(self.crops)] if self.crops else []
        self.mouths = [np.concatenate(self.mouths)] if self.mouths else []

    def first_frames(self) -> np.ndarray:
        return np.concatenate(self.frame_indices) if self.frame_indices else np.zeros(0, np.int64)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """``parts`` as one array: the part itself when there is only one (no copy)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


class ClipStream:
    """Buffers each track's crops and runs ``run_clips`` on every clip once it is complete.

    ``run_clips`` takes the complete clips of one track (a list) and returns one
    ``ClipResult`` each. ``plan`` and ``num_frames`` decide the clips (see the module
    docstring); ``plan`` None (a still image) makes the one frame a clip.
    """

    def __init__(self, run_clips: Callable[[list[StreamedClip]], list[ClipResult]], plan: SamplingPlan | None,
                 num_frames: int, max_clip: int):
        self._run = run_clips
        self._max_clip = max_clip
        self._clip_of: dict[int, int] | None = None
        if plan is not None and plan.kind == "clips":
            self._clip_of = {}
            for k, group in enumerate(plan.clip_groups(num_frames)):
                for frame in group.tolist():
                    self._clip_of.setdefault(frame, k)
        self._buffers: dict[int, _Buffer] = {}
        self._results: dict[int, list[ClipResult]] = {}
        self.held = 0  # crops buffered now
        self.peak_held = 0  # the most crops ever buffered at once (what bounds memory)

    def add(self, track_id: int, frame_indices: np.ndarray, timestamps: np.ndarray, crops: np.ndarray,
            mouths: np.ndarray | None) -> None:
        """Crops of one track from one segment, in frame order, after any it was given before."""
        buffer = self._buffers.setdefault(track_id, _Buffer())
        buffer.frame_indices.append(np.asarray(frame_indices, np.int64))
        buffer.timestamps.append(np.asarray(timestamps, np.float64))
        buffer.crops.append(crops)
        if mouths is not None:
            buffer.mouths.append(mouths)
        self.held += len(crops)
        self.peak_held = max(self.peak_held, self.held)
        self._emit(track_id, final=False)

    def finish(self, track_id: int) -> list[ClipResult]:
        """Run the track's last clips and return all of its clip results, in order."""
        if track_id in self._buffers:
            self._emit(track_id, final=True)
            del self._buffers[track_id]
        return self._results.pop(track_id, [])

    def _emit(self, track_id: int, final: bool) -> None:
        buffer = self._buffers[track_id]
        ready: list[StreamedClip] = []
        while len(buffer):
            n = self._ready_length(buffer, final)
            if n == 0:
                break
            ready.append(buffer.take(n))
            self.held -= n
        if ready:
            buffer.compact()
            self._results.setdefault(track_id, []).extend(self._run(ready))

    def _ready_length(self, buffer: _Buffer, final: bool) -> int:
        """How many leading buffered frames form a complete clip (0: none yet)."""
        frames = buffer.first_frames()
        if self._clip_of is not None:
            clip_ids = np.asarray([self._clip_of.get(int(f), -1) for f in frames])
            same = int(np.argmax(clip_ids != clip_ids[0])) if (clip_ids != clip_ids[0]).any() else len(frames)
            return same if same < len(frames) or final else 0
        if len(frames) >= 2 * self._max_clip:
            return self._max_clip
        if final:
            return len(np.array_split(np.arange(len(frames)), -(-len(frames) // self._max_clip))[0])
        return 0
