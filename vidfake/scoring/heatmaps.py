"""Heat maps: where on a face the model sees the forgery, on a track's most suspicious frames.

For each final face track the ``k`` frames with the highest scores are chosen; their crops
are cut again from the file exactly as scoring cut them (``vidfake.extract.recut``) and run
through the frame encoder once more:

- a checkpoint with a mask head gives its blend-mask map (``forward_head``'s mask logits,
  sigmoid: the probability that a pixel was blended in; whatever resolution the head has);
- a checkpoint without one gets Grad-CAM on the encoder's last feature map for the frame's
  fake logit (the channels weighted by their mean gradient, summed, negatives dropped).
  Where no region raises the fake score at all, the map is the evidence shifted to start at
  zero (the least real-looking region), and the frame's entry says so.

The region is the connected part of the map around its peak that reaches half way from the
map's minimum to its peak (cells whose centre lies in the black padding outside the frame
are left out); its box is mapped back through the crop's square (``square_region``) into
frame pixels, the same coordinates as the track's boxes (the turned frame's, when the
verdict has a ``rotation_retry``). The pictures are drawn by ``heatmap_png``.

The pass also gives each chosen frame's score again from the pixels read the second time;
where it is not the scored one (the decoder returned other pixels, as a seek to a keyframe
flag that is no clean random-access point can), the picture keeps a note saying so, and
the verdict a warning: a map is never passed off as the scored frame's when it is not.

Each track's verdict record gets ``heatmaps``: the method, the map's size and, per chosen
frame, its time, score, picture file, the map's peak and the region's box. torch is
imported inside the functions, so importing this module stays cheap.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from vidfake.extract.crop import square_region
from vidfake.extract.recut import read_frames, recut_faces
from vidfake.extract.video import DecodeError, VideoProbe
from vidfake.scoring.heatmap_png import render_heatmap
from vidfake.scoring.heatmap_settings import DEFAULT_HEATMAP_FRAMES

if TYPE_CHECKING:
    import torch

    from vidfake.extract.pipeline import FaceClip, MediaFaces
    from vidfake.scoring.scorer import Scorer
    from vidfake.scoring.verdict import TrackResult

DEFAULT_K = DEFAULT_HEATMAP_FRAMES  # frames per track
METHOD_LABELS = {
    "mask_head": "blend mask (the model's mask head)",
    "grad_cam": "Grad-CAM (this checkpoint has no mask head)",
}
SHORT_LABELS = {"mask_head": "blend mask (mask head)", "grad_cam": "Grad-CAM (no mask head)"}  # on the picture
# The frame's probability from the pixels read again may differ from the scored one by
# float noise only; more means the decoder returned other pixels (e.g. a keyframe flag that
# is no clean random-access point, so a seek decodes the frame differently).
RESCORE_TOLERANCE = 1e-4
DECODE_NOTE = "this frame decoded differently when read again: the picture may not show what was scored"
NO_POSITIVE_NOTE = "no region raises the fake score; the map shows the least real-looking region"


@dataclass(frozen=True)
class HeatmapOptions:
    """Where the pictures go and how many frames per track (``stem`` starts every file
    name, so several files can share one folder)."""

    folder: Path
    k: int = DEFAULT_K
    stem: str = ""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"heat maps need at least 1 frame per track, got k={self.k}")


def heatmap_name(stem: str, track_id: int, frame: int) -> str:
    """The picture's file name: ``<stem>_t<track>_f<frame>.png`` (no stem: ``t<track>_f<frame>.png``)."""
    name = f"t{int(track_id)}_f{int(frame):06d}.png"
    return f"{stem}_{name}" if stem else name


def pick_frames(frame_probs: dict[int, float], k: int) -> list[int]:
    """The ``k`` frames with the highest probability (the earlier frame on a tie), best first."""
    return sorted(frame_probs, key=lambda frame: (-frame_probs[frame], frame))[:k]


# -- the maps ----------------------------------------------------------------------------


class FrameMaps(NamedTuple):
    """What the encoder says about a few frames: their maps and their frame logits."""

    maps: np.ndarray  # (N,h,w)
    method: str  # "mask_head" or "grad_cam"
    no_positive: list[bool]  # per frame: a Grad-CAM without positive evidence, shifted to start at zero
    logits: np.ndarray  # (N,) the frame logits of this pass (to check the frames are the ones scored)


def _forward_maps(encoder, frames: torch.Tensor) -> tuple[torch.Tensor, list | None]:
    """What ``forward_head`` takes: the last feature map, and the earlier stages' maps for
    an encoder with a finer mask decoder (its ``forward_maps``; None without one)."""
    forward_maps = getattr(encoder, "forward_maps", None)  # encoders that can carry a mask decoder
    return forward_maps(frames) if forward_maps is not None else (encoder.forward_features(frames), None)


def frame_maps(encoder, frames: torch.Tensor) -> FrameMaps:
    """The maps of ``frames (N,3,S,S)`` in [0,1], in one pass through the encoder: its
    mask logits when it has a mask head (sigmoid), else Grad-CAM for the frame logit on
    ``forward_features``' map."""
    import torch

    with torch.enable_grad():
        fmap, skips = _forward_maps(encoder, frames.requires_grad_(True))
        _, logits, mask_logits = encoder.forward_head(fmap) if skips is None else encoder.forward_head(fmap, skips)
        frame_logits = logits.detach().float().cpu().numpy()
        if mask_logits is not None:
            maps = torch.sigmoid(mask_logits.detach().float()).cpu().numpy()
            return FrameMaps(maps, "mask_head", [False] * len(maps), frame_logits)
        if fmap.ndim != 4:
            raise ValueError(f"Grad-CAM needs a (N,C,h,w) feature map; this backbone gives {tuple(fmap.shape)}")
        (grad,) = torch.autograd.grad(logits.sum(), fmap)
    cam = (grad.mean(dim=(2, 3), keepdim=True) * fmap.detach()).sum(dim=1).float().cpu().numpy()
    maps, no_positive = [], []
    for evidence in cam:
        positive = np.maximum(evidence, 0.0)
        no_positive.append(not positive.max() > 0)
        maps.append(evidence - evidence.min() if no_positive[-1] else positive)
    return FrameMaps(np.stack(maps), "grad_cam", no_positive, frame_logits)


# -- geometry: map cells -> crop fractions -> frame pixels --------------------------------


def cells_in_frame(shape: tuple[int, int], region: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """``(h,w)`` bool: map cells whose centre lies inside the frame (``frame_size``: width,
    height); the rest of the crop is black padding."""
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in region)
    xs = x1 + (np.arange(w) + 0.5) / w * (x2 - x1)
    ys = y1 + (np.arange(h) + 0.5) / h * (y2 - y1)
    return (ys[:, None] >= 0) & (ys[:, None] < frame_size[1]) & (xs[None, :] >= 0) & (xs[None, :] < frame_size[0])


def hot_region(heat: np.ndarray, valid: np.ndarray) -> tuple[float, tuple[int, int, int, int]]:
    """``(peak, (row0, col0, row1, col1))``: the map's highest valid value and the cell
    bounds (end exclusive) of the 4-connected cells around it that reach half way from the
    valid minimum to the peak."""
    if not valid.any():
        valid = np.ones_like(valid)
    masked = np.where(valid, heat, -np.inf)
    start = np.unravel_index(int(np.argmax(masked)), heat.shape)
    peak, low = float(heat[start]), float(heat[valid].min())
    hot = valid & (heat >= low + 0.5 * (peak - low))
    seen = np.zeros_like(hot)
    seen[start] = True
    queue, rows, cols = deque([start]), [start[0]], [start[1]]
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < heat.shape[0] and 0 <= nc < heat.shape[1] and hot[nr, nc] and not seen[nr, nc]:
                seen[nr, nc] = True
                queue.append((nr, nc))
                rows.append(nr)
                cols.append(nc)
    return peak, (min(rows), min(cols), max(rows) + 1, max(cols) + 1)


def cells_to_fractions(cells: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """Cell bounds -> ``(x1, y1, x2, y2)`` as fractions of the crop's side."""
    r0, c0, r1, c1 = cells
    return c0 / shape[1], r0 / shape[0], c1 / shape[1], r1 / shape[0]


def fractions_to_frame(box: tuple[float, float, float, float], region: np.ndarray,
                       frame_size: tuple[int, int]) -> list[float]:
    """A box in crop fractions -> frame pixels through the crop's square ``region``
    (``square_region``'s ``x1,y1,x2,y2``), clipped to the frame (width, height)."""
    x1, y1, x2, y2 = (float(v) for v in region)
    xs = np.clip([x1 + box[0] * (x2 - x1), x1 + box[2] * (x2 - x1)], 0, frame_size[0])
    ys = np.clip([y1 + box[1] * (y2 - y1), y1 + box[3] * (y2 - y1)], 0, frame_size[1])
    return [round(float(v), 1) for v in (xs[0], ys[0], xs[1], ys[1])]


# -- one file ----------------------------------------------------------------------------


def draw_heatmaps(scorer: Scorer, path: Path, kind: str, probed: VideoProbe | None, faces: MediaFaces,
                  tracks: list[TrackResult | None], options: HeatmapOptions) -> None:
    """Write the pictures of every scored track and add its ``heatmaps`` record.

    Args:
        scorer: the scorer that scored the file (its model, extraction settings and calibration).
        path, kind, probed: the file, "video" or "image", and its probe (None for an image).
        faces: what extraction found (``faces.faces`` aligned with ``tracks``).
        tracks: the final tracks' results (None where nothing of a track was scored).
        options: folder, frames per track, file-name stem.

    A frame that cannot be read again leaves the maps out with a warning on the verdict;
    the score stands. A frame that decodes differently the second time (its score from the
    new pixels is not the scored one) keeps its picture, with a note and a warning."""
    pairs = [(face, track) for face, track in zip(faces.faces, tracks) if track is not None]
    picks = {face.track.track_id: pick_frames(track.frame_probs, options.k) for face, track in pairs}
    wanted = sorted({f for frames in picks.values() for f in frames})
    if not wanted:
        return
    try:
        frames = read_frames(path, kind, wanted, faces.rotation_retry, scorer.extract_config.decoder, probed)
    except (DecodeError, OSError) as error:  # MediaError (an image) is a DecodeError
        faces.warnings.append(f"heat maps were not drawn: the chosen frames could not be read again ({error})")
        return
    options.folder.mkdir(parents=True, exist_ok=True)
    height, width = next(iter(frames.values())).shape[:2]
    for face, track in pairs:
        track.record["heatmaps"] = track_heatmaps(face, track, picks[face.track.track_id], frames, (width, height),
                                                  scorer, options)
    differ = [f"track {t.record['id']} frame {e['frame']}" for _, t in pairs for e in t.record["heatmaps"]["frames"]
              if "rescored" in e]
    if differ:
        faces.warnings.append(f"{', '.join(differ)} decoded differently when read again for the heat maps (their "
                              "score from the new pixels differs): those pictures may not show what was scored")


def track_heatmaps(face: FaceClip, track: TrackResult, picks: list[int], frames: dict[int, np.ndarray],
                   frame_size: tuple[int, int], scorer: Scorer, options: HeatmapOptions) -> dict:
    """One track's ``heatmaps`` record, its pictures written (``picks``: its chosen frames)."""
    from vidfake.scoring.batching import to_tensor

    clip_model, crop = scorer.clip_model, scorer.extract_config.crop
    position = {int(f): t for t, f in enumerate(face.track.frame_indices)}
    boxes = {f: face.track.boxes[position[f]] for f in picks}
    crops = recut_faces(frames, boxes, crop)
    batch = to_tensor(np.stack([crops[f] for f in picks]), clip_model.config.input_size).to(clip_model.device)
    found = frame_maps(clip_model.module.encoder, batch)
    entries = []
    for frame, heat, shifted, logit in zip(picks, found.maps, found.no_positive, found.logits):
        region = square_region(boxes[frame], crop.margin)
        peak, cells = hot_region(heat, cells_in_frame(heat.shape, region, frame_size))
        fractions = cells_to_fractions(cells, heat.shape)
        time_s, score = float(face.track.timestamps[position[frame]]), track.frame_probs[frame]
        file = options.folder / heatmap_name(options.stem, track.record["id"], frame)
        value_range = (0.0, 1.0) if found.method == "mask_head" else (float(heat.min()), peak)
        caption = [f"frame {frame}  t={time_s:.2f} s  score {score:.3f}",
                   f"{SHORT_LABELS[found.method]}  peak {peak:.3g}" + ("  (no positive evidence)" if shifted else "")]
        render_heatmap(crops[frame], heat, value_range, fractions, caption, file)
        entry = {"frame": frame, "time": round(time_s, 4), "score": round(score, 6), "file": str(file),
                 "peak": round(peak, 6), "box": fractions_to_frame(fractions, region, frame_size)}
        notes = [NO_POSITIVE_NOTE] if shifted else []
        rescored = scorer.aggregation.probability(float(logit))
        if abs(rescored - score) > RESCORE_TOLERANCE:
            entry["rescored"] = round(rescored, 6)
            notes.append(DECODE_NOTE)
        if notes:
            entry["note"] = "; ".join(notes)
        entries.append(entry)
    return {"method": found.method, "label": METHOD_LABELS[found.method], "map_size": list(found.maps.shape[1:]),
            "frames": entries}


def options_for(paths: Sequence[Path], folder: Path, k: int = DEFAULT_K) -> dict[Path, HeatmapOptions]:
    """Heat-map options for each of ``paths`` drawn into one ``folder``: the file-name stem
    is the file's own (characters other than letters, digits, ``-``, ``_`` and ``.``
    replaced), with ``-2``, ``-3``... for files of the same name from different folders."""
    options, taken = {}, set()
    for path in paths:
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem) or "file"
        unique, n = stem, 1
        while unique in taken:
            n += 1
            unique = f"{stem}-{n}"
        taken.add(unique)
        options[path] = HeatmapOptions(folder, k, unique)
    return options
