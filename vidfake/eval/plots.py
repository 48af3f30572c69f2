"""Evaluation plots: ROC, score histograms, reliability diagram, per-frame timeline.

Every plot is drawn on its own ``matplotlib.figure.Figure`` with an Agg canvas attached
directly, so nothing here touches pyplot's global state or the process-wide backend
(safe in tests, worker processes and headless servers). Each ``plot_*`` function writes
one PNG (parent folders are created) and returns its path.

Conventions: label 1 = fake, 0 = real; a score / probability is P(fake) in [0, 1].
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vidfake.eval.metrics import as_labels, calibration_bins, expected_calibration_error

FIGSIZE = (7.0, 5.0)  # inches; at DPI -> 840 x 600 pixels
TIMELINE_FIGSIZE = (10.0, 4.0)  # -> 1200 x 480 pixels
DPI = 120
OPERATING_FPRS = (1e-3, 1e-2)  # the challenge's operating points
LOG_FPR_FLOOR = 1e-4  # fpr is clipped here for display on a log axis

REAL_COLOR = "tab:blue"
FAKE_COLOR = "tab:red"


# --------------------------------------------------------------------------- helpers

def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _as_float_array(values, name: str) -> np.ndarray:
    """1-D float array; ``None`` entries become NaN."""
    if isinstance(values, np.ndarray):
        arr = values.astype(float, copy=False)
    else:
        arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _paired(labels, scores) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels and scores with the unscored (None / NaN) entries removed, and how many were."""
    y = as_labels(labels, allow_empty=True)
    s = _as_float_array(scores, "scores")
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    keep = np.isfinite(s)
    return y[keep], s[keep], int((~keep).sum())


# --------------------------------------------------------------------------- plots

def _trapezoid_auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    if fpr.size < 2:
        return float("nan")
    order = np.lexsort((tpr, fpr))
    return float(np.trapezoid(tpr[order], fpr[order]))


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "ROC",
    aucs: Mapping[str, float] | None = None,
    log_fpr: bool = True,
    operating_fprs: Sequence[float] = OPERATING_FPRS,
) -> Path:
    """One or more named (fpr, tpr) curves with AUC in the legend.

    AUC comes from ``aucs[name]`` when given, otherwise from the trapezoid under the
    curve as passed. With ``log_fpr`` the x axis is logarithmic and fpr is clipped at
    1e-4 for display. The chance diagonal and dotted verticals at ``operating_fprs``
    (FPR 1e-3 and 1e-2) are drawn.
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    for name, (fpr, tpr) in curves.items():
        fpr = _as_float_array(fpr, f"fpr of {name!r}")
        tpr = _as_float_array(tpr, f"tpr of {name!r}")
        if fpr.shape != tpr.shape:
            raise ValueError(f"curve {name!r}: fpr and tpr differ in length ({fpr.size} vs {tpr.size})")
        ok = np.isfinite(fpr) & np.isfinite(tpr)
        fpr, tpr = fpr[ok], tpr[ok]
        auc = None if aucs is None else aucs.get(name)
        if auc is None or not math.isfinite(float(auc)):
            auc = _trapezoid_auc(fpr, tpr)
        label = f"{name} (AUC = {auc:.4f})" if math.isfinite(auc) else f"{name} (AUC n/a)"
        if fpr.size == 0:
            ax.plot([], [], label=f"{name} (no data)")
            continue
        x = np.clip(fpr, LOG_FPR_FLOOR, 1.0) if log_fpr else fpr
        ax.plot(x, tpr, linewidth=2, label=label)

    chance = np.logspace(math.log10(LOG_FPR_FLOOR), 0, 200) if log_fpr else np.array([0.0, 1.0])
    ax.plot(chance, chance, linestyle="--", color="grey", linewidth=1, label="chance")

    for i, op in enumerate(operating_fprs):
        ax.axvline(op, color="black", linestyle=":", linewidth=1,
                   label="operating points (FPR = " + ", ".join(f"{v:g}" for v in operating_fprs) + ")"
                   if i == 0 else None)
        if log_fpr:  # on a linear axis the two lines sit on top of each other near 0
            ax.annotate(f"FPR={op:g}", xy=(op, 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, ha="right", va="bottom", fontsize=8, color="black")

    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(LOG_FPR_FLOOR, 1.0)
        ax.set_xlabel(f"false positive rate (real flagged as fake; log scale, clipped at {LOG_FPR_FLOOR:g})")
    else:
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("false positive rate (real flagged as fake)")
    ax.set_ylim(0.0, 1.01)
    ax.set_ylabel("true positive rate (fakes caught)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    if log_fpr:
        ax.grid(True, which="minor", axis="x", alpha=0.15)
    ax.legend(loc="lower right", fontsize=9)
    return _save(fig, path)


def plot_score_histograms(
    labels,
    scores,
    path: str | Path,
    threshold: float,
    title: str = "Score distributions",
    n_bins: int = 20,
) -> Path:
    """Overlapping step histograms of the scores of real and fake files on [0, 1]
    (20 bins), with the decision threshold as a vertical line and counts in the legend.
    Unscored (None / NaN) entries are left out and counted in the title."""
    y, s, dropped = _paired(labels, scores)
    s = np.clip(s, 0.0, 1.0)
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    fig = _new_figure()
    ax = fig.add_subplot()
    for value, name, color in ((0, "real", REAL_COLOR), (1, "fake", FAKE_COLOR)):
        part = s[y == value]
        ax.hist(part, bins=bins, histtype="step", linewidth=2, color=color, label=f"{name} (n={part.size})")
        ax.hist(part, bins=bins, histtype="stepfilled", alpha=0.15, color=color)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5, label=f"threshold = {threshold:g}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("score (P(fake))")
    ax.set_ylabel("number of files")
    ax.set_title(title + (f"  ({dropped} unscored left out)" if dropped else ""))
    ax.grid(True, alpha=0.4)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # headroom for the legend
    ax.legend(loc="best", fontsize=9)
    return _save(fig, path)


def plot_reliability(labels, probs, path: str | Path, n_bins: int = 10, title: str = "Reliability") -> Path:
    """Reliability diagram: the observed fraction of fakes in each predicted-probability
    bin (plotted at the bin's mean prediction) against the diagonal of perfect calibration,
    with the bin counts as bars on a second y axis; ECE in the title. Unscored (None / NaN)
    entries are left out (see :func:`expected_calibration_error` for the number alone)."""
    y, p, dropped = _paired(labels, probs)
    p = np.clip(p, 0.0, 1.0)
    ece = expected_calibration_error(y, p, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts, sum_p, sum_y = calibration_bins(y, p, n_bins)
    used = counts > 0

    fig = _new_figure()
    ax = fig.add_subplot()
    ax_counts = ax.twinx()
    ax_counts.bar(edges[:-1], counts, width=1.0 / n_bins, align="edge", color="lightgrey",
                  edgecolor="grey", linewidth=0.5, label="files per bin (right axis)")
    ax_counts.set_ylabel("files per bin")
    ax_counts.set_ylim(0, max(1, counts.max(initial=0)) * 1.15)
    ax.set_zorder(ax_counts.get_zorder() + 1)  # curve in front of the bars
    ax.patch.set_visible(False)

    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    if used.any():
        ax.plot(sum_p[used] / counts[used], sum_y[used] / counts[used], marker="o", linewidth=2,
                color=FAKE_COLOR, label="observed fake fraction")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("predicted probability of fake (bin mean)")
    ax.set_ylabel("observed fraction of fakes")
    ece_text = f"{ece:.4f}" if math.isfinite(ece) else "n/a"
    extra = f", {dropped} unscored left out" if dropped else ""
    ax.set_title(f"{title}  (ECE = {ece_text}, {n_bins} bins, n = {p.size}{extra})")
    ax.grid(True, alpha=0.4)
    handles, names = ax.get_legend_handles_labels()
    h2, n2 = ax_counts.get_legend_handles_labels()
    ax.legend(handles + h2, names + n2, loc="upper left", fontsize=9)
    return _save(fig, path)


def _missing_spans(t: np.ndarray, missing: np.ndarray) -> list[tuple[float, float]]:
    """Time spans covering runs of missing samples, extended half-way to the neighbours."""
    if t.size == 0:
        return []
    mids = (t[:-1] + t[1:]) / 2
    half = float(np.median(np.diff(t))) / 2 if t.size > 1 else 0.5
    spans: list[tuple[float, float]] = []
    i = 0
    while i < t.size:
        if not missing[i]:
            i += 1
            continue
        j = i
        while j + 1 < t.size and missing[j + 1]:
            j += 1
        start = mids[i - 1] if i > 0 else t[i] - half
        end = mids[j] if j < t.size - 1 else t[j] + half
        spans.append((float(start), float(end)))
        i = j + 1
    return spans


def timeline_line(times: np.ndarray, scores: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The timeline's line as (x, y), in time order: a NaN wherever the segment changes,
    so the line stops at the end of one sampled run and starts again at the next."""
    breaks = np.flatnonzero(np.diff(segments) != 0) + 1
    return np.insert(times, breaks, np.nan), np.insert(scores, breaks, np.nan)


def plot_timeline(
    times, scores, path: str | Path, threshold: float, title: str = "Per-frame scores", segments=None
) -> Path:
    """Per-frame score timeline of one video: score (P(fake), [0, 1]) against seconds,
    the threshold as a horizontal line, frames above it marked, and frames without a
    score (None / NaN: no face, unreadable) shown as shaded gaps in the line.

    ``segments`` (one id per frame, a verdict timeline's ``segment``) breaks the line
    between runs of the sampling plan: nothing was measured in the frames between them."""
    t = _as_float_array(times, "times")
    s = _as_float_array(scores, "scores")
    if t.shape != s.shape:
        raise ValueError(f"times and scores differ in length: {t.size} vs {s.size}")
    c = np.zeros(t.size, np.int64) if segments is None else np.asarray(segments, np.int64).reshape(-1)
    if c.shape != t.shape:
        raise ValueError(f"times and segments differ in length: {t.size} vs {c.size}")
    order = np.argsort(t, kind="stable")
    t, s, c = t[order], s[order], c[order]
    missing = ~np.isfinite(s)

    fig = _new_figure(TIMELINE_FIGSIZE)
    ax = fig.add_subplot()
    for k, (a, b) in enumerate(_missing_spans(t, missing)):
        ax.axvspan(a, b, color="lightgrey", alpha=0.6, linewidth=0,
                   label=f"no score ({int(missing.sum())} frames)" if k == 0 else None)
    ax.plot(*timeline_line(t, s, c), color="tab:blue", linewidth=1.5, marker="o", markersize=3, label="frame score")
    above = np.isfinite(s) & (s >= threshold)
    if above.any():
        ax.plot(t[above], s[above], linestyle="none", marker="o", markersize=4, color=FAKE_COLOR,
                label=f"at/above threshold ({int(above.sum())} frames)")
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold = {threshold:g}")
    ax.set_ylim(-0.02, 1.02)
    if t.size:
        pad = float(np.median(np.diff(t))) / 2 if t.size > 1 else 0.5
        ax.set_xlim(t[0] - pad, t[-1] + pad)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (P(fake))")
    ax.set_title(title)
    ax.grid(True, alpha=0.4)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    return _save(fig, path)


__all__ = [
    "DPI",
    "FIGSIZE",
    "TIMELINE_FIGSIZE",
    "plot_reliability",
    "plot_roc",
    "plot_score_histograms",
    "plot_timeline",
    "timeline_line",
]
