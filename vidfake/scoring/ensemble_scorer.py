"""``EnsembleScorer``: several checkpoints scoring one file together.

Each member is a ``Scorer`` and keeps its own input size, plan, face detector settings,
model and calibration. Members whose extraction settings (``ExtractConfig``: plan, crop
size and margin, face detector, tracker) agree share one extraction: the faces are found
and cut once, and every clip goes through each of those members' models as it is cut
(``Scorer.run_clips``), then each member takes its tracks' results (``Scorer.run_track``).
``ensemble_verdict`` combines the members' results into the verdict.

``build_scorer`` is what the CLI and the service call: one checkpoint gives the plain
``Scorer``, unchanged; several, or one ensemble file (``vidfake ensemble``), give this.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from vidfake.checkpoints.ensemble_file import check_weights, describe_identity, ensemble_aggregation, load_ensemble
from vidfake.checkpoints.format import Checkpoint, is_ensemble
from vidfake.extract.failures import file_failure
from vidfake.extract.pipeline import ExtractConfig
from vidfake.extract.video import VideoProbe
from vidfake.scoring.audio import AudioInput
from vidfake.scoring.clip_stream import ClipResult, StreamedClip
from vidfake.scoring.ensemble_verdict import GroupResult, ensemble_verdict, member_records
from vidfake.scoring.scorer import Scorer, prepare_memory
from vidfake.scoring.verdict import Verdict, VerdictBuilder
from vidfake.temporal.aggregate import AggregationConfig

NO_ENSEMBLE_HEATMAPS = ("heat maps show one model's evidence: give a single --checkpoint "
                        "(ensembles have no heat maps yet)")


class HeatmapsUnsupported(ValueError):
    """Heat maps were asked of an ensemble, which has none."""


def require_heatmaps(scorer) -> None:
    """Raise ``HeatmapsUnsupported`` unless ``scorer`` draws heat maps: callers check before
    a run starts rather than fail on its first file."""
    if not scorer.draws_heatmaps:
        raise HeatmapsUnsupported(NO_ENSEMBLE_HEATMAPS)


class _FinishedClips:
    """One member's share of a shared track's clip results, shaped as the stream that
    ``Scorer.run_track`` takes its results from."""

    def __init__(self, results: list[ClipResult]):
        self.results = results

    def finish(self, track_id: int) -> list[ClipResult]:
        """The member's results for the track (the shared stream has finished it already)."""
        return self.results


class EnsembleScorer:
    """Scores files with several member scorers; same calls as ``Scorer`` (``score_video``,
    ``score_image``, ``load``, ``aggregation``, ``model_info``).

    Args:
        members: the members' scorers, in order.
        weights: one per member (None: equal).
        aggregation: the ensemble's calibration and threshold (None: ``ensemble_aggregation``).
        identity: the ensemble's ``name``, ``version`` and ``sha256`` (None: named after its members).
    """

    draws_heatmaps = False  # whose map would it be? (``require_heatmaps``)

    def __init__(self, members: Sequence[Scorer], weights: Sequence[float] | None = None,
                 aggregation: AggregationConfig | None = None, identity: dict | None = None):
        self.members = list(members)
        self.weights = check_weights(weights, len(self.members))
        self.aggregation = aggregation or ensemble_aggregation([m.aggregation for m in self.members], self.weights)
        listed = [{**m.model_info, "weight": w} for m, w in zip(self.members, self.weights)]
        if identity is None:
            identity = {"name": "ensemble(" + ", ".join(m["name"] for m in listed) + ")", "version": "",
                        "sha256": describe_identity(listed, self.weights, self.aggregation)}
        self.model_info = {**identity, "members": listed}
        self.groups: list[list[int]] = []  # members sharing one extraction, in order of their first member
        first_of: dict[str, int] = {}
        for i, member in enumerate(self.members):
            key = json.dumps(member.extract_config.to_dict(), sort_keys=True)
            if key not in first_of:
                first_of[key] = len(self.groups)
                self.groups.append([])
            self.groups[first_of[key]].append(i)
        self.extract_config: ExtractConfig = self.members[0].extract_config
        self.untrained = any(m.untrained for m in self.members)
        self._caveats = [f"member {m.model_info['name']} is randomly initialised (untrained): its scores are meaningless"
                         for m in self.members if m.untrained]
        notes = list(dict.fromkeys(m.model_warning for m in self.members if m.model_warning))
        self.verdicts = VerdictBuilder(self.aggregation, self.model_info, self.members[0].model_config.sync_window,
                                       model_warning="; ".join(notes) or None)

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike | Checkpoint], device: str = "cpu", plan: str | None = None,
                   weights: Sequence[float] | None = None, keyframe_interval: int | None = None) -> EnsembleScorer:
        """An ensemble of single-model checkpoints (files or loaded), weighed by ``weights`` (None: equally)."""
        return cls([Scorer(p, device, plan, keyframe_interval) for p in paths], weights)

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str = "cpu", plan: str | None = None,
                  keyframe_interval: int | None = None) -> EnsembleScorer:
        """The ensemble packed in ``path`` by ``vidfake ensemble``."""
        ensemble = load_ensemble(path)
        identity = {"name": ensemble.name, "version": ensemble.version, "sha256": ensemble.sha256}
        members = [Scorer(m, device, plan, keyframe_interval) for m in ensemble.members]
        return cls(members, ensemble.weights, ensemble.aggregation, identity)

    def load(self) -> EnsembleScorer:
        """Load every member's model (its scoring copy), and one face detector per shared
        extraction, now; memory is prepared for the first file as ``Scorer.load`` does."""
        leaders = [self.members[group[0]] for group in self.groups]
        for leader in leaders:
            _ = leader.extractor.detector
        for member in self.members:
            _ = member.clip_model.scoring_module
        prepare_memory([leader.extractor for leader in leaders])
        return self

    def score(self, path: str | Path, kind: str, heatmaps=None) -> Verdict:
        """Score one file of ``kind`` (``"video"`` or ``"image"``), as ``Scorer.score`` does.
        An ensemble draws no heat maps (whose map would it be?): asking for them is refused
        here, the one place that decides it."""
        if heatmaps is not None:
            require_heatmaps(self)
        if kind not in ("video", "image"):
            raise ValueError(f"kind must be 'video' or 'image', got {kind!r}")
        return self._score(Path(path), kind)

    def score_video(self, path: str | Path) -> Verdict:
        """Score one video; a file that cannot be scored gets a verdict saying why."""
        return self._score(Path(path), "video")

    def score_image(self, path: str | Path) -> Verdict:
        """Score one still image as a one-frame clip; failures as in ``score_video``."""
        return self._score(Path(path), "image")

    def _score(self, path: Path, kind: str) -> Verdict:
        """The per-file safety net, as ``Scorer``'s: a failure becomes the verdict's status."""
        start = time.perf_counter()
        try:
            probes = [self.members[g[0]].extractor.probe(path, kind) for g in self.groups]
        except Exception as error:  # one bad file must never cost the rest of a batch
            return self._failed(path, kind, error, start)
        self.load()  # outside the net: a member that cannot be built fails the run, not this file
        try:
            groups = [self._score_group(g, path, kind, p) for g, p in zip(self.groups, probes)]
            verdict = ensemble_verdict(self.verdicts, self.members, self.weights, groups, path, kind, start)
        except Exception as error:  # one bad file must never cost the rest of a batch
            return self._failed(path, kind, error, start)
        verdict.warnings = [*self._caveats, *verdict.warnings]
        return verdict

    def _failed(self, path: Path, kind: str, error: Exception, start: float) -> Verdict:
        failure = file_failure(error, path)
        verdict = self.verdicts.new(path, kind, failure.status, error=failure.reason, warnings=list(self._caveats),
                                    timings={"total": round(time.perf_counter() - start, 4)})
        verdict.model = {**self.model_info, "members": member_records(self.members, self.weights,
                                                                      [None] * len(self.members), failure.status)}
        return verdict

    def _score_group(self, group: list[int], path: Path, kind: str, probed: VideoProbe | None) -> GroupResult:
        """One extraction for the members in ``group``, every clip through each of their models."""
        members = [self.members[i] for i in group]
        info = probed[0] if kind == "video" else None
        fps = None if info is None else info.fps
        sounds: dict[tuple[bool, int], AudioInput] = {}  # members whose sync heads want the same sound share it
        audios = []
        for m in members:
            want = (m.model_config.sync, m.model_config.audio_sample_rate)
            if want not in sounds:
                sounds[want] = m.read_audio(path, info)
            audios.append(sounds[want])
        model_s = 0.0

        def run_clips(clips: list[StreamedClip]) -> list[tuple[ClipResult, ...]]:
            nonlocal model_s
            began = time.perf_counter()
            per_member = [m.run_clips(clips, a.track, fps) for m, a in zip(members, audios)]
            model_s += time.perf_counter() - began
            return list(zip(*per_member))  # per clip: every member's result, in member order

        extraction = members[0].extract(path, kind, probed, run_clips)
        tracks: dict[int, list] = {i: [] for i in group}
        for face in extraction.faces.faces:
            shared = extraction.stream.finish(face.source_id)
            for j, (i, member) in enumerate(zip(group, members)):
                result = member.run_track(face, _FinishedClips([clip[j] for clip in shared]))
                if result is not None:
                    tracks[i].append(result)
        return GroupResult(group, extraction.faces, audios[0], members[0].plan if kind == "video" else None,
                           members[0].model_config.sync_window, model_s, tracks)


def build_scorer(checkpoints: Sequence[str | os.PathLike | Checkpoint] | str | os.PathLike | None = None,
                 device: str = "cpu", plan: str | None = None,
                 keyframe_interval: int | None = None) -> Scorer | EnsembleScorer:
    """The scorer for what ``--checkpoint`` (repeatable) named: none, the default model; one
    single-model checkpoint, a plain ``Scorer``; one ensemble file, or several checkpoints,
    an ``EnsembleScorer`` (equal weights; pack with ``vidfake ensemble`` for others).
    ``plan`` and ``keyframe_interval`` override every model's own."""
    if checkpoints is None or isinstance(checkpoints, (str, os.PathLike, Checkpoint)):
        checkpoints = [] if checkpoints is None else [checkpoints]
    checkpoints = list(checkpoints)
    if not checkpoints:
        return Scorer(None, device, plan, keyframe_interval)
    if len(checkpoints) == 1:
        only = checkpoints[0]
        if not isinstance(only, Checkpoint) and is_ensemble(only):
            return EnsembleScorer.from_file(only, device, plan, keyframe_interval)
        return Scorer(only, device, plan, keyframe_interval)
    return EnsembleScorer.from_paths(checkpoints, device, plan, keyframe_interval=keyframe_interval)
