"""The detector model in vidfake.temporal: encoder, temporal transformer, composition."""
from __future__ import annotations

import dataclasses

import pytest
import timm
import torch

from vidfake.temporal import DeepfakeDetector, DetectorOutput, ModelConfig, create_model
from vidfake.temporal.encoder import FrameEncoder
from vidfake.temporal.transformer import TemporalTransformer

S = 64
TINY = ModelConfig(
    backbone="resnet10t",
    input_size=S,
    embed_dim=32,
    temporal_layers=1,
    temporal_heads=2,
    mouth_size=32,
    sync_dim=16,
    sync_window=5,
    sync_max_offset=3,
    n_mels=40,
)


def _randomize_heads(model: DeepfakeDetector) -> None:
    """The transformer's logit head starts at zero (clip logit = mean frame logit); give it
    weights so the tests exercise the transformer path too."""
    torch.nn.init.normal_(model.temporal.head.weight, std=0.5)
    torch.nn.init.normal_(model.temporal.head.bias, std=0.5)


def _batch(b: int, t: int, lengths: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, t, 3, S, S, generator=g)
    # irregular sampling: increasing times with random gaps, arbitrary origin
    gaps = 0.02 + 0.3 * torch.rand(b, t, generator=g)
    times = 5.0 + gaps.cumsum(dim=1)
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return frames, times, mask


@pytest.fixture(scope="module")
def model() -> DeepfakeDetector:
    torch.manual_seed(0)
    m = create_model(dataclasses.replace(TINY, sync=False)).eval()
    _randomize_heads(m)
    return m


def test_create_model_and_lazy_exports():
    import vidfake.temporal as temporal

    assert set(temporal.__all__) == {"ModelConfig", "create_model", "DeepfakeDetector", "DetectorOutput"}
    m = create_model(TINY)
    assert isinstance(m, DeepfakeDetector)
    assert m.config == TINY and m.sync is not None
    assert create_model(dataclasses.replace(TINY, sync=False)).sync is None
    with pytest.raises(ValueError, match="divisible"):
        create_model(dataclasses.replace(TINY, temporal_heads=3))


def test_shapes_and_masks_variable_length(model):
    frames, times, mask = _batch(3, 6, [6, 3, 1])
    frames[~mask] = float("nan")  # padded frames must never be encoded
    times[~mask] = float("nan")
    with torch.no_grad():
        out = model(frames, times, mask)
    assert isinstance(out, DetectorOutput)
    assert out.frame_logits.shape == (3, 6)
    assert out.clip_logit.shape == (3,)
    assert out.clip_embedding.shape == (3, TINY.embed_dim)
    assert out.sync is None and out.used_sync.tolist() == [False, False, False]
    assert torch.isfinite(out.frame_logits).all() and torch.isfinite(out.clip_logit).all()
    assert (out.frame_logits[~mask] == 0).all()
    # frame logits are per frame: the same as encoding each valid frame alone
    with torch.no_grad():
        _, alone, _ = model.encoder(frames[0, :2])
    torch.testing.assert_close(out.frame_logits[0, :2], alone, atol=1e-5, rtol=1e-5)


def test_encoder_sees_only_valid_frames(model):
    frames, times, mask = _batch(2, 5, [5, 2])
    seen = []
    handle = model.encoder.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    try:
        with torch.no_grad():
            model(frames, times, mask)
    finally:
        handle.remove()
    assert seen == [7]


def test_length_one_is_scored_by_the_frame_path():
    torch.manual_seed(0)
    m = create_model(dataclasses.replace(TINY, sync=False)).eval()
    frames, times, mask = _batch(2, 1, [1, 1])
    with torch.no_grad():
        out = m(frames, times, mask)
    # fresh model: transformer head is zero, so a still image gets exactly its frame logit
    torch.testing.assert_close(out.clip_logit, out.frame_logits[:, 0])
    _randomize_heads(m)
    with torch.no_grad():
        out = m(frames, times, mask)
        emb, frame_logit, _ = m.encoder(frames[:, 0])
        _, transformer_logit = m.temporal(emb.unsqueeze(1), times, mask)  # without residual
    assert torch.isfinite(out.clip_logit).all()
    torch.testing.assert_close(out.clip_logit, transformer_logit + frame_logit, atol=1e-5, rtol=1e-5)
    # the frame path moves the score: a different image gives a different clip logit
    with torch.no_grad():
        other = m(frames.flip(0), times, mask)
    torch.testing.assert_close(other.clip_logit, out.clip_logit.flip(0), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out.clip_logit[0], out.clip_logit[1])


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_padding_invariance(pooling):
    torch.manual_seed(0)
    m = create_model(dataclasses.replace(TINY, sync=False, pooling=pooling, temporal_layers=2)).eval()
    _randomize_heads(m)
    frames, times, mask = _batch(2, 7, [7, 3], seed=1)
    with torch.no_grad():
        batched = m(frames, times, mask)
        alone = m(frames[1:, :3], times[1:, :3], mask[1:, :3])
        garbage = frames.clone()
        garbage[1, 3:] = torch.rand_like(garbage[1, 3:])
        times2 = times.clone()
        times2[1, 3:] = 1e6
        batched2 = m(garbage, times2, mask)
    torch.testing.assert_close(batched.clip_logit[1:], alone.clip_logit, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.clip_embedding[1:], alone.clip_embedding, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.frame_logits[1:, :3], alone.frame_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched2.clip_logit, batched.clip_logit, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_transformer_uses_relative_timestamps(pooling):
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, pooling=pooling, temporal_dropout=0.0)
    tr = TemporalTransformer(cfg).eval()
    torch.nn.init.normal_(tr.head.weight)
    emb = torch.randn(2, 5, cfg.embed_dim)
    times = torch.tensor([[0.0, 0.04, 0.08, 0.5, 1.0]] * 2)
    mask = torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        e0, l0 = tr(emb, times, mask)
        e1, l1 = tr(emb, times + 123.0, mask)  # origin does not matter
        _, l2 = tr(emb, times * 3.0, mask)  # spacing does
        # first valid frame is the origin, even after leading padding
        m3 = torch.tensor([[False, True, True, True, True]] * 2)
        _, l3 = tr(emb, times, m3)
        _, l4 = tr(emb, times - 0.04, m3)
    assert e0.shape == (2, cfg.embed_dim) and l0.shape == (2,)
    torch.testing.assert_close(l0, l1, atol=1e-4, rtol=0)
    assert not torch.allclose(l0, l2, atol=1e-4)
    torch.testing.assert_close(l3, l4, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="at least one valid"):
        tr(emb, times, torch.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(TypeError, match="bool"):
        tr(emb, times, mask.float())


def test_gradients_flow_in_training(model):
    m = create_model(TINY).train()
    frames, times, mask = _batch(2, 4, [4, 2])
    out = m(frames, times, mask)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.clip_logit, torch.tensor([1.0, 0.0]))
    loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
        out.frame_logits[mask], torch.ones(int(mask.sum()))
    )
    loss.backward()
    assert m.encoder.proj.weight.grad is not None and torch.isfinite(m.encoder.proj.weight.grad).all()
    assert m.temporal.head.weight.grad.abs().sum() > 0
    assert next(m.encoder.backbone.parameters()).grad is not None


def test_normalisation_uses_backbone_stats(model):
    enc = model.encoder
    data_cfg = timm.data.resolve_data_config({}, model=enc.backbone)
    torch.testing.assert_close(enc.mean.flatten(), torch.tensor(data_cfg["mean"]))
    torch.testing.assert_close(enc.std.flatten(), torch.tensor(data_cfg["std"]))
    assert "mean" not in enc.state_dict() and "std" not in enc.state_dict()
    u8 = torch.randint(0, 256, (2, 3, S, S), dtype=torch.uint8)
    torch.testing.assert_close(enc.normalize(u8), enc.normalize(u8.float() / 255))
    with torch.no_grad():
        a, b = enc(u8), enc(u8.float() / 255)
    torch.testing.assert_close(a[1], b[1])
    with pytest.raises(ValueError, match="input_size"):
        enc(torch.rand(1, 3, S + 8, S + 8))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_encoder_loads_local_weights(tmp_path, suffix):
    torch.manual_seed(1)
    source = timm.create_model(TINY.backbone, pretrained=False, num_classes=0)
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    else:
        torch.save(source.state_dict(), path)
    enc = FrameEncoder(dataclasses.replace(TINY, pretrained_path=str(path)))
    for k, v in source.state_dict().items():
        torch.testing.assert_close(enc.backbone.state_dict()[k], v, msg=k)
    # pretrained=False ignores the path (rebuilding from a full checkpoint)
    other = FrameEncoder(dataclasses.replace(TINY, pretrained_path=str(path)), pretrained=False)
    assert not torch.equal(other.backbone.conv1[0].weight, source.conv1[0].weight)


def test_encoder_loading_drops_classifier_and_unwraps(tmp_path):
    torch.manual_seed(2)
    with_head = timm.create_model(TINY.backbone, pretrained=False, num_classes=1000)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in with_head.state_dict().items()}}, path)
    model = create_model(dataclasses.replace(TINY, pretrained_path=str(path), sync=False))
    torch.testing.assert_close(model.encoder.backbone.conv1[0].weight, with_head.conv1[0].weight)


def test_encoder_rejects_mismatched_weights(tmp_path):
    state = timm.create_model(TINY.backbone, pretrained=False, num_classes=0).state_dict()
    state["conv1.0.weight"] = torch.zeros(5, 3, 3, 3)
    del state["layer1.0.bn1.weight"]
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        FrameEncoder(dataclasses.replace(TINY, pretrained_path=str(path)))
    msg = str(err.value)
    assert "conv1.0.weight" in msg and "(5, 3, 3, 3)" in msg and "shape mismatch" in msg
    assert "layer1.0.bn1.weight" in msg and "missing" in msg
    assert "extra.weight" in msg and "unexpected" in msg
    # weights of a different architecture
    other = tmp_path / "other.pt"
    torch.save(timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0).state_dict(), other)
    with pytest.raises(ValueError, match="does not fit backbone"):
        FrameEncoder(dataclasses.replace(TINY, pretrained_path=str(other)))
    with pytest.raises(FileNotFoundError):
        FrameEncoder(dataclasses.replace(TINY, pretrained_path=str(tmp_path / "nope.pt")))


def test_unknown_backbones_are_refused_with_close_names():
    with pytest.raises(ValueError, match=r"unknown backbone 'tf_efficientnet_lite9' \(model.backbone\): did you mean .*"
                                         r"tf_efficientnet_lite0"):
        create_model(dataclasses.replace(TINY, backbone="tf_efficientnet_lite9"), pretrained=False)
    with pytest.raises(ValueError, match="timm.list_models"):  # nothing close
        create_model(dataclasses.replace(TINY, backbone="qqqqqqqq"), pretrained=False)
    with pytest.raises(ValueError, match=r"backbone 'resnet10t.bogus'.*Invalid pretrained tag"):
        create_model(dataclasses.replace(TINY, backbone="resnet10t.bogus"), pretrained=False)
    # names with a pretrained tag timm knows are architectures as any other
    assert create_model(dataclasses.replace(TINY, backbone="resnet10t.c3_in1k", sync=False), pretrained=False)


def test_model_config_names_unknown_keys():
    assert ModelConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match=r"unknown model config keys \['backbon'\]; valid keys: backbone, input_size"):
        ModelConfig.from_dict({"backbon": "resnet10t"})


def test_other_backbone_feature_width():
    # mobilenetv3 pools to 1024 features (head_hidden_size), not num_features=288
    cfg = dataclasses.replace(TINY, backbone="mobilenetv3_small_050", sync=False)
    m = create_model(cfg).eval()
    frames, times, mask = _batch(1, 2, [2])
    with torch.no_grad():
        out = m(frames, times, mask)
    assert out.clip_logit.shape == (1,)


def test_sync_head_in_detector():
    torch.manual_seed(0)
    m = create_model(TINY).eval()
    b, t = 3, 8
    frames, times, mask = _batch(b, t, [8, 8, 3])  # row 2 too short for a sync window
    mouths = torch.rand(b, t, 3, TINY.mouth_size, TINY.mouth_size)
    audio = torch.randn(b, 16000 * t // 25)
    fps = torch.full((b,), 25.0)
    audio_mask = torch.tensor([True, False, True])
    with torch.no_grad():
        visual = m(frames, times, mask)
        out = m(frames, times, mask, mouths=mouths, audio=audio, fps=fps, audio_mask=audio_mask)
        no_audio = m(frames, times, mask, mouths=mouths)  # audio missing: sync skipped
    assert out.used_sync.tolist() == [True, False, False]
    assert out.sync is not None and out.sync.similarity.shape == (b, 2 * TINY.sync_max_offset + 1)
    assert out.sync.available.tolist() == [True, False, False]
    torch.testing.assert_close(out.clip_logit[1:], visual.clip_logit[1:])
    expected = visual.clip_logit[0] + m.sync_weight * out.sync.logit[0]
    torch.testing.assert_close(out.clip_logit[0], expected)
    assert abs(float(m.sync_weight.detach())) < 0.5  # starts small
    assert no_audio.sync is None and not no_audio.used_sync.any()
    torch.testing.assert_close(no_audio.clip_logit, visual.clip_logit)
    # sync disabled in the config: audio is ignored
    m2 = create_model(dataclasses.replace(TINY, sync=False)).eval()
    with torch.no_grad():
        out2 = m2(frames, times, mask, mouths=mouths, audio=audio, fps=fps)
    assert out2.sync is None and not out2.used_sync.any()
    with pytest.raises(ValueError, match="fps"):
        m(frames, times, mask, mouths=mouths, audio=audio)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_autocast():
    torch.manual_seed(0)
    m = create_model(TINY).cuda().eval()
    _randomize_heads(m)
    b, t = 2, 8
    frames, times, mask = _batch(b, t, [8, 5])
    mouths = torch.rand(b, t, 3, TINY.mouth_size, TINY.mouth_size)
    audio = torch.randn(b, 16000 * t // 25)
    fps = torch.full((b,), 25.0)
    args = dict(mouths=mouths, audio=audio, fps=fps, audio_mask=torch.tensor([True, False]))
    with torch.no_grad():
        cpu_model = create_model(TINY).eval()
        cpu_model.load_state_dict(m.state_dict())
        ref = cpu_model(frames, times, mask, **args)
        cuda_args = {k: v.cuda() for k, v in args.items()}
        out = m(frames.cuda(), times.cuda(), mask.cuda(), **cuda_args)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            amp = m(frames.cuda(), times.cuda(), mask.cuda(), **cuda_args)
    assert out.used_sync.tolist() == [True, False]
    torch.testing.assert_close(out.clip_logit.cpu(), ref.clip_logit, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(out.sync.similarity.cpu(), ref.sync.similarity, atol=1e-3, rtol=1e-3)
    assert torch.isfinite(amp.clip_logit.float()).all() and amp.used_sync.tolist() == [True, False]
    torch.testing.assert_close(amp.clip_logit.float().cpu(), ref.clip_logit, atol=0.1, rtol=0.1)
