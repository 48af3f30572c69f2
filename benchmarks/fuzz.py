"""Long fuzzing runs: seeded mutants of real fixtures and generated media through probe,
decode and scoring, each file in a child process under a time limit; reports crashes,
hangs and peak memory as JSON.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/fuzz.py                       # 1000 mutants, decode and score stages
    .venv/bin/python benchmarks/fuzz.py --mutants 100 --stages decode   # a quick look
    .venv/bin/python benchmarks/fuzz.py --seed 3 --keep /tmp/crashes    # another set; keep what fails

Sources: the videos and images of ``<repo>/../shared/fixtures`` (``--fixtures``; skipped
when absent), files given with ``--sources``, and small generated clips in six
containers and codecs (``vidfake.testing.fuzz.synthetic_seeds``, with a fixture face crop pasted
in when there is one, so scoring gets past face detection). Mutant ``i`` takes the
sources in turn and is rebuilt exactly from ``(--seed, source name, i // sources)``
(``vidfake.testing.fuzz.make_mutant``), so any finding can be replayed.

Each mutant goes through the ``decode`` stage (probe, open, 8 frames, the audio) and the
``score`` stage (a ``Scorer`` with a tiny untrained checkpoint and ``--frames`` frames),
each call in a child process (``vidfake.testing.fuzz.FuzzTask``) that is killed past
``--time-limit`` seconds: a *hang*. A *crash* is an exception no caller expects (at the
score stage, one the per-file safety net had to catch) or the child dying (a native
crash, reported with its signal). Peak memory is the child's ``VmHWM`` for that one file
(reset before each): ``peak_rss_mb`` includes what the child holds anyway (libraries,
the model), ``added_mb`` is how far the file took it above that. With ``--keep DIR``
every crashing or hanging mutant is written there, and a decode-stage crash is also
shrunk (``vidfake.testing.fuzz.minimize``) to the smallest file that shows it, for a regression
test.

The JSON (default ``benchmarks/results/fuzz_cpu.json``) holds the settings, machine and
commit, counts per stage and result, every crash and hang with the mutations that made
it, and time and memory percentiles with the worst files.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from vidfake.serve.process import ChildDied, ChildProcess, TaskTimeout
from vidfake.testing import fuzz

from common import git

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
STAGES = ("decode", "score")


def machine_info() -> dict:
    import av

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
            "pyav": av.__version__, "ffmpeg": ".".join(map(str, av.library_versions.get("libavformat", ()))),
            "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def sources(fixtures: Path, extra: list[Path], work: Path) -> list[Path]:
    """Fixture videos and images, extra files, and generated clips."""
    from vidfake.extract.media_types import media_kind

    found = []
    if (fixtures / "videos").is_dir():
        found += sorted(p for p in (fixtures / "videos").iterdir() if media_kind(p))
        found += sorted(p for p in (fixtures / "images").iterdir() if media_kind(p))
    found += extra
    face = None
    crops = sorted((fixtures / "face_crops").rglob("*.png")) if (fixtures / "face_crops").is_dir() else []
    if crops:
        from PIL import Image

        face = np.asarray(Image.open(crops[0]).convert("RGB").resize((64, 64)))
    return found + fuzz.synthetic_seeds(work / "seeds", face=face)


def tiny_checkpoint(path: Path) -> Path:
    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal.config import ModelConfig

    model = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                        mouth_size=32, sync_dim=32, sync_max_offset=3)
    return init_checkpoint(path, model, ExtractConfig(plan="uniform:4"))


def run_one(child: ChildProcess, path: Path, stage: str, limit_s: float) -> dict:
    """One file through one stage in ``child``; a hang or a dead child is a result too."""
    start = time.perf_counter()
    try:
        return child.call({"path": str(path), "stage": stage}, limit_s)
    except TaskTimeout:
        return {"path": str(path), "stage": stage, "result": "hang", "detail": f"no answer within {limit_s:g} s",
                "seconds": time.perf_counter() - start}
    except ChildDied as died:
        return {"path": str(path), "stage": stage, "result": "crash", "error_type": "worker died", "detail": str(died),
                "seconds": time.perf_counter() - start}
    except RuntimeError as error:  # the check itself raised: a bug in the harness, reported as such
        return {"path": str(path), "stage": stage, "result": "crash", "error_type": "harness", "detail": str(error),
                "seconds": time.perf_counter() - start}


def shrink(mutant: fuzz.Mutant, outcome: dict, keep: Path) -> dict:
    """The smallest file that still crashes the decode check with the same exception."""
    work = keep / f"{mutant.name}.try"

    def still_fails(data: bytes) -> bool:
        work.write_bytes(data)
        found = fuzz.check_decode(work)
        return found.result == "crash" and found.error_type == outcome.get("error_type")

    small = fuzz.minimize(mutant.data, still_fails, original=mutant.source.read_bytes())
    work.unlink(missing_ok=True)
    path = keep / f"{mutant.name}.min{mutant.source.suffix}"
    path.write_bytes(small)
    return {"minimized": str(path), "minimized_bytes": len(small)}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    array = np.asarray(values)
    return {"median": round(float(np.median(array)), 3), "p95": round(float(np.percentile(array, 95)), 3),
            "max": round(float(array.max()), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--mutants", type=int, default=1000, help="mutants to make and check")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutation set")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="what each mutant goes through")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per file and stage before it is a hang")
    parser.add_argument("--frames", type=int, default=4, help="frames sampled per video at the score stage")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="shared fixtures folder (skipped if absent)")
    parser.add_argument("--sources", type=Path, nargs="*", default=[], help="more files to mutate")
    parser.add_argument("--keep", type=Path, help="write crashing and hanging mutants (and shrunk copies) here")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fuzz_cpu.json")
    args = parser.parse_args()

    from tqdm import tqdm

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vidfake-fuzz-") as tmp:
        work = Path(tmp)
        files = sources(args.fixtures, args.sources, work)
        checkpoint = tiny_checkpoint(work / "tiny.safetensors") if "score" in args.stages else None
        child = ChildProcess("vidfake.testing.fuzz:FuzzTask", {"checkpoint": str(checkpoint) if checkpoint else None,
                                                       "plan": f"uniform:{args.frames}"}, 600.0, "fuzz")
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
        results, findings = Counter(), []
        seconds: dict[str, list[tuple[float, str]]] = {s: [] for s in args.stages}
        memory: dict[str, list[tuple[float, float, str]]] = {s: [] for s in args.stages}
        statuses: Counter = Counter()
        try:
            for mutant in tqdm(fuzz.mutants(files, args.mutants, args.seed), total=args.mutants, unit="mutant"):
                path = work / mutant.name
                path.write_bytes(mutant.data)
                for stage in args.stages:
                    outcome = run_one(child, path, stage, args.time_limit)
                    results[(stage, outcome["result"])] += 1
                    seconds[stage].append((outcome["seconds"], mutant.name))
                    if "peak_rss_mb" in outcome:
                        memory[stage].append((outcome["peak_rss_mb"], outcome["added_mb"], mutant.name))
                    if stage == "score" and "status" in outcome.get("extra", {}):
                        statuses[outcome["extra"]["status"]] += 1
                    if outcome["result"] in ("crash", "hang"):
                        finding = {"mutant": mutant.name, "source": str(mutant.source), "index": mutant.index,
                                   "seed": args.seed, "operations": list(mutant.operations), "stage": stage,
                                   "result": outcome["result"], "error_type": outcome.get("error_type"),
                                   "detail": outcome.get("detail", "")[:500],
                                   "traceback": (outcome.get("traceback") or "")[-3000:]}
                        if args.keep is not None:
                            (args.keep / mutant.name).write_bytes(mutant.data)
                            if stage == "decode" and outcome["result"] == "crash" and outcome.get("traceback"):
                                finding.update(shrink(mutant, outcome, args.keep))
                        findings.append(finding)  # a killed or dead child restarts on the next call
                path.unlink()
        finally:
            child.close()

    report = {
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "sources"},
                     "sources": [str(p) if p.is_relative_to(REPO.parent) else p.name for p in files]},
        "machine": {**machine_info(), "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "commit": git("rev-parse", "HEAD"),
        "vidfake_modified": bool(git("status", "--porcelain", "--", "vidfake")),
        "wall_s": round(time.perf_counter() - started, 1),
        "results": {stage: {r: results[(stage, r)] for r in ("ok", "rejected", "crash", "hang")} for stage in args.stages},
        "score_statuses": dict(statuses),
        "crashes": [f for f in findings if f["result"] == "crash"],
        "hangs": [f for f in findings if f["result"] == "hang"],
        "seconds": {stage: {**percentiles([t for t, _ in v]),
                            "mean": round(statistics.fmean([t for t, _ in v]), 3) if v else None,
                            "slowest": [{"mutant": n, "seconds": round(t, 3)} for t, n in sorted(v, reverse=True)[:5]]}
                    for stage, v in seconds.items()},
        "peak_rss_mb": {stage: percentiles([peak for peak, _, _ in v]) for stage, v in memory.items()},
        "added_mb": {stage: {**percentiles([added for _, added, _ in v]),
                             "largest": [{"mutant": n, "added_mb": a, "peak_mb": p}
                                         for p, a, n in sorted(v, key=lambda x: -x[1])[:5]]}
                     for stage, v in memory.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for stage in args.stages:
        counts = report["results"][stage]
        print(f"{stage:>6}: {counts['ok']} ok, {counts['rejected']} rejected, {counts['crash']} crashes, "
              f"{counts['hang']} hangs; seconds {percentiles([t for t, _ in seconds[stage]])}; "
              f"peak MiB {report['peak_rss_mb'][stage]}, "
              f"of which the file added {({k: v for k, v in report['added_mb'][stage].items() if k != 'largest'})}")
    print(f"wrote {args.out}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
