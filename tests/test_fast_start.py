"""A new user's first seconds: help without heavy imports, unreadable files answered
before any model or detector loads, and a checkpoint hashed once per load."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vidfake.cli import main
from vidfake.testing import media

HEAVY = ("torch", "timm", "facenet_pytorch", "pytorch_lightning", "lightning")
SUBCOMMANDS = ("extract", "score", "init-checkpoint", "eval", "calibrate", "models", "ensemble", "train", "serve")


@pytest.fixture
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture
def bad_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = media.not_a_video(tmp_path / "text.mp4")
    image = tmp_path / "broken.jpg"
    image.write_bytes(b"\xff\xd8 not really a jpeg")
    return [empty, text, image]


def _modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy modules it left imported."""
    probe = f"{code}\nimport sys\nprint('heavy=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("heavy="))
    return [m for m in line.removeprefix("heavy=").split(",") if m]


@pytest.mark.parametrize("command", ["", *SUBCOMMANDS])
def test_help_imports_no_heavy_module(command):
    argv = [*command.split(), "--help"]
    code = (
        "import contextlib, io\nfrom vidfake.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code in (0, None), stop.code\n"
    )
    assert _modules_after(code) == []


def test_an_unreadable_file_is_answered_without_torch(bad_files, checkpoint):
    code = (
        "import contextlib, io, json\nfrom vidfake.cli import main\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['score', {str(bad_files[0])!r}, '--checkpoint', {str(checkpoint)!r}, '--json']) == 1\n"
        "assert json.loads(out.getvalue())['status'] == 'unreadable'\n"
    )
    assert _modules_after(code) == []


@pytest.fixture
def loaders_forbidden(monkeypatch):
    """Make building the model, reading the weights or loading the detector fail the test."""
    import vidfake.extract.detect
    import vidfake.scoring.model
    import vidfake.temporal.model

    def forbidden(*args, **kwargs):
        raise AssertionError("a model or detector was loaded for a run of unreadable files")

    monkeypatch.setattr(vidfake.temporal.model, "create_model", forbidden)
    monkeypatch.setattr(vidfake.scoring.model, "load_checkpoint", forbidden)
    monkeypatch.setattr(vidfake.extract.detect.FaceDetector, "__init__", forbidden)


def test_score_of_only_bad_files_never_loads_a_model(bad_files, checkpoint, loaders_forbidden, capsys):
    code = main(["score", *map(str, bad_files), "--checkpoint", str(checkpoint), "--json", "--no-progress"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [r["status"] for r in records] == ["unreadable", "unreadable", "unsupported"]
    assert "empty" in records[0]["error"] and "not a readable video" in records[1]["error"]
    assert all(r["model"]["sha256"] and r["score"] is None for r in records)


def test_eval_of_only_bad_files_never_loads_a_model(bad_files, checkpoint, loaders_forbidden, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p.name},{'FAKE' if i % 2 else 'REAL'}\n" for i, p in enumerate(bad_files)))
    main(["eval", str(labels), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "report"), "--no-progress"])
    rows = (tmp_path / "report" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + len(bad_files)
    assert all(",unreadable," in row or ",unsupported," in row for row in rows[1:])


def test_the_model_loads_once_on_the_first_readable_file(bad_files, checkpoint, face_video, monkeypatch):
    import vidfake.temporal.model
    from vidfake.scoring import Scorer

    built = []
    real = vidfake.temporal.model.create_model
    monkeypatch.setattr(vidfake.temporal.model, "create_model", lambda *a, **k: built.append(1) or real(*a, **k))
    scorer = Scorer(checkpoint)
    assert scorer.score_video(bad_files[1]).status == "unreadable" and built == []
    assert scorer.score_video(face_video.path).status == "ok" and built == [1]
    assert scorer.score_video(face_video.path).status == "ok" and built == [1]


def test_a_checkpoint_that_cannot_build_fails_the_run_not_the_file(checkpoint, face_video, tmp_path, capsys):
    from vidfake.checkpoints.format import load_checkpoint, save_checkpoint

    saved = load_checkpoint(checkpoint)
    state = {k: v for k, v in saved.state_dict.items() if not k.startswith("temporal.")}
    broken = save_checkpoint(tmp_path / "broken.safetensors", state, saved.config)
    assert main(["score", str(face_video.path), "--checkpoint", str(broken), "--json", "--no-progress"]) == 2
    assert "cannot be built" in capsys.readouterr().err


def test_one_sha256_per_model_load(checkpoint, face_video, tmp_path, monkeypatch):
    """The default model's file is hashed once: that digest both verifies it and names it."""
    import hashlib
    import shutil

    import vidfake.checkpoints.default
    import vidfake.checkpoints.format
    from vidfake.checkpoints.default import DEFAULT_MODEL_FILE, describe_checkpoint
    from vidfake.scoring import Scorer

    shutil.copy(checkpoint, tmp_path / DEFAULT_MODEL_FILE)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    (tmp_path / "default.sha256").write_text(f"{digest}  {DEFAULT_MODEL_FILE}\n")
    monkeypatch.setattr(vidfake.checkpoints.default, "_package_dir", lambda: tmp_path)
    hashed = []
    real = vidfake.checkpoints.format.file_sha256

    def counting(path):
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(vidfake.checkpoints.format, "file_sha256", counting)
    monkeypatch.setattr(vidfake.checkpoints.default, "file_sha256", counting)
    scorer = Scorer()
    assert scorer.score_video(face_video.path).model["sha256"] == digest
    assert len(hashed) == 1
    hashed.clear()
    assert describe_checkpoint()["sha256"] == digest and len(hashed) == 1
    (tmp_path / "default.sha256").write_text(f"{'0' * 64}  {DEFAULT_MODEL_FILE}\n")
    with pytest.raises(vidfake.checkpoints.default.DefaultModelError, match="damaged"):
        Scorer()
