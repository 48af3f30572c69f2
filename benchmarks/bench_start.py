"""How long a new user waits before vidfake answers: ``--help`` and an unreadable file,
against ``python -c "import torch"`` on the same machine.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/bench_start.py            # 5 runs of each (about a minute on 2 cores)

Each command runs in a fresh interpreter (as a user runs it); the median wall time of
``--reps`` runs is compared with the median of ``import torch``. The targets (issue 15):
help at most 0.3x, an unreadable file answered at most 1.3x. Writes
``benchmarks/results/start_cpu.json``. Wall times on a shared machine are noisy: the JSON
records the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"help": 0.3, "score_help": 0.3, "unreadable_file": 1.3}


def wall(argv: list[str], reps: int) -> dict:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "start_cpu.json")
    args = parser.parse_args(argv)
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.mp4"
        empty.write_bytes(b"")
        commands = {
            "import_torch": [python, "-c", "import torch"],
            "help": [python, "-m", "vidfake", "--help"],
            "score_help": [python, "-m", "vidfake", "score", "--help"],
            "unreadable_file": [python, "-m", "vidfake", "score", str(empty), "--json"],
        }
        load_before = [round(x, 2) for x in os.getloadavg()]
        results = {name: wall(command, args.reps) for name, command in commands.items()}
    torch_s = results["import_torch"]["median_s"]
    for name, limit in TARGETS.items():
        ratio = results[name]["median_s"] / torch_s
        results[name].update(ratio_to_import_torch=round(ratio, 3), target_ratio=limit, met=ratio <= limit)
    report = {"cpu_count": os.cpu_count(), "reps": args.reps, "load_average_before": load_before,
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, r in results.items():
        extra = f"  {r['ratio_to_import_torch']:.2f}x (target <= {r['target_ratio']}x)" if "target_ratio" in r else ""
        print(f"{name:16s} {r['median_s']:6.2f} s{extra}")
    return report


if __name__ == "__main__":
    main()
