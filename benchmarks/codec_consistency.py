"""Codec consistency: does a clip's score move when the same clip is re-encoded?

Run from the repository root with the project's environment, on wild-dev's media (rebuilt
with ``python -m vidfake.train.manifest configs/data/wild_dev.csv ... --out MEDIA``)::

    .venv/bin/python benchmarks/codec_consistency.py MEDIA/labels_wild-dev.csv \\
        [--checkpoint A.safetensors --checkpoint B.safetensors] [--per-class 20] [--work-dir DIR]

It picks ``--per-class`` real and as many fake clips from the labels CSV, spread over sources
(one clip per source in turn, in a fixed order), re-encodes the first ``--seconds`` of each
the six ways of ``vidfake.extract.reencode.ENCODINGS`` (H.264 CRF 18 and 36, half size,
MPEG-1, MPEG-4 Part 2, VP9; audio carried along), scores the clip as it came and every
variant with each checkpoint (default: the packaged model), and writes
``benchmarks/results/codec_consistency.json``:

* per clip: its score as it came (the whole file, untouched: a reference, not part of the
  spread) and under each encoding, and the spread (highest minus lowest of the six
  encodings' scores, all made from the same first ``--seconds``);
* per checkpoint: the median spread (all clips, reals, fakes), its 90th percentile and
  maximum, the share of real variants
  called fake at the checkpoint's threshold, and the video AUC with its 95 % interval for
  the clips as they came and under each encoding.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from vidfake.eval.metrics import compute_metrics
from vidfake.extract.reencode import ENCODINGS, reencode
from vidfake.scoring import build_scorer

from common import REPO, git_state, machine_info

AS_CAME = "as-came"


def pick_clips(labels_csv: Path, per_class: int) -> list[dict]:
    """Real and fake rows in the order they are tried, one source at a time so no source
    dominates: the first ``per_class`` of each label that re-encode are measured."""
    with labels_csv.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("kind", "video") == "video"]
    picked = []
    for label in ("REAL", "FAKE"):
        by_source: dict[str, list[dict]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: hashlib.sha256(r["path"].encode()).hexdigest()):
            if row["label"] == label:
                by_source[row.get("source") or row["path"].split("/")[0]].append(row)
        chosen: list[dict] = []
        while any(by_source.values()):
            for source in sorted(by_source):
                if by_source[source]:
                    chosen.append(by_source[source].pop(0))
        if len(chosen) < per_class:
            raise SystemExit(f"{labels_csv}: only {len(chosen)} {label} videos, {per_class} asked for")
        picked.append(chosen)
    return picked


def variants(candidates: list[list[dict]], root: Path, work: Path, seconds: float,
             per_class: int) -> tuple[list[dict], dict[str, dict[str, Path]], list[dict]]:
    """The first ``per_class`` clips of each label that re-encode all six ways, their files
    (clip path -> {encoding or "as-came": file}; re-encodings already in ``work`` are
    reused), and the clips that could not be re-encoded, with the reason."""
    clips, out, skipped = [], {}, []
    progress = tqdm(total=per_class * len(candidates), desc="re-encode", unit="clip")
    for label_candidates in candidates:
        kept = 0
        for clip in label_candidates:
            if kept == per_class:
                break
            source = root / clip["path"]
            stem = hashlib.sha256(clip["path"].encode()).hexdigest()[:16]
            files = {AS_CAME: source}
            try:
                for name, encoding in ENCODINGS.items():
                    target = work / f"{stem}.{name}{encoding.suffix}"
                    files[name] = target if target.exists() else reencode(source, work / f"{stem}.{name}",
                                                                           encoding, seconds)
            except (ValueError, av.error.FFmpegError) as error:
                skipped.append({"path": clip["path"], "reason": str(error)})
                continue
            clips.append(clip)
            out[clip["path"]] = files
            kept += 1
            progress.update()
    progress.close()
    return clips, out, skipped


def _auc(labels: list[int], scores: list[float]) -> dict:
    metrics = compute_metrics(np.asarray(labels), np.asarray(scores), n_boot=1000)
    return {"auc": round(metrics["auc"], 4), "auc_ci": [round(x, 4) for x in metrics["auc_ci"]], "n": len(labels)}


def measure(checkpoint: str | None, clips: list[dict], files: dict[str, dict[str, Path]]) -> dict:
    """Score every variant of every clip with one checkpoint; the summary and the per-clip table."""
    scorer = build_scorer(checkpoint)
    threshold = scorer.aggregation.threshold
    table = []
    for clip in tqdm(clips, desc=f"score {scorer.model_info['version']}", unit="clip"):
        scores = {}
        for name, path in files[clip["path"]].items():
            verdict = scorer.score_video(path)
            scores[name] = round(verdict.score, 4) if verdict.score is not None else None
        encoded = [s for name, s in scores.items() if name != AS_CAME and s is not None]
        table.append({"path": clip["path"], "label": clip["label"], "source": clip.get("source", ""),
                      "family": clip.get("family", ""), "scores": scores,
                      "spread": round(max(encoded) - min(encoded), 4) if len(encoded) >= 2 else None})
    spreads = [c["spread"] for c in table if c["spread"] is not None]
    real_variants = [s for c in table if c["label"] == "REAL" for n, s in c["scores"].items()
                     if n != AS_CAME and s is not None]
    auc = {}
    for name in [AS_CAME, *ENCODINGS]:
        pairs = [(int(c["label"] == "FAKE"), c["scores"][name]) for c in table if c["scores"][name] is not None]
        auc[name] = _auc([p[0] for p in pairs], [p[1] for p in pairs])
    return {
        "checkpoint": checkpoint or "packaged default", "model": scorer.model_info, "threshold": threshold,
        "median_spread": round(statistics.median(spreads), 4),
        "median_spread_real": round(statistics.median([c["spread"] for c in table if c["label"] == "REAL"
                                                       and c["spread"] is not None]), 4),
        "median_spread_fake": round(statistics.median([c["spread"] for c in table if c["label"] == "FAKE"
                                                       and c["spread"] is not None]), 4),
        "p90_spread": round(float(np.percentile(spreads, 90)), 4),
        "max_spread": round(max(spreads), 4),
        "real_variants_called_fake": round(float(np.mean([s >= threshold for s in real_variants])), 4),
        "n_real_variants": len(real_variants),
        "unscored": sum(s is None for c in table for s in c["scores"].values()),
        "auc": auc,
        "clips": table,
    }


def main(argv: list[str] | None = None) -> int:
    """Re-encode, score and write the JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labels", type=Path, help="labels CSV of wild-dev (path,label,...,source,family)")
    parser.add_argument("--checkpoint", action="append", help="checkpoint(s) to measure (default: the packaged one)")
    parser.add_argument("--per-class", type=int, default=20, help="real clips, and as many fakes")
    parser.add_argument("--seconds", type=float, default=10.0, help="re-encode (and so score) this much of each clip")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/vidfake_codec_consistency"),
                        help="where the re-encoded clips go (reused by a second run)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "codec_consistency.json")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    info = machine_info(["timm"])
    candidates = pick_clips(args.labels, args.per_class)
    clips, files, skipped = variants(candidates, args.labels.parent, args.work_dir, args.seconds, args.per_class)
    results = [measure(c, clips, files) for c in (args.checkpoint or [None])]
    report = {
        "benchmark": "codec_consistency", "labels": str(args.labels), "per_class": args.per_class,
        "seconds": args.seconds, "encodings": {n: {"codec": e.codec, "container": e.suffix, "options": e.options,
                                                   "scale": e.scale, "bits_per_pixel": e.bits_per_pixel,
                                                   "audio": e.audio_codec} for n, e in ENCODINGS.items()},
        "skipped": skipped, "machine": info, "git": git_state(), "wall_s": round(time.time() - started, 1), "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for r in results:
        print(f"{r['model'].get('version')}: median spread {r['median_spread']:.3f} (real {r['median_spread_real']:.3f}, "
              f"fake {r['median_spread_fake']:.3f}), real variants called fake {r['real_variants_called_fake']:.0%}")
        print("  AUC " + ", ".join(f"{n} {a['auc']:.3f}" for n, a in r["auc"].items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
