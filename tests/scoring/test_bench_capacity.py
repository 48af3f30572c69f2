"""``benchmarks/bench_capacity.py`` builds its variants as the shipped model with another
encoder and crop size, and counts an encoder's cost at that size (the benchmark itself
scores the DFDC fixture many times; it is not run here)."""
from __future__ import annotations

import importlib

import pytest

from tests.paths import BENCHMARKS
from vidfake.scoring import Scorer


@pytest.fixture
def bench_capacity(monkeypatch):
    """The benchmark script, imported as it runs: with its folder on the path."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_capacity")


def test_a_variant_is_the_shipped_model_with_another_encoder_and_crop_size(bench_capacity, tmp_path):
    shipped = Scorer()
    variant = Scorer(bench_capacity.variant_checkpoint(tmp_path, "tf_efficientnet_lite1", 96))
    assert variant.model_config.backbone == "tf_efficientnet_lite1" and variant.model_config.input_size == 96
    assert variant.extract_config.crop.size == 96
    assert variant.model_config.sync == shipped.model_config.sync and variant.extract_config.plan == "clips:8x8"
    assert variant.untrained  # random weights: every verdict says so


def test_encoder_cost_grows_with_the_square_of_the_crop_side(bench_capacity, tmp_path):
    small = Scorer(bench_capacity.variant_checkpoint(tmp_path, "tf_efficientnet_lite0", 64)).load()
    large = Scorer(bench_capacity.variant_checkpoint(tmp_path, "tf_efficientnet_lite0", 128)).load()
    a, b = bench_capacity.encoder_cost(small, crops=2), bench_capacity.encoder_cost(large, crops=2)
    assert a["parameters"] == b["parameters"] > 3_000_000
    assert b["gmacs_per_crop"] / a["gmacs_per_crop"] == pytest.approx(4.0, rel=0.05)
    assert a["encoder_2_crops_s"] > 0
