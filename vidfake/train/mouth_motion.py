"""Train the mouth-motion head (:mod:`vidfake.temporal.mouth_motion`) on a finished detector.

The head reads only the face crops' mouth region over a run of frames and the audio, so
it trains alone, on top of a frozen detector, in minutes on a CPU: the encoder never
runs. What it learns from:

* **real clips** (label 0) of a ``vidfake extract`` folder, runs of ``clip_len``
  consecutive frames with their audio;
* **self-made mouth fakes**: a share ``mouth_fake_prob`` of the real clips get their lower
  face replaced (:mod:`vidfake.train.mouth_fakes`: from another moment or re-rendered,
  aligned, blended through a soft mask), audio untouched;
* **the folder's fakes** (label 1): lip-sync outputs and every other generator, whose
  mouth region was made by a network too;
* **the sync pretext** as an auxiliary loss (``moved_weight``): real clips whose audio is
  moved by 3-8 frames (``moved_prob``) must be told from in-sync ones by ``moved_logit``.

Every clip then passes through the training augmentations (re-encoding with five codecs,
rescaling, blur, noise, colour), and batches are balanced by class and source. The
checkpoint is chosen on a separate validation folder (wild-dev) by the video AUC of the
head's logit (mean over each file's runs). The output is the whole detector with the
head, its ``mouth_weight`` still 0: ``benchmarks/mouth_motion.py --base-predictions``
fits it on scored development videos, cross-fitted, and ``python -m
vidfake.checkpoints.compose --mouth-weight`` sets it.

    python -m vidfake.train.mouth_motion runs/model3/best.safetensors --data data/train160 \\
        --val-data data/wilddev160 --out runs/mouth --steps 1500

``--resume`` continues from ``OUT/state.pt``.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from vidfake.checkpoints.format import build_model, load_checkpoint, save_checkpoint
from vidfake.eval.metrics import roc_auc
from vidfake.temporal import create_model
from vidfake.temporal.config import ModelConfig
from vidfake.train.audio import SyncAudio
from vidfake.train.augment import AugmentConfig, augment_clip
from vidfake.train.data import ClipDataset, ClipItem, balanced_sampler_weights, load_extracted
from vidfake.train.datamodule import ValTransform, collate_clips
from vidfake.train.mouth_fakes import mouth_fake_clip, sample_params

__all__ = ["MouthTrainTransform", "mouth_items", "mouth_run_logits", "train_mouth_motion", "main"]

AUGMENT = AugmentConfig(p_video_codec=0.5, codecs=("h264", "vp9", "mpeg1", "mpeg2", "mpeg4"))


class MouthTrainTransform:
    """A real clip becomes a self-made mouth fake with probability ``mouth_fake_prob``; then
    the augmentations. Mouth crops (the sync head's) are dropped: this head does not read
    them. A class so DataLoader workers can pickle it."""

    def __init__(self, mouth_fake_prob: float = 0.5, augment: AugmentConfig | None = AUGMENT) -> None:
        self.mouth_fake_prob = mouth_fake_prob
        self.augment = augment

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        sample = {k: v for k, v in sample.items() if k != "mouths"}
        if sample["label"] == 0.0 and rng.random() < self.mouth_fake_prob:
            frames, _ = mouth_fake_clip(sample["frames"], sample["landmarks"], sample_params(rng, len(sample["frames"])))
            sample = {**sample, "frames": frames, "label": 1.0, "method": "mouth_fake"}
        if self.augment is not None:
            frames, _ = augment_clip(sample["frames"], rng, self.augment)
            sample = {**sample, "frames": np.ascontiguousarray(frames)}
        return sample


def mouth_items(folder: Path, clip_len: int) -> list[ClipItem]:
    """Runs of exactly ``clip_len`` consecutive frames of the folder's videos (with the sync
    head's mouth crops, which is how ``extract --audio`` marks a clip with usable sound)."""
    items = load_extracted(folder, clip_len=clip_len, consecutive=True)
    return [item for item in items if len(item) == clip_len and item.consecutive and item.mouth_files and item.fps]


class _EndlessDraw:
    """Indices drawn with replacement by ``weights``, without end, a few thousand at a time."""

    def __init__(self, weights: torch.Tensor, seed: int, chunk: int = 4096) -> None:
        self.weights, self.seed, self.chunk = weights, seed, chunk

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            yield from torch.multinomial(self.weights, self.chunk, replacement=True, generator=generator).tolist()


def _batch_audio(batch: dict) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    if "audio" not in batch:
        return None, None, None
    return batch["audio"], batch["fps"], batch["audio_mask"]


def _loader(items: list[ClipItem], max_shift: int, seed: int, num_workers: int) -> DataLoader:
    dataset = ClipDataset(items, ValTransform(), seed=seed, sync_audio=SyncAudio(0, 0.0, 3, max_shift))
    return DataLoader(dataset, batch_size=32, collate_fn=collate_clips, num_workers=num_workers)


def mouth_run_logits(checkpoint: Path, folder: Path, clip_len: int = 8, num_workers: int = 1) -> dict[str, list[float]]:
    """The mouth-motion head's logit for every run of ``clip_len`` consecutive frames of
    every file of an extraction folder (files without such a run are left out). For
    measuring the head apart from the detector around it."""
    model = build_model(load_checkpoint(checkpoint))
    if model.mouth_motion is None:
        raise ValueError(f"{checkpoint} has no mouth-motion head")
    items = mouth_items(folder, clip_len)
    return _run_logits(model.mouth_motion, _loader(items, model.config.sync_max_offset, 0, num_workers))[0]


@torch.no_grad()
def _run_logits(head, loader: DataLoader) -> tuple[dict[str, list[float]], dict[str, int]]:
    was_training = head.training
    head.eval()
    runs: dict[str, list[float]] = {}
    labels: dict[str, int] = {}
    for batch in loader:
        audio, fps, audio_mask = _batch_audio(batch)
        out = head(batch["frames"], batch["mask"], audio, fps, audio_mask)
        for media_id, label, logit, ok in zip(batch["media_id"], batch["label"].tolist(), out.logit.tolist(),
                                              out.available.tolist()):
            if ok:
                runs.setdefault(media_id, []).append(logit)
                labels[media_id] = int(label)
    head.train(was_training)
    return runs, labels


def _validate(head, loader: DataLoader) -> dict:
    runs, labels = _run_logits(head, loader)
    ids = sorted(runs)
    y = np.array([labels[m] for m in ids])
    s = np.array([np.mean(runs[m]) for m in ids])
    auc = roc_auc(y, s) if 0 < y.sum() < len(y) else float("nan")
    return {"val_auc": auc, "val_videos": len(ids), "scores": dict(zip(ids, s.tolist()))}


def train_mouth_motion(init: Path, data: Path, val_data: Path, out: Path, *, steps: int = 1500,
                       batch_size: int = 16, clip_len: int = 8, lr: float = 1e-3, mouth_fake_prob: float = 0.5,
                       moved_prob: float = 0.3, moved_weight: float = 0.5, val_every: int = 250, seed: int = 0,
                       resume: bool = False, progress: bool = True, num_workers: int = 1,
                       fake_methods: frozenset[str] | None = None, val_methods: frozenset[str] | None = None) -> dict:
    """Train the head on ``data``, choose on ``val_data``; write ``OUT/best.safetensors``,
    ``OUT/last.safetensors`` (whole detectors), ``OUT/state.pt`` and ``OUT/metrics.jsonl``.
    ``fake_methods``: keep only the folder's fakes of these methods (those whose mouth a
    network made, e.g. lip-sync and talking-head tools); real clips are always kept.
    ``val_methods``: choose the checkpoint on these of the validation folder's fakes (against
    all its reals), e.g. the lip-sync tools the head is for."""
    out.mkdir(parents=True, exist_ok=True)
    base = load_checkpoint(init)
    model_config: ModelConfig = replace(base.settings.model, mouth_motion=True)
    model = create_model(model_config, pretrained=False)
    missing, unexpected = model.load_state_dict(base.state_dict, strict=False)
    if unexpected or any(not k.startswith(("mouth_motion.", "mouth_weight")) for k in missing):
        raise ValueError(f"{init} does not fit (missing {missing[:5]}, unexpected {unexpected[:5]})")
    head = model.mouth_motion
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    step, best = 0, -1.0
    state_path = out / "state.pt"
    if resume and state_path.exists():
        state = torch.load(state_path, weights_only=True)
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), float(state["best"])

    train_items = _reals_and_fakes_of(mouth_items(data, clip_len), fake_methods)
    val_items = _reals_and_fakes_of(mouth_items(val_data, clip_len), val_methods)
    if not train_items or not val_items:
        raise ValueError(f"no runs of {clip_len} consecutive frames with mouth crops in {data} or {val_data}")
    max_shift = model_config.sync_max_offset
    train_set = ClipDataset(train_items, MouthTrainTransform(mouth_fake_prob),
                            sync_audio=SyncAudio(0, moved_prob, 3, max_shift))
    weights = balanced_sampler_weights(train_items, by="source")
    sampler = _EndlessDraw(weights, seed + step)
    loader = iter(DataLoader(train_set, batch_size=batch_size, sampler=sampler, collate_fn=collate_clips,
                             num_workers=num_workers, persistent_workers=num_workers > 0))
    val_loader = _loader(val_items, max_shift, seed, num_workers)

    def save(name: str) -> None:
        config = {**base.config, "model": model_config.to_dict()}
        save_checkpoint(out / name, model.state_dict(), config)

    head.train()
    bar = tqdm(total=steps, initial=step, desc="mouth-motion", disable=not progress)
    log = (out / "metrics.jsonl").open("a")
    while step < steps:
        batch = next(loader)
        audio, fps, audio_mask = _batch_audio(batch)
        output = head(batch["frames"], batch["mask"], audio, fps, audio_mask)
        ok = output.available
        loss = F.binary_cross_entropy_with_logits(output.logit[ok], batch["label"][ok])
        known = ok & output.has_audio & batch["sync_known"]
        if moved_weight > 0 and bool(known.any()):
            moved = (batch["sync_shift"][known] != 0).float()
            loss = loss + moved_weight * F.binary_cross_entropy_with_logits(output.moved_logit[known], moved)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step % val_every == 0 or step == steps:
            result = _validate(head, val_loader)
            record = {"step": step, "loss": loss.item(), "val_auc": result["val_auc"], "val_videos": result["val_videos"]}
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.write(json.dumps(record))
            save("last.safetensors")
            if result["val_auc"] > best:
                best = result["val_auc"]
                save("best.safetensors")
                (out / "best_val_scores.json").write_text(json.dumps(result["scores"]))
            torch.save({"head": head.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "best": best},
                       state_path)
    bar.close()
    log.close()
    return {"best_val_auc": best, "steps": step, "train_clips": len(train_items), "val_clips": len(val_items)}


def _reals_and_fakes_of(items: list[ClipItem], methods: frozenset[str] | None) -> list[ClipItem]:
    """Every real item and the fakes of ``methods`` (None: every item)."""
    if methods is None:
        return items
    return [item for item in items if item.label == 0 or item.method in methods]


def _methods(text: str | None) -> frozenset[str] | None:
    return frozenset(m.strip() for m in text.split(",") if m.strip()) if text else None


def main(argv: list[str] | None = None) -> int:
    """Command line: train the head and print the result as JSON; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m vidfake.train.mouth_motion", description=__doc__.split("\n\n")[0])
    parser.add_argument("init", type=Path, help="the finished detector (a vidfake checkpoint) the head is added to")
    parser.add_argument("--data", type=Path, required=True, help="training extraction folder (with --audio)")
    parser.add_argument("--val-data", type=Path, required=True, help="validation extraction folder (wild-dev)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--clip-len", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--mouth-fake-prob", type=float, default=0.5,
                        help="share of real clips made into self-made mouth fakes (0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fake-methods", help="comma-separated methods: train on only these of the folder's fakes "
                        "(default: all of them)")
    parser.add_argument("--val-methods", help="comma-separated methods: choose on only these of the validation "
                        "folder's fakes, against all its reals (default: all fakes)")
    parser.add_argument("--num-workers", type=int, default=1, help="data-loading processes")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    result = train_mouth_motion(args.init, args.data, args.val_data, args.out, steps=args.steps,
                                batch_size=args.batch_size, clip_len=args.clip_len, lr=args.lr,
                                mouth_fake_prob=args.mouth_fake_prob,
                                val_every=args.val_every, seed=args.seed, resume=args.resume,
                                progress=not args.no_progress, num_workers=args.num_workers,
                                fake_methods=_methods(args.fake_methods), val_methods=_methods(args.val_methods))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
