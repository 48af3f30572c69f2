import numpy as np
import pytest

from vidfake.extract.sampling import PlanError, all_frames, clips, every, parse_plan, uniform


def test_uniform_spreads_from_first_to_last_frame():
    assert uniform(5).indices(101).tolist() == [0, 25, 50, 75, 100]


def test_uniform_on_short_video_returns_every_frame_once():
    assert uniform(32).indices(5).tolist() == [0, 1, 2, 3, 4]


def test_clips_are_consecutive_runs_spread_over_the_video():
    plan = clips(3, 4, stride=2)
    groups = plan.clip_groups(100)
    assert [g.tolist() for g in groups] == [[0, 2, 4, 6], [46, 48, 50, 52], [93, 95, 97, 99]]
    assert plan.indices(100).tolist() == sorted(np.concatenate(groups).tolist())
    assert plan.clip_span == 7 == groups[0][-1] - groups[0][0] + 1 and clips(8, 1).clip_span == 1


def test_clip_longer_than_video_keeps_what_there_is():
    assert clips(2, 8).indices(5).tolist() == [0, 1, 2, 3, 4]
    # the short run is also the plan's one clip, so scoring groups the frames it sampled
    assert [g.tolist() for g in clips(2, 8).clip_groups(5)] == [[0, 1, 2, 3, 4]]
    assert [g.tolist() for g in clips(2, 8, stride=2).clip_groups(5)] == [[0, 2, 4]]
    assert clips(2, 8).clip_groups(0) == []


def test_all_and_every():
    assert all_frames().indices(4).tolist() == [0, 1, 2, 3]
    assert every(3).indices(10).tolist() == [0, 3, 6, 9]


def test_empty_video_gives_no_indices():
    for plan in (uniform(8), clips(2, 4), all_frames(), every(2)):
        assert plan.indices(0).size == 0


@pytest.mark.parametrize("text", ["uniform:32", "clips:4x8/2", "clips:2x16/1", "every:5", "all"])
def test_plan_string_round_trip(text):
    assert str(parse_plan(text)) == text
    assert parse_plan(str(parse_plan(text))) == parse_plan(text)


@pytest.mark.parametrize("text", ["uniform", "uniform:0", "clips:4", "clips:0x8", "random:3", "every:-1"])
def test_bad_plans_are_rejected_with_a_plan_error(text):
    with pytest.raises(PlanError):
        parse_plan(text)
