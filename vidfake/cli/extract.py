"""`vidfake extract`: face crops from videos and images into a labelled image dataset."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidfake.cli.common import add_debug_log


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    from vidfake.extract.crop import CropConfig
    from vidfake.extract.detect_config import FaceDetectorConfig
    from vidfake.extract.pipeline import ExtractConfig

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
    p.add_argument("--plan", default=ExtractConfig.plan, help="frames to sample: uniform:N, clips:NxL[/S], every:K or all")
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
    add_debug_log(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
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
