"""benchmarks/temporal_heads.py: runs of consecutive cached frames, and temporal stages that
start as the frame-only score."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from tests.paths import BENCHMARKS
from vidfake.train.frame_cache import FrameCache


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("temporal_heads")


def _cache(tracks: list[tuple[str, int, list[int], int]], dim: int = 8) -> FrameCache:
    """One row per (media, track, frame) with the track's label; logits rise with the frame."""
    rows = [(m, t, f, y) for m, t, frames, y in tracks for f in frames]
    rng = np.random.default_rng(0)
    return FrameCache(
        media_id=np.array([r[0] for r in rows]), track_id=np.array([r[1] for r in rows], np.int32),
        frame_index=np.array([r[2] for r in rows], np.int64),
        timestamp=np.array([r[2] / 25 for r in rows], np.float32), label=np.array([r[3] for r in rows], np.int8),
        source=np.array([f"repo-{r[0]}" for r in rows]),
        embedding=rng.normal(size=(len(rows), dim)).astype(np.float32),
        frame_logit=np.array([r[2] / 100 for r in rows], np.float32))


def test_runs_are_cut_from_consecutive_frames_only(bench):
    cache = _cache([
        ("a", 0, list(range(16)), 1),                    # two runs
        ("a", 1, list(range(5)) + list(range(40, 50)), 1),  # 5 then 10 frames: one run, from the 10
        ("b", 0, list(range(0, 16, 2)), 0),              # every second frame (gap 2): one run
        ("c", 0, [0], 0),                                # a still: none
    ])
    runs = bench.runs_of(cache)
    assert runs["embedding"].shape == (4, bench.RUN, 8) and runs["frame_logit"].shape == (4, bench.RUN)
    assert list(runs["media_id"]) == ["a", "a", "a", "b"]
    assert list(runs["label"]) == [1, 1, 1, 0] and list(runs["source"]) == ["repo-a"] * 3 + ["repo-b"]
    np.testing.assert_allclose(runs["frame_logit"][2], np.arange(40, 48) / 100, rtol=1e-6)


@pytest.mark.parametrize("kind", ["transformer", "conv"])
def test_an_untrained_stage_is_the_frame_only_score_and_training_moves_it(bench, kind):
    tracks = [(f"v{i}", 0, list(range(16)), i % 2) for i in range(8)]
    runs = bench.runs_of(_cache(tracks))
    torch.manual_seed(0)
    stage = bench.make_stage(kind, 8).eval()
    labels, temporal, frame_only = bench.video_scores(stage, runs)
    assert list(labels) == [0, 1] * 4
    np.testing.assert_allclose(temporal, frame_only, rtol=1e-6)  # zero-initialised correction
    bench.train_stage(stage, runs, steps=5, seed=0)
    _, trained, _ = bench.video_scores(stage, runs)
    assert not np.allclose(trained, frame_only)
