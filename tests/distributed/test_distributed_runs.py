"""``vidfake score`` and ``extract`` across two gloo processes on loopback, launched as
users launch them (``torchrun``, or one process per rank the way ``srun`` starts them):
the merged output equals a single-process run's, and a run whose process is killed
fails with how to resume, then ``--resume`` finishes only what is missing."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import child_env, free_port
from vidfake.cli import main

dist = pytest.importorskip("torch.distributed")
pytestmark = [
    pytest.mark.slow,  # each launch starts two interpreters that load torch, the model and the face detector
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no torch.distributed with gloo"),
]
RUN_TIMEOUT_S = 600


def torchrun(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node 2 -m vidfake ARGS``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "vidfake", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def single_scores(media_set, tiny_checkpoint, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("single") / "scores.jsonl"
    assert main(["score", str(media_set), "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--no-progress"]) == 1
    return _jsonl(out)


def assert_same_verdicts(records: list[dict], expected: list[dict]) -> None:
    assert [r["path"] for r in records] == [r["path"] for r in expected]  # one per file, same order
    for got, want in zip(records, expected):
        assert got["status"] == want["status"], got["path"]
        if want["score"] is None:
            assert got["score"] is None
        else:
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)
        assert len(got["tracks"]) == len(want["tracks"])


def test_two_processes_score_like_one(media_set, tiny_checkpoint, single_scores, tmp_path):
    out = tmp_path / "scores.jsonl"
    done = torchrun("score", media_set, "--checkpoint", tiny_checkpoint, "--out", out, "--no-progress", cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # 1: the unreadable file, reported in its record
    records = _jsonl(out)
    assert_same_verdicts(records, single_scores)
    assert {r["status"] for r in records} == {"ok", "no_face", "unreadable"}
    assert not (tmp_path / "scores.jsonl.shards").exists()


def _wait_for_lines(path: Path, n: int, process: subprocess.Popen, timeout_s: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        time.sleep(0.05)
    pytest.fail(f"{path} never had {n} line(s) (process exit code {process.poll()})")


def test_a_killed_process_fails_the_run_and_resume_finishes_only_what_is_missing(
        media_set, tiny_checkpoint, single_scores, tmp_path):
    out = tmp_path / "scores.jsonl"
    args = [sys.executable, "-m", "vidfake", "score", str(media_set), "--checkpoint", str(tiny_checkpoint),
            "--out", str(out), "--no-progress"]
    rendezvous = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    ranks = [subprocess.Popen(args, cwd=tmp_path, env=child_env(RANK=str(r), LOCAL_RANK=str(r), **rendezvous),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    shard = tmp_path / "scores.jsonl.shards" / "rank-00001.jsonl"
    _wait_for_lines(shard, 1, ranks[1])
    ranks[1].send_signal(signal.SIGKILL)  # dies after its first file, with no chance to say anything
    stdout, stderr = ranks[0].communicate(timeout=RUN_TIMEOUT_S)  # rank 0 must not hang
    ranks[1].communicate()
    assert ranks[0].returncode == 2, stderr
    assert "a process of this run stopped" in stderr and "--resume" in stderr
    assert not out.exists()
    kept = {json.loads(line)["key"]: json.loads(line)["record"]
            for path in shard.parent.glob("rank-*.jsonl") for line in path.read_text().splitlines()}
    assert 0 < len(kept) < len(single_scores)

    done = torchrun("score", media_set, "--checkpoint", tiny_checkpoint, "--out", out, "--no-progress", "--resume",
                    cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    records = _jsonl(out)
    assert_same_verdicts(records, single_scores)
    for record in records:  # the files finished before the kill were not scored again: same timings
        if record["path"] in kept:
            assert record == kept[record["path"]]
    assert not shard.parent.exists()


def assert_close(got, want, path: str = "") -> None:
    """Equal JSON values, numbers to 0.11 (boxes are rounded to 0.1 px: a last-bit
    difference between thread counts may flip one rounding)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=0.11), path
    else:
        assert got == want, path


def test_two_processes_extract_like_one(media_set, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    options = ["--plan", "uniform:4", "--size", "64", "--no-progress"]
    assert main(["extract", str(media_set), "--out", str(single), *options]) == 1  # the unreadable file
    done = torchrun("extract", media_set, "--out", double, *options, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    for name in ("tracks.jsonl", "errors.jsonl"):
        got = [{k: v for k, v in r.items() if k != "timings"} for r in _jsonl(double / name)]
        want = [{k: v for k, v in r.items() if k != "timings"} for r in _jsonl(single / name)]
        assert_close(got, want, name)
    labels = (double / "labels.csv").read_text()
    assert labels == (single / "labels.csv").read_text() and labels.count("\n") > 1
    crops = sorted(p.relative_to(double) for p in (double / "images").rglob("*.jpg"))
    assert crops == sorted(p.relative_to(single) for p in (single / "images").rglob("*.jpg"))
    assert not (double / "shards").exists()


def test_two_processes_evaluate_like_one(media_set, tiny_checkpoint, tmp_path):
    from vidfake.eval.evaluate import read_predictions

    single, double = tmp_path / "single", tmp_path / "double"
    options = ["--checkpoint", str(tiny_checkpoint), "--bootstrap", "20", "--no-progress"]
    assert main(["eval", str(media_set), "--out", str(single), *options]) == 1  # the unreadable file
    done = torchrun("eval", media_set, "--out", double, *options, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    got, want = read_predictions(double / "predictions.csv"), read_predictions(single / "predictions.csv")
    assert [(r["path"], r["label"], r["status"]) for r in got] == [(r["path"], r["label"], r["status"]) for r in want]
    for g, w in zip(got, want):
        assert (g["score"] == "") == (w["score"] == "")
        if w["score"]:
            assert float(g["score"]) == pytest.approx(float(w["score"]), abs=1e-4)
    metrics = json.loads((double / "metrics.json").read_text())
    assert metrics["coverage"] == json.loads((single / "metrics.json").read_text())["coverage"]
    assert (double / "report.md").is_file() and not (double / "shards").exists()
