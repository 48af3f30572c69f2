"""The extraction folder ``vidfake extract`` writes and ``vidfake train`` reads: one owner.

Layout (every reader and writer goes through ``ExtractionFolder``, so a name or a rule is
written once)::

    DIR/config.json     {"extract": ExtractConfig, "output": OutputOptions}: how the crops were cut
    DIR/tracks.jsonl    one record per file with faces: its metadata, plan and every track
    DIR/errors.jsonl    one record per file that failed or had no face, with the reason
    DIR/labels.csv      img_name,target (1 = fake), rebuilt from tracks.jsonl
    DIR/images/         face crops;  DIR/mouths/: mouth crops;  DIR/audio/: 16 kHz WAVs

Reading is strict: a folder without a readable ``config.json`` is not an extraction
folder, and saying so beats assuming default crop settings that may not be the ones used.
Records are appended one finished file at a time (``vidfake.utils.jsonl``), so a killed
run loses at most the file in hand and ``--resume`` knows what is done.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from vidfake.extract.pipeline import ExtractConfig, current_extract_keys
from vidfake.utils.jsonl import append_line, read_lines

__all__ = ["ExtractionFolder", "FileRecord", "FolderError", "TrackRecord", "json_default"]


class FolderError(ValueError):
    """Not an extraction folder, or one whose settings cannot be read."""


def json_default(value):
    """numpy scalars and arrays in records, as plain JSON numbers and lists."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _strict(cls, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``data``'s values for ``cls``'s fields; ``FolderError`` naming unknown or missing keys."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FolderError(f"{where}: unknown record key(s) {unknown}; known: {sorted(names)}")
    required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING} - set(data)
    if required:
        raise FolderError(f"{where}: record lacks {sorted(required)}")
    return dict(data)


@dataclass(frozen=True)
class TrackRecord:
    """One face track of a file record: its sampled frames and the crop files cut there."""

    track_id: int
    frame_indices: list[int]
    timestamps: list[float]  # seconds, per frame
    boxes: list[list[float]]  # x1, y1, x2, y2 in frame pixels (smoothed)
    landmarks: list[list[list[float]]]  # 5 points per frame, frame pixels
    crops: list[str]  # file names under images/
    scores: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)  # found by the detector (not interpolated)
    size: float = 0.0  # median face side in pixels
    mouths: list[str] = field(default_factory=list)  # file names under mouths/ (none without mouth crops)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "track") -> TrackRecord:
        """Read one track of a record strictly."""
        return cls(**_strict(cls, data, where))


@dataclass(frozen=True)
class FileRecord:
    """One line of ``tracks.jsonl`` or ``errors.jsonl``: a file, its label, and what extraction found."""

    media_id: str
    path: str  # resolved, as extraction saw it
    kind: str  # video or image
    status: str  # ok, no_face, unreadable, unsupported, ...
    label: int | None = None  # 1 fake, 0 real, None unlabelled
    method: str | None = None
    group: str | None = None
    label_source: str | None = None
    origin: str | None = None  # where the file came from (repository or dataset), for source-balanced batches
    reason: str | None = None  # why a file has no tracks
    info: dict[str, Any] = field(default_factory=dict)  # width, height, fps, ...
    plan: Any = None
    frame_indices: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    tracks: list[TrackRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rotation_retry: int = 0
    audio: dict[str, Any] | None = None  # file (under audio/), sample_rate, start_time, duration

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "record") -> FileRecord:
        """Read one record strictly: an unknown or missing key is an error that names it."""
        values = _strict(cls, data, where)
        values["tracks"] = [TrackRecord.from_dict(t, f"{where}, track {i}") for i, t in enumerate(data.get("tracks", []))]
        return cls(**values)

    @property
    def fps(self) -> float | None:
        """A video's frame rate (None for an image or when unknown)."""
        fps = self.info.get("fps") if self.kind == "video" else None
        return float(fps) if fps else None


@dataclass(frozen=True)
class ExtractionFolder:
    """One extraction folder (``root``): its files, settings and records."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config_path(self) -> Path:
        """``config.json``: the settings the crops were cut with."""
        return self.root / "config.json"

    @property
    def tracks_path(self) -> Path:
        """``tracks.jsonl``: the records of files with faces."""
        return self.root / "tracks.jsonl"

    @property
    def errors_path(self) -> Path:
        """``errors.jsonl``: the records of files that failed or had no face."""
        return self.root / "errors.jsonl"

    @property
    def labels_path(self) -> Path:
        """``labels.csv``: img_name,target for image-set tools."""
        return self.root / "labels.csv"

    def image(self, name: str) -> Path:
        """A face crop named in a track record."""
        return self.root / "images" / name

    def mouth(self, name: str) -> Path:
        """A mouth crop named in a track record."""
        return self.root / "mouths" / name

    def audio(self, name: str) -> Path:
        """An audio file named in a record."""
        return self.root / "audio" / name

    # -- settings ---------------------------------------------------------------------

    def settings(self) -> dict:
        """``config.json`` as written (``FolderError`` when missing or unreadable)."""
        if not self.config_path.is_file():
            raise FolderError(f"{self.root}: no config.json (is it a `vidfake extract` output folder?)")
        try:
            settings = json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise FolderError(f"{self.config_path}: not readable JSON: {error}") from error
        if not isinstance(settings, dict) or not isinstance(settings.get("extract"), dict):
            raise FolderError(f"{self.config_path}: has no 'extract' settings")
        return settings

    def extract_config(self) -> ExtractConfig:
        """The extraction settings (crop size and margin, plan, detector), strictly read."""
        saved = self.settings()["extract"]
        try:
            return ExtractConfig.from_dict(current_extract_keys(saved))
        except (TypeError, ValueError) as error:
            raise FolderError(f"{self.config_path}: extract settings cannot be read: {error}") from error

    def write_settings(self, settings: dict) -> None:
        """Create the folder and write ``config.json``."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(settings, indent=2))

    # -- records ----------------------------------------------------------------------

    def records(self) -> Iterator[FileRecord]:
        """The records of ``tracks.jsonl`` (files with faces), in the order written."""
        for number, data in enumerate(read_lines(self.tracks_path), start=1):
            yield FileRecord.from_dict(data, f"{self.tracks_path}, record {number}")

    def error_records(self) -> Iterator[FileRecord]:
        """The records of ``errors.jsonl`` (files that failed or had no face)."""
        for number, data in enumerate(read_lines(self.errors_path), start=1):
            yield FileRecord.from_dict(data, f"{self.errors_path}, record {number}")

    def append(self, record: dict) -> None:
        """Append one file's record (checked against ``FileRecord`` first, so nothing is
        written that the readers would refuse): to ``tracks.jsonl`` when its status is
        ``ok``, else to ``errors.jsonl``; on disk at once."""
        line = json.dumps(record, default=json_default)
        FileRecord.from_dict(json.loads(line), f"record of {record.get('path')}")
        append_line(self.tracks_path if record["status"] == "ok" else self.errors_path, line)

    def finished_files(self) -> set[str]:
        """Files a previous run completed (resolved paths): written tracks, and files with
        no face. A file that failed is not among them: ``--resume`` tries it again."""
        done = {r.path for r in self.records()}
        done |= {r.path for r in self.error_records() if r.status == "no_face"}
        return done

    def write_labels_csv(self) -> int:
        """Rebuild ``labels.csv`` from ``tracks.jsonl`` (rows only for labelled files);
        returns the number of rows."""
        rows = 0
        tmp = self.labels_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["img_name", "target"])
            for record in self.records():
                if record.label is None:
                    continue
                for track in record.tracks:
                    for name in track.crops:
                        writer.writerow([name, record.label])
                        rows += 1
        tmp.replace(self.labels_path)
        return rows
