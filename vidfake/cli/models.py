"""`vidfake models`: what the default model (or a checkpoint) is."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    p = sub.add_parser(
        "models",
        help="describe the default model (or a checkpoint): backbone, input, plan, calibration, training",
        description=(
            "Print what a checkpoint is: its name, version, SHA-256, size, architecture, sampling plan, "
            "calibration and how it was trained. Without --checkpoint it describes the default model "
            "that ships inside the package (and verifies its checksum)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", type=Path, help="describe this checkpoint (or ensemble file) instead of the default model")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
    from vidfake.checkpoints.default import describe_checkpoint
    from vidfake.checkpoints.format import CheckpointError

    try:
        info = describe_checkpoint(args.checkpoint)
    except (CheckpointError, OSError) as error:
        print(f"vidfake models: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info.get("kind") == "ensemble":
        from vidfake.checkpoints.ensemble_file import format_description

        print(format_description(info))
        return 0
    training = info["training"]
    mouth = f"weight {info['mouth_weight']:.3g}" if info["mouth_motion_head"] else "no"
    lines = [
        f"{info['name']} {info['version']}" + ("  (default model)" if info["default"] else ""),
        f"  file         {info['path']} ({info['size_mb']} MB)",
        f"  sha256       {info['sha256']}",
        f"  model        {info['backbone']} at {info['input_size']}px"
        + (f" ({info['input_view']} view)" if info["input_view"] != "rgb" else "")
        + f", {info['temporal_layers']} temporal layers, "
        f"lip-sync head {'yes' if info['sync_head'] else 'no'}, "
        f"mouth-motion head {mouth}, "
        f"blend-mask head {'yes' if info['mask_head'] else 'no'}, "
        f"{info['parameters'] / 1e6:.1f}M parameters",
        f"  plan         {info['plan']}",
        f"  calibration  temperature {info['temperature']}, bias {info['bias']}, threshold {info['threshold']}",
    ]
    if training.get("untrained"):
        lines.append("  training     none: untrained weights, scores mean nothing")
    elif training:
        auc = training.get("best_val_auc", training.get("val_auc"))
        lines.append(f"  training     {training.get('steps', '?')} steps, validation AUC "
                     f"{auc if auc is None else round(auc, 4)}")
    for key, value in info["card"].items():
        lines.append(f"  {key:<12} {value}")
    print("\n".join(lines))
    return 0
