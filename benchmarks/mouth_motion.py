"""The mouth-motion head alone on a labelled extraction folder (wild-dev): per family and tool.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/mouth_motion.py CHECKPOINT --data data/wilddev160 \\
        --labels data/media/labels_wild-dev.csv [--out FILE]

Scores every file of the folder with the checkpoint's mouth-motion head (its logit,
averaged over the file's 8-frame runs; :func:`vidfake.train.mouth_motion.mouth_video_scores`),
joins the labels CSV by path (its ``family`` and ``method`` columns), and writes
``benchmarks/results/mouth_motion.json``: the video AUC with its 95 % interval and counts
for all files and, per fake family and per fake method (the tool), that family's fakes
against every real file. Files the head cannot score (no run of 8 consecutive frames with a
face) are counted as left out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vidfake.eval.metrics import bootstrap_ci, roc_auc
from vidfake.extract.folder import ExtractionFolder
from vidfake.extract.labels import read_label_csv
from vidfake.train.mouth_motion import mouth_video_scores

from common import REPO, git_state, machine_info


def _auc(labels: np.ndarray, scores: np.ndarray) -> dict:
    fakes, reals = int(labels.sum()), int((labels == 0).sum())
    if not fakes or not reals:
        return {"fake": fakes, "real": reals, "auc": None}
    low, high = bootstrap_ci(roc_auc, labels, scores)
    return {"fake": fakes, "real": reals, "auc": round(roc_auc(labels, scores), 4), "auc_95": [round(low, 4), round(high, 4)]}


def per_group(rows: list[dict], column: str) -> dict:
    """Each value of ``column`` among the fakes: its fakes against every real row."""
    labels = np.array([r["label"] for r in rows])
    scores = np.array([r["score"] for r in rows])
    out = {}
    for value in sorted({r[column] for r in rows if r["label"] == 1}):
        keep = np.array([r["label"] == 0 or r[column] == value for r in rows])
        out[value] = _auc(labels[keep], scores[keep])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint with a mouth-motion head")
    parser.add_argument("--data", type=Path, required=True, help="the labelled extraction folder")
    parser.add_argument("--labels", type=Path, required=True, help="its labels CSV (family, method columns)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mouth_motion.json")
    args = parser.parse_args(argv)

    scores = mouth_video_scores(args.checkpoint, args.data)
    by_path = {str(row.file.resolve()): row for row in read_label_csv(args.labels) if row.label is not None}
    rows, unmatched = [], []
    for record in ExtractionFolder(args.data).records():
        if record.media_id not in scores:
            continue
        label_row = by_path.get(str(Path(record.path).resolve()))
        if label_row is None:
            unmatched.append(record.media_id)
            continue
        cells = label_row.columns
        rows.append({"media_id": record.media_id, "label": int(label_row.label), "score": scores[record.media_id],
                     "family": cells.get("family", ""), "method": cells.get("method", "")})
    if unmatched:
        print(f"{len(unmatched)} scored file(s) not in {args.labels} (e.g. {unmatched[0]})", file=sys.stderr)
    labels = np.array([r["label"] for r in rows])
    result = {
        "checkpoint": str(args.checkpoint), "data": str(args.data), "labels": str(args.labels),
        "files_in_labels": len(by_path), "scored": len(rows), "left_out": len(by_path) - len(rows),
        "all": _auc(labels, np.array([r["score"] for r in rows])),
        "per_family": per_group(rows, "family"), "per_method": per_group(rows, "method"),
        "git": git_state(), "machine": machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    fam = result["per_family"]
    print("mouth-motion head: all " + str(result["all"]["auc"]) + ", "
          + ", ".join(f"{k} {v['auc']}" for k, v in fam.items()) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
