"""JSON Lines files that grow one finished record at a time (extraction's ``tracks.jsonl``
and ``errors.jsonl``, the per-process shard files), so a crash or a kill loses at most the
record being written. The one rule for appending and reading them lives here."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path


def append_line(path: Path, line: str) -> None:
    """Append ``line`` (no newline of its own) and flush it to disk before returning.

    A run killed mid-write leaves a torn last line; the next append starts on a fresh
    line, so the torn one stays the only casualty instead of swallowing this record too."""
    with path.open("a+b") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write((line + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def read_lines(path: Path) -> Iterator[dict]:
    """Every record that decodes as JSON, in order; torn lines (killed mid-write) are skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
