"""Training data from a `vidfake extract` output folder (plain torch, no Lightning).

* :func:`load_extracted` reads ``DIR/tracks.jsonl`` into :class:`ClipItem` s: one per face
  track, or one per ``clip_len`` window of a track.
* :func:`split_by_group` makes a leak-free train/val split (see its docstring for the rule).
* :class:`ClipDataset` loads an item's crops with Pillow; a ``transform`` hook (SBI,
  augmentation) runs on numpy arrays before the tensors are made.
* :func:`balanced_sampler_weights` gives weights for ``WeightedRandomSampler`` that balance
  real/fake and, among fakes, the manipulation methods.
"""
from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vidfake.extract.crop import square_region
from vidfake.extract.folder import ExtractionFolder
from vidfake.train.audio import SyncAudio, clip_audio

log = logging.getLogger(__name__)

# FF++ methods that paste another identity's face (the face in XXX_YYY belongs to YYY).
# Reenactment methods (Face2Face, NeuralTextures) keep XXX's face and are not joined.
SWAP_METHODS = frozenset({"deepfakes", "faceswap", "faceshifter", "deepfakedetection"})


@dataclass(frozen=True)
class ClipItem:
    """One face track (or one window of it) ready to load."""

    media_id: str
    track_id: int
    label: int | None  # 1 fake, 0 real
    method: str | None
    group: str | None
    crop_files: list[Path]  # absolute paths of the face crops, in time order
    mouth_files: list[Path]  # absolute paths of the mouth crops (empty when not extracted)
    timestamps: list[float]  # seconds, on the video's time line
    landmarks_in_crop: np.ndarray  # (T,5,2) float32, crop pixel coordinates
    audio: dict | None  # the record's audio entry, "file" made absolute (or None)
    frame_indices: tuple[int, ...] = ()  # the video frame of each crop
    fps: float | None = None  # the video's frame rate (None for images)
    origin: str | None = None  # where the file came from (repository or dataset), for source-balanced batches

    def __len__(self) -> int:
        return len(self.crop_files)

    @property
    def consecutive(self) -> bool:
        """Whether the crops are of consecutive video frames (what the sync head needs)."""
        return len(self.frame_indices) == len(self) and all(
            b - a == 1 for a, b in zip(self.frame_indices, self.frame_indices[1:]))

    @property
    def sync_ready(self) -> bool:
        """Mouth crops, audio and consecutive frames at a known rate: the sync head can use it."""
        return bool(self.mouth_files) and self.audio is not None and bool(self.fps) and self.consecutive


# --- geometry ----------------------------------------------------------------------------

def landmarks_to_crop(landmarks: np.ndarray, boxes: np.ndarray, margin: float, size: int) -> np.ndarray:
    """Map ``(T,K,2)`` full-frame landmarks (K = 5 here) into the ``size x size`` crop of each box.

    The crop is the integer square ``square_region(box, margin)`` (box centre +/-
    ``max(w,h) * (1 + 2*margin) / 2``, rounded) resized to ``size``, exactly as
    :func:`vidfake.extract.crop.crop_face` cuts it; coordinates are continuous pixels
    (the crop's top-left corner is 0, its bottom-right ``size``)."""
    points = np.asarray(landmarks, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if points.ndim != 3 or points.shape[-1] != 2 or len(points) != len(boxes):
        raise ValueError(f"landmarks of shape {points.shape} do not match {len(boxes)} boxes (want (T,K,2))")
    out = np.empty_like(points)
    for t, box in enumerate(boxes):
        x1, y1, x2, y2 = square_region(box, margin)
        out[t, :, 0] = (points[t, :, 0] - x1) * size / (x2 - x1)
        out[t, :, 1] = (points[t, :, 1] - y1) * size / (y2 - y1)
    return out.astype(np.float32)


# --- loading -----------------------------------------------------------------------------

def _runs(frame_indices: Sequence[int], positions: list[int]) -> list[list[int]]:
    """``positions`` split where the video frame index does not step by exactly 1."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and frame_indices[p] - frame_indices[runs[-1][-1]] == 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def load_extracted(dir: Path, clip_len: int | None = None, stride: int = 1, consecutive: bool = False) -> list[ClipItem]:
    """Items for every track of every ``status == "ok"`` record of ``dir/tracks.jsonl``.

    ``stride`` keeps every ``stride``-th crop of a track (temporal subsampling). With
    ``clip_len`` the (subsampled) track is cut into consecutive, non-overlapping windows of
    ``clip_len`` positions (a shorter tail is dropped); without it, one item per track.
    With ``consecutive`` (for the sync head, and temporal models on a ``clips`` plan),
    windows are cut inside runs of consecutive video frames only, so none straddles a gap
    between the plan's clips. Records whose label is null are skipped (their count is
    logged)."""
    out_dir = Path(dir)
    if clip_len is not None and clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if consecutive and stride != 1:
        raise ValueError("consecutive windows need stride 1")
    folder = ExtractionFolder(out_dir)
    crop = folder.extract_config().crop  # strict: a folder without its settings is refused, not guessed at
    items: list[ClipItem] = []
    unlabelled = 0
    for record in folder.records():
        if record.status != "ok":
            continue
        if record.label is None:
            unlabelled += 1
            continue
        audio = {**record.audio, "file": folder.audio(record.audio["file"])} if record.audio else None
        fps = record.fps
        for track in record.tracks:
            positions = list(range(0, len(track.crops), stride))
            frame_indices = track.frame_indices
            runs = _runs(frame_indices, positions) if consecutive and frame_indices else [positions]
            windows = []
            for run in runs:
                if clip_len is None:
                    windows += [run] if run else []
                else:
                    windows += [run[i : i + clip_len] for i in range(0, len(run) - clip_len + 1, clip_len)]
            if not windows:
                continue
            landmarks = landmarks_to_crop(track.landmarks, track.boxes, crop.margin, crop.size)
            mouths = track.mouths
            for window in windows:
                items.append(ClipItem(
                    media_id=record.media_id,
                    track_id=int(track.track_id),
                    label=int(record.label),
                    method=record.method,
                    group=record.group,
                    crop_files=[folder.image(track.crops[p]) for p in window],
                    mouth_files=[folder.mouth(mouths[p]) for p in window] if mouths else [],
                    timestamps=[float(track.timestamps[p]) for p in window],
                    landmarks_in_crop=landmarks[window],
                    audio=audio,
                    frame_indices=tuple(int(frame_indices[p]) for p in window) if frame_indices else (),
                    fps=fps,
                    origin=record.origin,
                ))
    if unlabelled:
        log.warning("%s: skipped %d record(s) with no label", out_dir, unlabelled)
    return items


# --- split -------------------------------------------------------------------------------

class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _swap_partner(item: ClipItem) -> str | None:
    """``"ffpp:YYY"`` for an FF++ face swap ``XXX_YYY`` grouped as ``"ffpp:XXX"``, else None."""
    if not (item.group or "").startswith("ffpp:") or (item.method or "").lower() not in SWAP_METHODS:
        return None
    target = item.group[len("ffpp:"):]
    name = item.media_id.rsplit("/", 1)[-1].split("__")[0]  # DeepFakeDetection: 01_02__scene__ID
    match = re.fullmatch(r"([^_]+)_([^_-]+)(-[0-9a-f]{8})?", name)  # "-hash": collect_media's de-dup suffix
    if match is None or match.group(1) != target:
        return None
    return f"ffpp:{match.group(2)}"


def connected_groups(items: Sequence[ClipItem]) -> list[int]:
    """The component index of each item (see :func:`split_by_group` for what connects)."""
    uf = _UnionFind()
    for item in items:
        media = f"media:{item.media_id}"
        uf.find(media)
        if item.group is not None:
            uf.union(media, f"group:{item.group}")
        partner = _swap_partner(item)
        if partner is not None:
            uf.union(media, f"group:{partner}")
    roots: dict[str, int] = {}
    return [roots.setdefault(uf.find(f"media:{item.media_id}"), len(roots)) for item in items]


def split_by_group(items: Sequence[ClipItem], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[ClipItem], list[ClipItem]]:
    """Leak-free ``(train, val)``: whole connected components go to one side.

    Items are connected when they (a) come from the same ``media_id`` (all windows and
    tracks of one file), (b) share a ``group`` (a fake and the real video it was made from:
    ``dfdc:<original>``, ``ffpp:<XXX>``), or (c) form an FF++ face swap: a fake ``XXX_YYY``
    of group ``ffpp:XXX`` whose method is in :data:`SWAP_METHODS` also joins ``ffpp:YYY``,
    since the face it shows is YYY's identity.

    Components are visited in an order shuffled by ``seed`` and one goes to val when it
    brings val's per-class item counts closer to ``val_fraction`` of each class (so val
    gets both classes when it can); afterwards, a class missing from one side is moved
    over from the other when that side has it in several components."""
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    component = connected_groups(items)
    members: dict[int, list[int]] = defaultdict(list)
    for index, c in enumerate(component):
        members[c].append(index)
    counts = {c: Counter(items[i].label for i in idx) for c, idx in members.items()}
    totals = Counter(item.label for item in items)
    target = {label: val_fraction * n for label, n in totals.items()}

    order = list(members)
    np.random.default_rng(seed).shuffle(order)
    val: set[int] = set()
    have: Counter = Counter()

    def distance(counter: Counter) -> float:
        return sum(abs(counter[label] - target[label]) for label in target)

    for c in order:
        if distance(have + counts[c]) < distance(have):
            val.add(c)
            have += counts[c]

    # Keep both classes on each side where the components allow it.
    for label in totals:
        holders = [c for c in order if counts[c][label]]
        if len(holders) < 2:
            continue
        in_val = [c for c in holders if c in val]
        if not in_val and val_fraction > 0:
            val.add(min(holders, key=lambda c: sum(counts[c].values())))
        elif len(in_val) == len(holders) and val_fraction < 1:
            val.discard(min(in_val, key=lambda c: sum(counts[c].values())))

    train = [item for item, c in zip(items, component) if c not in val]
    valid = [item for item, c in zip(items, component) if c in val]
    return train, valid


# --- dataset -----------------------------------------------------------------------------

Transform = Callable[[dict, np.random.Generator], dict]


def _load_images(files: Sequence[Path]) -> np.ndarray:
    """``(T,H,W,3)`` uint8."""
    frames = []
    for path in files:
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    return np.stack(frames)


class ClipDataset(Dataset):
    """Loads :class:`ClipItem` s. Each sample is a dict:

    ``frames`` uint8 ``(T,3,S,S)``, ``label`` float32 scalar (NaN when unknown), ``times``
    float32 ``(T,)`` seconds since the first frame, ``landmarks`` float32 ``(T,5,2)`` in
    crop pixels, ``mouths`` uint8 ``(T,3,M,M)`` (only when the item has mouth crops),
    ``method`` and ``media_id`` strings.

    With ``sync_audio`` (lip-sync training) every item must have mouth crops, and samples
    also carry ``audio`` float32 ``(S,)`` (the clip's window, see
    :func:`vidfake.train.audio.clip_audio`; empty when unusable), ``fps`` float,
    ``has_audio`` bool (the sync head can use this sample: audio with sound, consecutive
    frames), ``sync_shift`` int (frames the audio was moved; 0 = in sync) and
    ``sync_known`` bool (the audio is the clip's own, so its alignment is known: real items).

    ``transform(sample, rng)`` runs before the tensors are made, on ``frames`` / ``mouths``
    as ``(T,H,W,3)`` uint8 numpy, ``landmarks`` ``(T,5,2)`` and ``label`` a float; it
    returns the (possibly new) dict, whose arrays are then converted. ``rng`` is seeded
    from torch's random generator, so a run seeded with ``seed_everything(..., workers=True)``
    repeats its pseudo-fakes and augmentations (each DataLoader worker has its own torch
    stream, and a new one every epoch); with ``seed`` it is derived from ``(seed, epoch,
    index)`` instead, fixed per sample (validation copies; call :meth:`set_epoch` for new
    draws). An index ``(index, pair_seed)`` (see
    :class:`~vidfake.train.sampling.PairedBalancedSampler`) loads ``index`` and passes the
    transform ``pair_seed`` in the sample, which it must remove."""

    def __init__(self, items: Sequence[ClipItem], transform: Transform | None = None, seed: int | None = None,
                 sync_audio: SyncAudio | None = None) -> None:
        self.items = list(items)
        self.transform = transform
        self.seed = seed
        self.sync_audio = sync_audio
        self.epoch = 0
        if sync_audio is not None:
            missing = [item.media_id for item in self.items if not item.mouth_files]
            if missing:
                raise ValueError(f"{len(missing)} item(s) have no mouth crops (e.g. {missing[0]}); lip-sync training "
                                 "needs them: extract without --no-mouths")

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's random transforms (each sample's generator is seeded by seed, epoch, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        pair_seed = None
        if isinstance(index, tuple):  # (index, pair_seed) from PairedBalancedSampler
            index, pair_seed = index
        item = self.items[index]
        times = np.asarray(item.timestamps, np.float32)
        sample = {
            "frames": _load_images(item.crop_files),
            "label": float("nan") if item.label is None else float(item.label),
            "times": times - times[0],
            "landmarks": np.asarray(item.landmarks_in_crop, np.float32),
            "method": item.method or "",
            "media_id": item.media_id,
        }
        if item.mouth_files:
            sample["mouths"] = _load_images(item.mouth_files)
        if self.seed is None:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.sync_audio is not None:
            sample.update(_sync_fields(item, self.sync_audio, rng))
        if self.transform is not None:
            if pair_seed is not None:
                sample["pair_seed"] = int(pair_seed)
            sample = self.transform(sample, rng)
        return _to_tensors(sample)


def _sync_fields(item: ClipItem, options: SyncAudio, rng: np.random.Generator) -> dict:
    shift = options.draw_shift(rng)
    audio = np.zeros(0, np.float32)
    if item.sync_ready:
        audio = clip_audio(item.audio, item.timestamps[0], len(item), item.fps, options, shift)
    return {
        "audio": audio,
        "fps": float(item.fps or 0.0),
        "has_audio": bool(audio.size and np.abs(audio).max() > 0),
        "sync_shift": shift,
        "sync_known": item.label == 0,
    }


def _to_tensors(sample: dict) -> dict:
    out = dict(sample)
    for key in ("frames", "mouths"):
        if key in out and isinstance(out[key], np.ndarray):
            out[key] = torch.from_numpy(np.ascontiguousarray(out[key].transpose(0, 3, 1, 2)))
    if isinstance(out.get("blend_mask"), np.ndarray):  # (T,H,W) uint8, 255 = fully blended
        out["blend_mask"] = torch.from_numpy(np.ascontiguousarray(out["blend_mask"], np.uint8))
    for key in ("times", "landmarks", "audio"):
        if isinstance(out.get(key), np.ndarray):
            out[key] = torch.from_numpy(np.ascontiguousarray(out[key], np.float32))
    if not isinstance(out["label"], torch.Tensor):
        out["label"] = torch.tensor(out["label"], dtype=torch.float32)
    return out


# --- sampling ----------------------------------------------------------------------------

def fake_source_pairs(items: Sequence[ClipItem]) -> list[tuple[int, int]]:
    """``(fake, real)`` item indices: every labelled fake whose group also holds real items,
    paired with the real item of its group closest in time (the same frame when both
    videos were cut by one plan), so a batch can hold a fake and a real that share their
    footage. Where the manifest's group is a fake and its source (an FF++ fake and its
    original, a lip-sync output and the video it was given) that is the manipulation's own
    input; where it is a whole repository (``repo:...``), it is a real video from the same
    page, pipeline and codec, which still leaves the source nothing to tell."""
    reals: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if item.label == 0 and item.group:
            reals.setdefault(item.group, []).append(index)
    pairs = []
    for index, item in enumerate(items):
        if item.label != 1 or item.group not in reals:
            continue
        start = item.timestamps[0] if item.timestamps else 0.0
        nearest = min(reals[item.group],
                      key=lambda r: (abs((items[r].timestamps[0] if items[r].timestamps else 0.0) - start), r))
        pairs.append((index, nearest))
    return pairs


def balanced_sampler_weights(items: Sequence[ClipItem], by: str = "method") -> torch.Tensor:
    """Per-item weights (float64, summing to 1) for ``WeightedRandomSampler``: real and fake
    carry equal total weight and, within them, by ``by``:

    * ``"label"``: nothing more;
    * ``"method"``: each fake method equally (a missing method counts as one "unknown" method);
    * ``"source"``: each source (the repository or dataset a file came from, ``ClipItem.origin``)
      equally within each class, so a model cannot learn a large source's look as its label.

    Unlabelled items get weight 0; a class that is absent leaves the whole weight to the other."""
    def bucket(item: ClipItem):
        if by == "source":
            return (item.label, item.origin or "unknown")
        if item.label == 1 and by == "method":
            return (1, item.method or "unknown")
        return (item.label, None)

    keys = [bucket(item) for item in items]
    sizes = Counter(keys)
    per_class = Counter(label for label, _ in sizes if label is not None)  # buckets per class
    n_classes = len(per_class)
    weights = torch.zeros(len(items), dtype=torch.float64)
    for i, (label, name) in enumerate(keys):
        if label is None:
            continue
        weights[i] = 1.0 / (n_classes * per_class[label] * sizes[(label, name)])
    return weights
