"""An ensemble's verdict from its members' results on one file: no torch, no model.

Every member aggregates its own face tracks with its own rule into a video logit, which
its own calibration turns into a calibrated logit (``logit / T + bias``). The ensemble's
video logit is the weighted mean of those calibrated logits over the members that found a
face, and its score is that mean under the ensemble's own calibration (temperature, bias,
clip, threshold). An ensemble of one model (or of a model with itself) therefore scores
exactly what the model scores.

The tracks and the timeline shown come from the first extraction (in member order) that
found faces: each track's and each frame's score is the same weighted mean over the
members that share that extraction. Every member's own score is listed in
``verdict.model["members"]``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vidfake.extract.pipeline import MediaFaces
from vidfake.extract.sampling import SamplingPlan
from vidfake.scoring.audio import AudioInput
from vidfake.scoring.verdict import TrackResult, Verdict, VerdictBuilder, audio_record, media_summary, timeline
from vidfake.temporal.aggregate import AggregationConfig, VideoDecision, aggregate, track_logit

if TYPE_CHECKING:
    from vidfake.scoring.scorer import Scorer


@dataclass
class GroupResult:
    """One extraction shared by the members whose extraction settings agree."""

    members: list[int]  # the members' indices, in order
    faces: MediaFaces
    audio: AudioInput  # the sound its first member's sync head got, and why (not)
    plan: SamplingPlan | None  # None for an image
    sync_window: int  # its first member's sync window (for the audio record's reason)
    model_s: float  # seconds its members spent in their models
    tracks: dict[int, list[TrackResult]]  # member index -> that member's final tracks' results


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    return sum(w * v for v, w in zip(values, weights)) / sum(weights)


def _logit(probability: float) -> float:
    return math.log(probability) - math.log1p(-probability)


def member_decisions(members: Sequence[Scorer], groups: Sequence[GroupResult]) -> list[VideoDecision | None]:
    """Each member's own decision on the file (None: its extraction found no face)."""
    decisions: list[VideoDecision | None] = [None] * len(members)
    for group in groups:
        for i, tracks in group.tracks.items():
            if tracks:
                decisions[i] = aggregate([t.evidence for t in tracks], members[i].aggregation)
    return decisions


def member_records(members: Sequence[Scorer], weights: Sequence[float], decisions: Sequence[VideoDecision | None],
                   status: str | None = None) -> list[dict]:
    """``verdict.model["members"]``: who each member is, its weight, and what it said (``status``
    set: the file failed before any member could say anything)."""
    records = []
    for member, weight, decision in zip(members, weights, decisions):
        record = {**member.model_info, "weight": weight, "status": status or ("ok" if decision else "no_face"),
                  "score": None, "logit": None, "calibrated_logit": None}
        if decision is not None:
            record.update(score=decision.score, logit=decision.logit,
                          calibrated_logit=member.aggregation.calibrated_logit(decision.logit))
        records.append(record)
    return records


def _shown_tracks(members: Sequence[Scorer], weights: Sequence[float], group: GroupResult,
                  decisions: Sequence[VideoDecision | None], aggregation: AggregationConfig) -> tuple[list[dict], dict]:
    """The shown extraction's track records and per-frame probabilities, each the ensemble's
    calibration of the weighted mean of its members' calibrated logits."""
    ids = group.members
    w = [weights[i] for i in ids]
    lead = ids[0]
    by_member = [{t.record["id"]: t for t in group.tracks[i]} for i in ids]
    records = []
    for track in group.tracks[lead]:
        tid = track.record["id"]
        zs = [members[i].aggregation.calibrated_logit(track_logit(tracks[tid].evidence.clip_logits,
                                                                  members[i].aggregation.trim))
              for i, tracks in zip(ids, by_member)]
        records.append({**track.record, "score": aggregation.probability(_weighted_mean(zs, w)),
                        "weight": decisions[lead].track_weights[tid]})
    frame_probs = {}
    per_member = []
    for i in ids:  # each member's frame probability: the highest over its tracks, as for one model
        best: dict[int, float] = {}
        for t in group.tracks[i]:
            for frame, p in t.frame_probs.items():
                best[frame] = max(p, best.get(frame, 0.0))
        per_member.append(best)
    for frame in per_member[0]:
        frame_probs[frame] = aggregation.probability(_weighted_mean([_logit(b[frame]) for b in per_member], w))
    return records, frame_probs


def ensemble_verdict(builder: VerdictBuilder, members: Sequence[Scorer], weights: Sequence[float],
                     groups: Sequence[GroupResult], path: Path, kind: str, start: float) -> Verdict:
    """The ensemble's verdict on a file every extraction of which ran (see the module docstring).

    Args:
        builder: the ensemble's verdict writer (its calibration, name and caveats).
        members, weights: the member scorers and their weights, in order.
        groups: the extractions, in the order of their first members.
        path, kind: the file and whether it is a "video" or an "image".
        start: ``time.perf_counter()`` when scoring the file began.
    """
    decisions = member_decisions(members, groups)
    records = member_records(members, weights, decisions)
    timings = {stage: sum(g.faces.timings.get(stage, 0.0) for g in groups) for stage in ("decode", "detect")}
    scored = [i for i, d in enumerate(decisions) if d is not None]
    shown = next((g for g in groups if any(i in scored for i in g.members)), groups[0])
    media = media_summary(shown.faces)
    if not scored:
        timings["total"] = time.perf_counter() - start
        verdict = builder.new(path, kind, "no_face", media=media, audio=shown.audio.summary,
                              warnings=list(shown.faces.warnings), timings=timings)
        verdict.model = {**builder.model_info, "members": records}
        return verdict
    logit = _weighted_mean([members[i].aggregation.calibrated_logit(decisions[i].logit) for i in scored],
                           [weights[i] for i in scored])
    tracks, frame_probs = _shown_tracks(members, weights, shown, decisions, builder.aggregation)
    warnings = list(shown.faces.warnings)
    silent = [records[i]["name"] for i in range(len(members)) if i not in scored]
    if silent:
        warnings.append(f"members {', '.join(silent)} found no face with their own extraction settings: "
                        "the score is the weighted mean of the others")
    timings.update(model=sum(g.model_s for g in groups), total=time.perf_counter() - start)
    verdict = builder.new(path, kind, "ok", media=media, tracks=tracks, timeline=timeline(shown.faces, frame_probs, shown.plan),
                          audio=audio_record(shown.audio, tracks, shown.sync_window), warnings=warnings,
                          timings={k: round(v, 4) for k, v in timings.items()}, rotation_retry=shown.faces.rotation_retry)
    score = builder.aggregation.probability(logit)
    verdict.score, verdict.logit = score, logit
    verdict.label = "FAKE" if score >= builder.aggregation.threshold else "REAL"
    verdict.model = {**builder.model_info, "members": records}
    return verdict
