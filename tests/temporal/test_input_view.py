"""The encoder's input view (vidfake.temporal.input_view): the RGB crop or its high-pass residual."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tests.tiny_models import tiny_model_config
from vidfake.checkpoints.format import build_model, init_checkpoint, load_checkpoint
from vidfake.temporal import ModelConfig, create_model
from vidfake.temporal.input_view import HIGHPASS_SCALE, HighPassView, gaussian_kernel

S = 64


def test_gaussian_kernel_is_normalised_and_symmetric():
    kernel = gaussian_kernel()
    assert kernel.shape == (5, 5)
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernel, kernel.T)
    torch.testing.assert_close(kernel, kernel.flip(0))
    assert kernel[2, 2] == kernel.max()


def test_highpass_of_a_flat_picture_is_zero_and_of_an_edge_is_not():
    view = HighPassView()
    flat = torch.full((2, 3, S, S), 0.37)
    # zero up to float rounding, magnified 1 / HIGHPASS_SCALE times
    torch.testing.assert_close(view(flat), torch.zeros_like(flat), atol=1e-4, rtol=0)
    edge = torch.zeros(1, 3, S, S)
    edge[..., S // 2:] = 1.0
    residual = view(edge)
    assert residual.shape == edge.shape
    # the step's two sides move apart, by the blur's share of the step, in HIGHPASS_SCALE units
    assert residual[0, 0, 10, S // 2 - 1] < 0 < residual[0, 0, 10, S // 2]
    torch.testing.assert_close(residual[0, 0, 10, S // 2], -residual[0, 0, 10, S // 2 - 1])
    # far from the edge nothing is left
    assert residual[..., : S // 2 - 3].abs().max() < 1e-4 and residual[..., S // 2 + 3:].abs().max() < 1e-4
    assert residual.abs().max() < 1.0 / HIGHPASS_SCALE


def test_the_filter_is_not_saved_and_both_views_share_one_layout():
    rgb = create_model(tiny_model_config(sync=False), pretrained=False)
    highpass = create_model(dataclasses.replace(tiny_model_config(sync=False), input_view="highpass"), pretrained=False)
    assert set(rgb.state_dict()) == set(highpass.state_dict())  # an RGB checkpoint's weights start a high-pass one
    assert rgb.encoder.highpass is None and highpass.encoder.highpass is not None


def test_encoder_feeds_the_residual_to_the_backbone():
    config = dataclasses.replace(tiny_model_config(sync=False), input_view="highpass")
    encoder = create_model(config, pretrained=False).encoder.eval()
    frames = torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(encoder.normalize(frames), HighPassView()(frames))
    u8 = (frames * 255).round().to(torch.uint8)
    torch.testing.assert_close(encoder.normalize(u8), HighPassView()(u8.float() / 255))
    # brightness and flat colour casts do not reach a high-pass model
    with torch.no_grad():
        torch.testing.assert_close(encoder(frames * 0.5)[1], encoder(frames * 0.5 + 0.2)[1], atol=1e-4, rtol=0)


def test_config_default_round_trip_and_refusal(tmp_path):
    assert ModelConfig().input_view == "rgb"
    old = ModelConfig().to_dict()
    del old["input_view"]  # checkpoints from before the option rebuild as RGB models
    assert ModelConfig.from_dict(old).input_view == "rgb"
    with pytest.raises(ValueError, match="input_view"):
        ModelConfig(input_view="dct")
    config = dataclasses.replace(tiny_model_config(sync=False), input_view="highpass")
    path = init_checkpoint(tmp_path / "highpass.safetensors", config)
    rebuilt = build_model(load_checkpoint(path))
    assert rebuilt.config.input_view == "highpass" and rebuilt.encoder.highpass is not None


def test_vidfake_models_names_the_view(tmp_path, capsys):
    from vidfake.cli import main

    path = init_checkpoint(tmp_path / "hp.safetensors",
                           dataclasses.replace(tiny_model_config(sync=False), input_view="highpass"))
    assert main(["models", "--checkpoint", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_view"] == "highpass"
    assert main(["models", "--checkpoint", str(path)]) == 0
    assert "resnet10t at 64px (highpass view)," in capsys.readouterr().out
