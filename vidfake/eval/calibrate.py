"""Calibration: fit T (and, with ``bias``, an offset) on a validation set's video logits
and write them into a new checkpoint, so every later score is calibrated without any
other file. An ensemble's own calibration is fitted the same way on its predictions and
written into a new ensemble file (``calibrate_ensemble``).

Part of ``eval`` because it reads a ``vidfake eval`` predictions file and measures with
its log loss; the checkpoint is read and written through ``vidfake.checkpoints.format`` (the
tensors pass through untouched, so torch is imported only when a checkpoint is loaded).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from vidfake.checkpoints.format import load_checkpoint, save_checkpoint
from vidfake.eval.evaluate import read_predictions
from vidfake.eval.metrics import log_loss
from vidfake.temporal.aggregate import AggregationConfig, fit_temperature, fit_temperature_and_bias


class CalibrationError(ValueError):
    """The predictions cannot calibrate this checkpoint."""


def fit_calibration(aggregation: AggregationConfig, predictions: Path, bias: bool = False) -> tuple[AggregationConfig, dict]:
    """``aggregation`` with its temperature (and, with ``bias``, offset) fitted on the video
    logits and labels of ``predictions`` (a ``vidfake eval`` predictions file), and the
    record of the fit (``n``, temperature, bias, log loss before and after)."""
    rows = [r for r in read_predictions(predictions) if r.get("logit", "") != ""]
    if not rows:
        raise CalibrationError(f"{predictions}: no scored file with a logit column (made by `vidfake eval`?)")
    logits = np.asarray([float(r["logit"]) for r in rows])
    labels = np.asarray([int(r["label"]) for r in rows])
    if labels.min() == labels.max():
        raise CalibrationError(f"{predictions}: calibration needs both real and fake files; all are {'fake' if labels[0] else 'real'}")
    try:
        temperature, offset = fit_temperature_and_bias(logits, labels) if bias else (fit_temperature(logits, labels), 0.0)
    except ValueError as error:
        raise CalibrationError(f"{predictions}: {error}") from None
    fitted = replace(aggregation, temperature=temperature, bias=offset)

    def loss(config: AggregationConfig) -> float:
        return log_loss(labels, [config.probability(float(z)) for z in logits])

    before, after = loss(aggregation), loss(fitted)
    if not (math.isfinite(before) and math.isfinite(after)):
        raise CalibrationError("log loss is not finite")
    record = {"predictions": str(predictions), "n": int(len(rows)), "temperature": temperature, "bias": offset,
              "log_loss_before": before, "log_loss_after": after}
    return fitted, record


def cross_fitted(rows: list[dict], column: str = "group", bias: bool = True) -> list[dict]:
    """The rows with each score recalibrated by a fit on the *other* half of the set.

    Why: a temperature (and offset) fitted on the same videos it is measured on makes
    log loss and the rates at the threshold look better than they will be on new data.
    Cross-fitting splits the set in two by ``column`` (a fixed split by the value's hash, so
    a group never sits on both sides), fits on one half, scores the other, and the other
    way round. Rows without a logit keep their score. ``CalibrationError`` when a half
    lacks one of the classes."""
    import hashlib

    from vidfake.temporal.aggregate import calibrated_probability

    def fold(row: dict) -> int:
        return hashlib.sha1(str(row.get(column, "")).encode()).digest()[0] % 2

    scored = [r for r in rows if r.get("logit", "") != ""]
    fitted: dict[int, tuple[float, float]] = {}
    for held_out in (0, 1):
        train = [r for r in scored if fold(r) != held_out]
        logits = np.asarray([float(r["logit"]) for r in train])
        labels = np.asarray([int(r["label"]) for r in train])
        if len(set(labels.tolist())) < 2:
            raise CalibrationError(f"cross-fitting by {column!r}: one half has only one class; use another column")
        fitted[held_out] = fit_temperature_and_bias(logits, labels) if bias else (fit_temperature(logits, labels), 0.0)
    out = []
    for row in rows:
        if row.get("logit", "") == "":
            out.append(row)
            continue
        temperature, offset = fitted[fold(row)]
        probability = calibrated_probability(float(row["logit"]), temperature, prob_clip=0.0, bias=offset)
        out.append({**row, "score": repr(probability)})
    return out


def _summary(before: AggregationConfig, record: dict) -> dict:
    return {"n": record["n"], "temperature_before": before.temperature, "temperature": record["temperature"],
            "bias_before": before.bias, "bias": record["bias"], "log_loss_before": record["log_loss_before"],
            "log_loss_after": record["log_loss_after"]}


def calibrate_checkpoint(checkpoint: Path, predictions: Path, out: Path, bias: bool = False) -> dict:
    """Fit the checkpoint's calibration on ``predictions`` (a ``vidfake eval`` predictions
    file: its video logits and labels) and save the result as ``out``. Temperature only by
    default; with ``bias`` a class-balanced Platt fit of temperature and offset (see
    :func:`~vidfake.temporal.aggregate.fit_temperature_and_bias`)."""
    source = load_checkpoint(checkpoint)
    aggregation = source.settings.aggregation
    fitted, record = fit_calibration(aggregation, predictions, bias)
    config = dict(source.config)
    config["aggregation"] = fitted.to_dict()
    config["calibration"] = record
    save_checkpoint(out, source.state_dict, config)
    return _summary(aggregation, record)


def calibrate_ensemble(checkpoints: list[Path], predictions: Path, out: Path, bias: bool = False) -> dict:
    """Fit an ensemble's own temperature (and bias) on ``predictions`` of that ensemble (their
    logits are the weighted mean of the members' calibrated logits) and pack it, members
    untouched, into the ensemble file ``out``. ``checkpoints``: one ensemble file, or the
    single-model files of an equally weighted ensemble, as ``--checkpoint`` gave them."""
    from vidfake.checkpoints.ensemble_file import ensemble_aggregation, load_ensemble, save_ensemble

    if len(checkpoints) == 1:  # one ensemble file: keep its members, weights, name and current calibration
        ensemble = load_ensemble(checkpoints[0])
        members, weights, aggregation = ensemble.members, ensemble.weights, ensemble.aggregation
        name, version = ensemble.name, ensemble.version
    else:
        members = [load_checkpoint(path) for path in checkpoints]
        weights, name, version = [1.0] * len(members), out.stem, ""
        aggregation = ensemble_aggregation([m.settings.aggregation for m in members], weights)
    fitted, record = fit_calibration(aggregation, predictions, bias)
    save_ensemble(out, members, weights, name=name, version=version, aggregation=fitted, calibration=record)
    return _summary(aggregation, record)
