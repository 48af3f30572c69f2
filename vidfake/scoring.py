"""Score a video or an image: extract faces, run the model on each face track, aggregate.

The one place the stages are composed into a ``Verdict``: the CLI, the service and the
evaluation all call it, so a file is scored the same way everywhere. Every setting
(sampling plan, detector, crop, model, aggregation rule, temperature, threshold) comes
from the checkpoint; nothing here has numbers of its own.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidfake.checkpoint import Checkpoint, load_checkpoint
from vidfake.extract.pipeline import ExtractConfig, FaceClip, FaceExtractor, MediaError, MediaFaces
from vidfake.extract.sampling import parse_plan
from vidfake.extract.video import AudioTrack, DecodeError, VideoInfo, read_audio
from vidfake.models import resolve_checkpoint
from vidfake.temporal import ModelConfig, create_model
from vidfake.temporal.aggregate import AggregationConfig, TrackEvidence, aggregate, calibrated_probability

FRAMES_PER_BATCH = 64  # face crops through the model at once: bounds memory whatever the plan
MAX_CLIP_FRAMES = 32  # plans without clips (uniform, every, all) are cut into clips this long


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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _ClipBatch:
    """Padded clips of one face track, ready for the model."""

    frames: torch.Tensor  # (B,T,3,S,S) float in [0,1]
    times: torch.Tensor  # (B,T) seconds
    mask: torch.Tensor  # (B,T) True where a frame is present
    mouths: torch.Tensor | None  # (B,T,3,M,M)
    positions: list[np.ndarray]  # per clip: positions in the track's frame list


class Scorer:
    """Loads a checkpoint once (the packaged default model when none is given) and scores
    any number of files with it."""

    def __init__(self, checkpoint: Checkpoint | str | Path | None = None, device: str = "cpu", plan: str | None = None):
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(resolve_checkpoint(checkpoint))
        self.checkpoint = checkpoint
        config = self.checkpoint.config
        self.device = torch.device(device)
        self.model_config = ModelConfig.from_dict(config["model"])
        self.model = create_model(self.model_config, pretrained=False)  # the checkpoint holds every weight
        self.model.load_state_dict(self.checkpoint.state_dict, strict=True)
        self.model.eval().to(self.device)
        extract = ExtractConfig.from_dict(config["extract"])
        extract = replace(extract, plan=plan or extract.plan, detector=replace(extract.detector, device=device))
        self.extract_config = extract
        self.extractor = FaceExtractor(extract)
        self.aggregation = AggregationConfig.from_dict(config["aggregation"])
        self.model_info = {
            "name": config.get("name", Path(self.checkpoint.path).stem),
            "version": config.get("version", ""),
            "sha256": self.checkpoint.sha256,
        }
        self.untrained = bool(config.get("training", {}).get("untrained", False))
        # a checkpoint can carry one caveat its author wants on every verdict (the default model does)
        self.model_warning = str(config.get("card", {}).get("warning", "")) or None

    # -- public API -------------------------------------------------------------------

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
        start = time.perf_counter()
        try:
            faces = self.extractor.extract_image(path) if kind == "image" else self.extractor.extract_video(path)
        except MediaError as error:
            return self._verdict(path, kind, "unsupported", error=str(error), timings=_since(start))
        except DecodeError as error:
            return self._verdict(path, kind, "unreadable", error=str(error), timings=_since(start))
        timings = {"decode": faces.timings.get("decode", 0.0), "detect": faces.timings.get("detect", 0.0)}
        media = _media_summary(faces)
        audio_info, audio = self._audio(path, faces)
        if not faces.faces:
            timings["total"] = time.perf_counter() - start
            return self._verdict(path, kind, "no_face", media=media, audio=audio_info, warnings=faces.warnings, timings=timings)

        model_start = time.perf_counter()
        evidence, tracks, frame_probs = [], [], {}
        for face in faces.faces:
            track_result = self._score_track(face, faces, audio)
            evidence.append(track_result["evidence"])
            tracks.append(track_result["record"])
            for frame_index, prob in track_result["frame_probs"].items():
                frame_probs[frame_index] = max(prob, frame_probs.get(frame_index, 0.0))
        decision = aggregate(evidence, self.aggregation)
        timings["model"] = time.perf_counter() - model_start
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
                                warnings=faces.warnings, timings={k: round(v, 4) for k, v in timings.items()})
        verdict.score = decision.score
        verdict.logit = decision.logit
        verdict.label = decision.label
        return verdict

    def _audio(self, path: Path, faces: MediaFaces) -> tuple[dict, AudioTrack | None]:
        """Audio for the sync head, and what the verdict says about it."""
        if faces.kind != "video":
            return {"present": False, "used": False, "reason": "still image"}, None
        info: VideoInfo = faces.info
        if not info.has_audio:
            return {"present": False, "used": False, "reason": "the video has no audio stream"}, None
        if not self.model_config.sync:
            return {"present": True, "used": False, "reason": "the model has no sync head"}, None
        plan = parse_plan(faces.plan)
        if plan.kind not in ("clips", "all") or plan.stride != 1:
            return {"present": True, "used": False, "reason": f"lip sync needs consecutive frames; plan is {faces.plan}"}, None
        try:
            audio = read_audio(path, self.model_config.audio_sample_rate)
        except DecodeError as error:
            return {"present": True, "used": False, "reason": f"audio could not be decoded: {error}"}, None
        return {"present": True, "used": False, "reason": None}, audio

    def _score_track(self, face: FaceClip, faces: MediaFaces, audio: AudioTrack | None) -> dict:
        track = face.track
        clip_logits: list[float] = []
        frame_logits = np.zeros(len(track), np.float64)
        syncs = []
        for batch in self._clip_batches(face, faces):
            audio_batch, fps, audio_mask = self._audio_batch(batch, audio, faces)
            with torch.inference_mode():
                out = self.model(
                    batch.frames.to(self.device), batch.times.to(self.device), batch.mask.to(self.device),
                    mouths=None if batch.mouths is None else batch.mouths.to(self.device),
                    audio=audio_batch, fps=fps, audio_mask=audio_mask,
                )
            clip_logits += out.clip_logit.float().cpu().tolist()
            logits = out.frame_logits.float().cpu().numpy()
            for b, positions in enumerate(batch.positions):
                frame_logits[positions] = logits[b, : len(positions)]
            if out.sync is not None:
                for b in range(len(batch.positions)):
                    if bool(out.used_sync[b]):
                        syncs.append((float(out.sync.confidence[b]), int(out.sync.offset[b])))
        temperature, clip = self.aggregation.temperature, self.aggregation.prob_clip
        record = {
            "id": track.track_id,
            "frames": len(track),
            "frame_indices": track.frame_indices.tolist(),
            "box_first": np.round(track.boxes[0], 1).tolist(),
            "box_median": np.round(np.median(track.boxes, axis=0), 1).tolist(),
            "box_last": np.round(track.boxes[-1], 1).tolist(),
            "face_px": round(track.size, 1),
            "clips": len(clip_logits),
        }
        if syncs:
            confidence, offset = max(syncs)
            record["sync"] = {"confidence": round(confidence, 4), "offset_frames": offset}
        return {
            "evidence": TrackEvidence(track.track_id, clip_logits, len(track), track.size),
            "record": record,
            "frame_probs": {
                int(i): calibrated_probability(float(l), temperature, clip)
                for i, l in zip(track.frame_indices, frame_logits)
            },
        }

    def _clip_batches(self, face: FaceClip, faces: MediaFaces) -> Iterator[_ClipBatch]:
        """The track's frames grouped by the plan's clips; other plans are cut into runs of
        at most ``MAX_CLIP_FRAMES``, so model memory does not grow with a video's length."""
        track = face.track
        plan = parse_plan(faces.plan) if faces.kind == "video" else None
        if plan is not None and plan.kind == "clips":
            groups = plan.clip_groups(faces.info.num_frames)
            clips = [c for c in (np.flatnonzero(np.isin(track.frame_indices, g)) for g in groups) if c.size]
        else:
            clips = np.array_split(np.arange(len(track)), -(-len(track) // MAX_CLIP_FRAMES))
        per_batch = max(1, FRAMES_PER_BATCH // max(len(c) for c in clips))
        for start in range(0, len(clips), per_batch):
            yield self._pad(face, clips[start : start + per_batch])

    def _pad(self, face: FaceClip, clips: list[np.ndarray]) -> _ClipBatch:
        length = max(len(c) for c in clips)
        size = self.model_config.input_size
        frames = torch.zeros((len(clips), length, 3, size, size))
        times = torch.zeros((len(clips), length))
        mask = torch.zeros((len(clips), length), dtype=torch.bool)
        use_mouths = self.model_config.sync and face.mouths is not None
        m = self.model_config.mouth_size
        mouths = torch.zeros((len(clips), length, 3, m, m)) if use_mouths else None
        for b, positions in enumerate(clips):
            n = len(positions)
            frames[b, :n] = _to_tensor(face.crops[positions], size)
            times[b, :n] = torch.as_tensor(face.track.timestamps[positions], dtype=torch.float32)
            mask[b, :n] = True
            if mouths is not None:
                mouths[b, :n] = _to_tensor(face.mouths[positions], m)
        return _ClipBatch(frames, times, mask, mouths, clips)

    def _audio_batch(self, batch: _ClipBatch, audio: AudioTrack | None, faces: MediaFaces):
        if audio is None or batch.mouths is None:
            return None, None, None
        fps = float(faces.info.fps)
        rate = audio.sample_rate
        spans = []
        for b, positions in enumerate(batch.positions):
            t0 = float(batch.times[b, 0])
            t1 = float(batch.times[b, len(positions) - 1]) + 1.0 / fps
            spans.append(audio.window(t0, t1))
        length = max(len(s) for s in spans)
        samples = torch.zeros((len(spans), length))
        for b, span in enumerate(spans):
            samples[b, : len(span)] = torch.from_numpy(span)
        audio_mask = torch.tensor([len(s) > rate * 0.2 and np.abs(s).max() > 0 for s in spans])
        fps_tensor = torch.full((len(spans),), fps)
        return samples.to(self.device), fps_tensor.to(self.device), audio_mask.to(self.device)


def _to_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N,H,W,3) crops -> float (N,3,size,size) in [0,1]."""
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
    """Per sampled frame: its time and the highest face score on it (None: no face)."""
    return [
        {"frame": int(i), "time": round(float(t), 4), "score": frame_probs.get(int(i))}
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
