"""Training at scale: gradient accumulation, resuming, logs and throughput, distributed
samplers and validation, and DDP with two CPU processes."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from tests.paths import REPO as ROOT
from tests.processes import child_env
from tests.train.folders import write_blended_folder

TINY = ["model.backbone=test_resnet", "model.input_size=32", "model.embed_dim=16", "data.clip_len=1",
        "data.batch_size=4", "data.augment=false", "trainer.accelerator=cpu", "trainer.precision=32-true",
        "trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_blended_folder(tmp_path_factory.mktemp("scale") / "faces", pairs=12, size=32, seed=0)


def _config(faces: Path, out: Path, *overrides: str) -> dict:
    from vidfake.train import run

    config = run.load_config(ROOT / "configs" / "smoke.yaml", TINY + list(overrides))
    config["data"]["dir"], config["out"] = str(faces), str(out)
    return config


def _metrics(log_dir: Path) -> list[dict]:
    with open(log_dir / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


class CountBatches(pl.Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1


class Interrupt(pl.Callback):
    """Stops a run with an error once it reaches ``step`` (as a crash or a lost node would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError("interrupted")


class ShownInBar(pl.Callback):
    def __init__(self) -> None:
        self.metrics: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.metrics.append(dict(trainer.progress_bar_callback.get_metrics(trainer, pl_module)))


def test_gradient_accumulation_steps_once_per_k_batches(faces, tmp_path):
    from vidfake.train import run

    training = run.build(_config(faces, tmp_path / "run", "trainer.accumulate_grad_batches=2", "trainer.max_steps=3",
                                 "trainer.progress_bar=none"))
    # Lightning also steps at the end of an epoch: keep epochs a multiple of 2 batches
    assert len(training.datamodule.train_dataloader()) % 2 == 0
    counter = CountBatches()
    training.trainer.callbacks.append(counter)
    run.fit(training)
    assert counter.batches == 6 and training.trainer.global_step == 3
    optimizer = training.trainer.optimizers[0]
    assert {int(state["step"]) for state in optimizer.state.values()} == {3}  # AdamW stepped 3 times


def test_resume_continues_the_step_count(faces, tmp_path, capsys):
    from vidfake.checkpoints.format import load_checkpoint
    from vidfake.train import run

    out = tmp_path / "run"
    first = run.build(_config(faces, out, "trainer.max_steps=4", "trainer.val_check_interval=2",
                              "trainer.progress_bar=none"))
    first.trainer.callbacks.append(Interrupt(step=3))
    with pytest.raises(RuntimeError, match="interrupted"):
        run.fit(first)
    saved = torch.load(out / "last.ckpt", weights_only=True)  # plain values only, hyperparameters included
    assert saved["global_step"] == 2  # written at the validation of step 2
    assert saved["hyper_parameters"]["optim"]["lr"] == 0.001 and saved["hyper_parameters"]["trainer"]["max_steps"] == 4
    assert saved["callbacks"]["SaveVidfakeCheckpoint"]["best_step"] == 2
    assert load_checkpoint(out / "last.safetensors").config["training"]["steps"] == 2

    code = run.main(["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(faces), "--out", str(out),
                     "--max-steps", "4", "--resume", *[a for o in TINY + ["trainer.val_check_interval=2"]
                                                       for a in ("--set", o)]])
    assert code == 0
    captured = capsys.readouterr()
    assert f"resuming from {out / 'last.ckpt'}" in captured.out
    ckpt = load_checkpoint(out / "last.safetensors")
    assert ckpt.config["training"]["steps"] == 4
    resumed = _metrics(out / "logs" / "version_1")
    trained = [int(r["step"]) for r in resumed if r.get("train_loss")]
    assert trained == [2, 3]  # only the two steps left were run
    assert torch.load(out / "last.ckpt", weights_only=True)["global_step"] == 4
    # no terminal: plain progress lines with the throughput
    assert "vidfake train: step 4/4" in captured.err and "clips/s" in captured.err


def test_logs_csv_and_tensorboard_with_throughput(faces, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vidfake.train import run

    training = run.build(_config(faces, tmp_path / "run", "trainer.max_steps=3", "trainer.progress_bar=bar"))
    bar = training.trainer.progress_bar_callback
    assert bar is not None
    shown = ShownInBar()
    training.trainer.callbacks.append(shown)
    run.fit(training)
    assert any(m.get("clips_per_s", 0) > 0 for m in shown.metrics)  # the bar shows the throughput
    rows = _metrics(Path(training.trainer.loggers[0].log_dir))
    assert any(r.get("clips_per_s") for r in rows) and any(r.get("val_auc") for r in rows)
    events = EventAccumulator(str(training.trainer.loggers[1].log_dir))
    events.Reload()
    assert {"train_loss", "clips_per_s", "val_auc"} <= set(events.Tags()["scalars"])


def test_config_overrides_and_errors(tmp_path):
    from vidfake.train import run

    config = run.load_config(ROOT / "configs" / "smoke.yaml", ["trainer.devices=2", "data.sync=true", "task=sync_pretext",
                                                               "model.sync_dim=8", "init.modules=[sync, temporal]"])
    assert config["trainer"]["devices"] == 2 and config["data"]["sync"] is True and config["task"] == "sync_pretext"
    assert config["model"]["sync_dim"] == 8 and config["init"]["modules"] == ["sync", "temporal"]
    assert config["data"]["clip_len"] == 4  # the file's values stay
    for bad, message in [("data.nope=1", "unknown data keys"), ("nope.x=1", "unknown sections"),
                         ("task=train", "task must be"), ("novalue", "SECTION.KEY=VALUE")]:
        with pytest.raises(run.ConfigError, match=message):
            run.load_config(ROOT / "configs" / "smoke.yaml", [bad])
    assert run.main(["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(tmp_path), "--set", "x"]) == 2


# ---------------------------------------------------------------- distributed pieces
def test_balanced_distributed_sampler_splits_one_draw():
    from torch.utils.data import TensorDataset

    from vidfake.train.sampling import BalancedDistributedSampler

    labels = torch.tensor([0] * 30 + [1] * 10)
    weights = torch.where(labels == 1, 1 / 20, 1 / 60).double()
    dataset = TensorDataset(labels)
    ranks = [BalancedDistributedSampler(dataset, weights, num_samples=41, num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(5)
    a, b = (list(s) for s in ranks)
    assert len(a) == len(b) == len(ranks[0]) == 21  # padded to the same length: DDP runs equal batch counts
    single = BalancedDistributedSampler(dataset, weights, num_samples=41, seed=3)
    single.set_epoch(5)
    drawn = list(single)
    assert sorted(a + b) == sorted(drawn + drawn[:1])  # the ranks split one draw between them
    assert a == drawn[0::2] and b[:20] == drawn[1::2]
    ranks[0].set_epoch(6)
    assert list(ranks[0]) != a
    big = BalancedDistributedSampler(dataset, weights, num_samples=4000, seed=0)
    assert 0.45 < labels[list(big)].float().mean().item() < 0.55
    with pytest.raises(ValueError, match="one weight per item"):
        BalancedDistributedSampler(dataset, weights[:5])


def test_validation_counts_each_sample_once(faces):
    """Distributed val samplers pad with repeats; metrics de-duplicate by sample index."""
    from vidfake.eval.metrics import roc_auc
    from vidfake.temporal import ModelConfig
    from vidfake.train.module import DetectorModule

    module = DetectorModule(ModelConfig(backbone="test_resnet", input_size=32, embed_dim=16, sync=False))
    module.on_validation_epoch_start()
    probs = torch.tensor([0.9, 0.2, 0.8, 0.3])
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    module.collect_val({"label": labels, "index": torch.tensor([0, 1, 2, 3])}, prob=probs, label=labels)
    # a padded repeat of sample 0 with another (wrong) score must not count
    module.collect_val({"label": labels[:1], "index": torch.tensor([0])}, prob=torch.tensor([0.1]), label=labels[:1])
    values = module._gathered()
    assert values["index"].tolist() == [0, 1, 2, 3]
    assert roc_auc(values["label"].astype(int), values["prob"]) == 1.0


def _launch(launcher: str, args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``vidfake train ARGS`` as 2 processes the way ``launcher`` would; (exit code, output)."""
    env = child_env()
    command = [sys.executable, "-m", "vidfake", "train", *args]
    if launcher == "lightning":  # one process; Lightning starts the second
        procs = [subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    elif launcher == "torchrun":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "vidfake"]
        procs = [subprocess.Popen(torchrun + command[3:], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)]
    else:  # what `srun --ntasks-per-node=2` sets for each task
        slurm = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
                 "SLURM_NODELIST": "127.0.0.1", "SLURM_JOB_ID": str(20000 + os.getpid() % 10000),
                 "SLURM_JOB_NAME": "vidfake-test"}
        procs = [subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**env, **slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)})
                 for r in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    return max(p.returncode for p in procs), "\n".join(outputs)


@pytest.mark.parametrize("launcher", [
    "lightning", pytest.param("torchrun", marks=pytest.mark.slow), pytest.param("slurm", marks=pytest.mark.slow)])
def test_ddp_two_cpu_processes(faces, tmp_path, launcher):
    """`vidfake train` as 2 processes (gloo) started by Lightning, torchrun or SLURM: each
    runs its share of batches for the expected optimizer steps; rank zero alone writes
    one set of checkpoints and logs."""
    out = tmp_path / "ddp"
    overrides = TINY + ["trainer.strategy=ddp", "trainer.devices=2", "trainer.accumulate_grad_batches=2",
                        "trainer.val_check_interval=2", "trainer.progress_bar=none"]
    code, output = _launch(launcher, ["--config", str(ROOT / "configs" / "smoke.yaml"), "--data", str(faces),
                                      "--out", str(out), "--max-steps", "3", *[a for o in overrides for a in ("--set", o)]],
                           tmp_path)
    assert code == 0, output[-5000:]
    assert "distributed_backend=gloo" in output and "MEMBER: 2/2" in output
    assert output.count("vidfake train: best checkpoint") == 1  # rank zero speaks
    state = torch.load(out / "last.ckpt", weights_only=True)
    assert state["global_step"] == 3  # optimizer steps
    batches = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"]
    assert batches == 6  # per process: 3 steps x 2 accumulated batches
    from vidfake.checkpoints.format import load_checkpoint

    assert load_checkpoint(out / "last.safetensors").config["training"]["steps"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["best.safetensors", "last.ckpt", "last.safetensors", "logs", "tb"]
    assert [p.name for p in (out / "logs").iterdir()] == ["version_0"]


def test_paired_sampler_keeps_each_pair_in_one_batch_with_one_seed():
    from torch.utils.data import TensorDataset

    from vidfake.train.sampling import PairedBalancedSampler

    labels = torch.tensor([0] * 12 + [1] * 12)
    weights = torch.full((24,), 1 / 24, dtype=torch.float64)
    pairs = [(12 + i, i) for i in range(6)]  # fakes 12..17 beside their sources 0..5
    dataset = TensorDataset(labels)
    ranks = [PairedBalancedSampler(dataset, weights, pairs, batch_size=8, pair_share=0.5, num_samples=30,
                                   num_replicas=2, rank=r, seed=1) for r in (0, 1)]
    both = []
    for sampler in ranks:
        drawn = list(sampler)
        assert len(drawn) == len(sampler) == 16  # whole batches: 2 per process
        for start in range(0, len(drawn), 8):
            batch = drawn[start:start + 8]
            head, tail = batch[:4], batch[4:]
            assert all(isinstance(i, tuple) for i in head) and all(isinstance(i, int) for i in tail)
            for (fake, seed_a), (real, seed_b) in zip(head[0::2], head[1::2]):
                assert (fake, real) in pairs and seed_a == seed_b
        both.append(drawn)
    assert both[0] != both[1]  # the processes get different batches of one draw
    single = PairedBalancedSampler(dataset, weights, pairs, batch_size=8, pair_share=0.5, num_samples=30, seed=1)
    everything = list(single)
    assert everything[:8] == both[0][:8] and everything[8:16] == both[1][:8]
    none = PairedBalancedSampler(dataset, weights, [], batch_size=8, pair_share=0.5, num_samples=30)
    assert all(isinstance(i, int) for i in none)
    with pytest.raises(ValueError, match="pair_share"):
        PairedBalancedSampler(dataset, weights, pairs, batch_size=8, pair_share=1.5)
