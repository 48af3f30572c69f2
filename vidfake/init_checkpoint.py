"""A randomly initialised checkpoint: lets users and tests run the whole scoring path
before a trained model exists. Its config says it is untrained, and every verdict made
with it carries a warning."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vidfake import __version__
from vidfake.checkpoint import save_checkpoint
from vidfake.extract.pipeline import ExtractConfig
from vidfake.temporal import ModelConfig, create_model
from vidfake.temporal.aggregate import AggregationConfig


def checkpoint_config(model: ModelConfig, extract: ExtractConfig, aggregation: AggregationConfig, **extra) -> dict:
    """The whole config a checkpoint carries. Crops are cut at the model's input size."""
    extract = replace(extract, crop=replace(extract.crop, size=model.input_size, mouth_size=model.mouth_size))
    return {
        "model": model.to_dict(),
        "extract": extract.to_dict(),
        "aggregation": aggregation.to_dict(),
        "vidfake_version": __version__,
        **extra,
    }


def init_checkpoint(path: str | Path, model: ModelConfig, extract: ExtractConfig | None = None, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    network = create_model(model)
    config = checkpoint_config(
        model, extract or ExtractConfig(), AggregationConfig(),
        name=Path(path).stem, version="untrained", training={"untrained": True, "seed": seed},
    )
    return save_checkpoint(path, network.state_dict(), config)
