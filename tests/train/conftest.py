"""Fixtures of the training tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.folders import extract_small, write_face_videos


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(single_thread):
    """Every module here runs torch on one thread (the root conftest's ``single_thread`` says why)."""


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """``write_face_videos``' labelled folder, made afresh for each module."""
    return write_face_videos(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def extracted(videos, tmp_path_factory) -> Path:
    """Its small extraction (8 frames, 64 px), afresh for each module: a module may write into it."""
    return extract_small(videos, tmp_path_factory.mktemp("extract"))
