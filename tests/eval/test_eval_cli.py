"""``vidfake eval`` and ``vidfake calibrate`` end to end on generated media."""
import csv
import json
import shutil

import pytest

from tests.tiny_models import write_tiny_checkpoint
from vidfake.cli import main
from vidfake.testing import media


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", "uniform:6")


def test_eval_writes_predictions_metrics_plots_and_report(labelled_set, checkpoint, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--frame-level", "--bootstrap", "100", "--no-progress", "--json"])
    assert code == 1  # real_broken.mp4 could not be scored; everything else was
    metrics = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 6
    status = {r["path"].rsplit("/", 1)[-1]: r["status"] for r in rows}
    assert status["fake_noface.mp4"] == "no_face" and status["real_broken.mp4"] == "unreadable"
    assert {r["method"] for r in rows} == {"real", "swap", "reenact"}
    assert metrics["coverage"]["total"] == 6 and metrics["coverage"]["scored"] == 4
    assert metrics["coverage"]["policy"] == "exclude" and metrics["video"]["n"] == 4
    for key in ("auc", "auc_ci", "log_loss", "log_loss_clip", "tpr_at_fpr_1e-3", "eer", "accuracy", "confusion"):
        assert key in metrics["video"]
    assert "frame" in metrics and metrics["frame"]["n"] > metrics["video"]["n"]
    assert "method" in metrics["groups"] and "dataset" in metrics["groups"]
    for name in ("roc.png", "scores.png", "reliability.png", "report.md", "metrics.json", "submission.csv"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "AUC" in report and "method" in report

    # the report is reproducible from the predictions alone
    again = tmp_path / "again"
    assert main(["eval", "--predictions", str(out / "predictions.csv"), "--out", str(again), "--bootstrap", "100",
                 "--json", "--no-progress"]) == 0
    recomputed = json.loads(capsys.readouterr().out)
    assert recomputed["video"] == metrics["video"]

    # resuming reuses what is there: nothing is scored twice
    before = (out / "predictions.csv").read_text()
    assert main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--bootstrap", "100", "--no-progress"]) == 1  # the set still holds the unreadable file
    assert (out / "predictions.csv").read_text() == before
    assert "4 of 6 files scored" in capsys.readouterr().out

    # the prior policy scores every file and says so
    assert main(["eval", "--predictions", str(out / "predictions.csv"), "--out", str(tmp_path / "prior"),
                 "--missing", "prior", "--bootstrap", "100", "--json"]) == 0
    prior = json.loads(capsys.readouterr().out)
    assert prior["video"]["n"] == 6 and prior["coverage"]["policy"] == "prior"


def test_single_class_set_is_a_clear_error(tmp_path, face_video, checkpoint, capsys):
    shutil.copy(face_video.path, tmp_path / "a.mp4")
    (tmp_path / "only_real.csv").write_text("path,label\na.mp4,REAL\n")
    code = main(["eval", str(tmp_path / "only_real.csv"), "--checkpoint", str(checkpoint), "--out",
                 str(tmp_path / "r"), "--no-progress"])
    assert code == 2
    assert "real" in capsys.readouterr().err.lower()


def test_compare_a_detector_with_itself(labelled_set, checkpoint, tmp_path, capsys):
    out = tmp_path / "r"
    main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out), "--bootstrap", "50", "--no-progress"])
    capsys.readouterr()
    pred = out / "predictions.csv"
    assert main(["eval", "--compare", str(pred), str(pred), "--out", str(tmp_path / "cmp"), "--bootstrap", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["auc_difference"]["difference"] == 0 and result["files_compared"] == 4
    assert (tmp_path / "cmp" / "roc_compare.png").exists()


def test_image_set_writes_prediction_txt(tmp_path, checkpoint, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        media.face_image(images / name)
    media.face_image(images / "c.jpg", face_height=70)
    (tmp_path / "labels.csv").write_text("img_name,target\na.png,0\nb.png,1\nc.jpg,1\n")
    out = tmp_path / "r"
    assert main(["eval", str(tmp_path / "labels.csv"), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--bootstrap", "50", "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "prediction.txt").open()))
    assert [r["img_name"] for r in rows] == ["a.png", "b.png", "c.jpg"]
    assert all(0 < float(r["y_pred"]) < 1 for r in rows)


def test_calibrate_fits_a_temperature_and_never_worsens_log_loss(labelled_set, checkpoint, tmp_path, capsys):
    from vidfake.checkpoints.format import load_checkpoint

    out = tmp_path / "r"
    main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out), "--bootstrap", "50", "--no-progress"])
    new = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--checkpoint", str(checkpoint), "--predictions", str(out / "predictions.csv"),
                 "--out", str(new)]) == 0
    said = capsys.readouterr().out
    assert "temperature" in said and "log loss" in said
    calibration = load_checkpoint(new).config["calibration"]
    assert calibration["log_loss_after"] <= calibration["log_loss_before"] + 1e-12
    assert load_checkpoint(new).config["aggregation"]["temperature"] == calibration["temperature"]
    assert calibration["bias"] == 0.0 and load_checkpoint(new).config["aggregation"]["bias"] == 0.0

    platt = tmp_path / "platt.safetensors"
    assert main(["calibrate", "--checkpoint", str(checkpoint), "--predictions", str(out / "predictions.csv"),
                 "--out", str(platt), "--bias"]) == 0
    assert "bias 0 ->" in capsys.readouterr().out
    fitted = load_checkpoint(platt).config
    assert fitted["aggregation"]["bias"] == fitted["calibration"]["bias"]


def test_eval_records_a_keyframe_interval_override(labelled_set, checkpoint, tmp_path, capsys):
    """``--keyframe-interval`` reaches the scorer and the report's settings, and a report
    rebuilt from the predictions alone still says which face search scored them."""
    out = tmp_path / "report"
    main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out), "--keyframe-interval", "2",
          "--bootstrap", "20", "--no-progress"])
    capsys.readouterr()
    assert json.loads((out / "eval_settings.json").read_text())["keyframe_interval"] == 2
    assert "face search on every K-th sampled frame (empty: the model's own) | 2 |" in (out / "report.md").read_text()
    again = tmp_path / "again"
    assert main(["eval", "--predictions", str(out / "predictions.csv"), "--out", str(again), "--bootstrap", "20",
                 "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["keyframe_interval"] == 2


def test_resuming_refuses_predictions_of_another_model_or_face_search(labelled_set, checkpoint, tmp_path, capsys):
    """A folder's rows are reused only by the same model with the same face search: anything
    else would mix two models' scores in one report without a word."""
    out = tmp_path / "report"
    main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out), "--bootstrap", "20",
          "--no-progress"])
    capsys.readouterr()
    before = (out / "predictions.csv").read_text()
    other = write_tiny_checkpoint(tmp_path / "other.safetensors", "uniform:4")  # another model: another checksum
    assert main(["eval", str(labelled_set), "--checkpoint", str(other), "--out", str(out), "--no-progress"]) == 2
    assert "holds predictions of" in capsys.readouterr().err
    assert main(["eval", str(labelled_set), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--keyframe-interval", "2", "--no-progress"]) == 2
    assert "--keyframe-interval None" in capsys.readouterr().err
    assert (out / "predictions.csv").read_text() == before  # nothing added, nothing lost
    settings = json.loads((out / "eval_settings.json").read_text())
    assert settings["checkpoint_sha256"] and settings["keyframe_interval"] is None  # still the first run's
