"""The face detector's settings are ``face_detector`` in every config vidfake writes, and
configs saved under their old name ``detector`` (the packaged default model, extraction
folders, older checkpoints) still read the same."""
from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from vidfake.checkpoints.default import default_checkpoint
from vidfake.checkpoints.format import read_header
from vidfake.extract.dataset import ExtractError, OutputOptions, run_extraction
from vidfake.extract.detect_config import FaceDetectorConfig
from vidfake.extract.labels import build_label_resolver
from vidfake.extract.pipeline import ExtractConfig, current_extract_keys

CUSTOM = ExtractConfig(plan="uniform:4", face_detector=FaceDetectorConfig(max_side=320, keyframe_interval=2,
                                                                         stage_thresholds=(0.5, 0.6, 0.7)))


def old_named(extract: dict) -> dict:
    """An extract config as vidfake wrote it before the rename."""
    saved = {key: value for key, value in extract.items() if key != "face_detector"}
    return {**saved, "detector": extract["face_detector"]}


def test_configs_are_written_with_the_new_key():
    saved = CUSTOM.to_dict()
    assert "detector" not in saved
    assert saved["face_detector"] == {**asdict(CUSTOM.face_detector), "stage_thresholds": [0.5, 0.6, 0.7]}


def test_a_config_saved_under_the_old_key_reads_the_same():
    saved = json.loads(json.dumps(old_named(CUSTOM.to_dict())))
    assert ExtractConfig.from_dict(saved) == CUSTOM
    assert ExtractConfig.from_dict(saved).to_dict() == CUSTOM.to_dict()  # and is written back renamed
    assert current_extract_keys(CUSTOM.to_dict()) == CUSTOM.to_dict()


def test_a_config_with_both_keys_is_refused():
    with pytest.raises(ValueError, match="both 'detector'.*'face_detector'"):
        ExtractConfig.from_dict({**CUSTOM.to_dict(), "detector": CUSTOM.to_dict()["face_detector"]})


def test_the_packaged_model_reads_its_face_detector_settings():
    saved = read_header(default_checkpoint()).config["extract"]
    settings = saved.get("face_detector", saved.get("detector"))
    assert asdict(ExtractConfig.from_dict(saved).face_detector) == {**settings,
                                                                    "stage_thresholds": tuple(settings["stage_thresholds"])}


def test_an_extraction_folder_from_before_the_rename_resumes(tmp_path):
    def run(config: ExtractConfig) -> None:
        run_extraction([], build_label_resolver(None, []), tmp_path, config, resume=True, progress=False)

    old_settings = {"extract": old_named(CUSTOM.to_dict()), "output": asdict(OutputOptions())}
    (tmp_path / "config.json").write_text(json.dumps(old_settings))
    run(CUSTOM)
    assert json.loads((tmp_path / "config.json").read_text())["extract"] == CUSTOM.to_dict()

    (tmp_path / "config.json").write_text(json.dumps(old_settings))
    other = replace(CUSTOM, face_detector=replace(CUSTOM.face_detector, max_side=640))
    with pytest.raises(ExtractError, match="other settings"):
        run(other)
