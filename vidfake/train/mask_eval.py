"""How well a checkpoint's blend-mask map finds the blended region, on self-blended faces.

``python -m vidfake.train.mask_eval CHECKPOINT --data EXTRACTION_DIR [--json]``

Real fakes rarely come with a mask of what was edited, but a self-blended image (SBI,
:mod:`vidfake.train.sbi`) does: each held-back real crop is self-blended with a fixed seed
and the model's map is compared with the true blend mask:

* **IoU**: the map (sigmoid) thresholded at ``threshold``, each cell covering its block
  of crop pixels, against the true blend region (the mask's pixels of at least half its
  peak, so a faint blend, SBI's blend ratios go down to 0.25, has a region too), per
  image, averaged.
  Measured at the crop's resolution, so a coarse (stride 32) and a fine (stride 4) map
  are judged on the same pixels, and a map equal to the true mask gives 1.
* **Pointing accuracy**: the share of images whose map peaks (argmax cell's centre)
  inside the true mask.

Held back means the validation split of ``vidfake train`` with the same ``val_fraction``
and seed (``--split val``, the default), or a whole folder no run trained on (``--split
all``, e.g. a development set). The peak probability of the map on the untouched real
crops, and on the folder's labelled fakes, is reported too (a map should stay low on
real faces; on real fakes, with no mask to compare with, its peak is all there is).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from vidfake.checkpoints.format import CheckpointError, build_model, load_checkpoint
from vidfake.train.config import DataConfig
from vidfake.train.data import ClipDataset, ClipItem, load_extracted, split_by_group
from vidfake.train.datamodule import ValSBITransform, ValTransform, collate_clips

__all__ = ["mask_scores", "evaluate_mask_map", "MASK_EVAL_SEED", "main"]

MASK_EVAL_SEED = 2468  # fixed blends: the same checkpoint and folder always give the same numbers


def mask_scores(probs: torch.Tensor, true_masks: torch.Tensor, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per image ``(IoU, pointing hit)`` of maps ``probs (N,h,w)`` in [0,1] against true
    masks ``(N,H,W)`` in [0,1] (see the module docstring). An image whose true mask is
    all zero has no region to find: its IoU and hit are NaN."""
    if probs.ndim != 3 or true_masks.ndim != 3 or len(probs) != len(true_masks):
        raise ValueError(f"expected maps (N,h,w) and masks (N,H,W), got {tuple(probs.shape)} and "
                         f"{tuple(true_masks.shape)}")
    n, h, w = probs.shape
    big_h, big_w = true_masks.shape[-2:]
    peak_value = true_masks.flatten(1).amax(1)
    truth = (true_masks >= 0.5 * peak_value[:, None, None]) & (peak_value[:, None, None] > 0)
    upsampled = F.interpolate(probs[:, None].float(), size=(big_h, big_w), mode="nearest-exact")[:, 0]
    predicted = upsampled >= threshold
    union = (predicted | truth).flatten(1).sum(1).double()
    iou = (predicted & truth).flatten(1).sum(1).double() / union.clamp(min=1)
    peak = probs.flatten(1).argmax(1)
    rows = ((peak // w).double() + 0.5) * big_h / h
    cols = ((peak % w).double() + 0.5) * big_w / w
    hits = truth[torch.arange(n), rows.long().clamp(max=big_h - 1), cols.long().clamp(max=big_w - 1)].double()
    empty = ~truth.flatten(1).any(1)
    iou[empty], hits[empty] = float("nan"), float("nan")
    return iou.numpy(), hits.numpy()


def _map_probs(model: torch.nn.Module, loader: DataLoader, device: str, what: str, progress: bool):
    """Yield ``(P(blended) maps (N,h,w), batch)`` of every single-frame batch in ``loader``."""
    for batch in tqdm(loader, desc=what, unit="batch", disable=not progress, dynamic_ncols=True):
        out = model(batch["frames"].to(device), batch["times"].to(device), batch["mask"].to(device))
        yield torch.sigmoid(out.mask_logits[:, 0].float()).cpu(), batch


def _peaks(model, items: list[ClipItem], batch_size: int, device: str, what: str, progress: bool) -> dict:
    """Mean and median of the map's peak probability over ``items`` as they are."""
    if not items:
        return {"images": 0, "peak_mean": None, "peak_median": None}
    loader = DataLoader(ClipDataset(items, ValTransform()), batch_size=batch_size, collate_fn=collate_clips)
    peaks = np.concatenate([p.flatten(1).amax(1).numpy() for p, _ in _map_probs(model, loader, device, what, progress)])
    return {"images": int(len(peaks)), "peak_mean": float(peaks.mean()), "peak_median": float(np.median(peaks))}


def _held_back(data_dir: Path, split: str, val_fraction: float, split_seed: int) -> list[ClipItem]:
    items = load_extracted(data_dir, clip_len=1)
    if split == "val":
        _, items = split_by_group(items, val_fraction, split_seed)
    elif split != "all":
        raise ValueError(f"split must be 'val' or 'all', got {split!r}")
    return items


def _subset(items: list[ClipItem], limit: int | None, seed: int) -> list[ClipItem]:
    if limit is None or len(items) <= limit:
        return items
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:limit])
    return [items[i] for i in keep]


@torch.no_grad()
def evaluate_mask_map(
    checkpoint: str | Path,
    data_dir: str | Path,
    *,
    split: str = "val",
    val_fraction: float = DataConfig.val_fraction,
    split_seed: int = DataConfig.seed,
    limit: int | None = 500,
    threshold: float = 0.5,
    seed: int = MASK_EVAL_SEED,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """IoU and pointing accuracy of ``checkpoint``'s mask map on self-blended copies of
    the held-back real crops of ``data_dir`` (at most ``limit`` of them, a seeded draw),
    and the map's peaks on those reals and the folder's labelled fakes (``limit`` each).

    Returns:
        A JSON-ready dict: ``images`` (SBI fakes measured), ``iou``, ``pointing``,
        ``skipped`` (fakes whose blend mask came out empty), ``map_size``, the settings
        and ``real`` / ``dataset_fakes`` / ``sbi_fakes`` peak statistics.

    Raises:
        ValueError: the checkpoint has no mask head, or the split holds no real crops.
        CheckpointError: an unreadable checkpoint.
    """
    source = load_checkpoint(checkpoint)
    if not source.settings.model.mask_head:
        raise ValueError(f"{checkpoint}: the model has no blend-mask head (model.mask_head), so no map to measure")
    model = build_model(source, device)

    items = _held_back(Path(data_dir), split, val_fraction, split_seed)
    reals = _subset([i for i in items if i.label == 0], limit, seed)
    fakes = _subset([i for i in items if i.label == 1], limit, seed)
    if not reals:
        raise ValueError(f"{data_dir}: the {split} split holds no real face crops to self-blend")
    blends = ClipDataset(reals, ValSBITransform(blend_masks=True), seed=seed)
    loader = DataLoader(blends, batch_size=batch_size, collate_fn=collate_clips)
    ious, hits, peaks, size = [], [], [], None
    for probs, batch in _map_probs(model, loader, device, "self-blended", progress):
        iou, hit = mask_scores(probs, batch["blend_mask"][:, 0].float() / 255, threshold)
        ious.append(iou)
        hits.append(hit)
        peaks.append(probs.flatten(1).amax(1).numpy())
        size = list(probs.shape[-2:])
    iou, hit, peak = np.concatenate(ious), np.concatenate(hits), np.concatenate(peaks)
    measured = ~np.isnan(iou)
    return {
        "checkpoint": str(checkpoint), "sha256": source.sha256, "data": str(data_dir), "split": split,
        "images": int(measured.sum()), "skipped": int((~measured).sum()),
        "iou": float(iou[measured].mean()) if measured.any() else None,
        "pointing": float(hit[measured].mean()) if measured.any() else None,
        "threshold": threshold, "map_size": size, "seed": seed,
        "sbi_fakes": {"images": int(len(peak)), "peak_mean": float(peak.mean()), "peak_median": float(np.median(peak))},
        "real": _peaks(model, reals, batch_size, device, "real", progress),
        "dataset_fakes": _peaks(model, fakes, batch_size, device, "dataset fakes", progress),
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m vidfake.train.mask_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a vidfake checkpoint with a mask head")
    p.add_argument("--data", type=Path, required=True, help="a `vidfake extract` folder with real face crops")
    p.add_argument("--split", choices=("val", "all"), default="val",
                   help="val: the held-out split of `vidfake train` (--val-fraction, --split-seed); "
                        "all: every crop (a folder no run trained on)")
    p.add_argument("--val-fraction", type=float, default=DataConfig.val_fraction)
    p.add_argument("--split-seed", type=int, default=DataConfig.seed)
    p.add_argument("--limit", type=int, default=500, help="at most this many real crops (and dataset fakes); 0: all")
    p.add_argument("--threshold", type=float, default=0.5, help="map probability counted as blended (IoU)")
    p.add_argument("--seed", type=int, default=MASK_EVAL_SEED, help="the self-blends' seed")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; exit code 2 for an unusable checkpoint or folder."""
    args = build_parser().parse_args(argv)
    try:
        result = evaluate_mask_map(
            args.checkpoint, args.data, split=args.split, val_fraction=args.val_fraction, split_seed=args.split_seed,
            limit=args.limit if args.limit > 0 else None, threshold=args.threshold, seed=args.seed, batch_size=args.batch_size,
            device=args.device, progress=not args.no_progress and not args.json,
        )
    except (CheckpointError, OSError, ValueError) as error:
        print(f"mask_eval: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    def fmt(value):
        return "n/a" if value is None else f"{value:.3f}"

    print(f"{result['images']} self-blended crops, map {result['map_size'][0]}x{result['map_size'][1]}: "
          f"IoU {fmt(result['iou'])} (threshold {result['threshold']}), pointing {fmt(result['pointing'])}")
    for key in ("sbi_fakes", "real", "dataset_fakes"):
        part = result[key]
        print(f"  map peak on {key.replace('_', ' ')}: mean {fmt(part['peak_mean'])}, "
              f"median {fmt(part['peak_median'])} ({part['images']} crops)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
