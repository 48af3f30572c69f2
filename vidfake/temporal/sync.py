"""Audio-visual sync head (SyncNet-style): does the mouth move with the sound?

Inputs
------
* ``mouths (B,T,3,M,M)``: *consecutive* video frames' mouth crops (a clip sampling plan,
  not a sparse one), RGB floats in [0,1] (uint8 accepted), ``M = config.mouth_size``.
  Frame ``i`` is at time ``i / fps`` after the audio's first sample.
* ``audio (B,S)``: mono float32 at ``config.audio_sample_rate`` (16 kHz), starting at the
  time of frame 0 (index 0 of the tensor, valid or not). Batch padding with zeros reads
  as silence.
* ``fps (B,)``: frame rate of each clip.
* ``mask (B,T)`` bool, True = valid mouth crop; ``audio_mask (B,)`` bool, True = the
  sample has audio.

Windows and offsets
-------------------
A visual window is ``W = config.sync_window`` consecutive frames starting at frame ``t``
(all ``W`` must be valid). For an offset ``o`` in ``-K..K`` (``K = sync_max_offset``) it is
compared with the audio covering ``[(t+o)/fps, (t+o+W)/fps)`` seconds after the audio
start (before the first or after the last sample, the audio encoder reads a neutral
level: see :class:`AudioEncoder`). So the sign convention is:

    **offset > 0: the sound comes later than the lips (audio delayed / video leads) by
    ``offset`` frames; offset < 0: the sound comes first.** In-sync speech gives 0.

The audio encoder runs once over the clip's log-mel spectrogram (hop 10 ms); each audio
window reads the encoder's features by linear interpolation at ``4 * W`` evenly spaced
times (the mel frames of ``W`` frames at the reference 25 fps), so any fps maps to the
same window size.

Output
------
``similarity (B, 2K+1)`` is the cosine similarity of visual and audio window embeddings
at each offset, averaged over the valid windows; ``offset`` the argmax (in frames);
``confidence`` = max - median over offsets (as SyncNet's "AV offset confidence", with
similarities instead of distances); ``logit`` (positive = fake) a linear function of
``[similarity at 0, max similarity, confidence, |offset| / K]``.

A sample is *unavailable* (``available`` False; its similarity, offset, confidence and
logit are 0, never used) when it has no audio, when ``T < sync_window``, or when no
window of ``W`` consecutive valid frames exists. The head never raises for these; it
raises ``ValueError`` only for malformed tensors.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidfake.temporal.config import ModelConfig

__all__ = [
    "SyncHead",
    "SyncOutput",
    "log_mel",
    "sync_contrastive_loss",
    "LOG_EPS",
    "REFERENCE_FPS",
    "MEL_HOP_S",
]

LOG_EPS = 1e-6
MEL_HOP_S = 0.010  # 10 ms hop
MEL_WIN_S = 0.025  # 25 ms window
REFERENCE_FPS = 25.0  # the audio encoder sees W frames' duration at 25 fps worth of mel frames
SILENCE = float(torch.log(torch.tensor(LOG_EPS)))  # log-mel value of zeros


@functools.lru_cache(maxsize=16)
def _mel_transform(sample_rate: int, n_mels: int, device: str):
    import torchaudio

    hop = round(sample_rate * MEL_HOP_S)
    win = round(sample_rate * MEL_WIN_S)
    n_fft = 1 << (win - 1).bit_length()
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        win_length=win,
        hop_length=hop,
        n_mels=n_mels,
        center=True,
        pad_mode="constant",  # beyond the ends is silence, like the padding of the windows
        power=2.0,
    ).to(device)


def log_mel(audio: Tensor, sample_rate: int = 16000, n_mels: int = 80) -> Tensor:
    """``audio (B,S)`` float mono -> ``log(mel + 1e-6)`` of shape ``(B, n_mels, 1 + S // hop)``.

    Hop 10 ms, window 25 ms, centred frames: mel frame ``j`` is centred at ``j * 10 ms``.
    Computed in float32 with autocast off.
    """
    if audio.ndim != 2:
        raise ValueError(f"audio must be (B,S) mono, got {tuple(audio.shape)}")
    transform = _mel_transform(int(sample_rate), int(n_mels), str(audio.device))
    with torch.autocast(device_type=audio.device.type, enabled=False):
        mel = transform(audio.float())
    return torch.log(mel + LOG_EPS)


@dataclass
class SyncOutput:
    """Result of :class:`SyncHead`; see the module docstring for the conventions.

    similarity (B, 2K+1) float: mean cosine similarity per offset, index j <-> offset j-K.
    offset (B,) long: best offset in frames (> 0: audio later than video).
    confidence (B,) float: max - median of ``similarity``.
    logit (B,) float: sync "fake" logit.
    available (B,) bool: False where the sample could not be assessed (all fields 0).
    window_similarity (B, n_windows, 2K+1): per-window similarities (for the loss).
    window_mask (B, n_windows) bool: windows that were assessed.
    """

    similarity: Tensor
    offset: Tensor
    confidence: Tensor
    logit: Tensor
    available: Tensor
    window_similarity: Tensor
    window_mask: Tensor

    @property
    def max_offset(self) -> int:
        """``K``: the offsets searched each way, in frames."""
        return (self.similarity.shape[1] - 1) // 2

    @property
    def offsets(self) -> Tensor:
        """Offsets in frames matching the columns of ``similarity``: ``-K..K``."""
        k = self.max_offset
        return torch.arange(-k, k + 1, device=self.similarity.device)


def _conv_bn(cin: int, cout: int, stride=1, dims: int = 2) -> nn.Sequential:
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return nn.Sequential(conv(cin, cout, 3, stride=stride, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True))


class MouthEncoder(nn.Module):
    """Mouth crops -> one embedding per window of ``W`` consecutive frames: a per-frame
    2D conv net (4 stride-2 stages, 2x2 spatial grid kept) then a temporal conv of
    kernel ``W`` (no padding) over the frame features."""

    def __init__(self, dim: int, window: int):
        super().__init__()
        c = [max(8, dim // 4), max(8, dim // 2), dim, dim]
        self.frame_net = nn.Sequential(
            _conv_bn(3, c[0], 2), _conv_bn(c[0], c[1], 2), _conv_bn(c[1], c[2], 2), _conv_bn(c[2], c[3], 2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * c[3], dim), nn.ReLU(inplace=True),
        )
        self.temporal = nn.Sequential(
            nn.Conv1d(dim, dim, window), nn.ReLU(inplace=True), nn.Conv1d(dim, dim, 1)
        )

    def forward(self, mouths: Tensor, mask: Tensor) -> Tensor:
        """``(B,T,3,M,M)``, ``(B,T)`` -> ``(B, T-W+1, dim)``, L2-normalised. Only valid
        frames go through the frame net (padded ones are zeros for the temporal conv)."""
        b, t = mouths.shape[:2]
        feats = self.frame_net((mouths[mask] - 0.5) / 0.5)
        full = feats.new_zeros(b, t, feats.shape[-1])
        full[mask] = feats
        return F.normalize(self.temporal(full.transpose(1, 2)).transpose(1, 2), dim=-1)


class AudioEncoder(nn.Module):
    """Log-mel ``(B, n_mels, F)`` -> one embedding per audio window ``(B, P, dim)``.

    The windows of one clip overlap heavily (one starts at every frame and every offset),
    so the 2D convs, which pool frequency but keep every 10 ms step, run once over the
    whole spectrogram; each window then reads its ``A`` time steps from the feature map by
    linear interpolation and average-pools them to ``W`` bins. A per-band BatchNorm is the
    learned standardisation of the input."""

    # time steps each side that the four 3x3 convs see: margin so that no window's
    # features depend on the convs' own zero padding
    RECEPTIVE = 4

    def __init__(self, dim: int, n_mels: int, window: int):
        super().__init__()
        c = [max(8, dim // 4), max(8, dim // 2), dim, dim]
        self.window = window
        self.band_norm = nn.BatchNorm1d(n_mels)
        self.convs = nn.Sequential(
            _conv_bn(1, c[0], 1), _conv_bn(c[0], c[1], (2, 1)), _conv_bn(c[1], c[2], (2, 1)),
            _conv_bn(c[2], c[3], (2, 1)), nn.AdaptiveAvgPool2d((2, None)),
        )
        self.head = nn.Sequential(nn.Linear(2 * window * c[3], dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, mel: Tensor, positions: Tensor) -> Tensor:
        """``mel (B, n_mels, F)``, ``positions (B, P, A)`` fractional mel-frame indices
        -> L2-normalised ``(B, P, dim)``.

        Beyond ``[0, F-1]`` the encoder reads each band's mean level (0 after the band
        standardisation), a neutral input. Padding with the log-mel of silence instead
        (-13.8, far below any recorded room tone) swamped the batch statistics and
        measurably slowed learning."""
        b, p, a = positions.shape
        left = max(0, math.ceil(-float(positions.min()))) + self.RECEPTIVE
        right = max(0, math.ceil(float(positions.max()) - (mel.shape[-1] - 1))) + self.RECEPTIVE
        mel = F.pad(self.band_norm(mel), (left, right), value=0.0)
        feats = self.convs(mel.unsqueeze(1))  # (B, C, 2, F + pad)
        feats = feats.flatten(1, 2)  # (B, 2C, F + pad)
        sampled = _sample_frames(feats, (positions + left).reshape(b, p * a))  # (B, 2C, P*A)
        pooled = F.adaptive_avg_pool1d(sampled.reshape(b, -1, a), self.window)  # (B, 2C*P, W)
        pooled = pooled.view(b, -1, p, self.window).permute(0, 2, 1, 3).flatten(2)  # (B, P, 2C*W)
        return F.normalize(self.head(pooled), dim=-1)


def _sample_frames(mel: Tensor, positions: Tensor) -> Tensor:
    """Linear interpolation of ``mel (B, n_mels, F)`` at fractional frame indices
    ``positions (B, P)`` -> ``(B, n_mels, P)``; outside ``[0, F-1]`` reads silence."""
    n_frames = mel.shape[-1]
    i0 = positions.floor()
    w1 = (positions - i0).to(mel.dtype).unsqueeze(1)
    i0 = i0.long()

    def take(idx: Tensor) -> Tensor:
        inside = ((idx >= 0) & (idx < n_frames)).unsqueeze(1)
        idx = idx.clamp(0, n_frames - 1).unsqueeze(1).expand(-1, mel.shape[1], -1)
        return torch.where(inside, mel.gather(2, idx), torch.full_like(mel[:, :, :1], SILENCE))

    return take(i0) * (1 - w1) + take(i0 + 1) * w1


class SyncHead(nn.Module):
    """``forward(mouths, audio, fps, mask=None, audio_mask=None) -> SyncOutput``;
    see the module docstring."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.sync_window < 1 or config.sync_max_offset < 0:
            raise ValueError("sync_window must be >= 1 and sync_max_offset >= 0")
        self.window = config.sync_window
        self.max_offset = config.sync_max_offset
        self.sample_rate = config.audio_sample_rate
        self.n_mels = config.n_mels
        self.mouth_size = config.mouth_size
        self.audio_frames = max(1, round(self.window / REFERENCE_FPS / MEL_HOP_S))
        self.visual = MouthEncoder(config.sync_dim, self.window)
        self.audio = AudioEncoder(config.sync_dim, config.n_mels, self.window)
        self.classifier = nn.Linear(4, 1)
        with torch.no_grad():  # a prior: in sync and confident means real (negative logit)
            self.classifier.weight.copy_(torch.tensor([[-1.0, 0.0, -1.0, 1.0]]))
            self.classifier.bias.zero_()

    # ------------------------------------------------------------------ helpers
    def window_positions(self, fps: Tensor, starts: Tensor) -> Tensor:
        """Mel-frame indices (fractional) that audio windows of ``W`` frames' duration
        starting at frame positions ``starts (P,)`` (may be negative) read for each clip:
        ``(B, P, A)``, ``A`` evenly spaced times per window."""
        a = self.audio_frames
        frac = torch.arange(a, device=fps.device, dtype=torch.float64) / a  # of the window
        pos_frames = starts.to(fps.device, torch.float64).view(1, -1, 1) + self.window * frac.view(1, 1, -1)
        return (pos_frames / fps.to(torch.float64).view(-1, 1, 1) / MEL_HOP_S).float()

    def _unavailable(self, ref: Tensor, b: int, n_windows: int, available: Tensor) -> SyncOutput:
        n_off = 2 * self.max_offset + 1
        zeros = ref.new_zeros(b)
        return SyncOutput(
            similarity=ref.new_zeros(b, n_off),
            offset=torch.zeros(b, dtype=torch.long, device=ref.device),
            confidence=zeros,
            logit=zeros.clone(),
            available=available,
            window_similarity=ref.new_zeros(b, max(n_windows, 0), n_off),
            window_mask=torch.zeros(b, max(n_windows, 0), dtype=torch.bool, device=ref.device),
        )

    def _check(self, mouths, audio, fps, mask, audio_mask):
        if mouths.ndim != 5 or mouths.shape[2] != 3:
            raise ValueError(f"mouths must be (B,T,3,M,M), got {tuple(mouths.shape)}")
        b, t = mouths.shape[:2]
        if mouths.shape[-2:] != (self.mouth_size, self.mouth_size):
            raise ValueError(f"mouth crops must be {self.mouth_size}x{self.mouth_size} (ModelConfig.mouth_size), "
                             f"got {mouths.shape[-2]}x{mouths.shape[-1]}")
        if audio.ndim != 2 or audio.shape[0] != b:
            raise ValueError(f"audio must be (B,S) mono with B={b}, got {tuple(audio.shape)}")
        if fps is None:
            raise ValueError("fps (B,) is required with audio")
        fps = torch.as_tensor(fps, device=mouths.device).float()
        fps = fps.expand(b) if fps.ndim == 0 else fps
        if fps.shape != (b,):
            raise ValueError(f"fps must be (B,) with B={b}, got {tuple(fps.shape)}")
        mask = torch.ones(b, t, dtype=torch.bool, device=mouths.device) if mask is None else mask
        if mask.shape != (b, t) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be (B,T)=({b},{t}) bool, got {tuple(mask.shape)} {mask.dtype}")
        audio_mask = torch.ones(b, dtype=torch.bool, device=mouths.device) if audio_mask is None else audio_mask
        if audio_mask.shape != (b,) or audio_mask.dtype != torch.bool:
            raise ValueError(f"audio_mask must be (B,) bool, got {tuple(audio_mask.shape)} {audio_mask.dtype}")
        return fps, mask, audio_mask

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        mouths: Tensor,
        audio: Tensor,
        fps: Tensor | float,
        mask: Tensor | None = None,
        audio_mask: Tensor | None = None,
    ) -> SyncOutput:
        """Compare each window of mouth movement with the audio at every offset (shapes and
        units in the module docstring); rows without usable audio are not ``available``."""
        fps, mask, audio_mask = self._check(mouths, audio, fps, mask, audio_mask)
        if mouths.dtype == torch.uint8:
            mouths = mouths.float().div_(255.0)
        b, t = mouths.shape[:2]
        w, k = self.window, self.max_offset
        n_windows = t - w + 1
        if n_windows < 1:
            return self._unavailable(mouths, b, 0, torch.zeros(b, dtype=torch.bool, device=mouths.device))
        window_valid = mask.unfold(1, w, 1).all(dim=-1)  # (B, n_windows)
        available = audio_mask & window_valid.any(dim=1) & (fps > 0)
        if not bool(available.any()):
            return self._unavailable(mouths, b, n_windows, available)

        rows = available.nonzero().squeeze(1)
        sub_mask, sub_wvalid = mask[rows], window_valid[rows]
        visual = self.visual(mouths[rows], sub_mask)  # (b', n_windows, E)
        starts = torch.arange(-k, n_windows + k, device=mouths.device)  # audio window starts, frames
        mel = log_mel(audio[rows].float(), self.sample_rate, self.n_mels)
        audio_emb = self.audio(mel.to(visual.dtype), self.window_positions(fps[rows], starts))  # (b', P, E)
        # window t with offset index j (offset j-K) meets audio window starting at t + j - K
        candidates = audio_emb.unfold(1, 2 * k + 1, 1)  # (b', n_windows, E, 2K+1)
        win_sim = torch.einsum("bte,btej->btj", visual, candidates)
        win_sim = win_sim.masked_fill(~sub_wvalid.unsqueeze(-1), 0.0)
        similarity = win_sim.sum(dim=1) / sub_wvalid.sum(dim=1, keepdim=True).to(win_sim.dtype)

        best, best_idx = similarity.max(dim=1)
        offset = best_idx - k
        confidence = best - similarity.median(dim=1).values
        features = torch.stack(
            [similarity[:, k], best, confidence, offset.abs().to(best.dtype) / max(k, 1)], dim=1
        )
        logit = self.classifier(features).squeeze(-1)

        out = self._unavailable(win_sim, b, n_windows, available)

        def scatter(full: Tensor, part: Tensor) -> Tensor:
            return full.index_copy(0, rows, part.to(full.dtype))

        return SyncOutput(
            similarity=scatter(out.similarity, similarity),
            offset=scatter(out.offset, offset),
            confidence=scatter(out.confidence, confidence),
            logit=scatter(out.logit, logit),
            available=available,
            window_similarity=scatter(out.window_similarity, win_sim),
            window_mask=scatter(out.window_mask, sub_wvalid),
        )


def sync_contrastive_loss(
    sync: SyncOutput,
    target_offset: int | Tensor = 0,
    sample_mask: Tensor | None = None,
    temperature: float = 0.1,
    negatives: SyncOutput | None = None,
) -> Tensor:
    """InfoNCE over offsets, per visual window: the audio window at ``target_offset``
    (0 = in sync) is the positive, the same clip's audio shifted by every other offset in
    ``-K..K`` are the negatives. Averaged over assessed windows of samples with
    ``sample_mask`` True (use it to restrict to clips known to be in sync, e.g. real
    videos); ``target_offset`` may be a ``(B,)`` tensor for clips shifted on purpose.

    ``negatives``: the head's output for the same mouths against *other* clips' audio
    (e.g. the batch's audio rolled by one); its windows at every offset join the
    negatives, where that output assessed them. Returns a scalar (0 with a graph when
    nothing is usable)."""
    logits = sync.window_similarity / temperature  # (B, n, 2K+1)
    if negatives is not None:
        if negatives.window_similarity.shape != logits.shape:
            raise ValueError(f"negatives {tuple(negatives.window_similarity.shape)} must match {tuple(logits.shape)}")
        other = (negatives.window_similarity / temperature).masked_fill(
            ~negatives.window_mask.unsqueeze(-1), float("-inf"))
        logits = torch.cat([logits, other.to(logits.dtype)], dim=-1)
    b, n = logits.shape[:2]
    n_off = sync.window_similarity.shape[-1]
    k = (n_off - 1) // 2
    target = torch.as_tensor(target_offset, device=logits.device).long()
    target = target.expand(b) if target.ndim == 0 else target
    if target.shape != (b,):
        raise ValueError(f"target_offset must be an int or (B,) tensor, got {tuple(target.shape)}")
    use = sync.available & (target.abs() <= k)
    if sample_mask is not None:
        use = use & sample_mask.to(torch.bool)
    valid = sync.window_mask & use.unsqueeze(1)
    if not bool(valid.any()):  # keep the graph (DDP wants every used parameter to get a gradient)
        zero = sync.window_similarity.sum() * 0.0
        return zero if negatives is None else zero + negatives.window_similarity.sum() * 0.0
    labels = (target + k).unsqueeze(1).expand(b, n)
    return F.cross_entropy(logits[valid], labels[valid])
