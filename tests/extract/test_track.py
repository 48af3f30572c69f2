"""Tracker behaviour on hand-made detections (exact, no detector involved)."""
import numpy as np
import pytest

from vidfake.extract.detect import FrameDetections
from vidfake.extract.track import Tracker, TrackerConfig, box_iou, build_tracks


def dets(*boxes, score=0.99):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    marks = np.stack([np.stack([(b[0] + b[2]) / 2 * np.ones(5), (b[1] + b[3]) / 2 * np.ones(5)], -1) for b in boxes]) if len(boxes) else np.zeros((0, 5, 2))
    return FrameDetections(boxes, np.full(len(boxes), score, np.float32), marks.astype(np.float32))


def box_at(x, y, side=100):
    return [x, y, x + side, y + side]


NO_SMOOTHING = TrackerConfig(smoothing_sigma_s=0.0, min_track_fraction=0.0)


def test_box_iou_exact_values():
    assert box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)
    assert box_iou([[0, 0, 10, 10]], [[20, 20, 30, 30]])[0, 0] == 0


def test_two_people_crossing_paths_vertically_stay_apart():
    frames = [dets(box_at(10 + 20 * t, 50), box_at(600 - 20 * t, 400)) for t in range(20)]
    tracks = build_tracks(np.arange(20), np.arange(20) / 25, frames, NO_SMOOTHING)
    assert len(tracks) == 2
    for track in tracks:
        ys = track.boxes[:, 1]
        assert np.all(ys == ys[0])  # each track keeps one person: constant row


def test_gap_is_interpolated_in_time():
    frames = [dets(box_at(0, 0)), dets(), dets(), dets(box_at(30, 0))]
    times = np.array([0.0, 0.1, 0.2, 0.3])
    (track,) = build_tracks(np.array([0, 5, 10, 15]), times, frames, NO_SMOOTHING)
    assert track.frame_indices.tolist() == [0, 5, 10, 15]
    assert track.detected.tolist() == [True, False, False, True]
    np.testing.assert_allclose(track.boxes[:, 0], [0, 10, 20, 30], atol=1e-4)
    assert track.scores.tolist()[1:3] == [0, 0]


def test_fast_motion_without_overlap_is_linked_by_centre_distance():
    frames = [dets(box_at(90 * t, 0)) for t in range(6)]  # 90 px steps for a 100 px face: IoU < 0.1
    tracks = build_tracks(np.arange(6), np.arange(6) / 25, frames, NO_SMOOTHING)
    assert len(tracks) == 1 and len(tracks[0]) == 6


def test_short_and_tiny_tracks_are_dropped_and_the_rest_ordered_by_size():
    big = [dets(box_at(0, 0, 200), box_at(500, 0, 60), *( [box_at(900, 900, 10)] )) for _ in range(10)]
    big[3] = dets(box_at(0, 0, 200), box_at(500, 0, 60), box_at(300, 600, 80))  # a one-off false detection
    tracks = build_tracks(np.arange(10), np.arange(10) / 25, big, NO_SMOOTHING)
    assert [round(t.size) for t in tracks] == [200, 60]
    assert [t.track_id for t in tracks] == [0, 1]


def test_smoothing_removes_jitter_but_keeps_the_path():
    rng = np.random.default_rng(0)
    jitter = rng.normal(0, 4, size=(30, 2))
    frames = [dets(box_at(100 + 5 * t + jitter[t, 0], 100 + jitter[t, 1])) for t in range(30)]
    times = np.arange(30) / 30
    (raw,) = build_tracks(np.arange(30), times, frames, NO_SMOOTHING)
    (smooth,) = build_tracks(np.arange(30), times, frames, TrackerConfig(smoothing_sigma_s=0.1))
    truth = 100 + 5 * np.arange(30)
    inner = slice(5, 25)
    assert np.abs(smooth.boxes[inner, 0] - truth[inner]).mean() < 0.6 * np.abs(raw.boxes[inner, 0] - truth[inner]).mean()
    assert np.all(smooth.boxes[:, 2] > smooth.boxes[:, 0])


def test_allowed_motion_grows_with_frames_unseen():
    # 150 px in one step is too far for a 100 px face, but fine after two unseen steps
    one_step = [dets(box_at(0, 0)), dets(box_at(150, 0))]
    assert len(build_tracks(np.arange(2), np.arange(2) / 25, one_step, NO_SMOOTHING)) == 0  # two 1-frame tracks dropped
    two_steps = [dets(box_at(0, 0)), dets(), dets(box_at(150, 0))]
    (track,) = build_tracks(np.arange(3), np.arange(3) / 25, two_steps, NO_SMOOTHING)
    assert track.detected.tolist() == [True, False, True]


def test_chains_that_take_turns_on_one_face_are_merged():
    from vidfake.extract.track import _Chain, _merge_interleaved

    def chain(chain_id, steps, xs):
        boxes = [np.asarray(box_at(x, 0), np.float32) for x in xs]
        return _Chain(chain_id, list(steps), boxes, [np.zeros((5, 2), np.float32)] * len(xs), [0.99] * len(xs))

    # one face moving right, its detections shared out between two chains
    a, b = chain(0, [0, 2, 4, 6], [0, 40, 80, 120]), chain(1, [1, 3, 5], [20, 60, 100])
    other = chain(2, [0, 1, 2], [600, 600, 600])  # someone else at the same time
    merged = _merge_interleaved([a, b, other], TrackerConfig())
    assert [c.steps for c in merged] == [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2]]
    assert [float(box[0]) for box in merged[0].boxes] == [0, 20, 40, 60, 80, 100, 120]


def test_two_people_seen_together_are_never_merged():
    frames = [dets(box_at(0, 0), box_at(40, 0)) for _ in range(6)]  # heavily overlapping, but both on every frame
    tracks = build_tracks(np.arange(6), np.arange(6) / 25, frames, NO_SMOOTHING)
    assert len(tracks) == 2


def test_tracks_fed_segment_by_segment_equal_one_call_and_keep_their_ids():
    """The pipeline adds a segment's detections at a time and crops each segment with the
    tracks so far: the tracks at the end are build_tracks' and no id changes on the way."""
    frames = [dets(box_at(0, 0, 150), box_at(400 + 5 * t, 50, 90)) for t in range(12)]
    frames[7] = dets(box_at(400 + 35, 50, 90))  # the big face is missed once
    indices, times = np.arange(12), np.arange(12) / 25
    tracker, ids_seen = Tracker(NO_SMOOTHING), []
    for start in range(0, 12, 4):
        tracker.add(frames[start:start + 4])
        ids_seen.append({round(t.size): t.track_id for t in tracker.tracks(indices[:start + 4], times[:start + 4])})
    final = tracker.select(tracker.tracks(indices, times))
    whole = build_tracks(indices, times, frames, NO_SMOOTHING)
    assert [(t.track_id, len(t), round(t.size)) for t in final] == [(t.track_id, len(t), round(t.size)) for t in whole]
    assert all(seen == ids_seen[0] for seen in ids_seen)  # ids are stable as segments arrive
