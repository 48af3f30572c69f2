"""Fixtures of the scoring tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def checkpoint(sync_checkpoint) -> Path:
    """The tiny checkpoint with a lip-sync head: every stage of scoring runs."""
    return sync_checkpoint
