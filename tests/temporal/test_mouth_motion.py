"""vidfake.temporal.mouth_motion: the mouth-motion head and its place in the detector."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from tests.tiny_models import tiny_model_config
from vidfake.temporal import create_model
from vidfake.temporal.mouth_motion import (
    MIN_FRAMES,
    MOUTH_REGION,
    UPPER_REGION,
    MouthMotionHead,
    motion_energy,
    mouth_regions,
    per_frame_mel,
)


def test_mouth_regions_cut_the_lower_face_and_its_frame_differences():
    frames = torch.zeros(1, 3, 3, 100, 100)
    top, bottom, left, right = (round(f * 100) for f in MOUTH_REGION)
    frames[0, 1, :, top:bottom, left:right] = 1.0  # white mouth region in frame 1 only
    frames[0, 2, :, :top, :] = 1.0  # frame 2 changes only above the region
    x = mouth_regions(frames, (12, 16))
    assert x.shape == (1, 3, 2, 12, 16)
    torch.testing.assert_close(x[0, 0, 0], torch.full((12, 16), -0.5))  # grey, centred
    torch.testing.assert_close(x[0, 1, 0], torch.full((12, 16), 0.5))
    assert x[0, 0, 1].abs().max() == 0  # no previous frame
    torch.testing.assert_close(x[0, 1, 1], torch.full((12, 16), 4.0))  # the change, scaled
    torch.testing.assert_close(x[0, 2, 1], torch.full((12, 16), -4.0))  # back to black; the change above is unseen


def test_motion_energy_compares_the_mouths_change_with_the_upper_faces():
    frames = torch.zeros(1, 4, 3, 100, 100)
    top, bottom, left, right = (round(f * 100) for f in MOUTH_REGION)
    for t in range(4):
        frames[0, t, :, top:bottom, left:right] = 0.1 * t  # the mouth brightens by 0.1 a frame
    u_top, u_bottom, u_left, u_right = (round(f * 100) for f in UPPER_REGION)
    frames[0, 3, :, u_top:u_bottom, u_left:u_right] = 0.5  # the upper face changes once, at frame 3
    energy = motion_energy(frames)
    assert energy.shape == (1, 4, 2)
    torch.testing.assert_close(energy[0, :, 0], torch.full((4,), math.log(0.1 + 1e-3)))  # frame 0 takes frame 1's
    torch.testing.assert_close(energy[0, :, 1], torch.tensor([math.log(1e-3)] * 3 + [math.log(0.5 + 1e-3)]))
    assert motion_energy(frames[:, :1]).flatten().tolist() == pytest.approx([math.log(1e-3)] * 2)  # one frame


def test_per_frame_mel_follows_when_the_sound_is():
    sr, fps = 16000, 25.0
    audio = torch.zeros(1, sr)  # one second: 25 frames
    t = torch.arange(sr) / sr
    audio[0, int(0.4 * sr):int(0.6 * sr)] = torch.sin(2 * math.pi * 440 * t[: int(0.2 * sr)])  # frames 10-14
    mel = per_frame_mel(audio, torch.tensor([fps]), 25, sr, 40)
    assert mel.shape == (1, 25, 40)
    energy = mel.mean(-1)[0]
    loud = energy[11:14].min()
    assert loud > energy[:8].max() and loud > energy[17:].max()


def test_head_availability_and_audio_flags():
    config = replace(tiny_model_config(), mouth_motion=True, mouth_motion_size=16, mouth_motion_dim=16)
    head = MouthMotionHead(config).eval()
    frames = torch.rand(3, 6, 3, 64, 64)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, MIN_FRAMES - 1:] = False  # too few frames
    audio = torch.randn(3, 4000) * 0.1
    audio[2] = 0  # silent
    out = head(frames, mask, audio, torch.tensor([25.0, 25.0, 30.0]))
    assert out.available.tolist() == [True, False, True] and out.has_audio.tolist() == [True, True, False]
    assert out.logit[1] == 0 and out.moved_logit[1] == 0 and out.moved_logit[2] == 0
    silent = head(frames, mask)  # no audio at all: still a score
    assert silent.available.tolist() == [True, False, True] and not silent.has_audio.any()
    torch.testing.assert_close(silent.logit[2], out.logit[2])  # silence reads as no audio
    uint8 = head((frames * 255).round().to(torch.uint8), mask)
    torch.testing.assert_close(uint8.logit, silent.logit, atol=1e-2, rtol=0)
    with pytest.raises(ValueError, match="frames must be"):
        head(frames[0], mask)


def test_the_head_changes_no_score_until_its_weight_is_set():
    torch.manual_seed(0)
    plain = create_model(tiny_model_config(sync=False), pretrained=False).eval()
    with_head = create_model(replace(tiny_model_config(sync=False), mouth_motion=True), pretrained=False).eval()
    missing, unexpected = with_head.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("mouth_motion.", "mouth_weight")) for k in missing)
    frames, times = torch.rand(2, 5, 3, 64, 64), torch.arange(5.0).repeat(2, 1) / 25
    a, b = plain(frames, times), with_head(frames, times)
    torch.testing.assert_close(a.clip_logit, b.clip_logit)
    assert a.mouth is None and b.mouth is not None and b.mouth.available.all()
    with torch.no_grad():
        with_head.mouth_weight.fill_(2.0)
        with_head.mouth_motion.fake.bias.fill_(50.0)  # a mouth that looks re-generated
    c = with_head(frames, times)
    assert (c.mouth.logit > 0).all()
    torch.testing.assert_close(c.clip_logit, a.clip_logit + 2.0 * c.mouth.logit)
    with torch.no_grad():
        with_head.mouth_motion.fake.bias.fill_(-50.0)  # a natural one: no evidence either way
    d = with_head(frames, times)
    assert (d.mouth.logit < 0).all()
    torch.testing.assert_close(d.clip_logit, a.clip_logit)
