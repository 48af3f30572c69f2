"""Appending to and reading the JSONL files that record finished work, across a kill."""
from __future__ import annotations

import json

from vidfake.extract.folder import ExtractionFolder
from vidfake.utils.jsonl import append_line, read_lines


def test_a_line_torn_by_a_kill_costs_only_itself(tmp_path):
    path = tmp_path / "records.jsonl"
    append_line(path, json.dumps({"n": 1}))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"n": 2, "half wr')  # the process died here
    append_line(path, json.dumps({"n": 3}))
    assert path.read_text().splitlines() == ['{"n": 1}', '{"n": 2, "half wr', '{"n": 3}']
    assert [r["n"] for r in read_lines(path)] == [1, 3]


def test_reading_a_missing_file_gives_nothing(tmp_path):
    assert list(read_lines(tmp_path / "absent.jsonl")) == []


def test_extraction_records_survive_a_torn_line(tmp_path):
    """``tracks.jsonl`` after a killed extraction and a ``--resume`` that appends to it."""
    folder = ExtractionFolder(tmp_path)
    folder.append({"media_id": "a", "path": "a.mp4", "kind": "video", "status": "ok", "tracks": []})
    path = folder.tracks_path
    path.write_bytes(path.read_bytes() + b'{"path": "b.mp4", "tra')
    folder.append({"media_id": "b", "path": "b.mp4", "kind": "video", "status": "ok", "tracks": []})
    assert [r.path for r in folder.records()] == ["a.mp4", "b.mp4"]
