"""A training run's settings: one frozen dataclass per section of a ``vidfake train`` YAML.

The single source of training defaults: :data:`vidfake.train.run.DEFAULTS` is
``TrainConfig().to_dict()``, and the constructors of
:class:`~vidfake.train.datamodule.FaceClipDataModule`,
:class:`~vidfake.train.module.DetectorModule` and
:class:`~vidfake.train.pretext.SyncPretextModule` take their defaults from
:class:`DataConfig` and :class:`OptimConfig`, so a value left out of a YAML file and a
module built in code without it get the same number. Sections are read with
:func:`vidfake.utils.config.from_dict`: an unknown key is an error naming the valid ones.

Torch-free (``vidfake train --help`` and config checks need no model).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vidfake.temporal.config import ModelConfig
from vidfake.utils.config import from_dict

TASKS = ("detect", "sync_pretext")
BALANCE = ("method", "label", "source")  # what the training sampler balances (DataConfig.balance)
PROGRESS = ("auto", "bar", "lines", "none")  # TrainerConfig.progress_bar


@dataclass(frozen=True)
class DataConfig:
    """``data:`` the extraction folder, clips, batches, pseudo-fakes and the split; the
    keyword arguments of :class:`~vidfake.train.datamodule.FaceClipDataModule`.

    ``val_dir``: a separate extraction folder (e.g. a development set of real deepfakes)
    that is the whole validation split; ``dir`` is then all training data and
    ``val_fraction`` is not used. ``consecutive``: clips never straddle a gap between the
    plan's runs of frames (always so with ``sync``), which a temporal model needs.
    ``temporal_sbi_prob``: see :class:`~vidfake.train.datamodule.TrainTransform`.
    ``balance``: batches draw real and fake equally and, with ``"method"``, every fake
    method equally (right for FF++'s four equal methods); ``"label"`` balances the classes
    only, so a method with a handful of files is not repeated as often as one with thousands;
    ``"source"`` gives every source (repository or dataset, the labels CSV's ``source``
    column at extraction) the same share of each class.
    ``pair_share``: the share of each batch that is fakes beside their own source video
    (a fake and a real item of one group, with the same augmentations; see
    :class:`~vidfake.train.sampling.PairedBalancedSampler`), so the difference between
    them is the manipulation, not the footage. ``codec_prob``, ``codecs``,
    ``codec_on_images``: the recompression augmentation (see
    :class:`~vidfake.train.augment.AugmentConfig`: the chance a clip is re-encoded, the
    codecs drawn from, and whether single crops are coded as a key frame instead of JPEG).
    """

    dir: str | None = None  # a `vidfake extract` output folder (or --data)
    clip_len: int | None = 8  # frames per clip
    batch_size: int = 8  # per process
    val_fraction: float = 0.2  # share of groups held out (unused with val_dir)
    sbi_prob: float = 0.5  # chance a real training clip becomes its self-blended fake
    num_workers: int = 0
    augment: bool = True
    seed: int = 0  # the split and the training sampler
    val_sbi: bool | str = "auto"  # SBI copies of real val clips: true, false, auto (when val has no fakes)
    sync: bool = False  # clips carry mouths and audio for the lip-sync head
    sync_shift_prob: float = 0.0  # chance a real clip's audio is moved (a lip-sync fake)
    sync_min_shift: int = 3  # frames; up to model.sync_max_offset
    sync_only: bool = False  # keep only clips the sync head can use
    temporal_sbi_prob: float = 0.0  # share of SBI fakes that are temporal pseudo-fakes
    consecutive: bool = False  # clips never straddle a gap between the plan's runs
    val_dir: str | None = None  # a separate extraction folder that is the whole validation split
    balance: str = "method"  # one of BALANCE
    pair_share: float = 0.0  # share of each batch that is (fake, its own source) pairs
    codec_prob: float = 0.2  # chance a training clip is re-encoded with a video codec
    codecs: tuple[str, ...] = ("h264",)  # drawn from: h264, vp9, mpeg1, mpeg2, mpeg4
    codec_on_images: bool = False  # single crops are coded as a key frame instead of JPEG


@dataclass(frozen=True)
class OptimConfig:
    """``optim:`` AdamW with warm-up and cosine decay, and the loss weights."""

    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    clip_loss_weight: float = 1.0
    frame_loss_weight: float = 0.5
    mask_loss_weight: float = 1.0  # blend-mask head (model.mask_head)
    mask_weak_loss_weight: float = 0.0  # the mask map's peak vs the label (teaches it on fakes with no known mask)
    sync_loss_weight: float = 1.0  # InfoNCE of the sync head (data.sync, or the pretext)
    sync_logit_loss_weight: float = 0.5  # the pretext's BCE of the sync logit
    sync_temperature: float = 0.1
    trainable: str | list[str] | None = None  # None: every part; else the model parts that train
    lr_scale: dict[str, float] = field(default_factory=dict)  # per-part learning-rate multipliers


@dataclass(frozen=True)
class TrainerConfig:
    """``trainer:`` Lightning's Trainer settings (steps, devices, precision, logging)."""

    max_steps: int = 1000
    val_check_interval: int | float = 200  # steps (int) or a fraction of an epoch (float)
    accelerator: str = "auto"
    devices: int | str = 1  # per node
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"  # bf16-mixed on GPU, 32-true on CPU
    accumulate_grad_batches: int = 1
    log_every_n_steps: int = 10
    progress_bar: str = "auto"  # one of PROGRESS

    def __post_init__(self) -> None:
        if self.progress_bar not in PROGRESS:
            raise ValueError(f"trainer.progress_bar must be one of {PROGRESS}")


@dataclass(frozen=True)
class InitConfig:
    """``init:`` start from parts of a vidfake checkpoint (``modules``: sync, encoder, temporal, all)."""

    checkpoint: str | None = None
    modules: list[str] = field(default_factory=lambda: ["sync"])


@dataclass(frozen=True)
class TrainConfig:
    """A whole ``vidfake train`` config; ``TrainConfig().to_dict()`` is the defaults every
    YAML file and ``--set`` override updates."""

    task: str = "detect"  # one of TASKS
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    init: InitConfig = field(default_factory=InitConfig)
    out: str = "runs/train"  # output folder (or --out)
    seed: int = 0  # global seed

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    def to_dict(self) -> dict:
        """Plain values by section, as in a YAML config (and a run's ``hparams.yaml``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Every section from its mapping; an unknown section or key raises a ``ValueError`` naming it."""
        return from_dict(cls, data, "config")
