"""`vidfake train`: listed in `vidfake --help`; the training code parses its own arguments
(a YAML config with overrides), so ``vidfake.cli.main`` hands the command line to it."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` for the help listing only (``--help`` goes to its own parser)."""
    sub.add_parser("train", help="train a detector on an extraction folder (YAML config; see configs/)", add_help=False)


def run(argv: list[str]) -> int:
    """Run ``vidfake train ARGV``; returns the exit code."""
    from vidfake.train.run import main as train_main

    return train_main(argv)
