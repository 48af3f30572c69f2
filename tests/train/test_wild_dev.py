"""Wild-dev: whole repositories held out of training, and the proof that they are."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.paths import CONFIGS, SHARED_DATASETS
from vidfake.train.manifest import ManifestRow, read_manifest
from vidfake.train.wild_dev import (
    MAX_SHARE,
    WILD_DEV_SPLIT,
    build_wild_dev,
    check_separation,
    codec_of,
    family_of,
    read_excluded,
    read_shared_sources,
)

WILD_DEV = CONFIGS / "data" / "wild_dev.csv"
EXCLUDED = SHARED_DATASETS / "public-media" / "EXCLUDED.txt"


def _training_rows() -> list[ManifestRow]:
    """The rows of every committed training manifest (every CSV here but wild-dev's own files)."""
    return [row for path in sorted((CONFIGS / "data").glob("*.csv")) if not path.name.startswith("wild_dev")
            for row in read_manifest(path)]


def _source(repo: str, path: str, label: str = "FAKE", group: str | None = None, split: str = "dev",
            method: str = "Wav2Lip", notes: str = "640x480 3s 25fps h264") -> dict[str, str]:
    return dict(repo=repo, commit="c" * 40, path=path, label=label, dataset="demo", method=method, kind="video",
                bytes="1", group=group or f"{repo}:{path}", split=split, notes=notes)


def _manifest_row(repo: str, path: str, split: str = "train", group: str = "g", sha256: str = "") -> ManifestRow:
    return ManifestRow(repo, "c" * 40, path, "FAKE", split, group, "demo", "swap", "video", sha256=sha256)


# ---- the committed manifest ----

def test_committed_wild_dev_is_large_varied_and_capped():
    rows = read_manifest(WILD_DEV)
    assert {r.split for r in rows} == {WILD_DEV_SPLIT}
    assert {r.kind for r in rows} == {"video"}
    assert len(rows) >= 250
    per_repo = Counter(r.repo for r in rows)
    assert len(per_repo) >= 30
    assert max(per_repo.values()) <= MAX_SHARE * len(rows)
    labels = Counter(r.label for r in rows)
    assert labels["REAL"] >= 0.3 * len(rows) and labels["FAKE"] >= 0.3 * len(rows)
    assert all(len(r.sha256) == 64 for r in rows)
    assert len({r.sha256 for r in rows}) == len(rows)  # no file twice
    families = {r.family for r in rows if r.label == "FAKE"}
    assert {"face swap", "talking head", "lip-sync", "AI-generated video"} <= families


def test_committed_wild_dev_shares_nothing_with_training_or_the_independent_test():
    excluded = read_excluded(EXCLUDED) if EXCLUDED.is_file() else set()
    shared = read_shared_sources(SHARED_DATASETS) if (SHARED_DATASETS / "MANIFEST.csv").is_file() else {}
    training = _training_rows()
    assert any(r.sha256 for r in training if r.split == "train")  # the hash check has something to check
    assert check_separation(read_manifest(WILD_DEV), training, excluded, shared) == []
    if not EXCLUDED.is_file():
        pytest.skip(f"{EXCLUDED} not present: repositories and hashes checked, EXCLUDED.txt not")


# ---- the check itself fails where it must ----

def test_separation_names_a_shared_repository_hash_group_and_excluded_repository():
    training = [_manifest_row("a/train", "x.mp4", sha256="h1", group="person:1"),
                _manifest_row("shared", "grid/v.mpg", sha256="h2"),
                _manifest_row("a/dev", "y.mp4", split="dev", sha256="h3", group="person:2")]
    wild = [_manifest_row("a/train", "other.mp4", split=WILD_DEV_SPLIT, group="w1", sha256="h9"),
            _manifest_row("b/copy", "x_copy.mp4", split=WILD_DEV_SPLIT, group="w2", sha256="h1"),
            _manifest_row("c/person", "z.mp4", split=WILD_DEV_SPLIT, group="person:1", sha256="h8"),
            _manifest_row("d/excluded", "t.mp4", split=WILD_DEV_SPLIT, group="w3", sha256="h7"),
            _manifest_row("lab/grid", "v.mpg", split=WILD_DEV_SPLIT, group="w4", sha256="h6"),
            _manifest_row("e/fine", "dev_twin.mp4", split=WILD_DEV_SPLIT, group="w5", sha256="h3")]
    problems = check_separation(wild, training, {"d/excluded"}, shared_sources={"grid/v.mpg": "lab/grid"})
    assert problems == [
        "repository a/train is in wild-dev and in training",
        "repository lab/grid is in wild-dev and in training",
        "repository d/excluded is in EXCLUDED.txt",
        "b/copy:x_copy.mp4 has the same bytes as training file a/train:x.mp4",
        "group person:1 is in wild-dev and in training",
    ]  # e/fine shares bytes with a dev file only: dev does not train


# ---- the selection rules ----

def test_selection_holds_out_whole_repositories_and_caps_each_source():
    sources = [_source("excl/uded", "a.mp4"), _source("trained/on", "b.mp4"), _source("big/page", "c.mp4"),
               _source("taints/training", "copy.mp4"), _source("taints/training", "own.mp4"),
               _source("person/held", "p.mp4", group="person:t")]
    sources += [_source(f"small/r{i}", f"{j}.mp4", label="REAL" if j % 2 else "FAKE")
                for i in range(12) for j in range(2)]
    sources += [_source("large/one", f"{j}.mp4", label="REAL" if j < 10 else "FAKE", group=f"g{j % 5}")
                for j in range(40)]
    sources += [_source("twin/a", "t.mp4"), _source("twin/b", "t_again.mp4"), _source("twin/b", "t2.mp4")]
    hashes = {(s["repo"], s["path"]): f"{s['repo']}/{s['path']}" for s in sources}
    hashes[("taints/training", "copy.mp4")] = "train-bytes"
    hashes[("twin/b", "t_again.mp4")] = hashes[("twin/a", "t.mp4")]
    training = [_manifest_row("trained/on", "x.mp4", sha256="x"), _manifest_row("else/where", "y.mp4",
                                                                                sha256="train-bytes", group="person:t")]
    rows, report = build_wild_dev(sources, {"excl/uded"}, training, hashes, reserved={"big/page": "kept"})
    repos = Counter(r.repo for r in rows)
    assert not {"excl/uded", "trained/on", "big/page", "taints/training", "person/held"} & set(repos)
    assert report.left_out["taints/training"] == "shares files with training (content hash)"
    # 24 small + 3 twin files (one copy dropped) + the capped large repository
    cap = int(MAX_SHARE * len(rows))
    assert repos["large/one"] == cap and report.sampled_down["large/one"] == (cap, 40)
    assert {r.label for r in rows if r.repo == "large/one"} == {"REAL", "FAKE"}
    assert repos["twin/a"] + repos["twin/b"] == 2  # one source, its duplicate kept once
    assert all(r.split == WILD_DEV_SPLIT and r.sha256 for r in rows)
    assert check_separation(rows, training, {"excl/uded"}) == []


def test_sampling_down_is_reproducible():
    sources = [_source("large/one", f"{j}.mp4", label="REAL" if j % 3 else "FAKE") for j in range(60)]
    sources += [_source(f"small/r{i}", "a.mp4") for i in range(40)]
    hashes = {(s["repo"], s["path"]): f"{s['repo']}/{s['path']}" for s in sources}
    first, _ = build_wild_dev(sources, set(), [], hashes, reserved={})
    second, _ = build_wild_dev(list(reversed(sources)), set(), [], hashes, reserved={})
    assert first == second


@pytest.mark.parametrize("label, dataset, method, family", [
    ("REAL", "interview", "real", "real"),
    ("FAKE", "FaceForensics++", "NeuralTextures", "reenactment"),
    ("FAKE", "FaceForensics++", "Deepfakes", "face swap"),
    ("FAKE", "InfiniteTalk project page (LatentSync baseline)", "LatentSync", "lip-sync"),
    ("FAKE", "AniTalker", "talking-head", "talking head"),
    ("FAKE", "Phantom (repo assets)", "Phantom", "AI-generated video"),
])
def test_family_of(label, dataset, method, family):
    assert family_of(label, dataset, method) == family


def test_codec_of_reads_the_notes_field():
    assert codec_of("854x480 32.36s 25.0fps h264; c23 video") == "h264"
    assert codec_of("224x224 1.7s 25.0fps mpeg4; audio yes") == "mpeg4"
    assert codec_of("nothing useful") == "unknown"


def test_the_pages_kept_for_training_keep_groups_apart_and_crop_their_layouts():
    from vidfake.train.wild_dev import reserved_training_rows

    page = "big/page"
    sources = [_source(page, "single.mp4", notes="1024x1024 6s 30fps h264; single"),
               _source(page, "pair.mp4", notes="2048x1024 8s 30fps h264; sidebyside; left input, right edit"),
               _source(page, "three.mp4", notes="3072x1024 9s 30fps h264; triptych; three panels"),
               _source(page, "which.mp4", notes="sidebyside; two panels (which side unclear)"),
               _source(page, "held.mp4", group="person:obama"),
               _source(page, "anim.gif"), _source("other/repo", "x.mp4")]
    hashes = {(s["repo"], s["path"]): s["path"] for s in sources}
    rows = reserved_training_rows(sources, hashes, held_groups={"person:obama"}, reserved={page: "kept"})
    assert [(r.path, r.split, r.transform, r.sha256) for r in rows] == [
        ("pair.mp4", "train", "right-half", "pair.mp4"), ("single.mp4", "train", "", "single.mp4")]
