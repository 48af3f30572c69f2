"""Per-file labels for `vidfake extract`: real/fake, manipulation method, and a split group.

Labels come from these places, tried in this order for every input file:

1. an explicit ``--labels`` file: a DFDC ``metadata.json``, a CSV with ``path`` and
   ``label`` columns, or an image set CSV with ``img_name`` and ``target`` columns (the
   multi-face forgery challenge format, and what ``vidfake extract`` itself writes);
2. when no ``--labels`` is given: DFDC ``metadata.json`` files discovered in the input
   folders (each folder and its subfolders; for a file input, a ``metadata.json`` beside
   it, so a shell glob like ``dfdc_train_part_0/*.mp4`` is labelled too);
3. the FaceForensics++ folder layout, read from the path itself (always applied, so an
   explicit CSV that does not list an FF++ file does not lose that file's label);
4. the ``real/`` ``fake/`` folder layout (also CNNDetection's ``0_real/`` ``1_fake/``): the
   nearest of the file's three closest ancestor folders with such a name. Last, because a
   folder name is the weakest evidence; like the FF++ rule it is always applied.

Anything else gets ``LabelInfo(None, None, None, "none")``.

Every path is compared after ``Path.resolve()``, so ``./x.mp4``, absolute paths and
symlinks all find the same entry. The FF++ rule is tried on the resolved path and then on
the path as given, so both a symlink *into* an FF++ tree and an FF++-shaped tree of
symlinks are recognised.

Groups (the key that a leak-free split keeps together):

* DFDC: the ``original`` of a fake, or the file itself for a real, as ``"dfdc:<name>"``,
  so a fake and the real video it was made from share a group.
* FF++: ``"ffpp:<XXX>"`` for both ``original_sequences/.../XXX.mp4`` and
  ``manipulated_sequences/.../XXX_YYY.mp4``. XXX is the *target* video: the one whose
  frames the fake was made from, so a fake always shares its group with the near-identical
  original (the biggest leak). Caveat: YYY is the source video (the swapped-in face for
  Deepfakes/FaceSwap/FaceShifter), and FF++ pairs are reciprocal (XXX_YYY and YYY_XXX both
  exist); the official FF++ splits keep each pair together. A splitter that wants that
  stricter separation can union ``ffpp:XXX`` with ``ffpp:YYY`` (YYY is in the file name).
  DeepFakeDetection files (``01__scene.mp4``, ``01_02__scene__ID.mp4``) follow the same
  first-token rule and group by actor (two-digit ids, which never equal the three-digit
  YouTube ids).
* CSV (either form): the ``group`` column where there is one (e.g. a speaker or identity
  id), else None.
* real/ fake/ folders: None (a folder name says nothing about identities).
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfake.extract.media_types import media_kind


@dataclass(frozen=True)
class LabelInfo:
    """What is known about one input file's ground truth."""

    label: int | None  # 1 fake, 0 real, None unknown
    method: str | None  # manipulation method ("NeuralTextures", "faceswap", ...), "real" or None
    group: str | None  # identity/source key for leak-free splits
    source: str  # where the label came from: "dfdc-metadata", "ffpp-layout", "csv", "folder-layout" or "none"
    origin: str | None = None  # where the file came from (a labels CSV's "source" column: a repository or dataset)


UNKNOWN = LabelInfo(None, None, None, "none")


class LabelError(ValueError):
    """A label file is missing, malformed, or contains a label that cannot be used."""


_REAL_WORDS = frozenset({"REAL", "0"})
_FAKE_WORDS = frozenset({"FAKE", "1"})


def parse_label(value: str | int) -> int:
    """Map "REAL"/"real"/"0"/0 -> 0 and "FAKE"/"1"/1 -> 1 (surrounding spaces ignored).

    Anything else raises LabelError, so a typo never silently becomes a label.
    """
    if isinstance(value, int) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        word = value.strip().upper()
        if word in _REAL_WORDS:
            return 0
        if word in _FAKE_WORDS:
            return 1
    raise LabelError(f"unrecognised label {value!r}: expected REAL/FAKE or 1/0 (any case)")


class LabelResolver:
    """Answers `lookup(path)` for any input file; built once per run.

    ``table`` maps *resolved* paths to their labels from a label file (explicit or
    discovered); the FF++ layout rule and then the real/ fake/ folder rule are the
    fallbacks for paths not in it. The extra
    attributes are for the CLI's report: ``label_files`` (the files the table came from),
    ``skipped`` (one line per row/entry dropped for an unknown label such as "AUDIO") and
    ``ignored`` (discovered metadata.json files that are not in the DFDC format).
    """

    def __init__(
        self,
        table: Mapping[Path, LabelInfo] | None = None,
        *,
        label_files: Sequence[Path] = (),
        skipped: Sequence[str] = (),
        ignored: Sequence[str] = (),
    ) -> None:
        self._table = dict(table or {})
        self.label_files = tuple(label_files)
        self.skipped = tuple(skipped)
        self.ignored = tuple(ignored)

    def __len__(self) -> int:
        """Number of files that have a label from a label file (not counting FF++ paths)."""
        return len(self._table)

    def lookup(self, path: Path) -> LabelInfo:
        """The label for ``path``: the labels file first, then the FF++ or real/fake folder layout, else unknown."""
        path = Path(path)
        resolved = path.resolve()
        info = self._table.get(resolved)
        if info is not None:
            return info
        return (
            ffpp_layout_label(resolved)
            or ffpp_layout_label(path.absolute())
            or folder_layout_label(resolved)
            or folder_layout_label(path.absolute())
            or UNKNOWN
        )


def build_label_resolver(
    labels: Path | None, inputs: Sequence[Path], *, skip_unknown_labels: bool = True
) -> LabelResolver:
    """labels: a metadata.json, a CSV (path,label or img_name,target), or None (then:
    auto-discover metadata.json under the input folders). The FF++ and real/ fake/ folder
    rules are always applied to files without a label from a file.

    With ``skip_unknown_labels`` a row whose label is not REAL/FAKE/0/1 (e.g. "AUDIO") is
    left out and listed in ``resolver.skipped``; without it, such a row raises LabelError.
    """
    skipped: list[str] = []
    ignored: list[str] = []
    files: list[Path] = []
    entries: list[_Entry] = []

    if labels is not None:
        labels = Path(labels)
        if not labels.is_file():
            raise LabelError(f"label file not found: {labels}")
        suffix = labels.suffix.lower()
        if suffix == ".json":
            data = _read_json(labels)
            if not _looks_like_dfdc(data):
                raise LabelError(
                    f"{labels}: not a DFDC metadata.json; expected "
                    '{"name.mp4": {"label": "FAKE" or "REAL", "original": ...}, ...}'
                )
            entries += _dfdc_entries(labels, data, skip_unknown_labels, skipped)
        elif suffix == ".csv":
            entries += _csv_entries(labels, skip_unknown_labels, skipped)
        else:
            raise LabelError(f"{labels}: unsupported label file; expected a .json (DFDC) or .csv")
        files.append(labels)
    else:
        for meta in _discover_metadata(inputs):
            data = _read_json(meta)
            if not _looks_like_dfdc(data):
                # Other tools also write files named metadata.json; they are not labels.
                ignored.append(f"{meta}: not a DFDC metadata.json, ignored")
                continue
            entries += _dfdc_entries(meta, data, skip_unknown_labels, skipped)
            files.append(meta)

    return LabelResolver(_to_table(entries), label_files=files, skipped=skipped, ignored=ignored)


def ffpp_layout_label(path: Path) -> LabelInfo | None:
    """Label a path shaped like FF++'s ``<root>/<name>/<compression>/videos/<file>``.

    ``<root>`` is ``original_sequences`` (real; ``<name>`` is youtube/actors) or
    ``manipulated_sequences`` (fake; ``<name>`` is the method). The ``masks`` folder that
    sits where the compression level would is skipped: those videos are masks, not fakes.
    """
    parts = Path(path).parts
    if len(parts) < 5 or parts[-2] != "videos" or media_kind(path) != "video":
        return None
    root, name, compression = parts[-5], parts[-4], parts[-3]
    if compression == "masks":
        return None
    group = f"ffpp:{Path(path).stem.split('_')[0]}"  # target id: see the module docstring
    if root == "original_sequences":
        return LabelInfo(0, "real", group, "ffpp-layout")
    if root == "manipulated_sequences":
        return LabelInfo(1, name, group, "ffpp-layout")
    return None


_REAL_FOLDERS = frozenset({"real", "0_real"})
_FAKE_FOLDERS = frozenset({"fake", "1_fake"})
_FOLDER_DEPTH = 3  # how many ancestor folders are searched for real/ or fake/


def folder_layout_label(path: Path) -> LabelInfo | None:
    """Label a file under a ``real/`` or ``fake/`` folder (any case; also CNNDetection's
    ``0_real/`` and ``1_fake/``), the commonest way image sets are shared.

    The nearest such folder among the file's three closest ancestors decides, so
    ``fake/real/x.png`` is real; the limit keeps a far-away ``/home/real/...`` from
    labelling a whole tree. ``fake/<sub>/file`` names its method ``<sub>`` (e.g.
    ``fake/Deepfakes/x.png``); a fake any deeper or shallower has method None.
    """
    folders = Path(path).parts[:-1]
    for depth, name in enumerate(reversed(folders[-_FOLDER_DEPTH:]), start=1):
        word = name.lower()
        if word in _REAL_FOLDERS:
            return LabelInfo(0, "real", None, "folder-layout")
        if word in _FAKE_FOLDERS:
            method = folders[-1] if depth == 2 else None
            return LabelInfo(1, method, None, "folder-layout")
    return None


def image_set_path(csv_path: Path, img_name: str) -> Path:
    """Where an ``img_name`` of an ``img_name,target`` CSV points: the CSV's folder, or its
    ``images/`` subfolder when the file is there (``vidfake extract`` writes labels.csv
    beside images/, with names relative to images/; the challenge sets put them beside the
    CSV). When neither exists the first is returned, so a message names a sensible path."""
    name = Path(img_name).expanduser()
    candidates = [csv_path.parent / name, csv_path.parent / "images" / name]
    return next((c for c in candidates if c.exists()), candidates[0])


# --- label files -------------------------------------------------------------------------

_Entry = tuple[Path, LabelInfo, str]  # (resolved path, info, "file, line N" for messages)


def _to_table(entries: Iterable[_Entry]) -> dict[Path, LabelInfo]:
    """Merge entries; the same file listed twice with different labels is an error,
    because picking either one silently would train on a coin flip."""
    table: dict[Path, LabelInfo] = {}
    where: dict[Path, str] = {}
    for path, info, origin in entries:
        if path in table and table[path] != info:
            raise LabelError(
                f"conflicting labels for {path}: {where[path]} gives {_describe(table[path])}, "
                f"{origin} gives {_describe(info)}"
            )
        table.setdefault(path, info)
        where.setdefault(path, origin)
    return table


def _describe(info: LabelInfo) -> str:
    word = "FAKE" if info.label == 1 else "REAL" if info.label == 0 else "unknown"
    return f"{word} (method {info.method!r}, group {info.group!r})"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: cannot read as JSON: {exc}") from exc


def _looks_like_dfdc(data: Any) -> bool:
    """Kaggle DFDC format: a dict of file name -> {"label": ..., ...}."""
    return isinstance(data, dict) and any(
        isinstance(v, dict) and "label" in v for v in data.values()
    )


def _dfdc_entries(
    json_path: Path, data: dict[str, Any], skip_unknown: bool, skipped: list[str]
) -> list[_Entry]:
    folder = json_path.parent
    entries: list[_Entry] = []
    for name, entry in data.items():
        where = f"{json_path}, entry {name!r}"
        if not isinstance(entry, dict) or "label" not in entry:
            raise LabelError(f"{where}: expected an object with a 'label' field, got {entry!r}")
        try:
            label = parse_label(entry["label"])
        except LabelError:
            if skip_unknown:
                skipped.append(f"{where}: label {entry['label']!r}")
                continue
            raise LabelError(
                f"{where}: unrecognised label {entry['label']!r}; expected REAL/FAKE or 1/0"
            ) from None
        original = entry.get("original") if label == 1 else None
        info = LabelInfo(
            label=label,
            method="real" if label == 0 else None,  # DFDC does not say which method
            group=f"dfdc:{original or name}",
            source="dfdc-metadata",
        )
        entries.append(((folder / name).resolve(), info, where))
    return entries


_CSV_FORMS = (("path", "label"), ("img_name", "target"))  # (file column, label column)


def _csv_form(
    csv_path: Path, header: list[str] | None, columns: Mapping[str, int]
) -> tuple[str, str]:
    """Which of the two accepted header pairs a CSV has; neither is a LabelError that
    names the columns missing from the nearer form (path,label on a tie) and both forms."""
    for form in _CSV_FORMS:
        if all(c in columns for c in form):
            return form
    nearest = max(_CSV_FORMS, key=lambda form: sum(c in columns for c in form))
    missing = [c for c in nearest if c not in columns]
    raise LabelError(
        f"{csv_path}: missing column(s) {', '.join(map(repr, missing))}; a labels CSV needs "
        "the columns 'path' and 'label' (REAL/FAKE or 1/0), or 'img_name' and 'target' "
        f"(1 = fake, 0 = real) (found: {header or 'no header'})"
    )


@dataclass(frozen=True)
class LabelRow:
    """One row of a labels CSV, read by the one rule ``vidfake extract`` and ``vidfake eval``
    share (``read_label_csv``)."""

    file: Path  # the file the row names, not resolved: path relative to the CSV's folder, img_name by image_set_path
    name: str  # the path or img_name as written
    label: int | None  # 1 fake, 0 real; None when the label cell is not REAL/FAKE/1/0
    raw_label: str
    columns: dict[str, str]  # every cell by its column name (lower case, stripped)
    line: int  # in the CSV, for messages
    images: bool  # img_name,target form (a crop set) rather than path,label


def read_label_csv(csv_path: Path) -> list[LabelRow]:
    """The rows of a labels CSV: ``path,label`` (REAL/FAKE or 1/0; path relative to the
    CSV's folder) or, failing that, ``img_name,target`` (names resolved by
    ``image_set_path``); column names in any case, blank rows skipped. ``LabelError`` when
    neither pair of columns is there or the file is not readable CSV."""
    rows: list[LabelRow] = []
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            names = [name.strip().lower() for name in header or []]
            columns = {name: i for i, name in enumerate(names)}
            path_name, label_name = _csv_form(csv_path, header, columns)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank or all-empty row
                cells = {name: _cell(row, i) for i, name in enumerate(names)}
                raw_path, raw_label = cells[path_name], cells[label_name]
                try:
                    label = parse_label(raw_label)
                except LabelError:
                    label = None
                if path_name == "img_name":
                    file = image_set_path(csv_path, raw_path) if raw_path else csv_path.parent
                else:
                    path = Path(raw_path).expanduser()
                    file = path if path.is_absolute() else csv_path.parent / path
                rows.append(LabelRow(file, raw_path, label, raw_label, cells, reader.line_num, path_name == "img_name"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{csv_path}: cannot read as CSV: {exc}") from exc
    return rows


def _csv_entries(csv_path: Path, skip_unknown: bool, skipped: list[str]) -> list[_Entry]:
    """``read_label_csv``'s rows as label entries. A ``method`` or ``kind`` column, if
    present, names the method of fake rows, a ``group`` column the identity or source
    that a split must keep on one side, and a ``source`` column where the file came from
    (training can balance its batches by it)."""
    entries: list[_Entry] = []
    for row in read_label_csv(csv_path):
        where = f"{csv_path}, line {row.line}"
        column = "img_name" if row.images else "path"
        if not row.name:
            raise LabelError(f"{where}: empty {column!r} (label {row.raw_label!r})")
        if row.label is None:
            if skip_unknown:
                skipped.append(f"{where}: label {row.raw_label!r} for {row.name!r}")
                continue
            raise LabelError(
                f"{where}: unrecognised label {row.raw_label!r} for {row.name!r}; "
                "expected REAL/FAKE or 1/0 (any case)"
            )
        method_column = "method" if "method" in row.columns else "kind"
        method = (row.columns.get(method_column) or None) if row.label == 1 else "real"
        group = row.columns.get("group") or None
        origin = row.columns.get("source") or None
        entries.append((row.file.resolve(), LabelInfo(row.label, method, group, "csv", origin), where))
    return entries


def _cell(row: list[str], index: int | None) -> str:
    """A stripped cell; short rows (fewer cells than the header) read as empty."""
    return row[index].strip() if index is not None and index < len(row) else ""


def _discover_metadata(inputs: Sequence[Path]) -> list[Path]:
    """metadata.json files in each input folder and its subfolders, and beside each input
    file; each found once even when inputs overlap or reach it through a symlink."""
    found: dict[Path, Path] = {}
    parents_seen: set[Path] = set()
    for item in map(Path, inputs):
        if item.is_dir():
            candidates = sorted(item.rglob("metadata.json"))
        elif item.parent not in parents_seen:
            parents_seen.add(item.parent)
            candidates = [item.parent / "metadata.json"]
        else:
            continue
        for candidate in candidates:
            if candidate.is_file():
                found.setdefault(candidate.resolve(), candidate)
    return [found[key] for key in sorted(found)]
