"""The ``vidfake`` command line: a thin layer over the package's functions."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vidfake import __version__


def _add_extract(sub: argparse._SubParsersAction) -> None:
    from vidfake.extract.crop import CropConfig
    from vidfake.extract.detect import DetectorConfig

    det, crop = DetectorConfig(), CropConfig()
    p = sub.add_parser(
        "extract",
        help="extract face crops from videos and images into a labelled image dataset",
        description=(
            "Decode, detect, track and crop faces. Writes DIR/images/ (crops), DIR/labels.csv "
            "(img_name,target; 1 = fake), DIR/tracks.jsonl (every face track) and DIR/errors.jsonl "
            "(files that failed or had no face). Labels come from --labels, from DFDC metadata.json "
            "files found in the input folders, or from the FaceForensics++ folder layout."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", type=Path, help="video or image files, or folders of them (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="output dataset folder")
    p.add_argument("--labels", type=Path, help="DFDC metadata.json or a CSV with path,label columns")
    p.add_argument("--plan", default="uniform:32", help="frames to sample: uniform:N, clips:NxL[/S], every:K or all")
    p.add_argument("--frames", type=int, help="shortcut for --plan uniform:N")
    p.add_argument("--size", type=int, default=crop.size, help="crop side in pixels")
    p.add_argument("--margin", type=float, default=crop.margin, help="fraction of the face box added on each side")
    p.add_argument("--faces", choices=["all", "largest"], default="all", help="keep every face track or only the main one")
    p.add_argument("--format", dest="image_format", choices=["jpg", "png"], default="jpg", help="crop file format")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    p.add_argument("--no-mouths", action="store_true", help="do not write mouth crops (DIR/mouths/)")
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
    p.set_defaults(func=_run_extract)


def _run_extract(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vidfake.extract.crop import CropConfig
    from vidfake.extract.dataset import ExtractError, OutputOptions, collect_media, run_extraction
    from vidfake.extract.detect import DetectorConfig
    from vidfake.extract.labels import LabelError, build_label_resolver
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.extract.sampling import PlanError

    try:
        config = ExtractConfig(
            plan=f"uniform:{args.frames}" if args.frames else args.plan,
            detector=replace(
                DetectorConfig(), device=args.device, max_side=args.max_side,
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
    try:
        summary = run_extraction(
            items, labels, args.out, config,
            OutputOptions(args.image_format, args.quality),
            workers=args.workers, resume=args.resume, progress=not args.no_progress,
        )
    except ExtractError as error:
        print(f"vidfake extract: {error}", file=sys.stderr)
        return 2
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


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score videos and images: probability that each is fake",
        description=(
            "Detect and track faces, run the model on every face track and aggregate to one "
            "calibrated probability per file (a file is fake if any face in it is fake). "
            "Statuses: ok, no_face (score null), unreadable, unsupported."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", type=Path, help="videos, images, or folders of them")
    p.add_argument("--checkpoint", type=Path, help="model checkpoint (.safetensors) made by vidfake")
    p.add_argument("--json", action="store_true", help="print one JSON object per input instead of a table")
    p.add_argument("--out", type=Path, help="also write results: .csv (path,score,label,status) or .jsonl (full records)")
    p.add_argument("--submission", type=Path, help="write DFDC's submission.csv (filename,label with probabilities)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--frames", type=int, help="override the checkpoint's plan with uniform:N frames")
    p.add_argument("--plan", help="override the checkpoint's sampling plan (uniform:N, clips:NxL[/S], every:K, all)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_score)


NO_MODEL_MESSAGE = (
    "no model is installed yet. Pass --checkpoint PATH with a vidfake checkpoint. To try the "
    "whole path now, make an untrained one: `vidfake init-checkpoint model.safetensors`; a trained "
    "default model will ship with a later release."
)


def _run_score(args: argparse.Namespace) -> int:
    from vidfake.checkpoint import CheckpointError
    from vidfake.extract.dataset import ExtractError, collect_media
    from vidfake.extract.sampling import PlanError, parse_plan
    from vidfake.reports import write_results
    from vidfake.scoring import Scorer

    if args.checkpoint is None:
        print(f"vidfake score: {NO_MODEL_MESSAGE}", file=sys.stderr)
        return 2
    plan = f"uniform:{args.frames}" if args.frames else args.plan
    try:
        if plan:
            parse_plan(plan)
        items = collect_media(args.inputs)
        scorer = Scorer(args.checkpoint, device=args.device, plan=plan)
    except (PlanError, ExtractError, CheckpointError) as error:
        print(f"vidfake score: {error}", file=sys.stderr)
        return 2
    if not items:
        print("vidfake score: no video or image files found in the inputs", file=sys.stderr)
        return 2
    from tqdm import tqdm

    verdicts = []
    for item in tqdm(items, unit="file", disable=args.no_progress or len(items) < 2, dynamic_ncols=True):
        verdict = scorer.score_image(item.path) if item.kind == "image" else scorer.score_video(item.path)
        verdicts.append(verdict)
        if args.json:
            print(json.dumps(verdict.to_dict()), flush=True)
    if not args.json:
        _print_table(verdicts)
    write_results(verdicts, csv_or_jsonl=args.out, submission=args.submission)
    return 1 if any(v.status in ("unreadable", "unsupported") for v in verdicts) else 0


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

    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.extract.sampling import PlanError
    from vidfake.init_checkpoint import init_checkpoint
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidfake",
        description="Video deepfake detection: face extraction, temporal scoring and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"vidfake {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_extract(sub)
    _add_score(sub)
    _add_init_checkpoint(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched at run time
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
