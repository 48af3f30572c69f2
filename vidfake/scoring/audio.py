"""The audio a file's lip-sync check gets, and what its verdict says about it.

The sync head needs the video's sound and consecutive frames with mouth crops; when any
of that is missing the file is scored on its frames alone and the verdict's ``audio``
record says why, so "no sync" is never silent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidfake.extract.sampling import SamplingPlan
from vidfake.extract.video import AudioTrack, DecodeError, VideoInfo, read_audio


@dataclass
class AudioInput:
    """``summary``: the verdict's ``audio`` record so far (present, used, reason);
    ``track``: the decoded sound for the sync head, None when it is not asked."""

    summary: dict
    track: AudioTrack | None = None


def sync_audio(path: Path, info: VideoInfo | None, plan: SamplingPlan, plan_text: str, *, sync: bool,
               sample_rate: int) -> AudioInput:
    """Decode ``path``'s sound for the sync head when it can be used.

    Args:
        path: the file being scored.
        info: its probed video facts; None for a still image.
        plan: the checkpoint's sampling plan (the head needs consecutive frames).
        plan_text: the plan as written, for the reason given when it does not fit.
        sync: whether the model has a sync head.
        sample_rate: the rate the head's audio is resampled to.

    Returns:
        The sound (or None) with the record of why it is or is not used; an audio
        stream that does not decode is a reason, not an error.
    """
    if info is None:
        return AudioInput({"present": False, "used": False, "reason": "still image"})
    if not info.has_audio:
        return AudioInput({"present": False, "used": False, "reason": "the video has no audio stream"})
    if not sync:
        return AudioInput({"present": True, "used": False, "reason": "the model has no sync head"})
    if plan.kind not in ("clips", "all") or plan.stride != 1:
        return AudioInput({"present": True, "used": False, "reason": f"lip sync needs consecutive frames; plan is {plan_text}"})
    try:
        track = read_audio(path, sample_rate)
    except DecodeError as error:
        return AudioInput({"present": True, "used": False, "reason": f"audio could not be decoded: {error}"})
    return AudioInput({"present": True, "used": False, "reason": None}, track)
