"""`vidfake score`: the probability that each video or image is fake."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vidfake.cli.common import add_checkpoints, add_debug_log, add_heatmap_options, heatmap_options, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
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
    add_checkpoints(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per input instead of a table")
    p.add_argument("--out", type=Path, help="also write results: .csv (path,score,label,status) or .jsonl (full records)")
    p.add_argument("--submission", type=Path, help="write DFDC's submission.csv (filename,label with probabilities)")
    p.add_argument("--plots", type=Path, help="write a per-frame score timeline PNG for each scored video into this folder")
    add_heatmap_options(p)
    p.add_argument("--resume", action="store_true",
                   help="keep each finished file in OUT.shards/ as it goes and skip the files already there, so the "
                        "same command with --resume finishes a run that stopped (needs --out; runs under torchrun "
                        "or srun always keep shards)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--frames", type=int, help="override the checkpoint's plan with uniform:N frames")
    p.add_argument("--plan", help="override the checkpoint's sampling plan (uniform:N, clips:NxL[/S], every:K, all)")
    p.add_argument("--keyframe-interval", type=positive_int, metavar="K",
                   help="override the model's face search: a full search on every K-th sampled frame, tracking "
                        "between (the default model: 4). 8 scores a 10 s 1080p video about 0.3 s faster on two "
                        "cores; on wild-dev it left the AUC as it was (0.757) but moves scores (median 0.006, "
                        "up to 0.06), so results are no longer the model's own (docs/performance.md)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_debug_log(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""
    from vidfake.checkpoints.format import CheckpointError
    from vidfake.eval.results import write_results
    from vidfake.examples import ExampleMissingError, example_path
    from vidfake.extract.dataset import ExtractError, collect_media
    from vidfake.extract.sampling import PlanError
    from vidfake.scoring import build_scorer

    if not args.inputs and not args.example:
        print("vidfake score: give videos, images or folders to score, or --example for the clip that ships "
              "with vidfake", file=sys.stderr)
        return 2
    plan = f"uniform:{args.frames}" if args.frames else args.plan
    try:  # the scorer's ExtractConfig rejects a bad --plan with a PlanError
        inputs = [*args.inputs, example_path()] if args.example else args.inputs
        items = collect_media(inputs)
        scorer = build_scorer(args.checkpoint, device=args.device, plan=plan, keyframe_interval=args.keyframe_interval)
    except (PlanError, ExtractError, CheckpointError, ExampleMissingError) as error:
        print(f"vidfake score: {error}", file=sys.stderr)
        return 2
    if not items:
        print("vidfake score: no video or image files found in the inputs", file=sys.stderr)
        return 2
    from vidfake.distributed import DistContext, ShardError
    from vidfake.scoring.files import clear_shards, score_files

    maps = heatmap_options(args, scorer, [item.path for item in items])
    if maps is None:
        return 2

    def print_json(item, verdict) -> None:
        print(json.dumps(verdict.to_dict()), flush=True)

    context = DistContext.from_env()
    sharded = context.distributed or args.resume  # across processes (torchrun, srun) or resumable
    try:
        verdicts = score_files(items, scorer, heatmaps=maps, out=args.out, resume=args.resume, context=context,
                               progress=not args.no_progress, on_verdict=print_json if args.json else None)
    except (CheckpointError, ShardError) as error:  # the model is built on the first readable file
        print(f"vidfake score: {error}", file=sys.stderr)
        return 2
    if verdicts is None:  # another process than rank 0: rank 0 writes the results
        return 0
    if not args.json:
        _print_table(verdicts)
        if maps:
            drawn = sum(len(t["heatmaps"]["frames"]) for v in verdicts for t in v.tracks if "heatmaps" in t)
            print(f"heat maps: {drawn} pictures in {args.heatmaps} (named in the --json / .jsonl records)")
    write_results(verdicts, csv_or_jsonl=args.out, submission=args.submission)
    if sharded:
        clear_shards(args.out)
    if args.plots:
        from vidfake.eval.results import write_timelines

        write_timelines(verdicts, args.plots)
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
