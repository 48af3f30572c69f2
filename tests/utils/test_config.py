"""vidfake.utils.config.from_dict: every settings dataclass back from plain values, unknown keys named."""
from __future__ import annotations

import json

import pytest

from vidfake.extract.pipeline import ExtractConfig
from vidfake.temporal.aggregate import AggregationConfig
from vidfake.train.config import TrainConfig
from vidfake.utils.config import from_dict


def test_nested_sections_and_tuples_come_back_equal_through_json():
    config = ExtractConfig(plan="clips:4x8")
    plain = json.loads(json.dumps(config.to_dict()))
    assert isinstance(plain["face_detector"]["stage_thresholds"], list)
    rebuilt = ExtractConfig.from_dict(plain)
    assert rebuilt == config and isinstance(rebuilt.face_detector.stage_thresholds, tuple)
    run = TrainConfig.from_dict({"data": {"clip_len": 4}, "model": {"sync": False}})
    assert run.data.clip_len == 4 and run.data.batch_size == 8 and run.model.sync is False


def test_unknown_keys_are_named_with_the_valid_ones_at_any_depth():
    with pytest.raises(ValueError, match=r"unknown crop keys \['sise'\]; valid keys: size, margin, mouth_size"):
        ExtractConfig.from_dict({"crop": {"sise": 160}})
    with pytest.raises(ValueError, match=r"unknown aggregation config keys \['prior'\]; valid keys: trim"):
        AggregationConfig.from_dict({"prior": 1.0})
    with pytest.raises(ValueError, match="data must be a mapping"):
        from_dict(TrainConfig, {"data": [1, 2]})
    with pytest.raises(ValueError, match="trim must be in"):  # the class's own checks still run
        AggregationConfig.from_dict({"trim": 0.7})
