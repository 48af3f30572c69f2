"""Evaluation plots (PNG output, ECE) and the markdown report."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidfake.eval import plots
from vidfake.eval.metrics import expected_calibration_error
from vidfake.eval.plots import plot_reliability, plot_roc, plot_score_histograms, plot_timeline
from vidfake.eval.report import NA_ONE_CLASS, fmt_number, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _size(figsize):
    return round(figsize[0] * plots.DPI), round(figsize[1] * plots.DPI)


def assert_png(path: Path, figsize=plots.FIGSIZE) -> None:
    path = Path(path)
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == _size(figsize)
        # not a blank canvas
        extrema = image.convert("L").getextrema()
        assert extrema[0] < extrema[1]


def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.15), 0, 1)
    return labels, scores


def _roc(labels, scores):
    order = np.argsort(-scores)
    y = labels[order]
    tpr = np.concatenate([[0], np.cumsum(y) / y.sum()])
    fpr = np.concatenate([[0], np.cumsum(1 - y) / (1 - y).sum()])
    return fpr, tpr


# --------------------------------------------------------------------------- ECE

def test_ece_hand_computed():
    # bins: [0.1, 0.2) holds 0.1, 0.1 with labels 0, 1 -> |0.1 - 0.5| = 0.4, weight 0.5
    #       [0.9, 1.0] holds 0.9, 0.9 with labels 1, 1 -> |0.9 - 1.0| = 0.1, weight 0.5
    ece = expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9], n_bins=10)
    assert ece == pytest.approx(0.25, abs=1e-12)


def test_ece_edges_and_perfect_calibration():
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == pytest.approx(0.0)  # 1.0 lands in the last bin
    assert expected_calibration_error([1, 1, 0, 0], [0.5, 0.5, 0.5, 0.5], n_bins=1) == pytest.approx(0.0)
    assert expected_calibration_error([1, 1], [0.25, 0.25], n_bins=2) == pytest.approx(0.75)
    assert math.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1], [0.1, 1.5])
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1], [0.1, None])
    with pytest.raises(ValueError):
        expected_calibration_error([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1, 1], [0.1, 0.2])


# --------------------------------------------------------------------------- plots

@pytest.mark.parametrize("log_fpr", [True, False])
def test_plot_roc(tmp_path, log_fpr):
    labels, scores = _toy()
    video = _roc(labels, scores)
    frame = _roc(labels, np.clip(scores + np.random.default_rng(1).normal(0, 0.2, scores.size), 0, 1))
    out = plot_roc({"video": video, "frame": frame}, tmp_path / "sub" / "roc.png",
                   title="ROC test", aucs={"video": 0.91}, log_fpr=log_fpr)
    assert out == tmp_path / "sub" / "roc.png"
    assert_png(out)


def test_plot_roc_empty_curve_and_missing_auc(tmp_path):
    out = plot_roc({"a": (np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.9, 1.0])), "empty": ([], [])},
                   tmp_path / "roc.png", aucs={"a": float("nan")})
    assert_png(out)
    with pytest.raises(ValueError):
        plot_roc({"bad": ([0.0, 1.0], [0.0])}, tmp_path / "bad.png")


def test_plot_score_histograms(tmp_path):
    labels, scores = _toy()
    scores = list(scores)
    scores[3] = None  # unscored file: left out
    out = plot_score_histograms(labels, scores, str(tmp_path / "hist.png"), threshold=0.5)
    assert isinstance(out, Path)
    assert_png(out)


def test_plot_score_histograms_one_class(tmp_path):
    assert_png(plot_score_histograms([1, 1, 1], [0.2, 0.7, 0.9], tmp_path / "h.png", threshold=0.5))


def test_plot_reliability(tmp_path):
    labels, scores = _toy()
    assert_png(plot_reliability(labels, scores, tmp_path / "rel.png", n_bins=10))
    assert_png(plot_reliability([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9], tmp_path / "rel_small.png", n_bins=5))


def test_plot_timeline_with_gaps(tmp_path):
    times = np.arange(60) / 10.0
    scores: list[float | None] = list(0.5 + 0.45 * np.sin(times))
    for i in (0, 1, 20, 21, 22, 40, 59):  # gaps at the start, middle and end
        scores[i] = None
    scores[42] = None  # leaves an isolated scored frame at 41
    out = plot_timeline(times, scores, tmp_path / "timeline.png", threshold=0.5, title="clip.mp4")
    assert_png(out, plots.TIMELINE_FIGSIZE)


def test_plot_timeline_all_missing_and_single(tmp_path):
    assert_png(plot_timeline([0.0, 0.5, 1.0], [None, None, None], tmp_path / "t1.png", 0.5, "none"),
               plots.TIMELINE_FIGSIZE)
    assert_png(plot_timeline([2.0], [0.8], tmp_path / "t2.png", 0.5, "single"), plots.TIMELINE_FIGSIZE)


def test_plots_leave_pyplot_alone(tmp_path):
    import sys

    labels, scores = _toy(50)
    plot_score_histograms(labels, scores, tmp_path / "h.png", 0.5)
    if "matplotlib.pyplot" in sys.modules:  # imported by something else: we must not add figures
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


# --------------------------------------------------------------------------- report

def _metrics(**override):
    m = {
        "n": 1000, "n_fake": 600, "n_real": 400,
        "auc": 0.987654, "auc_ci": [0.9761, 0.99312],
        "log_loss": 0.123456, "log_loss_ci": (0.1011, 0.1502), "log_loss_clip": 1e-15,
        "tpr_at_fpr_1e-3": 0.41234, "tpr_at_fpr_1e-2": 0.7777,
        "eer": 0.0512, "eer_threshold": 0.6031,
        "average_precision": 0.99123, "threshold": 0.5,
        "accuracy": 0.953, "balanced_accuracy": 0.9487,
        "confusion": {"tp": 570, "fp": 17, "tn": 383, "fn": 30},
    }
    m.update(override)
    return m


def _write(tmp_path, **override):
    kwargs = dict(
        title="Eval: DFDC sample",
        metrics=_metrics(),
        groups={
            "method": {
                "faceswap": _metrics(n=300, n_fake=300, n_real=0, accuracy=0.9),
                "real_only": {"n": 400, "n_fake": 0, "n_real": 400, "accuracy": 0.9575},
                "mixed": _metrics(n=600, auc=0.9123),
            },
            "has_audio": {True: _metrics(n=10, auc=float("nan")), False: {"n": 3, "n_fake": 3, "n_real": 0, "accuracy": 1.0}},
        },
        worst_false_positives=[{"path": "videos/real|odd_name.mp4", "score": 0.99871, "label": 0, "method": "real"}],
        worst_false_negatives=[
            {"path": "videos/fake_a.mp4", "score": 0.0123, "label": 1, "method": "faceswap", "dataset": "ff++"},
            {"path": "videos/fake_b.mp4", "score": 0.04, "label": 1, "method": "neuraltextures"},
        ],
        coverage={"total": 1010, "scored": 1000, "no_face": 7, "unreadable": 3, "policy": "excluded from metrics"},
        settings={"checkpoint": "effnet-b4-temporal", "checkpoint_version": "2024.06", "threshold": 0.5,
                  "log_loss_clip": 1e-15, "missing_policy": "excluded from metrics"},
        plots={"ROC": str(tmp_path / "plots" / "roc.png"), "Score histograms": tmp_path / "plots" / "hist 1.png"},
    )
    kwargs.update(override)
    return write_report(tmp_path, **kwargs)


def _tables(text: str) -> list[list[str]]:
    """Consecutive '|' lines grouped into tables."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _n_cols(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


def test_report_sections_and_numbers(tmp_path):
    path = _write(tmp_path)
    assert path == tmp_path / "report.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Eval: DFDC sample\n")
    for heading in ("How to read this", "## Settings", "## Overall", "## Coverage", "## Per group",
                    "### By method", "### By has_audio", "## Worst false positives",
                    "## Worst false negatives", "## Plots"):
        assert heading in text, heading
    # settings
    assert "effnet-b4-temporal" in text and "2024.06" in text and "excluded from metrics" in text
    # overall: 4 significant digits and CIs
    assert "| AUC [95% CI] | 0.9877 [0.9761, 0.9931] |" in text
    assert "| log loss [95% CI] | 0.1235 [0.1011, 0.1502] |" in text
    assert "| TPR@FPR=1e-3 | 0.4123 |" in text
    assert "| TPR@FPR=1e-2 | 0.7777 |" in text
    assert "| EER | 0.0512 |" in text
    assert "| AP | 0.9912 |" in text
    assert "| balanced accuracy | 0.9487 |" in text
    assert "| n fake | 600 |" in text and "| n real | 400 |" in text
    assert "| TP | 570 |" in text and "| FN | 30 |" in text
    assert "| actual fake | 570 | 30 |" in text and "| actual real | 17 | 383 |" in text
    # coverage with shares of the total
    assert "| scored | 1000 (99.0%) |" in text
    assert "| no face found | 7 (0.7%) |" in text
    assert "| unreadable | 3 (0.3%) |" in text
    # worst errors: pipes escaped, group columns present
    assert "`videos/real\\|odd_name.mp4`" in text and "0.9987" in text
    assert "| dataset |" in text and "neuraltextures" in text and "1 (fake)" in text
    # plots: relative, url-quoted links
    assert "![ROC](plots/roc.png)" in text
    assert "![Score histograms](plots/hist%201.png)" in text


def test_report_one_class_group_and_missing(tmp_path):
    text = _write(tmp_path).read_text(encoding="utf-8")
    real_only = next(line for line in text.splitlines() if line.startswith("| real_only |"))
    cells = [c.strip() for c in real_only.strip("|").split("|")]
    assert cells[1:4] == ["400", "0", "400"]
    assert cells[4] == NA_ONE_CLASS  # AUC
    assert cells[10] == "0.9575"  # accuracy is still given
    assert cells.count(NA_ONE_CLASS) == len(cells) - 5
    # a two-class group with a NaN metric reads plain n/a
    true_row = next(line for line in text.splitlines() if line.startswith("| True |"))
    assert "| n/a |" in true_row and NA_ONE_CLASS not in true_row


def test_report_tables_render(tmp_path):
    text = _write(tmp_path).read_text(encoding="utf-8")
    tables = _tables(text)
    assert len(tables) >= 8
    for table in tables:
        assert len(table) >= 2
        assert re.fullmatch(r"\|(:?-{3,}:?\|)+", table[1]), table[1]  # header separator row
        widths = {_n_cols(line) for line in table}
        assert len(widths) == 1, table  # every row as wide as the header


def test_report_missing_everything(tmp_path):
    path = write_report(tmp_path / "out" / "my_report.md", title="Empty", metrics={}, groups={},
                        worst_false_positives=[], worst_false_negatives=[], coverage={}, settings={}, plots={})
    assert path == tmp_path / "out" / "my_report.md"
    text = path.read_text(encoding="utf-8")
    assert "| AUC [95% CI] | n/a |" in text
    assert "_None._" in text and "Policy for files without a score: n/a." in text


def test_fmt_number():
    assert fmt_number(0.987654) == "0.9877"
    assert fmt_number(12) == "12"
    assert fmt_number(np.int64(5)) == "5"
    assert fmt_number(np.float32(0.5)) == "0.5"
    assert fmt_number(None) == "n/a" and fmt_number(float("nan")) == "n/a"
    assert fmt_number(0.99996) == "0.99996"
    assert fmt_number(1e-15) == "1e-15"
    assert fmt_number(1.0) == "1"
