"""The optional blend-mask head (Face X-ray style): model outputs, the training target the
data module carries for it, its loss, and that it learns where a face was blended."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.paths import CONFIGS
from tests.train.folders import blended_face
from vidfake.temporal import ModelConfig, create_model

TINY = dict(backbone="test_resnet", input_size=64, embed_dim=16, temporal_layers=1, temporal_heads=2,
            frame_dropout=0.0, temporal_dropout=0.0, sync=False)


def test_mask_head_gives_coarse_maps_on_the_features_the_score_uses():
    torch.manual_seed(0)
    model = create_model(ModelConfig(**TINY, mask_head=True), pretrained=False).eval()
    frames = torch.rand(2, 3, 3, 64, 64)
    times = torch.arange(3.0).expand(2, 3)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = model(frames, times, mask)
    assert out.mask_logits.shape == (2, 3, 2, 2)  # stride 32 of a 64 px crop
    assert torch.count_nonzero(out.mask_logits[1, 2]) == 0  # padded frame
    assert torch.count_nonzero(out.mask_logits[0, 0]) > 0

    # one pass: the mask head reads the feature map whose pooled features give the score
    fmap = model.encoder.forward_features(frames[0])
    emb, logits, maps = model.encoder.forward_head(fmap)
    assert fmap.ndim == 4 and maps.shape == (3, 2, 2)
    torch.testing.assert_close(maps, model.encoder.mask_head(fmap).squeeze(1))
    torch.testing.assert_close(logits, out.frame_logits[0])
    torch.testing.assert_close(maps, out.mask_logits[0])
    assert emb.shape == (3, 16)


def test_no_mask_head_by_default():
    model = create_model(ModelConfig(**TINY), pretrained=False).eval()
    out = model(torch.rand(1, 2, 3, 64, 64), torch.arange(2.0)[None])
    assert out.mask_logits is None and model.encoder.mask_head is None
    emb, logits, maps = model.encoder(torch.rand(1, 3, 64, 64))
    assert maps is None and emb.shape == (1, 16) and logits.shape == (1,)


def _deterministic_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Every weight from a formula of its name (no random generator, so the same numbers on
    every torch version): sines scaled like a He init, BatchNorm near the identity."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            phase = zlib.crc32(name.encode()) % 1000 / 100
            wave = torch.sin(torch.arange(t.numel(), dtype=torch.float64) * 0.7 + phase).view(t.shape)
            if name.endswith("running_var"):
                wave = wave.abs() * 0.5 + 0.75
            elif t.ndim <= 1 and name.endswith("weight"):
                wave = 1.0 + wave * 0.1
            elif name.endswith("running_mean") or t.ndim <= 1:
                wave = wave * 0.1
            else:
                wave = wave * (2.0 / (t.numel() / t.shape[0])) ** 0.5
            t.copy_(wave)
    return model


@pytest.mark.parametrize("mask_head", [True, False])
def test_the_encoder_gives_the_numbers_of_its_former_two_forward_paths(mask_head):
    """The expected values were computed with the encoder before its forward became timm's
    seam (``forward_features`` + ``forward_head``), when the mask head had its own forward
    path and the plain one called the backbone whole: same weights, same numbers."""
    model = create_model(ModelConfig(**TINY, mask_head=mask_head), pretrained=False)
    model = _deterministic_weights(model).eval()
    pixel = torch.arange(3 * 64 * 64, dtype=torch.float64)
    frames = torch.stack([0.5 + 0.5 * torch.sin(pixel * 0.01 * (k + 1) + k) for k in range(6)])
    frames = frames.float().view(2, 3, 3, 64, 64)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    with torch.no_grad():
        out = model(frames, torch.arange(3.0).expand(2, 3), mask)
    close = dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.frame_logits, torch.tensor([[0.617163, 10.760834, 3.409955],
                                                               [9.056374, 0.631120, 0.0]]), **close)
    torch.testing.assert_close(out.clip_logit, torch.tensor([4.543800, 4.463181]), **close)
    if mask_head:
        torch.testing.assert_close(out.mask_logits[0, 0], torch.tensor([[20.165697, 18.868862],
                                                                        [25.482759, 24.522324]]), **close)
        torch.testing.assert_close(out.mask_logits[1, 1], torch.tensor([[40.224686, 40.895042],
                                                                        [67.121170, 60.076733]]), **close)
        assert torch.count_nonzero(out.mask_logits[1, 2]) == 0
    else:
        assert out.mask_logits is None


def test_mask_head_refuses_a_backbone_without_a_feature_map():
    with pytest.raises(ValueError, match=r"\(N,C,h,w\) map"):
        create_model(ModelConfig(**{**TINY, "backbone": "test_vit", "input_size": 160}, mask_head=True),
                     pretrained=False)


def test_blend_mask_loss_against_a_hand_computed_case():
    from vidfake.train.module import blend_mask_loss

    # 4x4 target, top-left quadrant fully blended and one more pixel half-blended; 2x2 logits
    target = torch.zeros(1, 2, 4, 4, dtype=torch.uint8)
    target[0, 0, :2, :2] = 255
    target[0, 0, 3, 3] = 255  # bottom-right cell: mean 0.25
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 1.0]], [[5.0, 5.0], [5.0, 5.0]]]])
    use = torch.tensor([[True, False]])  # the second frame (padding) must not count
    expected_targets = torch.tensor([1.0, 0.0, 0.0, 0.25])
    x = torch.tensor([2.0, -1.0, 0.0, 1.0])
    expected = -(expected_targets * F.logsigmoid(x) + (1 - expected_targets) * F.logsigmoid(-x)).mean()
    assert blend_mask_loss(logits, target, use).item() == pytest.approx(expected.item(), rel=1e-6)

    # no usable frame: exactly zero, still connected to the logits (DDP needs the graph)
    logits.requires_grad_(True)
    zero = blend_mask_loss(logits, target, torch.zeros(1, 2, dtype=torch.bool))
    assert zero.item() == 0.0
    zero.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


def _face_sample(label: float, size: int = 64) -> dict:
    real, _, landmarks = blended_face(np.random.default_rng(3), size)
    return {"frames": np.stack([real, real]), "landmarks": np.stack([landmarks, landmarks]),
            "times": np.array([0.0, 0.04], np.float32), "label": label, "method": "", "media_id": "m"}


def test_train_transform_carries_the_sbi_mask_through_the_flip():
    from vidfake.train.augment import AugmentConfig
    from vidfake.train.datamodule import TrainTransform
    from vidfake.train.sbi import self_blend_clip

    flip_only = AugmentConfig(p_jpeg=0, p_video_codec=0, p_rescale=0, p_blur=0, p_noise=0, p_color=0,
                              p_cutout=0, p_flip=1.0, p_border=0)
    transform = TrainTransform(sbi_prob=1.0, augment=True, augment_config=flip_only, blend_masks=True)
    sample = _face_sample(0.0)
    out = transform(dict(sample), np.random.default_rng(7))

    replay = np.random.default_rng(7)
    replay.random()  # the sbi_prob draw
    fakes, masks = self_blend_clip(sample["frames"], sample["landmarks"], replay)
    assert out["label"] == 1.0 and out["method"] == "sbi" and out["blend_mask_known"]
    np.testing.assert_array_equal(out["frames"], fakes[:, :, ::-1])
    np.testing.assert_array_equal(out["blend_mask"], np.rint(masks[:, :, ::-1] * 255).astype(np.uint8))
    assert out["blend_mask"].dtype == np.uint8 and out["blend_mask"].max() == 255
    # the mask marks exactly where the fake differs from the (flipped) source
    changed = (out["frames"] != sample["frames"][:, :, ::-1]).any(axis=-1)
    assert not changed[out["blend_mask"] == 0].any()


def test_targets_for_untouched_faces():
    from vidfake.train.datamodule import TrainTransform, ValTransform

    transform = TrainTransform(sbi_prob=0.0, augment=False, blend_masks=True)
    real = transform(_face_sample(0.0), np.random.default_rng(0))
    assert real["blend_mask_known"] and not real["blend_mask"].any()  # a real face: nothing blended
    fake = transform(_face_sample(1.0), np.random.default_rng(0))
    assert not fake["blend_mask_known"]  # a dataset fake: where it was edited is unknown
    audio_moved = transform({**_face_sample(0.0), "sync_shift": 4}, np.random.default_rng(0))
    assert audio_moved["label"] == 1.0 and audio_moved["blend_mask_known"]  # a lip-sync fake: the pixels are real

    val = ValTransform(blend_masks=True)
    assert val(_face_sample(0.0), None)["blend_mask_known"]
    assert not val(_face_sample(1.0), None)["blend_mask_known"]
    assert "blend_mask" not in ValTransform()(_face_sample(0.0), None)
    assert "blend_mask" not in TrainTransform(sbi_prob=1.0, augment=False)(_face_sample(0.0), np.random.default_rng(0))


def test_collate_stacks_blend_masks():
    from vidfake.train.data import _to_tensors
    from vidfake.train.datamodule import TrainTransform, collate_clips

    transform = TrainTransform(sbi_prob=1.0, augment=False, blend_masks=True)
    samples = [_to_tensors(transform(_face_sample(label), np.random.default_rng(i)))
               for i, label in enumerate((0.0, 1.0))]
    batch = collate_clips(samples)
    assert batch["blend_mask"].shape == (2, 2, 64, 64) and batch["blend_mask"].dtype == torch.uint8
    assert batch["blend_mask_known"].tolist() == [True, False]
    with pytest.raises(ValueError, match="blend_mask"):
        collate_clips([samples[0], {k: v for k, v in samples[1].items() if not k.startswith("blend_mask")}])


def test_mask_head_learns_where_the_face_was_blended(tmp_path):
    """A few dozen steps of `vidfake train` on self-blended synthetic faces: the mask loss
    falls and the predicted map is higher where the validation copies were blended."""
    import csv

    from tests.train.folders import SynthClip, synthetic_face, write_extraction
    from vidfake.train import run

    rng = np.random.default_rng(1)
    faces = [synthetic_face(rng, 128) for _ in range(40)]
    data = write_extraction(tmp_path / "faces", [
        SynthClip(f"real{i:02d}", 0, face[None], marks[None], group=f"id{i}") for i, (face, marks) in enumerate(faces)
    ], 128)
    config = run.load_config(CONFIGS / "smoke.yaml", [
        "model.backbone=test_resnet", "model.input_size=128", "model.mask_head=true", "model.sync=false",
        "data.clip_len=1", "data.batch_size=16", "data.augment=false", "data.sbi_prob=0.5", "data.val_sbi=true",
        "data.val_fraction=0.25", "optim.lr=0.003", "optim.warmup_steps=3", "optim.mask_loss_weight=2.0",
        "trainer.max_steps=40", "trainer.val_check_interval=40", "trainer.progress_bar=none",
    ])
    config["data"]["dir"], config["out"] = str(data), str(tmp_path / "run")
    training = run.build(config)
    run.fit(training)

    with open(next((tmp_path / "run" / "logs").glob("version_*/metrics.csv"))) as handle:
        losses = [float(r["train_mask_loss"]) for r in csv.DictReader(handle) if r.get("train_mask_loss")]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses

    model = training.module.model.eval()
    inside, outside = [], []
    with torch.no_grad():
        for batch in training.datamodule.val_dataloader():
            out = model(batch["frames"], batch["times"], batch["mask"])
            keep = batch["blend_mask_known"] & (batch["label"] == 1)
            target = F.interpolate(batch["blend_mask"][keep].float() / 255, size=out.mask_logits.shape[-2:],
                                   mode="area")
            probs = torch.sigmoid(out.mask_logits[keep])
            inside.append(probs[target > 0.5])
            outside.append(probs[target < 0.1])

    assert torch.cat(inside).mean() > 2 * torch.cat(outside).mean()
