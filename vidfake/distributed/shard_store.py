"""Per-process shard files: the record of every file a process finished, kept on disk as
it goes so a crash or a pre-empted node loses at most the file in hand.

``FOLDER/rank-00003.jsonl`` holds rank 3's lines, ``{"key", "run", "record"}``: the file's
key (its path), the run that wrote it (1 for the first, one more for each ``--resume``)
and the command's record for it. Reading takes every shard present, whatever the number
of processes that wrote them, so a resumed run may use more or fewer processes; a file
done twice (a failed extraction retried) counts by its latest run. A line torn by a kill
is skipped, and the next append starts on a fresh line.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidfake.utils.jsonl import append_line, read_lines

PATTERN = "rank-*.jsonl"


@dataclass(frozen=True)
class ShardEntry:
    """One finished file: its key, the run that finished it and its record."""

    key: str
    run: int
    record: dict


class ShardStore:
    """The shards in ``folder``; this process (``rank``) appends to its own only.
    ``default`` serialises what JSON cannot (numpy values), as ``json.dumps`` takes it."""

    def __init__(self, folder: Path, rank: int, default: Callable[[Any], Any] | None = None):
        self.folder = Path(folder)
        self.rank = rank
        self.default = default

    @property
    def path(self) -> Path:
        """This process's shard file."""
        return self.folder / f"rank-{self.rank:05d}.jsonl"

    def files(self) -> list[Path]:
        """Every shard file present, in rank order."""
        return sorted(self.folder.glob(PATTERN)) if self.folder.is_dir() else []

    def read(self) -> dict[str, ShardEntry]:
        """The latest entry of every key in every shard."""
        entries: dict[str, ShardEntry] = {}
        for path in self.files():
            for raw in read_lines(path):  # lines torn by a kill are skipped there
                try:
                    entry = ShardEntry(str(raw["key"]), int(raw["run"]), raw["record"])
                except (KeyError, TypeError, ValueError):
                    continue  # a line that decodes but is not an entry
                previous = entries.get(entry.key)
                if previous is None or entry.run >= previous.run:
                    entries[entry.key] = entry
        return entries

    def append(self, key: str, run: int, record: dict) -> None:
        """Add one finished file to this process's shard, on disk before returning."""
        self.folder.mkdir(parents=True, exist_ok=True)
        append_line(self.path, json.dumps({"key": key, "run": run, "record": record}, default=self.default))

    def clear(self) -> None:
        """Delete every shard (a fresh run, or the shards once merged); the folder goes
        too when nothing else is in it."""
        for path in self.files():
            path.unlink(missing_ok=True)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
