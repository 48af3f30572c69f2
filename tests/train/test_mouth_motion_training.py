"""vidfake.train.mouth_motion: training the mouth-motion head on top of a frozen detector."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.tiny_models import write_tiny_checkpoint
from tests.train.folders import SynthClip, synthetic_face, talking, write_extraction
from vidfake.checkpoints.format import build_model, load_checkpoint
from vidfake.train.mouth_motion import MouthTrainTransform, mouth_items, train_mouth_motion

SIZE, MOUTH, T = 64, 32, 8


def _folder(out, seed: int, n: int):
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        face, landmarks = synthetic_face(rng, SIZE)
        frames = np.repeat(face[None], T, axis=0)
        mouths, audio = talking(rng, T, 25.0, MOUTH)
        clips.append(SynthClip(f"v{seed}_{i}", label=i % 2, frames=frames, landmarks=np.repeat(landmarks[None], T, 0),
                               mouths=mouths, audio=audio, group=f"g{seed}_{i}", origin=f"repo{i % 2}",
                               method=("lipsync" if i % 4 == 1 else "faceswap") if i % 2 else "real"))
    return write_extraction(out, clips, SIZE, MOUTH)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("mouth")
    return _folder(root / "train", 0, 6), _folder(root / "val", 1, 4), write_tiny_checkpoint(root / "tiny.safetensors")


def test_mouth_items_are_whole_consecutive_runs(folders):
    train, _, _ = folders
    items = mouth_items(train, T)
    assert len(items) == 6 and all(len(i) == T and i.consecutive and i.mouth_files for i in items)
    assert mouth_items(train, T + 1) == []  # no run that long


def test_transform_makes_mouth_fakes_of_reals_only():
    rng = np.random.default_rng(0)
    face, landmarks = synthetic_face(rng, SIZE)
    frames = np.stack([np.roll(face, k, axis=0) for k in range(T)])  # the face moves: another moment differs
    lms = np.stack([landmarks + [0, k] for k in range(T)]).astype(np.float32)
    sample = {"frames": frames, "landmarks": lms, "label": 0.0, "method": "real", "mouths": frames[:, :32, :32]}
    transform = MouthTrainTransform(mouth_fake_prob=1.0, augment=None)
    fake = transform(dict(sample), np.random.default_rng(1))
    assert fake["label"] == 1.0 and fake["method"] == "mouth_fake" and "mouths" not in fake
    changed = np.abs(fake["frames"].astype(int) - frames).sum(axis=(0, 3)) > 0
    assert changed[SIZE // 2:].sum() > changed[: SIZE // 4].sum()  # the lower face changed, the forehead did not
    kept = transform({**sample, "label": 1.0}, np.random.default_rng(1))
    np.testing.assert_array_equal(kept["frames"], frames)


def test_training_writes_detectors_that_differ_only_in_the_head(folders, tmp_path):
    train, val, init = folders
    result = train_mouth_motion(init, train, val, tmp_path / "run", steps=4, batch_size=4, val_every=2,
                                progress=False, num_workers=0)
    assert result["steps"] == 4 and result["train_clips"] == 6 and result["val_clips"] == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4] and all(r["val_videos"] == 4 for r in records)
    base = load_checkpoint(init)
    best = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert best.settings.model.mouth_motion and not base.settings.model.mouth_motion
    for name, tensor in base.state_dict.items():
        assert torch.equal(best.state_dict[name], tensor), name  # everything else frozen
    assert float(best.state_dict["mouth_weight"]) == 0.0  # set later, on development predictions
    model = build_model(best)
    assert model.mouth_motion is not None
    again = train_mouth_motion(init, train, val, tmp_path / "run", steps=6, batch_size=4, val_every=2,
                               resume=True, progress=False, num_workers=0)
    assert again["steps"] == 6
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3  # resumed at 4, not 0


def test_fake_methods_keeps_the_reals_and_only_those_fakes(folders, tmp_path):
    train, val, init = folders  # 3 reals; fakes: 2 lipsync, 1 faceswap
    result = train_mouth_motion(init, train, val, tmp_path / "run", steps=1, batch_size=2, val_every=1,
                                progress=False, num_workers=0, fake_methods=frozenset({"lipsync"}))
    assert result["train_clips"] == 5
