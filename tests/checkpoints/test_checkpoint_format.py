"""Checkpoints: exact round trips, and loading never executes code from the file."""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vidfake.checkpoints.format import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint

CONFIG = {
    "name": "vidfake-test",
    "version": "0.1.0",
    "model": {"backbone": "tf_efficientnet_lite0", "input_size": 224, "pretrained_path": None, "sync": True},
    "extract": {"plan": "clips:4x16:2", "margin": 0.3},
    "aggregation": {"trim": 0.2, "temperature": 1.3, "prob_clip": 1e-4},
    "training": {"epochs": 3, "lr": 3e-4, "datasets": ["dfdc", "ffpp"]},
}


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_malicious(path: Path, marker: Path, writer: str) -> None:
    if writer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(_Payload(marker), f)
    else:
        torch.save({"format": "vidfake-checkpoint", "state_dict": _Payload(marker)}, path)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.fc2 = torch.nn.Linear(16, 1)
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x))) * self.scale[0]


def test_round_trip_is_bit_identical(tmp_path):
    state = {
        "w": torch.randn(3, 5),
        "half": torch.randn(4).half(),
        "bf16": torch.randn(2, 2).bfloat16(),
        "ints": torch.arange(7, dtype=torch.int64),
        "flags": torch.tensor([True, False]),
        "strided": torch.randn(6, 4).t(),  # non-contiguous
        "scalar": torch.tensor(3.25),
    }
    path = save_checkpoint(tmp_path / "model.safetensors", state, CONFIG)
    ck = load_checkpoint(path)
    assert isinstance(ck, Checkpoint)
    assert ck.config == CONFIG
    assert set(ck.state_dict) == set(state)
    for name, t in state.items():
        assert ck.state_dict[name].dtype == t.dtype
        assert torch.equal(ck.state_dict[name], t), name
    assert ck.path == str(path)
    assert ck.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not [p for p in tmp_path.iterdir() if p.name != "model.safetensors"]  # no temp file left


def test_shared_tensors_are_saved_as_copies(tmp_path):
    base = torch.randn(4, 4)
    state = {"a": base, "tied": base, "row": base[1], "view": base.view(16)}
    ck = load_checkpoint(save_checkpoint(tmp_path / "shared.safetensors", state, CONFIG))
    for name, t in state.items():
        assert torch.equal(ck.state_dict[name], t), name


def test_module_output_identical_after_reload(tmp_path):
    torch.manual_seed(0)
    model = Tiny().eval()
    x = torch.randn(5, 8)
    path = save_checkpoint(tmp_path / "tiny.safetensors", model.state_dict(), CONFIG)
    fresh = Tiny().eval()
    assert not torch.equal(fresh(x), model(x))
    fresh.load_state_dict(load_checkpoint(path).state_dict)
    assert torch.equal(fresh(x), model(x))


def test_pt_file_with_the_same_structure_is_accepted(tmp_path):
    state = Tiny().state_dict()
    path = tmp_path / "model.pt"
    torch.save({"format": "vidfake-checkpoint", "format_version": "1", "config": CONFIG, "state_dict": state}, path)
    ck = load_checkpoint(path)
    assert ck.config == CONFIG
    assert all(torch.equal(ck.state_dict[k], v) for k, v in state.items())


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_payload_really_runs_when_unpickled(tmp_path, writer):
    """Control: the payload used below does create its marker under a full unpickle."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    _write_malicious(path, marker, writer)
    if writer == "pickle":
        with open(path, "rb") as f:
            pickle.load(f)
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
@pytest.mark.parametrize("name", ["evil.safetensors", "evil.pt", "evil.ckpt"])
def test_malicious_pickle_is_refused_without_running(tmp_path, writer, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    _write_malicious(path, marker, writer)
    with pytest.raises(CheckpointError, match="refused|never unpickled"):
        load_checkpoint(path)
    assert not marker.exists()


def test_safetensors_without_vidfake_metadata_is_refused(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="not a vidfake checkpoint"):
        load_checkpoint(plain)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a vidfake checkpoint"):
        load_checkpoint(other)


def test_wrong_version_and_bad_config_are_refused(tmp_path):
    future = tmp_path / "future.safetensors"
    save_file({"w": torch.zeros(2)}, str(future),
              metadata={"format": "vidfake-checkpoint", "format_version": "2", "config": "{}"})
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(future)
    broken = tmp_path / "broken.safetensors"
    save_file({"w": torch.zeros(2)}, str(broken),
              metadata={"format": "vidfake-checkpoint", "format_version": "1", "config": "{not json"})
    with pytest.raises(CheckpointError, match="JSON"):
        load_checkpoint(broken)
    listy = tmp_path / "listy.safetensors"
    save_file({"w": torch.zeros(2)}, str(listy),
              metadata={"format": "vidfake-checkpoint", "format_version": "1", "config": json.dumps([1])})
    with pytest.raises(CheckpointError, match="JSON object"):
        load_checkpoint(listy)


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.1, 0.0])
def test_truncated_file_is_refused(tmp_path, keep):
    path = save_checkpoint(tmp_path / "model.safetensors", Tiny().state_dict(), CONFIG)
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError):
        load_checkpoint(cut)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_save_refuses_configs_that_would_not_load_back_equal(tmp_path):
    state = {"w": torch.zeros(2)}
    for bad in ({"shape": (1, 2)}, {1: "int key"}, {"x": float("nan")}, {"obj": object()}, ["not", "a dict"]):
        with pytest.raises(CheckpointError):
            save_checkpoint(tmp_path / "bad.safetensors", state, bad)
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path / "model.pt", state, CONFIG)
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_atomically(tmp_path):
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, {"w": torch.zeros(2)}, CONFIG)
    save_checkpoint(path, {"w": torch.ones(2)}, {**CONFIG, "version": "0.2.0"})
    ck = load_checkpoint(path)
    assert torch.equal(ck.state_dict["w"], torch.ones(2))
    assert ck.config["version"] == "0.2.0"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
