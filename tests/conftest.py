"""Shared test fixtures: generated media (always) and the shared real fixtures (when present)."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from tests import media

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

torch.set_num_threads(max(1, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures`` (real DFDC / FF++ / lip-sync clips); skipped where absent."""
    if not (SHARED_FIXTURES / "videos").is_dir():
        pytest.skip(f"real fixtures not present at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def face_video(media_dir) -> media.GeneratedVideo:
    return media.moving_face_video(media_dir / "face.mp4")


@pytest.fixture(scope="session")
def two_face_video(media_dir) -> media.GeneratedVideo:
    return media.two_faces_video(media_dir / "two_faces.mp4")


@pytest.fixture(scope="session")
def rotated_video(media_dir) -> media.GeneratedVideo:
    return media.rotated_face_video(media_dir / "rotated.mp4", rotation=90)


@pytest.fixture(scope="session")
def empty_scene_video(media_dir) -> media.GeneratedVideo:
    return media.no_face_video(media_dir / "no_face.mp4")


@pytest.fixture(scope="session")
def vfr(media_dir) -> media.GeneratedVideo:
    return media.vfr_video(media_dir / "vfr.mp4")


@pytest.fixture(scope="session")
def extractor():
    """One MTCNN for the whole session (loading it is the slow part)."""
    from vidfake.extract.pipeline import ExtractConfig, FaceExtractor

    return FaceExtractor(ExtractConfig(plan="uniform:16"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained, tiny checkpoint (resnet10t at 64 px, no sync head, ``uniform:4``): for
    tests of the plumbing around a model, never of its scores."""
    from vidfake.checkpoint import init_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal.config import ModelConfig

    model = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                        sync=False)
    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", model, ExtractConfig(plan="uniform:4"))
