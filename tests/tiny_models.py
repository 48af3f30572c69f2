"""The one recipe for the tiny, untrained checkpoints the tests score with: small enough to
score a test clip in about a second, and only ever used to test the plumbing around a model,
never its scores."""
from __future__ import annotations

from pathlib import Path

TINY_BACKBONE = "resnet10t"


def tiny_model_config(*, sync: bool = True, mask_head: bool = False, mouth_motion: bool = False):
    """A resnet10t-at-64-px ``ModelConfig``; ``sync`` adds a tiny lip-sync head (32 px mouths),
    ``mask_head`` the blend-mask head, ``mouth_motion`` a tiny mouth-motion head."""
    from vidfake.temporal.config import ModelConfig

    return ModelConfig(backbone=TINY_BACKBONE, input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                       sync=sync, mouth_size=32, sync_dim=32, sync_max_offset=3, mask_head=mask_head,
                       mouth_motion=mouth_motion, mouth_motion_size=16, mouth_motion_dim=16)


def write_tiny_checkpoint(path: Path, plan: str = "clips:2x8", *, sync: bool = True,
                          mask_head: bool = False, mouth_motion: bool = False) -> Path:
    """Write an untrained ``tiny_model_config`` checkpoint to ``path`` that extracts with ``plan``."""
    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.extract.pipeline import ExtractConfig

    config = tiny_model_config(sync=sync, mask_head=mask_head, mouth_motion=mouth_motion)
    return init_checkpoint(path, config, ExtractConfig(plan=plan))
