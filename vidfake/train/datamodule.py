"""Lightning data module over a ``vidfake extract`` output folder.

Two tasks share it:

* ``detect``: training can work from real faces only: each real training item becomes,
  with probability ``sbi_prob``, its self-blended fake (SBI, label 1, method ``"sbi"``).
  The validation set is the real/fake val items as they are plus, when it has no real
  fakes (``val_sbi="auto"``; or always / never with True / False), one SBI copy of each
  real val item (fixed seed), so validation has both classes even on real-only data, and
  is judged on real manipulations when there are some.
  With ``sync``, items also carry their mouth crops and aligned audio for the lip-sync
  head, and with ``sync_shift_prob`` a real clip whose audio was moved becomes a lip-sync
  fake (method ``"av_shift"``), and validation gets one such copy of each real val item
  (fixed seed). ``sync_only`` keeps only the clips the sync head can use (audio, mouths,
  consecutive frames): fitting a sync head onto a frozen model learns nothing from the
  rest, and on real talking faces the split is then the pretext's own. With ``blend_masks`` (a model with a mask head) samples
  carry the blend-mask target: the SBI mask, empty for real pixels, unknown for a
  dataset's fakes.
* ``sync_pretext``: real clips with audio only; a fraction ``sync_shift_prob`` of them get
  their audio moved by ``sync_min_shift..sync_max_shift`` frames (out-of-sync negatives);
  validation has every val clip twice: in sync, and moved (fixed seed).

The samplers are built here for every process (rank and world size from the attached
trainer), so the balanced sampler stays balanced under DDP; see
:mod:`vidfake.train.sampling`. ``batch_size`` is per process.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler

from vidfake.temporal.config import ModelConfig
from vidfake.train.audio import SyncAudio
from vidfake.train.augment import AugmentConfig, augment_clip
from vidfake.train.config import BALANCE, TASKS, DataConfig, TrainConfig
from vidfake.train.data import (
    ClipDataset,
    ClipItem,
    balanced_sampler_weights,
    fake_source_pairs,
    load_extracted,
    split_by_group,
)
from vidfake.train.sampling import BalancedDistributedSampler, PairedBalancedSampler
from vidfake.train.sbi import TEMPORAL_KINDS, SBIConfig, self_blend_clip, temporal_self_blend_clip

VAL_SBI_SEED = 1234
VAL_SYNC_SEED = 4321


def _sbi(sample: dict, rng: np.random.Generator, config: SBIConfig) -> tuple[dict, np.ndarray]:
    """The sample self-blended (label fake) and its blend masks ``(T,H,W)`` float in [0,1]."""
    fakes, masks = self_blend_clip(sample["frames"], sample["landmarks"], rng, config)
    return {**sample, "frames": fakes, "label": 1.0, "method": "sbi"}, masks


def _temporal_sbi(sample: dict, rng: np.random.Generator, config: SBIConfig) -> tuple[dict, np.ndarray]:
    """A temporal pseudo-fake of the sample (flicker or a partly blended clip, drawn evenly):
    label fake, ``frame_labels`` 1 only on the frames that were blended."""
    kind = TEMPORAL_KINDS[int(rng.integers(len(TEMPORAL_KINDS)))]
    fakes, masks, blended = temporal_self_blend_clip(sample["frames"], sample["landmarks"], rng, kind, config)
    return {**sample, "frames": fakes, "label": 1.0, "method": f"sbi-{kind}",
            "frame_labels": blended.astype(np.float32)}, masks


def _untouched_masks(sample: dict, pixels_real: bool) -> np.ndarray | None:
    """The blend-mask target of a clip nothing was blended into: all zeros when its pixels
    are a real face's, unknown (None) for a dataset's fake (where it was edited is not known)."""
    return np.zeros(sample["frames"].shape[:3], np.float32) if pixels_real else None


def _with_blend_masks(sample: dict, masks: np.ndarray | None) -> dict:
    """``blend_mask`` uint8 ``(T,H,W)`` (255 = fully blended; zeros when unknown) and
    ``blend_mask_known`` bool: the mask head's target."""
    known = masks is not None
    target = np.rint(np.clip(masks, 0.0, 1.0) * 255).astype(np.uint8) if known \
        else np.zeros(sample["frames"].shape[:3], np.uint8)
    return {**sample, "blend_mask": target, "blend_mask_known": known}


def _as_loaded(sample: dict, keep_mouths: bool) -> tuple[dict, bool]:
    """What every transform does first: drop the mouth crops unless the sync head wants
    them, and relabel a real clip whose audio was moved as a lip-sync fake (method
    ``"av_shift"``). Also returns whether the pixels are real, which the relabelling hides
    and the blend-mask target needs."""
    if not keep_mouths:
        sample.pop("mouths", None)
    pixels_real = sample["label"] == 0.0
    if sample.get("sync_shift") and pixels_real:
        sample = {**sample, "label": 1.0, "method": "av_shift"}
    return sample, pixels_real


class TrainTransform:
    """SBI on real items (probability ``sbi_prob``), then :func:`augment_clip`.
    Of the SBI fakes of clips longer than one frame, a share ``temporal_sbi_prob`` are
    temporal pseudo-fakes (:func:`temporal_self_blend_clip`), which only a model that looks
    across frames can tell from a steady blend.
    A sample with ``pair_seed`` is one half of a fake beside its own source (see
    :class:`~vidfake.train.sampling.PairedBalancedSampler`): its augmentations are drawn
    from that seed, so both halves get the same ones, and a real half is never self-blended.
    With ``blend_masks`` (a model with a mask head) samples carry the blend-mask target.
    A class (not a closure) so DataLoader workers can pickle it."""

    def __init__(self, *, sbi_prob: float = DataConfig.sbi_prob, augment: bool = DataConfig.augment,
                 sbi_config: SBIConfig | None = None, augment_config: AugmentConfig | None = None,
                 keep_mouths: bool = False, blend_masks: bool = False,
                 temporal_sbi_prob: float = DataConfig.temporal_sbi_prob) -> None:
        if not 0.0 <= temporal_sbi_prob <= 1.0:
            raise ValueError(f"temporal_sbi_prob must be in [0, 1], got {temporal_sbi_prob}")
        self.sbi_prob = sbi_prob
        self.temporal_sbi_prob = temporal_sbi_prob
        self.augment = augment
        self.sbi_config = sbi_config or SBIConfig()
        self.augment_config = augment_config
        self.keep_mouths = keep_mouths
        self.blend_masks = blend_masks

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        pair_seed = sample.pop("pair_seed", None)
        sample, pixels_real = _as_loaded(sample, self.keep_mouths)
        masks = None
        if sample["label"] == 0.0 and pair_seed is None and rng.random() < self.sbi_prob:
            temporal = (self.temporal_sbi_prob > 0 and len(sample["frames"]) > 1
                        and rng.random() < self.temporal_sbi_prob)
            sample, masks = (_temporal_sbi if temporal else _sbi)(sample, rng, self.sbi_config)
        elif self.blend_masks:
            masks = _untouched_masks(sample, pixels_real)
        if self.augment:
            augment_rng = rng if pair_seed is None else np.random.default_rng(pair_seed)
            frames, masks = augment_clip(sample["frames"], augment_rng, self.augment_config, masks=masks)
            sample = {**sample, "frames": np.ascontiguousarray(frames, dtype=np.uint8)}
        return _with_blend_masks(sample, masks) if self.blend_masks else sample


class ValSBITransform:
    """Always self-blends (the val set's SBI copies of real items)."""

    def __init__(self, sbi_config: SBIConfig | None = None, keep_mouths: bool = False,
                 blend_masks: bool = False) -> None:
        self.sbi_config = sbi_config or SBIConfig()
        self.keep_mouths = keep_mouths
        self.blend_masks = blend_masks

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        sample, _ = _as_loaded(sample, self.keep_mouths)
        sample, masks = _sbi(sample, rng, self.sbi_config)
        return _with_blend_masks(sample, masks) if self.blend_masks else sample


class ValTransform:
    """Validation items as they are (no augmentation; a real clip given moved audio
    becomes a lip-sync fake), plus the blend-mask target with ``blend_masks``."""

    def __init__(self, keep_mouths: bool = False, blend_masks: bool = False) -> None:
        self.keep_mouths = keep_mouths
        self.blend_masks = blend_masks

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        sample, pixels_real = _as_loaded(sample, self.keep_mouths)
        if self.blend_masks:
            sample = _with_blend_masks(sample, _untouched_masks(sample, pixels_real))
        return sample


def wants_val_sbi(val_items: list[ClipItem], val_sbi: bool | str = "auto") -> bool:
    """Whether validation gets one SBI copy of each real item: ``"auto"`` = only when the
    held-out split has no real fakes to be judged on."""
    if val_sbi == "auto":
        return not any(item.label == 1 for item in val_items)
    return bool(val_sbi)


class IndexedDataset(Dataset):
    """Adds each sample's position as ``index``, so validation outputs gathered from
    several processes (whose samplers pad with repeats) can be de-duplicated."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {**self.dataset[index], "index": index}


def _pad_stack(tensors: list[torch.Tensor], length: int) -> torch.Tensor:
    """Stack along a new first axis, zero-padding the first axis of each to ``length``."""
    out = torch.zeros((len(tensors), length, *tensors[0].shape[1:]), dtype=tensors[0].dtype)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out


def collate_clips(samples: list[dict]) -> dict:
    """Pads clips to the longest T of the batch: ``frames`` uint8 (B,T,3,S,S), ``times``
    (B,T), ``mask`` bool (B,T), ``label`` (B,), ``method`` / ``media_id`` lists; with
    sync fields, ``mouths`` uint8 (B,T,3,M,M), ``audio`` (B,S) zero-padded (silence),
    ``fps`` (B,), ``audio_mask`` bool (B,), ``sync_shift`` long (B,), ``sync_known`` bool
    (B,); with blend masks (a mask-head model), ``blend_mask`` uint8 (B,T,H,W) and
    ``blend_mask_known`` bool (B,); ``index`` long (B,) when the samples have it."""
    t_max = max(s["frames"].shape[0] for s in samples)
    mask = torch.zeros((len(samples), t_max), dtype=torch.bool)
    for i, s in enumerate(samples):
        mask[i, : s["frames"].shape[0]] = True
    batch = {
        "frames": _pad_stack([s["frames"] for s in samples], t_max),
        "times": _pad_stack([s["times"] for s in samples], t_max),
        "mask": mask,
        "label": torch.stack([torch.as_tensor(s["label"], dtype=torch.float32) for s in samples]),
        "method": [s["method"] for s in samples],
        "media_id": [s["media_id"] for s in samples],
    }
    if any("frame_labels" in s for s in samples):  # per-frame targets where only some frames are fake
        batch["frame_labels"] = _pad_stack(
            [torch.as_tensor(s["frame_labels"], dtype=torch.float32) if "frame_labels" in s
             else torch.full((s["frames"].shape[0],), float(s["label"])) for s in samples], t_max)
    for key in ("mouths", "audio", "index", "blend_mask"):
        present = sum(key in s for s in samples)
        if present not in (0, len(samples)):
            raise ValueError(f"{present} of {len(samples)} samples have {key!r}: a batch must be uniform")
    if "mouths" in samples[0]:
        batch["mouths"] = _pad_stack([s["mouths"] for s in samples], t_max)
    if "audio" in samples[0]:
        batch["audio"] = _pad_stack([s["audio"] for s in samples], max(len(s["audio"]) for s in samples))
        batch["fps"] = torch.tensor([s["fps"] for s in samples], dtype=torch.float32)
        batch["audio_mask"] = torch.tensor([bool(s["has_audio"]) for s in samples])
        batch["sync_shift"] = torch.tensor([int(s["sync_shift"]) for s in samples], dtype=torch.long)
        batch["sync_known"] = torch.tensor([bool(s["sync_known"]) for s in samples])
    if "blend_mask" in samples[0]:
        batch["blend_mask"] = _pad_stack([s["blend_mask"] for s in samples], t_max)
        batch["blend_mask_known"] = torch.tensor([bool(s["blend_mask_known"]) for s in samples])
    if "index" in samples[0]:
        batch["index"] = torch.tensor([s["index"] for s in samples], dtype=torch.long)
    return batch


def load_items(data_dir: Path, clip_len: int | None, *, task: str, consecutive: bool,
               sync_only: bool) -> list[ClipItem]:
    """The clips of one extraction folder that a run trains or validates on.

    Args:
        data_dir: a ``vidfake extract`` output folder.
        clip_len: frames per clip (None: whole tracks).
        task: ``sync_pretext`` keeps real clips the sync head can use (audio, mouth crops,
            consecutive frames); ``detect`` every labelled clip.
        consecutive: clips never straddle a gap between the plan's runs of frames.
        sync_only: (``detect``) keep only clips the sync head can use.

    Returns:
        The clips.

    Raises:
        ValueError: none is left (the message says what to extract).
    """
    items = load_extracted(data_dir, clip_len, consecutive=consecutive)
    if task == "sync_pretext":
        items = [item for item in items if item.label == 0 and item.sync_ready]
        if not items:
            raise ValueError(
                f"{data_dir}: no real clips with audio, mouth crops and clip_len={clip_len} consecutive "
                "frames; extract real talking faces with --audio and a clips plan (e.g. --plan clips:8x16)")
    elif sync_only:
        items = [item for item in items if item.sync_ready]
        if not items:
            raise ValueError(f"{data_dir}: data.sync_only keeps no clip: none has audio, mouth crops and "
                             f"clip_len={clip_len} consecutive frames")
    elif not items:
        raise ValueError(
            f"{data_dir}: no labelled clips (need status-ok records with a label and"
            f" tracks of at least clip_len={clip_len} {'consecutive ' if consecutive else ''}crops)"
        )
    return items


def train_sampler(dataset: Dataset, items: list[ClipItem], balance: str, pair_share: float, batch_size: int,
                  rank: int, world: int, seed: int) -> DistributedSampler:
    """Balanced draws when training has labelled fakes (paired when ``pair_share`` > 0 and
    some fake has a real in its group), else a plain shuffle; every one rank-aware."""
    if not any(item.label == 1 for item in items):
        return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    weights = balanced_sampler_weights(items, by=balance)
    pairs = fake_source_pairs(items) if pair_share > 0 else []
    if pairs:
        return PairedBalancedSampler(dataset, weights, pairs, batch_size, pair_share,
                                     num_replicas=world, rank=rank, seed=seed)
    return BalancedDistributedSampler(dataset, weights, num_replicas=world, rank=rank, seed=seed)


def _check_options(val_sbi: bool | str, sbi_prob: float, balance: str, pair_share: float, task: str) -> None:
    """``ValueError`` naming the first data option out of its range."""
    if val_sbi not in (True, False, "auto"):
        raise ValueError(f"val_sbi must be true, false or auto, got {val_sbi!r}")
    if not 0.0 <= sbi_prob <= 1.0:
        raise ValueError(f"sbi_prob must be in [0, 1], got {sbi_prob}")
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {BALANCE}, got {balance!r}")
    if not 0.0 <= pair_share <= 1.0:
        raise ValueError(f"pair_share must be in [0, 1], got {pair_share}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


class FaceClipDataModule(pl.LightningDataModule):
    """Splits, datasets and rank-aware loaders over a ``vidfake extract`` folder (see the
    module docstring for what each task's train and val sets hold).

    Args:
        data_dir: the extraction folder.
        clip_len, ..., balance: :class:`~vidfake.train.config.DataConfig`'s fields, with
            its defaults and meanings (``vidfake train`` passes that section as it is).
        task: one of :data:`~vidfake.train.config.TASKS`.
        sync_max_shift: the most frames audio is moved (the model's ``sync_max_offset``).
        blend_masks: samples carry the blend-mask target (a model with a mask head).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        clip_len: int | None = DataConfig.clip_len,
        batch_size: int = DataConfig.batch_size,
        val_fraction: float = DataConfig.val_fraction,
        sbi_prob: float = DataConfig.sbi_prob,
        num_workers: int = DataConfig.num_workers,
        augment: bool = DataConfig.augment,
        seed: int = DataConfig.seed,
        val_sbi: bool | str = DataConfig.val_sbi,
        sync: bool = DataConfig.sync,
        sync_shift_prob: float = DataConfig.sync_shift_prob,
        sync_min_shift: int = DataConfig.sync_min_shift,
        sync_only: bool = DataConfig.sync_only,
        temporal_sbi_prob: float = DataConfig.temporal_sbi_prob,
        consecutive: bool = DataConfig.consecutive,
        val_dir: str | Path | None = DataConfig.val_dir,
        balance: str = DataConfig.balance,
        pair_share: float = DataConfig.pair_share,
        codec_prob: float = DataConfig.codec_prob,
        codecs: tuple[str, ...] = DataConfig.codecs,
        codec_on_images: bool = DataConfig.codec_on_images,
        task: str = TrainConfig.task,
        sync_max_shift: int = ModelConfig.sync_max_offset,
        blend_masks: bool = False,
    ) -> None:
        super().__init__()
        _check_options(val_sbi, sbi_prob, balance, pair_share, task)
        self.data_dir = Path(data_dir)
        self.clip_len = clip_len
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.sbi_prob = sbi_prob
        self.num_workers = num_workers
        self.augment = augment
        self.seed = seed
        self.task = task
        self.val_sbi = val_sbi
        self.blend_masks = blend_masks and task == "detect"
        self.sync = sync or task == "sync_pretext"
        self.sync_only = sync_only and self.sync
        self.temporal_sbi_prob = temporal_sbi_prob
        self.balance = balance
        self.pair_share = pair_share
        self.augment_config = AugmentConfig(p_video_codec=codec_prob, codecs=tuple(codecs),
                                            codec_on_images=codec_on_images)
        self.consecutive = consecutive or self.sync
        self.val_dir = Path(val_dir) if val_dir else None
        pretext = task == "sync_pretext"
        # the pretext reads sound past the clip so every searched offset meets real audio;
        # detection reads exactly the clip, as scoring does
        self.train_audio = SyncAudio(sync_max_shift if pretext else 0, sync_shift_prob, sync_min_shift, sync_max_shift)
        self.val_audio = SyncAudio(self.train_audio.context_frames, 0.0, sync_min_shift, sync_max_shift)
        self.train_items: list[ClipItem] = []
        self.val_items: list[ClipItem] = []
        self.val_moved_audio = False  # set by setup: validation holds moved-audio copies

    def _load_items(self, data_dir: Path) -> list[ClipItem]:
        return load_items(data_dir, self.clip_len, task=self.task, consecutive=self.consecutive,
                          sync_only=self.sync_only)

    def setup(self, stage: str | None = None) -> None:
        """Load and split the clips and build the train and val datasets (once; later calls
        do nothing). Raises ``ValueError`` for data that gives no usable split."""
        if self.train_items or self.val_items:
            return
        items = self._load_items(self.data_dir)
        if self.val_dir is not None:
            self.train_items, self.val_items = items, self._load_items(self.val_dir)
            shared = {i.group for i in self.train_items if i.group} & {i.group for i in self.val_items if i.group}
            if shared:
                raise ValueError(f"{self.val_dir} shares {len(shared)} group(s) with {self.data_dir} "
                                 f"(e.g. {sorted(shared)[0]!r}): validation would see training people or footage")
        else:
            self.train_items, self.val_items = split_by_group(items, self.val_fraction, self.seed)
        if not self.train_items:
            raise ValueError(f"{self.data_dir}: the split left no training items ({len(items)} in all)")
        train_audio = self.train_audio if self.sync else None
        val_audio = self.val_audio if self.sync else None
        moved = replace(self.val_audio, shift_prob=1.0)  # validation's out-of-sync copies
        if self.task == "sync_pretext":  # the face crops are not looked at: no SBI, no augmentation
            self.train_set = ClipDataset(self.train_items, sync_audio=train_audio)
            self.val_set = ConcatDataset([ClipDataset(self.val_items, sync_audio=val_audio),
                                          ClipDataset(self.val_items, seed=VAL_SYNC_SEED, sync_audio=moved)])
            return
        keep = dict(keep_mouths=self.sync, blend_masks=self.blend_masks)
        train = TrainTransform(sbi_prob=self.sbi_prob, augment=self.augment, temporal_sbi_prob=self.temporal_sbi_prob,
                               augment_config=self.augment_config, **keep)
        self.train_set = ClipDataset(self.train_items, train, sync_audio=train_audio)
        val_real = [item for item in self.val_items if item.label == 0]
        parts = [ClipDataset(self.val_items, ValTransform(**keep), sync_audio=val_audio)]
        self.val_sbi = wants_val_sbi(self.val_items, self.val_sbi)
        if val_real and self.val_sbi:
            parts.append(ClipDataset(val_real, ValSBITransform(**keep), seed=VAL_SBI_SEED, sync_audio=val_audio))
        self.val_moved_audio = bool(val_real) and self.sync and self.train_audio.shift_prob > 0
        if self.val_moved_audio:  # trained on lip-sync fakes: judged on them too
            parts.append(ClipDataset(val_real, ValTransform(**keep), seed=VAL_SYNC_SEED, sync_audio=moved))
        self.val_set = ConcatDataset(parts)

    @property
    def data_has_fakes(self) -> bool:
        """Whether training has labelled fakes (then batches are balanced; else shuffled)."""
        return any(item.label == 1 for item in self.train_items)

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (0, 1) if trainer is None else (int(trainer.global_rank), int(trainer.world_size))

    def train_dataloader(self) -> DataLoader:
        """This process's share of the training clips, balanced by label (and method or source),
        with fakes beside their sources where ``pair_share`` asks for it."""
        rank, world = self._rank_world()
        pair_share = self.pair_share if self.task == "detect" else 0.0
        sampler = train_sampler(self.train_set, self.train_items, self.balance, pair_share, self.batch_size,
                                rank, world, self.seed)
        return DataLoader(
            self.train_set, batch_size=self.batch_size, sampler=sampler,
            num_workers=self.num_workers, collate_fn=collate_clips,
            persistent_workers=self.num_workers > 0, drop_last=False,
        )

    def val_dataloader(self) -> DataLoader:
        """This process's share of the validation set, with each sample's ``index``."""
        rank, world = self._rank_world()
        dataset = IndexedDataset(self.val_set)
        return DataLoader(
            dataset, batch_size=self.batch_size,
            sampler=DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False),
            num_workers=self.num_workers, collate_fn=collate_clips,
            persistent_workers=self.num_workers > 0,
        )
