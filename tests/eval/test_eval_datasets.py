"""The sets ``vidfake eval`` reads: DFDC folders, FaceForensics++ trees, CSVs, image sets."""
import json

import pytest

from vidfake.eval.datasets import load_eval_set
from vidfake.extract.labels import LabelError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_dfdc_folder_with_two_metadata_parts(tmp_path):
    for part, entries in {"part_0": {"a.mp4": {"label": "FAKE", "original": "b.mp4"}, "b.mp4": {"label": "REAL"}},
                          "part_1": {"c.mp4": {"label": "REAL"}}}.items():
        for name in entries:
            touch(tmp_path / part / name)
        (tmp_path / part / "metadata.json").write_text(json.dumps(entries))
    touch(tmp_path / "part_1" / "unlabelled.mp4")
    dataset = load_eval_set(tmp_path)
    labels = {item.name: item.label for item in dataset.items}
    assert labels == {"part_0/a.mp4": 1, "part_0/b.mp4": 0, "part_1/c.mp4": 0}
    assert all(item.groups["dataset"] == "DFDC" for item in dataset.items)
    assert any("without a label" in note for note in dataset.notes)


def test_faceforensics_tree_groups_by_method(tmp_path):
    touch(tmp_path / "original_sequences/youtube/c23/videos/000.mp4")
    touch(tmp_path / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    touch(tmp_path / "manipulated_sequences/NeuralTextures/c23/videos/000_003.mp4")
    dataset = load_eval_set(tmp_path)
    methods = sorted((item.groups["method"], item.label) for item in dataset.items)
    assert methods == [("Deepfakes", 1), ("NeuralTextures", 1), ("real", 0)]
    assert dataset.source == "ffpp"


def test_csv_extra_columns_become_groups_and_kind_becomes_method(tmp_path):
    (tmp_path / "set.csv").write_text("path,label,kind,dataset,notes\nx.mp4,FAKE,faceswap,DFDC,\ny.jpg,real,real,own,hello\nz.wav,AUDIO,audio,own,\n")
    dataset = load_eval_set(tmp_path / "set.csv")
    assert [(i.name, i.label, i.kind) for i in dataset.items] == [("x.mp4", 1, "video"), ("y.jpg", 0, "image")]
    assert dataset.items[0].groups == {"method": "faceswap", "dataset": "DFDC"}
    assert dataset.items[1].groups == {"method": "real", "dataset": "own", "notes": "hello"}
    assert len(dataset.notes) == 1 and "AUDIO" in dataset.notes[0]


def test_image_set_resolves_names_under_images(tmp_path):
    touch(tmp_path / "images" / "v1" / "t00_f000000.jpg")
    (tmp_path / "labels.csv").write_text("img_name,target\nv1/t00_f000000.jpg,1\n")
    (item,) = load_eval_set(tmp_path / "labels.csv").items
    assert item.path == tmp_path / "images" / "v1" / "t00_f000000.jpg" and item.label == 1 and item.kind == "image"


def test_unknown_inputs_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LabelError):
        load_eval_set(tmp_path / "notes.txt")
    (tmp_path / "bad.csv").write_text("file,truth\na.mp4,1\n")
    with pytest.raises(LabelError, match="path"):
        load_eval_set(tmp_path / "bad.csv")
