"""Options and helpers that several commands share."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidfake.scoring.heatmap_settings import DEFAULT_HEATMAP_FRAMES


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1, refused with a usage error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_debug_log(p: argparse.ArgumentParser) -> None:
    """``--debug-log FILE``: where the tracebacks of unexpected per-file failures go."""
    p.add_argument("--debug-log", type=Path, metavar="FILE",
                   help="append debug messages, with the traceback of any file that failed unexpectedly, to FILE "
                        "(such a file's result says so; the run goes on either way)")


@contextmanager
def debug_log(path: Path | None) -> Iterator[None]:
    """Collect debug messages (and unexpected failures' tracebacks) in ``path`` while the command runs."""
    if path is None:
        yield
        return
    from vidfake.extract.failures import close_debug_log, open_debug_log

    handler = open_debug_log(path)
    try:
        yield
    finally:
        close_debug_log(handler)


def add_checkpoints(p: argparse.ArgumentParser) -> None:
    """``--checkpoint``, repeatable: one model, an ensemble file, or the members of an ensemble."""
    p.add_argument("--checkpoint", type=Path, action="append", metavar="CHECKPOINT",
                   help="model checkpoint (.safetensors) made by vidfake (default: the packaged default model; see "
                        "`vidfake models`); an ensemble file from `vidfake ensemble`; repeat it to score with an "
                        "equally weighted ensemble of several")


def add_heatmap_options(p: argparse.ArgumentParser) -> None:
    """``--heatmaps DIR`` and ``--heatmap-frames K``."""
    p.add_argument("--heatmaps", type=Path, metavar="DIR",
                   help="draw where the model sees the forgery: for each face track, its most suspicious frames as "
                        "PNG heat maps in DIR (the model's blend-mask head, or Grad-CAM for a checkpoint without "
                        "one); the JSON names each picture with its frame, score, peak and region box")
    p.add_argument("--heatmap-frames", type=int, default=DEFAULT_HEATMAP_FRAMES, metavar="K",
                   help="heat maps per face track")


def heatmap_options(args: argparse.Namespace, scorer, paths: list[Path]) -> dict | None:
    """Each file's heat-map options ({} without --heatmaps); None, with the message
    printed, when they cannot be drawn."""
    if args.heatmaps is None:
        return {}
    from vidfake.scoring.ensemble_scorer import HeatmapsUnsupported, require_heatmaps
    from vidfake.scoring.heatmaps import options_for

    if args.heatmap_frames < 1:
        print(f"vidfake {args.command}: --heatmap-frames must be at least 1", file=sys.stderr)
        return None
    try:
        require_heatmaps(scorer)
    except HeatmapsUnsupported as error:
        print(f"vidfake {args.command}: {error}", file=sys.stderr)
        return None
    return options_for(paths, args.heatmaps, args.heatmap_frames)
