"""Would a second model, added to the default one, make a better ensemble on wild-dev?

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/ensemble_member.py BASE_PREDICTIONS MEMBER_PREDICTIONS [--out FILE]

Both files are ``vidfake eval`` predictions of the same labelled videos (wild-dev), one per
model, joined by path. An ensemble (``vidfake ensemble``) scores a video with the weighted
mean of its members' calibrated video logits; up to its own calibration that is
``base + w * member``, so the member's weight ``w`` is what has to be chosen, and it is
chosen on wild-dev. Fitted on the videos it is measured on, it would flatter the
ensemble, so it is cross-fitted by source (:func:`vidfake.train.combine.combine_cross_fitted`:
a repository's videos are scored with a weight fitted on the other repositories).

Writes ``benchmarks/results/ensemble_member.json``: the member alone, the base alone and
the cross-fitted ensemble (video AUC, 95 % intervals, the paired difference against the
base), the same per fake family (each family's fakes against every real video), and the
weight that would ship. The issue's rule: ship an ensemble only where this says it beats
the best single model.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vidfake.eval.evaluate import read_predictions
from vidfake.eval.metrics import paired_bootstrap_difference, roc_auc
from vidfake.train.combine import combine_cross_fitted

from common import REPO, auc_with_interval, git_state, machine_info


def read_scored(path: Path) -> dict[str, dict]:
    """``vidfake eval`` predictions that were scored (status ok) and labelled, by path."""
    return {row["path"]: row for row in read_predictions(path) if row["status"] == "ok" and row["label"] in ("0", "1")}


def compare(labels: np.ndarray, base: np.ndarray, member: np.ndarray, ensemble: np.ndarray) -> dict:
    """The three scores' AUCs and the ensemble's paired difference against the base."""
    difference = paired_bootstrap_difference(roc_auc, labels, ensemble, base)
    return {"fake": int(labels.sum()), "real": int((labels == 0).sum()), "base": auc_with_interval(labels, base),
            "member": auc_with_interval(labels, member), "ensemble": auc_with_interval(labels, ensemble),
            "ensemble_minus_base": {k: round(v, 4) for k, v in difference.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="vidfake eval predictions.csv of the default model")
    parser.add_argument("member", type=Path, help="vidfake eval predictions.csv of the candidate member")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ensemble_member.json")
    args = parser.parse_args(argv)
    base_rows, member_rows = read_scored(args.base), read_scored(args.member)
    paths = sorted(set(base_rows) & set(member_rows))
    if not paths:
        raise SystemExit(f"{args.base} and {args.member} share no scored, labelled path")
    rows = [base_rows[p] for p in paths]
    labels = np.array([int(r["label"]) for r in rows])
    base = np.array([float(r["logit"]) for r in rows])
    member = np.array([float(member_rows[p]["logit"]) for p in paths])
    sources = np.array([r.get("source") or r.get("group") or r["path"] for r in rows])
    families = np.array([r.get("family", "") for r in rows])
    fit = combine_cross_fitted(base, member, labels, sources)
    per_family = {}
    for family in sorted(set(families[labels == 1])):
        keep = (labels == 0) | (families == family)
        per_family[family] = compare(labels[keep], base[keep], member[keep], fit.held_out[keep])
    report = {"benchmark": "ensemble_member", "base": str(args.base), "member": str(args.member),
              "videos": len(paths), "sources": int(len(set(sources))), "weight": round(fit.weight, 4),
              "all": compare(labels, base, member, fit.held_out), "per_family": per_family,
              "git": git_state(), "machine": machine_info()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    everything = report["all"]
    print(f"{len(paths)} videos: base {everything['base']['auc']}, member {everything['member']['auc']}, "
          f"ensemble (cross-fitted, weight {fit.weight:.3f}) {everything['ensemble']['auc']} "
          f"({everything['ensemble_minus_base']}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
