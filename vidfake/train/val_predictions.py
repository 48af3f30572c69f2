"""A trained checkpoint's predictions on its run's validation split, as ``predictions.csv``.

``vidfake calibrate`` fits the temperature on a ``predictions.csv``; for a model trained
with ``vidfake train`` the natural calibration set is the run's own held-out split (the
same :func:`split_by_group` with the same seed, so no training face is reused). A
split without real fakes gets one self-blended copy of each real item as its fakes, by
training's own rule (:func:`vidfake.train.datamodule.wants_val_sbi`).

``degrade=True`` (the default) passes every validation clip through the training
augmentations (recompression, rescaling, blur, noise, colour) with a fixed seed. Clean
held-out crops of the training data are easier than the videos the model will score, and
a temperature fitted on easy data makes the model overconfident where it errs; the
degraded set is closer to wild video.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from vidfake.checkpoints.format import build_model, load_checkpoint
from vidfake.eval.evaluate import BASE_COLUMNS
from vidfake.train.augment import augment_clip
from vidfake.train.data import ClipDataset, load_extracted, split_by_group
from vidfake.train.datamodule import collate_clips, wants_val_sbi
from vidfake.train.sbi import self_blend_clip

__all__ = ["write_validation_predictions", "VALIDATION_SEED"]

VALIDATION_SEED = 4321  # fixed draws: the same checkpoint always gets the same calibration set


class _ValidationView:
    """Self-blend (for the fake copies) and/or degrade one sample; a class so workers can pickle it."""

    def __init__(self, self_blend: bool, degrade: bool) -> None:
        self.self_blend = self_blend
        self.degrade = degrade

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        sample.pop("mouths", None)
        if self.self_blend:
            fakes, _ = self_blend_clip(sample["frames"], sample["landmarks"], rng)
            sample = {**sample, "frames": fakes, "label": 1.0, "method": "sbi"}
        if self.degrade:
            frames, _ = augment_clip(sample["frames"], rng)
            sample = {**sample, "frames": np.ascontiguousarray(frames, dtype=np.uint8)}
        return sample


@torch.no_grad()
def split_settings(checkpoint_config: dict) -> dict:
    """The validation split a checkpoint's training run used: ``clip_len``, ``val_fraction``
    and ``split_seed`` from the training config it stores, ``DataConfig``'s defaults for what
    it does not store (a checkpoint made outside ``vidfake train``)."""
    from vidfake.train.config import DataConfig

    stored = checkpoint_config.get("training", {}).get("config", {}).get("data", {})
    default = DataConfig()
    return {"clip_len": stored.get("clip_len", default.clip_len),
            "val_fraction": stored.get("val_fraction", default.val_fraction),
            "split_seed": stored.get("seed", default.seed)}


def write_validation_predictions(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_csv: str | Path,
    clip_len: int | None = 1,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    degrade: bool = True,
    batch_size: int = 32,
    device: str = "cpu",
) -> Path:
    """Score the validation split of ``data_dir`` and write ``vidfake eval``'s
    predictions columns (``name`` is ``media_id#k``; ``path`` the first crop)."""
    source = load_checkpoint(checkpoint)
    model = build_model(source, device)
    aggregation = source.settings.aggregation

    items = load_extracted(Path(data_dir), clip_len)
    _, val_items = split_by_group(items, val_fraction, split_seed)
    if not val_items:
        raise ValueError(f"{data_dir}: the split (val_fraction={val_fraction}) left no validation items")
    parts = [ClipDataset(val_items, _ValidationView(False, degrade), seed=VALIDATION_SEED)]
    reals = [item for item in val_items if item.label == 0]
    if reals and wants_val_sbi(val_items):
        parts.append(ClipDataset(reals, _ValidationView(True, degrade), seed=VALIDATION_SEED + 1))
    loader = DataLoader(ConcatDataset(parts), batch_size=batch_size, shuffle=False, collate_fn=collate_clips)

    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    rows, counter = [], 0
    for batch in loader:
        out = model(batch["frames"].to(device), batch["times"].to(device), batch["mask"].to(device))
        for logit, label, media_id in zip(out.clip_logit.float().cpu().tolist(), batch["label"].tolist(), batch["media_id"]):
            if label != label:  # NaN: unlabelled items cannot calibrate
                continue
            counter += 1
            rows.append({
                "path": media_id, "name": f"{media_id}#{counter}", "label": int(label),
                "score": aggregation.probability(logit),
                "logit": logit, "status": "ok", "kind": "image" if clip_len == 1 else "video",
                "has_audio": "", "resolution": "", "faces": 1,
            })
    with out_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=BASE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return out_csv
