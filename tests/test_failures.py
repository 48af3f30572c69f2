"""The per-file safety net: an error nobody foresaw while handling one file becomes that
file's status (``file_failure`` is the one rule), the run goes on, the exit code says
some failed, and the traceback goes to the debug log, never in place of a result."""
from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

from vidfake.cli import main
from vidfake.extract.failures import UNREADABLE, UNSUPPORTED, file_failure
from vidfake.extract.pipeline import MediaError
from vidfake.extract.video import DecodeError
from vidfake.utils.jsonl import read_lines


@pytest.fixture(scope="module")
def checkpoint(sync_checkpoint) -> Path:
    return sync_checkpoint


@pytest.fixture
def planted(monkeypatch):
    """Extracting any file named ``bad.*`` raises an error vidfake does not expect."""
    from vidfake.extract.pipeline import FaceExtractor

    real = FaceExtractor.extract_video

    def extract_video(self, path, *args, **kwargs):
        if Path(path).stem == "bad":
            raise ZeroDivisionError("planted bug")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(FaceExtractor, "extract_video", extract_video)


@pytest.fixture
def folder(tmp_path, face_video) -> Path:
    """bad.mp4 sorts first: a run that stopped at it would give nothing for the others."""
    root = tmp_path / "inputs"
    root.mkdir()
    for name in ("bad.mp4", "good.mp4", "later.mp4"):
        shutil.copy(face_video.path, root / name)
    return root


def test_the_rule_for_what_a_failure_means(caplog):
    refused = file_failure(MediaError("x.png: not a readable image"), "x.png")
    assert (refused.status, refused.reason, refused.expected) == (UNSUPPORTED, "x.png: not a readable image", True)
    damaged = file_failure(DecodeError("x.mp4: video stream has no frames"), "x.mp4")
    assert (damaged.status, damaged.reason, damaged.expected) == (UNREADABLE, "x.mp4: video stream has no frames", True)
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="vidfake.failures"):
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError as error:
            bug = file_failure(error, "x.mp4")
    assert bug.status == UNREADABLE and not bug.expected
    assert bug.reason.startswith("x.mp4: unexpected ZeroDivisionError while processing it: division by zero")
    assert "debug log" in bug.reason
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG and record.exc_info[0] is ZeroDivisionError
    assert file_failure(MemoryError(), "big.mp4").status == UNSUPPORTED


def test_score_goes_on_past_a_file_that_raises_and_logs_the_traceback(folder, checkpoint, planted, tmp_path, capsys):
    log = tmp_path / "debug.log"
    code = main(["score", str(folder), "--checkpoint", str(checkpoint), "--json", "--no-progress",
                 "--debug-log", str(log)])
    out, err = capsys.readouterr()
    records = {Path(r["path"]).name: r for r in map(json.loads, out.splitlines())}
    assert code == 1 and set(records) == {"bad.mp4", "good.mp4", "later.mp4"}
    bad = records["bad.mp4"]
    assert bad["status"] == "unreadable" and bad["score"] is None
    assert "unexpected ZeroDivisionError while processing it: planted bug" in bad["error"]
    assert records["good.mp4"]["status"] == records["later.mp4"]["status"] == "ok"
    assert "Traceback" not in out + err
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "ZeroDivisionError: planted bug" in logged


def test_extract_goes_on_past_a_file_that_raises(folder, planted, tmp_path, capsys):
    out_dir, log = tmp_path / "crops", tmp_path / "debug.log"
    code = main(["extract", str(folder), "--out", str(out_dir), "--frames", "4", "--no-progress", "--json",
                 "--debug-log", str(log)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and (summary["ok"], summary["failed"]) == (2, 1)
    (error,) = read_lines(out_dir / "errors.jsonl")
    assert error["media_id"] == "bad" and error["status"] == "unreadable"
    assert "unexpected ZeroDivisionError while processing it: planted bug" in error["reason"]
    assert {r["media_id"] for r in read_lines(out_dir / "tracks.jsonl")} == {"good", "later"}
    assert "ZeroDivisionError: planted bug" in log.read_text()


def test_eval_goes_on_past_a_file_that_raises_and_says_some_failed(folder, checkpoint, planted, tmp_path, capsys):
    dataset = tmp_path / "set"
    (dataset / "real").mkdir(parents=True)
    (dataset / "fake").mkdir()
    shutil.copy(folder / "good.mp4", dataset / "real" / "good.mp4")
    shutil.copy(folder / "later.mp4", dataset / "fake" / "later.mp4")
    shutil.copy(folder / "bad.mp4", dataset / "fake" / "bad.mp4")
    out = tmp_path / "report"
    code = main(["eval", str(dataset), "--checkpoint", str(checkpoint), "--out", str(out), "--bootstrap", "20",
                 "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 1 and "1 file(s) could not be scored" in err
    rows = {Path(r["path"]).name: r for r in csv.DictReader((out / "predictions.csv").open())}
    assert rows["bad.mp4"]["status"] == "unreadable" and rows["bad.mp4"]["score"] == ""
    assert rows["good.mp4"]["status"] == rows["later.mp4"]["status"] == "ok"
    assert (out / "report.md").exists()
