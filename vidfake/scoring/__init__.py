"""Score a video or an image: extract faces, run the model on each face track, aggregate.

The one place a file is scored: the CLI, the service and the evaluation all call it.

- ``scorer``: ``Scorer``, the stages composed (``read_audio``, ``extract``, ``run_clips``,
  ``run_track``, then the verdict), and the one-call ``score_video`` / ``score_image``;
- ``model``: ``ClipModel``, the checkpoint's model, built on first use and run on clips;
- ``batching``: clips of a face track into padded model inputs (pure functions);
- ``audio``: the sound the lip-sync head gets, and why it gets none;
- ``verdict``: ``Verdict``, a track's ``TrackResult``, the timeline, and
  ``VerdictBuilder``, which aggregates the tracks into the verdict.

Importing this package loads no torch: that waits for a file that passes its probe.
"""
from vidfake.scoring.audio import AudioInput
from vidfake.scoring.batching import FRAMES_PER_BATCH
from vidfake.scoring.model import ClipModel
from vidfake.scoring.scorer import MAX_CLIP_FRAMES, Extraction, Scorer, score_image, score_video
from vidfake.scoring.verdict import TrackResult, Verdict, VerdictBuilder

__all__ = [
    "FRAMES_PER_BATCH",
    "MAX_CLIP_FRAMES",
    "AudioInput",
    "ClipModel",
    "Extraction",
    "Scorer",
    "TrackResult",
    "Verdict",
    "VerdictBuilder",
    "score_image",
    "score_video",
]
