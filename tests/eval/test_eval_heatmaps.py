"""``vidfake eval --heatmaps``: the worst false positives' and false negatives' heat maps in
``report.md`` and ``metrics.json``, with their file names and scores."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.tiny_models import write_tiny_checkpoint
from vidfake.cli import main
from vidfake.eval.report import write_report
from vidfake.testing import media


def _metrics() -> dict:
    return {"n": 4, "n_fake": 2, "n_real": 2, "auc": 0.5, "threshold": 0.5}


def test_report_section_lists_each_errors_pictures_with_names_and_scores(tmp_path):
    picture = tmp_path / "heatmaps" / "real a_t0_f000012.png"
    picture.parent.mkdir()
    picture.write_bytes(b"png")
    entries = [
        {"error": "false_positive", "path": "videos/real a.mp4", "score": "0.912345", "label": "0", "status": "ok",
         "method": "Grad-CAM (this checkpoint has no mask head)",
         "maps": [{"track": 0, "frame": 12, "time": 0.48, "score": 0.93, "peak": 0.0123, "box": [1.0, 2.0, 50.0, 60.0],
                   "file": str(picture)}]},
        {"error": "false_negative", "path": "fake.mp4", "score": "0.1", "label": "1", "status": "no_face",
         "method": "", "maps": []},
    ]
    report = write_report(tmp_path / "report.md", title="t", metrics=_metrics(), groups={}, worst_false_positives=[],
                          worst_false_negatives=[], coverage={}, settings={}, plots={}, heatmaps=entries).read_text()
    section = report.split("## Heat maps of the worst errors", 1)[1]
    assert "### False positive 1: `videos/real a.mp4`" in section
    assert "Score 0.9123, label 0 (real); Grad-CAM (this checkpoint has no mask head)." in section
    assert "![real a_t0_f000012.png](heatmaps/real%20a_t0_f000012.png)" in section  # linked relative to the report
    assert "`real a_t0_f000012.png`: track 0, frame 12 at 0.48 s, frame score 0.93" in section
    assert "### False negative 1: `fake.mp4`" in section and "_No heat map (status no_face)._" in section
    no_maps = write_report(tmp_path / "plain.md", title="t", metrics=_metrics(), groups={}, worst_false_positives=[],
                           worst_false_negatives=[], coverage={}, settings={}, plots={}).read_text()
    assert "Heat maps" not in no_maps


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "mask.safetensors", "uniform:4", sync=False,
                                 mask_head=True)


def test_eval_heatmaps_show_the_worst_errors_in_the_report(tmp_path, checkpoint, capsys):
    from vidfake.scoring import Scorer

    video = media.moving_face_video(tmp_path / "clip.mp4", n_frames=20)
    image = media.face_image(tmp_path / "still.png")
    scorer = Scorer(checkpoint)
    scores = {p: scorer.score_video(p).score if p.suffix == ".mp4" else scorer.score_image(p).score
              for p in (video.path, image.path)}
    assert scores[video.path] != scores[image.path]
    # the higher-scoring file is called real and the lower one fake, the threshold between them:
    # one false positive and one false negative, whatever the untrained model says
    real, fake = sorted(scores, key=scores.get, reverse=True)
    (tmp_path / "set.csv").write_text(f"path,label\n{real.name},0\n{fake.name},1\n")
    out = tmp_path / "report"
    threshold = sum(scores.values()) / 2
    code = main(["eval", str(tmp_path / "set.csv"), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--threshold", str(threshold), "--bootstrap", "10", "--no-progress", "--json",
                 "--heatmaps", "2", "--heatmap-frames", "2"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads(capsys.readouterr().out)
    entries = metrics["heatmaps"]
    assert [(e["error"], Path(e["path"]).name) for e in entries] == [("false_positive", real.name),
                                                                   ("false_negative", fake.name)]
    predicted = {Path(r["path"]).name: r["score"] for r in csv.DictReader((out / "predictions.csv").open())}
    report = (out / "report.md").read_text()
    for entry in entries:
        assert entry["status"] == "ok" and entry["method"].startswith("blend mask")
        assert entry["score"] == predicted[Path(entry["path"]).name]
        assert len(entry["maps"]) == (1 if entry["path"].endswith(".png") else 2)  # an image has one frame
        for picture in entry["maps"]:
            file = Path(picture["file"])
            assert file.parent == out / "heatmaps" and file.is_file()
            assert f"`{file.name}`: track {picture['track']}, frame {picture['frame']}" in report
            assert f"(heatmaps/{file.name})" in report
    assert re.search(r"### False positive 1: `[^`]*" + re.escape(real.name), report)
    assert re.search(r"### False negative 1: `[^`]*" + re.escape(fake.name), report)


def test_eval_heatmaps_need_the_files_scored(tmp_path, capsys):
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("path,name,label,score,logit,status,kind\n")
    assert main(["eval", "--predictions", str(predictions), "--out", str(tmp_path), "--heatmaps"]) == 2
    assert "give DATASET" in capsys.readouterr().err
