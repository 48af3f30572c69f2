"""What placing clip starts on keyframes would save in decoding, on a labelled set (issue 29).

A clip plan (``clips:8x8``) starts its clips evenly over the video. Decoding a clip means
decoding from the keyframe before it: every reference frame between that keyframe (or the
previous clip) and the clip's start is decoded and thrown away. Moving each start to the
nearest keyframe within half the spacing of the starts would make those frames unneeded,
but it changes which frames are scored, so it is worth building only where it saves much.

For every video of a labels CSV (``vidfake eval``'s format, paths relative to it) this
reads the packet index only (no decoding) and counts, for the plan's starts as they are
and as they would be snapped:

- ``frames_before_clips``: frames between each clip's keyframe (or the previous clip's
  end) and its start, an upper bound on what is decoded only to reach the clip (the
  reader also skips non-reference frames, which this does not count);
- the median keyframe interval (GOP) and the share of clips that would move.

    python benchmarks/keyframe_placement.py data/media/labels_wild-dev.csv --plan clips:8x8

writes ``benchmarks/results/keyframe_placement.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from vidfake.extract.sampling import SamplingPlan, parse_plan
from vidfake.extract.video import DecodeError, probe_packets

from common import git_state

RESULTS = Path(__file__).resolve().parent / "results"


def frames_before_clips(starts: np.ndarray, keyframes: np.ndarray, clip_span: int) -> int:
    """Frames decoded only to reach the clips: from each start's keyframe, or from the
    end of the clip before when that is later, up to the start."""
    total, decoded_to = 0, -1
    for start in sorted(int(s) for s in starts):
        keyframe = int(keyframes[np.searchsorted(keyframes, start, "right") - 1])
        total += max(0, start - max(keyframe, decoded_to + 1))
        decoded_to = max(decoded_to, start + clip_span - 1)
    return total


def snapped_starts(starts: np.ndarray, keyframes: np.ndarray, num_frames: int, clip_span: int) -> np.ndarray:
    """Each start moved to the nearest keyframe within half the spacing of the starts
    (where the clip still fits), or left where it is."""
    spacing = float(np.diff(starts).min()) if len(starts) > 1 else float(num_frames)
    usable = keyframes[keyframes <= num_frames - clip_span]
    moved = []
    for start in starts.tolist():
        near = usable[np.abs(usable - start) <= spacing / 2]
        moved.append(int(near[np.argmin(np.abs(near - start))]) if len(near) else start)
    return np.unique(np.asarray(moved, dtype=np.int64))


def video_row(path: Path, plan: SamplingPlan) -> dict | None:
    """The counts for one video, or None when it cannot be probed or is shorter than a clip."""
    try:
        info, index = probe_packets(path)
    except DecodeError:
        return None
    span = plan.clip_span
    starts = np.asarray([group[0] for group in plan.clip_groups(info.num_frames)], dtype=np.int64)
    if info.num_frames < span or not len(starts):
        return None
    keyframes = np.asarray(index.keyframes, dtype=np.int64)
    moved = snapped_starts(starts, keyframes, info.num_frames, span)
    gop = float(np.median(np.diff(keyframes))) if len(keyframes) > 1 else float(info.num_frames)
    return {"frames": info.num_frames, "gop": gop,
            "frames_before_clips": frames_before_clips(starts, keyframes, span),
            "frames_before_clips_snapped": frames_before_clips(moved, keyframes, span),
            "clips_moved": int(len(set(starts.tolist()) - set(moved.tolist())))}


def summarize(rows: list[dict], plan: SamplingPlan) -> dict:
    """Medians, means and shares over the videos."""
    gops = [r["gop"] for r in rows]
    now = [r["frames_before_clips"] for r in rows]
    saved = [r["frames_before_clips"] - r["frames_before_clips_snapped"] for r in rows]
    clips = sum(len(plan.clip_groups(r["frames"])) for r in rows)
    return {
        "videos": len(rows),
        "gop_median": statistics.median(gops),
        "gop_quartiles": [float(np.percentile(gops, 25)), float(np.percentile(gops, 75))],
        "share_gop_at_most_30": round(float(np.mean([g <= 30 for g in gops])), 3),
        "share_gop_at_most_60": round(float(np.mean([g <= 60 for g in gops])), 3),
        "frames_before_clips_median": statistics.median(now),
        "frames_before_clips_mean": round(statistics.fmean(now), 1),
        "saved_by_snapping_median": statistics.median(saved),
        "saved_by_snapping_mean": round(statistics.fmean(saved), 1),
        "share_videos_saving_any": round(float(np.mean([s > 0 for s in saved])), 3),
        "share_clips_moved": round(sum(r["clips_moved"] for r in rows) / clips, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("labels", type=Path, help="labels CSV with a path column, paths relative to it")
    parser.add_argument("--plan", default="clips:8x8", help="a clips plan (default: the default model's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "keyframe_placement.json")
    args = parser.parse_args(argv)
    plan = parse_plan(args.plan)
    if plan.kind != "clips":
        parser.error(f"--plan must be a clips plan, got {args.plan}")
    with args.labels.open(newline="") as handle:
        paths = [args.labels.parent / row["path"] for row in csv.DictReader(handle)]
    rows = [row for row in (video_row(path, plan) for path in paths) if row is not None]
    if not rows:
        print(f"no video in {args.labels} could be probed", file=sys.stderr)
        return 2
    results = {"git": git_state(), "labels": str(args.labels), "plan": str(plan),
               "unreadable_or_short": len(paths) - len(rows), **summarize(rows, plan)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "git"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
