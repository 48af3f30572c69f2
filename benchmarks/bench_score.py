"""CPU benchmark of the scoring path (``vidfake.scoring.Scorer``): speed per clip and peak
memory on long videos.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/bench_score.py            # full run (about 12-15 min on 2 cores)
    .venv/bin/python benchmarks/bench_score.py --quick    # 1 timed run, one fixture clip, 0.5/1 min videos
    .venv/bin/python benchmarks/bench_score.py --minutes 1 3 5 --video-dir /tmp/vids   # keep the long videos

It writes one JSON file (default ``benchmarks/results/score_cpu.json``) and prints a short
table. What is measured:

1. Speed: ``Scorer(ckpt).score_video(clip)`` end to end (decode + detect + track/crop +
   audio + model + aggregate) for two untrained checkpoints made with
   ``vidfake.checkpoints.format.init_checkpoint`` and the ``clips:4x8`` plan (``CHECKPOINTS``: the default
   ``tf_efficientnet_lite0`` at 224 px and ``mobilenetv3_small_050`` at 128 px). Clips: the
   fixtures in ``<repo>/../shared/fixtures/videos`` (``CLIPS``; missing ones are skipped)
   and a synthetic 10 s 1080p clip (textured panning background, a face moving across,
   libx264 veryfast crf 23). One warm-up per clip, then the median of ``--reps`` runs,
   with the verdict's stage timings (decode, detect, model, total) and the rest of the
   total split into the extractor's track/crop stages and reading the audio.
2. Memory: 720p clips of ``--minutes`` (default 1, 3, 5, 10) minutes with a moving face on a
   smooth background and a tone (libx264 ultrafast crf 28; frames are made one at a
   time, never held), each scored in a fresh subprocess with the checkpoint's plan
   (``clips:4x8``) and with ``plan="every:30"`` (a frame a second, so the number of frames
   grows with length). The child reports its peak RSS (``VmHWM``; see ``peak_rss_kib`` for
   why not ``ru_maxrss``, which is recorded too) after loading the model, after extraction
   and at the end, plus what the extraction kept (sampled frames, crop bytes); the parent
   also samples the child's RSS
   and kills it above ``--mem-cap-gb`` (default 10) so a runaway case cannot take the
   shared machine down.

3. ``--default-model`` (instead of 1 and 2; writes ``benchmarks/results/score_default_cpu.json``):
   the shipped default model with its own plan (``clips:8x8``, audio on) on the 10 s 1080p
   DFDC fixture, as a user meets it (issue 29):

   - ``cli``: ``vidfake score`` on ``--copies`` copies of the clip in one fresh process,
     ``--processes`` times: the process's wall time, its load time (``timings.load``,
     imports included) and each file's time, so the first file against the warm ones;
     with ``--baseline DIR`` as many processes of that checkout's ``vidfake`` take turns
     with them (``baseline_cli``; ``cli_runs`` says how the two are compared);
   - ``stages``: in one process, ``--reps`` warm runs split into decode, detect, track,
     crop, audio, model and the rest, with the CPU-seconds each run used;
   - ``model_paths``: the frame encoder on the clip's 64 crops as the full model runs it
     (with the blend-mask decoder), as the scoring copy runs it, and under ONNX Runtime
     when that is installed (it is not a dependency: measured to decide);
   - ``detection``: the detector's ``keyframe_interval`` 4 (the model's) against 8, and its
     ``max_side`` 640 against 480: detection time, face frames kept and the score, for
     what a faster detector would cost.

Timings are wall-clock on a shared, noisy machine: the JSON records the load average
before and after each section, the git commit and whether files under ``vidfake/`` were
modified in the working tree when the run started.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from vidfake.checkpoints.format import init_checkpoint
from vidfake.extract.pipeline import ExtractConfig
from vidfake.scoring import Scorer
from vidfake.temporal.config import ModelConfig
from vidfake.testing import media

from common import clip_info, git_state, load, machine_info

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "videos"
CLIPS = ["dfdc_lynaeydofd.mp4", "dfdc_yhffcuhhjy.mp4", "street_multiface.mp4"]
PLAN = "clips:4x8"
CHECKPOINTS = {
    "lite0_224": ModelConfig(backbone="tf_efficientnet_lite0", input_size=224),
    "mnv3s050_128": ModelConfig(backbone="mobilenetv3_small_050", input_size=128),
}
MEMORY_CHECKPOINT = "lite0_224"
MEMORY_PLANS = [None, "every:30"]  # None: the checkpoint's own plan
FPS = 30
DEFAULT_CLIP = "dfdc_lynaeydofd.mp4"  # 10 s, 1920x1080, 29.97 fps, one face, speech
TARGETS = {"warm_s": 2.5, "first_minus_warm_s": 1.0, "score_difference": 1e-3}  # issue 29
ISSUE_WARM_S = 4.0  # issue 29's warm time for the code before it (a5c490d's), on its author's machine
SHIPPED_SCORE = 0.609482  # the default model (2026.12.5) on DEFAULT_CLIP when it shipped


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- synthetic videos


def textured_background(width: int, height: int, detail: bool, seed: int = 0) -> np.ndarray:
    """Smooth random colour blobs; ``detail`` adds a fine pattern that costs bits to encode."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 216, size=(height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)).astype(np.int16)
    if detail:
        y, x = np.mgrid[0:height, 0:width]
        texture += (12 * np.sin(x / 5.0) * np.sin(y / 4.0)).astype(np.int16)[..., None]
    return np.clip(texture, 0, 255).astype(np.uint8)


def face_position(i: int, fps: int, width: int, height: int, pw: int, ph: int) -> tuple[int, int]:
    """Top-left corner of the head patch in frame ``i``: a sweep back and forth every 8 s,
    bobbing up and down."""
    t = i / fps
    phase = (t / 8.0) % 2.0
    u = phase if phase < 1 else 2 - phase
    x = int(round(40 + (width - pw - 80) * u))
    y = int(round((height - ph) / 2 + 0.25 * (height - ph) * np.sin(2 * np.pi * t / 5.0)))
    return x, y


def write_synthetic(path: Path, seconds: float, size: tuple[int, int], face_height: int,
                    preset: str, crf: int, pan: bool, audio: bool = True) -> Path:
    """An H.264 mp4 (+ AAC tone) of a face moving over a background, written frame by frame:
    memory stays at one frame however long the video. ``pan`` moves the background too
    (realistic encode/decode cost) instead of keeping it still (cheap, fast to write)."""
    width, height = size
    pad = 240 if pan else 0
    back = textured_background(width + pad, height + pad, detail=pan)
    patch, _ = media.head_patch(face_height)
    ph, pw = patch.shape[:2]
    n = int(round(seconds * FPS))
    rate = media.SAMPLE_RATE
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": preset, "crf": str(crf)}
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=rate)
            sound.layout = "mono"
            tone = media.sine_tone(1.0)  # exactly one second: 440 Hz repeats seamlessly
        for i in range(n):
            t = i / max(n - 1, 1)
            ox, oy = (int(round(pad * t)), int(round(pad / 2 * (1 + np.sin(2 * np.pi * t))))) if pan else (0, 0)
            frame = back[oy : oy + height, ox : ox + width].copy()
            x, y = face_position(i, FPS, width, height, pw, ph)
            frame[y : y + ph, x : x + pw] = patch
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            if sound is not None and i % FPS == 0:  # one second of audio per second of video
                chunk = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, (i // FPS) * rate, Fraction(1, rate)
                container.mux(sound.encode(chunk))
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return path


def synthetic_1080p(folder: Path) -> Path:
    return write_synthetic(folder / "synthetic_1080p_10s.mp4", 10.0, (1920, 1080), 240, "veryfast", 23, pan=True)


def long_720p(folder: Path, minutes: float) -> tuple[Path, float]:
    """A 720p clip of ``minutes`` (reused if ``folder`` already has it); returns the seconds
    spent writing it (0 when reused)."""
    path = folder / f"long_720p_{minutes:g}min.mp4"
    if path.exists() and path.stat().st_size > 0:
        return path, 0.0
    start = time.perf_counter()
    partial = path.with_suffix(".partial.mp4")
    write_synthetic(partial, minutes * 60, (1280, 720), 160, "ultrafast", 28, pan=False)
    partial.rename(path)
    return path, time.perf_counter() - start


# --------------------------------------------------------------------------- checkpoints


def make_checkpoints(folder: Path) -> dict[str, Path]:
    return {name: init_checkpoint(folder / f"{name}.safetensors", model, ExtractConfig(plan=PLAN))
            for name, model in CHECKPOINTS.items()}


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB: ``VmHWM``, the high-water mark of its own address
    space. ``ru_maxrss`` is no use in a child: Linux carries the parent's peak across
    fork + exec, so a child of a 1.5 GiB parent starts at 1.5 GiB whatever it does."""
    import resource

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def instrument(scorer: Scorer) -> dict:
    """Wrap this scorer's public ``extract`` and ``read_audio`` stages (on the instance) to
    record what the verdict's timings leave out: the extractor's own stage times, the
    audio read, the crops the extraction kept to the end (none: they are streamed to the
    model), the most crops a crop stream held at once, and the peak RSS when extraction
    ended. Returns the dict it fills."""
    record: dict = {}
    extract, read_audio = scorer.extract, scorer.read_audio

    def timed_extract(*args, **kwargs):
        extraction = extract(*args, **kwargs)
        faces = extraction.faces
        record["extract_timings"] = {k: round(v, 4) for k, v in faces.timings.items()}
        record["sampled_frames"] = int(len(faces.frame_indices))
        record["face_frames"] = [len(f.track) for f in faces.faces]
        record["crops_mib"] = round(sum(f.crops.nbytes + (0 if f.mouths is None else f.mouths.nbytes)
                                        for f in faces.faces if f.crops is not None) / 2**20, 2)
        record["crops_held_peak"] = max(record.get("crops_held_peak", 0), extraction.peak_held)
        record["peak_rss_after_extract_kib"] = peak_rss_kib()
        return extraction

    def timed_read_audio(*args, **kwargs):
        start = time.perf_counter()
        result = read_audio(*args, **kwargs)
        record["audio_s"] = round(time.perf_counter() - start, 4)
        return result

    scorer.extract, scorer.read_audio = timed_extract, timed_read_audio
    return record


# --------------------------------------------------------------------------- 1. speed


def score_once(scorer: Scorer, record: dict, path: Path) -> dict:
    start = time.perf_counter()
    verdict = scorer.score_video(path)
    wall = time.perf_counter() - start
    stages = dict(verdict.timings)
    extra = record.get("extract_timings", {})
    stages["track"], stages["crop"] = extra.get("track", 0.0), extra.get("crop", 0.0)
    stages["audio"] = record.get("audio_s", 0.0)
    named = sum(stages.get(k, 0.0) for k in ("decode", "detect", "model", "track", "crop", "audio"))
    stages["other"] = round(stages.get("total", wall) - named, 4)
    return {"wall_s": wall, "stages": stages, "verdict": verdict}


def time_clip(scorer: Scorer, record: dict, path: Path, reps: int) -> dict:
    """One warm-up, then ``reps`` runs; the run with the median wall time is reported."""
    score_once(scorer, record, path)
    runs = sorted((score_once(scorer, record, path) for _ in range(reps)), key=lambda r: r["wall_s"])
    median = runs[len(runs) // 2]
    verdict = median["verdict"]
    return {
        "median_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "runs_s": [round(r["wall_s"], 3) for r in runs],
        "stages_s": {k: round(v, 3) for k, v in median["stages"].items()},
        "status": verdict.status,
        "score": None if verdict.score is None else round(verdict.score, 4),
        "tracks": len(verdict.tracks),
        "track_frames": [t["frames"] for t in verdict.tracks],
        "clips_per_track": [t["clips"] for t in verdict.tracks],
        "audio": verdict.audio,
        "sampled_frames": record.get("sampled_frames"),
    }


def bench_speed(checkpoints: dict[str, Path], clips: dict[str, Path], reps: int) -> dict:
    out = {}
    for name, ckpt in checkpoints.items():
        scorer = Scorer(ckpt)
        record = instrument(scorer)
        out[name] = {}
        for clip, path in clips.items():
            out[name][clip] = time_clip(scorer, record, path, reps)
            print(f"  {name:14s} {clip:28s} {out[name][clip]['median_s']:6.2f} s", flush=True)
    return out


# --------------------------------------------------------------------------- 2. memory

CHILD = r"""
import json, os, resource, sys, time
import torch
torch.set_num_threads(os.cpu_count())
sys.path.insert(0, sys.argv[4])
from bench_score import instrument, peak_rss_kib as rss
from vidfake.scoring import Scorer
ckpt, video, plan = sys.argv[1], sys.argv[2], sys.argv[3] or None
out = {"peak_rss_after_import_kib": rss()}
scorer = Scorer(ckpt, plan=plan)
out["plan"] = scorer.extract_config.plan
out["max_buffer_mb"] = scorer.extract_config.max_buffer_mb
record = instrument(scorer)
extract = scorer.extract
def extract_and_report(*args, **kwargs):  # so a child killed in the model stage still tells this much
    extraction = extract(*args, **kwargs)
    print("EXTRACTED " + json.dumps(record), flush=True)
    return extraction
scorer.extract = extract_and_report
out["peak_rss_after_load_kib"] = rss()
start = time.perf_counter()
verdict = scorer.score_video(video)
out["seconds"] = round(time.perf_counter() - start, 3)
out["peak_rss_kib"] = rss()
out["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # includes the parent's peak
out.update(record, status=verdict.status, timings=verdict.timings, tracks=len(verdict.tracks),
           audio_used=verdict.audio.get("used"))
print("RESULT " + json.dumps(out))
"""


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def score_in_child(ckpt: Path, video: Path, plan: str | None, cap_kib: int) -> dict:
    """Score ``video`` in a fresh interpreter; sample its RSS and kill it above the cap."""
    cmd = [sys.executable, "-c", CHILD, str(ckpt), str(video), plan or "", str(Path(__file__).resolve().parent)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampled, killed = 0, False
    while proc.poll() is None:
        sampled = max(sampled, rss_kib(proc.pid))
        if sampled > cap_kib:
            proc.kill()
            killed = True
            break
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    wall = round(time.perf_counter() - start, 2)
    line = next((text for text in stdout.splitlines() if text.startswith("RESULT ")), None)
    if line is None:
        reason = f"killed above the {cap_kib / 2**20:g} GiB cap" if killed else f"exit {proc.returncode}"
        partial = next((json.loads(text[len("EXTRACTED "):]) for text in stdout.splitlines()
                        if text.startswith("EXTRACTED ")), {})
        return {"error": reason, **partial, "stderr_tail": stderr[-2000:], "sampled_peak_rss_kib": sampled,
                "process_s": wall}
    result = json.loads(line[len("RESULT "):])
    result.update(sampled_peak_rss_kib=sampled, process_s=wall)
    return result


def growth(rows: list[dict]) -> dict:
    """Least-squares slope of peak RSS (and of the scoring increment) against minutes."""
    ok = [r for r in rows if "peak_rss_kib" in r]
    if len(ok) < 2:
        return {}
    minutes = np.array([r["minutes"] for r in ok], float)
    peak = np.array([r["peak_rss_kib"] for r in ok], float) / 1024
    extract = np.array([r["peak_rss_after_extract_kib"] for r in ok], float) / 1024
    crops = np.array([r["crops_mib"] for r in ok], float)
    frames = np.array([r["sampled_frames"] for r in ok], float)
    return {"peak_mib_per_minute": round(float(np.polyfit(minutes, peak, 1)[0]), 1),
            "peak_mib_per_sampled_frame": round(float(np.polyfit(frames, peak, 1)[0]), 2) if np.ptp(frames) else 0.0,
            "peak_after_extract_mib_per_minute": round(float(np.polyfit(minutes, extract, 1)[0]), 1),
            "crops_mib_per_minute": round(float(np.polyfit(minutes, crops, 1)[0]), 2),
            "peak_mib_range": [round(float(peak.min())), round(float(peak.max()))]}


def bench_memory(ckpt: Path, folder: Path, minutes: list[float], cap_gb: float) -> dict:
    videos, generation = {}, {}
    for m in minutes:
        videos[m], seconds = long_720p(folder, m)
        generation[f"{m:g}min"] = {"seconds": round(seconds, 1), **clip_info(videos[m])}
        print(f"  wrote {videos[m].name} in {seconds:.0f} s", flush=True)
    table = {}
    for plan in MEMORY_PLANS:
        rows = []
        for m in minutes:
            row = {"minutes": m, **score_in_child(ckpt, videos[m], plan, int(cap_gb * 2**20))}
            rows.append(row)
            print(f"  {plan or PLAN:10s} {m:5g} min  peak {row.get('peak_rss_kib', row.get('sampled_peak_rss_kib', 0)) / 1024:7.0f} MiB"
                  f"  {row.get('seconds', float('nan')):6.1f} s  {row.get('error', '')}", flush=True)
        table[plan or PLAN] = {"rows": rows, "growth": growth(rows)}
    return {"generation": generation, "plans": table}


# --------------------------------------------------------------------------- 3. the default model


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def clip_copies(clip: Path, copies: int, folder: Path) -> list[Path]:
    """``copies`` copies of ``clip`` in ``folder`` (reused when there): distinct files, as a queue sees them."""
    paths = [folder / f"copy{k}_{clip.name}" for k in range(copies)]
    for path in paths:
        if not path.exists():
            path.write_bytes(clip.read_bytes())
    return paths


def cli_process(paths: list[Path], checkout: Path = REPO) -> dict:
    """One fresh ``vidfake score`` process on ``paths`` with the ``vidfake`` of ``checkout``
    (``python -m`` imports it from the working folder): its wall time, load time and each file's time."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vidfake", "score", *map(str, paths), "--json", "--no-progress"],
                          cwd=checkout, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or len(records) != len(paths):
        raise RuntimeError(f"vidfake score failed ({done.returncode}): {done.stderr[-2000:]}")
    files = [r["timings"]["total"] for r in records]
    run = {"process_s": round(wall, 3), "load_s": records[0]["timings"].get("load"),  # None before issue 29
           "files_s": files, "first_s": files[0], "warm_median_s": round(statistics.median(files[1:]), 3),
           "scores": [r["score"] for r in records]}
    print(f"  {checkout.name:10s} process {wall:5.1f} s  load {run['load_s']} s  files {files}", flush=True)
    return run


def summarize_cli(runs: list[dict], copies: int) -> dict:
    """The medians over processes: warm files, first files, and the first file's extra cost."""
    warm = statistics.median(f for run in runs for f in run["files_s"][1:])
    first = statistics.median(run["first_s"] for run in runs)
    return {"copies": copies, "runs": runs, "warm_median_s": round(warm, 3), "first_median_s": round(first, 3),
            "first_minus_warm_s": round(first - warm, 3)}


def cli_runs(clip: Path, copies: int, processes: int, folder: Path, baseline: Path | None = None) -> dict:
    """``processes`` fresh ``vidfake score`` processes on ``copies`` copies of ``clip`` (``cli``)
    and, with ``baseline``, as many with that checkout (``baseline_cli``), the two taking
    turns: this machine's speed drifts by a third within minutes, so only interleaved runs
    compare fairly. ``warm_ratio`` is the median over turns of this checkout's warm time
    over the baseline's, and ``warm_at_issue_speed_s`` that ratio times the warm time the
    issue measured for the baseline's code (``ISSUE_WARM_S``): the warm time on the issue
    author's machine, estimated."""
    paths = clip_copies(clip, copies, folder)
    ours, theirs = [], []
    for _ in range(processes):
        ours.append(cli_process(paths))
        if baseline is not None:
            theirs.append(cli_process(paths, baseline))
    results = {"cli": summarize_cli(ours, copies)}
    if baseline is not None:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=baseline, capture_output=True, text=True)
        ratio = statistics.median(a["warm_median_s"] / b["warm_median_s"] for a, b in zip(ours, theirs))
        results["baseline_cli"] = {"checkout": str(baseline), "commit": commit.stdout.strip(),
                                   **summarize_cli(theirs, copies)}
        results["cli"].update(warm_ratio=round(ratio, 3), warm_at_issue_speed_s=round(ratio * ISSUE_WARM_S, 3))
    return results


def stage_runs(scorer: Scorer, clip: Path, reps: int) -> dict:
    """``reps`` warm runs in this process, split into stages, with their CPU-seconds."""
    record = instrument(scorer)
    score_once(scorer, record, clip)  # warm-up
    runs = []
    for _ in range(reps):
        began = cpu_seconds()
        run = score_once(scorer, record, clip)
        runs.append({"wall_s": round(run["wall_s"], 3), "cpu_s": round(cpu_seconds() - began, 3),
                     "stages_s": {k: round(v, 3) for k, v in run["stages"].items()}, "score": run["verdict"].score})
    names = runs[0]["stages_s"].keys()
    return {"runs": runs, "median_s": round(statistics.median(r["wall_s"] for r in runs), 3),
            "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "median_stages_s": {k: round(statistics.median(r["stages_s"][k] for r in runs), 3) for k in names}}


def clip_crops(scorer: Scorer, clip: Path) -> torch.Tensor:
    """The clip's face crops as the model takes them, ``(N,3,S,S)`` in [0,1]."""
    from vidfake.scoring.batching import to_tensor

    faces = scorer.extractor.extract_video(clip)
    crops = np.concatenate([face.crops for face in faces.faces])
    return to_tensor(crops, scorer.model_config.input_size)


def median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def model_paths(scorer: Scorer, crops: torch.Tensor, reps: int) -> dict:
    """The frame encoder on ``crops``: the full model's pass, the scoring copy's, ONNX Runtime's."""
    full, fast = scorer.model.encoder, scorer.clip_model.scoring_module.encoder
    with torch.inference_mode():
        reference = full.forward_head(*full.forward_maps(crops))[1]
        out = {"crops": int(len(crops)),
               "full_model_s": median_time(lambda: full.forward_head(*full.forward_maps(crops)), reps),
               "scoring_copy_s": median_time(lambda: fast(crops), reps),
               "scoring_copy_max_logit_difference": float((fast(crops)[1] - reference).abs().max())}
    out["onnxruntime"] = onnx_runtime_path(fast, crops, reference, reps)
    return out


def onnx_runtime_path(encoder, crops: torch.Tensor, reference: torch.Tensor, reps: int) -> dict:
    """The scoring copy's encoder exported to ONNX and run by ONNX Runtime (2 threads), when
    ``onnx`` and ``onnxruntime`` are importable; what that costs at load and per file."""
    try:
        import onnxruntime
    except ImportError:
        return {"measured": False, "reason": "onnxruntime is not installed (pip install onnx onnxruntime)"}

    class Scores(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            embeddings, logits, _ = self.inner(x)
            return embeddings, logits

    with tempfile.TemporaryDirectory() as folder:
        graph = Path(folder) / "encoder.onnx"
        start = time.perf_counter()
        with torch.no_grad():
            torch.onnx.export(Scores(encoder).eval(), (crops[:2],), str(graph), dynamo=False, input_names=["x"],
                              output_names=["embeddings", "logits"], dynamic_axes={"x": {0: "n"}})
        export_s = time.perf_counter() - start
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        start = time.perf_counter()
        session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        session_s = time.perf_counter() - start
    feed = {"x": crops.numpy()}
    logits = session.run(None, feed)[1]
    return {"measured": True, "version": onnxruntime.__version__, "export_s": round(export_s, 3),
            "session_s": round(session_s, 3), "run_s": median_time(lambda: session.run(None, feed), reps),
            "max_logit_difference": float(np.abs(logits - reference.numpy()).max())}


def detection_variants(clip: Path, reps: int) -> dict:
    """The detector's settings a faster extraction could change, against the model's own."""
    from dataclasses import replace

    from vidfake.extract.pipeline import FaceExtractor

    out = {}
    base = None
    for name, change in {"model_settings": {}, "keyframe_interval_8": {"keyframe_interval": 8},
                         "max_side_480": {"max_side": 480}}.items():
        scorer = Scorer()
        config = replace(scorer.extract_config, face_detector=replace(scorer.extract_config.face_detector, **change))
        scorer.extract_config, scorer.extractor = config, FaceExtractor(config)
        scorer.load()
        verdicts = [scorer.score_video(clip) for _ in range(reps + 1)][1:]
        row = {"detect_s": round(statistics.median(v.timings["detect"] for v in verdicts), 3),
               "face_frames": sum(t["frames"] for t in verdicts[0].tracks), "score": round(verdicts[0].score, 6)}
        base = base or row
        row["score_difference"] = round(abs(row["score"] - base["score"]), 6)
        out[name] = row
        print(f"  {name:20s} detect {row['detect_s']:.2f} s  face frames {row['face_frames']}  score {row['score']:.4f}",
              flush=True)
    return out


def bench_default(args: argparse.Namespace) -> dict:
    clip = FIXTURES / DEFAULT_CLIP
    if not clip.exists():
        raise SystemExit(f"--default-model needs {clip} (the shared fixtures)")
    results: dict = {"machine": machine_info(["timm"]), "git": git_state(),
                     "clip": {"name": DEFAULT_CLIP, **clip_info(clip)}, "targets": TARGETS,
                     "shipped_score": SHIPPED_SCORE, "load_average": {"start": load()}}
    print("vidfake score in fresh processes", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_default_") as tmp:
        if args.baseline:
            print(f"taking turns with {args.baseline}", flush=True)
        results.update(cli_runs(clip, args.copies, args.processes, Path(tmp), args.baseline))
    results["load_average"]["after_cli"] = load()
    scorer = Scorer()
    results["plan"] = scorer.extract_config.plan
    results["load_in_process_s"] = round(scorer.load().load_seconds, 3)
    print("stages", flush=True)
    results["stages"] = stage_runs(scorer, clip, args.reps)
    print("model paths", flush=True)
    results["model_paths"] = model_paths(scorer, clip_crops(scorer, clip), args.reps)
    print("detection settings", flush=True)
    results["detection"] = detection_variants(clip, max(1, args.reps // 2))
    results["load_average"]["end"] = load()
    score = results["stages"]["runs"][0]["score"]
    warm, first = results["cli"]["warm_median_s"], results["cli"]["first_minus_warm_s"]
    results["met"] = {"warm_s": warm <= TARGETS["warm_s"], "first_minus_warm_s": first <= TARGETS["first_minus_warm_s"],
                      "score_difference": abs(score - SHIPPED_SCORE) <= TARGETS["score_difference"]}
    return results


def print_default(results: dict) -> None:
    cli, stages = results["cli"], results["stages"]["median_stages_s"]
    if "baseline_cli" in results:
        base = results["baseline_cli"]
        print(f"\nbaseline {base['commit'][:7]}: warm {base['warm_median_s']:.2f} s, first file {base['first_median_s']:.2f} s;"
              f" warm ratio {cli['warm_ratio']:.2f}, {cli['warm_at_issue_speed_s']:.2f} s at the issue's speed")
    print(f"vidfake score, {cli['copies']} copies a process: warm {cli['warm_median_s']:.2f} s, first file "
          f"{cli['first_median_s']:.2f} s (+{cli['first_minus_warm_s']:.2f}), load "
          f"{statistics.median(r['load_s'] for r in cli['runs']):.2f} s")
    print("in process, median: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
          + f"; {results['stages']['median_cpu_s']:.2f} CPU-s a file")
    paths = results["model_paths"]
    print(f"encoder on {paths['crops']} crops: full model {paths['full_model_s']:.2f} s, scoring copy "
          f"{paths['scoring_copy_s']:.2f} s" + (f", ONNX Runtime {paths['onnxruntime']['run_s']:.2f} s"
                                                 if paths["onnxruntime"]["measured"] else ""))
    print("targets met: " + ", ".join(f"{k} {v}" for k, v in results["met"].items()))


# --------------------------------------------------------------------------- report


def print_tables(results: dict) -> None:
    print("\nSeconds per clip, median (decode / detect / track+crop / audio / model / other)")
    for name, clips in results["speed"].items():
        for clip, r in clips.items():
            s = r["stages_s"]
            dur = results["clips"][clip]["duration_s"]
            print(f"  {name:13s} {clip:28s} {dur:5.1f}s clip  {r['median_s']:6.2f} s  ("
                  f"{s.get('decode', 0):.2f} / {s.get('detect', 0):.2f} / {s.get('track', 0) + s.get('crop', 0):.2f} / "
                  f"{s.get('audio', 0):.2f} / {s.get('model', 0):.2f} / {s.get('other', 0):.2f})  {r['status']}")
    print("\nPeak RSS scoring 720p videos in a fresh process (MiB; load = after loading the model)")
    print(f"  {'plan':10s} {'min':>5s} {'frames':>6s} {'load':>6s} {'extract':>8s} {'peak':>6s} {'held':>6s} {'seconds':>8s}"
          "   (extract: peak when extraction ended; held: most crops buffered at once on their way to the model)")
    for plan, data in results["memory"]["plans"].items():
        for r in data["rows"]:
            if "error" in r:
                print(f"  {plan:10s} {r['minutes']:5g}  {r['error']} (sampled peak {r['sampled_peak_rss_kib'] / 1024:.0f} MiB)")
                continue
            print(f"  {plan:10s} {r['minutes']:5g} {r['sampled_frames']:6d} {r['peak_rss_after_load_kib'] / 1024:6.0f}"
                  f" {r['peak_rss_after_extract_kib'] / 1024:8.0f} {r['peak_rss_kib'] / 1024:6.0f} {r.get('crops_held_peak', 0):6d}"
                  f" {r['seconds']:8.1f}")
        if data["growth"]:
            g = data["growth"]
            print(f"  {plan:10s} growth: peak {g['peak_mib_per_minute']:+.1f} MiB/min "
                  f"(after extraction {g['peak_after_extract_mib_per_minute']:+.1f}, crops {g['crops_mib_per_minute']:+.2f})")


# --------------------------------------------------------------------------- main


def fixture_clips(quick: bool) -> dict[str, Path]:
    names = CLIPS[:1] if quick else CLIPS
    found = {n: FIXTURES / n for n in names if (FIXTURES / n).exists()}
    for n in set(names) - set(found):
        print(f"  skipped {n}: not under {FIXTURES}")
    return found


def write_results(results: dict, out: Path) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwrote {out} in {results['runtime_s']:.0f} s")
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="the JSON to write (default benchmarks/results/score_cpu.json, "
                                                 "or score_default_cpu.json with --default-model)")
    parser.add_argument("--quick", action="store_true", help="1 timed run, one fixture clip, 0.5 and 1 min videos")
    parser.add_argument("--reps", type=int, default=3,
                        help="timed runs per clip after the warm-up (default 3; --default-model: in-process runs)")
    parser.add_argument("--minutes", type=float, nargs="+", default=None, help="long-video lengths (default 1 3 5 10)")
    parser.add_argument("--video-dir", type=Path, default=None, help="keep (and reuse) the long videos here")
    parser.add_argument("--mem-cap-gb", type=float, default=10.0, help="kill a memory child above this RSS")
    parser.add_argument("--default-model", action="store_true",
                        help="only the shipped default model on the 1080p DFDC fixture (section 3 of the docstring); "
                             "writes benchmarks/results/score_default_cpu.json unless --out is given")
    parser.add_argument("--copies", type=int, default=5, help="--default-model: files a vidfake score process scores")
    parser.add_argument("--processes", type=int, default=2, help="--default-model: fresh vidfake score processes")
    parser.add_argument("--baseline", type=Path,
                        help="--default-model: also time vidfake score from this checkout of an earlier commit "
                             "(git worktree add DIR COMMIT), on the same machine in the same run")
    args = parser.parse_args(argv)
    if args.default_model:
        torch.set_num_threads(os.cpu_count() or 1)
        out = args.out or REPO / "benchmarks" / "results" / "score_default_cpu.json"
        started = time.perf_counter()
        results = bench_default(args)
        results["runtime_s"] = round(time.perf_counter() - started, 1)
        print_default(results)
        return write_results(results, out)
    reps = 1 if args.quick else args.reps
    minutes = args.minutes or ([0.5, 1.0] if args.quick else [1.0, 3.0, 5.0, 10.0])
    torch.set_num_threads(os.cpu_count() or 1)

    started = time.perf_counter()
    results: dict = {"machine": machine_info(["timm"]), "git": git_state(),
                     "quick": args.quick, "reps": reps, "plan": PLAN,
                     "checkpoints": {k: v.to_dict() for k, v in CHECKPOINTS.items()}, "load_average": {}}
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        tmp = Path(tmp)
        checkpoints = make_checkpoints(tmp)
        clips = fixture_clips(args.quick)
        print("writing the synthetic 1080p clip", flush=True)
        clips["synthetic_1080p_10s"] = synthetic_1080p(tmp)
        results["clips"] = {name: clip_info(path) for name, path in clips.items()}

        results["load_average"]["speed_start"] = load()
        print("speed", flush=True)
        results["speed"] = bench_speed(checkpoints, clips, reps)
        results["load_average"]["speed_end"] = load()

        folder = args.video_dir or tmp
        folder.mkdir(parents=True, exist_ok=True)
        print("memory", flush=True)
        results["load_average"]["memory_start"] = load()
        results["memory"] = bench_memory(checkpoints[MEMORY_CHECKPOINT], folder, minutes, args.mem_cap_gb)
        results["memory"]["checkpoint"] = MEMORY_CHECKPOINT
        results["load_average"]["memory_end"] = load()
    results["machine"]["load_average_end"] = load()
    results["runtime_s"] = round(time.perf_counter() - started, 1)

    print_tables(results)
    return write_results(results, args.out or REPO / "benchmarks" / "results" / "score_cpu.json")


if __name__ == "__main__":
    main()
