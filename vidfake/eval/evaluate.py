"""``vidfake eval``: score a labelled set (resumably), then compute metrics, plots and a
report from the predictions file alone, so ``--predictions`` reproduces every number
without scoring again.

Files that could not be scored (no face, unreadable) follow an explicit policy, reported
in ``metrics.json`` and ``report.md``: ``exclude`` (default: left out of the metrics and
counted in the coverage figure) or ``prior`` (scored at the set's fraction of fakes).
"""
from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidfake.eval.datasets import RESERVED_COLUMNS, EvalItem, EvalSet
from vidfake.eval.metrics import MetricError, compute_metrics, roc_curve
from vidfake.eval.submission import write_dfdc_submission, write_image_predictions

BASE_COLUMNS = list(RESERVED_COLUMNS)
MAX_GROUPS = 12  # a column with more distinct values than this (or than a third of the files) is not a grouping
FRAME_COLUMNS = ["path", "label", "frame", "time", "score"]
MISSING_POLICIES = ("exclude", "prior")


class EvalError(RuntimeError):
    """The evaluation cannot go on (mismatched files, nothing scored)."""


def resolution_band(width: int | None, height: int | None) -> str:
    """Bands by the short side, the way videos are usually named (720p, 1080p...)."""
    if not width or not height:
        return "unknown"
    short = min(width, height)
    for limit, name in ((360, "<=360p"), (480, "480p"), (720, "720p"), (1080, "1080p")):
        if short <= limit:
            return name
    return ">1080p"


def prediction_row(item, verdict) -> dict:
    """One ``predictions.csv`` row for an item and its verdict (empty cells where there is no score)."""
    media = verdict.media or {}
    return {
        "path": str(item.path),
        "name": item.name,
        "label": item.label,
        "score": "" if verdict.score is None else f"{verdict.score:.6f}",
        "logit": "" if verdict.logit is None else f"{verdict.logit:.6f}",
        "status": verdict.status,
        "kind": verdict.kind,
        "has_audio": "" if "has_audio" not in media else str(bool(media["has_audio"])).lower(),
        "resolution": resolution_band(media.get("width"), media.get("height")),
        "faces": _faces_group(len(verdict.tracks)) if verdict.status == "ok" else "0",
        **item.groups,
    }


def _faces_group(n: int) -> str:
    return str(n) if n < 3 else "3+"


def score_set(eval_set: EvalSet, scorer, out_dir: Path, frames: bool = False, progress: bool = True,
              context=None) -> Path | None:
    """Score every item into ``out_dir/predictions.csv``, appending; items already there
    are reused, so an interrupted run resumes where it stopped. With a distributed
    ``context`` (``vidfake.distributed.DistContext``) each process scores its share into a
    shard under ``out_dir/shards`` and rank 0 appends every row in the set's order; the
    other processes return None."""

    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path, frame_path = out_dir / "predictions.csv", out_dir / "predictions_frames.csv"
    group_keys = sorted({k for item in eval_set.items for k in item.groups})
    columns = BASE_COLUMNS + [k for k in group_keys if k not in BASE_COLUMNS]
    done = {row["path"] for row in read_predictions(pred_path)} if pred_path.exists() else set()
    if pred_path.exists() and _csv_header(pred_path) != columns:
        raise EvalError(f"{pred_path} has other columns than this dataset gives; use another --out")
    todo = [item for item in eval_set.items if str(item.path) not in done]
    sharded = context is not None and context.distributed
    from vidfake.scoring.files import score_files  # torch-free to import, as eval must stay

    shards = out_dir / "shards"
    if sharded:  # every process scores its share; rank 0 gets all verdicts in order and writes them
        verdicts = score_files(todo, scorer, resume=True, context=context, progress=progress, shards=shards)
        if verdicts is None:  # another process than rank 0
            return None
    with _appender(pred_path, columns) as rows, _appender(frame_path, FRAME_COLUMNS, enabled=frames) as frame_rows:

        def write(item: EvalItem, verdict) -> None:
            rows.writerow(prediction_row(item, verdict))
            for point in verdict.timeline if frame_rows is not None else ():
                if point["score"] is not None:
                    frame_rows.writerow({"path": str(item.path), "label": item.label, **point})

        if sharded:
            for item, verdict in zip(todo, verdicts):
                write(item, verdict)
        else:  # one process: each row is on disk as soon as its file is scored
            from vidfake.distributed.context import DistContext

            score_files(todo, scorer, context=DistContext(), progress=progress, on_verdict=write)
    if sharded:
        from vidfake.distributed.shard_store import ShardStore

        ShardStore(shards, rank=0).clear()
    return pred_path


class _appender:
    """Appends rows to a CSV (header written once), flushing each row to disk so an
    interrupted run keeps every file it scored."""

    def __init__(self, path: Path, columns: list[str], enabled: bool = True):
        self.path, self.columns, self.enabled = path, columns, enabled

    def __enter__(self) -> _appender | None:
        if not self.enabled:
            return None
        new = not self.path.exists()
        self.handle = self.path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, self.columns, extrasaction="ignore")
        if new:
            self.writer.writeheader()
        return self

    def writerow(self, row: dict) -> None:
        self.writer.writerow(row)
        self.handle.flush()

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.handle.close()


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def read_predictions(path: Path) -> list[dict]:
    """The rows of a ``predictions.csv``, as strings, so a report can be rebuilt without rescoring."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Scored:
    """Labels and scores as arrays for the metrics, with the rows they came from."""
    labels: np.ndarray
    scores: np.ndarray
    rows: list[dict]


def scored_rows(rows: Sequence[dict], policy: str = "exclude") -> Scored:
    """The rows the metrics use, by the missing-score policy."""
    if policy not in MISSING_POLICIES:
        raise EvalError(f"unknown policy {policy!r}: use {' or '.join(MISSING_POLICIES)}")
    labels = np.asarray([int(r["label"]) for r in rows])
    prior = float(labels.mean()) if len(labels) else 0.5
    kept = [r for r in rows if r["score"] != ""] if policy == "exclude" else list(rows)
    scores = np.asarray([float(r["score"]) if r["score"] != "" else prior for r in kept])
    return Scored(np.asarray([int(r["label"]) for r in kept]), scores, kept)


def _group_metrics(rows: list[dict], column: str, scored: Scored, threshold: float, clip: float, n_boot: int) -> dict:
    by_value: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(scored.rows):
        by_value[row.get(column) or "unknown"].append(i)
    result = {}
    for value, idx in sorted(by_value.items()):
        labels, scores = scored.labels[idx], scored.scores[idx]
        result[value] = _metrics_or_counts(labels, scores, threshold, clip, n_boot)
    return result


def _metrics_or_counts(labels: np.ndarray, scores: np.ndarray, threshold: float, clip: float, n_boot: int) -> dict:
    """Full metrics, or counts and accuracy where a group holds one class only."""
    try:
        return compute_metrics(labels, scores, threshold=threshold, clip=clip, n_boot=n_boot)
    except MetricError:
        predicted = scores >= threshold
        return {
            "n": int(len(labels)), "n_fake": int(labels.sum()), "n_real": int(len(labels) - labels.sum()),
            "accuracy": float(np.mean(predicted == labels.astype(bool))) if len(labels) else None,
        }


def _fakes_vs_all_reals(column: str, scored: Scored, threshold: float, clip: float, n_boot: int) -> dict:
    """Each group that holds fakes but no reals, measured against every real file of the set:
    the usual per-method protocol (FF++), and the only AUC a fake-only source can have."""
    by_value: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(scored.rows):
        by_value[row.get(column) or "unknown"].append(i)
    reals = [i for i, label in enumerate(scored.labels) if label == 0]
    result = {}
    for value, idx in sorted(by_value.items()):
        if reals and all(scored.labels[i] == 1 for i in idx):
            both = idx + reals
            result[value] = _metrics_or_counts(scored.labels[both], scored.scores[both], threshold, clip, n_boot)
    return result


def evaluate_predictions(
    rows: Sequence[dict],
    threshold: float,
    clip: float,
    policy: str = "exclude",
    n_boot: int = 1000,
    frame_rows: Sequence[dict] | None = None,
    by: Sequence[str] = (),
) -> dict:
    """Every number of the report, from prediction rows alone. ``by``: columns always
    reported per value (e.g. ``source``), however many values they have."""
    if not rows:
        raise EvalError("the predictions are empty: nothing was scored")
    coverage = dict(Counter(r["status"] for r in rows))
    coverage.update(total=len(rows), scored=coverage.get("ok", 0), policy=policy)
    scored = scored_rows(rows, policy)
    if len(scored.rows) == 0:
        raise EvalError(f"no file has a score ({coverage}); nothing to measure")
    try:
        overall = compute_metrics(scored.labels, scored.scores, threshold=threshold, clip=clip, n_boot=n_boot)
    except MetricError as error:
        raise EvalError(f"cannot compute metrics: {error}") from None
    group_columns = [c for c in rows[0] if c not in ("path", "name", "label", "score", "logit", "status")]
    groups = {c: _group_metrics(list(rows), c, scored, threshold, clip, n_boot) for c in group_columns}
    missing = [c for c in by if c not in group_columns]
    if missing:
        raise EvalError(f"no column {', '.join(missing)} in the predictions (columns: {', '.join(group_columns)})")
    groups = {c: g for c, g in groups.items()
              if c in by or 1 < len(g) <= min(MAX_GROUPS, max(4, len(rows) // 3))}
    versus_reals = {c: _fakes_vs_all_reals(c, scored, threshold, clip, n_boot) for c in groups}
    order = np.argsort(scored.scores)
    real_idx = [i for i in order[::-1] if scored.labels[i] == 0 and scored.scores[i] >= threshold][:10]
    fake_idx = [i for i in order if scored.labels[i] == 1 and scored.scores[i] < threshold][:10]
    result = {
        "video": overall,
        "coverage": coverage,
        "groups": groups,
        "fakes_vs_all_reals": {c: v for c, v in versus_reals.items() if v},
        "worst_false_positives": [_brief(scored.rows[i]) for i in real_idx],
        "worst_false_negatives": [_brief(scored.rows[i]) for i in fake_idx],
    }
    if frame_rows:
        labels = np.asarray([int(r["label"]) for r in frame_rows])
        scores = np.asarray([float(r["score"]) for r in frame_rows])
        result["frame"] = _metrics_or_counts(labels, scores, threshold, clip, n_boot)
    return result


def _brief(row: dict) -> dict:
    keep = ("path", "score", "label", "status")
    return {**{k: row[k] for k in keep}, **{k: v for k, v in row.items() if k not in BASE_COLUMNS}}


def roc_points(rows: Sequence[dict], policy: str = "exclude") -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the ROC curve, for plotting."""
    scored = scored_rows(rows, policy)
    fpr, tpr, _ = roc_curve(scored.labels, scored.scores)
    return fpr, tpr


def write_submissions(rows: Sequence[dict], out_dir: Path, policy: str) -> list[Path]:
    """``prediction.txt`` (img_name,y_pred) for image sets, DFDC's ``submission.csv``
    (filename,label) for videos. Files without a score appear only under the prior
    policy; with ``exclude`` they are left out (the report says how many)."""
    scored = scored_rows(rows, policy)
    written = []
    images = [r for r in scored.rows if r["kind"] == "image"]
    videos = [r for r in scored.rows if r["kind"] == "video"]
    score_of = {id(r): s for r, s in zip(scored.rows, scored.scores)}
    if images:
        written.append(write_image_predictions(out_dir / "prediction.txt", [(r["name"], score_of[id(r)]) for r in images]))
    if videos:
        rows_out = [(Path(r["path"]).name, score_of[id(r)]) for r in videos]
        written.append(write_dfdc_submission(out_dir / "submission.csv", rows_out))
    return written


def save_json(data: dict, path: Path) -> None:
    """Write ``data`` as indented JSON; numpy numbers are written as floats."""
    path.write_text(json.dumps(data, indent=2, default=float))
