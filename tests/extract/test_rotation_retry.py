"""A video with no upright face is searched again turned 90 and 270 degrees: a phone clip
whose rotation flag is wrong, and a clip stored sideways, are scored, not ``no_face``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vidfake.cli import main
from vidfake.extract.pipeline import ExtractConfig, FaceExtractor
from vidfake.testing import media


def _iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def wrong_flag(tmp_path_factory):
    """An upright clip carrying rotate=90: a player (and the reader) shows it sideways."""
    frames, boxes, _ = media.moving_face_frames(20)
    path = media.write_video(tmp_path_factory.mktemp("rot") / "wrong_flag.mp4", frames, fps=25, rotation=90)
    return path, boxes


@pytest.fixture(scope="module")
def stored_sideways(tmp_path_factory):
    """The same face stored turned a quarter counterclockwise, with no flag at all."""
    frames, boxes, _ = media.moving_face_frames(20)
    sideways = np.ascontiguousarray(np.rot90(frames, k=1, axes=(1, 2)))
    return media.write_video(tmp_path_factory.mktemp("rot") / "sideways.mp4", sideways, fps=25), boxes


@pytest.fixture(scope="module")
def few_frames():
    return FaceExtractor(ExtractConfig(plan="uniform:6"))


@pytest.mark.parametrize("clip", ["wrong_flag", "stored_sideways"])
def test_no_upright_face_is_found_turned_back_upright(clip, few_frames, request):
    path, truth = request.getfixturevalue(clip)
    found = few_frames.extract_video(path)
    # a turn is only tried when MTCNN found no face as the reader hands the frames on;
    # a quarter turn clockwise (270 counterclockwise) undoes the quarter counterclockwise
    assert found.rotation_retry == 270
    (face,) = found.faces
    assert len(face.track) == 6
    # turned back, the frames are the upright originals: the boxes match the drawn face
    for frame_index, box in zip(face.track.frame_indices, face.track.boxes):
        assert _iou(box, truth[frame_index]) > 0.5
    assert any("turned 270 degrees" in w for w in found.warnings)
    assert set(found.timings) >= {"decode", "detect"} and found.timings["detect"] > 0


def test_a_video_without_any_face_stays_no_face(empty_scene_video, few_frames):
    found = few_frames.extract_video(empty_scene_video.path)
    assert found.faces == [] and found.rotation_retry == 0 and found.warnings == []


def test_the_verdict_reports_the_turn(wrong_flag, tmp_path, capsys):
    from vidfake.checkpoints.format import init_checkpoint
    from vidfake.temporal.config import ModelConfig

    model = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                        sync=False)
    checkpoint = init_checkpoint(tmp_path / "tiny.safetensors", model, ExtractConfig(plan="uniform:6"))
    assert main(["score", str(wrong_flag[0]), "--checkpoint", str(checkpoint), "--json", "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ok" and record["rotation_retry"] == 270
    assert any("turned 270 degrees" in w for w in record["warnings"])
    assert record["tracks"][0]["frames"] == 6


def test_a_real_clip_stored_sideways_is_found(fixtures_dir, tmp_path, few_frames):
    """A real talking head (FaceForensics++ 004) stored a quarter turn clockwise: MTCNN
    misses it sideways; the 90 degree retry finds it."""
    from vidfake.extract.video import open_video

    with open_video(fixtures_dir / "videos" / "ffpp_004.mp4") as reader:
        frames = reader.read(np.linspace(0, len(reader) - 1, 8).astype(int))
    sideways = np.ascontiguousarray(np.rot90(frames, k=-1, axes=(1, 2)))
    path = media.write_video(tmp_path / "ffpp_sideways.mp4", sideways, fps=25)
    found = few_frames.extract_video(path)
    assert found.rotation_retry == 90
    assert found.faces and sum(len(f.track) for f in found.faces) >= 5
