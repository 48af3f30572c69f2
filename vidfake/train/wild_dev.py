"""Wild-dev: a development set of whole repositories that training never sees.

Why it exists: the earlier development split (``dev`` in ``default_model.csv``, called
*dev-groups* from now on) keeps people and source videos apart from training, but its files
come from the same repositories, pipelines and generators as the training files. A model
can score well there by recognising sources, and on an independent test of wild video it
did: 0.79 against 0.70 on dev-groups, 0.56 against 0.58 on the independent test. Wild-dev
holds out *sources* instead:

* a repository that gives one file to wild-dev gives none to training; repositories whose
  files are byte-identical (the same content hash) count as one source, and so do the
  repositories behind ``../shared/datasets``;
* no repository a shipped model was trained on is eligible (so the shipped models can be
  measured on it), nor the large generator pages kept back to train the next model
  (``RESERVED_FOR_TRAINING``), nor any group (person, source video) that training holds;
* no source is more than ``MAX_SHARE`` of the set: large ones are sampled down, spread
  over label, method and group;
* files keep the codecs they came in: nothing is re-encoded (side-by-side demos are cropped,
  as in training).

``configs/data/wild_dev.csv`` is written by::

    python -m vidfake.train.wild_dev --sources ../shared/datasets/public-media/sources.csv \\
        --training configs/data/default_model.csv --mirrors MIRRORS --shared ../shared/datasets \\
        --out configs/data/wild_dev.csv

and ``check_separation`` (used by the tests) proves the separation from the committed
manifests alone.
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidfake.train.manifest import SHARED_REPO, ManifestError, ManifestRow, read_manifest, row_sha256, write_manifest

__all__ = ["MAX_SHARE", "RESERVED_FOR_TRAINING", "WILD_DEV_SPLIT", "SelectionReport", "build_wild_dev",
           "check_separation", "codec_of", "family_of", "read_excluded", "read_shared_sources",
           "reserved_training_rows"]

WILD_DEV_SPLIT = "wild-dev"
MAX_SHARE = 0.08  # no source more than this share of the set

# Large generator pages new to the project: they train the next model (issue 25 asks to keep
# the big ones for training and let wild-dev take many small repositories).
RESERVED_FOR_TRAINING = {
    "bytedance/EchoVideo": "74 identity-preserving text-to-video outputs",
    "antgroup/antgroup.github.io": "62 EchoMimic v1/v3 outputs",
    "omnihuman-lab/omnihuman-lab.github.io": "35 OmniHuman outputs",
    "Omni-Avatar/Omni-Avatar.github.io": "26 OmniAvatar outputs",
    "loopyavatar/loopyavatar.github.io": "25 Loopy outputs",
    "ID-Animator/ID-Animator": "20 ID-Animator outputs",
    "yuval-alaluf/stylegan3-editing": "19 StyleGAN3 video edits",
    "jdh-algo/JoyHallo": "18 JoyHallo and Hallo outputs",
    "Fantasy-AMAP/fantasy-talking": "16 FantasyTalking outputs",
    "Fantasy-AMAP/fantasy-id": "14 FantasyID outputs",
    "cyberhost/cyberhost.github.io": "11 CyberHost outputs",
    "jixiaozhong/jixiaozhong.github.io": "10 Sonic outputs",
}

# What a fake does, for per-family reporting (matched against dataset and method, lower case).
FAMILIES = (
    ("face swap", ("deepfakes", "faceswap", "celeb-synthesis", "dfdc", "deep-live-cam", "roop", "simswap")),
    ("reenactment", ("face2face", "neuraltextures", "hyperreenact")),
    ("lip-sync", ("latentsync", "wav2lip", "musetalk", "dinet", "lip-sync", "lipsync")),
    ("AI-generated video", ("phantom", "hunyuancustom", "magic-me", "cogvideo", "echovideo", "id-animator",
                            "consisid", "fantasyid")),
    ("talking head", ("talking", "anitalker", "infinitetalk", "float", "ditto", "sonic", "styletalk", "echomimic",
                      "persona", "hallo", "omnihuman", "loopy", "avatar", "kdtalker")),
)
REAL_FAMILY = "real"
CODECS = ("h264", "hevc", "mpeg4", "mpeg1video", "mpeg2video", "vp8", "vp9", "av1", "wmv3", "mjpeg", "cinepak", "gif")

# Layouts that must be cropped before scoring (the fake is on the right).
RIGHT_HALF_METHODS = ("-sidebyside", "deep-live-cam-gui")


@dataclass
class SelectionReport:
    """Why each eligible-looking repository is in or out, and what the set holds."""

    kept: Counter = field(default_factory=Counter)  # repo -> files kept
    sampled_down: dict[str, tuple[int, int]] = field(default_factory=dict)  # repo -> (kept, available)
    left_out: dict[str, str] = field(default_factory=dict)  # repo -> reason

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"wild-dev: {sum(self.kept.values())} files from {len(self.kept)} repositories"]
        lines += [f"  sampled down: {repo} {k} of {n}" for repo, (k, n) in sorted(self.sampled_down.items())]
        reasons = Counter(self.left_out.values())
        lines += [f"  left out ({n}): {reason}" for reason, n in reasons.most_common()]
        return "\n".join(lines)


def read_excluded(path: str | Path) -> set[str]:
    """The repositories of EXCLUDED.txt (they hold the independent test): one per line, # comments."""
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")}


def read_shared_sources(shared: str | Path) -> dict[str, str]:
    """``../shared/datasets`` file path -> the repository it was taken from (its MANIFEST.csv)."""
    with (Path(shared) / "MANIFEST.csv").open(newline="") as handle:
        return {r["path"]: r["source_repo"].removeprefix("github.com/").split("@")[0] for r in csv.DictReader(handle)}


def family_of(label: str, dataset: str, method: str) -> str:
    """The family a file is reported in: what a fake does, or ``real``."""
    if label == "REAL":
        return REAL_FAMILY
    text = f"{method} {dataset}".lower()
    for family, words in FAMILIES:
        if any(word in text for word in words):
            return family
    return "other"


def codec_of(notes: str) -> str:
    """The video codec named in a sources.csv ``notes`` field (``unknown`` when none is)."""
    words = set(re.findall(r"[a-z0-9]+", notes.lower()))
    return next((codec for codec in CODECS if codec in words), "unknown")


def _source_components(repos: Iterable[str], hashes: dict[tuple[str, str], str]) -> dict[str, str]:
    """Repository -> its source: repositories that share a content hash are one source
    (the alphabetically first name stands for it)."""
    parent = {repo: repo for repo in repos}

    def root(repo: str) -> str:
        while parent[repo] != repo:
            parent[repo] = parent[parent[repo]]
            repo = parent[repo]
        return repo

    by_hash: dict[str, list[str]] = defaultdict(list)
    for (repo, _), digest in hashes.items():
        if repo in parent:
            by_hash[digest].append(repo)
    for members in by_hash.values():
        for other in members[1:]:
            a, b = root(members[0]), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {repo: root(repo) for repo in parent}


def _training_repositories(training: Sequence[ManifestRow], shared_sources: dict[str, str]) -> set[str]:
    """The repositories training rows come from, ``../shared/datasets`` files counted as the
    repository each was taken from (``shared_sources``; ``shared`` where unknown)."""
    return {shared_sources.get(r.path, r.repo) if r.repo == SHARED_REPO else r.repo
            for r in training if r.split == "train"}


def _row_from_source(raw: dict[str, str], split: str, transform: str, sha256: str) -> ManifestRow:
    """A sources.csv row as a manifest row of ``split``."""
    return ManifestRow(
        repo=raw["repo"], commit=raw["commit"], path=raw["path"], label=raw["label"], split=split,
        group=raw["group"], dataset=raw["dataset"], method=raw["method"], kind="video", transform=transform,
        family=family_of(raw["label"], raw["dataset"], raw["method"]), sha256=sha256,
        codec=codec_of(raw.get("notes", "")))


def _spread_sample(rows: Sequence[ManifestRow], hashes: dict[tuple[str, str], str], k: int) -> list[ManifestRow]:
    """``k`` rows spread over label, method and group, in a fixed order (by content hash)."""
    strata: dict[tuple[str, str, str], list[ManifestRow]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: hashes[(r.repo, r.path)]):
        strata[(row.label, row.method, row.group)].append(row)
    # alternate labels first, then methods, then groups, so a small k still has both classes
    order = sorted(strata, key=lambda key: hashes[(strata[key][0].repo, strata[key][0].path)])
    by_label: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in order:
        by_label[key[0]].append(key)
    picked: list[ManifestRow] = []
    depth = 0
    while len(picked) < k and any(len(v) > depth for v in strata.values()):
        for position in range(max(len(v) for v in by_label.values())):
            for label in sorted(by_label):
                keys = by_label[label]
                if position < len(keys) and depth < len(strata[keys[position]]) and len(picked) < k:
                    picked.append(strata[keys[position]][depth])
        depth += 1
    return picked


def build_wild_dev(
    sources: Sequence[dict[str, str]],
    excluded: set[str],
    training: Sequence[ManifestRow],
    hashes: dict[tuple[str, str], str],
    shared_sources: dict[str, str] | None = None,
    reserved: dict[str, str] | None = None,
    max_share: float = MAX_SHARE,
) -> tuple[list[ManifestRow], SelectionReport]:
    """Choose wild-dev from ``sources`` (rows in sources.csv form) by the rules of the module
    docstring. ``hashes`` maps (repo, path) to the SHA-256 of every candidate's bytes (and
    of training files whose manifest row carries none)."""
    reserved = RESERVED_FOR_TRAINING if reserved is None else reserved
    shared_sources = shared_sources or {}
    report = SelectionReport()
    train_rows = [r for r in training if r.split == "train"]
    training_repos = _training_repositories(training, shared_sources)
    training_groups = {r.group for r in train_rows}
    training_hashes = {r.sha256 or hashes.get((r.repo, r.path), "") for r in train_rows} - {""}

    candidates: list[ManifestRow] = []
    for raw in sources:
        repo, path = raw["repo"], raw["path"]
        if raw["kind"] != "video" or raw["label"] not in ("REAL", "FAKE"):
            continue
        if repo in excluded:
            report.left_out[repo] = "in EXCLUDED.txt (independent test)"
            continue
        if repo in training_repos:
            report.left_out[repo] = "a shipped model trained on it"
            continue
        if repo in reserved:
            report.left_out[repo] = "kept for training (large generator page)"
            continue
        if raw["split"] == "unused" or path.lower().endswith(".gif") or (repo, path) not in hashes:
            continue  # unusable rows (unknown status, GIFs as in training, files not in the snapshot)
        if raw["group"] in training_groups:
            continue  # a person or source video that training holds
        transform = "right-half" if any(m in raw["method"].lower() for m in RIGHT_HALF_METHODS) else ""
        candidates.append(_row_from_source(raw, WILD_DEV_SPLIT, transform, hashes[(repo, path)]))

    # a candidate repository that shares bytes with training belongs to training
    tainted = {r.repo for r in candidates if r.sha256 in training_hashes}
    for repo in tainted:
        report.left_out[repo] = "shares files with training (content hash)"
    candidates = [r for r in candidates if r.repo not in tainted]
    # byte-identical files across candidate repositories: keep one copy
    seen: set[str] = set()
    unique = []
    for row in sorted(candidates, key=lambda r: (r.repo, r.path)):
        if row.sha256 not in seen:
            seen.add(row.sha256)
            unique.append(row)
    source_of = _source_components({r.repo for r in candidates}, {(r.repo, r.path): r.sha256 for r in candidates})

    by_source: dict[str, list[ManifestRow]] = defaultdict(list)
    for row in unique:
        by_source[source_of[row.repo]].append(row)
    cap = len(unique)
    while True:  # the cap depends on the set's size, which depends on the cap
        size = sum(min(len(rows), cap) for rows in by_source.values())
        new_cap = max(1, int(max_share * size))
        if new_cap >= cap:
            break
        cap = new_cap
    chosen: list[ManifestRow] = []
    for source, rows in sorted(by_source.items()):
        picked = _spread_sample(rows, hashes, cap) if len(rows) > cap else rows
        if len(rows) > cap:
            report.sampled_down[source] = (len(picked), len(rows))
        chosen += picked
    for row in chosen:
        report.kept[row.repo] += 1
    return sorted(chosen, key=lambda r: (r.repo, r.path)), report


def reserved_training_rows(sources: Sequence[dict[str, str]], hashes: dict[tuple[str, str], str],
                           held_groups: set[str], reserved: dict[str, str] | None = None) -> list[ManifestRow]:
    """The files of the repositories kept for training (``RESERVED_FOR_TRAINING``) as
    ``train`` rows: labelled videos, GIFs and ``?`` rows left out as everywhere, no group
    that a development set holds (``held_groups``), side-by-side demos cut to their right
    half, and three-panel or unclear layouts left out (no crop is known to give the fake)."""
    reserved = RESERVED_FOR_TRAINING if reserved is None else reserved
    rows = []
    for raw in sources:
        repo, path, notes = raw["repo"], raw["path"], raw.get("notes", "").lower()
        if (repo not in reserved or raw["kind"] != "video" or raw["label"] not in ("REAL", "FAKE")
                or raw["split"] == "unused" or path.lower().endswith(".gif") or (repo, path) not in hashes
                or raw["group"] in held_groups or "triptych" in notes or "unclear" in notes):
            continue
        transform = "right-half" if "sidebyside" in notes or "side-by-side" in notes else ""
        rows.append(_row_from_source(raw, "train", transform, hashes[(repo, path)]))
    return sorted(rows, key=lambda r: (r.repo, r.path))


def check_separation(wild_dev: Sequence[ManifestRow], training: Sequence[ManifestRow], excluded: set[str],
                     shared_sources: dict[str, str] | None = None) -> list[str]:
    """Every way ``wild_dev`` touches training or the independent test, as sentences (empty
    when separate): a shared repository (the repositories behind ../shared/datasets
    included), a shared content hash where both manifests know it, a shared group, or a
    repository from EXCLUDED.txt."""
    train_rows = [r for r in training if r.split == "train"]
    train_repos = _training_repositories(training, shared_sources or {})
    problems = [f"repository {repo} is in wild-dev and in training" for repo in
                sorted({r.repo for r in wild_dev} & train_repos)]
    problems += [f"repository {repo} is in EXCLUDED.txt" for repo in sorted({r.repo for r in wild_dev} & excluded)]
    train_hashes = {r.sha256: r for r in train_rows if r.sha256}
    problems += [f"{r.repo}:{r.path} has the same bytes as training file {train_hashes[r.sha256].repo}:"
                 f"{train_hashes[r.sha256].path}" for r in wild_dev if r.sha256 in train_hashes]
    problems += [f"group {group} is in wild-dev and in training" for group in
                 sorted({r.group for r in wild_dev} & {r.group for r in train_rows})]
    return problems


def _hash_sources(sources: Sequence[dict[str, str]], mirrors: Path) -> dict[tuple[str, str], str]:
    from tqdm import tqdm

    hashes = {}
    wanted = [r for r in sources if r["kind"] == "video" and r["label"] in ("REAL", "FAKE")]
    for raw in tqdm(wanted, desc="hash", unit="file"):
        row = ManifestRow(raw["repo"], raw["commit"], raw["path"], raw["label"], "train", "g", "", "", "video")
        try:
            hashes[(row.repo, row.path)] = row_sha256(row, mirrors, None)
        except ManifestError:
            continue  # not in the local copies: the file cannot be a candidate
    return hashes


def main(argv: list[str] | None = None) -> int:
    """``python -m vidfake.train.wild_dev``: write the wild-dev manifest; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m vidfake.train.wild_dev", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=Path, required=True, nargs="+",
                        help="sources.csv file(s) of labelled media (public-media's, and any of your own)")
    parser.add_argument("--excluded", type=Path, help="EXCLUDED.txt (default: beside the first --sources)")
    parser.add_argument("--training", type=Path, required=True, nargs="+", help="manifest(s) whose train rows train")
    parser.add_argument("--mirrors", type=Path, required=True, help="folder of local repository copies")
    parser.add_argument("--shared", type=Path, required=True, help="the ../shared/datasets folder")
    parser.add_argument("--out", type=Path, required=True, help="where to write the wild-dev manifest")
    parser.add_argument("--reserved-out", type=Path,
                        help="also write the files of the repositories kept for training as a train manifest here")
    args = parser.parse_args(argv)
    try:
        sources = []
        for path in args.sources:
            with path.open(newline="") as handle:
                sources += list(csv.DictReader(handle))
        excluded = read_excluded(args.excluded or args.sources[0].parent / "EXCLUDED.txt")
        training = [row for path in args.training for row in read_manifest(path)]
        shared_sources = read_shared_sources(args.shared)
    except (OSError, ManifestError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    hashes = _hash_sources([r for r in sources if r["repo"] not in excluded], args.mirrors)
    train_rows = [r for r in training if r.split == "train" and (r.repo, r.path) not in hashes and r.kind == "video"]
    for row in train_rows:  # training videos outside sources.csv (../shared/datasets)
        try:
            hashes[(row.repo, row.path)] = row_sha256(row, args.mirrors, args.shared)
        except ManifestError:
            continue
    rows, report = build_wild_dev(sources, excluded, training, hashes, shared_sources)
    problems = check_separation(rows, training, excluded, shared_sources)
    if problems:
        print("error: the selection is not separate from training:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    write_manifest(rows, args.out)
    print(report.summary())
    if args.reserved_out is not None:
        held = {r.group for r in rows} | {r.group for r in training if r.split != "train"}
        extra = reserved_training_rows(sources, hashes, held)
        problems = check_separation(rows, extra, excluded, shared_sources)
        if problems:
            print("error: the reserved rows touch wild-dev:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        write_manifest(extra, args.reserved_out)
        print(f"kept for training: {len(extra)} files from {len({r.repo for r in extra})} repositories "
              f"in {args.reserved_out}")
    counts = Counter((r.family, r.label) for r in rows)
    print("families: " + ", ".join(f"{fam} {label} {n}" for (fam, label), n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
