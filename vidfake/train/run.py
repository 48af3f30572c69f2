"""``vidfake train``: fit a detector (or its lip-sync head) on a ``vidfake extract`` folder
from a YAML config.

YAML sections (all optional except ``data.dir`` unless ``--data`` is given; each key,
its default and meaning are in :mod:`vidfake.train.config`)::

    task:    detect | sync_pretext
    data:    DataConfig   {dir, clip_len, batch_size, val_fraction, sbi_prob, augment, sync, ...}
    model:   ModelConfig fields
    optim:   OptimConfig  {lr, weight_decay, warmup_steps, the loss weights, trainable, lr_scale}
             trainable: null (all) or the model parts that train, e.g. [sync, sync_weight]
             to fit a pretext sync head onto a finished frame model, or dotted submodules
             such as [encoder.mask_head, encoder.mask_decoder] (configs/default_mask_decoder.yaml)
    trainer: TrainerConfig {max_steps, val_check_interval, accelerator, devices, num_nodes,
             strategy, precision, accumulate_grad_batches, log_every_n_steps, progress_bar}
    init:    InitConfig   {checkpoint, modules}   start from parts of a vidfake checkpoint
    out:     output folder (or --out)
    seed:    global seed

Writes ``OUT/best.safetensors`` (best val AUC) and ``OUT/last.safetensors`` (after the
latest validation), both vidfake checkpoints that ``vidfake score`` reads;
``OUT/last.ckpt``, Lightning's checkpoint for ``--resume``; logs as CSV in
``OUT/logs/version_N`` and for TensorBoard in ``OUT/tb/version_N``. The merged config (every
section, defaults filled in) is the run's record: ``OUT/logs/version_N/hparams.yaml`` (itself
a config ``--config`` reads), and the ``training.config`` block of both vidfake checkpoints.

``--set SECTION.KEY=VALUE`` (repeatable; VALUE is read as YAML) overrides any key.
Several GPUs or nodes: ``trainer.devices``, ``trainer.num_nodes``, ``trainer.strategy``
(``ddp``); start one process per node and Lightning starts the rest, or start them all
with ``torchrun`` or SLURM's ``srun`` (see docs/training.md).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidfake.train.config import TrainConfig

DEFAULTS = TrainConfig().to_dict()  # every section's defaults: see vidfake.train.config


class ConfigError(ValueError):
    """A config (file, ``--set`` override or argument) that cannot describe a run."""


def _merge(config: dict, raw: dict, source: str) -> None:
    """Update ``config`` in place with ``raw`` (a YAML file's or an override's sections),
    checking each updated section against its dataclass (unknown keys, bad values)."""
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"{source}: unknown sections {sorted(unknown)}; valid sections: {', '.join(DEFAULTS)}")
    for key, value in raw.items():
        if isinstance(DEFAULTS[key], dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {key!r} must be a mapping")
            value = {**config[key], **value}
        try:
            TrainConfig.from_dict({key: value})
        except ValueError as error:
            raise ConfigError(f"{source}: {error}") from None
        config[key] = value


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Defaults, updated by the YAML file at ``path``, then by ``SECTION.KEY=VALUE`` overrides."""
    import yaml

    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        _merge(config, raw, str(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        section, _, name = key.partition(".")
        parsed = yaml.safe_load(value) if value else None
        _merge(config, {section: {name: parsed}} if name else {section: parsed}, f"--set {item}")
    return config


def _precision(requested: str | None, accelerator: str) -> str:
    import torch

    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if requested in (None, "auto"):
        return "bf16-mixed" if on_gpu else "32-true"
    if "bf16" in str(requested) and not on_gpu:
        _say(f"vidfake train: precision {requested} is for GPUs; using 32-true on {accelerator}", err=True)
        return "32-true"
    return str(requested)


def _say(message: str, err: bool = False) -> None:
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank == 0:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)


def build_parser() -> argparse.ArgumentParser:
    """The ``vidfake train`` command line (each option overrides one config key)."""
    p = argparse.ArgumentParser(prog="vidfake train", description="Train a detector on a `vidfake extract` folder.")
    p.add_argument("--config", type=Path, help="YAML config (see configs/)")
    p.add_argument("--data", type=Path, help="extraction folder (overrides data.dir)")
    p.add_argument("--out", type=Path, help="output folder (overrides out)")
    p.add_argument("--max-steps", type=int, help="overrides trainer.max_steps")
    p.add_argument("--accelerator", help="cpu, gpu, auto (overrides trainer.accelerator)")
    p.add_argument("--devices", help="overrides trainer.devices (GPUs or CPU processes per node)")
    p.add_argument("--num-nodes", type=int, help="overrides trainer.num_nodes")
    p.add_argument("--strategy", help="overrides trainer.strategy (auto, ddp, ...)")
    p.add_argument("--batch-size", type=int, help="overrides data.batch_size (per process)")
    p.add_argument("--num-workers", type=int, help="overrides data.num_workers")
    p.add_argument("--init-from", type=Path, help="overrides init.checkpoint: copy init.modules from this vidfake checkpoint")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt (starts afresh if there is none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key (VALUE is YAML); repeatable")
    return p


def _apply_args(config: dict, args: argparse.Namespace) -> None:
    simple = {("data", "dir"): args.data, ("trainer", "max_steps"): args.max_steps,
              ("trainer", "accelerator"): args.accelerator, ("trainer", "num_nodes"): args.num_nodes,
              ("trainer", "strategy"): args.strategy, ("data", "batch_size"): args.batch_size,
              ("data", "num_workers"): args.num_workers, ("init", "checkpoint"): args.init_from}
    for (section, key), value in simple.items():
        if value is not None:
            config[section][key] = str(value) if isinstance(value, Path) else value
    if args.out is not None:
        config["out"] = str(args.out)
    if args.devices is not None:
        config["trainer"]["devices"] = int(args.devices) if str(args.devices).isdigit() else args.devices


@dataclass
class TrainingRun:
    """Everything ``vidfake train`` wires together; :func:`fit` runs it."""

    config: dict
    datamodule: Any
    module: Any
    trainer: Any
    saver: Any
    resumer: Any
    resume_from: Path | None


def _check_extraction(data_dir: Path, model_config, sync: bool):
    from vidfake.extract.folder import ExtractionFolder, FolderError

    try:
        extract_config = ExtractionFolder(data_dir).extract_config()
    except FolderError as error:
        raise ConfigError(str(error)) from None
    if extract_config.crop.size != model_config.input_size:
        raise ConfigError(
            f"{data_dir} has {extract_config.crop.size}px crops but model.input_size is "
            f"{model_config.input_size}; extract with --size {model_config.input_size} or change the config"
        )
    if sync and extract_config.crop.mouth_size != model_config.mouth_size:
        raise ConfigError(f"{data_dir} has {extract_config.crop.mouth_size}px mouth crops but model.mouth_size is "
                          f"{model_config.mouth_size}; set model.mouth_size to match")
    return extract_config


def _modules(run_config: TrainConfig, resume: bool):
    """The data module (set up) and the LightningModule (initialised, parts frozen) of a run."""
    from vidfake.train.datamodule import FaceClipDataModule
    from vidfake.train.init_weights import load_parts
    from vidfake.train.module import DetectorModule
    from vidfake.train.pretext import SyncPretextModule

    data, optim, model_config, init = run_config.data, run_config.optim, run_config.model, run_config.init
    pretext = run_config.task == "sync_pretext"
    sync = data.sync or pretext
    # DataConfig's fields (but the folder) are the data module's keyword arguments
    datamodule = FaceClipDataModule(
        data.dir, **{k: v for k, v in asdict(data).items() if k not in ("dir", "sync")}, task=run_config.task,
        sync=sync, sync_max_shift=model_config.sync_max_offset, blend_masks=model_config.mask_head,
    )
    datamodule.setup("fit")
    common = dict(lr=optim.lr, weight_decay=optim.weight_decay, warmup_steps=optim.warmup_steps,
                  sync_loss_weight=optim.sync_loss_weight, sync_temperature=optim.sync_temperature)
    if pretext:
        module = SyncPretextModule(model_config, sync_logit_loss_weight=optim.sync_logit_loss_weight, **common)
    else:
        module = DetectorModule(model_config, frame_loss_weight=optim.frame_loss_weight,
                                clip_loss_weight=optim.clip_loss_weight, mask_loss_weight=optim.mask_loss_weight,
                                mask_weak_loss_weight=optim.mask_weak_loss_weight, use_sync=sync, **common)
    # the run's record: hparams.yaml in the logs, Lightning's checkpoints and the vidfake
    # checkpoints' training block (plain values, so the resume checkpoint loads weights_only)
    module.save_hyperparameters(json.loads(json.dumps(run_config.to_dict(), default=str)))
    if init.checkpoint and not resume:  # a resumed run has its weights in last.ckpt
        copied = load_parts(module.model, init.checkpoint, init.modules or [])
        _say(f"vidfake train: {len(copied)} tensors ({', '.join(init.modules)}) from {init.checkpoint}")
    if optim.trainable is not None:
        if pretext:
            raise ConfigError("task sync_pretext always trains the sync head alone; leave optim.trainable unset")
        parts = [optim.trainable] if isinstance(optim.trainable, str) else list(optim.trainable)
        try:
            module.train_parts(parts)
        except ValueError as error:
            raise ConfigError(f"optim.trainable: {error}") from None
        _say(f"vidfake train: training {', '.join(parts)} only; frozen: {', '.join(module.frozen_parts) or 'nothing'}")
    if optim.lr_scale:
        try:
            module.set_lr_scale(dict(optim.lr_scale))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"optim.lr_scale: {error}") from None
    return datamodule, module


def build(config: dict, resume: bool = False) -> TrainingRun:
    """Wire up a run: the data module, the LightningModule, the trainer and its callbacks.

    Args:
        config: a merged config, as :func:`load_config` returns (sections of plain values).
        resume: continue from ``OUT/last.ckpt`` when it exists (``init.checkpoint`` is then
            not copied: the weights come from the resume checkpoint).

    Returns:
        The :class:`TrainingRun` that :func:`fit` runs.

    Raises:
        ConfigError: settings that describe no usable run (no data folder, sizes that do
            not match the extraction, unknown parts); ``ValueError`` for unusable data.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    from vidfake.temporal.encoder import check_backbone_name
    from vidfake.train.callbacks import PrintProgress, ResumeCheckpoint, SaveVidfakeCheckpoint, Throughput

    try:
        run_config = TrainConfig.from_dict(config)
        check_backbone_name(run_config.model.backbone)  # before reading any data
    except ValueError as error:
        raise ConfigError(str(error)) from None
    data, tr, task, model_config = run_config.data, run_config.trainer, run_config.task, run_config.model
    if not data.dir:
        raise ConfigError("no data folder (set data.dir or pass --data)")
    data_dir, out = Path(data.dir), Path(run_config.out)
    sync = data.sync or task == "sync_pretext"
    if sync and not model_config.sync:
        raise ConfigError("lip-sync training (task sync_pretext or data.sync) needs model.sync: true")
    extract_config = _check_extraction(data_dir, model_config, sync)
    if data.val_dir:
        _check_extraction(Path(data.val_dir), model_config, sync)

    pl.seed_everything(int(run_config.seed), workers=True, verbose=False)
    datamodule, module = _modules(run_config, resume)
    max_steps = int(tr.max_steps)
    val_every = tr.val_check_interval
    if isinstance(val_every, int):
        val_every = max(1, min(val_every, max_steps))
    saver = SaveVidfakeCheckpoint(
        out / "best.safetensors", extract_config, last_path=out / "last.safetensors",
        data_dir=data_dir.resolve(), name=out.name or "vidfake", version=f"step-{max_steps}", task=task,
    )
    resumer = ResumeCheckpoint(out / "last.ckpt")
    progress = tr.progress_bar
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "lines"
    callbacks = [saver, resumer, Throughput()]
    if progress == "lines":
        callbacks.append(PrintProgress(tr.log_every_n_steps))
    accelerator = tr.accelerator
    trainer = pl.Trainer(
        max_steps=max_steps,
        max_epochs=-1,
        val_check_interval=val_every,
        check_val_every_n_epoch=None if isinstance(val_every, int) else 1,
        accelerator=accelerator,
        devices=tr.devices,
        num_nodes=int(tr.num_nodes),
        strategy=tr.strategy,
        precision=_precision(tr.precision, accelerator),
        accumulate_grad_batches=tr.accumulate_grad_batches,
        log_every_n_steps=tr.log_every_n_steps,
        logger=[CSVLogger(str(out), name="logs"), TensorBoardLogger(str(out), name="tb", default_hp_metric=False)],
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=progress == "bar",
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(out),
        use_distributed_sampler=False,  # the data module builds rank-aware samplers itself
    )
    resume_from = None
    if resume:
        if resumer.path.is_file():
            resume_from = resumer.path
        else:
            _say(f"vidfake train: --resume: no {resumer.path} yet; starting from the beginning", err=True)
    return TrainingRun(config, datamodule, module, trainer, saver, resumer, resume_from)


def fit(run: TrainingRun) -> None:
    """Train, validate once more if the run ended between validations (so the vidfake
    ``last`` checkpoint is of the final weights), and leave a resume checkpoint of the end."""
    trainer = run.trainer
    with warnings.catch_warnings():
        if run.module.frozen_parts:  # frozen parts are kept in eval mode on purpose (train_parts)
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        # weights_only: the resume checkpoint holds only tensors and plain values, so it loads
        # through torch's restricted unpickler, which runs no code
        trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=run.resume_from, weights_only=True)
    if run.saver.last_saved_step != trainer.global_step:
        trainer.validate(run.module, datamodule=run.datamodule, verbose=False)
    if run.saver.last_saved_step != trainer.global_step:  # no validation data: no metrics to save with
        run.saver.save_last(trainer, run.module)
    if run.resumer.saved_step != trainer.global_step:
        run.resumer.save(trainer)


def main(argv: list[str] | None = None) -> int:
    """``vidfake train``: returns the exit code (2 for an unusable config or data)."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        _apply_args(config, args)
        run = build(config, resume=args.resume)
    except (ConfigError, OSError, ValueError, TypeError, KeyError) as e:
        print(f"vidfake train: {e}", file=sys.stderr)
        return 2
    dm = run.datamodule
    if config["task"] == "sync_pretext":
        _say(f"vidfake train: sync pretext on {len(dm.train_items)} train / {len(dm.val_items)} val real clips "
             f"with audio from {dm.data_dir}")
    else:
        reals = sum(i.label == 0 for i in dm.val_items)
        copies = f"+{reals if dm.val_sbi else 0} SBI"
        if dm.val_moved_audio:
            copies += f", +{reals} moved-audio"
        _say(f"vidfake train: {len(dm.train_items)} train / {len(dm.val_items)} val clips"
             f" ({copies} val copies) from {dm.data_dir}")
    if run.resume_from is not None:
        _say(f"vidfake train: resuming from {run.resume_from}")
    fit(run)
    trainer, saver = run.trainer, run.saver
    best = f"{saver.best_path} (val_auc {saver.best_auc:.4f} at step {saver.best_step})" \
        if saver.best_auc is not None else "none (val AUC undefined)"
    _say(f"vidfake train: {trainer.global_step} steps; logs in {trainer.logger.log_dir}"
         f" and {trainer.loggers[1].log_dir} (TensorBoard)")
    _say(f"vidfake train: best checkpoint: {best}")
    _say(f"vidfake train: last checkpoint: {saver.last_path}; resume with --resume ({run.resumer.path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
