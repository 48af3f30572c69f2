"""``vidfake serve`` refuses to start, with a clear message, when it cannot work."""
from __future__ import annotations

import pytest

from tests.serve.helpers import Server
from vidfake.cli import main


def test_no_model_installed_and_no_checkpoint(monkeypatch, tmp_path, capsys):
    import vidfake.checkpoints.default

    monkeypatch.setattr(vidfake.checkpoints.default, "_package_dir", lambda: tmp_path)  # a package without the default model
    assert main(["serve", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "default model is not installed" in err and "--checkpoint" in err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "missing.safetensors"], "no such checkpoint file"),
        (["--max-resolution", "big"], "WIDTHxHEIGHT"),
        (["--workers", "0"], "workers must be at least 1"),
    ],
)
def test_unusable_options(tmp_path, capsys, args, message):
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"x")
    base = ["serve", "--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "data")]
    assert main([*base, *args]) == 2
    assert message in capsys.readouterr().err


def test_a_checkpoint_that_cannot_be_loaded_stops_the_server(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a checkpoint")
    server = Server(bad, tmp_path / "data").start(wait_ready=False)
    try:
        assert server.process.wait(120) == 2
    finally:
        server.kill()
    assert "vidfake serve: the scoring worker cannot start" in server.log()
    assert "not a readable safetensors file" in server.log()


def test_one_data_folder_one_server(tmp_path, capsys):
    from vidfake.serve.config import ServeSettings
    from vidfake.serve.service import Service, ServiceError

    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"x")
    data = tmp_path / "data"
    running = Service(ServeSettings(checkpoint=checkpoint, data_dir=data))
    running.preflight()  # free
    running.data_lock.acquire()  # as a running server holds it
    try:
        with pytest.raises(ServiceError, match="in use by another vidfake serve"):
            Service(ServeSettings(checkpoint=checkpoint, data_dir=data)).preflight()
        assert main(["serve", "--checkpoint", str(checkpoint), "--data-dir", str(data)]) == 2
        assert "give each server its own --data-dir" in capsys.readouterr().err
    finally:
        running.stop()
    Service(ServeSettings(checkpoint=checkpoint, data_dir=data)).preflight()  # free again
