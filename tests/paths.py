"""Where the tests find the project and the shared material, wherever a test file sits."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_FIXTURES = SHARED / "fixtures"
SHARED_DATASETS = SHARED / "datasets"
BENCHMARKS = REPO / "benchmarks"
CONFIGS = REPO / "configs"
