"""`vidfake train` end to end on a tiny extraction made by `vidfake extract` from generated faces."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml

from tests.paths import REPO as ROOT

SMOKE = ROOT / "configs" / "smoke.yaml"


def test_datamodule_real_only_gives_both_classes_in_val(extracted):
    from vidfake.train.datamodule import FaceClipDataModule

    dm = FaceClipDataModule(extracted, clip_len=4, batch_size=4, val_fraction=0.34, sbi_prob=1.0)
    dm.setup("fit")
    assert dm.train_items and dm.val_items and not dm.data_has_fakes
    labels = torch.cat([b["label"] for b in dm.val_dataloader()])
    assert set(labels.tolist()) == {0.0, 1.0}
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].dtype == torch.uint8 and batch["frames"].shape[1:] == (4, 3, 64, 64)
    assert batch["mask"].all() and (batch["label"] == 1).all()  # sbi_prob=1: every real became SBI
    assert set(batch["method"]) == {"sbi"}
    # the val SBI copies are deterministic
    a = torch.cat([b["frames"] for b in dm.val_dataloader()])
    b = torch.cat([b["frames"] for b in dm.val_dataloader()])
    assert torch.equal(a, b)


def test_warmup_cosine_schedule():
    from vidfake.train.module import warmup_cosine

    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.5)
    assert warmup_cosine(100, 10, 100) == pytest.approx(0.0)


def test_train_smoke_writes_scorable_checkpoints(extracted, videos, tmp_path, capsys):
    from vidfake.checkpoints.format import load_checkpoint
    from vidfake.scoring import Scorer
    from vidfake.train import run

    out = tmp_path / "run"
    code = run.main(["--config", str(SMOKE), "--data", str(extracted), "--out", str(out), "--max-steps", "2",
                     "--accelerator", "cpu", "--devices", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out / "last.safetensors") in printed
    assert (out / "last.safetensors").is_file() and (out / "best.safetensors").is_file()
    metrics = list((out / "logs").glob("version_*/metrics.csv"))
    assert metrics
    with open(metrics[0]) as f:
        columns = set(next(csv.reader(f)))
    assert {"train_loss", "val_auc", "val_log_loss"} <= columns

    ckpt = load_checkpoint(out / "last.safetensors")
    assert ckpt.config["training"]["steps"] == 2
    assert ckpt.config["training"]["data_dir"] == str(extracted.resolve())
    # the run's record: the merged config, defaults filled in, in the logs and the checkpoint
    hparams = metrics[0].parent / "hparams.yaml"
    recorded = yaml.safe_load(hparams.read_text())
    assert recorded["optim"]["lr"] == 0.001 and recorded["optim"]["frame_loss_weight"] == 0.5  # smoke.yaml's
    assert recorded["optim"]["clip_loss_weight"] == 1.0 and recorded["data"]["balance"] == "method"  # defaults
    assert recorded["data"]["dir"] == str(extracted) and recorded["trainer"]["max_steps"] == 2  # arguments
    assert recorded["model"] == ckpt.config["model"]
    assert ckpt.config["training"]["config"] == recorded
    assert run.load_config(hparams) == recorded  # the record is itself a config for --config
    assert ckpt.config["extract"]["crop"]["size"] == 64
    assert not any(k.startswith("model.") for k in ckpt.state_dict)

    verdict = Scorer(out / "best.safetensors").score_video(videos / "face0.mp4")
    assert verdict.status == "ok"


def test_mask_head_model_trains_and_scores(extracted, videos, tmp_path):
    """model.mask_head: the mask loss is logged and the checkpoint scores videos as any other."""
    from vidfake.checkpoints.format import load_checkpoint
    from vidfake.scoring import Scorer
    from vidfake.train import run

    out = tmp_path / "run"
    code = run.main(["--config", str(SMOKE), "--data", str(extracted), "--out", str(out), "--max-steps", "2",
                     "--accelerator", "cpu", "--set", "model.mask_head=true", "--set", "trainer.progress_bar=none"])
    assert code == 0
    with open(next((out / "logs").glob("version_*/metrics.csv"))) as f:
        assert "train_mask_loss" in next(csv.reader(f))
    ckpt = load_checkpoint(out / "last.safetensors")
    assert ckpt.config["model"]["mask_head"] is True
    assert any(k.startswith("encoder.mask_head.") for k in ckpt.state_dict)
    verdict = Scorer(out / "last.safetensors").score_video(videos / "face0.mp4")
    assert verdict.status == "ok" and 0.0 <= verdict.score <= 1.0


def test_train_refuses_size_mismatch(extracted, tmp_path, capsys):
    import yaml

    from vidfake.train import run

    config = yaml.safe_load(SMOKE.read_text())
    config["model"]["input_size"] = 96
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run.main(["--config", str(path), "--data", str(extracted), "--out", str(tmp_path / "o")]) == 2
    assert "input_size" in capsys.readouterr().err


@pytest.mark.slow
def test_sbi_training_drives_loss_down(extracted):
    """A few dozen steps on SBI vs. clean crops of the generated faces: the training loss falls."""
    from vidfake.temporal import ModelConfig
    from vidfake.train.datamodule import FaceClipDataModule
    from vidfake.train.module import DetectorModule

    torch.manual_seed(0)
    dm = FaceClipDataModule(extracted, clip_len=4, batch_size=8, val_fraction=0.0, sbi_prob=0.5, augment=False)
    dm.setup("fit")
    dm.train_set.seed = 0  # reproducible pseudo-fakes, so the test cannot flake
    config = ModelConfig(backbone="resnet10t", input_size=64, embed_dim=32, temporal_layers=1, temporal_heads=2,
                         frame_dropout=0.0, temporal_dropout=0.0, sync=False)
    module = DetectorModule(config, lr=1e-3, weight_decay=0.0, warmup_steps=0, frame_loss_weight=0.5)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    losses = []
    module.train()
    for epoch in range(40):
        dm.train_set.set_epoch(epoch)  # fresh pseudo-fakes every epoch, as in training
        for batch in dm.train_dataloader():
            loss, _, _ = module.losses(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    assert last < 0.7 * first, (first, last)


def test_vidfake_train_is_wired_into_the_cli(capsys):
    from vidfake.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    assert "--config" in capsys.readouterr().out
