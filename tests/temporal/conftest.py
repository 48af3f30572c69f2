"""Fixtures of the model tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(single_thread):
    """Every module here runs torch on one thread (the root conftest's ``single_thread`` says why)."""
