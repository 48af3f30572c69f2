"""``vidfake score`` and the scoring API end to end, with a tiny untrained checkpoint."""
import csv
import json
import pickle

import numpy as np
import pytest

from vidfake.cli import main
from vidfake.testing import media

REQUIRED = {"path", "kind", "status", "score", "label", "threshold", "tracks", "timeline", "audio", "warnings", "timings", "model"}


def score_json(capsys, *args):
    code = main(["score", *map(str, args), "--json", "--no-progress"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, lines


def test_video_verdict_has_every_field_and_sane_values(face_video, checkpoint, capsys):
    code, (record,) = score_json(capsys, face_video.path, "--checkpoint", checkpoint)
    assert code == 0
    assert REQUIRED <= set(record)
    assert record["kind"] == "video" and record["status"] == "ok"
    assert 0 < record["score"] < 1 and record["label"] in ("FAKE", "REAL")
    assert (record["label"] == "FAKE") == (record["score"] >= record["threshold"])
    assert any("untrained" in w for w in record["warnings"])
    # the face crosses the frame between the plan's two clips: one track, or one per clip
    assert 1 <= len(record["tracks"]) <= 2
    assert sum(t["frames"] for t in record["tracks"]) == 16
    for track in record["tracks"]:
        for box in (track["box_first"], track["box_median"], track["box_last"]):
            x1, y1, x2, y2 = box
            assert 0 <= x1 < x2 <= face_video.width and 0 <= y1 < y2 <= face_video.height
        assert 0 < track["score"] < 1 and 0 < track["weight"] <= 1
    assert record["timeline"] and all(0 <= t["time"] <= face_video.duration for t in record["timeline"])
    assert all(t["score"] is None or 0 < t["score"] < 1 for t in record["timeline"])
    assert record["audio"]["present"] is True and record["audio"]["used"] is True
    assert all(isinstance(t["sync"]["offset_frames"], int) for t in record["tracks"])
    assert {"decode", "detect", "model", "total"} <= set(record["timings"])
    assert record["model"]["version"] == "untrained" and "overrides" not in record["model"]


def test_scores_are_deterministic(face_video, checkpoint):
    from vidfake import Scorer

    scorer = Scorer(checkpoint)
    assert scorer.score_video(face_video.path).score == scorer.score_video(face_video.path).score


def test_silent_video_skips_sync_and_says_why(media_dir, checkpoint, capsys):
    clip = media.moving_face_video(media_dir / "quiet.mp4", n_frames=30, with_audio=False)
    code, (record,) = score_json(capsys, clip.path, "--checkpoint", checkpoint)
    assert code == 0 and record["status"] == "ok"
    assert record["audio"] == {"present": False, "used": False, "reason": "the video has no audio stream"}


def test_video_shorter_than_one_clip_is_scored_and_says_why_sync_was_not_used(media_dir, checkpoint, capsys):
    """6 frames under a clips:2x8 plan make one short clip (this once crashed scoring),
    and a silent soundtrack gives the sync head nothing: the verdict says why."""
    frames, _, _ = media.moving_face_frames(6)
    path = media_dir / "short_silent.mp4"
    media.write_video(path, frames, fps=25, audio=np.zeros(media.SAMPLE_RATE // 4, np.float32))
    code, (record,) = score_json(capsys, path, "--checkpoint", checkpoint)
    assert code == 0 and record["status"] == "ok" and 0 < record["score"] < 1
    assert [t["clips"] for t in record["tracks"]] == [1] and record["tracks"][0]["frames"] == 6
    assert record["audio"]["present"] is True and record["audio"]["used"] is False
    assert "audible sound" in record["audio"]["reason"]


def test_no_face_unreadable_and_image(tmp_path, empty_scene_video, checkpoint, capsys):
    broken = media.not_a_video(tmp_path / "broken.mp4")
    image = media.face_image(tmp_path / "face.jpg")
    code, records = score_json(capsys, empty_scene_video.path, broken, image.path, "--checkpoint", checkpoint)
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in records}
    assert code == 1  # one input was unreadable
    no_face = by_name[empty_scene_video.path.name]
    assert no_face["status"] == "no_face" and no_face["score"] is None and no_face["label"] is None
    assert by_name["broken.mp4"]["status"] == "unreadable" and by_name["broken.mp4"]["score"] is None
    assert by_name["face.jpg"]["kind"] == "image" and by_name["face.jpg"]["status"] == "ok"


def test_results_csv_and_submission(tmp_path, face_video, empty_scene_video, checkpoint, capsys):
    out, sub = tmp_path / "results.csv", tmp_path / "submission.csv"
    code = main(["score", str(face_video.path), str(empty_scene_video.path), "--checkpoint", str(checkpoint),
                 "--out", str(out), "--submission", str(sub), "--plots", str(tmp_path / "plots"), "--no-progress"])
    assert code == 0
    assert [p.name for p in (tmp_path / "plots").iterdir()] == [f"{face_video.path.stem}_timeline.png"]
    table = capsys.readouterr().out
    assert "no_face" in table and "ok" in table
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows] == ["ok", "no_face"] and rows[1]["score"] == ""
    subs = list(csv.DictReader(sub.open()))
    assert [r["filename"] for r in subs] == [face_video.path.name] and 0 < float(subs[0]["label"]) < 1


def test_without_checkpoint_or_default_model_says_what_to_do(face_video, capsys, monkeypatch, tmp_path):
    import vidfake.checkpoints.default

    monkeypatch.setattr(vidfake.checkpoints.default, "_package_dir", lambda: tmp_path)  # a package without its model
    assert main(["score", str(face_video.path)]) == 2
    err = capsys.readouterr().err
    assert "default model is not installed" in err and "--checkpoint" in err


def test_a_pickle_checkpoint_is_refused_without_running_it(tmp_path, face_video, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(Evil()))
    assert main(["score", str(face_video.path), "--checkpoint", str(bad)]) == 2
    assert not marker.exists()


def test_example_alone_or_with_other_files_and_nothing_to_score(face_video, checkpoint, capsys):
    from vidfake.examples import example_path

    code, records = score_json(capsys, face_video.path, "--example", "--checkpoint", checkpoint)
    assert code == 0 and [r["path"] for r in records] == [str(face_video.path), str(example_path())]
    example = records[1]
    assert example["status"] == "ok" and example["audio"]["used"] is True and len(example["tracks"]) == 1

    assert main(["score", "--checkpoint", str(checkpoint)]) == 2
    assert "--example" in capsys.readouterr().err


def test_python_api(face_video, checkpoint):
    import vidfake

    verdict = vidfake.score_video(face_video.path, checkpoint)
    assert verdict.status == "ok" and verdict.kind == "video"


@pytest.mark.slow
def test_score_shared_fixtures(fixtures_dir, checkpoint, capsys):
    code, records = score_json(capsys, fixtures_dir / "videos", fixtures_dir / "images", "--checkpoint", checkpoint)
    assert code == 0
    assert len(records) == 12
    for record in records:
        assert REQUIRED <= set(record)
        assert record["status"] == "ok", record["path"]
    kinds = {r["path"].rsplit("/", 1)[-1]: r["kind"] for r in records}
    assert kinds["photo_paul_rudd.jpg"] == "image" and kinds["ffpp_004.mp4"] == "video"
    no_audio = next(r for r in records if r["path"].endswith("ffpp_004.mp4"))
    assert no_audio["audio"]["present"] is False


def test_checkpoint_round_trip_gives_bit_identical_model_outputs(checkpoint):
    import torch

    from vidfake.checkpoints.format import load_checkpoint, save_checkpoint
    from vidfake.scoring import Scorer

    first = Scorer(checkpoint).model
    saved = load_checkpoint(checkpoint)
    copy_path = save_checkpoint(checkpoint.with_name("copy.safetensors"), first.state_dict(), saved.config)
    second = Scorer(copy_path).model
    torch.manual_seed(1)
    frames, times = torch.rand(2, 8, 3, 64, 64), torch.arange(8.0).repeat(2, 1) / 25
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.inference_mode():
        a, b = first(frames, times, mask), second(frames, times, mask)
    assert torch.equal(a.clip_logit, b.clip_logit) and torch.equal(a.frame_logits, b.frame_logits)


def test_loading_is_timed_apart_from_the_first_file(face_video, checkpoint):
    """The file that loads the model reports ``timings.load`` and leaves it out of its
    ``total``; the files after it have no load time. An unreadable file before it loads nothing."""
    from vidfake.scoring import Scorer

    scorer = Scorer(checkpoint)
    unreadable = scorer.score_video(face_video.path.with_name("missing.mp4"))
    assert unreadable.status == "unreadable" and "load" not in unreadable.timings and scorer.load_seconds is None
    first = scorer.score_video(face_video.path)
    assert first.timings["load"] == round(scorer.load_seconds, 4) > 0
    assert first.timings["total"] >= first.timings["decode"] + first.timings["detect"]
    second = scorer.score_video(face_video.path)
    assert "load" not in second.timings and second.score == first.score



def test_segment_bytes_is_the_planned_frames_or_one_buffer():
    from dataclasses import replace

    from vidfake.extract.pipeline import ExtractConfig, FaceExtractor

    frame = 1920 * 1080 * 3
    assert FaceExtractor(ExtractConfig(plan="clips:8x8")).segment_bytes(1920, 1080, 300) == 64 * frame
    assert FaceExtractor(ExtractConfig(plan="clips:8x8")).segment_bytes(1920, 1080, 20) == 20 * frame
    small_buffer = replace(ExtractConfig(plan="every:2"), max_buffer_mb=100)
    assert FaceExtractor(small_buffer).segment_bytes(1920, 1080, 300) == (100 << 20) // frame * frame


def test_keyframe_interval_overrides_the_models_face_search(face_video, checkpoint, capsys, monkeypatch):
    """``--keyframe-interval K`` runs the full face search on every K-th sampled frame
    instead of the checkpoint's interval, for every member of an ensemble too. (The face
    here jumps across the frame, so frames between keyframes are often searched again
    in full: only the keyframe search, the detector's first call, is compared.)"""
    from vidfake.extract.detect import FaceDetector
    from vidfake.scoring import Scorer, build_scorer

    assert Scorer(checkpoint).extract_config.face_detector.keyframe_interval == 4  # the checkpoint's own
    assert Scorer(checkpoint, keyframe_interval=8).extract_config.face_detector.keyframe_interval == 8
    ensemble = build_scorer([checkpoint, checkpoint], keyframe_interval=2)
    assert [m.extract_config.face_detector.keyframe_interval for m in ensemble.members] == [2, 2]
    with pytest.raises(ValueError, match="at least 1"):
        Scorer(checkpoint, keyframe_interval=0)

    searched: list[int] = []
    full_search = FaceDetector.detect
    monkeypatch.setattr(FaceDetector, "detect", lambda self, small, scale: searched.append(len(small))
                        or full_search(self, small, scale))
    frames_searched, face_frames = {}, {}
    for interval in ("4", "8"):
        searched.clear()
        code, (record,) = score_json(capsys, face_video.path, "--checkpoint", checkpoint, "--keyframe-interval", interval)
        assert code == 0 and record["status"] == "ok"
        assert record["model"]["overrides"] == {"keyframe_interval": int(interval)}  # the verdict says how it was made
        frames_searched[interval], face_frames[interval] = searched[0], sum(t["frames"] for t in record["tracks"])
    # clips:2x8 is 16 sampled frames in one segment: keyframes 0, 4, 8, 12 and the last against 0, 8 and the last
    assert frames_searched == {"4": 5, "8": 3}
    assert face_frames == {"4": 16, "8": 16}

    with pytest.raises(SystemExit) as refused:
        main(["score", str(face_video.path), "--keyframe-interval", "0"])
    assert refused.value.code == 2 and "must be at least 1" in capsys.readouterr().err
