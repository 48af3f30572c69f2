"""`vidfake calibrate --data`: the temperature fitted on a training run's own validation split."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vidfake.cli import main
from vidfake.testing import media


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    videos = tmp_path_factory.mktemp("cal_videos")
    for i, height in enumerate((70, 88, 100, 80)):
        media.moving_face_video(videos / f"face{i}.mp4", n_frames=12, face_height=height)
    (videos / "labels.csv").write_text("path,label\n" + "".join(f"face{i}.mp4,REAL\n" for i in range(4)))
    out = tmp_path_factory.mktemp("cal_extract")
    assert main(["extract", str(videos), "--out", str(out), "--labels", str(videos / "labels.csv"),
                 "--frames", "3", "--size", "64", "--no-progress", "--no-mouths"]) == 0
    return out


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_validation_split_is_the_training_split_plus_one_sbi_copy_each(extracted, checkpoint, tmp_path):
    from vidfake.train.data import load_extracted, split_by_group
    from vidfake.train.val_predictions import write_validation_predictions

    first = _rows(write_validation_predictions(checkpoint, extracted, tmp_path / "a.csv", val_fraction=0.5))
    again = _rows(write_validation_predictions(checkpoint, extracted, tmp_path / "b.csv", val_fraction=0.5))
    clean = _rows(write_validation_predictions(checkpoint, extracted, tmp_path / "c.csv", val_fraction=0.5,
                                               degrade=False))
    _, val_items = split_by_group(load_extracted(extracted, 1), 0.5, 0)
    assert sorted(r["path"] for r in first if r["label"] == "0") == sorted(i.media_id for i in val_items)
    assert [r["label"] for r in first].count("1") == len(val_items)  # all real: one SBI copy each
    assert [r["logit"] for r in first] == [r["logit"] for r in again]  # fixed draws
    assert [r["logit"] for r in first] != [r["logit"] for r in clean]  # degradation is applied


def test_a_held_out_folder_is_used_whole_with_val_fraction_1(extracted, checkpoint, tmp_path):
    """Calibrating on sources the model never trained on: every item is held out."""
    from vidfake.train.data import load_extracted
    from vidfake.train.val_predictions import write_validation_predictions

    rows = _rows(write_validation_predictions(checkpoint, extracted, tmp_path / "all.csv", val_fraction=1.0))
    items = load_extracted(extracted, 1)
    assert sorted(r["path"] for r in rows if r["label"] == "0") == sorted(i.media_id for i in items)
    assert [r["label"] for r in rows].count("1") == len(items)


def test_calibrate_data_writes_the_fitted_temperature(extracted, checkpoint, tmp_path, capsys):
    from vidfake.checkpoints.format import load_checkpoint

    out = tmp_path / "calibrated.safetensors"
    # the tiny checkpoint was never trained, so it stores no split: one-frame clips and half held out
    assert main(["calibrate", "--checkpoint", str(checkpoint), "--data", str(extracted), "--out", str(out),
                 "--val-fraction", "0.5", "--clip-len", "1"]) == 0
    assert "validation predictions" in capsys.readouterr().out
    calibrated = load_checkpoint(out)
    temperature = calibrated.config["aggregation"]["temperature"]
    assert calibrated.config["calibration"]["temperature"] == temperature
    assert calibrated.config["calibration"]["log_loss_after"] <= calibrated.config["calibration"]["log_loss_before"]
    assert (tmp_path / "calibrated.validation.csv").is_file()


def test_calibrate_needs_one_source(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.safetensors")])
    assert "one of the arguments --predictions --data is required" in capsys.readouterr().err


def test_calibrate_data_takes_the_split_the_checkpoint_was_trained_with():
    from vidfake.train.config import DataConfig
    from vidfake.train.val_predictions import split_settings

    trained = {"training": {"config": {"data": {"clip_len": 4, "val_fraction": 0.3, "seed": 7, "sbi_prob": 0.5}}}}
    assert split_settings(trained) == {"clip_len": 4, "val_fraction": 0.3, "split_seed": 7}
    default = DataConfig()  # a checkpoint made outside `vidfake train` stores none: the training defaults
    assert split_settings({}) == {"clip_len": default.clip_len, "val_fraction": default.val_fraction,
                                  "split_seed": default.seed}
