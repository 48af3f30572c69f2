"""Behavioural tests of vidfake.train.augment (clip-consistent wild-video augmentations)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vidfake.train.augment import (
    AugmentConfig,
    AugmentParams,
    apply_augment,
    augment_clip,
    sample_augment,
)

ALL_OFF = AugmentConfig(p_jpeg=0, p_video_codec=0, p_rescale=0, p_blur=0, p_noise=0,
                        p_color=0, p_cutout=0, p_flip=0, p_border=0)
ALL_ON = AugmentConfig(p_jpeg=1, p_video_codec=1, p_rescale=1, p_blur=1, p_noise=1,
                       p_color=1, p_cutout=1, p_flip=1, p_border=1)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """A 96x96 natural image crop (astronaut's face region), uint8 (H, W, 3)."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[20:116, 150:246])


def static_clip(img: np.ndarray, t: int) -> np.ndarray:
    return np.repeat(img[None], t, axis=0).copy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def high_freq_energy(img: np.ndarray) -> float:
    x = img.astype(np.float64).mean(axis=-1)
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(np.mean(lap**2))


def only(**kw) -> AugmentConfig:
    return dataclasses.replace(ALL_OFF, **kw)


@pytest.mark.parametrize("t", [1, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shapes_and_dtypes_preserved(face, t, seed):
    clip = static_clip(face, t)
    masks = np.zeros((t, 96, 96), np.float32)
    out, m = augment_clip(clip, np.random.default_rng(seed), ALL_ON, masks=masks)
    assert out.shape == clip.shape and out.dtype == np.uint8
    assert m.shape == masks.shape and m.dtype == masks.dtype
    out, m = augment_clip(clip, np.random.default_rng(seed), AugmentConfig())
    assert out.shape == clip.shape and out.dtype == np.uint8 and m is None


def test_odd_sizes_with_everything_on(face):
    clip = static_clip(face[:63, :65], 4)
    out, _ = augment_clip(clip, np.random.default_rng(0), ALL_ON)
    assert out.shape == clip.shape and out.dtype == np.uint8


def test_all_probabilities_zero_is_identity(face):
    rng = np.random.default_rng(0)
    clip = np.random.default_rng(1).integers(0, 256, (8, 40, 48, 3), dtype=np.uint8)
    masks = np.random.default_rng(2).random((8, 40, 48)).astype(np.float32)
    params = sample_augment(rng, ALL_OFF, (40, 48))
    assert params == AugmentParams(size=(40, 48))
    out, m = apply_augment(clip, params, masks)
    np.testing.assert_array_equal(out, clip)
    np.testing.assert_array_equal(m, masks)
    assert out is not clip


def test_flip_flips_every_frame_and_mask():
    clip = np.random.default_rng(0).integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    masks = np.random.default_rng(1).random((5, 16, 24, 1)).astype(np.float32)
    out, m = apply_augment(clip, AugmentParams(size=(16, 24), flip=True), masks)
    np.testing.assert_array_equal(out, clip[:, :, ::-1])
    np.testing.assert_array_equal(m, masks[:, :, ::-1])
    # a single (H, W) mask for the whole clip flips too
    _, m2 = apply_augment(clip, AugmentParams(size=(16, 24), flip=True), masks[0, :, :, 0])
    np.testing.assert_array_equal(m2, masks[0, :, ::-1, 0])


def test_non_geometric_ops_leave_masks_alone(face):
    clip = static_clip(face, 4)
    masks = np.random.default_rng(1).random((4, 96, 96)).astype(np.float32)
    cfg = dataclasses.replace(ALL_ON, p_flip=0.0, p_border=0.0)
    out, m = augment_clip(clip, np.random.default_rng(3), cfg, masks=masks)
    np.testing.assert_array_equal(m, masks)
    assert not np.array_equal(out, clip)


def test_same_params_for_every_frame(face):
    clip = static_clip(face, 6)
    cfg = dataclasses.replace(ALL_ON, p_video_codec=0.0)  # JPEG instead of the codec
    for seed in range(4):
        out, _ = augment_clip(clip, np.random.default_rng(seed), cfg)
        for t in range(1, 6):
            np.testing.assert_array_equal(out[t], out[0])


def test_h264_roundtrip_static_clip_is_temporally_stable(face):
    clip = static_clip(face, 8)
    params = AugmentParams(size=(96, 96), crf=35, jpeg_quality=60)
    out, _ = apply_augment(clip, params)
    assert out.shape == clip.shape and out.dtype == np.uint8
    assert not np.array_equal(out, clip)
    assert psnr(out, clip) > 20
    diffs = np.abs(np.diff(out.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    assert diffs.max() < 3.0


def test_h264_falls_back_to_jpeg_for_single_image(face):
    clip = static_clip(face, 1)
    out, _ = apply_augment(clip, AugmentParams(size=(96, 96), crf=35, jpeg_quality=50))
    ref, _ = apply_augment(clip, AugmentParams(size=(96, 96), jpeg_quality=50))
    np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(out, clip)


def test_jpeg_quality_30_changes_image_but_keeps_psnr(face):
    clip = static_clip(face, 1)
    out, _ = apply_augment(clip, AugmentParams(size=(96, 96), jpeg_quality=30))
    assert not np.array_equal(out, clip)
    assert psnr(out, clip) > 20


def test_cutout_fills_same_rectangle_in_every_frame():
    clip = np.random.default_rng(0).integers(0, 256, (6, 40, 50, 3), dtype=np.uint8)
    cfg = only(p_cutout=1.0)
    params = sample_augment(np.random.default_rng(5), cfg, (40, 50))
    y0, x0, y1, x1 = params.cutout
    h, w = y1 - y0, x1 - x0
    assert 0.1 * 40 - 1 <= h <= 0.3 * 40 + 1 and 0.1 * 50 - 1 <= w <= 0.3 * 50 + 1
    masks = np.ones((6, 40, 50), np.float32)
    out, m = apply_augment(clip, params, masks)
    fill = np.array(params.cutout_fill, np.uint8)
    assert (out[:, y0:y1, x0:x1] == fill).all()
    outside = np.ones((40, 50), bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[:, outside], clip[:, outside])
    np.testing.assert_array_equal(m, masks)


@pytest.mark.parametrize("std", [3.0, 6.0])
def test_noise_has_requested_std(std):
    clip = np.full((4, 64, 64, 3), 128, np.uint8)
    out, _ = apply_augment(clip, AugmentParams(size=(64, 64), noise_std=std, noise_seed=7))
    resid = out.astype(np.float64) - 128
    assert abs(resid.mean()) < 0.3
    assert abs(resid.std() - std) < 0.1 * std + 0.3
    np.testing.assert_array_equal(out[1], out[0])  # same noise field by default
    out2, _ = apply_augment(clip, AugmentParams(size=(64, 64), noise_std=std, noise_seed=7,
                                                noise_per_frame=True))
    assert not np.array_equal(out2[1], out2[0])
    assert abs((out2.astype(np.float64) - 128).std() - std) < 0.1 * std + 0.3


@pytest.mark.parametrize("down,up", [("area", "bilinear"), ("bilinear", "bicubic"),
                                     ("bicubic", "nearest")])
def test_rescale_lowers_high_frequency_energy(face, down, up):
    clip = static_clip(face, 2)
    params = AugmentParams(size=(96, 96), scale=0.4, scale_down_mode=down, scale_up_mode=up)
    out, _ = apply_augment(clip, params)
    assert out.shape == clip.shape
    assert high_freq_energy(out[0]) < 0.7 * high_freq_energy(clip[0])
    np.testing.assert_array_equal(out[1], out[0])


def test_blur_lowers_high_frequency_energy(face):
    clip = static_clip(face, 1)
    out, _ = apply_augment(clip, AugmentParams(size=(96, 96), blur_sigma=1.2))
    assert high_freq_energy(out[0]) < 0.5 * high_freq_energy(clip[0])
    assert psnr(out, clip) > 20


def test_color_jitter_is_global_and_bounded(face):
    clip = static_clip(face, 3)
    params = AugmentParams(size=(96, 96), brightness=1.15, contrast=0.85, saturation=1.2,
                           hue=0.03, color_order=(3, 1, 0, 2))
    out, _ = apply_augment(clip, params)
    assert not np.array_equal(out, clip)
    np.testing.assert_array_equal(out[2], out[0])
    # hue rotation alone on a grey image is a no-op (only chroma rotates)
    grey = np.full((1, 8, 8, 3), 100, np.uint8)
    g, _ = apply_augment(grey, AugmentParams(size=(8, 8), hue=0.03))
    assert np.abs(g.astype(int) - 100).max() <= 1


def test_deterministic_with_seeded_rng(face):
    clip = static_clip(face, 4)
    masks = np.random.default_rng(0).random((4, 96, 96)).astype(np.float32)
    cfg = dataclasses.replace(ALL_ON, p_video_codec=0.5)
    for seed in range(5):
        a, ma = augment_clip(clip, np.random.default_rng(seed), cfg, masks=masks)
        b, mb = augment_clip(clip, np.random.default_rng(seed), cfg, masks=masks)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ma, mb)
    pa = sample_augment(np.random.default_rng(11), AugmentConfig(), (96, 96))
    pb = sample_augment(np.random.default_rng(11), AugmentConfig(), (96, 96))
    assert pa == pb
    diff = [sample_augment(np.random.default_rng(s), ALL_ON, (96, 96)) for s in range(3)]
    assert diff[0] != diff[1] != diff[2]


def test_black_border_pads_the_same_bands_in_every_frame_and_mask():
    clip = np.random.default_rng(0).integers(1, 256, (4, 20, 30, 3), dtype=np.uint8)
    masks = np.ones((4, 20, 30), np.float32)
    out, m = apply_augment(clip, AugmentParams(size=(20, 30), border=(2, 0, 3, 5)), masks)
    inside = np.zeros((20, 30), bool)
    inside[2:, 3:25] = True
    assert (out[:, ~inside] == 0).all() and (m[:, ~inside] == 0).all()
    np.testing.assert_array_equal(out[:, inside], clip[:, inside])
    assert (m[:, inside] == 1).all()
    assert clip.min() > 0  # the input is untouched


def test_sampled_params_respect_config_ranges():
    cfg = ALL_ON
    for seed in range(30):
        p = sample_augment(np.random.default_rng(seed), cfg, (64, 80))
        assert p.flip and p.has_color and p.cutout is not None
        assert cfg.crf[0] <= p.crf <= cfg.crf[1]
        assert cfg.jpeg_quality[0] <= p.jpeg_quality <= cfg.jpeg_quality[1]
        assert cfg.scale[0] <= p.scale <= cfg.scale[1]
        assert cfg.blur_sigma[0] <= p.blur_sigma <= cfg.blur_sigma[1]
        assert cfg.noise_std[0] <= p.noise_std <= cfg.noise_std[1]
        assert abs(p.brightness - 1) <= cfg.brightness and abs(p.hue) <= cfg.hue
        assert sorted(p.color_order) == [0, 1, 2, 3]
        assert p.border is not None and any(p.border)
        for band, side in zip(p.border, (64, 64, 80, 80)):
            assert band == 0 or cfg.border_frac[0] * side - 1 <= band <= cfg.border_frac[1] * side + 1
    only_jpeg = only(p_jpeg=1.0)
    p = sample_augment(np.random.default_rng(0), only_jpeg, (64, 80))
    assert p.crf is None and p.jpeg_quality is not None


def test_rejects_bad_inputs(face):
    with pytest.raises(ValueError):
        apply_augment(face, AugmentParams(size=(96, 96)))  # missing T axis
    with pytest.raises(ValueError):
        apply_augment(static_clip(face, 2), AugmentParams(size=(64, 64)))  # size mismatch
    with pytest.raises(ValueError):
        apply_augment(static_clip(face, 2).astype(np.float32), AugmentParams(size=(96, 96)))
    with pytest.raises(ValueError):
        apply_augment(static_clip(face, 2), AugmentParams(size=(96, 96)),
                      masks=np.zeros((3, 96, 96)))
    with pytest.raises(ValueError):
        AugmentConfig(p_jpeg=1.5)
    with pytest.raises(ValueError):
        AugmentConfig(crf=(40, 23))


@pytest.mark.parametrize("codec,quality", [("h264", 30), ("vp9", 45), ("mpeg1", 8), ("mpeg2", 8), ("mpeg4", 8)])
def test_every_codec_round_trips_clips_and_single_frames(face, codec, quality):
    from vidfake.train.augment import video_roundtrip

    for frames in (1, 4):
        clip = static_clip(face[:95, :95], frames)  # odd size: padded to even for 4:2:0, cropped back
        out = video_roundtrip(clip, codec, quality)
        assert out.shape == clip.shape and out.dtype == np.uint8
        assert not np.array_equal(out, clip)
        assert psnr(out, clip) > 22


def test_a_coarser_quantiser_loses_more(face):
    from vidfake.train.augment import video_roundtrip

    clip = static_clip(face, 2)
    for codec, fine, coarse in (("mpeg2", 2, 25), ("vp9", 20, 60), ("h264", 18, 45)):
        assert psnr(video_roundtrip(clip, codec, fine), clip) > psnr(video_roundtrip(clip, codec, coarse), clip) + 2


def test_codecs_are_drawn_from_the_config_with_their_own_quality_ranges():
    config = dataclasses.replace(ALL_OFF, p_video_codec=1.0, codecs=("vp9", "mpeg4"), vp9_crf=(50, 50),
                                 mpeg_quantiser=(7, 7))
    drawn = {}
    for seed in range(40):
        params = sample_augment(np.random.default_rng(seed), config, (32, 32))
        drawn.setdefault(params.codec, set()).add(params.crf)
    assert drawn == {"vp9": {50}, "mpeg4": {7}}
    with pytest.raises(ValueError, match="codecs must name"):
        AugmentConfig(codecs=("h265",))


def test_h264_alone_draws_as_before():
    """The default config's draws do not move: seeded runs of older configs repeat."""
    config = dataclasses.replace(ALL_ON, p_border=0.0)
    params = sample_augment(np.random.default_rng(3), config, (64, 64))
    assert params.codec == "h264" and 23 <= params.crf <= 40 and not params.codec_on_images
    again = sample_augment(np.random.default_rng(3), dataclasses.replace(config, codecs=("h264",)), (64, 64))
    assert again == params


def test_codec_on_images_codes_a_single_crop_instead_of_jpeg(face):
    from vidfake.train.augment import video_roundtrip

    clip = static_clip(face, 1)
    params = AugmentParams(size=(96, 96), crf=10, codec="mpeg2", jpeg_quality=50, codec_on_images=True)
    out, _ = apply_augment(clip, params)
    np.testing.assert_array_equal(out, video_roundtrip(clip, "mpeg2", 10))
    jpeg, _ = apply_augment(clip, dataclasses.replace(params, codec_on_images=False))
    assert not np.array_equal(out, jpeg)
