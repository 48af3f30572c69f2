"""How the default model is found and guarded, on a stand-in package folder."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

import vidfake.checkpoints.default
from vidfake.checkpoints.default import DEFAULT_MODEL_FILE, DefaultModelError, default_checkpoint, resolve_checkpoint
from vidfake.cli import main


@pytest.fixture
def package_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(vidfake.checkpoints.default, "_package_dir", lambda: tmp_path)
    return tmp_path


def _install(package_dir, checkpoint, checksum=None):
    shutil.copy(checkpoint, package_dir / DEFAULT_MODEL_FILE)
    digest = checksum or hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    (package_dir / "default.sha256").write_text(f"{digest}  {DEFAULT_MODEL_FILE}\n")


def test_missing_default_model_is_a_clear_error(package_dir):
    with pytest.raises(DefaultModelError, match="default model is not installed"):
        default_checkpoint()


def test_a_damaged_default_model_is_refused(package_dir, tiny_checkpoint):
    _install(package_dir, tiny_checkpoint, checksum="0" * 64)
    with pytest.raises(DefaultModelError, match="damaged"):
        default_checkpoint()
    (package_dir / "default.sha256").unlink()
    with pytest.raises(DefaultModelError, match="cannot verify"):
        default_checkpoint()


def test_an_explicit_checkpoint_wins_and_none_means_the_default(package_dir, tiny_checkpoint, tmp_path):
    _install(package_dir, tiny_checkpoint)
    assert resolve_checkpoint(None) == package_dir / DEFAULT_MODEL_FILE
    assert resolve_checkpoint(tmp_path / "other.safetensors") == tmp_path / "other.safetensors"


def test_score_and_models_use_the_default_without_checkpoint(package_dir, tiny_checkpoint, face_video, capsys):
    _install(package_dir, tiny_checkpoint)
    assert main(["score", str(face_video.path), "--json", "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ok"
    assert record["model"]["sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()

    assert main(["models", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["default"] is True and info["backbone"] == "resnet10t" and info["plan"] == "uniform:4"
    assert info["sha256"] == record["model"]["sha256"]
    assert main(["models"]) == 0
    assert "untrained" in capsys.readouterr().out


def test_packaging_writes_a_verified_model_and_removes_untrained_parts(package_dir, tmp_path_factory):
    from vidfake.checkpoints.format import init_checkpoint, load_checkpoint
    from vidfake.checkpoints.package import package_default_model
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.scoring import Scorer
    from vidfake.temporal.config import ModelConfig

    model = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                        mouth_size=32, sync_dim=32, sync_max_offset=3)
    source = init_checkpoint(tmp_path_factory.mktemp("src") / "trained.safetensors", model, ExtractConfig())
    with pytest.raises(ValueError, match="plan"):
        package_default_model(source, "t1", plan="sometimes:3", out_dir=package_dir)
    path = package_default_model(source, "t1", plan="uniform:8", out_dir=package_dir, drop_sync=True,
                                 frame_only=True, card={"data": "generated"})
    assert default_checkpoint() == path
    packed = load_checkpoint(path)
    assert packed.config["model"]["sync"] is False and not any(k.startswith("sync") for k in packed.state_dict)
    assert not packed.state_dict["temporal.head.weight"].any() and not packed.state_dict["temporal.head.bias"].any()
    assert packed.config["extract"]["plan"] == "uniform:8" and packed.config["version"] == "t1"
    assert packed.config["card"]["data"] == "generated" and "lip_sync" in packed.config["card"]
    assert Scorer().model_info["sha256"] == packed.sha256
