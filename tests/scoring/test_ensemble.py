"""Ensembles: several checkpoints scoring one file (``--checkpoint A --checkpoint B``), packed
into one file (``vidfake ensemble``), calibrated (``vidfake calibrate``), evaluated and
served. Scores are checked against the members scored alone, on the real talking-face
clip that ships with vidfake."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from safetensors import safe_open

from tests.tiny_models import tiny_model_config
from vidfake.checkpoints.format import CheckpointError, init_checkpoint, load_checkpoint, save_checkpoint
from vidfake.cli import main
from vidfake.examples import example_path
from vidfake.extract.pipeline import ExtractConfig
from vidfake.scoring import EnsembleScorer, Scorer, build_scorer
from vidfake.testing import media

TINY = tiny_model_config(sync=False)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three tiny untrained members: ``a``; ``b`` (other weights, a fitted-looking
    calibration: temperature 2, bias 0.3); ``c`` (another input size and plan)."""
    folder = tmp_path_factory.mktemp("members")
    a = init_checkpoint(folder / "a.safetensors", TINY, ExtractConfig(plan="uniform:4"), seed=0)
    raw_b = init_checkpoint(folder / "raw_b.safetensors", TINY, ExtractConfig(plan="uniform:4"), seed=1)
    b_source = load_checkpoint(raw_b)
    config = {**b_source.config, "name": "b",
              "aggregation": {**b_source.config["aggregation"], "temperature": 2.0, "bias": 0.3}}
    b = save_checkpoint(folder / "b.safetensors", b_source.state_dict, config)
    c = init_checkpoint(folder / "c.safetensors", replace(TINY, input_size=48), ExtractConfig(plan="uniform:6"), seed=2)
    return {"a": a, "b": b, "c": c, "folder": folder}


@pytest.fixture(scope="module")
def video():
    return example_path()  # 3 s of a real talking face (GRID corpus), shipped with vidfake


@pytest.fixture(scope="module")
def alone(members, video):
    """Each member's own verdict on the video."""
    return {k: Scorer(members[k]).score_video(video) for k in ("a", "b", "c")}


def test_an_ensemble_of_a_model_with_itself_scores_exactly_what_the_model_scores(members, video, alone):
    scorer = build_scorer([members["a"], members["a"]])
    assert isinstance(scorer, EnsembleScorer) and scorer.groups == [[0, 1]]  # one shared extraction
    verdict, single = scorer.score_video(video), alone["a"]
    assert verdict.status == single.status == "ok"
    assert verdict.score == pytest.approx(single.score, abs=1e-5)
    assert verdict.logit == pytest.approx(single.logit, abs=1e-5)
    assert verdict.label == single.label
    assert [t["score"] for t in verdict.tracks] == pytest.approx([t["score"] for t in single.tracks], abs=1e-5)
    assert [p["score"] for p in verdict.timeline] == pytest.approx([p["score"] for p in single.timeline], abs=1e-5)
    listed = verdict.model["members"]
    assert [m["sha256"] for m in listed] == [single.model["sha256"]] * 2
    assert all(m["score"] == pytest.approx(single.score, abs=1e-9) for m in listed)


def test_two_members_video_logit_is_the_mean_of_their_calibrated_logits(members, video, alone):
    a, b = alone["a"], alone["b"]
    verdict = build_scorer([members["a"], members["b"]]).score_video(video)
    expected = (a.logit / 1.0 + (b.logit / 2.0 + 0.3)) / 2  # b's own temperature and bias first
    assert verdict.logit == pytest.approx(expected, abs=1e-6)
    assert verdict.score == pytest.approx(sigmoid(expected), abs=1e-6)  # the ensemble's own temperature is 1
    assert [(m["name"], m["version"], m["sha256"]) for m in verdict.model["members"]] == [
        (a.model["name"], a.model["version"], a.model["sha256"]), (b.model["name"], b.model["version"], b.model["sha256"])]
    assert [m["score"] for m in verdict.model["members"]] == pytest.approx([a.score, b.score], abs=1e-6)
    weighted = EnsembleScorer.from_paths([members["a"], members["b"]], weights=[1, 3]).score_video(video)
    assert weighted.logit == pytest.approx((a.logit + 3 * (b.logit / 2.0 + 0.3)) / 4, abs=1e-6)


def test_members_with_other_input_size_and_plan_keep_their_own(members, video, alone):
    scorer = build_scorer([members["a"], members["c"]])
    assert scorer.groups == [[0], [1]]  # different plans and crop sizes: one extraction each
    verdict = scorer.score_video(video)
    assert [m["score"] for m in verdict.model["members"]] == pytest.approx([alone["a"].score, alone["c"].score], abs=1e-6)
    assert verdict.logit == pytest.approx((alone["a"].logit + alone["c"].logit) / 2, abs=1e-6)
    assert len(verdict.timeline) == len(alone["a"].timeline) == 4  # shown from the first member's extraction


def test_packed_file_round_trips_and_is_described(members, video, tmp_path, capsys):
    out = tmp_path / "ens.safetensors"
    code = main(["ensemble", str(members["a"]), str(members["b"]), "--weights", "1", "3", "--out", str(out),
                 "--name", "pair"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    with safe_open(str(out), framework="numpy") as f:  # plain safetensors, tensors namespaced per member
        meta, keys = f.metadata(), list(f.keys())
    assert meta["format"] == "vidfake-ensemble" and {k.split("/")[0] for k in keys} == {"m0", "m1"}
    header = json.loads(meta["ensemble"])
    assert [m["weight"] for m in header["members"]] == [1.0, 3.0] and header["members"][1]["config"]["name"] == "b"

    separate = EnsembleScorer.from_paths([members["a"], members["b"]], weights=[1, 3]).score_video(video)
    assert main(["score", str(video), "--checkpoint", str(out), "--json", "--no-progress"]) == 0
    packed = json.loads(capsys.readouterr().out)
    assert packed["score"] == separate.score and packed["logit"] == separate.logit
    assert packed["model"]["name"] == "pair"
    assert [m["sha256"] for m in packed["model"]["members"]] == [m["sha256"] for m in separate.model["members"]]

    assert main(["models", "--checkpoint", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "ensemble" and [m["name"] for m in info["members"]] == ["a", "b"]
    assert main(["models", "--checkpoint", str(out)]) == 0
    assert "ensemble of 2" in capsys.readouterr().out


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory):
    """Two generated face videos in real/ and fake/ folders: enough to run eval and calibrate."""
    root = tmp_path_factory.mktemp("labelled")
    for label, height in (("real", 80), ("fake", 96)):
        (root / label).mkdir()
        media.moving_face_video(root / label / f"{label}.mp4", n_frames=20, with_audio=False, face_height=height)
    return root


def test_eval_and_calibrate_an_ensemble(members, labelled_set, tmp_path, capsys):
    ens = tmp_path / "ens.safetensors"
    assert main(["ensemble", str(members["a"]), str(members["b"]), "--out", str(ens)]) == 0
    report = tmp_path / "report"
    code = main(["eval", str(labelled_set), "--checkpoint", str(ens), "--out", str(report), "--bootstrap", "5",
                 "--no-progress", "--json"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    rows = (report / "predictions.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",ok," in row for row in rows[1:])

    calibrated = tmp_path / "calibrated.safetensors"
    code = main(["calibrate", "--checkpoint", str(ens), "--predictions", str(report / "predictions.csv"),
                 "--out", str(calibrated)])
    assert code == 0, capsys.readouterr().err
    fitted = EnsembleScorer.from_file(calibrated)
    assert fitted.aggregation.temperature != 1.0 and fitted.weights == [1.0, 1.0]
    from vidfake.checkpoints.ensemble_file import load_ensemble

    assert load_ensemble(calibrated).calibration["n"] == 2
    # the ensemble of separate files calibrates into an ensemble file too
    adhoc = tmp_path / "adhoc.safetensors"
    assert main(["calibrate", "--checkpoint", str(members["a"]), "--checkpoint", str(members["b"]), "--predictions",
                 str(report / "predictions.csv"), "--out", str(adhoc)]) == 0
    assert EnsembleScorer.from_file(adhoc).aggregation.temperature == pytest.approx(
        fitted.aggregation.temperature, rel=1e-3)


def test_the_service_scores_with_an_ensemble(members, tmp_path):
    from vidfake.serve.schemas import ModelInfo
    from vidfake.serve.tasks import ScoreTask

    video = media.moving_face_video(tmp_path / "face.mp4", n_frames=20, with_audio=False).path
    task = ScoreTask([str(members["a"]), str(members["c"])])
    info = ModelInfo(**task.info, workers=1, workers_ready=1)
    assert [m.name for m in info.members] == ["a", "c"] and info.input_size is None
    assert info.checkpoint == "a.safetensors + c.safetensors"
    result = task({"path": str(video), "kind": "video", "faces_dir": str(tmp_path / "faces"),
                   "display_name": "clip.mp4"})
    assert result["verdict"]["status"] == "ok" and len(result["verdict"]["model"]["members"]) == 2
    assert result["faces"]  # thumbnails of the shown tracks


def test_the_service_can_override_the_face_search_and_says_so(members):
    """``vidfake serve --keyframe-interval K`` reaches every member's face search and
    ``/v1/model``; a value below 1 is refused with the other settings' problems."""
    from vidfake.serve.config import ServeSettings
    from vidfake.serve.schemas import ModelInfo
    from vidfake.serve.tasks import ScoreTask

    task = ScoreTask([str(members["a"]), str(members["c"])], keyframe_interval=8)
    assert [m.extract_config.face_detector.keyframe_interval for m in task.scorer.members] == [8, 8]
    assert ModelInfo(**task.info, workers=1, workers_ready=1).keyframe_interval == 8
    with pytest.raises(ValueError, match="keyframe_interval must be at least 1"):
        ServeSettings(checkpoint=members["a"], keyframe_interval=0)


@pytest.mark.slow
def test_serve_accepts_several_checkpoints_end_to_end(members, tmp_path):
    from tests.serve.helpers import Server, upload, wait_done

    clip = media.moving_face_video(tmp_path / "face.mp4", n_frames=20, with_audio=False).path
    with Server(members["a"], tmp_path / "data", "--checkpoint", str(members["b"])) as server, server.client() as client:
        model = client.get("/v1/model").raise_for_status().json()
        assert [m["name"] for m in model["members"]] == ["a", "b"]
        job = wait_done(client, upload(client, clip).json()["id"])
        assert job["status"] == "done" and len(job["verdict"]["model"]["members"]) == 2


def test_bad_members_and_weights_get_clear_errors(members, tmp_path, capsys):
    junk = tmp_path / "notes.safetensors"
    junk.write_text("not a model")
    out = tmp_path / "ens.safetensors"
    assert main(["ensemble", str(members["a"]), str(junk), "--out", str(out)]) == 2
    assert f"{junk}: not a readable safetensors file" in capsys.readouterr().err
    assert main(["ensemble", str(members["a"]), str(members["b"]), "--weights", "1", "--out", str(out)]) == 2
    assert "1 weights for 2 members" in capsys.readouterr().err
    assert main(["ensemble", str(members["a"]), str(members["b"]), "--weights", "1", "-2", "--out", str(out)]) == 2
    assert "finite and > 0" in capsys.readouterr().err
    assert not out.exists()

    assert main(["score", str(example_path()), "--checkpoint", str(members["a"]), "--checkpoint", str(junk)]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    assert main(["ensemble", str(members["a"]), str(members["b"]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(members["a"]), str(out), "--out", str(tmp_path / "nested.safetensors")]) == 2
    assert "is a vidfake ensemble" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="is a vidfake ensemble"):
        Scorer(out)  # a single-model path is told what the file is
    assert main(["calibrate", "--checkpoint", str(out), "--data", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "for an ensemble" in capsys.readouterr().err
