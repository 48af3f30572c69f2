"""Data manifests: the public files a model was trained, chosen and calibrated on.

Media are never committed. What is committed instead (``configs/data/*.csv``) is one row per
file: the repository and commit it comes from, its path there, its label, its split
(``train`` fits weights, ``dev`` chooses checkpoints and plans and fits the temperature),
its group (files that share people or source footage; a group never spans two splits),
the dataset and method it belongs to, an optional ``transform``, and an optional
``family`` (datasets that are reported together: a generator's fakes with the real
videos that drove them, so each family has both classes and an AUC).

``materialize`` rebuilds the media from local copies of those repositories (bare git
directories, as ``git clone --mirror`` or ``fetch`` leave them) and from
``../shared/datasets`` (rows whose ``repo`` is ``shared``), deduplicates byte-identical
files, applies the transforms, and writes one ``labels_<split>.csv`` per split that
``vidfake extract --labels`` reads (with ``dataset`` and ``method`` columns that
``vidfake eval`` reports per group) and the list of its files, ``files_<split>.txt``::

    python -m vidfake.train.manifest configs/data/default_model.csv --mirrors MIRRORS \\
        --shared ../shared/datasets --out data/media
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from tqdm import tqdm

COLUMNS = ("repo", "commit", "path", "label", "split", "group", "dataset", "method", "kind", "transform", "family",
           "sha256", "codec")
OPTIONAL = ("transform", "family", "sha256", "codec")
SPLITS = ("train", "dev", "wild-dev")  # dev: the dev-groups split; wild-dev: whole repositories held out
TRANSFORMS = ("", "right-half")
SHARED_REPO = "shared"


class ManifestError(ValueError):
    """A manifest row is malformed, or a file it names cannot be found."""


@dataclass(frozen=True)
class ManifestRow:
    """One media file of a manifest (see the module docstring for the columns)."""

    repo: str
    commit: str
    path: str
    label: str  # REAL or FAKE
    split: str  # train or dev
    group: str
    dataset: str
    method: str
    kind: str  # video or image
    transform: str = ""  # "" or "right-half" (side-by-side demos: the swap is on the right)
    family: str = ""  # datasets reported together (a generator's fakes with the real videos they drive)
    sha256: str = ""  # of the file as stored (before a transform): how duplicates across repositories are found
    codec: str = ""  # the video codec it came in, where known (reported per codec by `vidfake eval`)

    @property
    def local_name(self) -> str:
        """Where the file lands under the output folder: repository, then its own path."""
        return f"{self.repo.replace('/', '+')}/{self.path}"


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read and check a manifest CSV: known columns, labels, splits and transforms, and no
    group that spans two splits (the leak the split exists to prevent)."""
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in OPTIONAL and c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(COLUMNS)}")
        rows = [ManifestRow(**{f.name: (raw.get(f.name) or "").strip() for f in fields(ManifestRow)}) for raw in reader]
    group_splits: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        where = f"{path}:{number}"
        if row.label not in ("REAL", "FAKE"):
            raise ManifestError(f"{where}: label must be REAL or FAKE, got {row.label!r}")
        if row.split not in SPLITS:
            raise ManifestError(f"{where}: split must be one of {SPLITS}, got {row.split!r}")
        if row.transform not in TRANSFORMS:
            raise ManifestError(f"{where}: unknown transform {row.transform!r}; known: {TRANSFORMS[1:]}")
        if not row.group:
            raise ManifestError(f"{where}: empty group (every file needs one, so splits stay leak-free)")
        seen = group_splits.setdefault(row.group, row.split)
        if seen != row.split:
            raise ManifestError(f"{where}: group {row.group!r} is in both {seen} and {row.split}")
    return rows


def write_manifest(rows: Iterable[ManifestRow], path: str | Path) -> None:
    """Write rows in manifest form (sorted by split, repository and path, so diffs stay small)."""
    ordered = sorted(rows, key=lambda r: (r.split, r.repo, r.path))
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in ordered:
            writer.writerow([getattr(row, c) for c in COLUMNS])


def find_git_dir(mirrors: Path, repo: str) -> Path:
    """The local copy of ``owner/name`` under ``mirrors``: ``owner+name/repo`` (what
    ``fetch`` makes), ``owner/name.git`` or ``owner/name`` (``git clone --mirror`` or a
    work tree)."""
    owner, _, name = repo.partition("/")
    candidates = [mirrors / f"{owner}+{name}" / "repo", mirrors / f"{owner}+{name}" / "repo" / ".git",
                  mirrors / owner / f"{name}.git", mirrors / owner / name / ".git", mirrors / owner / name]
    for candidate in candidates:
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise ManifestError(f"no local copy of {repo} under {mirrors} (tried {', '.join(str(c) for c in candidates)}); "
                        f"clone it with: git clone --mirror https://github.com/{repo} {mirrors}/{owner}/{name}.git")


def read_blob(row: ManifestRow, mirrors: Path | None, shared: Path | None) -> bytes:
    """The bytes of one row's file, from its repository at its commit or from the shared folder."""
    if row.repo == SHARED_REPO:
        if shared is None:
            raise ManifestError(f"{row.path}: rows from '{SHARED_REPO}' need --shared (the ../shared/datasets folder)")
        source = shared / row.path
        if not source.is_file():
            raise ManifestError(f"{source}: not found")
        return source.read_bytes()
    if mirrors is None:
        raise ManifestError(f"{row.repo}: rows from repositories need --mirrors (the folder of local clones)")
    git_dir = find_git_dir(mirrors, row.repo)
    result = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{row.commit}:{row.path}"], capture_output=True)
    if result.returncode != 0:
        raise ManifestError(f"{row.repo}@{row.commit[:10]}:{row.path}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def right_half(source: Path, target: Path) -> None:
    """Re-encode a side-by-side demo video keeping only its right half (where the swap is),
    audio dropped; H.264 at high quality so the crop adds little compression of its own."""
    import av  # PyAV: only this transform needs it

    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream_in = inp.streams.video[0]
        rate = stream_in.average_rate or 25
        stream_out = None
        for frame in inp.decode(stream_in):
            image = frame.to_ndarray(format="rgb24")
            half = image[:, image.shape[1] // 2 :]
            half = half[: half.shape[0] // 2 * 2, : half.shape[1] // 2 * 2]
            if stream_out is None:
                stream_out = out.add_stream("libx264", rate=rate)
                stream_out.width, stream_out.height = half.shape[1], half.shape[0]
                stream_out.pix_fmt = "yuv420p"
                stream_out.options = {"crf": "16"}
            for packet in stream_out.encode(av.VideoFrame.from_ndarray(half.copy(), format="rgb24")):
                out.mux(packet)
        if stream_out is None:
            raise ManifestError(f"{source}: no video frames to crop")
        for packet in stream_out.encode():
            out.mux(packet)


@dataclass
class MaterializeReport:
    """What ``materialize`` did: files written per split, duplicates skipped, failures."""

    written: Counter
    duplicates: list[tuple[str, str]]  # (skipped row, the row it duplicates)
    failed: list[tuple[str, str]]  # (row, reason)


def materialize(rows: Sequence[ManifestRow], out: Path, mirrors: Path | None = None, shared: Path | None = None,
                progress: bool = True) -> MaterializeReport:
    """Write every row's file under ``out/<owner+name>/<path>``, ``out/labels_<split>.csv``
    and ``out/files_<split>.txt``.

    Byte-identical files are kept once (the first row wins; the manifest's own order), so a
    clip copied into two repositories is neither counted twice nor split across splits.
    A file that cannot be read is reported and skipped: the run goes on.
    """
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    kept: list[ManifestRow] = []
    report = MaterializeReport(Counter(), [], [])
    for row in tqdm(rows, desc="materialize", unit="file", disable=not progress):
        name = row.local_name
        try:
            data = read_blob(row, mirrors, shared)
        except ManifestError as error:
            report.failed.append((name, str(error)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            report.duplicates.append((name, seen[digest]))
            continue
        seen[digest] = name
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            if row.transform == "right-half":
                raw = target.with_name(target.stem + ".sidebyside" + target.suffix)
                raw.write_bytes(data)
                try:
                    right_half(raw, target)
                except Exception as error:  # a broken demo file must not end the rebuild
                    target.unlink(missing_ok=True)
                    report.failed.append((name, f"right-half crop failed: {error}"))
                    continue
                finally:
                    raw.unlink(missing_ok=True)
            else:
                target.write_bytes(data)
        kept.append(row)
        report.written[row.split] += 1
    for split in SPLITS:
        split_rows = [r for r in kept if r.split == split]
        if not split_rows:
            continue
        with (out / f"labels_{split}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "group", "dataset", "family", "method", "kind", "source", "codec"])
            for r in split_rows:
                writer.writerow([r.local_name, r.label, r.group, r.dataset, r.family or r.dataset, r.method, r.kind,
                                 r.repo, r.codec or "unknown"])
        # the same files, one per line, for `xargs -d '\n' -a files_<split>.txt vidfake extract ...`
        (out / f"files_{split}.txt").write_text("".join(f"{r.local_name}\n" for r in split_rows))
    return report


def row_sha256(row: ManifestRow, mirrors: Path | None, shared: Path | None) -> str:
    """The SHA-256 of one row's file as stored (before any transform): what ``sha256`` holds."""
    return hashlib.sha256(read_blob(row, mirrors, shared)).hexdigest()


def with_hashes(rows: Sequence[ManifestRow], mirrors: Path | None, shared: Path | None,
                progress: bool = True) -> tuple[list[ManifestRow], list[tuple[str, str]]]:
    """The rows with ``sha256`` filled in from their files (rows that already have one are
    kept as they are), and the rows whose file could not be read, with the reason."""
    filled, failed = [], []
    for row in tqdm(rows, desc="hash", unit="file", disable=not progress):
        if row.sha256:
            filled.append(row)
            continue
        try:
            filled.append(replace(row, sha256=row_sha256(row, mirrors, shared)))
        except ManifestError as error:
            failed.append((row.local_name, str(error)))
            filled.append(row)
    return filled, failed


def main(argv: list[str] | None = None) -> int:
    """``python -m vidfake.train.manifest``: rebuild a manifest's media; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m vidfake.train.manifest",
        description="Rebuild a data manifest's media from local clones of its repositories and ../shared/datasets, "
                    "and write labels_<split>.csv files for `vidfake extract --labels`.")
    parser.add_argument("manifest", nargs="+", help="manifest CSV(s), e.g. configs/data/default_model.csv")
    parser.add_argument("--mirrors", type=Path, help="folder of local clones (owner+name/repo, owner/name.git or owner/name)")
    parser.add_argument("--shared", type=Path, help="the ../shared/datasets folder, for rows whose repo is 'shared'")
    parser.add_argument("--out", type=Path, help="output folder for the media and the labels CSVs (needed unless --write-hashes)")
    parser.add_argument("--split", choices=SPLITS, action="append", help="only these splits (default: all)")
    parser.add_argument("--write-hashes", action="store_true",
                        help="instead of copying media, fill each row's sha256 column in the manifest file itself "
                             "(how the separation test finds byte-identical files across manifests)")
    args = parser.parse_args(argv)
    if args.write_hashes:
        return _write_hashes(args.manifest, args.mirrors, args.shared)
    if args.out is None:
        parser.error("--out is needed to copy media (or pass --write-hashes)")
    try:
        rows = [row for path in args.manifest for row in read_manifest(path)]
    except (OSError, ManifestError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.split:
        rows = [row for row in rows if row.split in args.split]
    report = materialize(rows, args.out, args.mirrors, args.shared)
    for name, reason in report.failed:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    written = ", ".join(f"{split} {n}" for split, n in sorted(report.written.items()))
    print(f"wrote {written or 'nothing'}; {len(report.duplicates)} duplicate(s) skipped; {len(report.failed)} failed")
    return 1 if report.failed else 0


def _write_hashes(manifests: Sequence[str], mirrors: Path | None, shared: Path | None) -> int:
    status = 0
    for path in manifests:
        try:
            rows = read_manifest(path)
        except (OSError, ManifestError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        filled, failed = with_hashes(rows, mirrors, shared)
        write_manifest(filled, path)
        for name, reason in failed:
            print(f"not hashed: {name}: {reason}", file=sys.stderr)
        print(f"{path}: {sum(1 for r in filled if r.sha256)} of {len(filled)} rows hashed")
        status = status or (1 if failed else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
