"""Tests for vidfake.eval.metrics: hand-computed cases and exact agreement with scikit-learn."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vidfake.eval import metrics as M
from vidfake.eval.metrics import (
    DFDC_CLIP,
    MetricError,
    accuracy_at,
    average_precision,
    balanced_accuracy_at,
    bootstrap_ci,
    compute_metrics,
    confusion_at,
    equal_error_rate,
    log_loss,
    paired_bootstrap_difference,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)

sk = pytest.importorskip("sklearn.metrics")

TOL = 1e-12


def _random_case(seed: int, decimals: int | None = 1):
    """Imbalanced labels, overlapping scores, rounded so that there are many ties."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 600))
    p_fake = rng.uniform(0.1, 0.9)
    y = (rng.random(n) < p_fake).astype(int)
    y[0], y[1] = 0, 1  # both classes always present
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    if decimals is not None:
        s = np.round(s, decimals)
    return y, s


CASES = [(seed, dec) for seed in range(8) for dec in (1, 2, None)]


# ----------------------------------------------------------------------------- hand-computed


def test_auc_hand_computed():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([0, 1], [0.2, 0.9]) == 1.0
    assert roc_auc([0, 1], [0.9, 0.2]) == 0.0
    # one fake/real tie counts 1/2: pairs (f=.5 vs r=.5) -> .5, (f=.5 vs r=.1) -> 1
    assert roc_auc([0, 0, 1], [0.1, 0.5, 0.5]) == 0.75


def test_roc_curve_hand_computed_with_ties():
    fpr, tpr, thr = roc_curve([0, 0, 1, 1, 1], [0.2, 0.6, 0.6, 0.9, 0.2])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.6, 0.2])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1], rtol=0, atol=TOL)


def test_log_loss_hand_computed():
    y = [1, 0, 1, 0]
    p = [0.9, 0.2, 0.6, 0.5]
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.5)) / 4
    assert log_loss(y, p) == pytest.approx(expected, abs=TOL)
    # perfectly wrong confident prediction is clipped, not infinite
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15), abs=1e-9)
    assert log_loss([1], [0.0], clip=0.01) == pytest.approx(-math.log(0.01), abs=TOL)
    assert log_loss([0, 1], [0.5, 0.5]) == pytest.approx(math.log(2), abs=TOL)
    # clipping only touches values beyond the bound
    assert log_loss([1, 0], [0.995, 0.004], clip=0.01) == pytest.approx(
        -(math.log(0.99) + math.log(0.99)) / 2, abs=TOL
    )


def test_dfdc_clip_constant():
    assert DFDC_CLIP == 1e-15


def test_average_precision_hand_computed():
    # ranking: f(.9), r(.8), f(.7), r(.1): AP = 1/2*1 + 1/2*(2/3)
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(
        0.5 + 1 / 3, abs=TOL
    )
    # all tied: one step to recall 1 at precision = prevalence
    assert average_precision([1, 0, 0, 0], [0.5] * 4) == 0.25


def test_threshold_metrics_hand_computed():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.5, 0.7, 0.5, 0.9]
    assert confusion_at(y, s, 0.5) == {"tp": 2, "fp": 2, "tn": 1, "fn": 0}  # >= is fake
    assert confusion_at(y, s, 0.6) == {"tp": 1, "fp": 1, "tn": 2, "fn": 1}
    assert accuracy_at(y, s, 0.5) == 3 / 5
    assert balanced_accuracy_at(y, s, 0.5) == pytest.approx((1.0 + 1 / 3) / 2, abs=TOL)
    assert balanced_accuracy_at(y, s, 0.6) == pytest.approx((0.5 + 2 / 3) / 2, abs=TOL)
    c = confusion_at(y, s, 0.5)
    assert all(type(v) is int for v in c.values())
    # a single class is fine for plain counts and accuracy
    assert accuracy_at([0, 0], [0.1, 0.7], 0.5) == 0.5


# ----------------------------------------------------------------------------- vs scikit-learn


@pytest.mark.parametrize("seed,decimals", CASES)
def test_ranking_metrics_match_sklearn(seed, decimals):
    y, s = _random_case(seed, decimals)
    assert abs(roc_auc(y, s) - sk.roc_auc_score(y, s)) <= TOL
    assert abs(average_precision(y, s) - sk.average_precision_score(y, s)) <= TOL
    for drop in (False, True):
        fpr, tpr, thr = roc_curve(y, s, drop_intermediate=drop)
        fpr_ref, tpr_ref, thr_ref = sk.roc_curve(y, s, drop_intermediate=drop)
        assert fpr.shape == fpr_ref.shape
        np.testing.assert_allclose(fpr, fpr_ref, rtol=0, atol=TOL)
        np.testing.assert_allclose(tpr, tpr_ref, rtol=0, atol=TOL)
        np.testing.assert_array_equal(thr, thr_ref)


@pytest.mark.parametrize("seed,decimals", CASES)
def test_log_loss_matches_sklearn(seed, decimals):
    y, s = _random_case(seed, decimals)
    s = s.copy()
    s[:3] = [0.0, 1.0, 1.0]  # exact 0/1 predictions exercise the clipping
    for clip in (DFDC_CLIP, 1e-3, 0.05):
        ref = sk.log_loss(y, np.clip(s, clip, 1 - clip), labels=[0, 1])
        assert abs(log_loss(y, s, clip=clip) - ref) <= TOL


@pytest.mark.parametrize("seed,decimals", CASES)
def test_threshold_metrics_match_sklearn(seed, decimals):
    y, s = _random_case(seed, decimals)
    for t in (0.3, 0.5, 0.6, float(np.median(s))):
        pred = (s >= t).astype(int)
        tn, fp, fn, tp = sk.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert confusion_at(y, s, t) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
        assert abs(accuracy_at(y, s, t) - sk.accuracy_score(y, pred)) <= TOL
        assert abs(balanced_accuracy_at(y, s, t) - sk.balanced_accuracy_score(y, pred)) <= TOL


def test_auc_any_real_scores_and_input_types():
    y, s = _random_case(3, None)
    logits = np.log(s + 1e-3) * 7 - 2  # monotone transform, negative values
    assert abs(roc_auc(y, logits) - roc_auc(y, s)) <= TOL
    assert roc_auc(list(y.astype(bool)), list(s)) == roc_auc(y.astype(float), s)


# ----------------------------------------------------------------------------- TPR@FPR and EER


def test_tpr_at_fpr_constructed():
    # 1000 reals, 10 fakes; exactly one real scores above every fake
    y = np.r_[np.zeros(1000, int), np.ones(10, int)]
    s = np.r_[np.linspace(0.0, 0.4, 999), 0.99, np.linspace(0.6, 0.9, 10)]
    assert tpr_at_fpr(y, s, 1e-3) == 1.0  # FPR = 1/1000 is allowed
    assert tpr_at_fpr(y, s, 1e-4) == 0.0  # only FPR 0 allowed: the real is ranked first
    assert tpr_at_fpr(y, s, 0.999e-3) == 0.0
    assert tpr_at_fpr(y, s, 1e-2) == 1.0
    assert tpr_at_fpr(y, s, 0.0) == 0.0
    # make the fakes straddle: 4 fakes above the rogue real, 6 below it
    s2 = s.copy()
    s2[-4:] = 0.995
    assert tpr_at_fpr(y, s2, 1e-4) == 0.4
    assert tpr_at_fpr(y, s2, 1e-3) == 1.0


@pytest.mark.parametrize("seed,decimals", CASES[:9])
def test_tpr_at_fpr_matches_roc_scan(seed, decimals):
    y, s = _random_case(seed, decimals)
    fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    for m in (0.0, 0.01, 0.1, 0.5, 1.0):
        assert tpr_at_fpr(y, s, m) == pytest.approx(tpr[fpr <= m + 1e-15].max(), abs=TOL)


def test_equal_error_rate_symmetric():
    # reals are the mirror image (1 - x) of the fakes: FPR == FNR at the 0.6 operating point
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    eer, thr = equal_error_rate(y, s)
    assert eer == pytest.approx(0.25, abs=TOL)
    assert thr == 0.6
    # crossing inside a tied (diagonal) step: interpolated halfway
    eer, thr = equal_error_rate([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9])
    assert eer == pytest.approx(0.25, abs=TOL)
    assert thr == pytest.approx(0.7, abs=TOL)
    # perfect separation -> 0; perfect inversion -> 1
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9]) == (0.0, 0.7)
    assert equal_error_rate([1, 1, 0, 0], [0.1, 0.3, 0.7, 0.9])[0] == 1.0
    # uninformative scores -> 0.5
    assert equal_error_rate([0, 1, 0, 1], [0.5] * 4)[0] == pytest.approx(0.5, abs=TOL)


@pytest.mark.parametrize("seed,decimals", CASES[:12])
def test_equal_error_rate_matches_root_finding(seed, decimals):
    optimize = pytest.importorskip("scipy.optimize")
    y, s = _random_case(seed, decimals)
    fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)

    def gap(x):  # FNR - FPR along the piecewise-linear ROC, as a function of FPR
        return 1.0 - np.interp(x, fpr, tpr) - x

    ref = optimize.brentq(gap, 0.0, 1.0, xtol=1e-14)
    eer, thr = equal_error_rate(y, s)
    assert eer == pytest.approx(ref, abs=1e-9)
    assert s.min() <= thr <= s.max()


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn", [roc_auc, roc_curve, average_precision, equal_error_rate, compute_metrics]
)
def test_single_class_raises(fn):
    with pytest.raises(MetricError, match="needs both real and fake examples; got only 3 fake"):
        fn([1, 1, 1], [0.1, 0.5, 0.9])
    with pytest.raises(MetricError, match="got only 2 real"):
        fn([0, 0], [0.1, 0.5])


def test_single_class_raises_elsewhere():
    with pytest.raises(MetricError, match="needs both"):
        tpr_at_fpr([0, 0], [0.1, 0.2], 0.01)
    with pytest.raises(MetricError, match="needs both"):
        balanced_accuracy_at([1, 1], [0.1, 0.2], 0.5)
    with pytest.raises(MetricError, match="needs both"):
        bootstrap_ci(roc_auc, [1, 1], [0.1, 0.2], n_boot=10)


def test_auc_single_class_message_exact():
    with pytest.raises(MetricError) as exc:
        roc_auc([1] * 12, np.linspace(0, 1, 12))
    assert str(exc.value) == "AUC needs both real and fake examples; got only 12 fake"


def test_nonfinite_scores_raise_with_location():
    s = [0.1, float("nan"), 0.3, float("inf"), 0.2]
    for fn in (roc_auc, average_precision, log_loss, compute_metrics):
        with pytest.raises(MetricError, match=r"2 non-finite value\(s\) \(1 NaN, 1 inf\).*\[1, 3\]"):
            fn([0, 1, 0, 1, 0], s)
    with pytest.raises(MetricError, match="non-finite"):
        confusion_at([0, 1], [np.nan, 0.2], 0.5)
    assert issubclass(MetricError, ValueError)


@pytest.mark.parametrize(
    "labels,scores,pattern",
    [
        ([], [], "empty"),
        ([0, 1, 1], [0.1, 0.2], "differ in length: 3 labels, 2 scores"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "must be 0 \\(real\\) or 1 \\(fake\\).*\\[2\\] at indices \\[1\\]"),
        ([0, -1, 1], [0.1, 0.2, 0.3], "must be 0"),
        ([0, 0.5, 1], [0.1, 0.2, 0.3], "must be 0"),
        ([0, float("nan"), 1], [0.1, 0.2, 0.3], "must be 0"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([0, 1], ["a", "b"], "real numbers"),
    ],
)
def test_bad_input_raises(labels, scores, pattern):
    with pytest.raises(MetricError, match=pattern):
        roc_auc(labels, scores)


def test_log_loss_rejects_non_probabilities():
    with pytest.raises(MetricError, match=r"probabilities in \[0, 1\]; 2 value\(s\)"):
        log_loss([0, 1, 1], [0.2, 1.5, -0.1])
    with pytest.raises(MetricError, match="probabilities"):
        compute_metrics([0, 1], [0.2, 3.0])
    for bad_clip in (0.0, 0.5, -1e-3, float("nan")):
        with pytest.raises(MetricError, match="clip"):
            log_loss([0, 1], [0.2, 0.8], clip=bad_clip)


def test_bad_threshold_and_max_fpr():
    with pytest.raises(MetricError, match="threshold"):
        accuracy_at([0, 1], [0.2, 0.8], float("nan"))
    with pytest.raises(MetricError, match="max_fpr"):
        tpr_at_fpr([0, 1], [0.2, 0.8], 1.5)


# ----------------------------------------------------------------------------- bootstrap


def _separable(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    s = 1 / (1 + np.exp(-rng.normal(1.2 * (2 * y - 1), 1.5)))
    return y, s


def test_bootstrap_ci_contains_estimate_and_is_reproducible():
    y, s = _separable(300, 0)
    lo, hi = bootstrap_ci(roc_auc, y, s, n_boot=200, seed=7)
    assert lo <= roc_auc(y, s) <= hi
    assert lo < hi
    assert bootstrap_ci(roc_auc, y, s, n_boot=200, seed=7) == (lo, hi)
    assert bootstrap_ci(roc_auc, y, s, n_boot=200, seed=8) != (lo, hi)
    ll_lo, ll_hi = bootstrap_ci(log_loss, y, s, n_boot=200, seed=7)
    assert ll_lo <= log_loss(y, s) <= ll_hi


def test_bootstrap_ci_narrows_with_more_data():
    y_small, s_small = _separable(100, 1)
    y_big, s_big = _separable(3000, 1)
    lo_s, hi_s = bootstrap_ci(roc_auc, y_small, s_small, n_boot=200)
    lo_b, hi_b = bootstrap_ci(roc_auc, y_big, s_big, n_boot=200)
    assert (hi_b - lo_b) < 0.5 * (hi_s - lo_s)


def test_bootstrap_resamples_are_stratified():
    y = np.r_[np.zeros(50, int), np.ones(3, int)]
    seen = []

    def metric(yy, ss):
        seen.append((int(yy.sum()), int(yy.size)))
        return roc_auc(yy, ss)

    bootstrap_ci(metric, y, np.linspace(0, 1, y.size), n_boot=50)
    assert seen == [(3, 53)] * 50


def test_bootstrap_confidence_widens_interval():
    y, s = _separable(200, 2)
    lo90, hi90 = bootstrap_ci(roc_auc, y, s, n_boot=200, confidence=0.9)
    lo99, hi99 = bootstrap_ci(roc_auc, y, s, n_boot=200, confidence=0.99)
    assert lo99 <= lo90 and hi90 <= hi99
    with pytest.raises(MetricError, match="confidence"):
        bootstrap_ci(roc_auc, y, s, confidence=1.0)
    with pytest.raises(MetricError, match="n_boot"):
        bootstrap_ci(roc_auc, y, s, n_boot=0)


def test_bootstrap_rejects_nan_metric():
    y, s = _separable(50, 3)
    with pytest.raises(MetricError, match="non-finite on 20 of 20"):
        bootstrap_ci(lambda a, b: float("nan"), y, s, n_boot=20)


def test_paired_bootstrap_difference():
    y, s = _separable(300, 4)
    same = paired_bootstrap_difference(roc_auc, y, s, s, n_boot=200)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}

    rng = np.random.default_rng(5)
    worse = np.clip(s + rng.normal(0, 0.4, s.size), 0, 1)
    d = paired_bootstrap_difference(roc_auc, y, s, worse, n_boot=200, seed=3)
    assert d["difference"] == pytest.approx(roc_auc(y, s) - roc_auc(y, worse), abs=TOL)
    assert d["low"] <= d["difference"] <= d["high"]
    assert d["low"] > 0  # clearly better model
    assert paired_bootstrap_difference(roc_auc, y, s, worse, n_boot=200, seed=3) == d
    # antisymmetric when a and b swap (same resamples)
    r = paired_bootstrap_difference(roc_auc, y, worse, s, n_boot=200, seed=3)
    assert r["low"] == pytest.approx(-d["high"], abs=TOL)
    assert r["high"] == pytest.approx(-d["low"], abs=TOL)
    with pytest.raises(MetricError, match="scores_b"):
        paired_bootstrap_difference(roc_auc, y, s, s[:-1], n_boot=10)


# ----------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_json_ready_and_consistent():
    y, s = _separable(400, 6)
    out = compute_metrics(y, s, threshold=0.5, n_boot=200, seed=1)
    assert set(out) == {
        "n", "n_fake", "n_real", "auc", "auc_ci", "log_loss", "log_loss_ci", "log_loss_clip",
        "tpr_at_fpr_1e-3", "tpr_at_fpr_1e-2", "eer", "eer_threshold", "average_precision",
        "threshold", "accuracy", "balanced_accuracy", "confusion", "bootstrap",
    }
    # round-trips through strict JSON (no NaN/inf, only plain types)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out["n"] == 400 and out["n_fake"] + out["n_real"] == 400
    assert out["n_fake"] == int(y.sum())
    assert out["auc"] == roc_auc(y, s)
    assert abs(out["auc"] - sk.roc_auc_score(y, s)) <= TOL
    assert out["auc_ci"][0] <= out["auc"] <= out["auc_ci"][1]
    assert out["log_loss"] == log_loss(y, s)
    assert out["log_loss_ci"][0] <= out["log_loss"] <= out["log_loss_ci"][1]
    assert out["log_loss_clip"] == DFDC_CLIP
    assert out["tpr_at_fpr_1e-2"] == tpr_at_fpr(y, s, 1e-2)
    assert out["tpr_at_fpr_1e-3"] <= out["tpr_at_fpr_1e-2"]
    assert (out["eer"], out["eer_threshold"]) == equal_error_rate(y, s)
    assert out["average_precision"] == average_precision(y, s)
    assert out["confusion"] == confusion_at(y, s, 0.5)
    assert out["accuracy"] == accuracy_at(y, s, 0.5)
    assert out["balanced_accuracy"] == balanced_accuracy_at(y, s, 0.5)
    assert out["bootstrap"] == {"n": 200, "confidence": 0.95, "seed": 1}
    assert out["auc_ci"] == list(bootstrap_ci(roc_auc, y, s, n_boot=200, seed=1))
    # deterministic
    assert compute_metrics(y, s, n_boot=200, seed=1) == out


def test_compute_metrics_options():
    y, s = _separable(100, 7)
    out = compute_metrics(y, s, threshold=0.3, clip=0.01, n_boot=0)
    assert out["auc_ci"] is None and out["log_loss_ci"] is None
    assert out["bootstrap"]["n"] == 0
    assert out["log_loss_clip"] == 0.01
    assert out["log_loss"] == log_loss(y, s, clip=0.01)
    assert out["threshold"] == 0.3
    assert out["confusion"] == confusion_at(y, s, 0.3)


def test_module_is_standalone():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(M))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0] if node.level == 0 else ".")
    assert imported <= {"__future__", "collections", "typing", "numpy"}  # the standard library and numpy only
