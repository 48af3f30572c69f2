"""Issue 5's extra label sources for `vidfake extract`: ``img_name,target`` CSVs and
``real/`` ``fake/`` (or ``0_real/`` ``1_fake/``) folders."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.extract.test_labels import NONE, touch, write
from vidfake.cli import main
from vidfake.eval.datasets import load_eval_set
from vidfake.extract.labels import (
    LabelError,
    LabelInfo,
    LabelResolver,
    build_label_resolver,
    folder_layout_label,
    image_set_path,
)
from vidfake.testing import media

# --- img_name,target CSV -----------------------------------------------------------------


def test_image_set_csv_labels_files_beside_it_and_in_images(tmp_path: Path):
    beside = touch(tmp_path / "set" / "a.jpg")
    inside = touch(tmp_path / "set" / "images" / "vid" / "t00_f000001.jpg")
    csv_path = write(tmp_path / "set" / "labels.csv", (
        "img_name,target,group\n"
        "a.jpg,1,person7\n"
        "vid/t00_f000001.jpg,0,\n"
        "b.jpg,2,\n"  # unknown target: skipped by default
    ))
    resolver = build_label_resolver(csv_path, [tmp_path / "set"])
    assert resolver.lookup(beside) == LabelInfo(1, None, "person7", "csv")
    assert resolver.lookup(inside) == LabelInfo(0, "real", None, "csv")
    assert resolver.lookup(tmp_path / "set" / "b.jpg") == NONE
    assert len(resolver.skipped) == 1 and "line 4" in resolver.skipped[0] and "'2'" in resolver.skipped[0]
    with pytest.raises(LabelError, match=r"line 4.*'2'"):
        build_label_resolver(csv_path, [], skip_unknown_labels=False)


def test_image_set_path_is_the_one_rule_eval_uses(tmp_path: Path):
    touch(tmp_path / "images" / "x.png")
    touch(tmp_path / "y.png")
    csv_path = write(tmp_path / "labels.csv", "img_name,target\nx.png,1\ny.png,0\nmissing.png,1\n")
    assert image_set_path(csv_path, "x.png") == tmp_path / "images" / "x.png"
    assert image_set_path(csv_path, "y.png") == tmp_path / "y.png"
    assert image_set_path(csv_path, "missing.png") == tmp_path / "missing.png"
    paths = [item.path for item in load_eval_set(csv_path).items]
    assert paths == [image_set_path(csv_path, n) for n in ("x.png", "y.png", "missing.png")]


@pytest.mark.parametrize(
    "header, missing",
    [("name,y", "'path', 'label'"), ("img_name,label", "'path'"), ("img_name,y", "'target'")],
)
def test_csv_with_neither_header_pair_names_both_forms(tmp_path: Path, header: str, missing: str):
    csv_path = write(tmp_path / "bad.csv", f"{header}\na.jpg,1\n")
    with pytest.raises(LabelError) as err:
        build_label_resolver(csv_path, [])
    message = str(err.value)
    assert f"missing column(s) {missing}" in message and str(csv_path) in message
    assert "'path' and 'label'" in message and "'img_name' and 'target'" in message


# --- real/ fake/ folders -----------------------------------------------------------------


def test_real_fake_folders_with_a_method_subfolder(tmp_path: Path):
    resolver = build_label_resolver(None, [tmp_path])
    folder = LabelInfo(0, "real", None, "folder-layout")
    assert resolver.lookup(touch(tmp_path / "real" / "a.jpg")) == folder
    assert resolver.lookup(touch(tmp_path / "Fake" / "b.jpg")) == LabelInfo(1, None, None, "folder-layout")
    assert resolver.lookup(touch(tmp_path / "fake" / "Deepfakes" / "c.png")) == LabelInfo(
        1, "Deepfakes", None, "folder-layout")
    assert resolver.lookup(touch(tmp_path / "FAKE" / "x" / "y" / "d.png")).method is None
    assert resolver.lookup(touch(tmp_path / "fake" / "real" / "e.png")) == folder  # nearest wins


def test_cnndetection_folders(tmp_path: Path):
    resolver = LabelResolver()
    assert resolver.lookup(touch(tmp_path / "progan/car/0_real/1.png")).label == 0
    fake = resolver.lookup(touch(tmp_path / "progan/car/1_fake/1.png"))
    assert fake == LabelInfo(1, None, None, "folder-layout")
    assert resolver.lookup(touch(tmp_path / "1_fake/stylegan/2.png")).method == "stylegan"


def test_folder_rule_stops_three_levels_up_and_needs_an_exact_name(tmp_path: Path):
    resolver = LabelResolver()
    assert resolver.lookup(touch(tmp_path / "fake/a/b/c/x.png")) == NONE
    assert resolver.lookup(touch(tmp_path / "fakes/x.png")) == NONE
    assert resolver.lookup(touch(tmp_path / "real_ones/x.png")) == NONE
    assert resolver.lookup(touch(tmp_path / "plain/x.png")) == NONE
    assert folder_layout_label(Path("fake.png")) is None  # the file's own name is not a folder


def test_explicit_csv_label_wins_over_the_folder(tmp_path: Path):
    listed = touch(tmp_path / "fake" / "a.jpg")
    other = touch(tmp_path / "fake" / "b.jpg")
    csv_path = write(tmp_path / "labels.csv", "path,label\nfake/a.jpg,REAL\n")
    resolver = build_label_resolver(csv_path, [tmp_path])
    assert resolver.lookup(listed) == LabelInfo(0, "real", None, "csv")
    assert resolver.lookup(other).source == "folder-layout"  # unlisted files still get one


def test_folder_rule_on_the_path_as_given_for_symlinks(tmp_path: Path):
    blob = touch(tmp_path / "blobs" / "0a1b.png")
    link = tmp_path / "set" / "fake" / "FaceSwap" / "x.png"
    link.parent.mkdir(parents=True)
    link.symlink_to(blob)
    assert LabelResolver().lookup(link) == LabelInfo(1, "FaceSwap", None, "folder-layout")


# --- end to end --------------------------------------------------------------------------


def test_extract_labels_real_and_fake_folders(tmp_path: Path, capsys):
    root = tmp_path / "set"
    for path in (root / "real" / "r1.png", root / "fake" / "swap" / "f1.jpg"):
        path.parent.mkdir(parents=True)
        media.face_image(path, size=(160, 120), face_height=60)
    out = tmp_path / "out"
    code = main(["extract", str(root), "--out", str(out), "--size", "32", "--no-mouths",
                 "--no-progress", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["ok"]) == (2, 2)
    records = {r["media_id"]: r for r in map(json.loads, (out / "tracks.jsonl").read_text().splitlines())}
    assert {k: (r["label"], r["method"]) for k, r in records.items()} == {
        "real/r1": (0, "real"), "fake/swap/f1": (1, "swap")}
    with open(out / "labels.csv", newline="") as handle:
        targets = {row["img_name"].rsplit("/", 1)[0]: row["target"] for row in csv.DictReader(handle)}
    assert targets == {"real/r1": "0", "fake/swap/f1": "1"}
    # and what extract wrote is itself an accepted --labels file
    again = build_label_resolver(out / "labels.csv", [out])
    crops = sorted((out / "images").rglob("*.jpg"))
    assert [(again.lookup(p).label, again.lookup(p).source) for p in crops] == [(1, "csv"), (0, "csv")]
