"""Calibration: fit T (and, with ``bias``, an offset) on a validation set's video logits
and write them into a new checkpoint, so every later score is calibrated without any
other file.

Part of ``eval`` because it reads a ``vidfake eval`` predictions file and measures with
its log loss; the checkpoint is read and written through ``vidfake.checkpoint`` (the
tensors pass through untouched, so torch is imported only when a checkpoint is loaded).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from vidfake.checkpoint import load_checkpoint, save_checkpoint
from vidfake.eval.evaluate import read_predictions
from vidfake.eval.metrics import log_loss
from vidfake.temporal.aggregate import AggregationConfig, fit_temperature, fit_temperature_and_bias


class CalibrationError(ValueError):
    """The predictions cannot calibrate this checkpoint."""


def calibrate_checkpoint(checkpoint: Path, predictions: Path, out: Path, bias: bool = False) -> dict:
    """Fit the checkpoint's calibration on ``predictions`` (a ``vidfake eval`` predictions
    file: its video logits and labels) and save the result as ``out``. Temperature only by
    default; with ``bias`` a class-balanced Platt fit of temperature and offset (see
    :func:`~vidfake.temporal.aggregate.fit_temperature_and_bias`)."""
    source = load_checkpoint(checkpoint)
    rows = [r for r in read_predictions(predictions) if r.get("logit", "") != ""]
    if not rows:
        raise CalibrationError(f"{predictions}: no scored file with a logit column (made by `vidfake eval`?)")
    logits = np.asarray([float(r["logit"]) for r in rows])
    labels = np.asarray([int(r["label"]) for r in rows])
    if labels.min() == labels.max():
        raise CalibrationError(f"{predictions}: calibration needs both real and fake files; all are {'fake' if labels[0] else 'real'}")
    aggregation = AggregationConfig.from_dict(source.config["aggregation"])
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
    config = dict(source.config)
    config["aggregation"] = fitted.to_dict()
    config["calibration"] = {"predictions": str(predictions), "n": int(len(rows)), "temperature": temperature,
                             "bias": offset, "log_loss_before": before, "log_loss_after": after}
    save_checkpoint(out, source.state_dict, config)
    return {"n": int(len(rows)), "temperature_before": aggregation.temperature, "temperature": temperature,
            "bias_before": aggregation.bias, "bias": offset, "log_loss_before": before, "log_loss_after": after}
