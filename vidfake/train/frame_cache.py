"""A checkpoint's per-frame embeddings and frame logits over an extraction folder, cached.

Choosing between candidate models, heads, temporal statistics and ensemble members on a
development set should not mean decoding and detecting its videos again for each one:
the crops are already extracted, and a frozen encoder gives the same features every
time. This runs the encoder once over every crop of a ``vidfake extract`` folder and
keeps, per crop, the embedding the temporal stage reads and the frame logit, with where
the crop came from (file, face track, frame, time) and the file's label and source. The
cheap experiments then run on the ``.npz`` (:func:`video_scores` turns it into one
score per file, as the scorer's mean over frames does).

    python -m vidfake.train.frame_cache runs/model3/best.safetensors --data data/wilddev160 \\
        --out cache/model3_wilddev.npz

A video-level AUC from crops approximates, but is not, the end-to-end ``vidfake eval``
number (the scorer's plan, tracks and aggregation differ a little): use it to choose,
and report the end-to-end one.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from vidfake.checkpoints.format import build_model, load_checkpoint
from vidfake.eval.metrics import bootstrap_ci, roc_auc
from vidfake.train.data import ClipDataset, load_extracted
from vidfake.train.datamodule import collate_clips

__all__ = ["FrameCache", "cache_frames", "video_scores", "main"]


@dataclass(frozen=True)
class FrameCache:
    """One row per crop: ``media_id``, ``track_id``, ``frame_index``, ``timestamp``,
    ``label`` (1 fake, 0 real; unlabelled files are not read), ``source``, ``embedding`` (N, D) float32 and
    ``frame_logit`` (N,) float32."""

    media_id: np.ndarray
    track_id: np.ndarray
    frame_index: np.ndarray
    timestamp: np.ndarray
    label: np.ndarray
    source: np.ndarray
    embedding: np.ndarray
    frame_logit: np.ndarray

    def save(self, path: Path) -> None:
        """Write a compressed ``.npz`` (under a temporary name, then renamed: never torn)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **{name: getattr(self, name) for name in self.__dataclass_fields__})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FrameCache:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@torch.no_grad()
def cache_frames(checkpoint: Path, data_dir: Path, batch_size: int = 64, progress: bool = True) -> FrameCache:
    """Run ``checkpoint``'s frame encoder over every crop of ``data_dir`` (no augmentation)."""
    model = build_model(load_checkpoint(checkpoint)).eval()
    items = load_extracted(data_dir, clip_len=1)
    if not items:
        raise ValueError(f"{data_dir}: no face crops (is it a `vidfake extract` output folder?)")
    loader = DataLoader(ClipDataset(items), batch_size=batch_size, collate_fn=collate_clips)
    embeddings, logits = [], []
    for batch in tqdm(loader, desc="frames", unit="batch", disable=not progress):
        frames = batch["frames"][:, 0].float() / 255.0
        emb, logit, _ = model.encoder(frames)
        embeddings.append(emb.float().numpy())
        logits.append(logit.float().numpy())
    return FrameCache(
        media_id=np.array([item.media_id for item in items]),
        track_id=np.array([item.track_id for item in items], np.int32),
        frame_index=np.array([item.frame_indices[0] if item.frame_indices else -1 for item in items], np.int64),
        timestamp=np.array([item.timestamps[0] for item in items], np.float32),
        label=np.array([item.label for item in items], np.int8),
        source=np.array([item.origin or "" for item in items]),
        embedding=np.concatenate(embeddings),
        frame_logit=np.concatenate(logits),
    )


def video_scores(cache: FrameCache, frame_scores: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One score per file: the mean of ``frame_scores`` (default: the frame logits) over its
    crops, every face together. Returns ``media_id``, ``label``, ``source`` and ``score``
    arrays, in the order files first appear."""
    scores = cache.frame_logit if frame_scores is None else np.asarray(frame_scores, np.float64)
    order: dict[str, int] = {}
    for media_id in cache.media_id:
        order.setdefault(str(media_id), len(order))
    index = np.array([order[str(m)] for m in cache.media_id])
    sums = np.bincount(index, weights=scores, minlength=len(order))
    counts = np.bincount(index, minlength=len(order))
    first = np.full(len(order), -1)
    first[index[::-1]] = np.arange(len(index))[::-1]
    return {"media_id": np.array(list(order)), "label": cache.label[first].astype(int),
            "source": cache.source[first], "score": sums / counts}


def _summary(videos: dict[str, np.ndarray]) -> dict:
    low, high = bootstrap_ci(roc_auc, videos["label"], videos["score"])
    return {"videos": int(len(videos["label"])), "fake": int(videos["label"].sum()),
            "auc": roc_auc(videos["label"], videos["score"]), "auc_95": [low, high]}


def main(argv: list[str] | None = None) -> int:
    """Command line: cache a checkpoint's frames and print the video AUC; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m vidfake.train.frame_cache", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a vidfake checkpoint")
    parser.add_argument("--data", type=Path, required=True, help="a `vidfake extract` output folder")
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cache = cache_frames(args.checkpoint, args.data, args.batch_size, progress=not args.no_progress)
    cache.save(args.out)
    summary = {"crops": int(len(cache.frame_logit)), **_summary(video_scores(cache))}  # labelled files only
    if args.json:
        print(json.dumps(summary))
    else:
        low, high = summary["auc_95"]
        print(f"{summary['crops']} crops, {summary['videos']} files ({summary['fake']} fake): "
              f"video AUC of the mean frame logit {summary['auc']:.3f} [{low:.3f}, {high:.3f}] -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
