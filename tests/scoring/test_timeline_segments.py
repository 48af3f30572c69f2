"""Timeline plots join only frames sampled without a gap: the line breaks between the
sampling plan's clips, where no frame was measured."""
from __future__ import annotations

import numpy as np
import pytest

from vidfake.eval.plots import plot_timeline, timeline_line
from vidfake.extract.pipeline import MediaFaces
from vidfake.extract.sampling import parse_plan
from vidfake.extract.video import probe
from vidfake.scoring.verdict import timeline


def _faces(info, plan: str, frames) -> MediaFaces:
    frames = np.asarray(frames)
    return MediaFaces("video", info, plan, frames, frames / info.fps, [])


def test_each_clip_of_a_clips_plan_is_its_own_segment(face_video):
    info = probe(face_video.path)  # 50 frames
    groups = parse_plan("clips:3x4").clip_groups(info.num_frames)
    frames = np.concatenate(groups)
    points = timeline(_faces(info, "clips:3x4", frames), {int(f): 0.5 for f in frames}, parse_plan("clips:3x4"))
    assert [p["segment"] for p in points] == [0] * 4 + [1] * 4 + [2] * 4
    assert [p["frame"] for p in points] == frames.tolist()


def test_clips_that_touch_share_a_segment_and_other_plans_have_one(face_video):
    info = probe(face_video.path)
    # 5 clips of 10 cover all 50 frames
    touching = timeline(_faces(info, "clips:5x10", np.arange(50)), {}, parse_plan("clips:5x10"))
    assert {p["segment"] for p in touching} == {0}
    uniform = timeline(_faces(info, "uniform:8", np.linspace(0, 49, 8).astype(int)), {}, parse_plan("uniform:8"))
    assert {p["segment"] for p in uniform} == {0}
    assert all(p["score"] is None for p in uniform)


def test_the_line_breaks_between_segments_only():
    times = np.array([0.0, 0.04, 0.08, 2.0, 2.04, 4.0])
    scores = np.array([0.1, 0.2, np.nan, 0.4, 0.5, 0.6])
    x, y = timeline_line(times, scores, np.array([0, 0, 0, 1, 1, 2]))
    np.testing.assert_array_equal(x, [0.0, 0.04, 0.08, np.nan, 2.0, 2.04, np.nan, 4.0])
    np.testing.assert_array_equal(y, [0.1, 0.2, np.nan, np.nan, 0.4, 0.5, np.nan, 0.6])
    x, y = timeline_line(times, scores, np.zeros(6, int))
    np.testing.assert_array_equal(x, times)


def test_plot_timeline_takes_segments_and_checks_their_length(tmp_path):
    out = plot_timeline([0.0, 0.04, 2.0, 2.04], [0.2, 0.3, 0.7, 0.8], tmp_path / "t.png", 0.5, "two clips",
                        segments=[0, 0, 1, 1])
    assert out.stat().st_size > 0
    with pytest.raises(ValueError, match="segments"):
        plot_timeline([0.0, 1.0], [0.2, 0.3], tmp_path / "bad.png", 0.5, segments=[0])
