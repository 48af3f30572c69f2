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

Importing this package loads nothing but this file: each name comes from its module on first
use, and no torch loads before a file passes its probe.
"""
from importlib import import_module

# name -> the module that defines it; imported on first use (PEP 562), so importing a
# submodule such as ``heatmap_settings`` (the command line does) costs nothing more
_EXPORTS = {
    "AudioInput": "audio",
    "FRAMES_PER_BATCH": "batching",
    "EnsembleScorer": "ensemble_scorer",
    "build_scorer": "ensemble_scorer",
    "HeatmapOptions": "heatmaps",
    "ClipModel": "model",
    "MAX_CLIP_FRAMES": "scorer",
    "Extraction": "scorer",
    "Scorer": "scorer",
    "score_image": "scorer",
    "score_video": "scorer",
    "TrackResult": "verdict",
    "Verdict": "verdict",
    "VerdictBuilder": "verdict",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """The package's public names, each from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidfake.scoring' has no attribute {name!r}")
    return getattr(import_module(f"vidfake.scoring.{_EXPORTS[name]}"), name)
