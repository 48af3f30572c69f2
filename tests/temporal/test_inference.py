"""The scoring copy of the detector (``vidfake.temporal.inference``): batch norms folded
into their convolutions, channels-last weights, no mask maps, and the same numbers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.temporal.test_mask_head import _deterministic_weights
from vidfake.temporal import ModelConfig, create_model, inference
from vidfake.temporal.inference import ScoringCopyError, fold_batch_norms, scoring_copy

SMALL = dict(input_size=64, embed_dim=16, temporal_layers=1, temporal_heads=2, frame_dropout=0.0,
             temporal_dropout=0.0, sync=False)


def _model(backbone: str, **extra) -> nn.Module:
    model = create_model(ModelConfig(**{"backbone": backbone, **SMALL, **extra}), pretrained=False)
    return _deterministic_weights(model).eval()


def _batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


# the default model's backbone (TF "same" padding), MobileNetV3 (a conv head without a norm) and timm's tiny test net
@pytest.mark.parametrize("backbone", ["tf_efficientnet_lite0", "mobilenetv3_small_050", "test_efficientnet"])
def test_folding_removes_every_batch_norm_and_keeps_the_features(backbone):
    model = _model(backbone)
    frames = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model.encoder.backbone.forward_features(frames)
    before = _batch_norms(model.encoder.backbone)
    assert fold_batch_norms(model.encoder.backbone) == before > 0
    assert _batch_norms(model.encoder.backbone) == 0
    with torch.inference_mode():
        got = model.encoder.backbone.forward_features(frames)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_folding_keeps_the_activation_of_timms_norm_act_layers():
    model = _model("tf_efficientnet_lite0")
    fold_batch_norms(model.encoder.backbone)
    stem_after = model.encoder.backbone.bn1  # BatchNormAct2d(ReLU6) before folding
    assert isinstance(stem_after, nn.Sequential) and isinstance(stem_after[1], nn.ReLU6)


def test_folding_leaves_modules_it_does_not_know_alone():
    """A ResNet's batch norms are not in an EfficientNet-family block: nothing is folded."""
    model = _model("test_resnet")
    before = _batch_norms(model)
    assert fold_batch_norms(model) == 0
    assert _batch_norms(model) == before


@pytest.mark.parametrize("mask_decoder", [False, True])
def test_the_scoring_copy_gives_the_models_scores_without_mask_maps(mask_decoder):
    model = _model("tf_efficientnet_lite0", mask_head=True, mask_decoder=mask_decoder, sync=True, mouth_size=32)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fast = scoring_copy(model)

    assert fast.encoder.mask_head is None and fast.encoder.mask_decoder is None
    assert _batch_norms(fast.encoder.backbone) == 0
    assert fast.encoder.backbone.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    # the model itself is untouched: heat maps and training still use it
    assert model.encoder.mask_head is not None and _batch_norms(model.encoder.backbone) > 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())

    g = torch.Generator().manual_seed(2)
    frames = torch.rand(2, 5, 3, 64, 64, generator=g)
    mouths = torch.rand(2, 5, 3, 32, 32, generator=g)
    times = torch.arange(5.0).repeat(2, 1) / 25
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    audio = torch.randn(2, 16000 * 5 // 25, generator=g) * 0.1
    with torch.inference_mode():
        slow = model(frames, times, mask, mouths=mouths, audio=audio, fps=25.0)
        quick = fast(frames, times, mask, mouths=mouths, audio=audio, fps=25.0)
    assert slow.mask_logits is not None and quick.mask_logits is None
    torch.testing.assert_close(quick.frame_logits, slow.frame_logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(quick.clip_logit, slow.clip_logit, atol=1e-4, rtol=0)
    assert torch.equal(quick.used_sync, slow.used_sync)


def test_a_copy_that_disagrees_with_the_model_is_refused(monkeypatch):
    """The self-check: a fold that drops the batch norms without moving them into the
    convolutions changes the logits, and the copy refuses to be used."""
    monkeypatch.setattr(inference, "_fold", lambda conv, norm: None)
    with pytest.raises(ScoringCopyError, match="differs from the model"):
        scoring_copy(_model("tf_efficientnet_lite0"))


def test_scoring_falls_back_to_the_model_when_its_copy_disagrees(monkeypatch, tmp_path):
    from vidfake.checkpoints.format import CheckpointHeader, init_checkpoint, load_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.scoring.model import ClipModel

    config = ModelConfig(backbone="tf_efficientnet_lite0", **SMALL)
    path = init_checkpoint(tmp_path / "lite.safetensors", config, ExtractConfig(plan="uniform:2"))
    checkpoint = load_checkpoint(path)
    clip_model = ClipModel(CheckpointHeader(checkpoint.config, checkpoint.path, checkpoint.sha256), config, "cpu",
                           checkpoint)
    monkeypatch.setattr(inference, "_fold", lambda conv, norm: None)
    with pytest.warns(RuntimeWarning, match="scoring with the model itself"):
        assert clip_model.scoring_module is clip_model.module
