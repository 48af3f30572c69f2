"""Temperature calibration: fit T on a validation set's video logits and write it into a
new checkpoint, so every later score is calibrated without any other file."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from vidfake.checkpoint import load_checkpoint, save_checkpoint
from vidfake.eval.evaluate import read_predictions
from vidfake.eval.metrics import log_loss
from vidfake.temporal.aggregate import AggregationConfig, calibrated_probability, fit_temperature


class CalibrationError(ValueError):
    """The predictions cannot calibrate this checkpoint."""


def calibrate_checkpoint(checkpoint: Path, predictions: Path, out: Path) -> dict:
    source = load_checkpoint(checkpoint)
    rows = [r for r in read_predictions(predictions) if r.get("logit", "") != ""]
    if not rows:
        raise CalibrationError(f"{predictions}: no scored file with a logit column (made by `vidfake eval`?)")
    logits = np.asarray([float(r["logit"]) for r in rows])
    labels = np.asarray([int(r["label"]) for r in rows])
    if labels.min() == labels.max():
        raise CalibrationError(f"{predictions}: calibration needs both real and fake files; all are {'fake' if labels[0] else 'real'}")
    aggregation = AggregationConfig.from_dict(source.config["aggregation"])
    temperature = fit_temperature(logits, labels)

    def loss(t: float) -> float:
        probs = [calibrated_probability(float(z), t, aggregation.prob_clip) for z in logits]
        return log_loss(labels, probs)

    before, after = loss(aggregation.temperature), loss(temperature)
    if not (math.isfinite(before) and math.isfinite(after)):
        raise CalibrationError("log loss is not finite")
    config = dict(source.config)
    config["aggregation"] = replace(aggregation, temperature=temperature).to_dict()
    config["calibration"] = {"predictions": str(predictions), "n": int(len(rows)), "temperature": temperature,
                             "log_loss_before": before, "log_loss_after": after}
    save_checkpoint(out, source.state_dict, config)
    return {"n": int(len(rows)), "temperature_before": aggregation.temperature, "temperature": temperature,
            "log_loss_before": before, "log_loss_after": after}
