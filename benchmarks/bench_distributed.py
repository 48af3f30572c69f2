"""Throughput of ``vidfake score`` in one process and across processes (``torchrun``).

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/bench_distributed.py                 # 1 and 2 processes, 24 files
    .venv/bin/python benchmarks/bench_distributed.py --quick         # 8 files
    .venv/bin/python benchmarks/bench_distributed.py --processes 1 2 4 --files 64

What is measured: the wall time of the whole command, as a user runs it (interpreter and
model start-up, after one untimed warm-up run so no run pays for reading the libraries from disk, face detection, scoring, the shards' merge), for ``--files`` files made by
cycling through the fixture videos in ``<repo>/../shared/fixtures/videos`` (the shortest
first; symlinks, so nothing is copied) and the fixture images, falling back to generated
clips where the fixtures are absent. One process runs ``python -m vidfake score``; N
processes run it under ``python -m torch.distributed.run --nproc_per_node N``, each with
``OMP_NUM_THREADS`` = cores / N so every run uses the same cores; a last run of one process
on one thread shows what the threads alone bring. The model is an untrained
``mobilenetv3_small_050`` at 128 px with the ``clips:2x8`` plan (``vidfake.checkpoints.format.init_checkpoint``):
the model is a small part of a file's time on CPU; decoding and face detection dominate.
Every N-process run's scores are compared with the one-process run's (``max_abs_score_diff``).

It writes one JSON file (default ``benchmarks/results/distributed_cpu.json``). Wall times
on a shared machine: the JSON records the load average before and after each run and a
free-text ``--note`` about the machine (e.g. another job sharing its cores).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, git_state, load, machine_info

FIXTURES = REPO.parent / "shared" / "fixtures"
MEDIA_SUFFIXES = {".mp4", ".mpg", ".jpg", ".png"}


def media_files(folder: Path, n: int) -> list[Path]:
    """``n`` files in ``folder``: links to the fixtures in turn (shortest first), or
    generated clips where the fixtures are absent."""
    sources = sorted((p for sub in ("videos", "images") for p in (FIXTURES / sub).glob("*")
                      if p.suffix.lower() in MEDIA_SUFFIXES), key=lambda p: p.stat().st_size)
    if not sources:
        from bench_score import media_helpers  # vidfake/testing/media.py, loaded by file path

        media = media_helpers()
        sources = [media.moving_face_video(folder / "source_face.mp4").path,
                   media.two_faces_video(folder / "source_two.mp4").path]
    links = []
    for i in range(n):
        source = sources[i % len(sources)]
        link = folder / "files" / f"{i:04d}_{source.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source.resolve())
        links.append(link)
    return links


def run_score(processes: int, files: Path, checkpoint: Path, out: Path, threads: int | None = None) -> dict:
    """Time one ``vidfake score`` of ``files`` with ``processes`` processes of ``threads``
    threads each (default: the cores shared out)."""
    threads = threads or max(1, (os.cpu_count() or 1) // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "vidfake", "score", str(files), "--checkpoint", str(checkpoint),
               "--out", str(out), "--no-progress"]
    if processes > 1:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command[1:3] = ["-m", "torch.distributed.run", f"--nproc_per_node={processes}", f"--master_port={port}",
                        "-m", "vidfake"]
    load_before = load()
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some file could not be scored, which the records say
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return {"processes": processes, "threads_per_process": threads, "files": len(records),
            "wall_s": round(wall, 2), "files_per_s": round(len(records) / wall, 4),
            "statuses": {s: sum(r["status"] == s for r in records) for s in sorted({r["status"] for r in records})},
            "load_before": load_before, "load_after": load(), "records": records}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="process counts to time")
    parser.add_argument("--files", type=int, default=24, help="files per run")
    parser.add_argument("--quick", action="store_true", help="8 files")
    parser.add_argument("--note", default="", help="what else the machine was doing (recorded in the JSON)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "distributed_cpu.json")
    args = parser.parse_args(argv)
    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal.config import ModelConfig

    n_files = 8 if args.quick else args.files
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        tmp = Path(tmp)
        files = media_files(tmp, n_files)
        model = ModelConfig(backbone="mobilenetv3_small_050", input_size=128, embed_dim=64, temporal_layers=1,
                            temporal_heads=2, sync=False)
        checkpoint = init_checkpoint(tmp / "bench.safetensors", model, ExtractConfig(plan="clips:2x8"))
        names = [f"{p.name} -> {p.resolve().name}" for p in files]
        warm = tmp / "warm"  # the first run would pay for reading the libraries from disk
        warm.mkdir()
        (warm / files[0].name).symlink_to(files[0].resolve())
        run_score(1, warm, checkpoint, tmp / "warm.jsonl")
        runs = [run_score(n, files[0].parent, checkpoint, tmp / f"scores_{n}.jsonl") for n in args.processes]
        if (os.cpu_count() or 1) > 1:  # one process on one thread: what threads alone bring
            runs.append(run_score(1, files[0].parent, checkpoint, tmp / "scores_1x1.jsonl", threads=1))
    baseline = {r["path"]: r["score"] for r in runs[0]["records"]}
    for run in runs:
        records = run.pop("records")
        diffs = [abs(r["score"] - baseline[r["path"]]) for r in records if r["score"] is not None]
        run["max_abs_score_diff"] = max(diffs, default=0.0)
        run["speedup_vs_first"] = round(runs[0]["wall_s"] / run["wall_s"], 3)
    result = {
        "benchmark": "vidfake score across processes (torchrun, gloo), wall time of the whole command",
        "machine": {**machine_info(), "note": args.note},
        **git_state(),
        "files": names,
        "model": {"backbone": "mobilenetv3_small_050", "input_size": 128, "plan": "clips:2x8", "untrained": True},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for run in runs:
        print(f"{run['processes']} process(es) x {run['threads_per_process']} thread(s): {run['files']} files in "
              f"{run['wall_s']} s = {run['files_per_s']} files/s (x{run['speedup_vs_first']}), "
              f"max score diff {run['max_abs_score_diff']:.2g}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
