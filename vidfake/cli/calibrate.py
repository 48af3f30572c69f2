"""`vidfake calibrate`: a checkpoint's temperature (and bias) fitted on held-out predictions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    p = sub.add_parser(
        "calibrate",
        help="fit the checkpoint's temperature on validation predictions and write a new checkpoint",
        description=(
            "Fit the temperature that minimises log loss on held-out data and write it into a new "
            "checkpoint. The held-out data is either a predictions.csv from `vidfake eval` on a "
            "labelled validation set, or (--data) the validation split of the `vidfake extract` folder "
            "the model was trained on, split exactly as `vidfake train` split it. Better still, extract "
            "sources the model never trained on into their own folder and pass it with --val-fraction 1: "
            "every item is then held out, and the temperature sees some of the domain shift that wild "
            "video brings (real-only folders get one self-blended copy of each face as the fakes)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", type=Path, required=True, action="append", metavar="CHECKPOINT",
                   help="checkpoint to calibrate; an ensemble file, or repeated for an equally weighted ensemble "
                        "(--predictions from `vidfake eval` with the same ensemble; --out is then an ensemble file)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, help="predictions.csv from vidfake eval on a validation set")
    source.add_argument("--data", type=Path, help="an extraction folder: calibrate on its validation split "
                        "(the training run's folder, or a held-out one with --val-fraction 1)")
    p.add_argument("--out", type=Path, required=True, help="new checkpoint file")
    p.add_argument("--val-fraction", type=float,
                   help="with --data: override the training run's data.val_fraction (default: the checkpoint's)")
    p.add_argument("--clip-len", type=int,
                   help="with --data: override the training run's data.clip_len (default: the checkpoint's)")
    p.add_argument("--split-seed", type=int,
                   help="with --data: override the training run's data.seed (default: the checkpoint's)")
    p.add_argument("--clean", action="store_true",
                   help="with --data: do not degrade the validation clips with the training augmentations")
    p.add_argument("--bias", action="store_true",
                   help="also fit an offset (Platt scaling, classes weighed equally): for a model whose scores "
                        "lean toward one class on new data, which a temperature alone cannot undo")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
    from vidfake.checkpoints.format import CheckpointError, is_ensemble
    from vidfake.eval.calibrate import CalibrationError, calibrate_checkpoint, calibrate_ensemble

    ensemble = len(args.checkpoint) > 1 or is_ensemble(args.checkpoint[0])
    if ensemble and args.data is not None:
        print("vidfake calibrate: --data calibrates one model on its training run's validation split; for an "
              "ensemble, score a labelled set with `vidfake eval` and pass its --predictions", file=sys.stderr)
        return 2
    try:
        predictions = args.predictions
        if ensemble:
            result = calibrate_ensemble(args.checkpoint, predictions, args.out, bias=args.bias)
        else:
            if args.data is not None:
                from vidfake.checkpoints.format import read_header
                from vidfake.train.val_predictions import split_settings, write_validation_predictions

                split = split_settings(read_header(args.checkpoint[0]).config)
                given = {"clip_len": args.clip_len, "val_fraction": args.val_fraction, "split_seed": args.split_seed}
                split.update({k: v for k, v in given.items() if v is not None})
                predictions = write_validation_predictions(
                    args.checkpoint[0], args.data, args.out.with_name(args.out.stem + ".validation.csv"),
                    **split, degrade=not args.clean,
                )
                print(f"validation predictions: {predictions}")
            result = calibrate_checkpoint(args.checkpoint[0], predictions, args.out, bias=args.bias)
    except (CalibrationError, CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"vidfake calibrate: {error}", file=sys.stderr)
        return 2
    offset = f", bias {result['bias_before']:.4g} -> {result['bias']:.4g}" if args.bias else ""
    print(f"temperature {result['temperature_before']:.4g} -> {result['temperature']:.4g}{offset} on {result['n']} files; "
          f"log loss {result['log_loss_before']:.4f} -> {result['log_loss_after']:.4f}; wrote {args.out}")
    return 0
