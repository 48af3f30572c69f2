"""What a larger frame encoder would cost per video (issue 26, item 4).

Default model 3 may trade EfficientNet-Lite0 at 160 px for Lite1 or Lite2 at 192-224 px
only if a video's scoring time stays within 1.5 times today's. This measures that before
any training: for each (backbone, crop size) a randomly initialised checkpoint with the
shipped model's architecture otherwise (its lip-sync head, temporal stage, plan
``clips:8x8`` and extraction settings; crops cut at the encoder's size) scores the 10 s
1080p DFDC fixture in one process, the variants taking turns so the VM's drifting speed
hits them alike. Random weights cost what trained ones do; the scores mean nothing.

    python benchmarks/bench_capacity.py [--reps 5]

writes ``benchmarks/results/capacity_cpu.json``: per variant the median warm time per
video and its model stage, the frame encoder on the clip's 64 crops alone, the encoder's
parameters and multiply-accumulates at its size, and each as a multiple of the shipped
size (Lite0, 160 px).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from vidfake.checkpoints.format import init_checkpoint
from vidfake.scoring import Scorer

from common import REPO, git_state, load, machine_info

FIXTURE = REPO.parent / "shared" / "fixtures" / "videos" / "dfdc_lynaeydofd.mp4"
RESULTS = REPO / "benchmarks" / "results"
VARIANTS = [("tf_efficientnet_lite0", 160), ("tf_efficientnet_lite1", 192), ("tf_efficientnet_lite1", 224),
            ("tf_efficientnet_lite2", 192), ("tf_efficientnet_lite2", 224)]
BUDGET = 1.5  # issue 26: per-video scoring time within 1.5x of today's


def variant_checkpoint(folder: Path, backbone: str, size: int) -> Path:
    """The shipped model's architecture and extraction with another encoder and crop size, random weights."""
    shipped = Scorer()
    model = replace(shipped.model_config, backbone=backbone, input_size=size, pretrained_path=None)
    extract = replace(shipped.extract_config, crop=replace(shipped.extract_config.crop, size=size))
    return init_checkpoint(folder / f"{backbone}_{size}.safetensors", model, extract)


def encoder_cost(scorer: Scorer, crops: int) -> dict:
    """Parameters, multiply-accumulates of one crop (counted by torch's flop counter, halved)
    and the wall time of ``crops`` crops through the scoring copy's frame encoder."""
    from torch.utils.flop_counter import FlopCounterMode

    encoder = scorer.clip_model.scoring_module.encoder
    size = scorer.model_config.input_size
    one = torch.randn(1, 3, size, size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        encoder(one)
    batch = torch.randn(crops, 3, size, size).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        encoder(batch)
        for _ in range(3):
            start = time.perf_counter()
            encoder(batch)
            times.append(time.perf_counter() - start)
    return {"parameters": sum(p.numel() for p in encoder.parameters()),
            "gmacs_per_crop": round(counter.get_total_flops() / 2e9, 3),
            f"encoder_{crops}_crops_s": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="warm runs of each variant, taken in turns")
    parser.add_argument("--out", type=Path, default=RESULTS / "capacity_cpu.json")
    args = parser.parse_args(argv)
    if not FIXTURE.exists():
        print(f"needs {FIXTURE} (the shared fixtures)", file=sys.stderr)
        return 2
    results: dict = {"machine": machine_info(["timm"]), "git": git_state(), "clip": FIXTURE.name,
                     "budget": BUDGET, "load_average": {"start": load()}}
    with tempfile.TemporaryDirectory(prefix="bench_capacity_") as tmp:
        scorers = {}
        for backbone, size in VARIANTS:
            scorer = Scorer(variant_checkpoint(Path(tmp), backbone, size)).load()
            scorer.score_video(FIXTURE)  # warm-up: its first file
            scorers[(backbone, size)] = scorer
        runs: dict[tuple[str, int], list[dict]] = {key: [] for key in scorers}
        for rep in range(args.reps):
            for key, scorer in scorers.items():
                verdict = scorer.score_video(FIXTURE)
                runs[key].append({"total": verdict.timings["total"], "model": verdict.timings["model"]})
            print(f"  round {rep + 1}: " + ", ".join(f"{b[-5:]}@{s} {runs[(b, s)][-1]['total']:.2f} s"
                                                     for b, s in scorers), flush=True)
        rows = []
        for (backbone, size), scorer in scorers.items():
            crops = 64
            rows.append({"backbone": backbone, "input_size": size,
                         "video_s": round(statistics.median(r["total"] for r in runs[(backbone, size)]), 3),
                         "model_stage_s": round(statistics.median(r["model"] for r in runs[(backbone, size)]), 3),
                         **encoder_cost(scorer, crops)})
    base = rows[0]
    for row in rows:
        row["video_ratio"] = round(row["video_s"] / base["video_s"], 3)
        row["gmacs_ratio"] = round(row["gmacs_per_crop"] / base["gmacs_per_crop"], 3)
        row["within_budget"] = row["video_ratio"] <= BUDGET
        print(f"{row['backbone']:24s} {row['input_size']} px: {row['video_s']:.2f} s a video "
              f"({row['video_ratio']:.2f}x), model stage {row['model_stage_s']:.2f} s, "
              f"{row['gmacs_per_crop']:.2f} GMACs a crop", flush=True)
    results["variants"] = rows
    results["load_average"]["end"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
