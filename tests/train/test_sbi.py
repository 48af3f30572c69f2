"""Self-blended images: shapes, mask geometry, exactness outside the mask, determinism,
clip consistency, speed."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from vidfake.train.sbi import (
    BlendParams,
    SBIConfig,
    face_mask,
    jitter_params,
    sample_params,
    self_blend,
    self_blend_clip,
)

SIZE = 224
# plausible landmarks for a 224 crop (face box + 20% margin): eyes, nose, mouth corners
HAND_LANDMARKS = np.array([[84, 90], [145, 92], [113, 129], [80, 144], [143, 148]], np.float32)


@pytest.fixture(scope="session")
def face_crop() -> tuple[np.ndarray, np.ndarray]:
    """Astronaut face crop (224 px, box + 20% margin) and its 5 landmarks in crop pixels.

    Landmarks come from MTCNN when facenet-pytorch is available; otherwise the crop is
    taken around the known face position and hand-set landmarks are used.
    """
    skdata = pytest.importorskip("skimage.data")
    img = skdata.astronaut()
    box, points = np.array([181.0, 62.0, 268.0, 172.0]), None
    try:
        from facenet_pytorch import MTCNN

        boxes, _, pts = MTCNN(keep_all=True, device="cpu").detect(Image.fromarray(img), landmarks=True)
        if boxes is not None and len(boxes):
            box, points = boxes[0], pts[0]
    except Exception:  # pragma: no cover - offline without weights
        pass
    side = max(box[2] - box[0], box[3] - box[1]) * 1.4
    x0 = int(round((box[0] + box[2]) / 2 - side / 2))
    y0 = int(round((box[1] + box[3]) / 2 - side / 2))
    x1, y1 = int(round(x0 + side)), int(round(y0 + side))
    crop = Image.fromarray(img).crop((x0, y0, x1, y1))
    scale = SIZE / crop.size[0]
    crop = np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    lm = HAND_LANDMARKS.copy() if points is None else ((points - [x0, y0]) * scale).astype(np.float32)
    return crop, lm


def strong_params(**overrides) -> BlendParams:
    """A clearly non-trivial transform with a full blend ratio."""
    base = dict(
        brightness=1.08, contrast=0.92, saturation=1.1, channel_shift=(12.0, -8.0, 5.0),
        sharpness="blur", sharp_amount=0.6, scale=1.03, shift=(0.01, -0.01),
        deform=(0.05, 0.02, 0.01), deform_phase=(0.3, 1.0, 2.0), mask_blur=0.04, blend_ratio=1.0,
    )
    base.update(overrides)
    return BlendParams(**base)


def test_shapes_and_dtypes(face_crop):
    crop, lm = face_crop
    fake, mask = self_blend(crop, lm, sample_params(np.random.default_rng(0)), SBIConfig())
    assert fake.shape == crop.shape and fake.dtype == np.uint8
    assert mask.shape == crop.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0


@pytest.mark.parametrize("seed", range(8))
def test_mask_covers_inner_face_not_corners(face_crop, seed):
    crop, lm = face_crop
    cfg = SBIConfig()
    p = sample_params(np.random.default_rng(seed), cfg)
    mask = face_mask(lm, SIZE, p, cfg)
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
    cx, cy = lm.mean(axis=0)
    assert mask[int(round(cy)), int(round(cx))] == pytest.approx(1.0, abs=1e-3)
    for y, x in [(0, 0), (0, SIZE - 1), (SIZE - 1, 0), (SIZE - 1, SIZE - 1)]:
        assert mask[y, x] == 0.0
    # the inner face (all landmarks) is fully inside
    for x, y in lm:
        assert mask[int(round(y)), int(round(x))] > 0.9


def test_mask_with_hand_landmarks_and_degenerate_landmarks():
    p = BlendParams(mask_blur=0.05)
    m = face_mask(HAND_LANDMARKS, SIZE, p)
    cx, cy = HAND_LANDMARKS.mean(axis=0)
    assert m[int(cy), int(cx)] == pytest.approx(1.0, abs=1e-3) and m[0, 0] == 0.0
    # NaN / collapsed landmarks fall back to a centred face ellipse instead of failing
    for bad in (np.full((5, 2), np.nan, np.float32), np.full((5, 2), 100.0, np.float32)):
        m = face_mask(bad, SIZE, p)
        assert m[SIZE // 2, SIZE // 2] == pytest.approx(1.0, abs=1e-3) and m[0, 0] == 0.0


def test_blend_is_exact_outside_mask_and_changes_inside(face_crop):
    crop, lm = face_crop
    fake, mask = self_blend(crop, lm, strong_params(), SBIConfig())
    outside = mask == 0
    assert outside.mean() > 0.2  # a good part of the crop is untouched
    np.testing.assert_array_equal(fake[outside], crop[outside])
    inside = mask > 0.99
    assert inside.mean() > 0.1
    diff = np.abs(fake.astype(np.int16) - crop.astype(np.int16))
    assert diff[inside].mean() > 5.0
    # the returned mask is the blend mask times the blend ratio
    _, half = self_blend(crop, lm, strong_params(blend_ratio=0.5), SBIConfig())
    np.testing.assert_allclose(half, mask * 0.5, atol=1e-6)


def test_identity_params_change_nothing_visible(face_crop):
    crop, lm = face_crop
    fake, mask = self_blend(crop, lm, BlendParams.identity(), SBIConfig())
    assert mask.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(fake, crop)  # source == image, so the blend is a no-op


def test_blend_ratio_zero_returns_input(face_crop):
    crop, lm = face_crop
    cfg = SBIConfig(blend_ratios=(0.0,))
    p = sample_params(np.random.default_rng(3), cfg)
    assert p.blend_ratio == 0.0
    fake, mask = self_blend(crop, lm, p, cfg)
    np.testing.assert_array_equal(fake, crop)
    assert not mask.any()


def test_fixed_rng_is_deterministic(face_crop):
    crop, lm = face_crop
    cfg = SBIConfig()
    a = self_blend(crop, lm, sample_params(np.random.default_rng(42), cfg), cfg)
    b = self_blend(crop, lm, sample_params(np.random.default_rng(42), cfg), cfg)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    clip = np.stack([crop] * 3)
    lms = np.stack([lm] * 3)
    c = self_blend_clip(clip, lms, np.random.default_rng(5), cfg)
    d = self_blend_clip(clip, lms, np.random.default_rng(5), cfg)
    np.testing.assert_array_equal(c[0], d[0])
    np.testing.assert_array_equal(c[1], d[1])
    # different seeds give different fakes
    e = self_blend(crop, lm, sample_params(np.random.default_rng(43), cfg), cfg)
    assert not np.array_equal(a[0], e[0])


def test_sample_params_ranges():
    cfg = SBIConfig()
    rng = np.random.default_rng(0)
    ps = [sample_params(rng, cfg) for _ in range(200)]
    assert all(abs(p.brightness - 1) <= cfg.color_jitter for p in ps)
    assert all(abs(p.scale - 1) <= cfg.max_scale for p in ps)
    assert all(max(map(abs, p.shift)) <= cfg.max_shift for p in ps)
    assert all(cfg.blur_min <= p.mask_blur <= cfg.blur_max for p in ps)
    assert {p.blend_ratio for p in ps} <= set(cfg.blend_ratios)
    kinds = {p.sharpness for p in ps}
    assert kinds == {"none", "blur", "sharpen"}


def test_jitter_params_small_and_zero_is_identity():
    p = strong_params()
    rng = np.random.default_rng(0)
    assert jitter_params(p, rng, 0.0) == p
    q = jitter_params(p, rng, 0.1)
    assert q != p
    assert q.sharpness == p.sharpness and q.blend_ratio == p.blend_ratio
    assert abs(q.brightness - 1) == pytest.approx(abs(p.brightness - 1), rel=0.11)
    for a, b in zip(q.channel_shift, p.channel_shift):
        assert abs(a - b) <= 0.1 * abs(b) + 1e-9
    # a neutral source transform stays neutral (only the mask shape/softness flickers)
    n = jitter_params(BlendParams.identity(), rng, 0.3)
    for name in ("brightness", "contrast", "saturation", "channel_shift", "sharp_amount", "scale", "shift", "deform"):
        assert getattr(n, name) == getattr(BlendParams.identity(), name), name


def _colour_shift(fakes, masks, clip):
    """Mean RGB change inside the fully blended region, per frame: (T, 3)."""
    out = []
    for f, m, c in zip(fakes, masks, clip):
        inside = m > 0.99 * m.max()
        out.append((f.astype(np.float32) - c.astype(np.float32))[inside].mean(axis=0))
    return np.array(out)


def test_clip_uses_one_transform_with_small_jitter(face_crop):
    crop, lm = face_crop
    cfg = SBIConfig(blend_ratios=(1.0,))
    t = 6
    clip, lms = np.stack([crop] * t), np.stack([lm] * t)
    fakes, masks = self_blend_clip(clip, lms, np.random.default_rng(1), cfg, jitter=0.1)
    assert fakes.shape == clip.shape and fakes.dtype == np.uint8
    assert masks.shape == clip.shape[:3] and masks.dtype == np.float32
    within = _colour_shift(fakes, masks, clip)
    spread_within = np.abs(within - within.mean(axis=0)).max()
    # other clips (other seeds) differ much more than the frames of one clip
    others = []
    for seed in range(2, 10):
        f, m = self_blend_clip(clip[:1], lms[:1], np.random.default_rng(seed), cfg, jitter=0.1)
        others.append(_colour_shift(f, m, clip[:1])[0])
    others = np.array(others)
    between = np.abs(others - within.mean(axis=0)).max(axis=1)
    assert np.median(between) > 3 * spread_within
    # frames do vary a little (flicker), masks stay close
    assert not all(np.array_equal(fakes[0], f) for f in fakes[1:])
    assert np.abs(masks - masks[0]).mean() < 0.05


def test_clip_without_jitter_is_identical_across_identical_frames(face_crop):
    crop, lm = face_crop
    clip, lms = np.stack([crop] * 4), np.stack([lm] * 4)
    fakes, masks = self_blend_clip(clip, lms, np.random.default_rng(7), SBIConfig(), jitter=0.0)
    for f, m in zip(fakes[1:], masks[1:]):
        np.testing.assert_array_equal(f, fakes[0])
        np.testing.assert_array_equal(m, masks[0])


def test_rejects_bad_input(face_crop):
    crop, lm = face_crop
    with pytest.raises(ValueError):
        self_blend(crop.astype(np.float32), lm, BlendParams(), SBIConfig())
    with pytest.raises(ValueError):
        self_blend_clip(np.stack([crop] * 2), np.stack([lm] * 3), np.random.default_rng(0))


def test_speed(face_crop):
    crop, lm = face_crop
    cfg = SBIConfig()
    rng = np.random.default_rng(0)
    params = [sample_params(rng, cfg) for _ in range(30)]
    self_blend(crop, lm, params[0], cfg)  # warm-up
    t0 = time.perf_counter()
    for p in params:
        self_blend(crop, lm, p, cfg)
    per = (time.perf_counter() - t0) / len(params)
    print(f"\nself_blend: {per * 1e3:.2f} ms per {SIZE} px crop")
    assert per < 0.2
