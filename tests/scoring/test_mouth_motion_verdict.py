"""A checkpoint with a mouth-motion head: its finding per track, in the lip-sync section, and in the score."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from tests.tiny_models import tiny_model_config
from vidfake.cli import main
from vidfake.scoring.verdict import mouth_finding


def test_mouth_finding_in_words():
    assert mouth_finding(0.0) == {"logit": 0.0, "score": 0.5, "threshold": 0.5,
                                  "finding": "mouth region looks re-generated"}
    low = mouth_finding(-2.0)
    assert low["finding"] == "mouth region looks natural" and low["score"] == pytest.approx(0.1192, abs=1e-4)
    above_half = mouth_finding(1.0, threshold=1.5)  # the checkpoint's threshold, not 0.5, decides the words
    assert above_half["finding"] == "mouth region looks natural" and above_half["threshold"] == pytest.approx(0.8176, abs=1e-4)
    assert mouth_finding(1.5, threshold=1.5)["finding"] == "mouth region looks re-generated"
    assert mouth_finding(-1000.0)["score"] == 0.0 and mouth_finding(1000.0)["score"] == 1.0  # no overflow


@pytest.fixture(scope="module")
def mouth_checkpoints(tmp_path_factory):
    """The same tiny model with its mouth weight at 0 and at 3."""
    from vidfake.checkpoints.format import checkpoint_config, save_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal import create_model
    from vidfake.temporal.aggregate import AggregationConfig

    root = tmp_path_factory.mktemp("mouth_ckpt")
    torch.manual_seed(0)
    config = replace(tiny_model_config(), mouth_motion=True, mouth_motion_size=16, mouth_motion_dim=16)
    model = create_model(config, pretrained=False)
    with torch.no_grad():
        model.mouth_motion.fake.bias.fill_(2.0)  # the mouth looks re-generated: its evidence counts
    settings = checkpoint_config(config, ExtractConfig(plan="clips:2x8"), AggregationConfig())
    paths = {}
    for weight in (0.0, 3.0):
        with torch.no_grad():
            model.mouth_weight.fill_(weight)
        paths[weight] = save_checkpoint(root / f"w{weight}.safetensors", model.state_dict(), settings)
    return paths


def _score(capsys, path, checkpoint) -> dict:
    assert main(["score", str(path), "--checkpoint", str(checkpoint), "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_every_track_says_what_the_mouth_head_found_and_the_weight_moves_the_score(face_video, mouth_checkpoints,
                                                                                     capsys):
    off = _score(capsys, face_video.path, mouth_checkpoints[0.0])
    on = _score(capsys, face_video.path, mouth_checkpoints[3.0])
    for record in (off, on):
        assert record["status"] == "ok" and record["tracks"]
        for track in record["tracks"]:
            found = track["mouth_motion"]
            assert 0 < found["score"] < 1 and found["finding"].startswith("mouth region looks")
        strongest = max(record["tracks"], key=lambda t: t["mouth_motion"]["score"])
        assert record["audio"]["mouth_motion"]["track"] == strongest["id"]
        assert record["audio"]["mouth_motion"]["score"] == strongest["mouth_motion"]["score"]
    assert [t["mouth_motion"] for t in off["tracks"]] == [t["mouth_motion"] for t in on["tracks"]]
    assert off["score"] != on["score"]  # only the weight differs
