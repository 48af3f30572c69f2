"""Fixtures of the tests of the packaged default model."""
from __future__ import annotations

import pytest

from vidfake.checkpoints.default import default_checkpoint
from vidfake.checkpoints.format import load_checkpoint


@pytest.fixture(scope="module")
def shipped():
    """The packaged default model, loaded once."""
    return load_checkpoint(default_checkpoint())
