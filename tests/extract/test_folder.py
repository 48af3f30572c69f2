"""The extraction folder has one owner: settings read strictly, records appended where they
belong, finished files and labels.csv rebuilt from the records."""
from __future__ import annotations

import json

import pytest

from vidfake.extract.folder import ExtractionFolder, FolderError


def test_a_folder_without_its_settings_is_refused_not_guessed(tmp_path):
    with pytest.raises(FolderError, match="no config.json"):
        ExtractionFolder(tmp_path).extract_config()
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(FolderError, match="not readable JSON"):
        ExtractionFolder(tmp_path).extract_config()
    (tmp_path / "config.json").write_text(json.dumps({"extract": {"crop": {"size": 160, "colour": "red"}}}))
    with pytest.raises(FolderError, match="colour"):
        ExtractionFolder(tmp_path).extract_config()


def test_settings_round_trip_and_old_detector_key_still_reads(tmp_path):
    folder = ExtractionFolder(tmp_path / "x")
    folder.write_settings({"extract": {"crop": {"size": 160, "margin": 0.1}, "detector": {"max_side": 480}}})
    config = folder.extract_config()
    assert (config.crop.size, config.crop.margin, config.face_detector.max_side) == (160, 0.1, 480)


def test_records_go_where_their_status_says_and_resume_knows_what_is_done(tmp_path):
    folder = ExtractionFolder(tmp_path)
    track = {"track_id": 0, "frame_indices": [0, 1], "timestamps": [0.0, 0.04], "boxes": [[0, 0, 9, 9]] * 2,
             "landmarks": [[[1, 1]] * 5] * 2, "crops": ["a/t00_f000000.jpg", "a/t00_f000001.jpg"]}

    def record(name: str, status: str, label, **more) -> dict:
        return {"media_id": name, "path": f"/v/{name}.mp4", "kind": "video", "status": status, "label": label, **more}

    folder.append(record("a", "ok", 1, tracks=[track]))
    folder.append(record("b", "no_face", 0))
    folder.append(record("c", "unreadable", 0))
    folder.append(record("d", "ok", None, tracks=[track]))
    assert [r.path for r in folder.records()] == ["/v/a.mp4", "/v/d.mp4"]
    assert [r.path for r in folder.error_records()] == ["/v/b.mp4", "/v/c.mp4"]
    assert folder.records().__next__().tracks[0].crops == track["crops"]
    assert folder.finished_files() == {"/v/a.mp4", "/v/b.mp4", "/v/d.mp4"}  # the unreadable one is tried again
    assert folder.write_labels_csv() == 2  # the unlabelled file gives no rows
    assert folder.labels_path.read_text().splitlines() == [
        "img_name,target", "a/t00_f000000.jpg,1", "a/t00_f000001.jpg,1"]
    assert folder.image("a/x.jpg") == tmp_path / "images" / "a" / "x.jpg"


def test_a_record_with_an_unknown_or_missing_key_is_refused_before_it_is_written(tmp_path):
    folder = ExtractionFolder(tmp_path)
    with pytest.raises(FolderError, match=r"unknown record key\(s\) \['colour'\]"):
        folder.append({"media_id": "a", "path": "/v/a.mp4", "kind": "video", "status": "ok", "colour": "red"})
    with pytest.raises(FolderError, match=r"lacks \['media_id'\]"):
        folder.append({"path": "/v/a.mp4", "kind": "video", "status": "no_face"})
    assert not folder.tracks_path.exists() and not folder.errors_path.exists()
