"""The mouth-motion head alone on a labelled extraction folder (wild-dev): per family and tool.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/mouth_motion.py CHECKPOINT --data data/wilddev160 \\
        --labels data/media/labels_wild-dev.csv [--base-predictions reports/wild-dev/predictions.csv] [--out FILE]

Scores every file of the folder with the checkpoint's mouth-motion head (its logit,
averaged over the file's 8-frame runs; :func:`vidfake.train.mouth_motion.mouth_run_logits`),
joins the labels CSV by path (its ``family``, ``method`` and ``group`` columns), and writes
``benchmarks/results/mouth_motion.json``: the video AUC with its 95 % interval and counts
for all files and, per fake family and per fake method (the tool), that family's fakes
against every real file; fakes against the reals of their own group (``within_groups``);
and the logit 90 % of real files stay below (the verdict's mouth threshold). Files the head cannot score (no run of 8 consecutive frames with a
face) are counted as left out.

With ``--base-predictions`` (``vidfake eval``'s predictions of the detector the head is to
join, its paths relative to the labels CSV), the head's score is also added to the
detector's video logit with a weight cross-fitted by source
(:func:`vidfake.train.combine.combine_cross_fitted`), and ``combined`` reports the weight
that would ship, the held-out AUC against the detector's own with their paired difference,
and both per family: whether the head helps the product, not only whether it ranks alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from vidfake.eval.evaluate import read_predictions
from vidfake.extract.folder import ExtractionFolder
from vidfake.extract.labels import read_label_csv
from vidfake.temporal.mouth_motion import mouth_evidence
from vidfake.train.combine import combine_cross_fitted
from vidfake.train.mouth_motion import mouth_run_logits

from common import REPO, auc_with_interval, git_state, machine_info


def _auc(labels: np.ndarray, scores: np.ndarray) -> dict:
    fakes, reals = int(labels.sum()), int((labels == 0).sum())
    if not fakes or not reals:
        return {"fake": fakes, "real": reals, "auc": None}
    return {"fake": fakes, "real": reals, **auc_with_interval(labels, scores)}


def per_group(rows: list[dict], column: str) -> dict:
    """Each value of ``column`` among the fakes: its fakes against every real row."""
    labels = np.array([r["label"] for r in rows])
    scores = np.array([r["score"] for r in rows])
    out = {}
    for value in sorted({r[column] for r in rows if r["label"] == 1}):
        keep = np.array([r["label"] == 0 or r[column] == value for r in rows])
        out[value] = _auc(labels[keep], scores[keep])
    return out


def within_groups(rows: list[dict], column: str = "method") -> dict:
    """Fakes against the real files of their own group only (a lip-sync output against its
    input video, the same person's real clips): the share of such (fake, real) pairs the
    score orders correctly (ties count half), over all pairs and per value of ``column``.
    The harder test: the source, the person and the setting are the same on both sides."""
    groups: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        if r.get("group"):
            groups.setdefault(r["group"], {0: [], 1: []})[r["label"]].append(r)
    pairs = [(fake, real) for g in groups.values() for fake in g[1] for real in g[0]]

    def share(selected: list[tuple[dict, dict]]) -> dict:
        right = sum(1.0 if f["score"] > r["score"] else 0.5 if f["score"] == r["score"] else 0.0 for f, r in selected)
        return {"pairs": len(selected), "groups": len({f["group"] for f, _ in selected}),
                "fakes": len({f["media_id"] for f, _ in selected}), "correct": round(right / len(selected), 4)}

    values = sorted({f[column] for f, _ in pairs})
    return {"all": share(pairs) if pairs else None,
            f"per_{column}": {v: share([(f, r) for f, r in pairs if f[column] == v]) for v in values}}


def combined(rows: list[dict], predictions: Path, media_root: Path) -> dict:
    """The head's evidence (its runs' positive logits averaged, what the detector adds per
    clip) added to the base detector's video logit, cross-fitted by source, on the rows the
    detector scored; per family, the detector alone and with the head."""
    base = {str((media_root / row["path"]).resolve()): float(row["logit"])
            for row in read_predictions(predictions) if row["status"] == "ok"}
    kept = [r for r in rows if r["path"] in base]
    if not kept:
        raise SystemExit(f"no scored file of {predictions} is among the head's files (paths relative to {media_root})")
    fit = combine_cross_fitted(np.array([base[r["path"]] for r in kept]), np.array([r["evidence"] for r in kept]),
                               np.array([r["label"] for r in kept]), np.array([r["source"] for r in kept]))
    detector = [{**r, "score": base[r["path"]]} for r in kept]
    with_head = [{**r, "score": float(s)} for r, s in zip(kept, fit.held_out)]
    return {**fit.to_dict(), "predictions": str(predictions),
            "per_family_detector": per_group(detector, "family"), "per_family_combined": per_group(with_head, "family"),
            "within_groups_detector": within_groups(detector), "within_groups_combined": within_groups(with_head)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint with a mouth-motion head")
    parser.add_argument("--data", type=Path, required=True, help="the labelled extraction folder")
    parser.add_argument("--labels", type=Path, required=True, help="its labels CSV (family, method columns)")
    parser.add_argument("--base-predictions", type=Path,
                        help="vidfake eval's predictions.csv of the detector the head joins: also report the "
                             "cross-fitted combination")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mouth_motion.json")
    args = parser.parse_args(argv)

    runs = mouth_run_logits(args.checkpoint, args.data)
    by_path = {str(row.file.resolve()): row for row in read_label_csv(args.labels) if row.label is not None}
    rows, unmatched = [], []
    for record in ExtractionFolder(args.data).records():
        if record.media_id not in runs:
            continue
        label_row = by_path.get(str(Path(record.path).resolve()))
        if label_row is None:
            unmatched.append(record.media_id)
            continue
        cells = label_row.columns
        logits = torch.tensor(runs[record.media_id])
        rows.append({"media_id": record.media_id, "label": int(label_row.label), "score": float(logits.mean()),
                     "evidence": float(mouth_evidence(logits).mean()),
                     "family": cells.get("family", ""), "method": cells.get("method", ""),
                     "source": cells.get("source") or cells.get("group") or record.media_id, "group": cells.get("group"),
                     "path": str(Path(record.path).resolve())})
    if unmatched:
        print(f"{len(unmatched)} scored file(s) not in {args.labels} (e.g. {unmatched[0]})", file=sys.stderr)
    labels = np.array([r["label"] for r in rows])
    result = {
        "checkpoint": str(args.checkpoint), "data": str(args.data), "labels": str(args.labels),
        "files_in_labels": len(by_path), "scored": len(rows), "left_out": len(by_path) - len(rows),
        "all": _auc(labels, np.array([r["score"] for r in rows])),
        "per_family": per_group(rows, "family"), "per_method": per_group(rows, "method"),
        "within_groups": within_groups(rows),
        # the head's logit that 9 in 10 real files stay below: a verdict's mouth threshold
        # (python -m vidfake.checkpoints.compose --mouth-threshold)
        "real_logit_90th_percentile": round(float(np.quantile([r["score"] for r in rows if r["label"] == 0], 0.9)), 4)
        if (labels == 0).any() else None,
        "git": git_state(), "machine": machine_info(),
    }
    if args.base_predictions:
        result["combined"] = combined(rows, args.base_predictions, args.labels.parent)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    fam = result["per_family"]
    print("mouth-motion head: all " + str(result["all"]["auc"]) + ", "
          + ", ".join(f"{k} {v['auc']}" for k, v in fam.items()) + f" -> {args.out}")
    if "combined" in result:
        both = result["combined"]
        print(f"added to the detector (weight {both['weight']:.3f}, cross-fitted): all {both['auc_combined']:.4f} "
              f"against {both['auc_base']:.4f}; lip-sync "
              f"{both['per_family_combined'].get('lip-sync', {}).get('auc')} against "
              f"{both['per_family_detector'].get('lip-sync', {}).get('auc')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
