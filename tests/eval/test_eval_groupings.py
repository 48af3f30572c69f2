"""Per-group reporting: forced groupings (--by) and fake-only groups ranked against all reals."""
from __future__ import annotations

import pytest

from vidfake.eval.evaluate import EvalError, evaluate_predictions
from vidfake.eval.metrics import roc_auc


def _row(name: str, label: int, score: float, source: str, family: str) -> dict:
    return {"path": name, "name": name, "label": str(label), "score": str(score), "logit": "", "status": "ok",
            "source": source, "family": family}


def _rows() -> list[dict]:
    """Reals from three sources, fakes from two fake-only sources and one mixed source."""
    rows = [_row(f"r{i}", 0, s, f"real/{i % 3}", "real") for i, s in enumerate([0.1, 0.2, 0.3, 0.6, 0.35, 0.15])]
    rows += [_row(f"a{i}", 1, s, "fakes/a", "swap") for i, s in enumerate([0.9, 0.8, 0.25])]
    rows += [_row(f"b{i}", 1, s, "fakes/b", "talking") for i, s in enumerate([0.4, 0.05])]
    rows += [_row("m0", 1, 0.7, "mixed/m", "swap"), _row("m1", 0, 0.5, "mixed/m", "real")]
    return rows


def test_fake_only_groups_are_ranked_against_every_real_file():
    rows = _rows()
    result = evaluate_predictions(rows, threshold=0.5, clip=1e-6, n_boot=50, by=("source",))
    versus = result["fakes_vs_all_reals"]["source"]
    assert set(versus) == {"fakes/a", "fakes/b"}  # mixed/m has reals of its own; real/* have no fakes
    reals = [0.1, 0.2, 0.3, 0.6, 0.35, 0.15, 0.5]
    assert versus["fakes/a"]["auc"] == pytest.approx(roc_auc([0] * 7 + [1] * 3, reals + [0.9, 0.8, 0.25]))
    assert versus["fakes/a"]["n"] == 10 and versus["fakes/a"]["n_fake"] == 3
    assert versus["fakes/b"]["auc"] == pytest.approx(roc_auc([0] * 7 + [1] * 2, reals + [0.4, 0.05]))


def test_by_reports_a_column_with_many_values_and_refuses_an_unknown_one():
    rows = _rows()
    plain = evaluate_predictions(rows, threshold=0.5, clip=1e-6, n_boot=10)
    assert "source" not in plain["groups"]  # 6 values for 13 files: more than a third, not a grouping
    forced = evaluate_predictions(rows, threshold=0.5, clip=1e-6, n_boot=10, by=("source",))
    assert set(forced["groups"]["source"]) == {"real/0", "real/1", "real/2", "fakes/a", "fakes/b", "mixed/m"}
    assert forced["groups"]["source"]["real/0"]["accuracy"] == 0.5  # r0 at 0.1 passes, r3 at 0.6 is called fake
    with pytest.raises(EvalError, match="no column codec"):
        evaluate_predictions(rows, threshold=0.5, clip=1e-6, n_boot=10, by=("codec",))


def test_cross_fitting_scores_each_half_with_the_other_halfs_fit():
    import hashlib
    import math

    import numpy as np

    from vidfake.eval.calibrate import CalibrationError, cross_fitted
    from vidfake.temporal.aggregate import fit_temperature_and_bias

    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        label = i % 2
        logit = (2.0 if label else -1.0) + rng.normal(0, 1.5) + 1.0  # too confident and leaning fake
        rows.append({"path": f"f{i}", "label": str(label), "score": "0.5", "logit": repr(logit), "group": f"g{i // 2}"})
    rows.append({"path": "noface", "label": "1", "score": "", "logit": "", "group": "g0"})
    out = cross_fitted(rows, "group")
    assert out[-1] == rows[-1]  # no logit: left as it was

    def half(row):
        return hashlib.sha1(row["group"].encode()).digest()[0] % 2

    for held_out in (0, 1):
        train = [r for r in rows[:-1] if half(r) != held_out]
        t, b = fit_temperature_and_bias([float(r["logit"]) for r in train], [int(r["label"]) for r in train])
        for row, new in zip(rows[:-1], out[:-1]):
            if half(row) == held_out:
                assert float(new["score"]) == pytest.approx(1 / (1 + math.exp(-(float(row["logit"]) / t + b))))
    with pytest.raises(CalibrationError, match="one class"):
        cross_fitted([{**r, "label": "1"} for r in rows[:-1]], "group")
