"""Write an evaluation run's ``report.md``: settings, overall metrics with confidence
intervals, coverage, per-group tables, the worst errors and the plots.

The metric dicts are those of ``vidfake.eval.metrics.compute_metrics`` (keys: n, n_fake,
n_real, auc, auc_ci, log_loss, log_loss_ci, log_loss_clip, "tpr_at_fpr_1e-3",
"tpr_at_fpr_1e-2", eer, eer_threshold, average_precision, threshold, accuracy,
balanced_accuracy, confusion {tp, fp, tn, fn}). Any key may be missing or NaN: it is
written "n/a", or "n/a (one class)" in a group that holds only real or only fake files.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from urllib.parse import quote

NA = "n/a"
NA_ONE_CLASS = "n/a (one class)"

HOW_TO_READ = (
    "Label 1 = fake, 0 = real; a score is the predicted probability that a file is fake. "
    "AUC, TPR@FPR, AP and accuracy: higher is better; log loss, EER and ECE: lower is better. "
    "TPR@FPR=1e-3 is the share of fakes caught when only 1 in 1000 real files is flagged. "
    "Brackets give 95% confidence intervals."
)

# (key, column / row heading) for the metric tables, in order.
METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("n_fake", "n fake"),
    ("n_real", "n real"),
    ("auc", "AUC [95% CI]"),
    ("log_loss", "log loss [95% CI]"),
    ("tpr_at_fpr_1e-3", "TPR@FPR=1e-3"),
    ("tpr_at_fpr_1e-2", "TPR@FPR=1e-2"),
    ("eer", "EER"),
    ("average_precision", "AP"),
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
)
CONFUSION_KEYS = ("tp", "fp", "tn", "fn")
# Keys that need only one class and so are never "n/a (one class)".
_ONE_CLASS_OK = {"n", "n_fake", "n_real", "accuracy", "threshold"}
_CI_KEYS = {"auc": "auc_ci", "log_loss": "log_loss_ci"}

SETTINGS_LABELS = {
    "checkpoint": "checkpoint",
    "checkpoint_name": "checkpoint",
    "checkpoint_version": "checkpoint version",
    "version": "checkpoint version",
    "threshold": "decision threshold (score >= threshold -> fake)",
    "log_loss_clip": "log-loss clip (probabilities clipped to [clip, 1 - clip])",
    "missing_policy": "policy for files without a score",
    "no_score_policy": "policy for files without a score",
    "policy": "policy for files without a score",
    "keyframe_interval": "face search on every K-th sampled frame (empty: the model's own)",
}
COVERAGE_LABELS = {
    "total": "files in the set",
    "n_files": "files in the set",
    "files": "files in the set",
    "scored": "scored",
    "n_scored": "scored",
    "no_face": "no face found",
    "n_no_face": "no face found",
    "unreadable": "unreadable",
    "n_unreadable": "unreadable",
    "error": "failed with an error",
    "errors": "failed with an error",
}
_COVERAGE_TOTAL_KEYS = ("total", "n_files", "files")
_POLICY_KEYS = ("policy", "missing_policy", "no_score_policy")


# --------------------------------------------------------------------------- formatting

def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, Real) and not isinstance(value, Integral):
        return math.isnan(float(value))
    return False


def fmt_number(value) -> str:
    """Integers as they are; other numbers with 4 significant digits ("n/a" for None/NaN).
    A value that 4 digits would round to exactly 0 or 1 gets more digits (0.99996, not 1)."""
    if _is_missing(value):
        return NA
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        x = float(value)
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        text = f"{x:.4g}"
        if float(text) in (0.0, 1.0) and float(text) != x:
            text = f"{x:.6g}"
        return text
    return str(value)


def _fmt_count(value) -> str:
    if isinstance(value, Real) and not isinstance(value, (bool, Integral)) and not _is_missing(value):
        if float(value).is_integer():
            return str(int(value))
    return fmt_number(value)


def _fmt_ci(ci) -> str | None:
    if ci is None:
        return None
    try:
        low, high = list(ci)
    except (TypeError, ValueError):
        return None
    if _is_missing(low) or _is_missing(high):
        return None
    return f"[{fmt_number(low)}, {fmt_number(high)}]"


def _one_class(metrics: Mapping) -> bool:
    return any(metrics.get(k) == 0 for k in ("n_fake", "n_real") if not _is_missing(metrics.get(k)))


def metric_cell(metrics: Mapping, key: str) -> str:
    """The text for one metric of one metrics dict (with its CI where there is one)."""
    value = metrics.get(key)
    if _is_missing(value):
        return NA_ONE_CLASS if key not in _ONE_CLASS_OK and _one_class(metrics) else NA
    if key in ("n", "n_fake", "n_real"):
        return _fmt_count(value)
    text = fmt_number(value)
    ci = _fmt_ci(metrics.get(_CI_KEYS[key])) if key in _CI_KEYS else None
    return f"{text} {ci}" if ci else text


def _confusion_cell(metrics: Mapping, key: str) -> str:
    confusion = metrics.get("confusion")
    if isinstance(confusion, Mapping) and not _is_missing(confusion.get(key)):
        return _fmt_count(confusion[key])
    return NA_ONE_CLASS if _one_class(metrics) else NA


def _cell(value) -> str:
    """Any value as text safe inside a markdown table cell."""
    if isinstance(value, (Mapping, list, tuple)):
        text = json.dumps(value, default=str, ensure_ascii=False)
    elif isinstance(value, Real) or value is None:
        text = fmt_number(value)
    else:
        text = str(value)
    return text.replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def _code(text: str) -> str:
    text = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return f"``{text}``" if "`" in text else f"`{text}`"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: Sequence[str] | None = None) -> list[str]:
    """A GitHub-flavoured markdown table (header row, separator row, body rows)."""
    align = align or ["left"] * len(headers)
    sep = {"left": "---", "right": "---:", "center": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(sep[a] for a in align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _humanize(key: str) -> str:
    return str(key).replace("_", " ")


# --------------------------------------------------------------------------- sections

def _settings_section(settings: Mapping) -> list[str]:
    lines = ["## Settings", ""]
    if not settings:
        return lines + ["_No settings recorded._", ""]
    rows = [[_cell(SETTINGS_LABELS.get(k, _humanize(k))), _cell(v)] for k, v in settings.items()]
    return lines + _table(["setting", "value"], rows) + [""]


def _overall_section(metrics: Mapping) -> list[str]:
    lines = ["## Overall", ""]
    rows = [[heading, metric_cell(metrics, key)] for key, heading in METRIC_ROWS]
    rows.append(["decision threshold", metric_cell(metrics, "threshold")])
    rows.append(["EER threshold", metric_cell(metrics, "eer_threshold")])
    rows.append(["log-loss clip", metric_cell(metrics, "log_loss_clip")])
    for key in CONFUSION_KEYS:
        rows.append([key.upper(), _confusion_cell(metrics, key)])
    lines += _table(["metric", "value"], rows, ["left", "right"])
    lines += ["", "Confusion matrix at the decision threshold:", ""]
    lines += _table(
        ["", "predicted fake", "predicted real"],
        [["actual fake", _confusion_cell(metrics, "tp"), _confusion_cell(metrics, "fn")],
         ["actual real", _confusion_cell(metrics, "fp"), _confusion_cell(metrics, "tn")]],
        ["left", "right", "right"],
    )
    return lines + [""]


def _coverage_section(coverage: Mapping, settings: Mapping) -> list[str]:
    lines = ["## Coverage", ""]
    total = next((coverage[k] for k in _COVERAGE_TOTAL_KEYS if not _is_missing(coverage.get(k))), None)
    rows = []
    for key, value in coverage.items():
        if key in _POLICY_KEYS:
            continue
        text = _cell(value)
        if (key not in _COVERAGE_TOTAL_KEYS and isinstance(total, Real) and total
                and isinstance(value, Real) and not isinstance(value, bool) and not _is_missing(value)):
            text += f" ({100.0 * float(value) / float(total):.1f}%)"
        rows.append([_cell(COVERAGE_LABELS.get(key, _humanize(key))), text])
    if rows:
        lines += _table(["files", "count"], rows, ["left", "right"]) + [""]
    else:
        lines += ["_No coverage recorded._", ""]
    policy = next((coverage[k] for k in _POLICY_KEYS if coverage.get(k) is not None), None)
    if policy is None:
        policy = next((settings[k] for k in _POLICY_KEYS if settings.get(k) is not None), None)
    lines += [f"Policy for files without a score: {_cell(policy) if policy is not None else NA}.", ""]
    return lines


def _groups_section(groups: Mapping[str, Mapping[str, Mapping]], heading: str = "## Per group",
                    explanation: str = "") -> list[str]:
    lines = [heading, ""] + ([explanation, ""] if explanation else [])
    if not groups:
        return lines + ["_No groupings._", ""]
    metric_headers = [h for _, h in METRIC_ROWS] + [k.upper() for k in CONFUSION_KEYS]
    align = ["left"] + ["right"] * len(metric_headers)
    for grouping, by_value in groups.items():
        headers = [_cell(grouping)] + metric_headers
        lines += [f"### By {_cell(grouping)}", ""]
        if not by_value:
            lines += ["_No groups._", ""]
            continue
        rows = []
        for value, metrics in by_value.items():
            row = [_cell(value)] + [metric_cell(metrics, key) for key, _ in METRIC_ROWS]
            row += [_confusion_cell(metrics, key) for key in CONFUSION_KEYS]
            rows.append(row)
        lines += _table(headers, rows, align) + [""]
    return lines


def _errors_section(heading: str, explanation: str, items: Sequence[Mapping]) -> list[str]:
    lines = [f"## {heading}", "", explanation, ""]
    if not items:
        return lines + ["_None._", ""]
    columns = ["path", "score", "label"]
    for item in items:
        for key in item:
            if key not in columns:
                columns.append(key)
    rows = []
    for rank, item in enumerate(items, 1):
        row = [str(rank)]
        for key in columns:
            value = item.get(key)
            if key == "path" and value is not None:
                row.append(_code(value))
            elif key == "label":
                row.append(_label_text(value))
            else:
                row.append(_cell(value))
        rows.append(row)
    align = ["right", "left", "right"] + ["left"] * (len(columns) - 2)
    return lines + _table(["#"] + [_cell(c) for c in columns], rows, align) + [""]


def _label_text(value) -> str:
    if isinstance(value, (bool, Integral)) or (isinstance(value, Real) and not _is_missing(value)):
        if float(value) == 1:
            return "1 (fake)"
        if float(value) == 0:
            return "0 (real)"
    return _cell(value)


def _link(target: str | Path, base: Path) -> str:
    target = Path(target)
    try:
        rel = Path(os.path.relpath(target.resolve(), base.resolve()))
    except ValueError:  # another drive (Windows)
        rel = target
    return quote(rel.as_posix())


def _plots_section(plots: Mapping[str, str], base: Path) -> list[str]:
    lines = ["## Plots", ""]
    if not plots:
        return lines + ["_No plots._", ""]
    for name, target in plots.items():
        alt = str(name).replace("[", "(").replace("]", ")").replace("\n", " ")
        lines += [f"### {_cell(name)}", "", f"![{alt}]({_link(target, base)})", ""]
    return lines


def _as_number(value):
    """A predictions-file cell (text) as a number where it is one, else unchanged."""
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _heatmaps_section(entries: Sequence[Mapping], base: Path) -> list[str]:
    """The worst errors' heat maps: per file, its pictures with their names and scores."""
    lines = ["## Heat maps of the worst errors", "",
             "Where the model saw a forgery on the most suspicious frames of each face (hotter colours; the "
             "white box is the hottest region), for the real files it flagged and the fakes it passed.", ""]
    counts: dict[str, int] = {}
    for entry in entries:
        kind = str(entry.get("error", ""))
        counts[kind] = counts.get(kind, 0) + 1
        heading = {"false_positive": "False positive", "false_negative": "False negative"}.get(kind, _cell(kind))
        lines += [f"### {heading} {counts[kind]}: {_code(str(entry.get('path')))}", "",
                  f"Score {fmt_number(_as_number(entry.get('score')))}, label {_label_text(_as_number(entry.get('label')))}"
                  + (f"; {entry['method']}." if entry.get("method") else "."), ""]
        if not entry.get("maps"):
            lines += [f"_No heat map (status {entry.get('status')})._", ""]
        for picture in entry.get("maps", []):
            name = Path(picture["file"]).name
            lines += [f"![{name}]({_link(picture['file'], base)})", "",
                      f"{_code(name)}: track {picture['track']}, frame {picture['frame']} at {picture['time']:.2f} s, "
                      f"frame score {fmt_number(picture['score'])}, peak {fmt_number(picture['peak'])}, "
                      f"region {picture['box']}", ""]
    return lines


# --------------------------------------------------------------------------- entry point

def write_report(
    path: str | Path,
    *,
    title: str,
    metrics: Mapping,
    groups: Mapping[str, Mapping[str, Mapping]],
    worst_false_positives: Sequence[Mapping],
    fakes_vs_reals: Mapping[str, Mapping[str, Mapping]] | None = None,
    worst_false_negatives: Sequence[Mapping],
    coverage: Mapping,
    settings: Mapping,
    plots: Mapping[str, str | Path],
    heatmaps: Sequence[Mapping] | None = None,
) -> Path:
    """Write the markdown report and return its path.

    ``path`` is the report file, or a directory (existing, or without a ``.md`` suffix) in
    which ``report.md`` is written. ``groups`` maps a grouping name (method, dataset, ...)
    to {group value: metrics dict}; ``fakes_vs_reals`` likewise, for the groups without real
    files measured against all real files; ``worst_*`` are dicts with path, score, label and any
    group columns; ``plots`` maps a caption to an image path, linked relative to the report;
    ``heatmaps``: the worst errors' heat maps (``vidfake.eval.error_maps``), when drawn.
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() != ".md":
        path = path / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    threshold = metrics.get("threshold", settings.get("threshold"))
    thr = fmt_number(threshold)

    lines = [f"# {title}", "", f"_How to read this:_ {HOW_TO_READ}", ""]
    lines += _settings_section(settings)
    lines += _overall_section(metrics)
    lines += _coverage_section(coverage, settings)
    lines += _groups_section(groups)
    if fakes_vs_reals:
        lines += _groups_section(fakes_vs_reals, "## Fake-only groups against all real files", (
            "A group with fakes and no real file has no AUC of its own: here its fakes are ranked against "
            "every real file of the set (the per-method protocol of FaceForensics++)."))
    lines += _errors_section(
        "Worst false positives",
        f"Real files with the highest scores (flagged as fake at threshold {thr}).",
        worst_false_positives,
    )
    lines += _errors_section(
        "Worst false negatives",
        f"Fake files with the lowest scores (passed as real at threshold {thr}).",
        worst_false_negatives,
    )
    if heatmaps is not None:
        lines += _heatmaps_section(heatmaps, path.parent)
    lines += _plots_section(plots, path.parent)
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    return path


__all__ = ["NA", "NA_ONE_CLASS", "fmt_number", "metric_cell", "write_report"]
