"""Write ``vidfake score``'s results to files: CSV, JSONL, DFDC's submission format and
per-video timeline plots.

It lives in ``eval`` because eval calls scoring, never the reverse: the verdicts come in
as arguments and ``Verdict`` is imported for type checking only, so importing this
module (like all of ``vidfake.eval``) costs no torch.
"""
from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidfake.eval.submission import write_dfdc_submission

if TYPE_CHECKING:
    from vidfake.scoring import Verdict


def write_results(verdicts: Sequence[Verdict], csv_or_jsonl: Path | None = None, submission: Path | None = None) -> None:
    """Write the verdicts to ``csv_or_jsonl`` (``.jsonl``: one full verdict a line;
    otherwise CSV with path, score, label, status) and/or a DFDC ``submission`` file."""
    if csv_or_jsonl is not None:
        if csv_or_jsonl.suffix.lower() == ".jsonl":
            with csv_or_jsonl.open("w", encoding="utf-8") as handle:
                for verdict in verdicts:
                    handle.write(json.dumps(verdict.to_dict()) + "\n")
        else:
            with csv_or_jsonl.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["path", "score", "label", "status"])
                for v in verdicts:
                    writer.writerow([v.path, "" if v.score is None else f"{v.score:.6f}", v.label or "", v.status])
    if submission is not None:
        write_submission(verdicts, submission)


def write_submission(verdicts: Sequence[Verdict], path: Path) -> None:
    """DFDC's ``filename,label``. Files without a score (no face, unreadable) are left
    out and named on stderr: no score is invented for them."""
    missing = [v.path for v in verdicts if v.score is None]
    write_dfdc_submission(path, [(Path(v.path).name, v.score) for v in verdicts if v.score is not None])
    if missing:
        print(f"submission: {len(missing)} file(s) without a score left out: {', '.join(missing[:5])}", file=sys.stderr)


def write_timelines(verdicts: Sequence[Verdict], folder: Path) -> list[Path]:
    """One per-frame score timeline PNG per scored video (``<name>_timeline.png``)."""
    from vidfake.eval.plots import plot_timeline

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for v in verdicts:
        if v.kind != "video" or v.status != "ok":
            continue
        times = [point["time"] for point in v.timeline]
        scores = [point["score"] for point in v.timeline]
        segments = [point.get("segment", 0) for point in v.timeline]
        title = f"{Path(v.path).name}: {v.label} ({v.score:.3f})"
        written.append(plot_timeline(times, scores, folder / f"{Path(v.path).stem}_timeline.png", v.threshold, title,
                                     segments=segments))
    return written
