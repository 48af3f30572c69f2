"""The audio-visual sync head: log-mel, window alignment, availability, loss, learning."""
from __future__ import annotations

import math

import pytest
import torch

from vidfake.temporal.config import ModelConfig
from vidfake.temporal.sync import LOG_EPS, SyncHead, SyncOutput, _sample_frames, log_mel, sync_contrastive_loss

SR = 16000
M = 32
CFG = ModelConfig(mouth_size=M, sync_dim=32, sync_window=5, sync_max_offset=4, n_mels=40)
SILENCE = math.log(LOG_EPS)


def test_log_mel_shape_hop_and_silence():
    audio = torch.zeros(2, SR)  # 1 s
    audio[1, 8000:8160] = torch.randn(160)  # a burst at 0.5 s
    mel = log_mel(audio, SR, 40)
    assert mel.shape == (2, 40, 1 + SR // 160) and mel.dtype == torch.float32
    torch.testing.assert_close(mel[0], torch.full_like(mel[0], SILENCE))
    assert abs(int(mel[1].mean(0).argmax()) - 50) <= 1  # 10 ms hop: frame 50 is t = 0.5 s


@pytest.mark.parametrize("fps", [25.0, 30.0])
def test_audio_windows_follow_the_offset_convention(fps):
    """Window starting at frame s reads [s/fps, (s+W)/fps) of the audio (here read from
    the log-mel itself, where outside the audio is silence)."""
    head = SyncHead(CFG)
    w, burst_frame = CFG.sync_window, 9
    audio = torch.zeros(1, int(SR * 20 / fps))
    a0, a1 = round(burst_frame / fps * SR), round((burst_frame + 1) / fps * SR)
    audio[0, a0:a1] = torch.randn(a1 - a0)
    starts = torch.arange(-4, 16)
    positions = head.window_positions(torch.tensor([fps]), starts)  # (1, P, A)
    a = head.audio_frames
    mel = log_mel(audio, SR, CFG.n_mels)
    win = _sample_frames(mel, positions.reshape(1, -1)).view(1, CFG.n_mels, len(starts), a).permute(0, 2, 1, 3)
    assert win.shape == (1, len(starts), CFG.n_mels, a) and a == 4 * w
    energy = win[0].mean(dim=1)  # (P, A)
    for i, s in enumerate(starts.tolist()):
        if s <= burst_frame < s + w:  # the burst is inside, at the right place
            expected = (burst_frame - s + 0.5) * a / w
            assert abs(float(energy[i].argmax()) - expected) <= 2.5, (s, energy[i])
        elif s >= burst_frame + 2 or s + w <= burst_frame - 1:  # well away: pure silence
            torch.testing.assert_close(energy[i], torch.full_like(energy[i], SILENCE), msg=str(s))


def _inputs(b=3, t=10, fps=25.0):
    g = torch.Generator().manual_seed(0)
    return (
        torch.rand(b, t, 3, M, M, generator=g),
        torch.randn(b, int(SR * t / fps), generator=g),
        torch.full((b,), fps),
    )


def test_sync_head_outputs_and_availability():
    torch.manual_seed(0)
    head = SyncHead(CFG).eval()
    k = CFG.sync_max_offset
    mouths, audio, fps = _inputs(4, 10)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[2, 2::3] = False  # gaps everywhere: no 5 consecutive valid frames
    mask[3, 7:] = False  # 7 valid: 3 windows
    audio_mask = torch.tensor([True, False, True, True])
    with torch.no_grad():
        out = head(mouths, audio, fps, mask=mask, audio_mask=audio_mask)
    assert isinstance(out, SyncOutput)
    assert out.similarity.shape == (4, 2 * k + 1)
    assert out.offsets.tolist() == list(range(-k, k + 1))
    assert out.offset.dtype == torch.long and out.offset.shape == (4,)
    assert out.available.tolist() == [True, False, False, True]
    assert out.window_similarity.shape == (4, 6, 2 * k + 1)
    assert out.window_mask.sum(dim=1).tolist() == [6, 0, 0, 3]
    ok = out.available
    assert (out.similarity[ok].abs() <= 1 + 1e-5).all()
    assert (out.confidence[ok] >= 0).all()
    assert (out.offset[ok].abs() <= k).all()
    torch.testing.assert_close(out.similarity[ok].max(1).values - out.similarity[ok].median(1).values,
                               out.confidence[ok])
    for field in (out.similarity, out.confidence, out.logit, out.offset):
        assert (field[~ok] == 0).all()
    # a row's result does not depend on the other rows
    with torch.no_grad():
        alone = head(mouths[3:], audio[3:], fps[3:], mask=mask[3:])
    torch.testing.assert_close(alone.similarity[0], out.similarity[3], atol=1e-5, rtol=0)
    torch.testing.assert_close(alone.logit[0], out.logit[3], atol=1e-5, rtol=0)


def test_sync_head_too_short_is_unavailable():
    head = SyncHead(CFG).eval()
    mouths, audio, fps = _inputs(2, CFG.sync_window - 1)
    with torch.no_grad():
        out = head(mouths, audio, fps)
    assert not out.available.any()
    assert out.similarity.shape == (2, 2 * CFG.sync_max_offset + 1)
    assert out.window_similarity.shape[1] == 0
    loss = sync_contrastive_loss(out)
    assert float(loss) == 0.0
    with pytest.raises(ValueError, match="mouth_size"):
        head(torch.rand(1, 6, 3, M + 1, M + 1), audio[:1], fps[:1])
    with pytest.raises(ValueError, match="fps"):
        head(torch.rand(1, 6, 3, M, M), audio[:1], None)


def test_contrastive_loss_trains_both_encoders():
    torch.manual_seed(0)
    head = SyncHead(CFG).train()
    mouths, audio, fps = _inputs(3, 9)
    out = head(mouths, audio, fps)
    loss = sync_contrastive_loss(out, target_offset=torch.tensor([0, 2, -1]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    # uniform similarities would give log(2K+1); anything finite and positive is fine here
    assert float(loss.detach()) > 0
    loss.backward()
    assert head.visual.frame_net[0][0].weight.grad.abs().sum() > 0
    assert head.audio.convs[0][0].weight.grad.abs().sum() > 0
    masked = sync_contrastive_loss(head(mouths, audio, fps), sample_mask=torch.zeros(3, dtype=torch.bool))
    assert float(masked.detach()) == 0.0 and masked.requires_grad


# ---------------------------------------------------------------- a real learning test
def _synthetic_pairs(n: int, t: int, shift: int, fps: torch.Tensor, g: torch.Generator):
    """Audio: 16 kHz noise bursts switched on/off per video frame by a random envelope.
    Video: a white mouth box that is open (tall) when the envelope is on. Mouth frame i
    shows envelope[i + shift], so the matching sound comes ``shift`` frames later: the
    head should report offset = +shift."""
    k = CFG.sync_max_offset
    length = t + k + abs(shift) + 2
    env = (torch.rand(n, length, generator=g) < 0.5).float()
    n_audio_frames = t + k  # audio runs on past the last video frame, as in a real video
    audio = torch.zeros(n, int(SR * n_audio_frames / float(fps.min())) + 1)
    for i in range(n):
        n_samples = int(SR * n_audio_frames / float(fps[i]))
        frame_of_sample = (torch.arange(n_samples) * float(fps[i]) / SR).long()
        amp = env[i, frame_of_sample]
        audio[i, :n_samples] = amp * 0.5 * torch.randn(n_samples, generator=g) + 0.01 * torch.randn(
            n_samples, generator=g
        )
    idx = (torch.arange(t) + shift).clamp(min=0)
    opening = env[:, idx]
    ys = torch.arange(M).view(M, 1)
    xs = torch.arange(M).view(1, M)
    half_height = (2 + 9 * opening).view(n, t, 1, 1)
    box = ((ys - M // 2).abs() <= half_height) & ((xs - M // 2).abs() <= M // 4)
    mouths = box.unsqueeze(2).expand(n, t, 3, M, M).float() * 0.9
    mouths = (mouths + 0.05 * torch.rand(mouths.shape, generator=g)).clamp(0, 1)
    return mouths, audio


def test_sync_head_learns_known_offsets():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    head = SyncHead(CFG)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    t, batch = 16, 8
    losses = []
    for _ in range(40):  # in-sync pairs only, at 25 and 30 fps
        fps = torch.tensor([25.0, 30.0])[torch.randint(0, 2, (batch,), generator=g)]
        mouths, audio = _synthetic_pairs(batch, t, 0, fps, g)
        loss = sync_contrastive_loss(head(mouths, audio, fps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0]

    head.eval()
    n = 16
    for fps_value in (25.0, 30.0):
        fps = torch.full((n,), fps_value)
        for shift in (3, -2, 0):
            mouths, audio = _synthetic_pairs(n, t, shift, fps, g)
            with torch.no_grad():
                out = head(mouths, audio, fps)
            assert out.available.all()
            close = (out.offset - shift).abs() <= 1
            assert close.float().mean() >= 0.8, (fps_value, shift, out.offset.tolist())
            # the similarity at the true alignment beats every other offset on average
            sim = out.similarity.mean(0)
            true_idx = shift + CFG.sync_max_offset
            others = torch.cat([sim[:true_idx], sim[true_idx + 1:]])
            assert sim[true_idx] > others.max() + 0.2, (fps_value, shift, sim.tolist())
            if shift != 0:  # shifted clips: offset 0 ("in sync") is no longer the best
                assert (out.similarity[:, true_idx] > out.similarity[:, CFG.sync_max_offset]).float().mean() >= 0.8
            else:
                assert (out.confidence > 0.2).float().mean() >= 0.8
