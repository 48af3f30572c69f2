"""``CheckpointConfig``: what a checkpoint's JSON config holds, as one typed dataclass.

The config is written once (``format.checkpoint_config``) and read everywhere through this
class, so a section or key has one name and one default: the model's architecture, how
its faces are extracted, how its clips aggregate into a calibrated video score, and the
record of where it came from (name, version, calibration, training, the card's notes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidfake.extract.pipeline import ExtractConfig
from vidfake.temporal.aggregate import AggregationConfig
from vidfake.temporal.config import ModelConfig

__all__ = ["CheckpointConfig"]


@dataclass(frozen=True)
class CheckpointConfig:
    """A checkpoint's settings (``model``, ``extract``, ``aggregation``) and its record."""

    model: ModelConfig
    extract: ExtractConfig
    aggregation: AggregationConfig
    name: str = ""
    version: str = ""
    vidfake_version: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)  # what `vidfake calibrate` fitted, and on what
    training: dict[str, Any] = field(default_factory=dict)  # steps, validation numbers, the run's merged config
    card: dict[str, str] = field(default_factory=dict)  # facts `vidfake models` shows; "warning" goes on verdicts

    @classmethod
    def from_dict(cls, config: dict) -> CheckpointConfig:
        """Rebuild from a checkpoint's JSON config (``ValueError`` naming a bad section)."""
        return cls(
            model=ModelConfig.from_dict(config["model"]),
            extract=ExtractConfig.from_dict(config["extract"]),
            aggregation=AggregationConfig.from_dict(config["aggregation"]),
            name=str(config.get("name", "")),
            version=str(config.get("version", "")),
            vidfake_version=str(config.get("vidfake_version", "")),
            calibration=dict(config.get("calibration", {})),
            training=dict(config.get("training", {})),
            card=dict(config.get("card", {})),
        )

    def display_name(self, path: str | Path) -> str:
        """The name verdicts give the model: its own, or its file's stem."""
        return self.name or Path(path).stem

    @property
    def untrained(self) -> bool:
        """Whether the weights are random (``vidfake init-checkpoint``): every verdict says so."""
        return bool(self.training.get("untrained", False))

    @property
    def warning(self) -> str | None:
        """The caveat the checkpoint's author wants on every verdict (the default model has one)."""
        return str(self.card.get("warning", "")) or None
