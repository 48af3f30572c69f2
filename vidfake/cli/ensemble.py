"""`vidfake ensemble`: several checkpoints packed into one file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    p = sub.add_parser(
        "ensemble",
        help="pack several checkpoints into one ensemble file that --checkpoint accepts",
        description=(
            "Write one safetensors file holding every member's weights and config, its weight and the "
            "ensemble's calibration. Scoring with it averages the members' calibrated video logits (weighted) "
            "and calibrates the mean with the ensemble's own temperature (1 until `vidfake calibrate` fits one "
            "on `vidfake eval` predictions of the ensemble). Members keep their own input size and plan; face "
            "extraction is shared where their extraction settings agree."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("members", nargs="+", type=Path, help="single-model checkpoints (or one ensemble file to reweigh; its calibration is reset)")
    p.add_argument("--weights", type=float, nargs="+", metavar="W", help="one positive weight per member (default: equal)")
    p.add_argument("--out", type=Path, required=True, help="ensemble file to write (.safetensors)")
    p.add_argument("--name", help="the ensemble's name in verdicts (default: the --out file's stem)")
    p.add_argument("--version", dest="ensemble_version", default="", help="the ensemble's version in verdicts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
    from vidfake.checkpoints.ensemble_file import load_members, save_ensemble
    from vidfake.checkpoints.format import CheckpointError

    try:
        members, packed_weights = load_members(args.members)
        path = save_ensemble(args.out, members, args.weights or packed_weights, name=args.name,
                             version=args.ensemble_version)
    except (CheckpointError, OSError) as error:
        print(f"vidfake ensemble: {error}", file=sys.stderr)
        return 2
    names = ", ".join(m.settings.display_name(m.path) for m in members)
    print(f"wrote ensemble {path} of {len(members)} members ({names})")
    return 0
