"""`vidfake init-checkpoint`: an untrained checkpoint, to exercise the scoring path."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    from vidfake.temporal.config import ModelConfig

    model = ModelConfig()
    p = sub.add_parser(
        "init-checkpoint",
        help="write a randomly initialised (untrained) checkpoint to exercise the scoring path",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out", type=Path, help="checkpoint file to write (.safetensors)")
    p.add_argument("--backbone", default=model.backbone, help="timm model name")
    p.add_argument("--input-size", type=int, default=model.input_size, help="face crop side fed to the model")
    p.add_argument("--embed-dim", type=int, default=model.embed_dim)
    p.add_argument("--layers", type=int, default=model.temporal_layers, help="temporal transformer layers")
    p.add_argument("--no-sync", action="store_true", help="no audio-visual sync head")
    p.add_argument("--plan", default="clips:4x8", help="sampling plan saved in the checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
    from dataclasses import replace

    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.extract.sampling import PlanError
    from vidfake.temporal.config import ModelConfig

    try:
        model = replace(
            ModelConfig(), backbone=args.backbone, input_size=args.input_size, embed_dim=args.embed_dim,
            temporal_layers=args.layers, sync=not args.no_sync,
        )
        path = init_checkpoint(args.out, model, ExtractConfig(plan=args.plan), seed=args.seed)
    except (PlanError, RuntimeError, ValueError) as error:
        print(f"vidfake init-checkpoint: {error}", file=sys.stderr)
        return 2
    print(f"wrote untrained checkpoint {path} ({args.backbone}, {args.input_size}px, plan {args.plan})")
    return 0
