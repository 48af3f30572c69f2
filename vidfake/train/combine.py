"""Fit how much an added score (a new head's logit, another member's) should count, on
development videos, cross-fitted by source.

A head such as the mouth-motion head adds ``weight * its logit`` to the detector's clip
logit. The weight is chosen where the model is chosen, on wild-dev; but a weight fitted
on the same videos it is measured on flatters the result. So the videos are split into
``folds`` by their source (a fixed split by the source's hash: a repository never sits on
both sides), a logistic regression ``label ~ a * base + b * added + c`` is fitted on the
other folds, and each fold's videos are scored as the model would score them with that
fit's weight: ``base + (b / a) * added`` (the scale and offset are calibration's business,
fitted separately, so they are not allowed to differ between folds and blur the pooled
ranking). The AUC of those held-out scores is what gets reported; the weight that ships
(``b / a``, in units of the base logit) is then fitted on all of the videos.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from vidfake.eval.metrics import bootstrap_ci, paired_bootstrap_difference, roc_auc

__all__ = ["Combination", "fit_logistic", "combine_cross_fitted", "fold_of"]


def fold_of(source: str, folds: int) -> int:
    """The fold of a source: a fixed hash, the same on every run and machine."""
    return hashlib.sha1(source.encode()).digest()[0] % folds


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> np.ndarray:
    """Weights ``(w_1..w_k, bias)`` of a logistic regression by Newton's method, with a
    small L2 penalty on the weights (not the bias) so separable data still converges."""
    x = np.column_stack([np.asarray(features, np.float64), np.ones(len(labels))])
    y = np.asarray(labels, np.float64)
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass(frozen=True)
class Combination:
    """``weight``: the added score's weight in base-logit units (fitted on all videos);
    ``held_out``: the cross-fitted combined scores, one per video; ``auc_base``,
    ``auc_combined`` (cross-fitted) with 95 % intervals and their paired difference."""

    weight: float
    held_out: np.ndarray
    auc_base: float
    auc_base_95: tuple[float, float]
    auc_combined: float
    auc_combined_95: tuple[float, float]
    difference: dict
    videos: int

    def to_dict(self) -> dict:
        """Plain values for JSON (the held-out scores left out)."""
        return {"weight": self.weight, "videos": self.videos, "auc_base": self.auc_base,
                "auc_base_95": list(self.auc_base_95), "auc_combined": self.auc_combined,
                "auc_combined_95": list(self.auc_combined_95), "difference": self.difference}


def combine_cross_fitted(base: np.ndarray, added: np.ndarray, labels: np.ndarray, sources: np.ndarray,
                         folds: int = 5) -> Combination:
    """Cross-fit ``label ~ a * base + b * added + c`` over ``folds`` source folds (see the
    module docstring). Raises ``ValueError`` when a training side lacks a class."""
    base, added = np.asarray(base, np.float64), np.asarray(added, np.float64)
    labels = np.asarray(labels, int)
    fold = np.array([fold_of(str(s), folds) for s in sources])
    features = np.column_stack([base, added])
    held_out = np.zeros(len(labels))
    for k in range(folds):
        test = fold == k
        if not test.any():
            continue
        train = ~test
        if len(set(labels[train].tolist())) < 2:
            raise ValueError(f"fold {k}: the other folds hold one class only; use fewer folds")
        a, b, _ = fit_logistic(features[train], labels[train])
        held_out[test] = base[test] + (b / a if a > 0 else 0.0) * added[test]
    a, b, _ = fit_logistic(features, labels)
    if a <= 0:
        raise ValueError(f"the base score gets a non-positive weight ({a:.3g}) when combined: it cannot be the base")
    return Combination(
        weight=float(b / a), held_out=held_out,
        auc_base=roc_auc(labels, base), auc_base_95=bootstrap_ci(roc_auc, labels, base),
        auc_combined=roc_auc(labels, held_out), auc_combined_95=bootstrap_ci(roc_auc, labels, held_out),
        difference=paired_bootstrap_difference(roc_auc, labels, held_out, base), videos=int(len(labels)))
