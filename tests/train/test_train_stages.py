"""Training options the default model's stages use: temporal pseudo-fakes (flicker, partly
blended clips) with per-frame labels, a separate validation folder (a development set),
and per-part learning rates."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.train.folders import SynthClip, synthetic_face, write_extraction
from vidfake.temporal import ModelConfig
from vidfake.train.datamodule import FaceClipDataModule, TrainTransform, collate_clips
from vidfake.train.module import DetectorModule
from vidfake.train.sbi import self_blend_clip, temporal_self_blend_clip

SIZE = 32


def _clip(rng: np.random.Generator, frames: int = 8) -> tuple[np.ndarray, np.ndarray]:
    face, landmarks = synthetic_face(rng, SIZE)
    return np.repeat(face[None], frames, 0), np.repeat(landmarks[None], frames, 0)


def test_partial_blend_touches_one_contiguous_span_only():
    rng = np.random.default_rng(0)
    frames, landmarks = _clip(rng)
    for seed in range(20):
        fakes, masks, blended = temporal_self_blend_clip(frames, landmarks, np.random.default_rng(seed), "partial")
        span = np.flatnonzero(blended)
        assert 2 <= len(span) <= 7  # at least a quarter of 8 frames, never all of them
        assert np.array_equal(span, np.arange(span[0], span[-1] + 1))  # contiguous
        untouched = ~blended
        assert np.array_equal(fakes[untouched], frames[untouched])  # the rest is the real clip, exactly
        assert not masks[untouched].any()
        assert all(masks[t].max() > 0 for t in span)


def test_flicker_varies_from_frame_to_frame_more_than_a_steady_blend():
    frames, landmarks = _clip(np.random.default_rng(1))

    def mean_change(fakes: np.ndarray) -> float:  # frame-to-frame difference; the real clip is static
        return float(np.abs(np.diff(fakes.astype(np.float32), axis=0)).mean())

    steady = [mean_change(self_blend_clip(frames, landmarks, np.random.default_rng(s))[0]) for s in range(10)]
    flicker = [mean_change(temporal_self_blend_clip(frames, landmarks, np.random.default_rng(s), "flicker")[0])
               for s in range(10)]
    assert np.mean(flicker) > 2 * np.mean(steady)
    _, masks, blended = temporal_self_blend_clip(frames, landmarks, np.random.default_rng(0), "flicker")
    assert blended.all() and masks.max() > 0


def test_temporal_blend_refuses_bad_input():
    frames, landmarks = _clip(np.random.default_rng(0), frames=1)
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal_self_blend_clip(frames, landmarks, np.random.default_rng(0), "partial")
    frames, landmarks = _clip(np.random.default_rng(0), frames=4)
    with pytest.raises(ValueError, match="kind must be one of"):
        temporal_self_blend_clip(frames, landmarks, np.random.default_rng(0), "wobble")


def _sample(label: float, frames: np.ndarray, landmarks: np.ndarray) -> dict:
    return {"frames": frames, "landmarks": landmarks, "label": label, "method": "real", "media_id": "m",
            "times": torch.arange(len(frames), dtype=torch.float32) / 25}


def test_train_transform_draws_temporal_fakes_with_frame_labels():
    frames, landmarks = _clip(np.random.default_rng(2))
    transform = TrainTransform(sbi_prob=1.0, augment=False, temporal_sbi_prob=1.0)
    methods = set()
    for seed in range(12):
        out = transform(_sample(0.0, frames, landmarks), np.random.default_rng(seed))
        methods.add(out["method"])
        assert out["label"] == 1.0
        if out["method"] == "sbi-partial":
            assert 0 < out["frame_labels"].sum() < len(frames)
        else:
            assert out["frame_labels"].tolist() == [1.0] * len(frames)
    assert methods == {"sbi-flicker", "sbi-partial"}
    # off by default: plain SBI, no per-frame labels, and the same draws as before the option existed
    plain = TrainTransform(sbi_prob=1.0, augment=False)(_sample(0.0, frames, landmarks), np.random.default_rng(3))
    again = TrainTransform(sbi_prob=1.0, augment=False)(_sample(0.0, frames, landmarks), np.random.default_rng(3))
    assert plain["method"] == "sbi" and "frame_labels" not in plain
    assert np.array_equal(plain["frames"], again["frames"])
    single = TrainTransform(sbi_prob=1.0, augment=False, temporal_sbi_prob=1.0)(
        _sample(0.0, frames[:1], landmarks[:1]), np.random.default_rng(0))
    assert single["method"] == "sbi"  # one frame cannot vary in time
    with pytest.raises(ValueError, match="temporal_sbi_prob"):
        TrainTransform(temporal_sbi_prob=1.5)


def _as_tensors(sample: dict) -> dict:
    frames = torch.from_numpy(sample["frames"]).permute(0, 3, 1, 2).contiguous()
    return {**sample, "frames": frames}


def test_collate_and_loss_use_per_frame_labels():
    frames, landmarks = _clip(np.random.default_rng(4), frames=4)
    partial = _sample(1.0, frames, landmarks)
    partial["frame_labels"] = np.array([0, 0, 1, 1], np.float32)
    plain_fake = _sample(1.0, frames[:3], landmarks[:3])
    batch = collate_clips([_as_tensors(partial), _as_tensors(plain_fake)])
    assert batch["frame_labels"].tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]  # padding is masked out anyway
    assert "frame_labels" not in collate_clips([_as_tensors(plain_fake)])

    torch.manual_seed(0)
    module = DetectorModule(ModelConfig(backbone="mobilenetv3_small_050", input_size=SIZE, embed_dim=16,
                                        temporal_layers=1, temporal_heads=2), pretrained=False,
                            clip_loss_weight=0.0, frame_loss_weight=1.0)
    module.eval()
    batch["frames"] = batch["frames"].float() / 255
    with torch.no_grad():
        loss, out, parts = module.losses(batch)
        logits = out.frame_logits[batch["mask"]]
        want = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([0., 0., 1., 1., 1., 1., 1.]))
    assert torch.isclose(parts["frame"], want)


def _folder(path, groups: list[str], seed: int):
    rng = np.random.default_rng(seed)
    clips = []
    for k, group in enumerate(groups):
        face, landmarks = synthetic_face(rng, SIZE)
        clips.append(SynthClip(f"{group}_{k}", k % 2, np.repeat(face[None], 8, 0), np.repeat(landmarks[None], 8, 0),
                               group=group, method="real" if k % 2 == 0 else "swap"))
    return write_extraction(path, clips, SIZE)


def test_val_dir_is_the_whole_validation_split(tmp_path):
    train = _folder(tmp_path / "train", ["a", "a", "b", "b"], 0)
    dev = _folder(tmp_path / "dev", ["x", "x", "y", "y"], 1)
    module = FaceClipDataModule(train, clip_len=4, batch_size=2, val_dir=dev, consecutive=True)
    module.setup("fit")
    assert {i.media_id.split("_")[0] for i in module.train_items} == {"a", "b"}
    assert {i.media_id.split("_")[0] for i in module.val_items} == {"x", "y"}
    assert len(module.train_items) == 8 and len(module.val_items) == 8  # 8 frames -> two 4-frame clips each

    leaky = _folder(tmp_path / "leaky", ["a", "z"], 2)
    with pytest.raises(ValueError, match="shares 1 group"):
        FaceClipDataModule(train, clip_len=4, val_dir=leaky).setup("fit")


def test_vidfake_train_with_a_val_dir_and_temporal_fakes(tmp_path):
    from vidfake.train.run import main

    train = _folder(tmp_path / "train", ["a", "a", "b", "b"], 0)
    dev = _folder(tmp_path / "dev", ["x", "x", "y", "y"], 1)
    out = tmp_path / "run"
    code = main(["--data", str(train), "--out", str(out), "--max-steps", "2", "--batch-size", "2",
                 "--set", f"data.val_dir={dev}", "--set", "data.temporal_sbi_prob=0.5",
                 "--set", "data.consecutive=true", "--set", "data.clip_len=4",
                 "--set", "model.backbone=mobilenetv3_small_050", "--set", f"model.input_size={SIZE}",
                 "--set", "model.embed_dim=16", "--set", "model.pretrained_path=null",
                 "--set", "trainer.accelerator=cpu", "--set", "trainer.progress_bar=none"])
    assert code == 0
    assert (out / "best.safetensors").is_file()


def test_lr_scale_gives_a_part_its_own_learning_rate():
    module = DetectorModule(ModelConfig(backbone="mobilenetv3_small_050", input_size=SIZE, embed_dim=16,
                                        temporal_layers=1, temporal_heads=2), pretrained=False, lr=1e-3)
    module.train_parts(["temporal", "sync_weight"])
    module.set_lr_scale({"sync_weight": 50})
    groups = module.param_groups()
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert by_id[id(module.model.sync_weight)]["lr"] == pytest.approx(0.05)
    assert by_id[id(module.model.sync_weight)]["weight_decay"] == 0.0
    temporal = [by_id[id(p)] for p in module.model.temporal.parameters()]
    assert all(g["lr"] == pytest.approx(1e-3) for g in temporal)
    assert not any(id(p) in by_id for p in module.model.encoder.parameters())  # frozen: in no group
    with pytest.raises(ValueError, match="unknown model parts"):
        module.set_lr_scale({"decoder": 2})
    with pytest.raises(ValueError, match="positive"):
        module.set_lr_scale({"temporal": 0})


def test_balance_label_weighs_classes_not_methods(tmp_path):
    rng = np.random.default_rng(5)
    clips = []
    # 1 real video; fakes: 3 videos of one method, 1 of another
    for k, (label, method) in enumerate([(0, "real"), (1, "big"), (1, "big"), (1, "big"), (1, "tiny")]):
        face, landmarks = synthetic_face(rng, SIZE)
        clips.append(SynthClip(f"v{k}", label, np.repeat(face[None], 4, 0), np.repeat(landmarks[None], 4, 0),
                               group=f"g{k}", method=method))
    folder = write_extraction(tmp_path / "faces", clips, SIZE)
    dev = _folder(tmp_path / "dev", ["x", "x"], 1)

    def fake_weights(balance: str) -> list[float]:
        module = FaceClipDataModule(folder, clip_len=4, val_dir=dev, balance=balance)
        module.setup("fit")
        sampler = module.train_dataloader().sampler
        by_id = dict(zip([i.media_id for i in module.train_items], sampler.weights.tolist()))
        return [round(by_id[f"v{k}"], 4) for k in range(5)]

    assert fake_weights("method") == [0.5, round(0.25 / 3, 4), round(0.25 / 3, 4), round(0.25 / 3, 4), 0.25]
    assert fake_weights("label") == [0.5, 0.125, 0.125, 0.125, 0.125]
    with pytest.raises(ValueError, match="balance must be one of"):
        FaceClipDataModule(folder, balance="kind")
