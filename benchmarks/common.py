"""Helpers the benchmark scripts share (run them as ``python benchmarks/NAME.py``, so this
folder is on the import path)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    """``git ARGS`` in the repository (for the commit a result was measured at); "" when git fails."""
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def git_state() -> dict:
    """The commit a result was measured at, and which package files differed from it."""
    return {"commit": git("rev-parse", "HEAD"), "vidfake_modified": git("status", "--porcelain", "vidfake").splitlines()}


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages: a busy host explains a slow figure."""
    return [round(x, 2) for x in os.getloadavg()]


def _proc_field(path: str, key: str) -> str:
    """The value after ``key:`` in a /proc file such as cpuinfo; "" where there is none."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), "")


def machine_info(packages: Sequence[str] = ()) -> dict:
    """The machine, Python and library versions a result was measured with. ``packages``:
    further distributions whose versions matter to this benchmark (e.g. ``"timm"``)."""
    import av
    import numpy as np
    import torch

    mem_kib = _proc_field("/proc/meminfo", "MemTotal").split()
    versions = {}
    for name in packages:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "mem_total_gib": round(int(mem_kib[0]) / 2**20, 1) if mem_kib else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "pyav": av.__version__,
        "numpy": np.__version__,
        **versions,
        "load_average_start": load(),
    }


def clip_info(path: Path) -> dict:
    """What a benchmark clip is, from the same probe the pipeline uses."""
    from vidfake.extract.video import probe

    info = probe(path)
    return {"width": info.width, "height": info.height, "fps": round(info.fps, 3), "frames": info.num_frames,
            "duration_s": round(info.duration, 2), "codec": info.codec, "audio": info.has_audio,
            "mib": round(path.stat().st_size / 2**20, 2)}


def auc_with_interval(labels, scores) -> dict:
    """The video AUC and its 95 % bootstrap interval, rounded to 4 places, as the result
    files give them (both classes must be present)."""
    from vidfake.eval.metrics import bootstrap_ci, roc_auc

    low, high = bootstrap_ci(roc_auc, labels, scores)
    return {"auc": round(roc_auc(labels, scores), 4), "auc_95": [round(low, 4), round(high, 4)]}
