"""The ``vidfake`` command line: a thin layer over the package's functions."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vidfake import __version__


def _add_debug_log(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug-log", type=Path, metavar="FILE",
                   help="append debug messages, with the traceback of any file that failed unexpectedly, to FILE "
                        "(such a file's result says so; the run goes on either way)")


@contextmanager
def _debug_log(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    from vidfake.extract.failures import close_debug_log, open_debug_log

    handler = open_debug_log(path)
    try:
        yield
    finally:
        close_debug_log(handler)


def _add_extract(sub: argparse._SubParsersAction) -> None:
    from vidfake.extract.crop import CropConfig
    from vidfake.extract.detect_config import FaceDetectorConfig

    det, crop = FaceDetectorConfig(), CropConfig()
    p = sub.add_parser(
        "extract",
        help="extract face crops from videos and images into a labelled image dataset",
        description=(
            "Decode, detect, track and crop faces. Writes DIR/images/ (crops), DIR/labels.csv "
            "(img_name,target; 1 = fake), DIR/tracks.jsonl (every face track) and DIR/errors.jsonl "
            "(files that failed or had no face). Labels come from --labels, from DFDC metadata.json "
            "files found in the input folders, from the FaceForensics++ folder layout, or from "
            "real/ and fake/ (or 0_real/ and 1_fake/) folders."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", type=Path, help="video or image files, or folders of them (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output dataset folder")
    p.add_argument("--labels", type=Path, help="DFDC metadata.json, or a CSV with path,label or img_name,target columns")
    p.add_argument("--plan", default="uniform:32", help="frames to sample: uniform:N, clips:NxL[/S], every:K or all")
    p.add_argument("--frames", type=int, help="shortcut for --plan uniform:N")
    p.add_argument("--size", type=int, default=crop.size, help="crop side in pixels")
    p.add_argument("--margin", type=float, default=crop.margin, help="fraction of the face box added on each side")
    p.add_argument("--faces", choices=["all", "largest"], default="all", help="keep every face track or only the main one")
    p.add_argument("--format", dest="image_format", choices=["jpg", "png"], default="jpg", help="crop file format")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    p.add_argument("--no-mouths", action="store_true", help="do not write mouth crops (DIR/mouths/)")
    p.add_argument("--audio", action="store_true", help="also write each video's audio as 16 kHz mono WAV (DIR/audio/)")
    p.add_argument("--workers", type=int, default=1, help="videos processed in parallel (processes)")
    p.add_argument("--resume", action="store_true", help="continue a run in the same --out, skipping finished files")
    p.add_argument("--decoder", choices=["auto", "decord", "pyav"], default="auto", help="video decoding backend")
    p.add_argument("--device", default=det.device, help="face detector device: cpu or cuda[:N]")
    p.add_argument("--max-side", type=int, default=det.max_side, help="detect on a copy with this long side")
    p.add_argument("--min-face", type=int, default=det.min_face_size, help="smallest face searched (px at detection scale)")
    p.add_argument("--keyframe-interval", type=int, default=det.keyframe_interval,
                   help="full face search on every K-th sampled frame, tracked and checked between (1 = every frame)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_debug_log(p)
    p.set_defaults(func=_run_extract)


def _run_extract(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vidfake.extract.crop import CropConfig
    from vidfake.extract.dataset import ExtractError, OutputOptions, collect_media, run_extraction
    from vidfake.extract.detect import FaceDetectorConfig
    from vidfake.extract.labels import LabelError, build_label_resolver
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.extract.sampling import PlanError

    try:
        config = ExtractConfig(
            plan=f"uniform:{args.frames}" if args.frames else args.plan,
            face_detector=replace(
                FaceDetectorConfig(), device=args.device, max_side=args.max_side,
                min_face_size=args.min_face, keyframe_interval=max(1, args.keyframe_interval),
            ),
            crop=replace(CropConfig(), size=args.size, margin=args.margin),
            decoder=args.decoder,
            largest_face_only=args.faces == "largest",
            mouths=not args.no_mouths,
        )
        items = collect_media(args.inputs, exclude=args.out)
        labels = build_label_resolver(args.labels, args.inputs, skip_unknown_labels=True)
    except (PlanError, ExtractError, LabelError) as error:
        print(f"vidfake extract: {error}", file=sys.stderr)
        return 2
    if not items:
        print("vidfake extract: no video or image files found in the inputs", file=sys.stderr)
        return 2
    from vidfake.distributed import DistContext, ShardError

    try:
        context = DistContext.from_env()
        run = run_extraction
        if context.distributed:  # launched by torchrun or srun: this process does its share
            from functools import partial

            from vidfake.distributed.extract import run_extraction_sharded

            run = partial(run_extraction_sharded, context=context)
        summary = run(
            items, labels, args.out, config,
            OutputOptions(args.image_format, args.quality, audio=args.audio),
            workers=args.workers, resume=args.resume, progress=not args.no_progress, debug_log=args.debug_log,
        )
    except (ExtractError, ShardError) as error:
        print(f"vidfake extract: {error}", file=sys.stderr)
        return 2
    if summary is None:  # another process than rank 0: rank 0 merges and reports
        return 0
    summary.notes += [f"label row skipped: {line}" for line in labels.skipped]
    summary.notes += [f"label file ignored: {line}" for line in labels.ignored]
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(
            f"{summary.total} files: {summary.ok} with faces, {summary.no_face} without a face, "
            f"{summary.failed} failed, {summary.skipped} already done; "
            f"{summary.faces} face tracks, {summary.crops} crops in {summary.out_dir}"
        )
        for note in summary.notes:
            print(f"  note: {note}")
        if summary.failed or summary.no_face:
            print(f"  see {args.out / 'errors.jsonl'} for the files that failed or had no face")
    return 1 if summary.failed else 0


def _add_checkpoints(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, action="append", metavar="CHECKPOINT",
                   help="model checkpoint (.safetensors) made by vidfake (default: the packaged default model; see "
                        "`vidfake models`); an ensemble file from `vidfake ensemble`; repeat it to score with an "
                        "equally weighted ensemble of several")


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score videos and images: probability that each is fake",
        description=(
            "Detect and track faces, run the model on every face track and aggregate to one "
            "calibrated probability per file (a file is fake if any face in it is fake). "
            "Statuses: ok, no_face (score null), unreadable, unsupported. "
            "Try it: `vidfake score --example` scores the short real talking-face clip that ships "
            "with vidfake; `vidfake score my_video.mp4` scores your own file."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", type=Path, help="videos, images, or folders of them")
    p.add_argument("--example", action="store_true",
                   help="also score the example clip that ships with vidfake (3 s, a real talking face with "
                        "speech, GRID corpus, CC BY 4.0); alone, score just that clip")
    _add_checkpoints(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per input instead of a table")
    p.add_argument("--out", type=Path, help="also write results: .csv (path,score,label,status) or .jsonl (full records)")
    p.add_argument("--submission", type=Path, help="write DFDC's submission.csv (filename,label with probabilities)")
    p.add_argument("--plots", type=Path, help="write a per-frame score timeline PNG for each scored video into this folder")
    _add_heatmap_options(p)
    p.add_argument("--resume", action="store_true",
                   help="keep each finished file in OUT.shards/ as it goes and skip the files already there, so the "
                        "same command with --resume finishes a run that stopped (needs --out; runs under torchrun "
                        "or srun always keep shards)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--frames", type=int, help="override the checkpoint's plan with uniform:N frames")
    p.add_argument("--plan", help="override the checkpoint's sampling plan (uniform:N, clips:NxL[/S], every:K, all)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_debug_log(p)
    p.set_defaults(func=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    from vidfake.checkpoint import CheckpointError
    from vidfake.eval.results import write_results
    from vidfake.extract.dataset import ExtractError, collect_media
    from vidfake.extract.sampling import PlanError
    from vidfake.scoring import build_scorer

    from vidfake.examples import ExampleMissingError, example_path

    if not args.inputs and not args.example:
        print("vidfake score: give videos, images or folders to score, or --example for the clip that ships "
              "with vidfake", file=sys.stderr)
        return 2
    plan = f"uniform:{args.frames}" if args.frames else args.plan
    try:  # the scorer's ExtractConfig rejects a bad --plan with a PlanError
        inputs = [*args.inputs, example_path()] if args.example else args.inputs
        items = collect_media(inputs)
        scorer = build_scorer(args.checkpoint, device=args.device, plan=plan)
    except (PlanError, ExtractError, CheckpointError, ExampleMissingError) as error:
        print(f"vidfake score: {error}", file=sys.stderr)
        return 2
    if not items:
        print("vidfake score: no video or image files found in the inputs", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from vidfake.distributed import DistContext, ShardError

    maps = _heatmap_options(args, scorer, [item.path for item in items])
    if maps is None:
        return 2

    def score_item(item):
        extra = {"heatmaps": maps[item.path]} if maps else {}
        return scorer.score_image(item.path, **extra) if item.kind == "image" else scorer.score_video(item.path, **extra)

    verdicts = []
    try:
        context = DistContext.from_env()
        sharded = context.distributed or args.resume  # across processes (torchrun, srun) or resumable
        if sharded:
            from vidfake.distributed.score import score_sharded

            verdicts = score_sharded(items, score_item, args.out, context, resume=args.resume,
                                     progress=not args.no_progress)
            if verdicts is None:  # another process than rank 0: rank 0 writes the results
                return 0
            for verdict in verdicts if args.json else ():
                print(json.dumps(verdict.to_dict()), flush=True)
        else:
            for item in tqdm(items, unit="file", disable=args.no_progress or len(items) < 2, dynamic_ncols=True):
                verdict = score_item(item)
                verdicts.append(verdict)
                if args.json:
                    print(json.dumps(verdict.to_dict()), flush=True)
    except (CheckpointError, ShardError) as error:  # the model is built on the first readable file
        print(f"vidfake score: {error}", file=sys.stderr)
        return 2
    if not args.json:
        _print_table(verdicts)
        if maps:
            drawn = sum(len(t["heatmaps"]["frames"]) for v in verdicts for t in v.tracks if "heatmaps" in t)
            print(f"heat maps: {drawn} pictures in {args.heatmaps} (named in the --json / .jsonl records)")
    write_results(verdicts, csv_or_jsonl=args.out, submission=args.submission)
    if sharded:
        from vidfake.distributed.score import clear_shards

        clear_shards(args.out)
    if args.plots:
        from vidfake.eval.results import write_timelines

        write_timelines(verdicts, args.plots)
    return 1 if any(v.status in ("unreadable", "unsupported") for v in verdicts) else 0


def _add_heatmap_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="draw where the model sees the forgery: for each face track, its most suspicious frames as "
                        "PNG heat maps in DIR (the model's blend-mask head, or Grad-CAM for a checkpoint without "
                        "one); the JSON names each picture with its frame, score, peak and region box")
    p.add_argument("--heatmap-frames", type=int, default=3, metavar="K", help="heat maps per face track")


def _heatmap_options(args: argparse.Namespace, scorer, paths: list[Path]) -> dict | None:
    """Each file's heat-map options ({} without --heatmaps); None, with the message
    printed, when they cannot be drawn."""
    if args.heatmaps is None:
        return {}
    from vidfake.scoring import Scorer
    from vidfake.scoring.heatmaps import options_for

    if args.heatmap_frames < 1:
        print(f"vidfake {args.command}: --heatmap-frames must be at least 1", file=sys.stderr)
        return None
    if not isinstance(scorer, Scorer):
        print(f"vidfake {args.command}: --heatmaps draws one model's maps: give a single --checkpoint "
              "(ensembles have no heat maps yet)", file=sys.stderr)
        return None
    return options_for(paths, args.heatmaps, args.heatmap_frames)


def _print_table(verdicts) -> None:
    width = max(len(v.path) for v in verdicts)
    print(f"{'file':<{width}}  {'kind':<5}  {'status':<11}  {'score':>6}  label")
    for v in verdicts:
        score = f"{v.score:.3f}" if v.score is not None else "-"
        print(f"{v.path:<{width}}  {v.kind:<5}  {v.status:<11}  {score:>6}  {v.label or '-'}")
        for warning in v.warnings:
            print(f"{'':<{width}}  warning: {warning}")
        if v.error:
            print(f"{'':<{width}}  error: {v.error}")


def _add_init_checkpoint(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_init_checkpoint)


def _run_init_checkpoint(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vidfake.checkpoint import init_checkpoint
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


def _add_eval(sub: argparse._SubParsersAction) -> None:
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
    _add_checkpoints(p)
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--predictions", type=Path, help="recompute the report from this predictions.csv, no scoring")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.csv", "B.csv"), help="compare two predictions files")
    p.add_argument("--frame-level", action="store_true", help="also write per-frame predictions and frame metrics")
    p.add_argument("--heatmaps", type=int, nargs="?", const=3, metavar="N",
                   help="score the N worst false positives and N worst false negatives again with heat maps "
                        "(OUT/heatmaps/) and show them in report.md (N: 3 when not given; needs DATASET)")
    p.add_argument("--heatmap-frames", type=int, default=3, metavar="K", help="heat maps per face track")
    p.add_argument("--missing", choices=["exclude", "prior"], default="exclude",
                   help="files without a score: leave out of the metrics, or score at the set's fake fraction")
    p.add_argument("--clip", type=float, help="log-loss probability clipping (default: DFDC's)")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the checkpoint's, or 0.5)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for confidence intervals")
    p.add_argument("--by", action="append", default=[], metavar="COLUMN",
                   help="always report per value of this label column, however many values it has (e.g. source); "
                        "repeatable")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--json", action="store_true", help="print metrics.json")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_debug_log(p)
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vidfake.checkpoint import CheckpointError
    from vidfake.eval.datasets import load_eval_set
    from vidfake.distributed import DistContext, ShardError
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
            scorer = build_scorer(args.checkpoint, device=args.device)
            heatmaps = _eval_heatmaps(args, scorer)  # refused before the set is scored, not after
            settings = EvalSettings(threshold=scorer.aggregation.threshold, checkpoint=scorer.model_info["name"],
                                    checkpoint_version=scorer.model_info["version"])
            args.out.mkdir(parents=True, exist_ok=True)
            pred_path = score_set(eval_set, scorer, args.out, frames=args.frame_level, progress=not args.no_progress,
                                  context=DistContext.from_env())  # under torchrun or srun: each process a share
            if pred_path is None:  # another process than rank 0: rank 0 writes the report
                return 0
        settings = replace(
            settings, policy=args.missing, n_boot=args.bootstrap,
            **({"by": tuple(args.by)} if args.by else {}),
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
    from vidfake.scoring import Scorer

    if args.heatmaps < 1 or args.heatmap_frames < 1:
        raise ValueError("--heatmaps and --heatmap-frames must be at least 1")
    if scorer is None:
        raise ValueError("--heatmaps scores the worst errors again: give DATASET (and the --checkpoint that scored "
                         "it), not --predictions")
    if not isinstance(scorer, Scorer):
        raise ValueError("--heatmaps draws one model's maps: give a single --checkpoint (ensembles have no heat maps yet)")
    return partial(draw_error_maps, scorer, folder=args.out / "heatmaps", frames_per_track=args.heatmap_frames,
                   progress=not args.no_progress)


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--val-fraction", type=float, default=0.2, help="with --data: the run's data.val_fraction")
    p.add_argument("--clip-len", type=int, default=1, help="with --data: the run's data.clip_len")
    p.add_argument("--split-seed", type=int, default=0, help="with --data: the run's data.seed")
    p.add_argument("--clean", action="store_true",
                   help="with --data: do not degrade the validation clips with the training augmentations")
    p.add_argument("--bias", action="store_true",
                   help="also fit an offset (Platt scaling, classes weighed equally): for a model whose scores "
                        "lean toward one class on new data, which a temperature alone cannot undo")
    p.set_defaults(func=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from vidfake.checkpoint import CheckpointError, is_ensemble
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
                from vidfake.train.val_predictions import write_validation_predictions

                predictions = write_validation_predictions(
                    args.checkpoint[0], args.data, args.out.with_name(args.out.stem + ".validation.csv"),
                    clip_len=args.clip_len, val_fraction=args.val_fraction, split_seed=args.split_seed,
                    degrade=not args.clean,
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


def _add_models(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from vidfake.checkpoint import CheckpointError
    from vidfake.models import describe_checkpoint

    try:
        info = describe_checkpoint(args.checkpoint)
    except (CheckpointError, OSError) as error:
        print(f"vidfake models: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info.get("kind") == "ensemble":
        from vidfake.ensemble import format_description

        print(format_description(info))
        return 0
    training = info["training"]
    lines = [
        f"{info['name']} {info['version']}" + ("  (default model)" if info["default"] else ""),
        f"  file         {info['path']} ({info['size_mb']} MB)",
        f"  sha256       {info['sha256']}",
        f"  model        {info['backbone']} at {info['input_size']}px, {info['temporal_layers']} temporal layers, "
        f"lip-sync head {'yes' if info['sync_head'] else 'no'}, blend-mask head {'yes' if info['mask_head'] else 'no'}, "
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


def _add_ensemble(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_ensemble)


def _run_ensemble(args: argparse.Namespace) -> int:
    from vidfake.checkpoint import CheckpointError
    from vidfake.ensemble import load_members, save_ensemble

    try:
        members, packed_weights = load_members(args.members)
        path = save_ensemble(args.out, members, args.weights or packed_weights, name=args.name,
                             version=args.ensemble_version)
    except (CheckpointError, OSError) as error:
        print(f"vidfake ensemble: {error}", file=sys.stderr)
        return 2
    names = ", ".join(m.config.get("name", Path(m.path).stem) for m in members)
    print(f"wrote ensemble {path} of {len(members)} members ({names})")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    # Listed here for `vidfake --help`; `main` hands `vidfake train ...` to its own parser.
    sub.add_parser("train", help="train a detector on an extraction folder (YAML config; see configs/)", add_help=False)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from vidfake.serve.config import TOKEN_ENV, ServeSettings

    d = ServeSettings(checkpoint=Path("-"))
    p = sub.add_parser(
        "serve",
        help="score uploaded videos and images over HTTP: a JSON API and a web page",
        description=(
            "Start an HTTP server: POST /v1/jobs uploads a file (multipart field 'file'), GET /v1/jobs/ID "
            "gives its status and verdict (the `vidfake score --json` record), the page at / does the same "
            "in a browser. Jobs are kept in SQLite under --data-dir, so a restart loses none. "
            f"The bearer token can also come from the {TOKEN_ENV} environment variable (safer than --token, "
            "which other users can see in the process list)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--checkpoint", type=Path, action="append", metavar="CHECKPOINT",
                   help="model checkpoint (or ensemble file); without it, the model shipped with vidfake; repeat it "
                        "to serve an equally weighted ensemble")
    p.add_argument("--workers", type=int, default=d.workers, help="scoring processes, each with one model in memory")
    p.add_argument("--device", default=d.device, help="cpu or cuda[:N] for the workers' model and face detector")
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="job database, uploads and face thumbnails")
    p.add_argument("--db", type=Path, help="SQLite job database; without it, DATA_DIR/jobs.sqlite3")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="larger uploads get 413")
    p.add_argument("--upload-timeout", type=float, default=d.upload_timeout_s,
                   help="seconds the whole upload may take; a slower client gets 408 and its connection closed")
    p.add_argument("--max-duration", type=float, default=d.max_duration_s, help="longer videos (seconds) get 422")
    p.add_argument("--max-resolution", default="x".join(map(str, d.max_resolution)),
                   help="larger frames (either orientation) get 422")
    p.add_argument("--queue-size", type=int, default=d.queue_max, help="queued jobs beyond which uploads get 503")
    p.add_argument("--job-timeout", type=float, default=d.job_timeout_s,
                   help="seconds a job may take; past it the worker is killed and the job fails")
    p.add_argument("--retention-hours", type=float, default=d.retention_hours,
                   help="uploads and thumbnails are deleted this long after their job ends")
    p.add_argument("--heatmap-frames", type=int, default=d.heatmap_frames, metavar="K",
                   help="heat maps per face track shown under the timeline (the most suspicious frames; 0: none); "
                        "kept and deleted with the thumbnails")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' on every endpoint but /healthz and /readyz "
                                   f"(default: ${TOKEN_ENV} if set, else no authentication)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from this origin (repeatable); CORS is off by default")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    import logging

    from vidfake.checkpoint import CheckpointError
    from vidfake.models import resolve_checkpoint
    from vidfake.serve.config import TOKEN_ENV, ServeSettings, parse_resolution

    try:
        checkpoints = [resolve_checkpoint(path) for path in args.checkpoint or [None]]
    except CheckpointError as error:
        print(f"vidfake serve: {error}", file=sys.stderr)
        return 2
    missing = [str(path) for path in checkpoints if not path.is_file()]
    if missing:
        print(f"vidfake serve: {', '.join(missing)}: no such checkpoint file", file=sys.stderr)
        return 2
    checkpoint = checkpoints[0].resolve() if len(checkpoints) == 1 else tuple(path.resolve() for path in checkpoints)
    try:
        settings = ServeSettings(
            checkpoint=checkpoint, data_dir=args.data_dir.resolve(), db_path=args.db, workers=args.workers,
            device=args.device, max_upload_mb=args.max_upload_mb, upload_timeout_s=args.upload_timeout,
            max_duration_s=args.max_duration,
            max_resolution=parse_resolution(args.max_resolution), queue_max=args.queue_size,
            job_timeout_s=args.job_timeout, retention_hours=args.retention_hours,
            token=args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None),
            cors_origins=tuple(args.cors_origin), heatmap_frames=args.heatmap_frames,
        )
    except ValueError as error:
        print(f"vidfake serve: {error}", file=sys.stderr)
        return 2
    import uvicorn

    from vidfake.serve.app import create_app
    from vidfake.serve.service import Service

    try:
        Service(settings).preflight()
    except (RuntimeError, OSError) as error:
        print(f"vidfake serve: {error}", file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)-9s %(message)s")
    fatal: list[str] = []
    servers: list[uvicorn.Server] = []

    def stop_with(message: str) -> None:
        fatal.append(message)
        for server in servers:
            server.should_exit = True

    config = uvicorn.Config(create_app(settings, on_fatal=stop_with), host=args.host, port=args.port,
                            log_level=args.log_level, timeout_graceful_shutdown=10)
    servers.append(uvicorn.Server(config))
    try:
        servers[0].run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its clean shutdown
        return 130
    except SystemExit:  # uvicorn exits when start-up fails (port taken, service error)
        if not fatal:
            raise
    if fatal:
        print(f"vidfake serve: {fatal[0]}", file=sys.stderr)
        return 2
    return 0 if servers[0].started else 1


def build_parser() -> argparse.ArgumentParser:
    """The ``vidfake`` argument parser with every subcommand except ``train`` (which parses its own)."""
    parser = argparse.ArgumentParser(
        prog="vidfake",
        description="Video deepfake detection: face extraction, temporal scoring and evaluation.",
        epilog="Start here: `vidfake score --example` scores the clip that ships with vidfake; "
               "`vidfake score my_video.mp4` scores your own.",
    )
    parser.add_argument("--version", action="version", version=f"vidfake {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_extract(sub)
    _add_score(sub)
    _add_init_checkpoint(sub)
    _add_eval(sub)
    _add_calibrate(sub)
    _add_models(sub)
    _add_ensemble(sub)
    _add_train(sub)
    _add_serve(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vidfake`` command line; returns the process exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched at run time
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # its own parser (YAML config + overrides), --help included
        from vidfake.train.run import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    with _debug_log(getattr(args, "debug_log", None)):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
