"""Does a temporal stage trained on frozen frame features beat the frame-only score on wild-dev?

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/temporal_heads.py --train cache/train160.npz --dev cache/wilddev160.npz \\
        [--steps 300 1000] [--seeds 0 1] [--out FILE]

The two ``.npz`` files are :mod:`vidfake.train.frame_cache` outputs of one checkpoint: its
per-crop embeddings and frame logits over the training extraction and over wild-dev's.
Each face track is cut into runs of 8 consecutive frames (the scoring plan's clip), and
two temporal stages are trained on the training runs, over the frozen features, each as a
correction added to the clip's mean frame logit (so an untrained stage is the frame-only
score):

- ``transformer``: the model's own :class:`~vidfake.temporal.transformer.TemporalTransformer`
  (2 layers, time encoding, CLS pooling), as 2026.12.3 shipped it;
- ``conv``: an FTCN-like stage: the embeddings and their frame-to-frame change through two
  temporal convolutions (kernel 3) and a mean over time.

Training batches are balanced by source and class (the training recipe's rule). Every
wild-dev file with at least one full run gets one score: its runs' mean clip logit, against
the frame-only score of the same runs. The result (``benchmarks/results/temporal_heads.json``)
is the video AUC of both with the paired difference's 95 % interval, per stage, step
count and seed: the issue's test is whether the temporal stage adds at least 0.02.
Nothing here is fitted on wild-dev.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidfake.eval.metrics import bootstrap_ci, paired_bootstrap_difference, roc_auc
from vidfake.temporal.config import ModelConfig
from vidfake.temporal.transformer import TemporalTransformer
from vidfake.train.frame_cache import FrameCache

from common import REPO, git_state, machine_info

RUN = 8  # frames per clip, as the scoring plan clips:8x8
BATCH = 64


def runs_of(cache: FrameCache) -> dict[str, np.ndarray]:
    """Every run of ``RUN`` consecutive frames (frame index gaps of at most 2) of every track:
    ``embedding (R,RUN,D)``, ``frame_logit (R,RUN)``, ``timestamp (R,RUN)``, and per run
    ``label``, ``source`` and ``media_id``."""
    tracks: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, (media, track) in enumerate(zip(cache.media_id, cache.track_id)):
        tracks[(str(media), int(track))].append(i)
    picked: list[list[int]] = []
    for rows in tracks.values():
        rows.sort(key=lambda i: cache.frame_index[i])
        current = [rows[0]]
        for before, after in zip(rows, rows[1:]):
            if cache.frame_index[after] - cache.frame_index[before] <= 2:
                current.append(after)
                continue
            picked += [current[s:s + RUN] for s in range(0, len(current) - RUN + 1, RUN)]
            current = [after]
        picked += [current[s:s + RUN] for s in range(0, len(current) - RUN + 1, RUN)]
    index = np.array(picked, dtype=np.int64)
    first = index[:, 0]
    return {"embedding": cache.embedding[index], "frame_logit": cache.frame_logit[index],
            "timestamp": cache.timestamp[index], "label": cache.label[first].astype(np.float32),
            "source": cache.source[first], "media_id": cache.media_id[first]}


class ConvStage(nn.Module):
    """Embeddings and their frame-to-frame change -> two temporal convolutions -> mean over
    time -> a correction to the mean frame logit (zero at initialisation)."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.conv1 = nn.Conv1d(2 * hidden, hidden, 3, padding=1)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, emb: Tensor, times: Tensor, mask: Tensor, frame_logits: Tensor) -> tuple[Tensor, Tensor]:
        x = self.inp(emb)
        change = torch.diff(x, dim=1, prepend=x[:, :1])
        h = F.gelu(self.conv2(F.gelu(self.conv1(torch.cat([x, change], -1).transpose(1, 2)))))
        pooled = h.mean(-1)
        return pooled, self.head(pooled).squeeze(-1) + frame_logits.mean(1)


def make_stage(kind: str, dim: int) -> nn.Module:
    if kind == "transformer":
        return TemporalTransformer(ModelConfig(embed_dim=dim, temporal_layers=2, temporal_heads=4))
    return ConvStage(dim)


def train_stage(stage: nn.Module, runs: dict[str, np.ndarray], steps: int, seed: int) -> nn.Module:
    """AdamW (lr 1e-3) on the clip logit's BCE, batches drawn balanced by source and class."""
    keys = [f"{s}|{int(y)}" for s, y in zip(runs["source"], runs["label"])]
    counts: dict[str, int] = defaultdict(int)
    for key in keys:
        counts[key] += 1
    weights = torch.tensor([1.0 / counts[k] for k in keys])
    emb, logits = torch.from_numpy(runs["embedding"]), torch.from_numpy(runs["frame_logit"])
    times, labels = torch.from_numpy(runs["timestamp"]), torch.from_numpy(runs["label"])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(stage.parameters(), lr=1e-3, weight_decay=0.05)
    mask = torch.ones(BATCH, RUN, dtype=torch.bool)
    stage.train()
    for _ in range(steps):
        pick = torch.multinomial(weights, BATCH, replacement=True, generator=generator)
        _, clip_logit = stage(emb[pick], times[pick], mask, frame_logits=logits[pick])
        loss = F.binary_cross_entropy_with_logits(clip_logit, labels[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return stage.eval()


@torch.no_grad()
def video_scores(stage: nn.Module, runs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per file: (label, mean temporal clip logit, mean frame-only clip logit)."""
    emb, logits = torch.from_numpy(runs["embedding"]), torch.from_numpy(runs["frame_logit"])
    times = torch.from_numpy(runs["timestamp"])
    clip = []
    for part in torch.arange(len(emb)).split(256):
        mask = torch.ones(len(part), RUN, dtype=torch.bool)
        clip.append(stage(emb[part], times[part], mask, frame_logits=logits[part])[1])
    clip = torch.cat(clip).numpy()
    frame_only = runs["frame_logit"].mean(1)
    files: dict[str, list] = {}
    for media, label, temporal, frame in zip(runs["media_id"], runs["label"], clip, frame_only):
        entry = files.setdefault(str(media), [label, [], []])
        entry[1].append(temporal)
        entry[2].append(frame)
    labels = np.array([v[0] for v in files.values()], int)
    return labels, np.array([np.mean(v[1]) for v in files.values()]), np.array([np.mean(v[2]) for v in files.values()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="frame cache of the training extraction")
    parser.add_argument("--dev", type=Path, required=True, help="frame cache of wild-dev's extraction")
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "temporal_heads.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small models: one thread is faster on a shared 2-core machine
    train, dev = runs_of(FrameCache.load(args.train)), runs_of(FrameCache.load(args.dev))
    results = []
    for kind in ("transformer", "conv"):
        for steps in args.steps:
            for seed in args.seeds:
                torch.manual_seed(seed)
                stage = train_stage(make_stage(kind, train["embedding"].shape[-1]), train, steps, seed)
                labels, temporal, frame_only = video_scores(stage, dev)
                row = {"stage": kind, "steps": steps, "seed": seed,
                       "auc_temporal": round(roc_auc(labels, temporal), 4),
                       "auc_temporal_95": [round(v, 4) for v in bootstrap_ci(roc_auc, labels, temporal)],
                       "auc_frame_only": round(roc_auc(labels, frame_only), 4),
                       "difference": {k: round(v, 4) for k, v in
                                      paired_bootstrap_difference(roc_auc, labels, temporal, frame_only).items()}}
                print(json.dumps(row), file=sys.stderr, flush=True)
                results.append(row)
    report = {"benchmark": "temporal_heads", "train_cache": str(args.train), "dev_cache": str(args.dev),
              "train_runs": int(len(train["label"])), "train_fake_runs": int(train["label"].sum()),
              "dev_runs": int(len(dev["label"])), "dev_files": int(len(labels)), "dev_fake_files": int(labels.sum()),
              "run_frames": RUN, "results": results, "git": git_state(), "machine": machine_info()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
