"""Score a video or an image: extract faces, run the model on each face track, aggregate.

The one place a file is scored: the CLI, the service and the evaluation all call it.

- ``scorer``: ``Scorer``, the stages composed (``read_audio``, ``extract``, ``run_clips``,
  ``run_track``, then the verdict), and the one-call ``score_video`` / ``score_image``;
- ``model``: ``ClipModel``, the checkpoint's model, built on first use and run on clips;
- ``batching``: clips of a face track into padded model inputs (pure functions);
- ``audio``: the sound the lip-sync head gets, and why it gets none;
- ``heatmaps``: where the model sees the forgery on each track's most suspicious frames
  (mask head or Grad-CAM), drawn by ``heatmap_png``;
- ``verdict``: ``Verdict``, a track's ``TrackResult``, the timeline, and
  ``VerdictBuilder``, which aggregates the tracks into the verdict;
- ``ensemble``: ``EnsembleScorer``, several checkpoints on one file (extraction shared
  where their settings agree), and ``build_scorer``, the scorer for ``--checkpoint``s;
  ``ensemble_verdict`` combines the members' results.

Importing this package loads no torch: that waits for a file that passes its probe.
"""
from vidfake.scoring.audio import AudioInput
from vidfake.scoring.batching import FRAMES_PER_BATCH
from vidfake.scoring.heatmaps import HeatmapOptions
from vidfake.scoring.ensemble import EnsembleScorer, build_scorer
from vidfake.scoring.model import ClipModel
from vidfake.scoring.scorer import MAX_CLIP_FRAMES, Extraction, Scorer, score_image, score_video
from vidfake.scoring.verdict import TrackResult, Verdict, VerdictBuilder

__all__ = [
    "FRAMES_PER_BATCH",
    "HeatmapOptions",
    "MAX_CLIP_FRAMES",
    "AudioInput",
    "ClipModel",
    "EnsembleScorer",
    "Extraction",
    "Scorer",
    "TrackResult",
    "Verdict",
    "VerdictBuilder",
    "build_scorer",
    "score_image",
    "score_video",
]
