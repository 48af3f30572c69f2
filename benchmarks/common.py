"""Helpers the benchmark scripts share (run them as ``python benchmarks/NAME.py``, so this
folder is on the import path)."""
from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    """``git ARGS`` in the repository (for the commit a result was measured at); "" when git fails."""
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
