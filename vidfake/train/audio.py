"""The audio window of a training clip, for the lip-sync head.

``vidfake extract --audio`` writes each video's audio as ``DIR/audio/<video>.wav`` (16 kHz
mono) with ``start_time``, the time of its first sample on the frames' clock. The sync
head (:mod:`vidfake.temporal.sync`) wants, per clip of consecutive frames at ``fps``,
audio that starts at the time of the clip's first frame; this module cuts exactly that
from the WAV, reading only the samples it needs (a long video is not loaded whole per
item).

Out-of-sync negatives for the pretext are the same clip with its audio window moved by a
whole number of frames (:class:`SyncAudio`): a shift of ``s`` frames starts the audio at
frame ``s``'s time, so the sound of mouth frame ``i`` sits at ``i - s`` and the head's
in-sync offset for that clip is ``-s``.
"""
from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidfake.extract.video import AudioTrack


@dataclass(frozen=True)
class SyncAudio:
    """How a clip's audio window is cut.

    ``context_frames``: the window runs on this many frames past the clip's last frame,
    so the head's positive offsets read real sound instead of silence (0 = exactly the
    clip, as :class:`vidfake.scoring.Scorer` cuts it). ``shift_prob``: probability that
    the window is moved by ``min_shift..max_shift`` frames (either sign) to make an
    out-of-sync clip."""

    context_frames: int = 0
    shift_prob: float = 0.0
    min_shift: int = 3
    max_shift: int = 8

    def __post_init__(self) -> None:
        if self.context_frames < 0:
            raise ValueError(f"context_frames must be >= 0, got {self.context_frames}")
        if not 0.0 <= self.shift_prob <= 1.0:
            raise ValueError(f"sync shift_prob must be in [0, 1], got {self.shift_prob}")
        if not 1 <= self.min_shift <= self.max_shift:
            raise ValueError(f"need 1 <= sync min_shift <= max_shift, got {self.min_shift}, {self.max_shift}")

    def draw_shift(self, rng: np.random.Generator) -> int:
        """0 (in sync) or a signed shift in frames; always two draws, so the stream after
        it does not depend on the outcome."""
        u, v = rng.random(), rng.random()
        if u >= self.shift_prob:
            return 0
        span = self.max_shift - self.min_shift + 1
        magnitude = self.min_shift + min(span - 1, int((2.0 * v % 1.0) * span))  # v's lower half: +, upper: -
        return magnitude if v < 0.5 else -magnitude


def read_wav_span(path: str | Path, start_time: float, t0: float, t1: float) -> np.ndarray:
    """Samples of the WAV at ``path`` between ``t0`` and ``t1`` seconds on the frames' clock
    (the file's first sample plays at ``start_time``), float32 in [-1, 1], zero-padded where
    the file has no sound. Only the needed part of the file is read."""
    with wave.open(str(path), "rb") as handle:
        if handle.getnchannels() != 1 or handle.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit mono WAV (as vidfake extract --audio writes)")
        rate = handle.getframerate()
        total = handle.getnframes()
        first = int(round((t0 - start_time) * rate))
        count = max(0, int(round((t1 - t0) * rate)))
        lo, hi = min(max(first, 0), total), min(max(first + count, 0), total)
        handle.setpos(lo)
        pcm = np.frombuffer(handle.readframes(hi - lo), dtype="<i2")
    part = AudioTrack(samples=pcm.astype(np.float32) / 32767.0, sample_rate=rate, start_time=start_time + lo / rate)
    return part.window(t0, t1)


def clip_audio(audio: dict, first_time: float, n_frames: int, fps: float, options: SyncAudio, shift: int = 0) -> np.ndarray:
    """The audio window of a clip of ``n_frames`` consecutive frames at ``fps`` whose first
    frame is at ``first_time``: from that frame's time (plus ``shift`` frames) for
    ``n_frames + options.context_frames`` frame durations. ``audio`` is a
    ``tracks.jsonl`` audio entry with ``file`` made absolute (see
    :func:`vidfake.train.data.load_extracted`)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    t0 = first_time + shift / fps
    t1 = t0 + (n_frames + options.context_frames) / fps
    return read_wav_span(audio["file"], float(audio.get("start_time", 0.0)), t0, t1)
