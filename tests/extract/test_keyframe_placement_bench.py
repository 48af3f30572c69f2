"""``benchmarks/keyframe_placement.py``: what snapping clip starts to keyframes would save,
counted exactly on hand-made keyframe layouts and on the 1080p DFDC fixture."""
from __future__ import annotations

import csv
import importlib
import json

import numpy as np
import pytest

from tests.paths import BENCHMARKS
from vidfake.extract.sampling import parse_plan


@pytest.fixture
def placement(monkeypatch):
    """The benchmark script, imported as it runs: with its folder on the path."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("keyframe_placement")


def test_frames_before_clips_counts_from_the_keyframe_or_the_clip_before(placement):
    keyframes = np.array([0, 30, 60])
    # clip at 40: 10 frames from keyframe 30; at 45 it starts inside the clip before: none; at 70: 10 from 60
    assert placement.frames_before_clips(np.array([40, 45, 70]), keyframes, clip_span=8) == 10 + 0 + 10
    assert placement.frames_before_clips(np.array([0, 30, 60]), keyframes, clip_span=8) == 0


def test_snapped_starts_move_only_within_half_the_spacing_and_where_the_clip_fits(placement):
    starts = np.array([0, 40, 80])  # spacing 40: a keyframe counts within 20 frames
    assert placement.snapped_starts(starts, np.array([0, 35, 61, 95]), num_frames=100, clip_span=8).tolist() == [0, 35, 61]
    assert placement.snapped_starts(starts, np.array([0, 95]), num_frames=100, clip_span=8).tolist() == [0, 40, 80]


def test_dfdc_fixture_gains_nothing_from_snapping(placement, fixtures_dir, tmp_path):
    """Its keyframes are frames 0 and 250: clips:8x8 starts at 0, 42, 83, 125, 167, 209, 250
    and 292, and the six not on a keyframe are reached through 203 frames; no start has a
    keyframe within 21 frames that it does not already sit on."""
    video = fixtures_dir / "videos" / "dfdc_lynaeydofd.mp4"
    if not video.exists():
        pytest.skip("the shared fixtures are not here")
    row = placement.video_row(video, parse_plan("clips:8x8"))
    assert row == {"frames": 300, "gop": 250.0, "frames_before_clips": 203, "frames_before_clips_snapped": 203,
                   "clips_moved": 0}
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label"], [str(video), "FAKE"]])
    out = tmp_path / "placement.json"
    assert placement.main([str(labels), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["videos"] == 1 and result["saved_by_snapping_median"] == 0 and result["share_clips_moved"] == 0
