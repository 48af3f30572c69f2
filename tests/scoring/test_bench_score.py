"""The score benchmark times the stages through the Scorer's public seams (``extract``,
``read_audio``): its instrumentation fills every field it reports, in process and in the
memory benchmark's child, on a tiny checkpoint and a generated clip (the benchmark itself
takes minutes)."""
from __future__ import annotations

import importlib

import pytest

from tests.paths import BENCHMARKS
from vidfake.scoring import Scorer


@pytest.fixture
def bench_score(monkeypatch):
    """``benchmarks/bench_score.py``, imported as its scripts run: with their folder on the path."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_score")


def test_instrument_records_what_the_verdict_timings_leave_out(bench_score, tiny_checkpoint, face_video):
    scorer = Scorer(tiny_checkpoint)
    record = bench_score.instrument(scorer)
    run = bench_score.score_once(scorer, record, face_video.path)
    verdict = run["verdict"]
    assert verdict.status == "ok" and verdict.audio["reason"] == "the model has no sync head"
    assert set(record["extract_timings"]) == {"decode", "detect", "track", "crop"}
    assert record["sampled_frames"] == len(verdict.timeline) == 4  # the checkpoint's uniform:4
    assert record["face_frames"] == [track["frames"] for track in verdict.tracks]
    assert record["crops_mib"] == 0  # streamed to the model, none kept
    assert 1 <= record["crops_held_peak"] <= 4
    assert record["audio_s"] >= 0 and record["peak_rss_after_extract_kib"] > 0
    stages = run["stages"]
    assert stages["track"] == record["extract_timings"]["track"] and stages["audio"] == record["audio_s"]
    named = sum(stages[k] for k in ("decode", "detect", "model", "track", "crop", "audio"))
    assert stages["other"] == pytest.approx(stages["total"] - named, abs=1e-3)


@pytest.mark.slow
def test_the_memory_child_reports_extraction_and_the_verdict(bench_score, tiny_checkpoint, face_video):
    result = bench_score.score_in_child(tiny_checkpoint, face_video.path, None, cap_kib=8 * 2**20)
    assert "error" not in result, result.get("stderr_tail")
    assert result["status"] == "ok" and result["plan"] == "uniform:4" and result["sampled_frames"] == 4
    assert result["crops_held_peak"] >= 1 and result["peak_rss_kib"] >= result["peak_rss_after_extract_kib"] > 0


def test_model_paths_time_the_full_encoder_and_the_scoring_copy(bench_score, sync_checkpoint):
    import importlib.util

    import torch

    scorer = Scorer(sync_checkpoint).load()
    size = scorer.model_config.input_size
    crops = torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = bench_score.model_paths(scorer, crops, reps=1)
    assert out["crops"] == 4 and out["full_model_s"] > 0 and out["scoring_copy_s"] > 0
    assert out["scoring_copy_max_logit_difference"] < 1e-3
    assert out["onnxruntime"]["measured"] is (importlib.util.find_spec("onnxruntime") is not None)
