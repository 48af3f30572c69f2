"""Every shipped training config parses, describes a buildable model, and trains a step
(with tiny overrides for the backbone and sizes only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.paths import REPO as ROOT
from tests.train.folders import SynthClip, synthetic_face, talking, write_extraction

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
REAL_RUNS = {"sbi_frame.yaml", "temporal.yaml", "sync_pretext.yaml"}  # the example configs for real training


@pytest.fixture(scope="module")
def talking_faces(tmp_path_factory) -> Path:
    """4 real talking-face videos of 16 frames with mouths and audio (32 px crops, 32 px mouths)."""
    rng = np.random.default_rng(0)
    clips = []
    for i in range(4):
        mouths, audio = talking(rng, 16, 25.0, 32)
        face, landmarks = synthetic_face(rng, 32)
        clips.append(SynthClip(f"v{i}", 0, np.repeat(face[None], 16, 0), np.repeat(landmarks[None], 16, 0),
                               mouths=mouths, audio=audio))
    return write_extraction(tmp_path_factory.mktemp("configs") / "faces", clips, 32, mouth_size=32)


def test_the_shipped_configs_are_there():
    assert REAL_RUNS | {"smoke.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_describes_a_valid_run(path):
    import timm

    from vidfake.temporal import ModelConfig
    from vidfake.train import run

    config = run.load_config(path)
    model = ModelConfig.from_dict(config["model"])
    assert timm.is_model(model.backbone)
    if path.name in REAL_RUNS:  # the Lite0 backbone; ImageNet weights come from a loader being added
        assert model.backbone == "tf_efficientnet_lite0" and model.pretrained_path is None
        assert config["trainer"]["precision"] == "auto"
    if config["task"] == "sync_pretext" or config["data"]["sync"]:
        assert model.sync and model.mouth_size == 96  # vidfake extract writes 96 px mouth crops
        assert config["data"]["sync_min_shift"] <= model.sync_max_offset
    if path.name == "sbi_frame.yaml":
        assert config["data"]["clip_len"] == 1 and config["data"]["sbi_prob"] > 0


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_trains_a_step(path, talking_faces, tmp_path):
    from vidfake.checkpoints.format import load_checkpoint
    from vidfake.train import run

    tiny = ["model.backbone=test_resnet", "model.pretrained_path=null", "model.input_size=32", "model.embed_dim=16", "model.mouth_size=32",
            "model.sync_dim=16", "data.batch_size=2", "data.num_workers=0", "trainer.max_steps=1",
            "trainer.accelerator=cpu", "trainer.progress_bar=none"]
    config = run.load_config(path, tiny)
    config["data"]["dir"], config["out"] = str(talking_faces), str(tmp_path / "run")
    training = run.build(config)
    run.fit(training)
    assert training.trainer.global_step == 1
    saved = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert saved.config["training"]["task"] == config["task"]
    assert saved.config["training"]["config"]["optim"] == config["optim"]  # lr and loss weights recorded
    assert saved.config["model"]["sync"] == config["model"].get("sync", True)


def test_the_default_model_stages_describe_one_model():
    """The three stages copy weights into and out of one architecture: their model
    sections must build the same model (the ImageNet start aside, which every stage takes
    from --init-from)."""
    from vidfake.temporal import ModelConfig
    from vidfake.train import run

    def model_of(name: str) -> ModelConfig:
        return ModelConfig.from_dict({**run.load_config(ROOT / "configs" / name)["model"], "pretrained_path": None})

    frame = model_of("default_frames.yaml")
    assert frame.sync and frame.mask_head
    for stage in ("default_sync_pretext.yaml", "default_temporal.yaml"):
        assert model_of(stage) == frame, stage
    frames = run.load_config(ROOT / "configs" / "default_frames.yaml")
    temporal = run.load_config(ROOT / "configs" / "default_temporal.yaml")
    pretext = run.load_config(ROOT / "configs" / "default_sync_pretext.yaml")
    assert frames["optim"]["trainable"] == ["encoder"] and frames["data"]["clip_len"] == 1
    assert temporal["optim"]["trainable"] == ["temporal", "sync_weight"]
    assert temporal["data"]["consecutive"] and temporal["data"]["temporal_sbi_prob"] > 0
    assert temporal["data"]["clip_len"] == pretext["data"]["clip_len"]  # the training extraction's clips


def test_training_defaults_have_one_source():
    """DEFAULTS, the data module's and the LightningModules' constructor defaults all come
    from the config dataclasses: a value left out of a YAML file and one left out of a
    constructor call are the same number."""
    import inspect
    from dataclasses import fields

    from vidfake.train import datamodule, run
    from vidfake.train.config import DataConfig, OptimConfig, TrainConfig
    from vidfake.train.module import DetectorModule, VidfakeModule
    from vidfake.train.pretext import SyncPretextModule

    assert run.DEFAULTS == TrainConfig().to_dict()
    data_module = inspect.signature(datamodule.FaceClipDataModule).parameters
    for f in fields(DataConfig):
        if f.name != "dir":  # the folder is the positional data_dir
            assert data_module[f.name].kind is inspect.Parameter.KEYWORD_ONLY, f.name
            assert data_module[f.name].default == f.default, f.name
    optim = {f.name: f.default for f in fields(OptimConfig)}
    for module in (VidfakeModule, DetectorModule, SyncPretextModule):
        parameters = list(inspect.signature(module).parameters.values())
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]), module
        shared = [p for p in parameters if p.name in optim]
        assert len(shared) >= 3 and all(p.default == optim[p.name] for p in shared), module
    assert DetectorModule.__init__.__kwdefaults__["sync_loss_weight"] == run.DEFAULTS["optim"]["sync_loss_weight"]


def test_config_errors_name_the_key_and_the_valid_ones(tmp_path):
    from vidfake.train import run

    with pytest.raises(run.ConfigError, match=r"--set data.clip_length=4: unknown data keys \['clip_length'\]; "
                                              r"valid keys: dir, clip_len, batch_size"):
        run.load_config(None, ["data.clip_length=4"])
    with pytest.raises(run.ConfigError, match=r"unknown model keys \['backbon'\]; valid keys: backbone"):
        run.load_config(None, ["model.backbon=resnet10t"])
    with pytest.raises(run.ConfigError, match=r"unknown sections \['optimizer'\]; valid sections: task, data"):
        run.load_config(None, ["optimizer.lr=1"])
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  progress_bar: fancy\n")
    with pytest.raises(run.ConfigError, match=rf"{path}: trainer.progress_bar must be one of"):
        run.load_config(path)
    config = run.load_config(None, ["model.sync_dim=8"])
    assert config["model"]["sync_dim"] == 8 and config["model"]["backbone"] == "tf_efficientnet_lite0"
    # a misspelt backbone is refused before any data is read (tmp_path is no extraction)
    config = run.load_config(None, ["model.backbone=resnet10", f"data.dir={tmp_path}"])
    with pytest.raises(run.ConfigError, match=r"unknown backbone 'resnet10' \(model.backbone\): did you mean resnet10t"):
        run.build(config)
