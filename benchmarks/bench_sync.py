"""CPU benchmark of the lip-sync head (``vidfake.temporal.sync.SyncHead``): the cost of one
training step of the pretext and of one scoring call, split into its two encoders.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/bench_sync.py             # about a minute on 2 cores
    .venv/bin/python benchmarks/bench_sync.py --batch 8 --frames 8 --reps 3

It writes ``benchmarks/results/sync_cpu.json`` (``--out`` to change) and prints a table.
The head is the default model's (``ModelConfig()``: 96 px mouths, 128-d embeddings, 5-frame
windows, offsets up to 8 frames), on random mouths and noise audio at 25 fps: the cost
does not depend on the content. Measured, as the median of ``--reps`` runs after one
warm-up: the forward and backward of the whole head (what a pretext step runs twice, for
the clip's own audio and another clip's), the forward alone under ``inference_mode``
(scoring), and the forward and backward of the mouth encoder and of the audio path (log-mel
plus audio encoder) on their own. Wall-clock on a shared machine: the JSON records the load
average, the thread count and the git commit.

For comparison: before the audio encoder ran once per clip (commit 9b61f17, one encoder pass
per overlapping window), the same batch-16, 16-frame train step took 3.9 s on this 2-core
machine, 2.7 s of it in the audio path; see ``results/sync_cpu.json`` for now.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

from vidfake.temporal.config import ModelConfig
from vidfake.temporal.sync import SyncHead, log_mel

FPS = 25.0


def _median_seconds(step: Callable[[], None], reps: int) -> float:
    step()  # warm-up: allocator, mel filter bank, oneDNN kernels
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def measure(batch: int, frames: int, reps: int) -> dict:
    torch.manual_seed(0)
    config = ModelConfig()
    head = SyncHead(config).train()
    mouths = torch.rand(batch, frames, 3, config.mouth_size, config.mouth_size)
    samples = int(config.audio_sample_rate * frames / FPS)
    audio = torch.randn(batch, samples) * 0.1
    fps = torch.full((batch,), FPS)
    valid = torch.ones(batch, frames, dtype=torch.bool)
    n_windows = frames - config.sync_window + 1
    starts = torch.arange(-config.sync_max_offset, n_windows + config.sync_max_offset)

    def full_step() -> None:
        head.zero_grad(set_to_none=True)
        head(mouths, audio, fps).similarity.sum().backward()

    def scoring_call() -> None:
        with torch.inference_mode():
            head.eval()(mouths, audio, fps)
        head.train()

    def mouth_step() -> None:
        head.zero_grad(set_to_none=True)
        head.visual(mouths, valid).sum().backward()

    def audio_step() -> None:
        head.zero_grad(set_to_none=True)
        mel = log_mel(audio, config.audio_sample_rate, config.n_mels)
        head.audio(mel, head.window_positions(fps, starts)).sum().backward()

    timings = {name: _median_seconds(step, reps) for name, step in
               (("train_step_s", full_step), ("scoring_call_s", scoring_call),
                ("mouth_encoder_train_s", mouth_step), ("audio_path_train_s", audio_step))}
    return {
        "batch": batch, "frames": frames, "audio_windows_per_clip": len(starts), **{k: round(v, 4) for k, v in timings.items()},
        "train_clips_per_s": round(batch / timings["train_step_s"], 2),
        "pretext_step_s": round(2 * timings["train_step_s"], 4),  # own audio + another clip's
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sync_cpu.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = measure(args.batch, args.frames, args.reps)
    report = {"commit": _git_commit(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(), **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>24}  {value}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
