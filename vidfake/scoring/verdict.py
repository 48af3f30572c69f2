"""The answer for one file (``Verdict``) and the pieces it is built from.

A final face track's clip results become a ``TrackResult`` (what aggregation weighs, the
track's record, its frames' probabilities); ``VerdictBuilder`` aggregates the tracks with
the checkpoint's rule and writes the verdict: status, score, track records, the timeline
of per-frame scores and what the lip-sync head made of the audio. No torch, no model.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vidfake.extract.pipeline import FaceClip, MediaFaces
from vidfake.extract.sampling import SamplingPlan
from vidfake.scoring.audio import AudioInput
from vidfake.scoring.clip_stream import ClipResult
from vidfake.temporal.aggregate import AggregationConfig, TrackEvidence, aggregate, calibrated_probability


@dataclass
class Verdict:
    """The answer for one file; ``to_dict`` is the ``--json`` record."""

    path: str
    kind: str  # "video" or "image"
    status: str  # "ok", "no_face", "unreadable", "unsupported"
    score: float | None  # probability the file is fake; None unless status is "ok"
    logit: float | None  # the video logit before temperature calibration (for `vidfake calibrate`)
    label: str | None  # "FAKE" / "REAL"; None unless status is "ok"
    threshold: float
    model: dict
    media: dict = field(default_factory=dict)  # width, height (and fps, duration, has_audio for videos)
    tracks: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    audio: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    rotation_retry: int = 0  # degrees counterclockwise the frames were turned to find a face (0: upright)

    def to_dict(self) -> dict:
        """Plain JSON types, as ``vidfake score --json`` prints and the service stores."""
        return asdict(self)


@dataclass
class TrackResult:
    """One final face track's share of a verdict."""

    evidence: TrackEvidence  # what aggregation weighs: the clip logits, length and face size
    record: dict  # the verdict's entry for the track (its score and weight are added by aggregation)
    frame_probs: dict[int, float]  # video frame index -> the track's probability on that frame


def track_result(face: FaceClip, results: list[ClipResult], aggregation: AggregationConfig) -> TrackResult | None:
    """One final track's result from its clips' results. A clip holding a frame the final
    track does not (tracks merged after its crops were scored) is left out with its
    frames; None when nothing of the track is left.

    Args:
        face: the track as extraction finally kept it.
        results: the model's results for the clips cut from it while the video was read.
        aggregation: the checkpoint's rule: its calibrated logit -> probability, and the
            mouth-motion logit above which a mouth "looks re-generated".
    """
    wanted = set(face.track.frame_indices.tolist())
    clips = [r for r in results if wanted.issuperset(r.frame_indices.tolist())]
    logit_of = {int(f): float(v) for r in clips for f, v in zip(r.frame_indices, r.frame_logits)}
    keep = np.array([int(f) in logit_of for f in face.track.frame_indices])
    if not keep.any():
        return None
    track = face.track if keep.all() else face.track.subset(keep)
    syncs = [r.sync for r in clips if r.sync is not None]
    record = {
        "id": track.track_id,
        "frames": len(track),
        "frame_indices": track.frame_indices.tolist(),
        "box_first": np.round(track.boxes[0], 1).tolist(),
        "box_median": np.round(np.median(track.boxes, axis=0), 1).tolist(),
        "box_last": np.round(track.boxes[-1], 1).tolist(),
        "face_px": round(track.size, 1),
        "clips": len(clips),
    }
    if syncs:
        confidence, offset = max(syncs)
        record["sync"] = {"confidence": round(confidence, 4), "offset_frames": offset}
    mouths = [r.mouth for r in clips if r.mouth is not None]
    if mouths:
        record["mouth_motion"] = mouth_finding(float(np.mean(mouths)), aggregation.mouth_threshold)
    return TrackResult(
        evidence=TrackEvidence(track.track_id, [r.logit for r in clips], len(track), track.size),
        record=record,
        frame_probs={int(i): aggregation.probability(logit_of[int(i)]) for i in track.frame_indices},
    )


def timeline(faces: MediaFaces, frame_probs: dict[int, float], plan: SamplingPlan | None) -> list[dict]:
    """Per sampled frame: its time, the highest face score on it (None: no face) and its
    ``segment``, a run of the plan sampled without a gap (a clip, or clips that touch; the
    whole plan when it has no clips; ``plan`` None, a still image: one). Plots join points
    within a segment only, never across frames between clips that nobody measured."""
    segment_of: dict[int, int] = {}
    if plan is not None:
        segment, last = -1, None
        for group in plan.clip_groups(faces.info.num_frames):
            if last is None or int(group[0]) > last + plan.stride:
                segment += 1
            for frame in group.tolist():
                segment_of.setdefault(frame, segment)
            last = max(int(group[-1]), last if last is not None else -1)
    return [
        {"frame": int(i), "time": round(float(t), 4), "score": frame_probs.get(int(i)),
         "segment": segment_of.get(int(i), 0)}
        for i, t in zip(faces.frame_indices, faces.timestamps)
    ]


def media_summary(faces: MediaFaces) -> dict:
    """The verdict's ``media`` record: size, and for a video its rate, length and sound."""
    info = faces.info
    summary = {"width": info.width, "height": info.height}
    if faces.kind == "video":
        summary.update(fps=round(info.fps, 3), duration=round(info.duration, 3), has_audio=info.has_audio)
    return summary


def mouth_finding(logit: float, threshold: float = 0.0) -> dict:
    """A track's mouth-motion result: the head's mean logit over the track's clips, its
    sigmoid as ``score`` (the head's own, before it is weighed into the clip score), the
    score at the checkpoint's ``mouth_threshold`` (a logit) and what that says in words.
    The words follow the threshold, not 0.5: the head is trained on balanced classes, and
    most real videos of a development set may score above 0.5."""
    score = calibrated_probability(logit, temperature=1.0, prob_clip=0.0)
    finding = "mouth region looks re-generated" if logit >= threshold else "mouth region looks natural"
    return {"logit": round(logit, 4), "score": round(score, 4),
            "threshold": round(calibrated_probability(threshold, temperature=1.0, prob_clip=0.0), 4), "finding": finding}


def audio_record(audio: AudioInput, tracks: list[dict], sync_window: int) -> dict:
    """The verdict's ``audio`` record (its lip-sync section) once the tracks are scored: the
    most confident track's sync result, or why the sync head, though asked, could use no
    clip; and, with a mouth-motion head, the track whose mouth looks most re-generated
    (``mouth_motion``, with its track id), sound or not."""
    record = _sync_record(audio, tracks, sync_window)
    mouths = [{**t["mouth_motion"], "track": t["id"]} for t in tracks if t.get("mouth_motion")]
    if mouths:
        record["mouth_motion"] = max(mouths, key=lambda m: m["score"])
    return record


def _sync_record(audio: AudioInput, tracks: list[dict], sync_window: int) -> dict:
    syncs = [t["sync"] for t in tracks if t.get("sync")]
    if syncs:
        best = max(syncs, key=lambda s: s["confidence"])
        return {**audio.summary, "used": True, "sync_confidence": best["confidence"],
                "offset_frames": best["offset_frames"]}
    if audio.track is not None:
        return {**audio.summary, "reason": (
            f"no clip had both {sync_window} consecutive frames with a mouth crop "
            "and audible sound (too short a video, faces too brief, or silent audio)")}
    return audio.summary


@dataclass(frozen=True)
class VerdictBuilder:
    """Writes a file's ``Verdict`` with one checkpoint's rule: its aggregation (and
    threshold), its name on every verdict, and its caveats as warnings."""

    aggregation: AggregationConfig
    model_info: dict  # name, version, sha256
    sync_window: int  # the sync head's frames a clip needs (for the reason it used none)
    untrained: bool = False  # a randomly initialised checkpoint: every verdict says so
    model_warning: str | None = None  # the checkpoint author's caveat, on every scored verdict

    def new(self, path: Path, kind: str, status: str, **extra) -> Verdict:
        """A verdict without a score (``extra``: the Verdict's other fields)."""
        warnings = extra.pop("warnings", [])
        if self.untrained:
            warnings = ["the checkpoint is randomly initialised (untrained): scores are meaningless", *warnings]
        if self.model_warning and status == "ok":
            warnings = [self.model_warning, *warnings]
        return Verdict(str(path), kind, status, None, None, None, self.aggregation.threshold, self.model_info,
                       warnings=warnings, **extra)

    def build(self, path: Path, kind: str, faces: MediaFaces, tracks: list[TrackResult], audio: AudioInput,
              plan: SamplingPlan | None, model_s: float, start: float) -> Verdict:
        """The verdict of a file whose faces were extracted and scored.

        Args:
            path, kind: the file and whether it is a "video" or an "image".
            faces: what extraction found.
            tracks: the final tracks' results (``no_face`` when empty).
            audio: the sound the sync head was given, and why (not).
            plan: the sampling plan (None for an image), for the timeline's segments.
            model_s: seconds spent in the model.
            start: ``time.perf_counter()`` when scoring the file began.
        """
        timings = {"decode": faces.timings.get("decode", 0.0), "detect": faces.timings.get("detect", 0.0)}
        media = media_summary(faces)
        if not tracks:
            timings["total"] = time.perf_counter() - start
            return self.new(path, kind, "no_face", media=media, audio=audio.summary, warnings=faces.warnings,
                            timings=timings)
        decision = aggregate([t.evidence for t in tracks], self.aggregation)
        records = [{**t.record, "score": decision.track_scores[t.record["id"]],
                    "weight": decision.track_weights[t.record["id"]]} for t in tracks]
        frame_probs: dict[int, float] = {}
        for t in tracks:
            for frame_index, prob in t.frame_probs.items():
                frame_probs[frame_index] = max(prob, frame_probs.get(frame_index, 0.0))
        timings.update(model=model_s, total=time.perf_counter() - start)
        verdict = self.new(path, kind, "ok", media=media, tracks=records, timeline=timeline(faces, frame_probs, plan),
                           audio=audio_record(audio, records, self.sync_window), warnings=faces.warnings,
                           timings={k: round(v, 4) for k, v in timings.items()}, rotation_retry=faces.rotation_retry)
        verdict.score, verdict.logit, verdict.label = decision.score, decision.logit, decision.label
        return verdict
