"""A checkpoint's config read one way (``CheckpointConfig``), and its model built one way."""
from __future__ import annotations

import pytest
import torch

from vidfake.checkpoints.config import CheckpointConfig
from vidfake.checkpoints.format import CheckpointError, build_model, load_checkpoint, save_checkpoint


def test_the_typed_config_reads_what_the_checkpoint_holds(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    settings = checkpoint.settings
    assert isinstance(settings, CheckpointConfig)
    assert settings.model.to_dict() == checkpoint.config["model"]
    assert settings.extract.to_dict() == checkpoint.config["extract"]
    assert settings.aggregation.to_dict() == checkpoint.config["aggregation"]
    assert settings.untrained and settings.version == "untrained"
    assert settings.display_name("/x/ignored.safetensors") == checkpoint.config["name"]
    assert settings.warning is None


def test_build_model_loads_every_weight(tiny_checkpoint):
    checkpoint = load_checkpoint(tiny_checkpoint)
    model = build_model(checkpoint)
    assert not model.training
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in checkpoint.state_dict.items())


def test_a_broken_section_and_misfitting_weights_name_the_file(tiny_checkpoint, tmp_path):
    checkpoint = load_checkpoint(tiny_checkpoint)
    broken = tmp_path / "broken.safetensors"
    save_checkpoint(broken, checkpoint.state_dict, {**checkpoint.config, "model": {"backbone_typo": "x"}})
    with pytest.raises(CheckpointError, match="broken.safetensors: checkpoint config cannot be read"):
        _ = load_checkpoint(broken).settings
    fewer = tmp_path / "fewer.safetensors"
    save_checkpoint(fewer, dict(list(checkpoint.state_dict.items())[1:]), checkpoint.config)
    with pytest.raises(CheckpointError, match="fewer.safetensors: the model cannot be built"):
        build_model(load_checkpoint(fewer))
