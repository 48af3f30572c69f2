"""The ``vidfake`` command line: one module per command, each with ``add_parser`` (its
options, defaults read from the settings dataclasses) and ``run`` (a thin call into the
package, turning its errors into messages and exit codes). Product logic lives in the
subpackages; nothing here is imported by them."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vidfake import __version__
from vidfake.cli import calibrate, ensemble, extract, init_checkpoint, models, score, serve, train
from vidfake.cli import eval as eval_command
from vidfake.cli.common import debug_log

COMMANDS = (extract, score, init_checkpoint, eval_command, calibrate, models, ensemble, train, serve)

__all__ = ["build_parser", "main"]


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
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vidfake`` command line; returns the process exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched at run time
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # its own parser (YAML config + overrides), --help included
        return train.run(argv[1:])
    args = build_parser().parse_args(argv)
    with debug_log(getattr(args, "debug_log", None)):
        return args.func(args)
