"""``Scorer``: the stages of scoring one file, composed into its ``Verdict``.

probe -> ``read_audio`` -> ``extract`` (each clip of a face track goes through the model,
``run_clips``, as soon as extraction has cut it) -> ``run_track`` for each final track
-> ``VerdictBuilder.build``. Each stage is a public method, so a benchmark or a test
times or watches one by wrapping it, not by patching internals.

The CLI, the service and the evaluation all call it, so a file is scored the same way
everywhere. Every setting (sampling plan, face detector, crop, model, aggregation rule,
temperature, threshold) comes from the checkpoint; nothing here has numbers of its own.

torch (like the model and the face detector) is loaded only when a file passes its probe:
an unreadable file is answered in a fraction of a second, not after seconds of imports.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vidfake.checkpoints.default import checkpoint_header
from vidfake.checkpoints.format import Checkpoint, CheckpointHeader
from vidfake.extract.failures import file_failure
from vidfake.extract.pipeline import CropSink, ExtractConfig, FaceClip, FaceExtractor, MediaFaces
from vidfake.extract.video import AudioTrack, VideoInfo, VideoProbe
from vidfake.scoring.audio import AudioInput, sync_audio
from vidfake.scoring.clip_stream import ClipResult, ClipStream, StreamedClip
from vidfake.scoring.heatmaps import HeatmapOptions, draw_heatmaps
from vidfake.scoring.model import ClipModel
from vidfake.scoring.verdict import TrackResult, Verdict, VerdictBuilder, track_result
from vidfake.utils.memory import prefault_heap, reuse_freed_memory

TYPICAL_UPLOAD = (1920, 1080, 300)  # width, height, frames: a 10 s full-HD clip, the frames ``load`` makes room for
MAX_CLIP_FRAMES = 32  # plans without clips (uniform, every, all) are cut into clips this long
# Crops reach the model as extraction cuts them (``ClipStream``): the crops held at once are
# one decoded segment's plus a bounded buffer per face, however long the video.

RunClips = Callable[[list[StreamedClip]], list[ClipResult]]


@dataclass
class Extraction:
    """What ``Scorer.extract`` found: the faces, and the stream their crops went through
    (the model's results wait there, per track, for ``Scorer.run_track``)."""

    faces: MediaFaces
    stream: ClipStream
    peak_held: int  # the most crops a search's stream held at once (what bounds scoring memory)


class Scorer:
    """Scores any number of files with one checkpoint (the packaged default model when
    none is given). Construction reads only the checkpoint's config (and hashes its file,
    once); the model and the face detector load on the first file that passes its probe
    (or at ``load()``), so a run of only unreadable files never loads either."""

    draws_heatmaps = True  # mask head or Grad-CAM (``vidfake.scoring.heatmaps``)

    def __init__(self, checkpoint: Checkpoint | str | Path | None = None, device: str = "cpu", plan: str | None = None,
                 keyframe_interval: int | None = None):
        loaded = checkpoint if isinstance(checkpoint, Checkpoint) else None
        if loaded is not None:
            self.header = CheckpointHeader(loaded.config, loaded.path, loaded.sha256)
        else:
            self.header = checkpoint_header(checkpoint)
        settings = self.header.settings
        self.model_config = settings.model
        self.clip_model = ClipModel(self.header, self.model_config, device, loaded)
        self.extract_config = scoring_extract_config(settings.extract, device, plan, keyframe_interval)
        self.extractor = FaceExtractor(self.extract_config)
        self.plan = self.extractor.plan  # parsed once: extraction, the audio check, the clip streams, the timeline
        self.aggregation = settings.aggregation
        self.model_info = {"name": settings.display_name(self.header.path), "version": settings.version,
                           "sha256": self.header.sha256, **overrides_record(plan, keyframe_interval)}
        self.untrained = settings.untrained
        # a checkpoint can carry one caveat its author wants on every verdict (the default model does)
        self.model_warning = settings.warning
        self.load_seconds: float | None = None  # set by load()
        self.verdicts = VerdictBuilder(self.aggregation, self.model_info, self.model_config.sync_window,
                                       self.untrained, self.model_warning)

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint with its weights (read on first use; its file is not hashed again)."""
        return self.clip_model.checkpoint

    @property
    def model(self):
        """The model with the checkpoint's weights, built on first use."""
        return self.clip_model.module

    def load(self) -> Scorer:
        """Load the model, its scoring copy and the face detector now rather than on the
        first readable file, and prepare memory for the files (``prepare_memory``).
        ``load_seconds`` says how long it took; a file's clock never includes it."""
        if self.load_seconds is None:
            began = time.perf_counter()
            _ = self.clip_model.scoring_module, self.extractor.detector
            prepare_memory([self.extractor])
            self.load_seconds = time.perf_counter() - began
        return self

    def score(self, path: str | Path, kind: str, heatmaps: HeatmapOptions | None = None) -> Verdict:
        """Score one file of ``kind`` (``"video"`` or ``"image"``): the one entry point every
        caller with a mixed list uses; failures and ``heatmaps`` as in ``score_video``."""
        if kind not in ("video", "image"):
            raise ValueError(f"kind must be 'video' or 'image', got {kind!r}")
        return self._score(Path(path), kind, heatmaps)

    def score_video(self, path: str | Path, heatmaps: HeatmapOptions | None = None) -> Verdict:
        """Score one video; a file that cannot be scored gets a verdict saying why (``status``,
        ``error``), never an exception. ``heatmaps``: also draw heat maps (``scoring.heatmaps``)."""
        return self._score(Path(path), "video", heatmaps)

    def score_image(self, path: str | Path, heatmaps: HeatmapOptions | None = None) -> Verdict:
        """Score one still image as a one-frame clip; failures and ``heatmaps`` as in ``score_video``."""
        return self._score(Path(path), "image", heatmaps)

    # -- stages -----------------------------------------------------------------------

    def read_audio(self, path: Path, info: VideoInfo | None) -> AudioInput:
        """The sound for the sync head (``info`` None: an image) and the verdict's record of it."""
        return sync_audio(path, info, self.plan, self.extract_config.plan, sync=self.model_config.sync,
                          sample_rate=self.model_config.audio_sample_rate)

    def extract(self, path: Path, kind: str, probed: VideoProbe | None, run_clips: RunClips) -> Extraction:
        """Find and cut the faces of ``path`` (``probed``: its ``extractor.probe``, None for an
        image), each track's crops through ``run_clips`` clip by clip as they are cut; of a
        video searched again turned, the stream of the search whose faces are kept is returned."""
        if kind == "image":
            faces = self.extractor.extract_image(path)
            stream = ClipStream(run_clips, None, 1, MAX_CLIP_FRAMES)
            for face in faces.faces:
                stream.add(face.source_id, face.track.frame_indices, face.track.timestamps, face.crops, face.mouths)
            return Extraction(faces, stream, stream.peak_held)
        streams: dict[int, ClipStream] = {}  # one per search (upright, then turned ones)

        def sink_for(turn: int) -> CropSink:
            streams[turn] = ClipStream(run_clips, self.plan, probed[0].num_frames, MAX_CLIP_FRAMES)
            return streams[turn].add

        faces = self.extractor.extract_video(path, probed, sink_for)
        return Extraction(faces, streams[faces.rotation_retry], max(s.peak_held for s in streams.values()))

    def run_track(self, face: FaceClip, stream: ClipStream) -> TrackResult | None:
        """The model on one final track's last clips, and the track's result from all of
        its clips (None when no clip of it survived the tracks' final merge)."""
        return track_result(face, stream.finish(face.source_id), self.aggregation)

    def run_clips(self, clips: list[StreamedClip], audio: AudioTrack | None, fps: float | None) -> list[ClipResult]:
        """The model on complete clips of one track, one result each (no ``audio``/``fps``: no sound)."""
        return self.clip_model.run(clips, audio, fps)

    # -- composition ------------------------------------------------------------------

    def _score(self, path: Path, kind: str, heatmaps: HeatmapOptions | None = None) -> Verdict:
        """The per-file safety net: whatever goes wrong with this file becomes its verdict's
        status (``file_failure``'s rule), so no file can stop a run. Loading, when this file
        is the first to need the model, is its ``timings.load``, left out of its ``total``."""
        start = time.perf_counter()
        try:
            probed = self.extractor.probe(path, kind)  # size, container, streams: before any model loads
        except Exception as error:  # one bad file must never cost the rest of a batch
            return self._failed(path, kind, error, start)
        # loading is outside the net: a checkpoint that cannot be built fails the run, not this file
        load_s = None if self.load_seconds is not None else self.load().load_seconds
        start += load_s or 0.0
        try:
            verdict = self._score_file(path, kind, start, probed, heatmaps)
        except Exception as error:  # one bad file must never cost the rest of a batch
            verdict = self._failed(path, kind, error, start)
        if load_s is not None:
            verdict.timings["load"] = round(load_s, 4)
        return verdict

    def _failed(self, path: Path, kind: str, error: Exception, start: float) -> Verdict:
        failure = file_failure(error, path)
        timings = {"total": round(time.perf_counter() - start, 4)}
        return self.verdicts.new(path, kind, failure.status, error=failure.reason, timings=timings)

    def _score_file(self, path: Path, kind: str, start: float, probed: VideoProbe | None,
                    heatmaps: HeatmapOptions | None = None) -> Verdict:
        info = probed[0] if kind == "video" else None
        audio = self.read_audio(path, info)
        model_s = 0.0

        def run_clips(clips: list[StreamedClip]) -> list[ClipResult]:
            nonlocal model_s
            began = time.perf_counter()
            results = self.run_clips(clips, audio.track, None if info is None else info.fps)
            model_s += time.perf_counter() - began
            return results

        extraction = self.extract(path, kind, probed, run_clips)
        tracks = [self.run_track(face, extraction.stream) for face in extraction.faces.faces]
        if heatmaps is not None:
            draw_heatmaps(self, path, kind, probed, extraction.faces, tracks, heatmaps)
        return self.verdicts.build(path, kind, extraction.faces, [t for t in tracks if t is not None], audio,
                                   self.plan if kind == "video" else None, model_s, start)


def scoring_extract_config(extract: ExtractConfig, device: str, plan: str | None = None,
                           keyframe_interval: int | None = None) -> ExtractConfig:
    """The checkpoint's extraction settings on ``device``, with a user's ``plan`` and face
    search ``keyframe_interval`` in place of its own where given (``vidfake score --help``
    says what each costs)."""
    if keyframe_interval is not None and keyframe_interval < 1:
        raise ValueError(f"keyframe_interval must be at least 1, got {keyframe_interval}")
    detector = replace(extract.face_detector, device=device,
                       keyframe_interval=keyframe_interval or extract.face_detector.keyframe_interval)
    return replace(extract, plan=plan or extract.plan, face_detector=detector)


def overrides_record(plan: str | None, keyframe_interval: int | None) -> dict:
    """``{"overrides": {...}}`` when the user's plan or face search replaced the model's
    (every verdict's ``model`` then says how it was made), else ``{}``."""
    given = {key: value for key, value in (("plan", plan), ("keyframe_interval", keyframe_interval)) if value}
    return {"overrides": given} if given else {}


def prepare_memory(extractors: list[FaceExtractor]) -> None:
    """Make this process keep large freed buffers for the next file, and fault in once the
    frames the largest of ``extractors`` holds for a 10 s full-HD clip
    (``vidfake.utils.memory``), so the first file costs little more than the next ones."""
    reuse_freed_memory()
    prefault_heap(max(extractor.segment_bytes(*TYPICAL_UPLOAD) for extractor in extractors))


def score_video(path: str | Path, checkpoint: str | Path | Checkpoint | None = None, device: str = "cpu") -> Verdict:
    """Score one video with ``checkpoint`` or the default model (loads it on every call;
    use ``Scorer`` for many files)."""
    return Scorer(checkpoint, device).score_video(path)


def score_image(path: str | Path, checkpoint: str | Path | Checkpoint | None = None, device: str = "cpu") -> Verdict:
    """Score one still image as a one-frame clip."""
    return Scorer(checkpoint, device).score_image(path)
