"""Self-made mouth fakes: the mask covers the mouth and spares the upper face, alignment
puts a moved copy back in place, and the clip keeps every pixel outside its mask."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vidfake.train.mouth_fakes import MouthFakeParams, align_to, lower_face_mask, mouth_fake_clip, sample_params

SIZE = 112
LANDMARKS = np.array([[35, 45], [77, 45], [56, 65], [40, 85], [72, 85]], np.float64)  # eyes, nose, mouth corners


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((SIZE, SIZE), Image.Resampling.BICUBIC))


def test_the_mask_covers_the_mouth_and_spares_eyes_and_nose():
    mask = lower_face_mask(LANDMARKS, SIZE, width=1.2, height=1.1, feather=0.02)
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert mask[85, 56] > 0.99  # mouth centre
    assert mask[85, 41] > 0.9 and mask[85, 71] > 0.9  # just inside the corners
    assert mask[45, 35] == 0 and mask[45, 77] == 0  # eyes
    assert mask[:62].max() < 0.05  # nothing above just below the nose tip, feather aside
    wider = lower_face_mask(LANDMARKS, SIZE, width=1.6, height=1.1, feather=0.02)
    assert wider.sum() > mask.sum()


@pytest.mark.parametrize("angle, scale, shift", [(0.0, 1.0, (6, 4)), (8.0, 1.1, (-3, 5))])
def test_alignment_puts_a_moved_copy_back(angle, scale, shift):
    target = _texture()
    theta = np.deg2rad(angle)
    forward = np.array([[scale * np.cos(theta), -scale * np.sin(theta)], [scale * np.sin(theta), scale * np.cos(theta)]])
    centre = np.array([SIZE / 2, SIZE / 2])
    offset = centre - forward @ centre + np.array(shift)
    inverse = np.linalg.inv(np.vstack([np.hstack([forward, offset[:, None]]), [0, 0, 1]]))[:2]
    moved = np.asarray(Image.fromarray(target).transform((SIZE, SIZE), Image.Transform.AFFINE, tuple(inverse.ravel()),
                                                         resample=Image.Resampling.BILINEAR))
    moved_landmarks = LANDMARKS @ forward.T + offset
    back = align_to(moved, moved_landmarks, LANDMARKS)
    region = (slice(60, 100), slice(30, 82))  # the lower face, well inside the frame
    error = np.abs(back[region].astype(float) - target[region].astype(float)).mean()
    assert error < 6, error  # two bilinear resamplings of a smooth texture
    assert np.abs(moved[region].astype(float) - target[region].astype(float)).mean() > 3 * error


def _talking_clip(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A still face whose mouth square has a different grey level in every frame."""
    frames = np.repeat(_texture()[None], n, 0).copy()
    for t in range(n):
        frames[t, 80:91, 46:67] = 40 * t
    return frames, np.repeat(LANDMARKS[None], n, 0)


def test_pixels_outside_the_mask_are_the_input_and_inside_they_are_re_rendered():
    frames, landmarks = _talking_clip()
    params = MouthFakeParams(offset=0, render_scale=0.3, blur=0.01, feather=0.03)
    fakes, masks = mouth_fake_clip(frames, landmarks, params)
    assert fakes.shape == frames.shape and fakes.dtype == np.uint8 and masks.shape == frames.shape[:3]
    outside = masks == 0
    assert np.array_equal(fakes[outside], frames[outside])
    inside = masks > 0.9
    assert np.abs(fakes[inside].astype(int) - frames[inside].astype(int)).mean() > 2  # softer than the original


def test_a_lower_face_from_another_moment_moves_with_that_moment():
    frames, landmarks = _talking_clip()
    fakes, _ = mouth_fake_clip(frames, landmarks, MouthFakeParams(offset=2, render_scale=1.0, blur=0.0, feather=0.01))
    for t in range(len(frames)):
        mouth = fakes[t, 83:88, 50:63].astype(float).mean()
        assert mouth == pytest.approx(frames[(t + 2) % 6, 83:88, 50:63].astype(float).mean(), abs=3)


def test_parameters_are_drawn_reproducibly_and_a_still_gets_no_offset():
    first = sample_params(np.random.default_rng(3), 16)
    assert first == sample_params(np.random.default_rng(3), 16)
    assert all(sample_params(np.random.default_rng(seed), 1).offset == 0 for seed in range(20))
    offsets = {sample_params(np.random.default_rng(seed), 16).offset for seed in range(40)}
    assert 0 in offsets and any(4 <= o < 16 for o in offsets)


def test_bad_input_is_refused():
    frames, landmarks = _talking_clip()
    with pytest.raises(ValueError, match="landmarks"):
        mouth_fake_clip(frames, landmarks[:, :4], MouthFakeParams())
