"""Fixtures of the extraction tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def extractor():
    """One MTCNN for the whole session (loading it is the slow part)."""
    from vidfake.extract.pipeline import ExtractConfig, FaceExtractor

    return FaceExtractor(ExtractConfig(plan="uniform:16"))
