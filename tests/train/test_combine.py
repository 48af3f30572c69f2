"""vidfake.train.combine: an added score's weight, fitted and measured cross-fitted by source."""
from __future__ import annotations

import numpy as np
import pytest

from vidfake.train.combine import combine_cross_fitted, fit_logistic, fold_of


def test_fit_logistic_recovers_known_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.5 * x[:, 1] + 0.3)))
    y = (rng.random(4000) < p).astype(int)
    w = fit_logistic(x, y)
    np.testing.assert_allclose(w, [1.5, -0.5, 0.3], atol=0.12)
    separable = fit_logistic(np.array([[-1.0], [1.0]]), np.array([0, 1]))  # converges thanks to the penalty
    assert np.isfinite(separable).all() and separable[0] > 0


def test_fold_of_is_fixed():
    assert fold_of("owner/repo", 5) == fold_of("owner/repo", 5)
    assert {fold_of(f"r{i}", 5) for i in range(50)} == set(range(5))


def test_an_informative_added_score_earns_weight_and_auc_a_useless_one_does_not():
    rng = np.random.default_rng(1)
    n = 600
    labels = rng.integers(0, 2, n)
    sources = np.array([f"repo{i % 40}" for i in range(n)])
    base = labels * 0.8 + rng.normal(size=n)
    useful = labels * 1.5 + rng.normal(size=n)
    good = combine_cross_fitted(base, useful, labels, sources)
    assert good.weight > 0.5 and good.auc_combined > good.auc_base + 0.05
    assert good.difference["low"] > 0 and good.videos == n and good.held_out.shape == (n,)
    noise = combine_cross_fitted(base, rng.normal(size=n), labels, sources)
    assert abs(noise.weight) < 0.3 and noise.auc_combined <= noise.auc_base + 0.01
    assert set(good.to_dict()) >= {"weight", "auc_base", "auc_combined", "difference"}
    with pytest.raises(ValueError, match="one class"):
        combine_cross_fitted(base[:3], useful[:3], np.array([0, 0, 1]), np.array(["a", "b", "c"]), folds=3)
