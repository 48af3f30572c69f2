"""``vidfake train``: fit a detector on a ``vidfake extract`` folder from a YAML config.

YAML sections (all optional except ``data.dir`` unless ``--data`` is given)::

    data:    {dir, clip_len, batch_size, val_fraction, sbi_prob, num_workers, augment, seed}
    model:   ModelConfig fields
    optim:   {lr, weight_decay, warmup_steps, frame_loss_weight}
    trainer: {max_steps, val_check_interval, accelerator, devices, precision,
              accumulate_grad_batches, log_every_n_steps}
    out:     output folder (or --out)

Writes ``OUT/logs`` (Lightning CSV logs), ``OUT/best.safetensors`` (best val AUC) and
``OUT/last.safetensors`` (after the latest validation), both vidfake checkpoints.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULTS = {
    "data": {"dir": None, "clip_len": 8, "batch_size": 8, "val_fraction": 0.2, "sbi_prob": 0.5,
             "num_workers": 0, "augment": True, "seed": 0},
    "model": {},
    "optim": {"lr": 3e-4, "weight_decay": 0.05, "warmup_steps": 100, "frame_loss_weight": 0.5},
    "trainer": {"max_steps": 1000, "val_check_interval": 200, "accelerator": "auto", "devices": 1,
                "precision": "auto", "accumulate_grad_batches": 1, "log_every_n_steps": 10},
    "out": "runs/train",
    "seed": 0,
}


class ConfigError(ValueError):
    pass


def load_config(path: str | Path | None) -> dict:
    import yaml

    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    if path is None:
        return config
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"{path}: unknown sections {sorted(unknown)}")
    for key, value in raw.items():
        if isinstance(DEFAULTS[key], dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: section {key!r} must be a mapping")
            if key != "model":
                bad = set(value) - set(DEFAULTS[key])
                if bad:
                    raise ConfigError(f"{path}: unknown {key} keys {sorted(bad)}")
            config[key].update(value)
        else:
            config[key] = value
    return config


def _precision(requested: str | None, accelerator: str) -> str:
    import torch

    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if requested in (None, "auto"):
        return "bf16-mixed" if on_gpu else "32-true"
    if "bf16" in str(requested) and not on_gpu:
        print(f"vidfake train: precision {requested} is for GPUs; using 32-true on {accelerator}", file=sys.stderr)
        return "32-true"
    return str(requested)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidfake train", description="Train a detector on a `vidfake extract` folder.")
    p.add_argument("--config", type=Path, help="YAML config (see configs/smoke.yaml)")
    p.add_argument("--data", type=Path, help="extraction folder (overrides data.dir)")
    p.add_argument("--out", type=Path, help="output folder (overrides out)")
    p.add_argument("--max-steps", type=int, help="overrides trainer.max_steps")
    p.add_argument("--accelerator", help="cpu, gpu, auto (overrides trainer.accelerator)")
    p.add_argument("--devices", help="overrides trainer.devices")
    p.add_argument("--batch-size", type=int, help="overrides data.batch_size")
    p.add_argument("--num-workers", type=int, help="overrides data.num_workers")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as e:
        print(f"vidfake train: {e}", file=sys.stderr)
        return 2
    data, optim, tr = config["data"], config["optim"], config["trainer"]
    if args.data is not None:
        data["dir"] = str(args.data)
    if args.out is not None:
        config["out"] = str(args.out)
    if args.max_steps is not None:
        tr["max_steps"] = args.max_steps
    if args.accelerator is not None:
        tr["accelerator"] = args.accelerator
    if args.devices is not None:
        tr["devices"] = int(args.devices) if str(args.devices).isdigit() else args.devices
    if args.batch_size is not None:
        data["batch_size"] = args.batch_size
    if args.num_workers is not None:
        data["num_workers"] = args.num_workers
    if not data.get("dir"):
        print("vidfake train: no data folder (set data.dir or pass --data)", file=sys.stderr)
        return 2
    data_dir = Path(data["dir"])
    out = Path(config["out"])

    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal import ModelConfig
    from vidfake.train.datamodule import FaceClipDataModule
    from vidfake.train.module import DetectorModule, SaveVidfakeCheckpoint

    try:
        model_config = ModelConfig.from_dict(config["model"])
        extract_path = data_dir / "config.json"
        if not extract_path.is_file():
            raise ConfigError(f"{data_dir}: no config.json (is it a `vidfake extract` output folder?)")
        extract_config = ExtractConfig.from_dict(json.loads(extract_path.read_text())["extract"])
        if extract_config.crop.size != model_config.input_size:
            raise ConfigError(
                f"{data_dir} has {extract_config.crop.size}px crops but model.input_size is "
                f"{model_config.input_size}; extract with --size {model_config.input_size} or change the config"
            )
    except (ConfigError, ValueError, TypeError, KeyError) as e:
        print(f"vidfake train: {e}", file=sys.stderr)
        return 2

    pl.seed_everything(int(config.get("seed", 0)), workers=True, verbose=False)
    datamodule = FaceClipDataModule(
        data_dir, clip_len=data["clip_len"], batch_size=data["batch_size"], val_fraction=data["val_fraction"],
        sbi_prob=data["sbi_prob"], num_workers=data["num_workers"], augment=data["augment"], seed=data["seed"],
    )
    try:
        datamodule.setup("fit")
    except (ValueError, OSError) as e:
        print(f"vidfake train: {e}", file=sys.stderr)
        return 2
    module = DetectorModule(
        model_config, lr=optim["lr"], weight_decay=optim["weight_decay"],
        warmup_steps=optim["warmup_steps"], frame_loss_weight=optim["frame_loss_weight"],
    )
    max_steps = int(tr["max_steps"])
    val_every = tr["val_check_interval"]
    if isinstance(val_every, int):
        val_every = max(1, min(val_every, max_steps))
    saver = SaveVidfakeCheckpoint(
        out / "best.safetensors", extract_config, last_path=out / "last.safetensors",
        data_dir=data_dir.resolve(), name=out.name or "vidfake", version=f"step-{max_steps}",
    )
    accelerator = tr["accelerator"]
    trainer = pl.Trainer(
        max_steps=max_steps,
        max_epochs=-1,
        val_check_interval=val_every,
        check_val_every_n_epoch=None if isinstance(val_every, int) else 1,
        accelerator=accelerator,
        devices=tr["devices"],
        precision=_precision(tr.get("precision"), accelerator),
        accumulate_grad_batches=tr["accumulate_grad_batches"],
        log_every_n_steps=tr["log_every_n_steps"],
        logger=CSVLogger(str(out), name="logs"),
        callbacks=[saver],
        enable_checkpointing=False,
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(out),
    )
    print(f"vidfake train: {len(datamodule.train_items)} train / {len(datamodule.val_items)} val clips"
          f" (+{sum(i.label == 0 for i in datamodule.val_items)} SBI val copies) from {data_dir}")
    trainer.fit(module, datamodule=datamodule)
    if saver.last_saved_step != trainer.global_step:  # the run ended between validations
        trainer.validate(module, datamodule=datamodule, verbose=False)
    if trainer.is_global_zero:
        best = f"{saver.best_path} (val_auc {saver.best_auc:.4f} at step {saver.best_step})" \
            if saver.best_auc is not None else "none (val AUC undefined)"
        print(f"vidfake train: {trainer.global_step} steps; logs in {trainer.logger.log_dir}")
        print(f"vidfake train: best checkpoint: {best}")
        print(f"vidfake train: last checkpoint: {saver.last_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
