"""Fixtures every test folder shares: generated media (always), the shared real fixtures (when
present), the tiny untrained checkpoints and one-thread torch. Each folder's own conftest adds
what only its tests use (``tests/extract/``, ``tests/train/``, ... mirror ``vidfake/``)."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import pytest
import torch

from tests.paths import SHARED_FIXTURES
from tests.tiny_models import write_tiny_checkpoint
from vidfake.testing import media

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
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny checkpoint without a sync head that extracts ``uniform:4``."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", "uniform:4", sync=False)


@pytest.fixture(scope="session")
def sync_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny checkpoint with a lip-sync head that extracts ``clips:2x8`` (mouths and
    audio included): the whole scoring path, fast."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("sync_ckpt") / "tiny.safetensors")


@pytest.fixture(scope="module")
def single_thread():
    """Torch on one thread for a module. Training steps in the tests are tiny: a second OpenMP
    thread buys nothing, and on a shared 2-core machine a thread waiting for a busy core
    made these runs tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
