"""`vidfake eval`: a detector measured on a labelled set (AUC, log loss, TPR at low FPR, per group)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidfake.cli.common import add_checkpoints, add_debug_log, positive_int
from vidfake.scoring.heatmap_settings import DEFAULT_HEATMAP_FRAMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    p = sub.add_parser(
        "eval",
        help="evaluate a detector on a labelled set: AUC, log loss, TPR@FPR, per-group report",
        description=(
            "Score a labelled set (a folder with DFDC metadata.json parts, the FaceForensics++ layout "
            "or real/ and fake/ subfolders, "
            "a CSV with path,label[,groups...], or an image set in img_name,target form) into "
            "REPORT_DIR/predictions.csv (resumable), then write metrics.json, roc.png, scores.png, "
            "reliability.png, report.md and submission files. --predictions recomputes everything "
            "from a predictions file; --compare puts two detectors side by side."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("dataset", nargs="?", type=Path, help="folder or CSV to evaluate on")
    add_checkpoints(p)
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--predictions", type=Path, help="recompute the report from this predictions.csv, no scoring")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.csv", "B.csv"), help="compare two predictions files")
    p.add_argument("--frame-level", action="store_true", help="also write per-frame predictions and frame metrics")
    p.add_argument("--heatmaps", type=int, nargs="?", const=3, metavar="N",
                   help="score the N worst false positives and N worst false negatives again with heat maps "
                        "(OUT/heatmaps/) and show them in report.md (N: 3 when not given; needs DATASET)")
    p.add_argument("--heatmap-frames", type=int, default=DEFAULT_HEATMAP_FRAMES, metavar="K",
                   help="heat maps per face track")
    p.add_argument("--missing", choices=["exclude", "prior"], default="exclude",
                   help="files without a score: leave out of the metrics, or score at the set's fake fraction")
    p.add_argument("--clip", type=float, help="log-loss probability clipping (default: DFDC's)")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the checkpoint's, or 0.5)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for confidence intervals")
    p.add_argument("--cross-fit", metavar="COLUMN", nargs="?", const="group",
                   help="report with the calibration cross-fitted: temperature and bias fitted on one half of the "
                        "set (split by COLUMN, default group) and applied to the other, both ways; honest log loss "
                        "and rates where the same set also chooses or calibrates the model")
    p.add_argument("--by", action="append", default=[], metavar="COLUMN",
                   help="always report per value of this label column, however many values it has (e.g. source); "
                        "repeatable")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--keyframe-interval", type=positive_int, metavar="K",
                   help="override the model's face search: a full search on every K-th sampled frame (the default "
                        "model: 4); recorded in the report's settings. How the faster 8 was checked on wild-dev: "
                        "docs/performance.md")
    p.add_argument("--json", action="store_true", help="print metrics.json")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_debug_log(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
    from dataclasses import replace

    from vidfake.checkpoints.format import CheckpointError
    from vidfake.distributed import DistContext, ShardError
    from vidfake.eval.datasets import load_eval_set
    from vidfake.eval.evaluate import EvalError, score_set
    from vidfake.eval.outputs import EvalSettings, build_report, compare_predictions
    from vidfake.extract.labels import LabelError

    try:
        if args.compare:
            result = compare_predictions(*args.compare, args.out, n_boot=args.bootstrap)
            diff = result["auc_difference"]
            print(json.dumps(result, indent=2) if args.json else (
                f"{result['files_compared']} files: AUC A {result['a']['auc']:.4f}, B {result['b']['auc']:.4f}, "
                f"A - B = {diff['difference']:+.4f} (95% CI {diff['low']:+.4f} .. {diff['high']:+.4f})"))
            return 0
        if args.predictions:
            pred_path = args.predictions
            settings = EvalSettings.load(pred_path.parent) or EvalSettings()
            heatmaps = _eval_heatmaps(args, None)
        else:
            if args.dataset is None:
                print("vidfake eval: give DATASET (or --predictions / --compare)", file=sys.stderr)
                return 2
            from vidfake.scoring import build_scorer

            eval_set = load_eval_set(args.dataset)
            if not eval_set.items:
                raise EvalError(f"{args.dataset}: no labelled video or image found")
            for note in eval_set.notes:
                print(f"note: {note}", file=sys.stderr)
            scorer = build_scorer(args.checkpoint, device=args.device, keyframe_interval=args.keyframe_interval)
            heatmaps = _eval_heatmaps(args, scorer)  # refused before the set is scored, not after
            settings = EvalSettings(threshold=scorer.aggregation.threshold, checkpoint=scorer.model_info["name"],
                                    checkpoint_version=scorer.model_info["version"],
                                    checkpoint_sha256=scorer.model_info["sha256"],
                                    keyframe_interval=args.keyframe_interval)
            mismatch = settings.scored_unlike(args.out)
            if mismatch:
                raise EvalError(f"{mismatch}; give another --out, or delete it to score afresh")
            args.out.mkdir(parents=True, exist_ok=True)
            settings.save(args.out)  # before scoring: an interrupted run's folder says whose its rows are
            pred_path = score_set(eval_set, scorer, args.out, frames=args.frame_level, progress=not args.no_progress,
                                  context=DistContext.from_env())  # under torchrun or srun: each process a share
            if pred_path is None:  # another process than rank 0: rank 0 writes the report
                return 0
        settings = replace(
            settings, policy=args.missing, n_boot=args.bootstrap,
            **({"by": tuple(args.by)} if args.by else {}),
            **({"cross_fit": args.cross_fit} if args.cross_fit else {}),
            **({"clip": args.clip} if args.clip is not None else {}),
            **({"threshold": args.threshold} if args.threshold is not None else {}),
        )
        args.out.mkdir(parents=True, exist_ok=True)
        settings.save(args.out)
        metrics = build_report(pred_path, args.out, settings, heatmaps=heatmaps, n_heatmaps=args.heatmaps or 0)
    except (EvalError, LabelError, CheckpointError, ShardError, ValueError, FileNotFoundError) as error:
        print(f"vidfake eval: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics, indent=2, default=float))
    else:
        v, c = metrics["video"], metrics["coverage"]
        print(f"{c['scored']} of {c['total']} files scored ({c['total'] - c['scored']} without a score, policy {c['policy']})")
        print(f"AUC {v['auc']:.4f} [{v['auc_ci'][0]:.4f}, {v['auc_ci'][1]:.4f}]  log loss {v['log_loss']:.4f}  "
              f"TPR@FPR=1e-3 {v['tpr_at_fpr_1e-3']:.3f}  EER {v['eer']:.3f}  accuracy {v['accuracy']:.3f}")
        print(f"report: {args.out / 'report.md'}")
    # scoring a set: files that could not be scored make the exit code 1 (recomputing does not)
    failed = 0 if args.predictions else sum(metrics["coverage"].get(s, 0) for s in ("unreadable", "unsupported"))
    if failed:
        print(f"vidfake eval: {failed} file(s) could not be scored (unreadable or unsupported); "
              f"see the status column of {pred_path}", file=sys.stderr)
    return 1 if failed else 0


def _eval_heatmaps(args: argparse.Namespace, scorer):
    """What draws the worst errors' heat maps for ``build_report`` (None without
    ``--heatmaps``); ValueError when they cannot be drawn."""
    if args.heatmaps is None:
        return None
    from functools import partial

    from vidfake.eval.error_maps import draw_error_maps
    from vidfake.scoring.ensemble_scorer import require_heatmaps

    if args.heatmaps < 1 or args.heatmap_frames < 1:
        raise ValueError("--heatmaps and --heatmap-frames must be at least 1")
    if scorer is None:
        raise ValueError("--heatmaps scores the worst errors again: give DATASET (and the --checkpoint that scored "
                         "it), not --predictions")
    require_heatmaps(scorer)  # a ValueError: refused before the set is scored
    return partial(draw_error_maps, scorer, folder=args.out / "heatmaps", frames_per_track=args.heatmap_frames,
                   progress=not args.no_progress)
