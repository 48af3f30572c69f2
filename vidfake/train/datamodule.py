"""Lightning data module over a ``vidfake extract`` output folder.

Training can work from real faces only: each real training item becomes, with
probability ``sbi_prob``, its self-blended fake (SBI, label 1, method ``"sbi"``). The
validation set is the real/fake val items as they are plus one SBI copy of each real val
item (fixed seed), so validation has both classes even on real-only data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, WeightedRandomSampler

from vidfake.train.augment import AugmentConfig, augment_clip
from vidfake.train.data import ClipDataset, ClipItem, balanced_sampler_weights, load_extracted, split_by_group
from vidfake.train.sbi import SBIConfig, self_blend_clip

VAL_SBI_SEED = 1234


def _sbi(sample: dict, rng: np.random.Generator, config: SBIConfig) -> dict:
    fakes, _ = self_blend_clip(sample["frames"], sample["landmarks"], rng, config)
    return {**sample, "frames": fakes, "label": 1.0, "method": "sbi"}


class TrainTransform:
    """SBI on real items (probability ``sbi_prob``), then :func:`augment_clip`.
    A class (not a closure) so DataLoader workers can pickle it."""

    def __init__(self, sbi_prob: float = 0.5, augment: bool = True,
                 sbi_config: SBIConfig | None = None, augment_config: AugmentConfig | None = None) -> None:
        self.sbi_prob = sbi_prob
        self.augment = augment
        self.sbi_config = sbi_config or SBIConfig()
        self.augment_config = augment_config

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        sample.pop("mouths", None)  # sync training (mouths + audio) is not wired here
        if sample["label"] == 0.0 and rng.random() < self.sbi_prob:
            sample = _sbi(sample, rng, self.sbi_config)
        if self.augment:
            frames, _ = augment_clip(sample["frames"], rng, self.augment_config)
            sample = {**sample, "frames": np.ascontiguousarray(frames, dtype=np.uint8)}
        return sample


class ValSBITransform:
    """Always self-blends (the val set's SBI copies of real items)."""

    def __init__(self, sbi_config: SBIConfig | None = None) -> None:
        self.sbi_config = sbi_config or SBIConfig()

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        sample.pop("mouths", None)
        return _sbi(sample, rng, self.sbi_config)


def _drop_mouths(sample: dict, rng: np.random.Generator) -> dict:
    sample.pop("mouths", None)
    return sample


def collate_clips(samples: list[dict]) -> dict:
    """Pads clips to the longest T of the batch: ``frames`` uint8 (B,T,3,S,S), ``times``
    (B,T), ``mask`` bool (B,T), ``label`` (B,), ``method`` / ``media_id`` lists."""
    t_max = max(s["frames"].shape[0] for s in samples)
    b = len(samples)
    first = samples[0]["frames"]
    frames = torch.zeros((b, t_max, *first.shape[1:]), dtype=first.dtype)
    times = torch.zeros((b, t_max), dtype=torch.float32)
    mask = torch.zeros((b, t_max), dtype=torch.bool)
    for i, s in enumerate(samples):
        t = s["frames"].shape[0]
        frames[i, :t] = s["frames"]
        times[i, :t] = s["times"]
        mask[i, :t] = True
    return {
        "frames": frames,
        "times": times,
        "mask": mask,
        "label": torch.stack([torch.as_tensor(s["label"], dtype=torch.float32) for s in samples]),
        "method": [s["method"] for s in samples],
        "media_id": [s["media_id"] for s in samples],
    }


class FaceClipDataModule(pl.LightningDataModule):
    def __init__(
        self,
        data_dir: str | Path,
        clip_len: int | None = 8,
        batch_size: int = 8,
        val_fraction: float = 0.2,
        sbi_prob: float = 0.5,
        num_workers: int = 0,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= sbi_prob <= 1.0:
            raise ValueError(f"sbi_prob must be in [0, 1], got {sbi_prob}")
        self.data_dir = Path(data_dir)
        self.clip_len = clip_len
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.sbi_prob = sbi_prob
        self.num_workers = num_workers
        self.augment = augment
        self.seed = seed
        self.train_items: list[ClipItem] = []
        self.val_items: list[ClipItem] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_items or self.val_items:
            return
        items = load_extracted(self.data_dir, self.clip_len)
        if not items:
            raise ValueError(
                f"{self.data_dir}: no labelled clips (need status-ok records with a label and"
                f" tracks of at least clip_len={self.clip_len} crops)"
            )
        self.train_items, self.val_items = split_by_group(items, self.val_fraction, self.seed)
        if not self.train_items:
            raise ValueError(f"{self.data_dir}: the split left no training items ({len(items)} in all)")
        self.train_set = ClipDataset(self.train_items, TrainTransform(self.sbi_prob, self.augment))
        val_real = [item for item in self.val_items if item.label == 0]
        parts = [ClipDataset(self.val_items, _drop_mouths)]
        if val_real:
            parts.append(ClipDataset(val_real, ValSBITransform(), seed=VAL_SBI_SEED))
        self.val_set = ConcatDataset(parts)

    @property
    def data_has_fakes(self) -> bool:
        return any(item.label == 1 for item in self.train_items)

    def train_dataloader(self) -> DataLoader:
        sampler, shuffle = None, True
        if self.data_has_fakes:
            weights = balanced_sampler_weights(self.train_items)
            sampler, shuffle = WeightedRandomSampler(weights, num_samples=len(self.train_items), replacement=True), None
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=shuffle, sampler=sampler,
            num_workers=self.num_workers, collate_fn=collate_clips,
            persistent_workers=self.num_workers > 0, drop_last=False,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=self.batch_size, shuffle=False,
            num_workers=self.num_workers, collate_fn=collate_clips,
            persistent_workers=self.num_workers > 0,
        )
