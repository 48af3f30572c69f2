"""Labelled sets to evaluate on: DFDC folders, the FaceForensics++ layout, real/ fake/ folders,
a CSV with ``path,label`` (extra columns become groups), and image sets in ``img_name,target`` form.

Each becomes a list of ``EvalItem``; labels are parsed by the same rules as
``vidfake extract`` (``vidfake.extract.labels``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vidfake.extract.dataset import collect_media
from vidfake.extract.labels import LabelError, build_label_resolver, read_label_csv
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
        return _from_csv(dataset)
    raise LabelError(f"{dataset}: give a folder (DFDC or FaceForensics++ layout) or a CSV (path,label or img_name,target)")


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


def _from_csv(path: Path) -> EvalSet:
    """A labels CSV (``read_label_csv``: the rule ``vidfake extract`` reads it by); its
    extra columns become groups. A row whose label is not REAL/FAKE/1/0 is left out with a note."""
    rows = read_label_csv(path)
    items, notes = [], []
    for row in rows:
        column = "target" if row.images else "label"
        if row.label is None:
            notes.append(f"{path}, line {row.line}: {column} {row.raw_label!r} is not "
                         f"{'0/1' if row.images else 'REAL/FAKE/0/1'}, row left out")
            continue
        skip = ("img_name", "target") if row.images else ("path", "label")
        kind = "image" if row.images else media_kind(row.file) or "video"
        items.append(EvalItem(row.file, row.name, row.label, kind, group_columns(row.columns, skip=skip)))
    return EvalSet(items, "images" if rows and rows[0].images else "csv", notes)
