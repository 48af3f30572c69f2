"""The aggregation rule on hand-computed cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vidfake.temporal.aggregate import (
    AggregationConfig,
    TrackEvidence,
    aggregate,
    calibrated_probability,
    fit_temperature,
    fit_temperature_and_bias,
    track_logit,
    track_weight,
    video_logit,
)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ---- track logit -------------------------------------------------------------------

def test_trimmed_mean_drops_one_from_each_end_of_five():
    assert track_logit([0, 1, 2, 3, 10], 0.2) == 2.0  # mean(1, 2, 3)
    assert track_logit([10, 3, 0, 2, 1], 0.2) == 2.0  # order does not matter


@pytest.mark.parametrize(
    "clips, trim, expected",
    [
        ([5.0], 0.2, 5.0),  # one clip
        ([1.0, 3.0], 0.4, 2.0),  # two clips: plain mean, nothing trimmable
        ([0, 1, 2, 3, 10], 0.0, 3.2),  # no trimming
        ([0, 1, 2, 3], 0.2, 1.5),  # floor(0.8) = 0 trimmed
        ([0, 1, 2, 3, 10], 0.45, 2.0),  # floor(2.25) = 2 trimmed: the median
        (list(range(10)), 0.2, 4.5),  # 2 trimmed each end: mean(2..7)
        ([-1.0, -1.0, 100.0, -1.0, -1.0, -1.0], 0.2, -1.0),  # one wild clip cannot decide
    ],
)
def test_trimmed_mean_cases(clips, trim, expected):
    assert track_logit(clips, trim) == pytest.approx(expected, abs=1e-12)


def test_track_logit_rejects_empty_and_nan():
    with pytest.raises(ValueError):
        track_logit([], 0.2)
    with pytest.raises(ValueError):
        track_logit([0.0, float("nan")], 0.2)


# ---- track weight ------------------------------------------------------------------

@pytest.mark.parametrize(
    "n_frames, face_px, expected",
    [
        (4, 40.0, 1.0),  # exactly the minimums
        (300, 400.0, 1.0),  # capped at 1
        (2, 40.0, 0.5),  # half as long
        (8, 20.0, 0.5),  # half as big
        (2, 20.0, 0.25),  # both
        (1, 4.0, 0.025),  # 1/4 * 1/10: small, never 0
    ],
)
def test_track_weight(n_frames, face_px, expected):
    w = track_weight(n_frames, face_px, AggregationConfig())
    assert w == pytest.approx(expected, abs=1e-12)
    assert 0.0 < w <= 1.0


def test_track_weight_rejects_impossible_tracks():
    with pytest.raises(ValueError):
        track_weight(0, 50.0, AggregationConfig())
    with pytest.raises(ValueError):
        track_weight(10, 0.0, AggregationConfig())


# ---- video logit -------------------------------------------------------------------

def test_video_logit_full_weight_tracks_take_the_max():
    assert video_logit([2.0, -3.0], [1.0, 1.0]) == 2.0
    assert video_logit([-3.0, 2.0], [1.0, 1.0]) == 2.0


def test_video_logit_single_track_is_its_own_logit_whatever_its_weight():
    assert video_logit([1.5], [0.1]) == 1.5


def test_video_logit_light_track_is_shrunk_to_the_weighted_median():
    # weighted median of [-3 (w 1), 5 (w 0.1)] is -3: -3 + 0.1 * (5 - -3) = -2.2
    assert video_logit([-3.0, 5.0], [1.0, 0.1]) == pytest.approx(-2.2)
    # weights [1, 1, 0.5]: median 2; track 3 -> 0.5 * 6 + 0.5 * 2 = 4
    assert video_logit([1.0, 2.0, 6.0], [1.0, 1.0, 0.5]) == pytest.approx(4.0)
    # equal weights: the plain median, averaged on a tie: m = 0, 0.5 * 4 = 2
    assert video_logit([-4.0, 4.0], [0.5, 0.5]) == pytest.approx(2.0)


def test_video_logit_rejects_empty_and_bad_weights():
    with pytest.raises(ValueError):
        video_logit([], [])
    with pytest.raises(ValueError):
        video_logit([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        video_logit([1.0], [0.0])
    with pytest.raises(ValueError):
        video_logit([1.0], [1.5])


# ---- probabilities -----------------------------------------------------------------

@pytest.mark.parametrize("logit", [1e3, -1e3, 1e6, -1e6, 40.0, -40.0])
@pytest.mark.parametrize("temperature", [0.05, 1.0, 20.0])
def test_probabilities_are_never_exactly_0_or_1(logit, temperature):
    p = calibrated_probability(logit, temperature, 1e-4)
    assert 1e-4 <= p <= 1 - 1e-4
    assert 0.0 < p < 1.0


def test_calibrated_probability_values():
    assert calibrated_probability(0.0, 1.0, 1e-4) == 0.5
    assert calibrated_probability(2.0, 2.0, 1e-4) == pytest.approx(sigmoid(1.0))
    assert calibrated_probability(-3.0, 1.0, 1e-4) == pytest.approx(sigmoid(-3.0))
    assert calibrated_probability(1e3, 1.0, 1e-4) == 1 - 1e-4
    assert calibrated_probability(-1e3, 1.0, 1e-4) == 1e-4


# ---- aggregate ---------------------------------------------------------------------

REAL_PERSON = TrackEvidence(track_id=0, clip_logits=[-3.0, -2.5, -3.5, -3.0], n_frames=64, face_px=150.0)
FAKE_PERSON = TrackEvidence(track_id=1, clip_logits=[2.5, 3.0, 2.0, 3.5, 9.0], n_frames=80, face_px=110.0)


def test_two_person_video_with_one_fake_is_fake():
    for tracks in ([REAL_PERSON, FAKE_PERSON], [FAKE_PERSON, REAL_PERSON]):
        d = aggregate(tracks, AggregationConfig())
        assert d.label == "FAKE"
        assert d.deciding_track == 1
        assert d.logit == pytest.approx(3.0)  # trimmed mean of the fake track: mean(2.5, 3, 3.5)
        assert d.score == pytest.approx(sigmoid(3.0))
        assert d.track_scores[0] == pytest.approx(sigmoid(-3.0))  # mean(-3, -2.5, -3.5, -3)
        assert d.track_scores[1] == pytest.approx(sigmoid(3.0))
        assert d.track_weights == {0: 1.0, 1: 1.0}


def test_real_video_is_real():
    d = aggregate([REAL_PERSON], AggregationConfig())
    assert d.label == "REAL"
    assert d.logit == pytest.approx(-3.0)
    assert d.deciding_track == 0


def test_tiny_short_track_cannot_flip_a_real_video_on_its_own():
    tiny = TrackEvidence(track_id=7, clip_logits=[6.0, 6.0], n_frames=2, face_px=10.0)
    config = AggregationConfig()
    d = aggregate([REAL_PERSON, tiny], config)
    assert d.track_weights[7] == pytest.approx(0.125)  # 2/4 * 10/40
    assert d.track_scores[7] == pytest.approx(sigmoid(6.0))  # its own score is still reported
    assert d.logit == pytest.approx(-3.0 + 0.125 * (6.0 + 3.0))  # -1.875
    assert d.label == "REAL"
    # a full-size, long track with the same logits does flip it
    big = TrackEvidence(track_id=7, clip_logits=[6.0, 6.0], n_frames=64, face_px=120.0)
    assert aggregate([REAL_PERSON, big], config).label == "FAKE"


def test_temperature_and_threshold_come_from_the_config():
    config = AggregationConfig(temperature=2.0, threshold=0.9)
    d = aggregate([FAKE_PERSON], config)
    assert d.score == pytest.approx(sigmoid(1.5))  # 3.0 / 2
    assert d.label == "REAL"  # 0.82 < 0.9


def test_extreme_logits_give_clipped_scores():
    tracks = [TrackEvidence(0, [1e3] * 4, 50, 100.0), TrackEvidence(1, [-1e3] * 4, 50, 100.0)]
    d = aggregate(tracks, AggregationConfig())
    assert d.score == 1 - 1e-4
    assert d.track_scores == {0: 1 - 1e-4, 1: 1e-4}


def test_aggregate_rejects_empty_and_duplicate_ids():
    with pytest.raises(ValueError):
        aggregate([], AggregationConfig())
    with pytest.raises(ValueError):
        aggregate([REAL_PERSON, REAL_PERSON], AggregationConfig())


# ---- config ------------------------------------------------------------------------

def test_config_round_trips_through_json_and_rejects_unknown_keys():
    config = AggregationConfig(trim=0.1, temperature=1.7, threshold=0.6)
    assert AggregationConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown"):
        AggregationConfig.from_dict({**config.to_dict(), "prior": 1.0})


@pytest.mark.parametrize(
    "bad",
    [{"trim": 0.5}, {"trim": -0.1}, {"min_track_frames": 0}, {"min_face_px": 0.0},
     {"temperature": 0.0}, {"prob_clip": 0.0}, {"threshold": 1.0}],
)
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        AggregationConfig(**bad)


# ---- temperature fitting -----------------------------------------------------------

@pytest.mark.parametrize("t_true", [0.5, 2.5, 6.0])
def test_fit_temperature_recovers_a_known_temperature(t_true):
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 4.0, size=20_000)
    labels = (rng.random(z.size) < 1.0 / (1.0 + np.exp(-z / t_true))).astype(int)
    assert fit_temperature(z, labels) == pytest.approx(t_true, rel=0.10)


def test_fit_temperature_stays_in_bounds_and_needs_both_classes():
    z = np.array([-5.0, -4.0, 4.0, 5.0])
    t = fit_temperature(z, [0, 0, 1, 1])  # separable: as sharp as allowed
    assert t == pytest.approx(0.05, rel=1e-3)
    with pytest.raises(ValueError):
        fit_temperature(z, [1, 1, 1, 1])
    with pytest.raises(ValueError):
        fit_temperature(z, [0, 1, 2, 1])
    with pytest.raises(ValueError):
        fit_temperature([], [])


# ---- temperature and bias (Platt) fitting ----------------------------------------------

@pytest.mark.parametrize("t_true,b_true", [(0.5, 0.0), (2.0, -1.5), (4.0, 1.0)])
def test_fit_temperature_and_bias_recovers_known_values(t_true, b_true):
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 4.0, size=40_000)
    labels = (rng.random(z.size) < 1.0 / (1.0 + np.exp(-(z / t_true + b_true)))).astype(int)
    t, b = fit_temperature_and_bias(z, labels, balanced=False)
    assert t == pytest.approx(t_true, rel=0.08)
    assert b == pytest.approx(b_true, abs=0.1)


def test_balanced_bias_ignores_the_share_of_fakes():
    rng = np.random.default_rng(2)
    z_real, z_fake = rng.normal(-2.0, 1.0, 500), rng.normal(2.0, 1.0, 4500)  # 90 % fakes, symmetric logits
    z = np.concatenate([z_real, z_fake])
    y = np.r_[np.zeros(500), np.ones(4500)].astype(int)
    _, b_balanced = fit_temperature_and_bias(z, y, balanced=True)
    _, b_plain = fit_temperature_and_bias(z, y, balanced=False)
    assert abs(b_balanced) < 0.15  # the model's own logits lean neither way
    assert b_plain > 1.0  # an unweighted fit learns the set's base rate (log 9 = 2.2 at most)


def test_bias_enters_every_probability_and_is_checked():
    config = AggregationConfig(temperature=2.0, bias=-1.0)
    assert config.probability(2.0) == pytest.approx(0.5)
    decision = aggregate([TrackEvidence(0, [2.0, 2.0, 2.0], 30, 100.0)], config)
    assert decision.score == pytest.approx(0.5) and decision.track_scores[0] == pytest.approx(0.5)
    assert AggregationConfig.from_dict({"temperature": 1.5}).bias == 0.0  # older checkpoints: no bias
    with pytest.raises(ValueError, match="bias"):
        AggregationConfig(bias=float("nan"))
    with pytest.raises(ValueError, match="rank fakes below reals"):
        fit_temperature_and_bias([-3.0, -2.0, 2.0, 3.0], [1, 1, 0, 0])


def test_separable_logits_clamp_the_temperature_and_refit_the_bias():
    """Every fake above every real, the gap away from 0: the joint fit runs towards an
    unbounded slope; the clamped temperature gets a bias of its own that still puts the
    decision in the gap, so no score is pushed to one side."""
    reals, fakes = [2.0, 2.2, 2.4, 2.1], [3.0, 3.2, 3.4, 3.1]
    t, b = fit_temperature_and_bias(reals + fakes, [0] * 4 + [1] * 4)
    assert t == pytest.approx(0.05)
    config = AggregationConfig(temperature=t, bias=b)
    assert max(config.probability(z) for z in reals) < 0.05
    assert min(config.probability(z) for z in fakes) > 0.95
    assert 2.4 < -b * t < 3.0  # the decision point lies in the gap
