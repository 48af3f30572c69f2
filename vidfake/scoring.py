"""Score a video or an image: extract faces, run the model on each face track, aggregate.

The one place the stages are composed into a ``Verdict``: the CLI, the service and the
evaluation all call it, so a file is scored the same way everywhere. Every setting
(sampling plan, detector, crop, model, aggregation rule, temperature, threshold) comes
from the checkpoint; nothing here has numbers of its own.

torch (like the model and the face detector) is loaded only when a file passes its probe:
an unreadable file is answered in a fraction of a second, not after seconds of imports.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidfake.checkpoint import Checkpoint, CheckpointError, CheckpointHeader, load_checkpoint
from vidfake.clip_stream import ClipResult, ClipStream, StreamedClip
from vidfake.extract.failures import file_failure
from vidfake.extract.pipeline import ExtractConfig, FaceClip, FaceExtractor, MediaFaces
from vidfake.extract.sampling import parse_plan
from vidfake.extract.video import AudioTrack, DecodeError, VideoInfo, VideoProbe, read_audio
from vidfake.models import checkpoint_header
from vidfake.temporal import ModelConfig
from vidfake.temporal.aggregate import AggregationConfig, TrackEvidence, aggregate

if TYPE_CHECKING:
    import torch

FRAMES_PER_BATCH = 64  # face crops through the model at once: bounds memory whatever the plan
MAX_CLIP_FRAMES = 32  # plans without clips (uniform, every, all) are cut into clips this long
# Crops reach the model as extraction cuts them (``ClipStream``): the crops held at once are
# one decoded segment's plus a bounded buffer per face, however long the video.


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
        return asdict(self)


@dataclass
class _ClipBatch:
    """Padded clips of one face track, ready for the model."""

    frames: torch.Tensor  # (B,T,3,S,S) float in [0,1]
    times: torch.Tensor  # (B,T) seconds
    mask: torch.Tensor  # (B,T) True where a frame is present
    mouths: torch.Tensor | None  # (B,T,3,M,M)
    lengths: list[int]  # per clip: frames present


class Scorer:
    """Scores any number of files with one checkpoint (the packaged default model when
    none is given).

    Construction reads only the checkpoint's config (and hashes its file, once); the
    model and the face detector load on the first file that passes its probe, so files
    that cannot be read are answered at once and a run of only such files never loads
    either. ``load()`` loads them up front."""

    def __init__(self, checkpoint: Checkpoint | str | Path | None = None, device: str = "cpu", plan: str | None = None):
        if isinstance(checkpoint, Checkpoint):
            self._checkpoint: Checkpoint | None = checkpoint
            self.header = CheckpointHeader(checkpoint.config, checkpoint.path, checkpoint.sha256)
        else:
            self._checkpoint = None
            self.header = checkpoint_header(checkpoint)
        config = self.header.config
        self.device_name = device
        self.model_config = ModelConfig.from_dict(config["model"])
        self._model = None
        extract = ExtractConfig.from_dict(config["extract"])
        extract = replace(extract, plan=plan or extract.plan, detector=replace(extract.detector, device=device))
        self.extract_config = extract
        self.extractor = FaceExtractor(extract)
        self.aggregation = AggregationConfig.from_dict(config["aggregation"])
        self.model_info = {
            "name": config.get("name", Path(self.header.path).stem),
            "version": config.get("version", ""),
            "sha256": self.header.sha256,
        }
        self.untrained = bool(config.get("training", {}).get("untrained", False))
        # a checkpoint can carry one caveat its author wants on every verdict (the default model does)
        self.model_warning = str(config.get("card", {}).get("warning", "")) or None

    # -- public API -------------------------------------------------------------------

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint with its weights (read on first use; its file is not hashed again)."""
        if self._checkpoint is None:
            self._checkpoint = load_checkpoint(self.header.path, sha256=self.header.sha256)
        return self._checkpoint

    @property
    def device(self) -> torch.device:
        import torch

        return torch.device(self.device_name)

    @property
    def model(self):
        """The model with the checkpoint's weights, built on first use."""
        if self._model is None:
            from vidfake.temporal import create_model  # imports timm: only when a file reaches the model

            try:
                model = create_model(self.model_config, pretrained=False)  # the checkpoint holds every weight
                model.load_state_dict(self.checkpoint.state_dict, strict=True)
            except (RuntimeError, ValueError, KeyError) as error:
                raise CheckpointError(f"{self.header.path}: the model cannot be built from it: {error}") from error
            self._model = model.eval().to(self.device)
        return self._model

    def load(self) -> Scorer:
        """Load the model and the face detector now rather than on the first readable file."""
        _ = self.model, self.extractor.detector
        return self

    def score_video(self, path: str | Path) -> Verdict:
        return self._score(Path(path), "video")

    def score_image(self, path: str | Path) -> Verdict:
        return self._score(Path(path), "image")

    # -- steps ------------------------------------------------------------------------

    def _verdict(self, path: Path, kind: str, status: str, **extra) -> Verdict:
        warnings = extra.pop("warnings", [])
        if self.untrained:
            warnings = ["the checkpoint is randomly initialised (untrained): scores are meaningless", *warnings]
        if self.model_warning and status == "ok":
            warnings = [self.model_warning, *warnings]
        return Verdict(str(path), kind, status, None, None, None, self.aggregation.threshold, self.model_info,
                       warnings=warnings, **extra)

    def _score(self, path: Path, kind: str) -> Verdict:
        """The per-file safety net: whatever goes wrong with this file becomes its
        verdict's status (the rule is ``file_failure``'s), so no file can stop a run."""
        start = time.perf_counter()
        try:
            probed = self.extractor.probe(path, kind)  # size, container, streams: before any model loads
        except Exception as error:  # noqa: BLE001 - one bad file must never cost the rest of a batch
            failure = file_failure(error, path)
            return self._verdict(path, kind, failure.status, error=failure.reason, timings=_since(start))
        self.load()  # outside the net: a checkpoint that cannot be built fails the run, not this file
        try:
            return self._score_file(path, kind, start, probed)
        except Exception as error:  # noqa: BLE001 - one bad file must never cost the rest of a batch
            failure = file_failure(error, path)
            return self._verdict(path, kind, failure.status, error=failure.reason, timings=_since(start))

    def _score_file(self, path: Path, kind: str, start: float, probed: VideoProbe | None) -> Verdict:
        info = probed[0] if kind == "video" else None
        audio_info, audio = self._audio(path, info)
        model_time = [0.0]

        def stream_for(num_frames: int, fps: float | None) -> ClipStream:
            plan = parse_plan(self.extract_config.plan) if kind == "video" else None

            def run(clips: list[StreamedClip]) -> list[ClipResult]:
                began = time.perf_counter()
                results = self._run_clips(clips, audio, fps)
                model_time[0] += time.perf_counter() - began
                return results

            return ClipStream(run, plan, num_frames, MAX_CLIP_FRAMES)

        if kind == "image":
            faces = self.extractor.extract_image(path)
            stream = stream_for(1, None)
            for face in faces.faces:
                stream.add(face.source_id, face.track.frame_indices, face.track.timestamps, face.crops, face.mouths)
        else:
            streams: dict[int, ClipStream] = {}  # one per search (upright, then turned ones)

            def sink_for(turn: int):
                streams[turn] = stream_for(info.num_frames, info.fps)
                return streams[turn].add

            faces = self.extractor.extract_video(path, probed, sink_for)  # the model runs as crops are cut
            stream = streams[faces.rotation_retry]
        timings = {"decode": faces.timings.get("decode", 0.0), "detect": faces.timings.get("detect", 0.0)}
        media = _media_summary(faces)
        if not faces.faces:
            timings["total"] = time.perf_counter() - start
            return self._verdict(path, kind, "no_face", media=media, audio=audio_info, warnings=faces.warnings,
                                 timings=timings)

        evidence, tracks, frame_probs = [], [], {}
        for face in faces.faces:
            track_result = self._score_track(face, stream.finish(face.source_id))
            if track_result is None:
                continue
            evidence.append(track_result["evidence"])
            tracks.append(track_result["record"])
            for frame_index, prob in track_result["frame_probs"].items():
                frame_probs[frame_index] = max(prob, frame_probs.get(frame_index, 0.0))
        if not evidence:
            timings["total"] = time.perf_counter() - start
            return self._verdict(path, kind, "no_face", media=media, audio=audio_info, warnings=faces.warnings,
                                 timings=timings)
        decision = aggregate(evidence, self.aggregation)
        timings["model"] = model_time[0]
        for record in tracks:
            record["score"] = decision.track_scores[record["id"]]
            record["weight"] = decision.track_weights[record["id"]]
        timeline = _timeline(faces, frame_probs)
        sync_results = [t["sync"] for t in tracks if t.get("sync")]
        if sync_results:
            best = max(sync_results, key=lambda s: s["confidence"])
            audio_info.update(used=True, sync_confidence=best["confidence"], offset_frames=best["offset_frames"])
        elif audio is not None:  # the head was asked but no clip could use it: say why
            audio_info["reason"] = (
                f"no clip had both {self.model_config.sync_window} consecutive frames with a mouth crop "
                "and audible sound (too short a video, faces too brief, or silent audio)")
        timings["total"] = time.perf_counter() - start
        verdict = self._verdict(path, kind, "ok", media=media, tracks=tracks, timeline=timeline, audio=audio_info,
                                warnings=faces.warnings, timings={k: round(v, 4) for k, v in timings.items()},
                                rotation_retry=faces.rotation_retry)
        verdict.score = decision.score
        verdict.logit = decision.logit
        verdict.label = decision.label
        return verdict

    def _audio(self, path: Path, info: VideoInfo | None) -> tuple[dict, AudioTrack | None]:
        """Audio for the sync head, and what the verdict says about it (``info`` None: an image)."""
        if info is None:
            return {"present": False, "used": False, "reason": "still image"}, None
        if not info.has_audio:
            return {"present": False, "used": False, "reason": "the video has no audio stream"}, None
        if not self.model_config.sync:
            return {"present": True, "used": False, "reason": "the model has no sync head"}, None
        plan_text = self.extract_config.plan
        plan = parse_plan(plan_text)
        if plan.kind not in ("clips", "all") or plan.stride != 1:
            return {"present": True, "used": False, "reason": f"lip sync needs consecutive frames; plan is {plan_text}"}, None
        try:
            audio = read_audio(path, self.model_config.audio_sample_rate)
        except DecodeError as error:
            return {"present": True, "used": False, "reason": f"audio could not be decoded: {error}"}, None
        return {"present": True, "used": False, "reason": None}, audio

    def _score_track(self, face: FaceClip, results: list[ClipResult]) -> dict | None:
        """One final track's evidence and record from its clips' results. A clip holding a
        frame the final track does not (tracks merged after its crops were scored) is left
        out with its frames; None when nothing of the track is left."""
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
        return {
            "evidence": TrackEvidence(track.track_id, [r.logit for r in clips], len(track), track.size),
            "record": record,
            "frame_probs": {
                int(i): self.aggregation.probability(logit_of[int(i)]) for i in track.frame_indices
            },
        }

    def _run_clips(self, clips: list[StreamedClip], audio: AudioTrack | None, fps: float | None) -> list[ClipResult]:
        """The model on complete clips of one track, at most ``FRAMES_PER_BATCH`` frames a call."""
        import torch

        per_batch = max(1, FRAMES_PER_BATCH // max(len(c.frame_indices) for c in clips))
        results: list[ClipResult] = []
        for first in range(0, len(clips), per_batch):
            part = clips[first : first + per_batch]
            batch = self._pad(part)
            audio_batch, fps_batch, audio_mask = self._audio_batch(batch, audio, fps)
            with torch.inference_mode():
                out = self.model(
                    batch.frames.to(self.device), batch.times.to(self.device), batch.mask.to(self.device),
                    mouths=None if batch.mouths is None else batch.mouths.to(self.device),
                    audio=audio_batch, fps=fps_batch, audio_mask=audio_mask,
                )
            logits = out.frame_logits.float().cpu().numpy()
            clip_logits = out.clip_logit.float().cpu().tolist()
            for b, clip in enumerate(part):
                sync = None
                if out.sync is not None and bool(out.used_sync[b]):
                    sync = (float(out.sync.confidence[b]), int(out.sync.offset[b]))
                results.append(ClipResult(clip.frame_indices, clip_logits[b], logits[b, : len(clip.frame_indices)], sync))
        return results

    def _pad(self, clips: list[StreamedClip]) -> _ClipBatch:
        import torch

        lengths = [len(c.frame_indices) for c in clips]
        length = max(lengths)
        size = self.model_config.input_size
        frames = torch.zeros((len(clips), length, 3, size, size))
        times = torch.zeros((len(clips), length))
        mask = torch.zeros((len(clips), length), dtype=torch.bool)
        use_mouths = self.model_config.sync and all(c.mouths is not None for c in clips)
        m = self.model_config.mouth_size
        mouths = torch.zeros((len(clips), length, 3, m, m)) if use_mouths else None
        for b, (clip, n) in enumerate(zip(clips, lengths)):
            frames[b, :n] = _to_tensor(clip.crops, size)
            times[b, :n] = torch.as_tensor(clip.timestamps, dtype=torch.float32)
            mask[b, :n] = True
            if mouths is not None:
                mouths[b, :n] = _to_tensor(clip.mouths, m)
        return _ClipBatch(frames, times, mask, mouths, lengths)

    def _audio_batch(self, batch: _ClipBatch, audio: AudioTrack | None, fps: float | None):
        if audio is None or batch.mouths is None or fps is None:
            return None, None, None
        import torch

        rate = audio.sample_rate
        spans = []
        for b, n in enumerate(batch.lengths):
            t0 = float(batch.times[b, 0])
            t1 = float(batch.times[b, n - 1]) + 1.0 / fps
            spans.append(audio.window(t0, t1))
        length = max(len(s) for s in spans)
        samples = torch.zeros((len(spans), length))
        for b, span in enumerate(spans):
            samples[b, : len(span)] = torch.from_numpy(span)
        audio_mask = torch.tensor([len(s) > rate * 0.2 and np.abs(s).max() > 0 for s in spans])
        fps_tensor = torch.full((len(spans),), float(fps))
        return samples.to(self.device), fps_tensor.to(self.device), audio_mask.to(self.device)


def _to_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N,H,W,3) crops -> float (N,3,size,size) in [0,1]."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    if tensor.shape[-1] != size:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return tensor


def _media_summary(faces: MediaFaces) -> dict:
    info = faces.info
    summary = {"width": info.width, "height": info.height}
    if faces.kind == "video":
        summary.update(fps=round(info.fps, 3), duration=round(info.duration, 3), has_audio=info.has_audio)
    return summary


def _timeline(faces: MediaFaces, frame_probs: dict[int, float]) -> list[dict]:
    """Per sampled frame: its time, the highest face score on it (None: no face) and its
    ``segment``, a run of the plan sampled without a gap (a clip, or clips that touch; the
    whole plan when it has no clips). Plots join points within a segment only, never
    across frames between clips that nobody measured."""
    segment_of: dict[int, int] = {}
    if faces.kind == "video":
        plan = parse_plan(faces.plan)
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


def _since(start: float) -> dict[str, float]:
    return {"total": round(time.perf_counter() - start, 4)}


def score_video(path: str | Path, checkpoint: str | Path | Checkpoint | None = None, device: str = "cpu") -> Verdict:
    """Score one video with ``checkpoint`` or the default model (loads it on every call;
    use ``Scorer`` for many files)."""
    return Scorer(checkpoint, device).score_video(path)


def score_image(path: str | Path, checkpoint: str | Path | Checkpoint | None = None, device: str = "cpu") -> Verdict:
    """Score one still image as a one-frame clip."""
    return Scorer(checkpoint, device).score_image(path)
