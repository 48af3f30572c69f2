"""temporal: the model (frame encoder + temporal transformer + AV sync head); see DESIGN.md.

Kept light: ``ModelConfig`` is imported eagerly, the model classes (which import timm
and torchaudio) on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from vidfake.temporal.config import ModelConfig

if TYPE_CHECKING:
    from vidfake.temporal.model import DeepfakeDetector, DetectorOutput, create_model

__all__ = ["ModelConfig", "create_model", "DeepfakeDetector", "DetectorOutput"]

_LAZY = {"create_model", "DeepfakeDetector", "DetectorOutput"}


def __getattr__(name: str):
    if name in _LAZY:
        from vidfake.temporal import model

        return getattr(model, name)
    raise AttributeError(f"module 'vidfake.temporal' has no attribute {name!r}")
