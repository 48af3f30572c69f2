"""benchmarks/ensemble_member.py: a candidate member's predictions joined to the base model's,
its weight cross-fitted by source, per family."""
from __future__ import annotations

import csv
import importlib
import json

import numpy as np
import pytest

from tests.paths import BENCHMARKS

FIELDS = ["path", "label", "logit", "status", "family", "source"]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("ensemble_member")


def _write(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _videos(rng, n_sources=12):
    """Per source 4 reals and 4 fakes (half swaps, half lip-sync); the base sees the swaps,
    the member the lip-sync fakes, so together they rank better than the base alone."""
    base, member = [], []
    for s in range(n_sources):
        for i in range(8):
            label = int(i >= 4)
            family = "real" if not label else ("face swap" if i % 2 else "lip-sync")
            path = f"src{s}/v{i}.mp4"
            b = rng.normal() + 2.0 * (family == "face swap")
            m = rng.normal() + 2.0 * (family == "lip-sync")
            common = {"path": path, "label": label, "status": "ok", "family": family, "source": f"owner/repo{s}"}
            base.append({**common, "logit": b})
            member.append({**common, "logit": m})
    return base, member


def test_the_ensemble_is_reported_per_family_with_a_cross_fitted_weight(bench, tmp_path):
    base, member = _videos(np.random.default_rng(0))
    base.append({"path": "broken.mp4", "label": 1, "logit": "", "status": "error", "family": "lip-sync",
                 "source": "owner/repo0"})  # unscored: left out
    member.append({"path": "only-member.mp4", "label": 0, "logit": 0.0, "status": "ok", "family": "real",
                   "source": "owner/repo0"})  # not in the base: left out
    for rows in (base, member):  # scored but unlabelled: left out
        rows.append({"path": "unlabelled.mp4", "label": "", "logit": 1.0, "status": "ok", "family": "",
                     "source": "owner/repo1"})
    out = tmp_path / "result.json"
    assert bench.main([str(_write(tmp_path / "b.csv", base)), str(_write(tmp_path / "m.csv", member)),
                       "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["videos"] == 96 and report["sources"] == 12
    assert report["weight"] > 0
    everything = report["all"]
    assert everything["fake"] == 48 and everything["real"] == 48
    assert everything["ensemble"]["auc"] > everything["base"]["auc"]
    assert everything["ensemble_minus_base"]["difference"] > 0
    assert set(report["per_family"]) == {"face swap", "lip-sync"}
    lip_sync = report["per_family"]["lip-sync"]
    assert lip_sync["fake"] == 24 and lip_sync["real"] == 48
    assert lip_sync["member"]["auc"] > lip_sync["base"]["auc"]


def test_files_that_share_no_path_are_refused(bench, tmp_path):
    base, member = _videos(np.random.default_rng(1), n_sources=2)
    for row in member:
        row["path"] = "other/" + row["path"]
    with pytest.raises(SystemExit, match="share no scored"):
        bench.main([str(_write(tmp_path / "b.csv", base)), str(_write(tmp_path / "m.csv", member)),
                    "--out", str(tmp_path / "r.json")])
