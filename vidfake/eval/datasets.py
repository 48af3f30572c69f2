"""Labelled sets to evaluate on: DFDC folders, the FaceForensics++ layout, real/ fake/ folders,
a CSV with ``path,label`` (extra columns become groups), and image sets in ``img_name,target`` form.

Each becomes a list of ``EvalItem``; labels are parsed by the same rules as
``vidfake extract`` (``vidfake.extract.labels``)."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from vidfake.extract.dataset import collect_media
from vidfake.extract.labels import LabelError, build_label_resolver, image_set_path, parse_label
from vidfake.extract.media_types import media_kind


# Columns of predictions.csv that vidfake fills itself; a dataset column of the same name
# is kept under another name rather than overwritten (a CSV's "kind" usually means the
# manipulation, so it becomes "method" when there is no method column).
RESERVED_COLUMNS = ("path", "name", "label", "score", "logit", "status", "kind", "has_audio", "resolution", "faces")


def group_columns(row: dict[str, str], skip: tuple[str, ...]) -> dict[str, str]:
    """A CSV row's extra columns as breakdown groups (``kind`` counts as ``method``;
    reserved names get a ``csv_`` prefix)."""
    groups = {}
    for key, value in row.items():
        if key in skip or not value:
            continue
        if key == "kind" and "method" not in row:
            key = "method"
        elif key in RESERVED_COLUMNS:
            key = f"csv_{key}"
        groups[key] = value
    return groups


@dataclass(frozen=True)
class EvalItem:
    """One labelled file of an evaluation set."""
    path: Path
    name: str  # the file's name in the dataset (what submission files list)
    label: int  # 1 fake, 0 real
    kind: str  # "video" or "image"
    groups: dict[str, str] = field(default_factory=dict)  # e.g. {"method": "Deepfakes", "dataset": "DFDC"}


@dataclass
class EvalSet:
    """The files an evaluation scores, where they were listed, and the rows left out."""
    items: list[EvalItem]
    source: str  # "dfdc", "ffpp", "folders", "csv", "images"
    notes: list[str] = field(default_factory=list)  # rows skipped and why


def load_eval_set(dataset: Path) -> EvalSet:
    """A folder (DFDC metadata.json parts and/or FF++ layout) or a CSV file."""
    dataset = Path(dataset)
    if dataset.is_dir():
        return _from_folder(dataset)
    if dataset.suffix.lower() == ".csv":
        header = _header(dataset)
        if {"img_name", "target"} <= header:
            return _from_image_csv(dataset)
        return _from_csv(dataset)
    raise LabelError(f"{dataset}: give a folder (DFDC or FaceForensics++ layout) or a CSV (path,label or img_name,target)")


def _header(path: Path) -> set[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return {name.strip().lower() for name in next(csv.reader(handle), [])}


def _from_folder(folder: Path) -> EvalSet:
    resolver = build_label_resolver(None, [folder])
    items, unlabelled = [], []
    for media in collect_media([folder]):
        info = resolver.lookup(media.path)
        if info.label is None:
            unlabelled.append(str(media.path))
            continue
        groups = {"method": info.method or ("real" if info.label == 0 else "unknown")}
        groups["dataset"] = {"dfdc-metadata": "DFDC", "ffpp-layout": "FaceForensics++"}.get(info.source, info.source)
        items.append(EvalItem(media.path, media.path.relative_to(folder).as_posix(), info.label, media.kind, groups))
    notes = [f"{len(unlabelled)} file(s) without a label left out, e.g. {unlabelled[0]}"] if unlabelled else []
    notes += list(resolver.skipped) + list(resolver.ignored)
    datasets = {i.groups["dataset"] for i in items}
    source = "ffpp" if "FaceForensics++" in datasets else "folders" if datasets == {"folder-layout"} else "dfdc"
    return EvalSet(items, source, notes)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader]


def _from_csv(path: Path) -> EvalSet:
    rows = _rows(path)
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise LabelError(f"{path}: a CSV to evaluate needs 'path' and 'label' columns")
    items, notes = [], []
    for line, row in enumerate(rows, start=2):
        try:
            label = parse_label(row["label"])
        except LabelError:
            notes.append(f"{path}, line {line}: label {row['label']!r} is not REAL/FAKE/0/1, row left out")
            continue
        file = Path(row["path"]) if Path(row["path"]).is_absolute() else path.parent / row["path"]
        groups = group_columns(row, skip=("path", "label"))
        items.append(EvalItem(file, row["path"], label, media_kind(file) or "video", groups))
    return EvalSet(items, "csv", notes)


def _from_image_csv(path: Path) -> EvalSet:
    """``img_name,target`` (the multi-face forgery challenge format, and what
    ``vidfake extract`` writes); names resolve against the CSV's folder or its images/."""
    items, notes = [], []
    for line, row in enumerate(_rows(path), start=2):
        try:
            label = parse_label(row["target"])
        except LabelError:
            notes.append(f"{path}, line {line}: target {row['target']!r} is not 0/1, row left out")
            continue
        file = image_set_path(path, row["img_name"])
        groups = group_columns(row, skip=("img_name", "target"))
        items.append(EvalItem(file, row["img_name"], label, "image", groups))
    return EvalSet(items, "images", notes)
