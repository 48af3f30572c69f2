"""Everything ``vidfake eval`` writes next to ``predictions.csv``: metrics.json, the
plots, report.md and the submission files, all derived from the predictions alone."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidfake.eval.evaluate import (
    evaluate_predictions,
    read_predictions,
    roc_points,
    save_json,
    scored_rows,
    write_submissions,
)
from vidfake.eval.metrics import DFDC_CLIP, expected_calibration_error, paired_bootstrap_difference, roc_auc
from vidfake.eval.plots import plot_reliability, plot_roc, plot_score_histograms
from vidfake.eval.report import write_report

SETTINGS_FILE = "eval_settings.json"


@dataclass(frozen=True)
class EvalSettings:
    """The choices an evaluation ran with, saved next to its report so it can be rebuilt the same way."""
    threshold: float = 0.5
    clip: float = DFDC_CLIP
    policy: str = "exclude"
    n_boot: int = 1000
    checkpoint: str = ""
    checkpoint_version: str = ""
    checkpoint_sha256: str = ""  # whose predictions these are: a resumed run must be scored by the same model
    by: tuple[str, ...] = ()  # columns always reported per value
    cross_fit: str = ""  # recalibrate each half of the set on the other, split by this column ("": as scored)
    keyframe_interval: int | None = None  # the face search's interval where it overrode the model's (None: the model's)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by", tuple(self.by))  # a list when read back from JSON

    def save(self, out_dir: Path) -> None:
        """Write the settings into the report folder, whole or not at all (several processes
        of a distributed run may write it while another reads it)."""
        partial = out_dir / f".{SETTINGS_FILE}.{os.getpid()}"
        partial.write_text(json.dumps(self.__dict__, indent=2))
        os.replace(partial, out_dir / SETTINGS_FILE)

    @classmethod
    def load(cls, folder: Path) -> EvalSettings | None:
        """The settings saved in ``folder``, or None when it has none."""
        path = folder / SETTINGS_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def scored_unlike(self, folder: Path) -> str | None:
        """Why the predictions already in ``folder`` were not scored as this run would score
        them (another model, or another face-search interval), or None when they were, or
        when the folder does not say (no predictions, or a report from before the model's
        checksum was recorded). Resuming would otherwise mix two models' scores silently."""
        previous = EvalSettings.load(folder) if (folder / "predictions.csv").exists() else None
        if previous is None or not previous.checkpoint_sha256:
            return None
        if previous.checkpoint_sha256 != self.checkpoint_sha256:
            return (f"{folder / 'predictions.csv'} holds predictions of {previous.checkpoint} "
                    f"{previous.checkpoint_version} ({previous.checkpoint_sha256[:12]}), not of {self.checkpoint} "
                    f"{self.checkpoint_version} ({self.checkpoint_sha256[:12]})")
        if previous.keyframe_interval != self.keyframe_interval:
            return (f"{folder / 'predictions.csv'} was scored with --keyframe-interval {previous.keyframe_interval}, "
                    f"this run asks for {self.keyframe_interval}")
        return None


def build_report(pred_path: Path, out_dir: Path, settings: EvalSettings, title: str = "vidfake evaluation",
                 heatmaps: Callable[[list[dict]], list[dict]] | None = None, n_heatmaps: int = 3) -> dict:
    """Compute every number from ``pred_path`` and write the report folder. ``heatmaps``:
    draws the maps of the ``n_heatmaps`` worst false positives and false negatives (rows
    with ``kind`` and ``error``, as ``vidfake.eval.error_maps.draw_error_maps`` takes them)
    for the report's section on them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = read_predictions(pred_path)
    if settings.cross_fit:
        from vidfake.eval.calibrate import cross_fitted

        rows = cross_fitted(rows, settings.cross_fit)
    frame_path = pred_path.with_name("predictions_frames.csv")
    frame_rows = read_predictions(frame_path) if frame_path.exists() else None
    metrics = evaluate_predictions(rows, settings.threshold, settings.clip, settings.policy, settings.n_boot, frame_rows,
                                   by=settings.by)
    scored = scored_rows(rows, settings.policy)
    metrics["video"]["ece"] = expected_calibration_error(scored.labels, scored.scores)
    metrics["settings"] = settings.__dict__
    plots = {
        "ROC": plot_roc(_curves(rows, frame_rows, settings.policy), out_dir / "roc.png",
                        aucs=_aucs(metrics)).name,
        "Scores by class": plot_score_histograms(scored.labels, scored.scores, out_dir / "scores.png",
                                                 settings.threshold).name,
        "Reliability": plot_reliability(scored.labels, scored.scores, out_dir / "reliability.png").name,
    }
    metrics["submissions"] = [p.name for p in write_submissions(rows, out_dir, settings.policy)]
    if heatmaps is not None:
        kind_of = {r["path"]: r["kind"] for r in rows}
        worst = [{**row, "kind": kind_of.get(row["path"]), "error": error}
                 for error, key in (("false_positive", "worst_false_positives"), ("false_negative", "worst_false_negatives"))
                 for row in metrics[key][:n_heatmaps]]
        metrics["heatmaps"] = heatmaps(worst)
    save_json(metrics, out_dir / "metrics.json")
    write_report(
        out_dir / "report.md", title=title, metrics=metrics["video"], groups=metrics["groups"],
        fakes_vs_reals=metrics["fakes_vs_all_reals"],
        worst_false_positives=metrics["worst_false_positives"],
        worst_false_negatives=metrics["worst_false_negatives"],
        coverage=metrics["coverage"], settings=settings.__dict__, plots=plots, heatmaps=metrics.get("heatmaps"),
    )
    return metrics


def _curves(rows, frame_rows, policy) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    curves = {"video": roc_points(rows, policy)}
    if frame_rows:
        try:
            curves["frame"] = roc_points([{**r, "status": "ok"} for r in frame_rows], "exclude")
        except ValueError:
            pass  # one class among frames: no frame curve
    return curves


def _aucs(metrics: dict) -> dict[str, float]:
    aucs = {"video": metrics["video"]["auc"]}
    if "frame" in metrics and "auc" in metrics["frame"]:
        aucs["frame"] = metrics["frame"]["auc"]
    return aucs


def compare_predictions(a_path: Path, b_path: Path, out_dir: Path, n_boot: int = 1000) -> dict:
    """Two detectors on the files both scored: AUCs, the difference and its paired
    bootstrap interval, and both ROC curves in one plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    a = {r["path"]: r for r in read_predictions(a_path) if r["score"] != ""}
    b = {r["path"]: r for r in read_predictions(b_path) if r["score"] != ""}
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError(f"{a_path} and {b_path} have no scored file in common")
    mismatched = [p for p in common if a[p]["label"] != b[p]["label"]]
    if mismatched:
        raise ValueError(f"labels differ between the two files for {len(mismatched)} file(s), e.g. {mismatched[0]}")
    labels = np.asarray([int(a[p]["label"]) for p in common])
    scores_a = np.asarray([float(a[p]["score"]) for p in common])
    scores_b = np.asarray([float(b[p]["score"]) for p in common])
    diff = paired_bootstrap_difference(roc_auc, labels, scores_a, scores_b, n_boot=n_boot)
    names = (f"A: {a_path.parent.name}/{a_path.name}", f"B: {b_path.parent.name}/{b_path.name}")
    result = {
        "files_compared": len(common),
        "only_in_a": len(set(a) - set(b)),
        "only_in_b": len(set(b) - set(a)),
        "a": {"predictions": str(a_path), "auc": roc_auc(labels, scores_a)},
        "b": {"predictions": str(b_path), "auc": roc_auc(labels, scores_b)},
        "auc_difference": diff,
    }
    rows_a = [{"label": a[p]["label"], "score": a[p]["score"]} for p in common]
    rows_b = [{"label": b[p]["label"], "score": b[p]["score"]} for p in common]
    plot_roc({names[0]: roc_points(rows_a), names[1]: roc_points(rows_b)}, out_dir / "roc_compare.png",
             aucs={names[0]: result["a"]["auc"], names[1]: result["b"]["auc"]}, title="ROC: A vs B")
    save_json(result, out_dir / "compare.json")
    return result
