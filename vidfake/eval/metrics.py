"""Evaluation metrics for binary deepfake detection (numpy only, no other vidfake imports).

Conventions used throughout:

* ``labels``: 1 = fake (the positive class), 0 = real. Booleans and the floats 0.0/1.0 are
  accepted; anything else raises :class:`MetricError`.
* ``scores``: higher means "more likely fake". For the ranking metrics (ROC, AUC, TPR@FPR,
  EER, average precision) any finite real-valued score works; :func:`log_loss` and
  :func:`compute_metrics` need probabilities of fake in ``[0, 1]``.
* Threshold metrics predict *fake* when ``score >= threshold``.

Every function validates its input and raises :class:`MetricError` (a ``ValueError``) with a
message that says what is wrong, instead of returning NaN: empty input, length mismatch,
labels other than 0/1, NaN or infinite scores (reported with their count and first indices),
probabilities outside ``[0, 1]`` for log loss, and a single class where a metric needs both.
The one exception is :func:`expected_calibration_error`, which is NaN for empty input
(the plots and reports show it as "n/a" when no file was scored).

The ranking metrics match scikit-learn exactly (``roc_curve`` with
``drop_intermediate=False``, ``roc_auc_score``, ``average_precision_score``), ties included:
tied scores form a single step of the ROC / precision-recall curve.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = [
    "DFDC_CLIP",
    "MetricError",
    "accuracy_at",
    "as_labels",
    "average_precision",
    "balanced_accuracy_at",
    "bootstrap_ci",
    "calibration_bins",
    "compute_metrics",
    "confusion_at",
    "equal_error_rate",
    "expected_calibration_error",
    "log_loss",
    "paired_bootstrap_difference",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
]

#: Probability clipping for :func:`log_loss`: predictions are clipped to
#: ``[DFDC_CLIP, 1 - DFDC_CLIP]`` before taking logs.
#:
#: The DFDC Kaggle competition was scored with Kaggle's standard binary log loss, which bounds
#: predictions away from 0 and 1 by 1e-15 (the same constant as scikit-learn's historical
#: ``log_loss(eps=1e-15)`` default), so a confidently wrong prediction costs at most
#: ``-ln(1e-15) ~= 34.5`` instead of infinity. Using the same constant keeps our numbers
#: comparable with the leaderboard and with published DFDC results. It is configurable:
#: every function that computes log loss takes a ``clip`` argument (``0 < clip < 0.5``); note
#: that some DFDC write-ups clip their *submissions* much harder (e.g. to [0.01, 0.99]) -- that
#: is a prediction post-processing choice, not the metric, and belongs in the model, not here.
DFDC_CLIP: float = 1e-15


class MetricError(ValueError):
    """Invalid input for a metric (bad labels/scores, or a metric undefined on this data)."""


# ----------------------------------------------------------------------------- validation


def as_labels(labels, *, allow_empty: bool = False) -> np.ndarray:
    """``labels`` as an int64 array of 0 (real) / 1 (fake); :class:`MetricError` naming
    what is wrong otherwise. Empty input is an error unless ``allow_empty`` (the plots and
    :func:`expected_calibration_error` draw or return nothing for it)."""
    try:
        arr = np.asarray(labels)
    except Exception as exc:  # ragged sequences and the like
        raise MetricError(f"labels could not be converted to an array: {exc}") from exc
    if arr.ndim != 1:
        raise MetricError(f"labels must be a 1-D sequence; got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise MetricError("labels are empty; metrics need at least one example")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise MetricError(
                f"labels must be 0 (real) or 1 (fake); got non-numeric values of dtype {arr.dtype}"
            ) from exc
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        idx = np.flatnonzero(bad)
        values = np.unique(arr[idx])
        raise MetricError(
            f"labels must be 0 (real) or 1 (fake); {idx.size} label(s) are not, e.g. "
            f"{_preview(values.tolist())} at indices {_preview(idx.tolist())}"
        )
    return arr.astype(np.int64)


def _as_scores(scores, n: int, name: str = "scores") -> np.ndarray:
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"{name} must be real numbers: {exc}") from exc
    if arr.ndim != 1:
        raise MetricError(f"{name} must be a 1-D sequence; got shape {arr.shape}")
    if arr.size != n:
        raise MetricError(f"labels and {name} differ in length: {n} labels, {arr.size} {name}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.flatnonzero(bad)
        n_nan = int(np.isnan(arr[idx]).sum())
        raise MetricError(
            f"{name} contain {idx.size} non-finite value(s) ({n_nan} NaN, {idx.size - n_nan} inf) "
            f"out of {n}, at indices {_preview(idx.tolist())}"
        )
    return arr


def _preview(items: list, k: int = 5) -> str:
    head = ", ".join(repr(x) for x in items[:k])
    return f"[{head}{', ...' if len(items) > k else ''}]"


def _check(labels, scores, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    y = as_labels(labels)
    s = _as_scores(scores, y.size, name)
    return y, s


def _require_both_classes(y: np.ndarray, what: str) -> tuple[int, int]:
    n_fake = int(y.sum())
    n_real = int(y.size - n_fake)
    if n_fake == 0 or n_real == 0:
        only = f"{n_fake} fake" if n_real == 0 else f"{n_real} real"
        raise MetricError(f"{what} needs both real and fake examples; got only {only}")
    return n_fake, n_real


def _check_threshold(threshold) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"threshold must be a number; got {threshold!r}") from exc
    if np.isnan(t):
        raise MetricError("threshold is NaN")
    return t


def _check_clip(clip) -> float:
    try:
        c = float(clip)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"clip must be a number with 0 < clip < 0.5; got {clip!r}") from exc
    if not (0.0 < c < 0.5):
        raise MetricError(f"clip must satisfy 0 < clip < 0.5 (keeps log loss finite); got {clip!r}")
    return c


def _check_probs(p: np.ndarray, name: str = "probs") -> None:
    bad = (p < 0.0) | (p > 1.0)
    if bad.any():
        idx = np.flatnonzero(bad)
        raise MetricError(
            f"{name} must be probabilities in [0, 1]; {idx.size} value(s) are outside, e.g. "
            f"{_preview(p[idx].tolist())} at indices {_preview(idx.tolist())}"
        )


# ----------------------------------------------------------------------------- ranking


def _binary_clf_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fps, tps) at each distinct score, highest score first (ties = one step)."""
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted = s[order]
    y_sorted = y[order]
    distinct = np.flatnonzero(np.diff(s_sorted))
    last = np.r_[distinct, y_sorted.size - 1]
    tps = np.cumsum(y_sorted, dtype=np.float64)[last]
    fps = (last + 1) - tps
    return fps, tps, s_sorted[last]


def roc_curve(
    labels, scores, *, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve: ``(fpr, tpr, thresholds)`` like :func:`sklearn.metrics.roc_curve`.

    ``thresholds`` are the distinct scores in decreasing order, preceded by ``inf`` (the
    operating point that predicts nothing as fake, giving the ``(0, 0)`` corner). Point ``i`` is
    the operating point of the rule ``score >= thresholds[i]``; tied scores move the curve in a
    single (possibly diagonal) step. With ``drop_intermediate=True`` collinear points are
    removed exactly as scikit-learn does; the default keeps every threshold.
    """
    y, s = _check(labels, scores)
    _require_both_classes(y, "a ROC curve")
    fps, tps, thr = _binary_clf_curve(y, s)
    if drop_intermediate and fps.size > 2:
        keep = np.flatnonzero(
            np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        )
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    fps = np.r_[0.0, fps]
    tps = np.r_[0.0, tps]
    thr = np.r_[np.inf, thr]
    return fps / fps[-1], tps / tps[-1], thr


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks of ``s`` with ties given their average rank."""
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of the last member of each tie group
    avg = ends - (counts - 1) / 2.0
    return avg[inverse.reshape(-1)]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (probability a random fake outscores a random real).

    Computed as the Mann-Whitney U statistic with average ranks, so a tie between a fake and
    a real counts 1/2; equals :func:`sklearn.metrics.roc_auc_score` (trapezoidal area),
    ties included. Needs both classes.
    """
    y, s = _check(labels, scores)
    n_fake, n_real = _require_both_classes(y, "AUC")
    ranks = _average_ranks(s)
    u = ranks[y == 1].sum() - n_fake * (n_fake + 1) / 2.0
    return float(u / (n_fake * n_real))


def average_precision(labels, scores) -> float:
    """Average precision: ``sum_k (R_k - R_{k-1}) * P_k`` over distinct thresholds.

    Step-wise (no interpolation), identical to :func:`sklearn.metrics.average_precision_score`.
    Needs both classes (with no reals it would trivially be 1, with no fakes undefined).
    """
    y, s = _check(labels, scores)
    n_fake, _ = _require_both_classes(y, "average precision")
    fps, tps, _ = _binary_clf_curve(y, s)
    precision = tps / (tps + fps)
    recall = tps / n_fake
    d_recall = np.diff(np.r_[0.0, recall])
    return float(np.sum(d_recall * precision))


def tpr_at_fpr(labels, scores, max_fpr: float) -> float:
    """Highest TPR over the ROC operating points whose FPR is ``<= max_fpr``.

    This is what a threshold can actually achieve (no interpolation between ROC points); the
    ``(0, 0)`` corner is always available, so the result is at least 0.

    Resolution: FPR moves in steps of ``1 / n_real``. With fewer than ``1 / max_fpr`` real
    examples the only admissible FPR is 0, so the estimate is coarse (and pessimistic); e.g.
    TPR@FPR=1e-3 needs well over 1000 reals to mean much. Report ``n_real`` alongside it
    (:func:`compute_metrics` does).
    """
    try:
        m = float(max_fpr)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"max_fpr must be a number in [0, 1]; got {max_fpr!r}") from exc
    if not (0.0 <= m <= 1.0):
        raise MetricError(f"max_fpr must be in [0, 1]; got {max_fpr!r}")
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= m].max())


def equal_error_rate(labels, scores) -> tuple[float, float]:
    """Equal error rate ``(eer, threshold)``: the point of the ROC curve where FPR == FNR.

    ``FPR - FNR`` rises monotonically from -1 to +1 along the ROC curve; the EER is where it
    crosses 0, linearly interpolated between the two bracketing ROC points (exact when the
    crossing is at a point). The threshold is interpolated on the same segment between the two
    points' thresholds; when the lower bracket is the ``(0, 0)`` corner (threshold ``inf``),
    the first finite threshold is returned. Needs both classes.
    """
    fpr, tpr, thr = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    d = fpr - fnr  # d[0] == -1, d[-1] == +1
    i = int(np.argmax(d >= 0.0))
    if d[i] == 0.0:
        return float(fpr[i]), float(thr[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    if np.isinf(thr[i - 1]):
        threshold = thr[i]
    else:
        threshold = thr[i - 1] + t * (thr[i] - thr[i - 1])
    return float(eer), float(threshold)


# ----------------------------------------------------------------------------- probabilities


def log_loss(labels, probs, clip: float = DFDC_CLIP) -> float:
    """Mean binary cross-entropy (natural log) of fake-probabilities ``probs``.

    ``probs`` must lie in ``[0, 1]``; they are clipped to ``[clip, 1 - clip]`` before the
    logarithm (default :data:`DFDC_CLIP` = 1e-15, the DFDC Kaggle metric's bound), so the
    worst per-example loss is ``-ln(clip)``. Defined for a single class too.
    """
    y, p = _check(labels, probs, "probs")
    _check_probs(p)
    c = _check_clip(clip)
    p = np.clip(p, c, 1.0 - c)
    losses = np.where(y == 1, -np.log(p), -np.log1p(-p))
    return float(losses.mean())


def calibration_bins(labels, probs, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of ``[0, 1]`` (a probability of exactly 1.0 falls in the last):
    the number of examples, the sum of their probabilities and the number of fakes, as
    three arrays of length ``n_bins``. :func:`expected_calibration_error` and the
    reliability diagram both read these. Empty input gives bins of zeros."""
    if n_bins < 1:
        raise MetricError(f"n_bins must be >= 1; got {n_bins!r}")
    y = as_labels(labels, allow_empty=True)
    p = _as_scores(probs, y.size, "probs")
    _check_probs(p)
    idx = np.clip(np.floor(p * n_bins).astype(int), 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y.astype(float), minlength=n_bins)
    return counts, sum_p, sum_y


def expected_calibration_error(labels, probs, n_bins: int = 10) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins on [0, 1].

    ECE = sum_b (n_b / N) * |mean(probs in b) - fraction of fakes in b|. NaN for empty
    input (the one metric here that allows it: a report of no scored files shows "n/a");
    :class:`MetricError` for non-finite or out-of-range probabilities (filter unscored
    files before calling).
    """
    counts, sum_p, sum_y = calibration_bins(labels, probs, n_bins)
    n = int(counts.sum())
    if n == 0:
        return float("nan")
    used = counts > 0
    gaps = np.abs(sum_p[used] - sum_y[used]) / counts[used]
    return float(np.sum(counts[used] / n * gaps))


# ----------------------------------------------------------------------------- thresholded


def _confusion(y: np.ndarray, s: np.ndarray, t: float) -> tuple[int, int, int, int]:
    pred = s >= t
    tp = int(np.count_nonzero(pred & (y == 1)))
    fp = int(np.count_nonzero(pred & (y == 0)))
    fn = int(np.count_nonzero(~pred & (y == 1)))
    tn = int(y.size - tp - fp - fn)
    return tp, fp, tn, fn


def confusion_at(labels, scores, threshold) -> dict:
    """Confusion counts ``{"tp", "fp", "tn", "fn"}`` (ints) predicting fake when ``score >= threshold``."""
    y, s = _check(labels, scores)
    tp, fp, tn, fn = _confusion(y, s, _check_threshold(threshold))
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def accuracy_at(labels, scores, threshold) -> float:
    """Fraction of examples classified correctly with ``score >= threshold`` meaning fake."""
    y, s = _check(labels, scores)
    tp, fp, tn, fn = _confusion(y, s, _check_threshold(threshold))
    return float((tp + tn) / y.size)


def balanced_accuracy_at(labels, scores, threshold) -> float:
    """Mean of TPR and TNR at ``threshold`` (``score >= threshold`` is fake). Needs both classes."""
    y, s = _check(labels, scores)
    _require_both_classes(y, "balanced accuracy")
    tp, fp, tn, fn = _confusion(y, s, _check_threshold(threshold))
    return float((tp / (tp + fn) + tn / (tn + fp)) / 2.0)


# ----------------------------------------------------------------------------- bootstrap


def _check_boot(n_boot, confidence) -> tuple[int, float]:
    try:
        ok = not isinstance(n_boot, bool) and int(n_boot) == n_boot and n_boot >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MetricError(f"n_boot must be a positive integer; got {n_boot!r}")
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        c = float("nan")
    if not (0.0 < c < 1.0):
        raise MetricError(f"confidence must be in (0, 1); got {confidence!r}")
    return int(n_boot), c


def _stratified_resamples(y: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Index arrays of bootstrap resamples drawn with replacement *within* each class.

    Each resample keeps the original class counts, so every resample has both classes.
    Deterministic for a given ``seed`` (numpy ``default_rng``).
    """
    rng = np.random.default_rng(seed)
    fake = np.flatnonzero(y == 1)
    real = np.flatnonzero(y == 0)
    for _ in range(n_boot):
        yield np.concatenate(
            [fake[rng.integers(0, fake.size, fake.size)], real[rng.integers(0, real.size, real.size)]]
        )


def _percentile_interval(values: np.ndarray, confidence: float, what: str) -> tuple[float, float]:
    if not np.all(np.isfinite(values)):
        n_bad = int((~np.isfinite(values)).sum())
        raise MetricError(f"{what} was non-finite on {n_bad} of {values.size} bootstrap resamples")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels,
    scores,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval ``(low, high)`` of ``metric(labels, scores)``.

    Resampling is stratified by class (fakes resampled among fakes, reals among reals), so
    class counts are fixed and every resample has both classes; this makes it a CI for the
    metric at the observed class balance. Deterministic for a given ``seed``. ``metric`` is
    called as ``metric(labels, scores)`` on numpy arrays. Needs both classes.
    """
    y, s = _check(labels, scores)
    _require_both_classes(y, "a stratified bootstrap")
    n_boot, confidence = _check_boot(n_boot, confidence)
    values = np.array([float(metric(y[idx], s[idx])) for idx in _stratified_resamples(y, n_boot, seed)])
    return _percentile_interval(values, confidence, getattr(metric, "__name__", "metric"))


def paired_bootstrap_difference(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels,
    scores_a,
    scores_b,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Paired bootstrap of ``metric(labels, scores_a) - metric(labels, scores_b)``.

    Both score sets are evaluated on the *same* stratified resamples, so the interval accounts
    for the correlation between two models scored on the same videos. Returns
    ``{"difference": point estimate, "low": ..., "high": ...}``; an interval excluding 0 is
    evidence that the models differ at this confidence.
    """
    y, a = _check(labels, scores_a, "scores_a")
    b = _as_scores(scores_b, y.size, "scores_b")
    _require_both_classes(y, "a stratified bootstrap")
    n_boot, confidence = _check_boot(n_boot, confidence)
    diffs = np.array(
        [
            float(metric(y[idx], a[idx])) - float(metric(y[idx], b[idx]))
            for idx in _stratified_resamples(y, n_boot, seed)
        ]
    )
    low, high = _percentile_interval(diffs, confidence, getattr(metric, "__name__", "metric"))
    return {"difference": float(metric(y, a)) - float(metric(y, b)), "low": low, "high": high}


# ----------------------------------------------------------------------------- summary


def compute_metrics(
    labels,
    scores,
    threshold: float = 0.5,
    clip: float = DFDC_CLIP,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """All metrics for fake-probabilities ``scores`` in one JSON-ready dict (plain Python types).

    Keys: ``n``, ``n_fake``, ``n_real``, ``auc``, ``auc_ci`` ([low, high]), ``log_loss``,
    ``log_loss_ci``, ``log_loss_clip``, ``tpr_at_fpr_1e-3``, ``tpr_at_fpr_1e-2``, ``eer``,
    ``eer_threshold``, ``average_precision``, ``threshold``, ``accuracy``,
    ``balanced_accuracy``, ``confusion`` ({tp, fp, tn, fn}), ``bootstrap`` ({n, confidence,
    seed}). The CIs are stratified percentile bootstraps sharing the same resamples;
    ``n_boot=0`` skips them (``auc_ci`` / ``log_loss_ci`` are then ``None``). Raises
    :class:`MetricError` for a single class or invalid input, so no value is ever NaN.
    """
    y, s = _check(labels, scores)
    n_fake, n_real = _require_both_classes(y, "compute_metrics")
    _check_probs(s, "scores")
    clip = _check_clip(clip)
    t = _check_threshold(threshold)
    if n_boot != 0:
        n_boot, confidence = _check_boot(n_boot, confidence)

    def _log_loss(yy, ss):
        return log_loss(yy, ss, clip)

    if n_boot:
        auc_ci = list(bootstrap_ci(roc_auc, y, s, n_boot, confidence, seed))
        ll_ci = list(bootstrap_ci(_log_loss, y, s, n_boot, confidence, seed))
    else:
        auc_ci = ll_ci = None
    eer, eer_thr = equal_error_rate(y, s)
    tp, fp, tn, fn = _confusion(y, s, t)
    return {
        "n": int(y.size),
        "n_fake": n_fake,
        "n_real": n_real,
        "auc": roc_auc(y, s),
        "auc_ci": auc_ci,
        "log_loss": log_loss(y, s, clip),
        "log_loss_ci": ll_ci,
        "log_loss_clip": clip,
        "tpr_at_fpr_1e-3": tpr_at_fpr(y, s, 1e-3),
        "tpr_at_fpr_1e-2": tpr_at_fpr(y, s, 1e-2),
        "eer": eer,
        "eer_threshold": eer_thr,
        "average_precision": average_precision(y, s),
        "threshold": t,
        "accuracy": float((tp + tn) / y.size),
        "balanced_accuracy": float((tp / (tp + fn) + tn / (tn + fp)) / 2.0),
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "bootstrap": {"n": int(n_boot), "confidence": float(confidence), "seed": int(seed)},
    }
