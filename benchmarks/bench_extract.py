"""CPU benchmark of face extraction: decoding, detection, end to end, against a DFDC-style baseline.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/bench_extract.py                 # full run (about 10 min on 2 idle cores)
    .venv/bin/python benchmarks/bench_extract.py --quick         # 1 repetition, no synthetic clip
    .venv/bin/python benchmarks/bench_extract.py --out benchmarks/results/extract_cpu.json

It writes one JSON file (default ``benchmarks/results/extract_cpu.json``) and prints a
short table. What is measured:

1. Decode throughput per backend (decord, PyAV): frames/s reading every frame in order,
   and reading the 32-frame uniform plan (``vidfake.extract.sampling.uniform(32)``).
2. Face detection cost per frame at 1080p, 720p and 360p with the default detector
   (detection on a copy whose long side is at most 640 px), the downscale timed on its
   own, and full-resolution 1080p detection (``max_side=1920``) for comparison.
3. End to end: ``FaceExtractor(ExtractConfig()).extract_video(path)`` per clip, one
   warm-up and then ``--reps`` runs; median seconds and the per-stage timings it reports.
   The target is at most 1.5 s per clip.
4. A baseline in the style of the DFDC winner's inference: decode every frame in order
   (PyAV standing in for OpenCV's grab/retrieve), convert only the 32 wanted frames to
   RGB, run facenet-pytorch MTCNN (thresholds 0.85/0.95/0.95) frame by frame on a
   half-size copy, cut crops with a third of the box added on each side.
5. Face recall: per clip, the fraction of sampled frames with at least one face for us
   and for the baseline, and the frames (and faces) the baseline found but we did not;
   each face we missed is re-checked with a full detector search on its frame, to tell
   a detector miss from a face lost by the keyframe scheme or the tracker.
6. Unless ``--quick``, variants (``VARIANTS``) timed the same way, with their recall:
   detection on every sampled frame (what the keyframe scheme saves), a looser tracker
   link, and two faster detectors: a full search on every 8th sampled frame instead of
   every 4th, and a 480 px detection copy instead of 640.

Options: ``--reps N`` timed runs per measurement (default 3; ``--quick`` makes it 1),
``--baseline-reps N`` for the baseline alone (default: the same as ``--reps``) and
``--threads N`` for torch, both sides (default: every core). On a host where another job
holds cores, ``--threads 1`` keeps the comparison fair: torch's threads wait on each other
when one of them is starved, which slows the frame-by-frame baseline far more than vidfake.

Clips are read from ``<repo>/../shared/fixtures/videos`` (skipped with a message if
absent); a synthetic 10 s 1080p clip (textured panning background, scikit-image's
astronaut moving across) is written to a temporary folder unless ``--quick``.

Timings are wall-clock on a shared machine: the JSON records, before and after each
section, the load average and the "effective cores" (throughput of two busy processes
relative to one; 2.0 on an idle 2-core machine, near 1 when the host is contended), so a
noisy run can be recognised. It also records the git commit the figures belong to, and
the CPU-seconds of each side's median run: their ratio (``cpu_speedup_vs_baseline``)
moves far less with other jobs on the host than the wall-clock one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from vidfake.extract.detect import FaceDetector, FaceDetectorConfig, detection_scale, downscale
from vidfake.extract.pipeline import ExtractConfig, FaceExtractor, MediaFaces
from vidfake.extract.sampling import uniform
from vidfake.extract.track import TrackerConfig
from vidfake.extract.video import open_video

from common import REPO, clip_info, git_state, load, machine_info

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "videos"
CLIPS = ["dfdc_lynaeydofd.mp4", "street_multiface.mp4", "dfdc_yhffcuhhjy.mp4"]
DETECTION_SOURCE = "dfdc_lynaeydofd.mp4"  # real 1080p frames with a face, for section 2
TARGET_S = 1.5
N_SAMPLED = 32
DETECT_BATCH = 16
IOU_MATCH = 0.3  # a baseline face counts as found by us if one of our boxes overlaps it this much

# Timed like the default configuration, besides it: what the keyframe scheme saves,
# and whether a looser tracker link keeps fast-moving faces the default drops.
VARIANTS = {
    "keyframe_interval=1": ExtractConfig(face_detector=FaceDetectorConfig(keyframe_interval=1)),
    "max_center_shift=3": ExtractConfig(tracker=TrackerConfig(max_center_shift=3.0)),
    # what a faster scoring path could take (issue 29): fewer full searches, a smaller detection copy
    "keyframe_interval=8": ExtractConfig(face_detector=FaceDetectorConfig(keyframe_interval=8)),
    "max_side=480": ExtractConfig(face_detector=FaceDetectorConfig(max_side=480)),
}

# scikit-image astronaut: the head region pasted into the synthetic clip, and the face
# box inside it (x1, y1, x2, y2 in the 512x512 image), as in vidfake/testing/media.py.
ASTRONAUT_HEAD = (146, 20, 306, 200)
ASTRONAUT_FACE = (181.0, 62.0, 268.0, 172.0)


# --------------------------------------------------------------------------- helpers


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _spin(n: int, results=None) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    elapsed = time.perf_counter() - start
    if results is not None:
        results.put(elapsed)
    return elapsed


def effective_cores(n: int = 10_000_000) -> float:
    """Throughput of ``cpu_count`` busy processes relative to one: a shared or throttled
    host can deliver fewer cores than it lists."""
    from multiprocessing import get_context

    ctx = get_context("fork")  # the children run plain Python only, never torch
    workers = os.cpu_count() or 1
    single = min(_spin(n) for _ in range(2))
    results = ctx.Queue()
    procs = [ctx.Process(target=_spin, args=(n, results)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    parallel = statistics.mean(results.get() for _ in procs)
    for proc in procs:
        proc.join()
    return round(workers * single / parallel, 2)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N,4) and ``b`` (M,4)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


# --------------------------------------------------------------------------- synthetic clip


def make_synthetic_clip(path: Path, seconds: float = 10.0, fps: int = 30, size=(1920, 1080)) -> dict:
    """A 1080p H.264 clip: a textured background panning, the astronaut's head (face about
    240 px tall) moving across it. Returns the file and per-frame ground-truth face boxes."""
    from skimage import data

    width, height = size
    n = int(round(seconds * fps))
    rng = np.random.default_rng(0)
    pad = 240
    coarse = rng.integers(0, 256, size=((height + pad) // 24, (width + pad) // 24, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((width + pad, height + pad), Image.BICUBIC)).astype(np.int16)
    y, x = np.mgrid[0 : height + pad, 0 : width + pad]
    texture += (12 * np.sin(x / 5.0) * np.sin(y / 4.0)).astype(np.int16)[..., None]  # fine detail costs bits
    texture = np.clip(texture, 0, 255).astype(np.uint8)

    hx1, hy1, hx2, hy2 = ASTRONAUT_HEAD
    patch_h = int(round(240 * (hy2 - hy1) / (ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])))
    crop = Image.fromarray(data.astronaut()[hy1:hy2, hx1:hx2])
    patch_w = int(round(crop.width * patch_h / crop.height))
    patch = np.asarray(crop.resize((patch_w, patch_h), Image.LANCZOS))
    sx, sy = patch_w / (hx2 - hx1), patch_h / (hy2 - hy1)
    face_in_patch = np.array([(ASTRONAUT_FACE[0] - hx1) * sx, (ASTRONAUT_FACE[1] - hy1) * sy,
                              (ASTRONAUT_FACE[2] - hx1) * sx, (ASTRONAUT_FACE[3] - hy1) * sy])

    boxes = np.zeros((n, 4))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(n):
            t = i / max(n - 1, 1)
            ox, oy = int(round(pad * t)), int(round(pad / 2 * (1 + np.sin(2 * np.pi * t))))
            frame = texture[oy : oy + height, ox : ox + width].copy()
            px = int(round(100 + (width - patch_w - 200) * t))
            py = int(round((height - patch_h) / 2 + 120 * np.sin(4 * np.pi * t)))
            frame[py : py + patch_h, px : px + patch_w] = patch
            boxes[i] = face_in_patch + [px, py, px, py]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return {"path": path, "face_boxes": boxes}


# --------------------------------------------------------------------------- 1. decode


def bench_decode(path: Path, backend: str, reps: int) -> dict:
    """Frames/s for every frame in order and for the uniform 32-frame plan (fresh reader
    per run; opening, which includes the packet probe, is timed on its own)."""
    opens, all_s, plan_s = [], [], []
    n = 0
    plan = np.zeros(0, dtype=np.int64)
    for _ in range(reps):
        t_open, reader = timed(open_video, path, backend)
        n = len(reader)
        start = time.perf_counter()
        count = sum(len(idx) for idx, _ in reader.iter_chunks(np.arange(n)))
        all_s.append(time.perf_counter() - start)
        reader.close()
        opens.append(t_open)
        assert count == n, f"{backend} decoded {count} of {n} frames"

        reader = open_video(path, backend)
        plan = uniform(N_SAMPLED).indices(n)
        t_plan, frames = timed(reader.read, plan)
        reader.close()
        plan_s.append(t_plan)
        assert len(frames) == len(plan)
    all_med, plan_med = statistics.median(all_s), statistics.median(plan_s)
    return {
        "open_s": round(statistics.median(opens), 4),
        "all_frames": {"frames": n, "seconds": round(all_med, 4), "fps": round(n / all_med, 1)},
        "uniform32": {"frames": len(plan), "seconds": round(plan_med, 4), "fps": round(len(plan) / plan_med, 1)},
    }


# --------------------------------------------------------------------------- 2. detection


def resize_batch(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR, reducing_gap=2.0))
                     for f in frames])


def bench_detection_at(detector: FaceDetector, frames: np.ndarray, reps: int) -> dict:
    """Per-frame cost of downscale + full MTCNN search + O-Net refine of the boxes found."""
    cfg = detector.config
    height, width = frames.shape[1:3]
    scale = detection_scale(width, height, cfg.max_side)
    detector.detect(downscale(frames[:2], cfg.max_side), scale)  # warm-up
    down_s, det_s, ref_s = [], [], []
    found = []
    for _ in range(reps):
        t_down, small = timed(downscale, frames, cfg.max_side)
        t_det, found = timed(detector.detect, small, scale)
        t_ref, _ = timed(detector.refine, small, scale, [f.boxes for f in found])
        down_s.append(t_down)
        det_s.append(t_det)
        ref_s.append(t_ref)
    n = len(frames)
    down, det, ref = (statistics.median(v) / n for v in (down_s, det_s, ref_s))
    return {
        "frame": f"{width}x{height}",
        "max_side": cfg.max_side,
        "detect_input": f"{small.shape[2]}x{small.shape[1]}",
        "batch": n,
        "downscale_ms_per_frame": round(1000 * down, 2),
        "detect_ms_per_frame": round(1000 * det, 2),
        "refine_ms_per_frame": round(1000 * ref, 2),
        "fps_downscale_plus_detect": round(1 / (down + det), 1),
        "faces_per_frame": round(float(np.mean([len(f) for f in found])), 2),
    }


def bench_detection(source: Path, reps: int) -> list[dict]:
    with open_video(source) as reader:
        frames = reader.read(np.linspace(0, len(reader) - 1, DETECT_BATCH).round().astype(int))
    default = FaceDetector(FaceDetectorConfig())
    rows = []
    for label, (w, h) in {"1080p": (1920, 1080), "720p": (1280, 720), "360p": (640, 360)}.items():
        batch = frames if (w, h) == frames.shape[2:0:-1] else resize_batch(frames, w, h)
        rows.append({"resolution": label, **bench_detection_at(default, batch, reps)})
    raw = FaceDetector(FaceDetectorConfig(max_side=1920))
    rows.append({"resolution": "1080p (full-res detection)", **bench_detection_at(raw, frames, reps)})
    return rows


# --------------------------------------------------------------------------- 3. end to end


def frame_boxes_ours(result: MediaFaces, detected_only: bool = False) -> dict[int, np.ndarray]:
    """Our face boxes per sampled frame index (from the final tracks)."""
    out: dict[int, list] = {int(i): [] for i in result.frame_indices}
    for face in result.faces:
        track = face.track
        for k, idx in enumerate(track.frame_indices.tolist()):
            if detected_only and not track.detected[k]:
                continue
            out.setdefault(int(idx), []).append(track.boxes[k])
    return {i: np.asarray(b, np.float64).reshape(-1, 4) for i, b in out.items()}


def time_extraction(extractor: FaceExtractor, path: Path, reps: int) -> tuple[list, tuple]:
    """One warm-up, then ``reps`` timed runs sorted by wall time; also the median run
    as ``(seconds, cpu_seconds, result)``."""
    extractor.extract_video(path)
    runs = []
    for _ in range(reps):
        cpu0 = time.process_time()
        seconds, result = timed(extractor.extract_video, path)
        runs.append((seconds, time.process_time() - cpu0, result))
    runs.sort(key=lambda r: r[0])
    return runs, runs[len(runs) // 2]


def bench_end_to_end(extractor: FaceExtractor, path: Path, reps: int) -> tuple[dict, MediaFaces]:
    runs, (seconds, cpu, result) = time_extraction(extractor, path, reps)
    with open_video(path) as reader:
        backend = reader.backend
    per_frame = frame_boxes_ours(result)
    detected = frame_boxes_ours(result, detected_only=True)
    n = len(result.frame_indices)
    return {
        "median_s": round(seconds, 3),
        "min_s": round(runs[0][0], 3),
        "runs_s": [round(r[0], 3) for r in runs],
        "cpu_s_of_median_run": round(cpu, 3),
        "stages_s": {k: round(v, 3) for k, v in result.timings.items()},
        "decoder": backend,
        "sampled_frames": n,
        "tracks": len(result.faces),
        "track_lengths": [len(f.track) for f in result.faces],
        "track_face_px": [round(f.track.size) for f in result.faces],
        "frames_with_face": sum(len(b) > 0 for b in per_frame.values()),
        "frames_with_detected_face": sum(len(b) > 0 for b in detected.values()),
        "frame_recall": round(sum(len(b) > 0 for b in per_frame.values()) / max(n, 1), 3),
        "warnings": result.warnings,
        "meets_target": seconds <= TARGET_S,
    }, result


# --------------------------------------------------------------------------- 4. baseline


class DFDCBaseline:
    """The DFDC winner's inference front end: decode all frames in order, keep 32 evenly
    spaced ones, MTCNN (0.85/0.95/0.95) per frame on a half-size copy, crops with a third
    of the box's width/height added on each side."""

    def __init__(self):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, device="cpu", thresholds=[0.85, 0.95, 0.95])

    def run(self, path: Path, wanted: np.ndarray | None = None) -> dict:
        timings = {"decode": 0.0, "detect": 0.0, "crop": 0.0}
        start, cpu_start = time.perf_counter(), time.process_time()
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # OpenCV's FFmpeg backend decodes with threads too
            if wanted is None:  # what the original did: the header's frame count
                wanted = np.linspace(0, stream.frames - 1, N_SAMPLED).astype(int)
            wanted_set, last = set(int(i) for i in wanted), int(max(wanted))
            frames: dict[int, np.ndarray] = {}
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted_set:
                    frames[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        timings["decode"] = time.perf_counter() - start

        boxes: dict[int, np.ndarray] = {}
        crops = 0
        for i, rgb in frames.items():
            t0 = time.perf_counter()
            image = Image.fromarray(rgb)
            image = image.resize(size=[s // 2 for s in image.size])
            found, _ = self.mtcnn.detect(image, landmarks=False)
            found = np.zeros((0, 4)) if found is None else np.asarray(found) * 2
            boxes[i] = found
            t1 = time.perf_counter()
            for x1, y1, x2, y2 in found.astype(int):
                p_w, p_h = (x2 - x1) // 3, (y2 - y1) // 3
                crop = rgb[max(y1 - p_h, 0) : y2 + p_h, max(x1 - p_w, 0) : x2 + p_w]
                crops += crop.size > 0
            timings["detect"] += t1 - t0
            timings["crop"] += time.perf_counter() - t1
        return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
                "timings": timings, "boxes": boxes, "crops": crops}


def bench_baseline(baseline: DFDCBaseline, path: Path, wanted: np.ndarray, reps: int) -> tuple[dict, dict]:
    runs = sorted((baseline.run(path, wanted) for _ in range(reps)), key=lambda r: r["seconds"])
    mid = runs[len(runs) // 2]
    n = len(mid["boxes"])
    with_face = sum(len(b) > 0 for b in mid["boxes"].values())
    return {
        "median_s": round(mid["seconds"], 3),
        "min_s": round(runs[0]["seconds"], 3),
        "runs_s": [round(r["seconds"], 3) for r in runs],
        "cpu_s_of_median_run": round(mid["cpu_seconds"], 3),
        "stages_s": {k: round(v, 3) for k, v in mid["timings"].items()},
        "sampled_frames": n,
        "faces_found": int(sum(len(b) for b in mid["boxes"].values())),
        "frames_with_face": with_face,
        "frame_recall": round(with_face / max(n, 1), 3),
    }, mid["boxes"]


# --------------------------------------------------------------------------- 5. recall


def compare_recall(ours: dict[int, np.ndarray], base: dict[int, np.ndarray], truth: dict[int, np.ndarray] | None) -> dict:
    """Frames and faces the baseline found that we did not (and, with ground truth, both
    sides' recall of the true faces)."""
    common = sorted(set(ours) & set(base))
    missed_frames = [i for i in common if len(base[i]) and not len(ours[i])]
    base_faces, missed_faces = 0, []
    for i in common:
        for box in base[i]:
            base_faces += 1
            if not len(ours[i]) or iou(box[None], ours[i]).max() < IOU_MATCH:
                missed_faces.append({"frame": i, "box": [round(float(v)) for v in box]})
    extra_frames = [i for i in common if len(ours[i]) and not len(base[i])]
    out = {
        "compared_frames": len(common),
        "frames_baseline_found_we_missed": missed_frames,
        "frames_we_found_baseline_missed": extra_frames,
        "baseline_faces": base_faces,
        "baseline_faces_we_missed": missed_faces,
        "no_loss_of_recall": not missed_frames and not missed_faces,
    }
    if truth is not None:
        for name, side in (("ours", ours), ("baseline", base)):
            hits = [len(side[i]) and iou(truth[i][None], side[i]).max() >= 0.5 for i in common]
            out[f"truth_recall_{name}"] = round(sum(bool(h) for h in hits) / max(len(common), 1), 3)
    return out


def diagnose_misses(detector: FaceDetector, path: Path, missed: list[dict]) -> dict:
    """For each baseline face we missed: its size at our detection scale, and whether a
    full detector search on that frame finds it (then tracking or the keyframe scheme
    lost it) or not (the detector on the downscaled copy cannot see it)."""
    if not missed:
        return {"found_by_full_search": 0, "not_found_by_detector": 0, "below_min_face_size": 0}
    frames_wanted = sorted({m["frame"] for m in missed})
    with open_video(path) as reader:
        frames = reader.read(frames_wanted)
        width, height = reader.info.width, reader.info.height
    scale = detection_scale(width, height, detector.config.max_side)
    found = dict(zip(frames_wanted, detector.detect(downscale(frames, detector.config.max_side), scale)))
    for m in missed:
        box = np.asarray(m["box"], np.float64)
        boxes = found[m["frame"]].boxes
        m["side_at_detection_scale_px"] = round(float(max(box[2] - box[0], box[3] - box[1]) * scale), 1)
        m["found_by_full_search"] = bool(len(boxes) and iou(box[None], boxes).max() >= IOU_MATCH)
    return {
        "found_by_full_search": sum(m["found_by_full_search"] for m in missed),
        "not_found_by_detector": sum(not m["found_by_full_search"] for m in missed),
        "below_min_face_size": sum(m["side_at_detection_scale_px"] < detector.config.min_face_size for m in missed),
    }


# --------------------------------------------------------------------------- driver


def clip_list(quick: bool, tmp: Path) -> list[dict]:
    clips = []
    for name in CLIPS:
        path = FIXTURES / name
        if path.exists():
            clips.append({"name": name, "path": path, "truth": None})
        else:
            print(f"skipping {name}: not found under {FIXTURES}")
    if not quick:
        start = time.perf_counter()
        synth = make_synthetic_clip(tmp / "synthetic_1080p_10s.mp4")
        print(f"wrote synthetic 1080p 10 s clip in {time.perf_counter() - start:.1f} s")
        truth = dict(enumerate(synth["face_boxes"]))
        clips.append({"name": "synthetic_1080p_10s.mp4", "path": synth["path"], "truth": truth})
    return clips


def run_section(title: str, fn, *args):
    print(f"[{time.strftime('%H:%M:%S')}] {title} ...", flush=True)
    before, cores = load(), effective_cores()
    start = time.perf_counter()
    result = fn(*args)
    wall = round(time.perf_counter() - start, 1)
    return result, {"load_before": before, "load_after": load(), "effective_cores_before": cores,
                    "effective_cores_after": effective_cores(), "wall_s": wall}


def run_decode(clips: list[dict], reps: int) -> dict:
    return {c["name"]: {b: bench_decode(c["path"], b, reps) for b in ("decord", "pyav")} for c in clips}


def run_variant(config: ExtractConfig, clip: dict, base_boxes: dict[int, np.ndarray], reps: int) -> dict:
    runs, (seconds, _, result) = time_extraction(FaceExtractor(config), clip["path"], reps)
    recall = compare_recall(frame_boxes_ours(result), base_boxes, clip["truth"])
    return {
        "median_s": round(seconds, 3),
        "min_s": round(runs[0][0], 3),
        "stages_s": {k: round(v, 3) for k, v in result.timings.items()},
        "tracks": len(result.faces),
        "frames_baseline_found_we_missed": len(recall["frames_baseline_found_we_missed"]),
        "baseline_faces_we_missed": len(recall["baseline_faces_we_missed"]),
    }


def run_end_to_end(clips: list[dict], reps: int, baseline_reps: int, variants: bool) -> dict:
    extractor, baseline = FaceExtractor(ExtractConfig()), DFDCBaseline()
    baseline.run(clips[0]["path"], np.arange(2))  # warm-up
    out: dict = {"end_to_end": {}, "baseline": {}, "recall": {}, "variants": {}}
    for clip in clips:
        name = clip["name"]
        out["end_to_end"][name], result = bench_end_to_end(extractor, clip["path"], reps)
        # Same frames as ours so recall compares like with like (the original rounded down).
        out["baseline"][name], base_boxes = bench_baseline(baseline, clip["path"], result.frame_indices, baseline_reps)
        recall = compare_recall(frame_boxes_ours(result), base_boxes, clip["truth"])
        recall["missed_faces_diagnosis"] = diagnose_misses(extractor.detector, clip["path"], recall["baseline_faces_we_missed"])
        out["recall"][name] = recall
        if variants:
            out["variants"][name] = {v: run_variant(cfg, clip, base_boxes, reps) for v, cfg in VARIANTS.items()}
        print(f"    {name}: ours {out['end_to_end'][name]['median_s']} s, baseline {out['baseline'][name]['median_s']} s",
              flush=True)
    return out


def print_table(results: dict) -> None:
    print("\nDecode (frames/s): all frames in order | uniform 32")
    for clip, backends in results["decode"].items():
        cells = "  ".join(f"{b}: {v['all_frames']['fps']:7.1f} | {v['uniform32']['fps']:6.1f}" for b, v in backends.items())
        print(f"  {clip:28s} {cells}")
    print(f"\nDetection, ms per frame (batch of {DETECT_BATCH})")
    print(f"  {'resolution':28s} {'input':>10s} {'downscale':>9s} {'detect':>8s} {'refine':>7s} {'fps':>6s} faces")
    for r in results["detection"]:
        print(f"  {r['resolution']:28s} {r['detect_input']:>10s} {r['downscale_ms_per_frame']:9.1f} "
              f"{r['detect_ms_per_frame']:8.1f} {r['refine_ms_per_frame']:7.1f} {r['fps_downscale_plus_detect']:6.1f} "
              f"{r['faces_per_frame']}")
    print(f"\nEnd to end, median seconds per clip (target <= {TARGET_S} s); stages of the median run")
    print(f"  {'clip':28s} {'ours':>6s} {'min':>6s} {'decode':>6s} {'detect':>6s} {'track':>6s} {'crop':>6s} {'tracks':>6s} "
          f"{'recall':>6s} | {'base':>6s} {'recall':>6s} missed")
    for clip, o in results["end_to_end"].items():
        b, r, s = results["baseline"][clip], results["recall"][clip], o["stages_s"]
        print(f"  {clip:28s} {o['median_s']:6.2f} {o['min_s']:6.2f} {s.get('decode', 0):6.2f} {s.get('detect', 0):6.2f} "
              f"{s.get('track', 0):6.2f} {s.get('crop', 0):6.2f} {o['tracks']:6d} {o['frame_recall']:6.2f} | "
              f"{b['median_s']:6.2f} {b['frame_recall']:6.2f} "
              f"{len(r['frames_baseline_found_we_missed'])}f/{len(r['baseline_faces_we_missed'])}faces")
    print("  (missed = frames / faces the baseline found and we did not)")
    for clip, o in results["end_to_end"].items():
        b = results["baseline"][clip]
        print(f"  {clip:28s} CPU-seconds: ours {o['cpu_s_of_median_run']:.2f}, baseline {b['cpu_s_of_median_run']:.2f} "
              f"({b['cpu_s_of_median_run'] / o['cpu_s_of_median_run']:.2f}x)")
    for clip, r in results["recall"].items():
        d = r["missed_faces_diagnosis"]
        if r["baseline_faces_we_missed"]:
            print(f"  {clip}: of {len(r['baseline_faces_we_missed'])} missed faces, {d['found_by_full_search']} found by "
                  f"our detector on that frame (lost by keyframes/tracking), {d['below_min_face_size']} below "
                  f"min_face_size at detection scale")
    if results.get("variants"):
        print("\nVariants: median seconds, tracks, missed frames/faces vs baseline")
        for clip, variants in results["variants"].items():
            cells = "  ".join(f"{v}: {x['median_s']:.2f}s {x['tracks']}t {x['frames_baseline_found_we_missed']}f/"
                              f"{x['baseline_faces_we_missed']}faces" for v, x in variants.items())
            print(f"  {clip:28s} {cells}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "extract_cpu.json")
    parser.add_argument("--quick", action="store_true", help="1 repetition, no synthetic clip")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per measurement (default 3)")
    parser.add_argument("--baseline-reps", type=int, default=None, help="timed baseline runs per clip (default: --reps)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads for both sides (default: every core; 1 on a host shared with other jobs)")
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    baseline_reps = 1 if args.quick else (args.baseline_reps or reps)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)

    machine = {**machine_info(["decord", "facenet-pytorch"]), "effective_cores": effective_cores()}
    results: dict = {"machine": machine, "git": git_state(), "quick": args.quick, "reps": reps,
                     "baseline_reps": baseline_reps, "target_s": TARGET_S,
                     "config": ExtractConfig().to_dict(), "sections": {}}
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        clips = clip_list(args.quick, Path(tmp))
        if not clips:
            sys.exit(f"no clips: put the fixtures under {FIXTURES} or run without --quick")
        results["clips"] = {c["name"]: clip_info(c["path"]) for c in clips}
        results["decode"], results["sections"]["decode"] = run_section("decode", run_decode, clips, reps)
        source = next((c["path"] for c in clips if c["name"] == DETECTION_SOURCE), clips[0]["path"])
        results["detection_source"] = source.name
        results["detection"], results["sections"]["detection"] = run_section("detection", bench_detection, source, reps)
        e2e, results["sections"]["end_to_end"] = run_section(
            "end to end + baseline", run_end_to_end, clips, reps, baseline_reps, not args.quick)
    results.update(e2e)
    ours, base, recall = e2e["end_to_end"], e2e["baseline"], e2e["recall"]
    results["meets_target"] = {name: v["meets_target"] for name, v in ours.items()}
    results["speedup_vs_baseline"] = {name: round(base[name]["median_s"] / ours[name]["median_s"], 1) for name in ours}
    results["cpu_speedup_vs_baseline"] = {
        name: round(base[name]["cpu_s_of_median_run"] / ours[name]["cpu_s_of_median_run"], 2) for name in ours}
    results["no_loss_of_recall"] = all(r["no_loss_of_recall"] for r in recall.values())
    results["machine"]["load_average_end"] = load()
    results["machine"]["effective_cores_end"] = effective_cores()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    print(f"\nwrote {args.out}")
    return results


if __name__ == "__main__":
    main()
