"""Label resolution for `vidfake extract`: DFDC metadata, FF++ layout, CSV, precedence."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.paths import REPO, SHARED_FIXTURES
from vidfake.extract.labels import (
    LabelError,
    LabelInfo,
    LabelResolver,
    build_label_resolver,
    parse_label,
)
from vidfake.extract.media_types import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, media_kind

FIXTURES = SHARED_FIXTURES
NONE = LabelInfo(None, None, None, "none")
DFD_FAKE = "01_02__exit_phone_room__YVGY8LOK.mp4"  # FF++ DeepFakeDetection naming


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- parse_label and media types ---------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("REAL", 0), ("real", 0), (" Real\t", 0), ("0", 0), (0, 0),
     ("FAKE", 1), ("fake", 1), (" fAkE ", 1), ("1", 1), (1, 1), (" 1 ", 1)],
)
def test_parse_label_accepts_words_and_digits(value, expected):
    assert parse_label(value) == expected


@pytest.mark.parametrize("value", ["AUDIO", "", "2", "-1", "true", "1.0", 2, None])
def test_parse_label_rejects_everything_else(value):
    with pytest.raises(LabelError, match="REAL/FAKE or 1/0"):
        parse_label(value)


def test_media_kind():
    assert media_kind("a/b.MP4") == "video"
    assert media_kind(Path("x.mpg")) == "video"
    assert media_kind("x.JPEG") == "image"
    assert media_kind("x.wav") is None
    assert media_kind("metadata.json") is None
    assert media_kind("noext") is None
    assert {".mp4", ".ts", ".webm"} <= VIDEO_EXTENSIONS and ".png" in IMAGE_EXTENSIONS
    assert all(e == e.lower() and e.startswith(".") for e in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS)
    assert not VIDEO_EXTENSIONS & IMAGE_EXTENSIONS


# --- DFDC metadata.json ------------------------------------------------------------------


@pytest.fixture
def dfdc(tmp_path: Path) -> Path:
    """Two DFDC parts, each with its own metadata.json, under tmp/dfdc."""
    root = tmp_path / "dfdc"
    part0, part1 = root / "dfdc_train_part_0", root / "dfdc_train_part_1"
    for name in ("aaa.mp4", "bbb.mp4", "unlisted.mp4"):
        touch(part0 / name)
    for name in ("ccc.mp4", "ddd.mp4", "eee.mp4"):
        touch(part1 / name)
    write(part0 / "metadata.json", json.dumps({
        "aaa.mp4": {"label": "FAKE", "split": "train", "original": "bbb.mp4"},
        "bbb.mp4": {"label": "REAL", "split": "train"},
    }))
    write(part1 / "metadata.json", json.dumps({
        "ccc.mp4": {"label": "REAL", "split": "train", "original": None},
        "ddd.mp4": {"label": "FAKE", "split": "train", "original": "ccc.mp4"},
        "eee.mp4": {"label": "FAKE", "split": "train"},  # fake without an original
    }))
    return root


def test_dfdc_two_parts_discovered_from_the_root_folder(dfdc: Path):
    resolver = build_label_resolver(None, [dfdc])
    part0, part1 = dfdc / "dfdc_train_part_0", dfdc / "dfdc_train_part_1"
    assert resolver.lookup(part0 / "aaa.mp4") == LabelInfo(1, None, "dfdc:bbb.mp4", "dfdc-metadata")
    real = LabelInfo(0, "real", "dfdc:bbb.mp4", "dfdc-metadata")
    assert resolver.lookup(part0 / "bbb.mp4") == real  # shares its fake's group
    assert resolver.lookup(part1 / "ccc.mp4") == LabelInfo(0, "real", "dfdc:ccc.mp4", real.source)
    assert resolver.lookup(part1 / "ddd.mp4").group == "dfdc:ccc.mp4"
    assert resolver.lookup(part1 / "eee.mp4") == LabelInfo(1, None, "dfdc:eee.mp4", "dfdc-metadata")
    assert resolver.lookup(part0 / "unlisted.mp4") == NONE
    assert len(resolver) == 5
    assert sorted(p.parent.name for p in resolver.label_files) == [
        "dfdc_train_part_0", "dfdc_train_part_1"]


def test_dfdc_paths_match_relative_absolute_and_symlinked(dfdc: Path, tmp_path: Path, monkeypatch):
    resolver = build_label_resolver(None, [dfdc])
    fake = dfdc / "dfdc_train_part_0" / "aaa.mp4"
    monkeypatch.chdir(dfdc / "dfdc_train_part_0")
    assert resolver.lookup(Path("./aaa.mp4")).label == 1
    assert resolver.lookup(Path("../dfdc_train_part_1/ccc.mp4")).label == 0
    link = tmp_path / "elsewhere" / "link.mp4"
    link.parent.mkdir()
    os.symlink(fake, link)
    assert resolver.lookup(link).label == 1
    assert resolver.lookup(fake.absolute()).label == 1


def test_dfdc_discovered_from_relative_input_folder(dfdc: Path, monkeypatch):
    monkeypatch.chdir(dfdc)
    resolver = build_label_resolver(None, [Path("dfdc_train_part_1")])
    assert resolver.lookup(dfdc / "dfdc_train_part_1" / "ddd.mp4").label == 1
    # part 0 is not under the input folder, so its metadata is not read
    assert resolver.lookup(dfdc / "dfdc_train_part_0" / "aaa.mp4") == NONE


def test_dfdc_file_inputs_use_the_metadata_beside_them(dfdc: Path):
    files = sorted((dfdc / "dfdc_train_part_0").glob("*.mp4"))
    resolver = build_label_resolver(None, files)
    assert resolver.lookup(files[0]).label == 1  # aaa.mp4
    assert len(resolver.label_files) == 1


def test_overlapping_inputs_read_each_metadata_once(dfdc: Path):
    resolver = build_label_resolver(None, [dfdc, dfdc / "dfdc_train_part_0", dfdc])
    assert len(resolver.label_files) == 2
    assert len(resolver) == 5


def test_explicit_metadata_json(dfdc: Path):
    meta = dfdc / "dfdc_train_part_1" / "metadata.json"
    resolver = build_label_resolver(meta, [dfdc])
    assert resolver.lookup(dfdc / "dfdc_train_part_1" / "ddd.mp4").label == 1
    # an explicit file replaces discovery: part 0's metadata is not used
    assert resolver.lookup(dfdc / "dfdc_train_part_0" / "aaa.mp4") == NONE
    assert resolver.label_files == (meta,)


def test_discovered_non_dfdc_metadata_is_ignored_but_explicit_is_an_error(tmp_path: Path):
    other = write(tmp_path / "clips" / "metadata.json", json.dumps({"fps": 25, "author": "x"}))
    touch(tmp_path / "clips" / "a.mp4")
    resolver = build_label_resolver(None, [tmp_path / "clips"])
    assert resolver.lookup(tmp_path / "clips" / "a.mp4") == NONE
    assert len(resolver.ignored) == 1 and str(other) in resolver.ignored[0]
    with pytest.raises(LabelError, match="not a DFDC metadata.json"):
        build_label_resolver(other, [])


def test_broken_metadata_json_raises(tmp_path: Path):
    write(tmp_path / "part" / "metadata.json", '{"aaa.mp4": {"label": "FAKE"')
    with pytest.raises(LabelError, match="cannot read as JSON"):
        build_label_resolver(None, [tmp_path])


def test_dfdc_unknown_label(tmp_path: Path):
    meta = write(tmp_path / "metadata.json", json.dumps({
        "a.mp4": {"label": "FAKE"}, "b.mp4": {"label": "MAYBE"}}))
    resolver = build_label_resolver(None, [tmp_path])
    assert resolver.lookup(tmp_path / "a.mp4").label == 1
    assert resolver.lookup(tmp_path / "b.mp4") == NONE
    assert len(resolver.skipped) == 1 and "'MAYBE'" in resolver.skipped[0]
    with pytest.raises(LabelError, match=r"'b\.mp4'.*'MAYBE'"):
        build_label_resolver(meta, [], skip_unknown_labels=False)


def test_conflicting_labels_across_parts_raise(tmp_path: Path):
    write(tmp_path / "p0" / "metadata.json", json.dumps({"../shared/x.mp4": {"label": "FAKE"}}))
    write(tmp_path / "p1" / "metadata.json", json.dumps({"../shared/x.mp4": {"label": "REAL"}}))
    with pytest.raises(LabelError, match="conflicting labels"):
        build_label_resolver(None, [tmp_path])


# --- FaceForensics++ layout --------------------------------------------------------------


@pytest.fixture
def ffpp(tmp_path: Path) -> Path:
    root = tmp_path / "FaceForensics++"
    touch(root / "original_sequences/youtube/c23/videos/004.mp4")
    touch(root / "original_sequences/actors/raw/videos/01__exit_phone_room.mp4")
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"):
        touch(root / f"manipulated_sequences/{method}/c40/videos/004_982.mp4")
    touch(root / "manipulated_sequences/DeepFakeDetection/c23/videos" / DFD_FAKE)
    touch(root / "manipulated_sequences/Deepfakes/masks/videos/004_982.mp4")
    touch(root / "manipulated_sequences/Deepfakes/c23/videos/notes.txt")
    touch(root / "manipulated_sequences/Deepfakes/c23/images/004_982/0000.png")
    return root


def test_ffpp_layout(ffpp: Path):
    resolver = build_label_resolver(None, [ffpp])
    assert resolver.lookup(ffpp / "original_sequences/youtube/c23/videos/004.mp4") == LabelInfo(
        0, "real", "ffpp:004", "ffpp-layout")
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"):
        info = resolver.lookup(ffpp / f"manipulated_sequences/{method}/c40/videos/004_982.mp4")
        assert info == LabelInfo(1, method, "ffpp:004", "ffpp-layout")
    dfd = resolver.lookup(ffpp / "manipulated_sequences/DeepFakeDetection/c23/videos" / DFD_FAKE)
    assert dfd == LabelInfo(1, "DeepFakeDetection", "ffpp:01", "ffpp-layout")
    actor = resolver.lookup(ffpp / "original_sequences/actors/raw/videos/01__exit_phone_room.mp4")
    assert actor == LabelInfo(0, "real", "ffpp:01", "ffpp-layout")
    # masks, non-videos and anything outside the <root>/<name>/<compression>/videos/ shape
    deepfakes = ffpp / "manipulated_sequences/Deepfakes"
    assert resolver.lookup(deepfakes / "masks/videos/004_982.mp4") == NONE
    assert resolver.lookup(deepfakes / "c23/videos/notes.txt") == NONE
    assert resolver.lookup(deepfakes / "c23/images/004_982/0000.png") == NONE
    assert resolver.lookup(ffpp / "004.mp4") == NONE


def test_ffpp_layout_needs_no_file_and_works_through_symlinks(ffpp: Path, tmp_path, monkeypatch):
    resolver = LabelResolver()  # no label files at all: the layout rule still applies
    target = ffpp / "manipulated_sequences/FaceSwap/c40/videos/004_982.mp4"
    # a link with a plain name pointing into the FF++ tree
    plain = tmp_path / "flat" / "clip.mp4"
    plain.parent.mkdir()
    os.symlink(target, plain)
    assert resolver.lookup(plain).method == "FaceSwap"
    # an FF++-shaped tree of links pointing at files with plain names
    blob = touch(tmp_path / "blobs" / "0a1b2c.mp4")
    shaped = tmp_path / "mirror/manipulated_sequences/Face2Face/c23/videos/010_005.mp4"
    shaped.parent.mkdir(parents=True)
    os.symlink(blob, shaped)
    assert resolver.lookup(shaped) == LabelInfo(1, "Face2Face", "ffpp:010", "ffpp-layout")
    monkeypatch.chdir(ffpp / "original_sequences/youtube/c23")
    assert resolver.lookup(Path("videos/004.mp4")).label == 0


# --- CSV ---------------------------------------------------------------------------------


def test_csv_labels_any_case_relative_and_absolute_paths(tmp_path: Path):
    abs_video = touch(tmp_path / "other" / "abs.mp4")
    csv_path = write(tmp_path / "data" / "labels.csv", (
        "path,label,notes\n"
        "videos/a.mp4,REAL,x\n"
        "videos/b.mp4, fake ,y\n"
        "videos/c.mp4,1,\n"
        "videos/d.mp4,0\n"
        "./videos/e.mp4,Real,\n"
        f"{abs_video},FaKe,\n"
        "\n"
        "../data/videos/f.mp4,real,\n"
    ))
    resolver = build_label_resolver(csv_path, [tmp_path / "data"])
    videos = tmp_path / "data" / "videos"
    got = {name: resolver.lookup(videos / f"{name}.mp4").label for name in "abcdef"}
    assert got == {"a": 0, "b": 1, "c": 1, "d": 0, "e": 0, "f": 0}
    assert resolver.lookup(videos / "a.mp4") == LabelInfo(0, "real", None, "csv")
    assert resolver.lookup(videos / "b.mp4") == LabelInfo(1, None, None, "csv")
    assert resolver.lookup(abs_video).label == 1
    assert resolver.skipped == ()
    assert len(resolver) == 7


def test_csv_kind_or_method_column_names_the_method_of_fakes(tmp_path: Path):
    with_kind = write(
        tmp_path / "k.csv", "Path,Label,Kind\na.mp4,FAKE,faceswap\nb.mp4,REAL,real\nc.mp4,FAKE,\n"
    )
    resolver = build_label_resolver(with_kind, [])
    assert resolver.lookup(tmp_path / "a.mp4") == LabelInfo(1, "faceswap", None, "csv")
    assert resolver.lookup(tmp_path / "b.mp4").method == "real"
    assert resolver.lookup(tmp_path / "c.mp4").method is None
    both = write(tmp_path / "m.csv", "path,label,kind,method\na.mp4,FAKE,reenactment,Face2Face\n")
    assert build_label_resolver(both, []).lookup(tmp_path / "a.mp4").method == "Face2Face"


def test_csv_group_column_keeps_an_identity_on_one_side(tmp_path: Path):
    labels = write(tmp_path / "g.csv", "path,label,group\na.mp4,REAL,speaker1\nb.mp4,FAKE,speaker1\nc.mp4,REAL,\n")
    resolver = build_label_resolver(labels, [])
    assert resolver.lookup(tmp_path / "a.mp4") == LabelInfo(0, "real", "speaker1", "csv")
    assert resolver.lookup(tmp_path / "b.mp4").group == "speaker1"
    assert resolver.lookup(tmp_path / "c.mp4").group is None


def test_csv_with_bom_and_spaced_header(tmp_path: Path):
    csv_path = tmp_path / "bom.csv"
    csv_path.write_bytes("\ufeff path , LABEL \r\na.mp4,FAKE\r\n".encode("utf-8"))
    assert build_label_resolver(csv_path, []).lookup(tmp_path / "a.mp4").label == 1


@pytest.mark.parametrize(
    "header, missing",
    [("file,label", "'path'"), ("path,target", "'label'"),
     ("name,y", "'path', 'label'"), ("", "'path', 'label'")],
)
def test_csv_missing_columns(tmp_path: Path, header: str, missing: str):
    csv_path = write(tmp_path / "bad.csv", f"{header}\n" + ("a.mp4,1\n" if header else ""))
    with pytest.raises(LabelError) as err:
        build_label_resolver(csv_path, [])
    message = str(err.value)
    assert f"missing column(s) {missing}" in message
    assert "'path' and 'label'" in message and str(csv_path) in message


def test_csv_bad_label_names_file_line_and_value(tmp_path: Path):
    csv_path = write(tmp_path / "labels.csv", "path,label\na.mp4,REAL\nb.mp4,FAEK\n")
    with pytest.raises(LabelError) as err:
        build_label_resolver(csv_path, [], skip_unknown_labels=False)
    message = str(err.value)
    assert str(csv_path) in message and "line 3" in message and "'FAEK'" in message


def test_csv_unknown_labels_skipped_or_rejected(tmp_path: Path):
    csv_path = write(tmp_path / "labels.csv", (
        "path,label,kind\n"
        "videos/a.mp4,FAKE,lipsync\n"
        "audio/a.wav,AUDIO,audio\n"
        "videos/b.mp4,,\n"
        "videos/c.mp4,REAL,real\n"
    ))
    resolver = build_label_resolver(csv_path, [])  # skip_unknown_labels defaults to True
    assert len(resolver.skipped) == 2
    assert "line 3" in resolver.skipped[0] and "'AUDIO'" in resolver.skipped[0]
    assert resolver.lookup(tmp_path / "audio/a.wav") == NONE
    assert resolver.lookup(tmp_path / "videos/b.mp4") == NONE
    assert resolver.lookup(tmp_path / "videos/a.mp4") == LabelInfo(1, "lipsync", None, "csv")
    assert resolver.lookup(tmp_path / "videos/c.mp4").label == 0
    with pytest.raises(LabelError, match=r"line 3.*'AUDIO'"):
        build_label_resolver(csv_path, [], skip_unknown_labels=False)


def test_csv_empty_path_and_conflicting_duplicates_raise(tmp_path: Path):
    empty = write(tmp_path / "e.csv", "path,label\n,FAKE\n")
    with pytest.raises(LabelError, match="line 2: empty 'path'"):
        build_label_resolver(empty, [])
    dup = write(tmp_path / "d.csv", "path,label\na.mp4,FAKE\n./a.mp4,fake\nx/../a.mp4,REAL\n")
    with pytest.raises(LabelError, match=r"conflicting labels.*line 2.*line 4"):
        build_label_resolver(dup, [])


def test_label_file_errors(tmp_path: Path):
    with pytest.raises(LabelError, match="not found"):
        build_label_resolver(tmp_path / "nope.csv", [])
    with pytest.raises(LabelError, match="unsupported"):
        build_label_resolver(write(tmp_path / "labels.txt", "path,label\n"), [])


# --- precedence --------------------------------------------------------------------------


def test_precedence_explicit_then_discovered_then_ffpp_then_none(tmp_path: Path):
    root = tmp_path / "ds"
    ff_video = touch(root / "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4")
    ff_other = touch(root / "manipulated_sequences/Deepfakes/c23/videos/001_870.mp4")
    plain = touch(root / "plain.mp4")
    # a metadata.json that calls the FF++ file REAL: the metadata wins over the layout
    write(root / "metadata.json", json.dumps({
        "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4": {"label": "REAL"},
        "plain.mp4": {"label": "FAKE", "original": "x.mp4"},
    }))
    discovered = build_label_resolver(None, [root])
    assert discovered.lookup(ff_video) == LabelInfo(
        0, "real", "dfdc:manipulated_sequences/Deepfakes/c23/videos/000_003.mp4", "dfdc-metadata"
    )
    assert discovered.lookup(plain).source == "dfdc-metadata"
    assert discovered.lookup(ff_other) == LabelInfo(1, "Deepfakes", "ffpp:001", "ffpp-layout")
    assert discovered.lookup(root / "missing.mp4") == NONE

    # an explicit CSV wins over everything and turns discovery off; FF++ still fills gaps
    csv_path = write(
        tmp_path / "labels.csv",
        "path,label,method\nds/manipulated_sequences/Deepfakes/c23/videos/000_003.mp4,FAKE,custom\n",
    )
    explicit = build_label_resolver(csv_path, [root])
    assert explicit.lookup(ff_video) == LabelInfo(1, "custom", None, "csv")
    assert explicit.lookup(plain) == NONE
    assert explicit.lookup(ff_other).source == "ffpp-layout"


# --- the shared real fixture -------------------------------------------------------------


def test_real_fixture_labels_csv():
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures not present")
    csv_path = FIXTURES / "labels.csv"
    resolver = build_label_resolver(csv_path, [FIXTURES / "videos"], skip_unknown_labels=True)
    videos = FIXTURES / "videos"
    assert resolver.lookup(videos / "ffpp_004.mp4") == LabelInfo(0, "real", None, "csv")
    fake = resolver.lookup(videos / "ffpp_004_982_neuraltextures.mp4")
    assert fake == LabelInfo(1, "reenactment", None, "csv")
    assert resolver.lookup(videos / "dfdc_yhffcuhhjy.mp4").method == "faceswap"
    assert resolver.lookup(videos / "lipsync_output_wav2lip.mp4").method == "lipsync"
    assert resolver.lookup(FIXTURES / "images" / "photo_paul_rudd.jpg").label == 0
    assert resolver.lookup(FIXTURES / "face_crops/fake/aapnvogymq-009-01.png").label == 1
    assert len(resolver.skipped) == 1 and "AUDIO" in resolver.skipped[0]
    assert resolver.lookup(FIXTURES / "audio" / "lipsync_driving_audio.wav") == NONE
    # every listed video and image exists and has a label
    for path in sorted(FIXTURES.rglob("*")):
        if media_kind(path) is not None:
            assert resolver.lookup(path).label in (0, 1), path
    with pytest.raises(LabelError, match="AUDIO"):
        build_label_resolver(csv_path, [], skip_unknown_labels=False)


def test_real_fixture_relative_path_from_the_project_root(monkeypatch):
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures not present")
    monkeypatch.chdir(REPO)
    resolver = build_label_resolver(
        Path("../shared/fixtures/labels.csv"), [Path("../shared/fixtures/videos")]
    )
    assert resolver.lookup(Path("../shared/fixtures/videos/ffpp_004.mp4")).label == 0
    assert resolver.lookup(Path("../shared/fixtures/videos/dfdc_yhffcuhhjy.mp4")).label == 1


def test_extract_and_eval_read_a_labels_csv_by_one_rule(tmp_path):
    """A CSV with both column pairs is read as path,label by both commands, extra columns
    kept, an unknown label left out (eval) or named (extract)."""
    from vidfake.eval.datasets import load_eval_set
    from vidfake.extract.labels import read_label_csv

    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_bytes(b"")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("Path,Label,img_name,target,Source\na.mp4,FAKE,x.jpg,0,web\nb.mp4,maybe,y.jpg,1,tv\n,,,,\n")
    rows = read_label_csv(csv_path)
    assert [(r.name, r.label, r.images, r.columns["source"]) for r in rows] == [
        ("a.mp4", 1, False, "web"), ("b.mp4", None, False, "tv")]
    eval_set = load_eval_set(csv_path)
    assert [(i.name, i.label, i.groups.get("source")) for i in eval_set.items] == [("a.mp4", 1, "web")]
    assert eval_set.notes == [f"{csv_path}, line 3: label 'maybe' is not REAL/FAKE/0/1, row left out"]
    assert list(build_label_resolver(csv_path, [tmp_path]).skipped) == [f"{csv_path}, line 3: label 'maybe' for 'b.mp4'"]
    with pytest.raises(LabelError, match="line 3: unrecognised label 'maybe'"):
        build_label_resolver(csv_path, [tmp_path], skip_unknown_labels=False)
