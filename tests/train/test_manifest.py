"""Data manifests: checks on read, and rebuilding media from a local git copy and a shared folder."""
from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from tests.paths import CONFIGS, SHARED_DATASETS
from vidfake.testing import media
from vidfake.train.manifest import ManifestError, ManifestRow, main, materialize, read_manifest, write_manifest


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path) -> tuple[Path, str]:
    """A bare copy of owner/name (as `fetch` lays it out) with three files, two byte-identical."""
    work = tmp_path / "work"
    (work / "clips").mkdir(parents=True)
    (work / "clips" / "a.bin").write_bytes(b"alpha")
    (work / "clips" / "copy_of_a.bin").write_bytes(b"alpha")
    (work / "clips" / "b.bin").write_bytes(b"beta")
    side = np.zeros((6, 64, 128, 3), np.uint8)
    side[:, :, 64:] = 200  # the right half is bright: the swap side
    media.write_video(work / "clips" / "side.mp4", side)
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "media")
    commit = _git(work, "rev-parse", "HEAD")
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "owner+name" / "repo")], check=True)
    return mirrors, commit


def _row(commit: str, path: str, split: str = "train", group: str = "g1", label: str = "FAKE", **extra) -> ManifestRow:
    values = dict(repo="owner/name", commit=commit, path=path, label=label, split=split, group=group,
                  dataset="set", method="swap", kind="video")
    values.update(extra)
    return ManifestRow(**values)


def test_materialize_copies_dedupes_and_writes_labels(tmp_path, mirror):
    mirrors, commit = mirror
    shared = tmp_path / "shared"
    (shared / "faces").mkdir(parents=True)
    (shared / "faces" / "f.jpg").write_bytes(b"face")
    rows = [
        _row(commit, "clips/a.bin"),
        _row(commit, "clips/copy_of_a.bin"),  # same bytes: kept once
        _row(commit, "clips/b.bin", split="dev", group="g2", label="REAL", method="real"),
        ManifestRow("shared", "c0ffee", "faces/f.jpg", "REAL", "train", "p1", "faces", "real", "image"),
    ]
    out = tmp_path / "out"
    report = materialize(rows, out, mirrors, shared, progress=False)
    assert report.written == {"train": 2, "dev": 1}
    assert report.duplicates == [("owner+name/clips/copy_of_a.bin", "owner+name/clips/a.bin")]
    assert report.failed == []
    assert (out / "owner+name/clips/a.bin").read_bytes() == b"alpha"
    assert (out / "shared/faces/f.jpg").read_bytes() == b"face"
    with (out / "labels_train.csv").open() as handle:
        train = list(csv.DictReader(handle))
    assert [(r["path"], r["label"], r["group"], r["family"]) for r in train] == [
        ("owner+name/clips/a.bin", "FAKE", "g1", "set"), ("shared/faces/f.jpg", "REAL", "p1", "faces")]
    assert (out / "files_train.txt").read_text() == "owner+name/clips/a.bin\nshared/faces/f.jpg\n"
    with (out / "labels_dev.csv").open() as handle:
        assert [r["path"] for r in csv.DictReader(handle)] == ["owner+name/clips/b.bin"]


def test_missing_file_is_reported_and_the_rest_written(tmp_path, mirror):
    mirrors, commit = mirror
    report = materialize([_row(commit, "clips/none.bin"), _row(commit, "clips/b.bin")], tmp_path / "out", mirrors,
                         progress=False)
    assert report.written == {"train": 1}
    assert len(report.failed) == 1 and "none.bin" in report.failed[0][1]


def test_right_half_keeps_the_swap_side(tmp_path, mirror):
    mirrors, commit = mirror
    out = tmp_path / "out"
    report = materialize([_row(commit, "clips/side.mp4", transform="right-half")], out, mirrors, progress=False)
    assert report.failed == []
    with av.open(str(out / "owner+name/clips/side.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6
    assert frames[0].shape == (64, 64, 3)
    assert abs(float(frames[0].mean()) - 200) < 8  # only the bright half is left
    assert not (out / "owner+name/clips/side.sidebyside.mp4").exists()


def test_read_manifest_round_trip_and_checks(tmp_path):
    rows = [_row("abc", "x.mp4"), _row("abc", "y.mp4", split="dev", group="g2")]
    path = tmp_path / "m.csv"
    write_manifest(rows, path)
    assert sorted(read_manifest(path), key=lambda r: r.path) == rows

    write_manifest([_row("abc", "x.mp4"), _row("abc", "y.mp4", split="dev")], path)
    with pytest.raises(ManifestError, match="group .g1. is in both dev and train"):
        read_manifest(path)
    write_manifest([_row("abc", "x.mp4", label="maybe")], path)
    with pytest.raises(ManifestError, match="label must be REAL or FAKE"):
        read_manifest(path)
    path.write_text("repo,commit,path\nowner/name,abc,x.mp4\n")
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(path)


def test_cli_says_how_to_get_a_missing_clone(tmp_path, capsys):
    path = tmp_path / "m.csv"
    write_manifest([_row("abc", "x.mp4")], path)
    assert main([str(path), "--mirrors", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 1
    assert "git clone --mirror https://github.com/owner/name" in capsys.readouterr().err


def test_committed_manifest_is_valid_and_leak_free():
    path = CONFIGS / "data" / "default_model.csv"
    rows = read_manifest(path)  # raises on a group in two splits
    assert {r.split for r in rows} == {"train", "dev"}
    assert {r.label for r in rows if r.split == "dev"} == {"REAL", "FAKE"}


def test_committed_manifest_uses_no_excluded_repository():
    """Neither a listed file nor the source of a ../shared/datasets file is in EXCLUDED.txt."""
    shared = SHARED_DATASETS
    excluded_list = shared / "public-media" / "EXCLUDED.txt"
    if not excluded_list.is_file():
        pytest.skip(f"{excluded_list} not present")
    excluded = {line.strip() for line in excluded_list.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    with (shared / "MANIFEST.csv").open(newline="") as handle:  # source_repo: github.com/OWNER/NAME@COMMIT
        sources = {r["path"]: r["source_repo"].removeprefix("github.com/").split("@")[0] for r in csv.DictReader(handle)}
    rows = read_manifest(CONFIGS / "data" / "default_model.csv")
    used = {sources[r.path] if r.repo == "shared" else r.repo for r in rows}
    assert not used & excluded
