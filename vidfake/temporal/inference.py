"""A detector made for scoring only: the same scores, faster on a CPU.

Training needs the model as it is built (batch norm that learns, mask maps for the mask
loss); scoring needs neither, so :func:`scoring_copy` makes a copy that

- folds each batch norm into the convolution before it (timm's EfficientNet and MobileNet
  blocks: ``conv_pw`` + ``bn1`` and so on), one convolution instead of two passes;
- stores the convolution weights channels-last, the layout in which oneDNN's CPU kernels
  run depthwise convolutions fastest (the input follows the weights' layout);
- leaves out the blend-mask head and decoder: they feed heat maps, which are drawn apart
  with the full model (:mod:`vidfake.scoring.heatmaps`), never the score.

Measured on the default model (64 crops of 160 px, 2 cores): the encoder takes 0.33 s
instead of 0.41 s in a scoring process, which keeps freed memory for the next file, and
0.6 s instead of 1.6 s where every file's activations are faulted in afresh (the unfolded
model's are larger); frame logits agree within 1e-5 (``benchmarks/bench_score.py
--default-model`` records it). The copy checks itself against the model it came from on a
fixed input and refuses to be used when they disagree (scoring then runs the model
itself), so a backbone whose blocks are laid out differently can only be slower, never
different.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from vidfake.temporal.model import DeepfakeDetector

__all__ = ["scoring_copy", "fold_batch_norms", "ScoringCopyError", "MAX_LOGIT_DIFFERENCE"]

MAX_LOGIT_DIFFERENCE = 1e-3  # the most a frame logit of the copy may differ from the model's


class ScoringCopyError(RuntimeError):
    """The scoring copy does not give the model's frame logits."""


def _foldable_parents() -> tuple[type[nn.Module], ...]:
    """timm modules whose batch norms each directly follow, in registration and in forward
    order, the convolution they normalise (``conv_stem``/``bn1``, ``conv_pw``/``bn1``,
    ``conv_dw``/``bn2``, ``conv_pwl``/``bn3``, ``conv_head``/``bn2``, ``conv``/``bn1``)."""
    from timm.models._efficientnet_blocks import ConvBnAct, DepthwiseSeparableConv, EdgeResidual, InvertedResidual
    from timm.models.efficientnet import EfficientNet
    from timm.models.mobilenetv3 import MobileNetV3

    return EfficientNet, MobileNetV3, ConvBnAct, DepthwiseSeparableConv, InvertedResidual, EdgeResidual


@torch.no_grad()
def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Scale ``conv``'s filters and shift its bias so it computes ``norm(conv(x))`` (eval mode)."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bias)


def _after_norm(norm: nn.BatchNorm2d) -> nn.Module:
    """What is left of ``norm`` once folded: timm's ``BatchNormAct2d`` keeps its dropout and
    activation; a plain batch norm leaves nothing."""
    drop, act = getattr(norm, "drop", None), getattr(norm, "act", None)
    if act is None:
        return nn.Identity()
    return nn.Sequential(drop if drop is not None else nn.Identity(), act)


def fold_batch_norms(module: nn.Module) -> int:
    """Fold, in place, every batch norm of ``module`` that directly follows its convolution
    inside one of timm's EfficientNet-family modules; returns how many were folded. Only
    for a model in eval mode that will not train again."""
    parents = _foldable_parents()
    folded = 0
    for parent in module.modules():
        if not isinstance(parent, parents):
            continue
        previous = None
        for name, child in list(parent.named_children()):
            if _plain_conv(previous) and _foldable_norm(child):
                _fold(previous, child)
                child = _after_norm(child)
                setattr(parent, name, child)
                folded += 1
            previous = child
    return folded


def _plain_conv(module: nn.Module | None) -> bool:
    """A convolution of its own weight and bias only: ``nn.Conv2d`` itself, or timm's
    ``Conv2dSame`` (TF "same" padding before the same convolution); not a subclass that
    does more (CondConv mixes expert filters per sample)."""
    from timm.layers.conv2d_same import Conv2dSame

    return type(module) is nn.Conv2d or type(module) is Conv2dSame


def _foldable_norm(module: nn.Module) -> bool:
    """A batch norm that normalises with its running statistics in eval mode."""
    return isinstance(module, nn.BatchNorm2d) and module.track_running_stats and module.running_mean is not None


def scoring_copy(model: DeepfakeDetector, check: bool = True) -> DeepfakeDetector:
    """A copy of ``model`` for scoring only (see the module docstring): batch norms folded,
    channels-last weights, no mask maps; ``model`` itself is left as it was.

    Args:
        model: the detector with its weights (any device).
        check: compare the copy's frame logits with ``model``'s on a fixed input and raise
            ``ScoringCopyError`` when any differs by more than ``MAX_LOGIT_DIFFERENCE``.

    Returns:
        The copy, in eval mode, on ``model``'s device.
    """
    fast = copy.deepcopy(model).eval()
    fast.encoder.mask_head = None  # heat maps are drawn with the full model
    fast.encoder.mask_decoder = None
    fast.encoder.skip_indices = []
    fold_batch_norms(fast.encoder.backbone)
    fast.encoder.to(memory_format=torch.channels_last)
    if check:
        _check_same_logits(model, fast)
    return fast


def _check_same_logits(model: DeepfakeDetector, fast: DeepfakeDetector) -> None:
    size = model.config.input_size
    device = next(model.parameters()).device
    frames = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model.encoder.forward_head(*model.encoder.forward_maps(frames))[1]
            got = fast.encoder(frames)[1]
    finally:
        model.train(was_training)
    difference = float((expected - got).abs().max())
    if not difference <= MAX_LOGIT_DIFFERENCE:
        raise ScoringCopyError(
            f"the scoring copy of {model.config.backbone} differs from the model by {difference:.2e} in a frame "
            f"logit (allowed {MAX_LOGIT_DIFFERENCE:g})")
