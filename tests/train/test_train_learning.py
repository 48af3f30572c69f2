"""A real learning test: `vidfake train`'s own path (data module, balanced sampler, Lightning
module, validation metrics) learns a generated real-vs-blended task in a few dozen steps."""
from __future__ import annotations

import csv

import numpy as np

from tests.paths import REPO as ROOT
from tests.train.folders import write_blended_folder


def test_training_drives_loss_down_and_val_auc_above_0_9(tmp_path):
    from vidfake.train import run

    data = write_blended_folder(tmp_path / "faces", pairs=60, size=32, seed=0)
    config = run.load_config(ROOT / "configs" / "smoke.yaml", [
        "model.backbone=test_resnet", "model.input_size=32", "data.clip_len=1", "data.batch_size=16",
        "data.augment=false", "data.sbi_prob=0", "data.val_fraction=0.3", "optim.lr=0.003", "optim.warmup_steps=3",
        "trainer.max_steps=40", "trainer.val_check_interval=40", "trainer.progress_bar=none",
    ])
    config["data"]["dir"], config["out"] = str(data), str(tmp_path / "run")
    training = run.build(config)
    dm = training.datamodule
    assert {i.label for i in dm.val_items} == {0, 1} and not dm.val_sbi  # judged on the held-out fakes
    assert len(dm.val_items) >= 30
    run.fit(training)

    with open(next((tmp_path / "run" / "logs").glob("version_*/metrics.csv"))) as handle:
        losses = [float(r["train_loss"]) for r in csv.DictReader(handle) if r.get("train_loss")]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    assert training.module.last_val_auc > 0.9
    assert training.saver.best_auc == training.module.last_val_auc
