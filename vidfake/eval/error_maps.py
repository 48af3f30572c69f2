"""Heat maps of an evaluation's worst errors, for ``report.md``: where the model looked on
the real files it flagged most confidently and on the fakes it passed most confidently.

The few files are scored again with heat maps (``Scorer.score_video(..., heatmaps=...)``):
the same checkpoint scores them exactly as before, so the pictures belong to the scores in
the predictions. The scorer comes in as an argument and ``vidfake.scoring`` is imported
inside the function, so importing this module (like all of ``vidfake.eval``) costs no torch.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

ERROR_KINDS = {"false_positive": "False positive", "false_negative": "False negative"}


def draw_error_maps(scorer, errors: Sequence[dict], folder: Path, frames_per_track: int = 3,
                    progress: bool = True) -> list[dict]:
    """Score each error again with heat maps drawn into ``folder``.

    Args:
        scorer: a ``vidfake.scoring.Scorer`` (the checkpoint that made the predictions).
        errors: prediction rows with ``path``, ``kind`` (video/image), ``score``, ``label``
            and ``error`` (a key of ``ERROR_KINDS``), worst first.
        folder: where the pictures go (file names start with each file's name).
        frames_per_track: pictures per face track.

    Returns:
        One entry per error: its row fields, the status of the new scoring, the method and
        the pictures (``file`` relative to nothing: as written under ``folder``; track,
        frame, time, score, peak, box).
    """
    from tqdm import tqdm

    from vidfake.scoring.heatmaps import options_for

    options = options_for([Path(e["path"]) for e in errors], folder, frames_per_track)
    entries = []
    for error in tqdm(errors, unit="file", desc="heat maps", disable=not progress or not errors, dynamic_ncols=True):
        path = Path(error["path"])
        verdict = scorer.score(path, error.get("kind") or "video", options[path])
        pictures, methods = [], []
        for track in verdict.tracks:
            maps = track.get("heatmaps")
            if maps:
                methods.append(maps["label"])
                pictures += [{"track": track["id"], **entry} for entry in maps["frames"]]
        entries.append({**{k: error.get(k) for k in ("error", "path", "score", "label")}, "status": verdict.status,
                        "method": "; ".join(dict.fromkeys(methods)), "maps": pictures})
    return entries
