"""The finer blend-mask map (model.mask_decoder): its shapes, that it leaves every score
bit-identical, its losses, training it alone on a finished checkpoint, grafting it into
that checkpoint and measuring it on held-back self-blends."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from tests.paths import REPO as ROOT
from vidfake.temporal import ModelConfig, create_model

TINY = dict(backbone="test_resnet", input_size=64, embed_dim=16, temporal_layers=1, temporal_heads=2,
            frame_dropout=0.0, temporal_dropout=0.0, sync=False, mask_head=True)


def _pair(**config) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same weights without and with the decoder."""
    torch.manual_seed(0)
    coarse = create_model(ModelConfig(**{**TINY, **config}), pretrained=False).eval()
    fine = create_model(ModelConfig(**{**TINY, **config}, mask_decoder=True), pretrained=False).eval()
    result = fine.load_state_dict(coarse.state_dict(), strict=False)
    assert not result.unexpected_keys and all(k.startswith("encoder.mask_decoder.") for k in result.missing_keys)
    with torch.no_grad():  # a decoder that is no longer the identity on the coarse map
        for p in fine.encoder.mask_decoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return coarse, fine


def test_the_decoder_gives_quarter_resolution_maps_and_leaves_the_scores_bit_identical():
    coarse, fine = _pair()
    frames = torch.rand(2, 3, 3, 64, 64)
    times = torch.arange(3.0).expand(2, 3)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    with torch.no_grad():
        a, b = coarse(frames, times, mask), fine(frames, times, mask)
        emb_a, logit_a, _ = coarse.encoder(frames[0])
        emb_b, logit_b, maps = fine.encoder(frames[0])
    assert a.mask_logits.shape == (2, 3, 2, 2) and b.mask_logits.shape == (2, 3, 16, 16)  # S/32 vs S/4
    for name in ("frame_logits", "clip_logit", "clip_embedding"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(emb_a, emb_b) and torch.equal(logit_a, logit_b)
    assert torch.count_nonzero(b.mask_logits[1, 2]) == 0  # padded frame
    torch.testing.assert_close(maps, b.mask_logits[0])

    # one backbone pass: forward_pyramid's last map is forward_features'
    fmap, skips = fine.encoder.forward_pyramid(frames[0])
    assert torch.equal(fmap, fine.encoder.forward_features(frames[0]))
    assert [tuple(s.shape[-2:]) for s in skips] == [(4, 4), (8, 8), (16, 16)]  # strides 16, 8, 4
    with pytest.raises(ValueError, match="earlier feature maps"):
        fine.encoder.forward_head(fmap)
    for encoder in (coarse.encoder, fine.encoder):  # the seam for callers that want the map (Grad-CAM)
        with torch.no_grad():
            last, earlier = encoder.forward_maps(frames[0])
            emb, logits, maps = encoder.forward_head(last, earlier)
        assert torch.equal(last, fmap) and torch.equal(logits, logit_a) and torch.equal(emb, emb_a)
        plain = encoder is coarse.encoder
        assert (earlier is None) == plain and maps.shape[-1] == (2 if plain else 16)


def test_a_new_decoder_starts_as_the_coarse_map_upsampled():
    torch.manual_seed(0)
    coarse = create_model(ModelConfig(**TINY), pretrained=False).eval()
    fine = create_model(ModelConfig(**TINY, mask_decoder=True), pretrained=False).eval()
    fine.load_state_dict(coarse.state_dict(), strict=False)
    frames = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        a, b = coarse(frames, torch.arange(2.0)[None]), fine(frames, torch.arange(2.0)[None])
    upsampled = F.interpolate(a.mask_logits[0][:, None], size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(b.mask_logits[0], upsampled)


def test_the_default_backbone_gives_40x40_for_a_160px_crop():
    model = create_model(ModelConfig(backbone="tf_efficientnet_lite0", input_size=160, embed_dim=16, temporal_layers=1,
                                     temporal_heads=2, sync=False, mask_head=True, mask_decoder=True),
                         pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 3, 160, 160), torch.zeros(1, 1))
    assert out.mask_logits.shape == (1, 1, 40, 40)
    assert sum(p.numel() for p in model.encoder.mask_decoder.parameters()) < 100_000


def test_old_configs_and_checkpoints_are_unchanged():
    old = {k: v for k, v in ModelConfig(**TINY).to_dict().items() if k != "mask_decoder"}
    assert ModelConfig.from_dict(old).mask_decoder is False  # a checkpoint from before the option
    model = create_model(ModelConfig(**TINY), pretrained=False)
    assert model.encoder.mask_decoder is None
    assert not any("mask_decoder" in k for k in model.state_dict())
    with pytest.raises(ValueError, match="mask_head: true"):
        ModelConfig(**{**TINY, "mask_head": False}, mask_decoder=True)
    with pytest.raises(ValueError, match=r"\(N,C,h,w\) map"):  # no feature maps at all: the mask head says so
        create_model(ModelConfig(**{**TINY, "backbone": "test_vit", "input_size": 160}, mask_decoder=True),
                     pretrained=False)
    from vidfake.temporal.mask_decoder import skip_indices

    assert skip_indices([{"reduction": r} for r in (2, 4, 4, 8, 16, 16, 32)], "x") == [5, 3, 2]
    with pytest.raises(ValueError, match=r"strides \[16, 8, 4\]; x has strides \[8, 16, 32\]"):
        skip_indices([{"reduction": r} for r in (8, 16, 32)], "x")


def test_weak_mask_loss_against_a_hand_computed_case():
    from vidfake.train.module import weak_mask_loss

    # two frames of 2x2 maps; top 25% of 4 cells = 1 cell (the max), top 50% = mean of the best 2
    logits = torch.tensor([[[[3.0, -1.0], [0.5, -2.0]], [[-4.0, -3.0], [-0.5, 1.0]]]])
    targets = torch.tensor([[1.0, 0.0]])
    use = torch.tensor([[True, True]])

    def bce(x: float, y: float) -> float:
        return -(y * F.logsigmoid(torch.tensor(x)) + (1 - y) * F.logsigmoid(torch.tensor(-x))).item()

    assert weak_mask_loss(logits, targets, use, top_fraction=0.25).item() == pytest.approx(
        (bce(3.0, 1.0) + bce(1.0, 0.0)) / 2, rel=1e-6)
    assert weak_mask_loss(logits, targets, use, top_fraction=0.5).item() == pytest.approx(
        (bce(1.75, 1.0) + bce(0.25, 0.0)) / 2, rel=1e-6)
    only_first = torch.tensor([[True, False]])
    assert weak_mask_loss(logits, targets, only_first, top_fraction=0.25).item() == pytest.approx(bce(3.0, 1.0))
    logits.requires_grad_(True)
    zero = weak_mask_loss(logits, targets, torch.zeros(1, 2, dtype=torch.bool))
    zero.backward()
    assert zero.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_peak_targets_come_from_the_mask_where_known_and_the_label_elsewhere():
    from vidfake.train.module import peak_targets

    masks = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    masks[0, 0, :2, :2] = 255  # a 2x2 cell fully blended
    masks[0, 1, 0, 0] = 255  # a quarter of one cell
    known = torch.tensor([[True, True, False]])
    labels = torch.tensor([[1.0, 1.0, 1.0]])  # frame 2: a dataset fake, mask unknown
    targets = peak_targets(masks, known, labels, (2, 2))
    torch.testing.assert_close(targets, torch.tensor([[1.0, 0.25, 1.0]]))
    lip_sync_fake = peak_targets(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.tensor([[True]]),
                                 torch.tensor([[1.0]]), (2, 2))
    assert lip_sync_fake.item() == 0.0  # fake by its audio: its pixels are real


def test_training_only_the_mask_parts():
    from vidfake.train.module import DetectorModule

    module = DetectorModule(ModelConfig(**TINY, mask_decoder=True), pretrained=False, mask_weak_loss_weight=0.5)
    module.train_parts(["encoder.mask_head", "encoder.mask_decoder"])
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("encoder.mask_head.", "encoder.mask_decoder.")) for n in trainable)
    module.train()  # as Lightning does after each validation
    assert not module.model.encoder.backbone.training and not module.model.temporal.training
    assert module.model.encoder.mask_decoder.training
    module.set_lr_scale({"encoder.mask_decoder": 2.0})
    lr = {id(p): g["lr"] for g in module.param_groups() for p in g["params"]}
    assert lr[id(module.model.encoder.mask_decoder.out.weight)] == pytest.approx(2 * module.lr)
    assert lr[id(module.model.encoder.mask_head.weight)] == pytest.approx(module.lr)
    assert len(lr) == len(trainable)
    with pytest.raises(ValueError, match=r"unknown model parts \['encoder.nothing'\]"):
        module.train_parts(["encoder.nothing"])

    # the loss parts: the weak term counts every frame, the pixel term the known masks
    batch = {"frames": torch.rand(2, 1, 3, 64, 64), "times": torch.zeros(2, 1), "mask": torch.ones(2, 1, dtype=torch.bool),
             "label": torch.tensor([1.0, 0.0]), "blend_mask": torch.zeros(2, 1, 64, 64, dtype=torch.uint8),
             "blend_mask_known": torch.tensor([False, True])}
    loss, out, parts = module.losses(batch)
    assert set(parts) == {"clip", "frame", "mask", "mask_weak"}
    expected = F.binary_cross_entropy_with_logits(
        out.mask_logits.flatten(2).topk(13, dim=2).values.mean(2).flatten(), torch.tensor([1.0, 0.0]))
    assert parts["mask_weak"].item() == pytest.approx(expected.item(), rel=1e-5)  # 13 = ceil(5% of 256)
    loss.backward()
    assert module.model.encoder.mask_decoder.out.weight.grad is not None
    assert all(p.grad is None for p in module.model.encoder.backbone.parameters())


def test_mask_scores_perfect_and_wrong_maps():
    from vidfake.train.mask_eval import mask_scores

    truth = torch.zeros(3, 64, 64)
    truth[:, 16:48, 8:40] = 1.0  # block-aligned on the 16x16 map's 4 px cells
    perfect = F.interpolate(truth[:, None], size=(16, 16), mode="area")[:, 0]
    iou, hits = mask_scores(perfect, truth)
    np.testing.assert_array_equal(iou, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(hits, [1.0, 1.0, 1.0])

    elsewhere = torch.zeros(1, 16, 16)
    elsewhere[0, 0:4, 12:16] = 0.9  # peaks outside, overlaps nothing
    iou, hits = mask_scores(elsewhere, truth[:1])
    assert iou.tolist() == [0.0] and hits.tolist() == [0.0]
    half = torch.zeros(1, 16, 16)
    half[0, 4:12, 2:6] = 0.8  # the left half of the region: 32x16 of 32x32 pixels
    iou, hits = mask_scores(half, truth[:1])
    assert iou[0] == pytest.approx(0.5) and hits[0] == 1.0
    coarse = torch.zeros(1, 2, 2)  # a coarse map is judged on the crop's pixels too
    coarse[0, 0, 0] = 1.0
    iou, hits = mask_scores(coarse, truth[:1])
    assert 0 < iou[0] < 1 and hits[0] == 1.0  # the top-left cell's centre (16, 16) is inside
    faint = truth[:1] * 0.25  # blend ratio 0.25: the same region, judged the same way
    assert mask_scores(perfect[:1], faint)[0].tolist() == [1.0]
    iou, hits = mask_scores(torch.zeros(1, 16, 16), torch.zeros(1, 64, 64))
    assert np.isnan(iou[0]) and np.isnan(hits[0])  # nothing to find


# ------------------------------------------------------------------ end to end
def test_a_finished_checkpoint_gains_the_decoder_and_scores_exactly_as_before(extracted, videos, tmp_path, capsys):
    from vidfake.checkpoints.format import load_checkpoint
    from vidfake.scoring import Scorer
    from vidfake.train import mask_eval, mask_graft, run
    from vidfake.train.data import load_extracted

    smoke = ROOT / "configs" / "smoke.yaml"
    base = tmp_path / "base"
    assert run.main(["--config", str(smoke), "--data", str(extracted), "--out", str(base), "--max-steps", "1",
                     "--set", "model.mask_head=true", "--set", "trainer.progress_bar=none"]) == 0
    # the shipped decoder config, on the smoke run's tiny architecture
    model = yaml.safe_load(smoke.read_text())["model"]
    tiny = [f"model.{k}={json.dumps(v)}" for k, v in model.items()] + [
        "data.batch_size=4", "data.num_workers=0", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
        "trainer.progress_bar=none"]
    fitted = tmp_path / "decoder"
    assert run.main(["--config", str(ROOT / "configs" / "default_mask_decoder.yaml"), "--data", str(extracted),
                     "--out", str(fitted), "--max-steps", "2", "--accelerator", "cpu",
                     "--init-from", str(base / "last.safetensors"), *[a for o in tiny for a in ("--set", o)]]) == 0
    with open(next((fitted / "logs").glob("version_*/metrics.csv"))) as handle:
        rows = list(csv.DictReader(handle))
    assert any(r.get("train_mask_weak_loss") for r in rows) and any(r.get("train_mask_loss") for r in rows)

    before = load_checkpoint(base / "last.safetensors")
    after = load_checkpoint(fitted / "last.safetensors")
    assert after.config["model"]["mask_decoder"] is True
    mask_parts = ("encoder.mask_head.", "encoder.mask_decoder.")
    assert all(torch.equal(before.state_dict[k], after.state_dict[k]) for k in before.state_dict
               if not k.startswith(mask_parts))  # BatchNorm statistics included
    assert torch.count_nonzero(after.state_dict["encoder.mask_decoder.out.weight"]) > 0  # it trained

    grafted = mask_graft.graft_mask_decoder(base / "last.safetensors", fitted / "last.safetensors",
                                            tmp_path / "grafted.safetensors")
    result = load_checkpoint(grafted)
    assert result.config["model"] == {**before.config["model"], "mask_decoder": True}
    assert result.config["training"]["mask_decoder"]["base_sha256"] == before.sha256
    old = Scorer(base / "last.safetensors").score_video(videos / "face0.mp4")
    new = Scorer(grafted).score_video(videos / "face0.mp4")
    assert new.status == "ok" and new.score == old.score and new.logit == old.logit
    net = create_model(ModelConfig.from_dict(result.config["model"]), pretrained=False)
    net.load_state_dict(result.state_dict, strict=True)
    assert net.eval()(torch.rand(1, 1, 3, 64, 64), torch.zeros(1, 1)).mask_logits.shape == (1, 1, 16, 16)

    # a run that moved other weights is refused
    assert mask_graft.main([str(base / "last.safetensors"), str(base / "last.safetensors"),
                            "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "no mask decoder" in capsys.readouterr().err

    # the measurement, as JSON: every real crop self-blended once
    assert mask_eval.main([str(grafted), "--data", str(extracted), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    crops = len(load_extracted(extracted, clip_len=1))
    assert report["images"] + report["skipped"] == crops == report["real"]["images"]
    assert report["map_size"] == [16, 16] and 0.0 <= report["iou"] <= 1.0 and 0.0 <= report["pointing"] <= 1.0
    assert report["dataset_fakes"]["images"] == 0
    assert mask_eval.main([str(grafted), "--data", str(extracted), "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == report  # fixed seed: the same blends
