"""Turn a set of videos and images into a face-crop dataset on disk.

Layout of ``DIR``:

- ``images/<media id>/t<track>_f<frame>.jpg`` face crops (``mouths/`` likewise when kept)
- ``tracks.jsonl``: one line per finished file (metadata, plan, every track with frame
  indices, timestamps, boxes, landmarks, scores and crop files, label and method). It is
  the source of truth: a line is appended only after that file's crops are on disk.
- ``labels.csv``: ``img_name,target`` (1 = fake, 0 = real) rebuilt from ``tracks.jsonl``
  at the end of every run, so an interrupted run never leaves duplicate rows.
- ``errors.jsonl``: files that failed to decode or had no face, with the reason.
- ``config.json``: the extraction settings; ``--resume`` refuses to mix settings.
"""
from __future__ import annotations

import hashlib
import json
import os
import wave
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from vidfake.extract.failures import file_failure, open_debug_log
from vidfake.extract.folder import ExtractionFolder
from vidfake.extract.labels import LabelInfo, LabelResolver
from vidfake.extract.media_types import media_kind
from vidfake.extract.pipeline import ExtractConfig, FaceExtractor, MediaFaces, current_extract_keys
from vidfake.extract.video import DecodeError, NoAudioError, read_audio

AUDIO_RATE = 16000  # the rate the audio-visual sync head consumes


class ExtractError(RuntimeError):
    """The run itself cannot go on (bad output folder, settings differ on resume)."""


@dataclass(frozen=True)
class MediaItem:
    """One input file and the name its crops go under."""

    path: Path
    media_id: str
    kind: str  # "video" or "image"


@dataclass(frozen=True)
class OutputOptions:
    """How extracted crops (and optionally audio) are written."""
    image_format: str = "jpg"  # "jpg" or "png"
    jpeg_quality: int = 95
    audio: bool = False  # also write each video's audio as 16 kHz mono WAV (for the lip-sync head)


@dataclass
class RunSummary:
    """Counts and notes of one extraction run, printed at the end and saved as JSON."""
    total: int = 0
    ok: int = 0
    no_face: int = 0
    failed: int = 0
    skipped: int = 0  # done in an earlier run (--resume)
    faces: int = 0
    crops: int = 0
    out_dir: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def collect_media(inputs: Iterable[Path], exclude: Path | None = None) -> list[MediaItem]:
    """Expand folders (recursively) into video and image files, each with a unique id
    that keeps the folder structure (FaceForensics++ reuses names across methods).
    Files under ``exclude`` (the output folder) are left out, so a run over a folder that
    holds its own output never extracts faces from its crops."""
    excluded = exclude.resolve() if exclude is not None else None
    items: list[MediaItem] = []
    seen: set[str] = set()
    for root in inputs:
        root = Path(root)
        if not root.exists():
            raise ExtractError(f"{root}: no such file or folder")
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and media_kind(p))
            if excluded is not None:
                files = [p for p in files if not p.resolve().is_relative_to(excluded)]
            pairs = [(p, p.relative_to(root).with_suffix("").as_posix()) for p in files]
        else:
            pairs = [(root, root.stem)]
        for path, media_id in pairs:
            kind = media_kind(path) or "video"  # an explicit file of unknown type: try it as video
            if media_id in seen:
                media_id = f"{media_id}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
            seen.add(media_id)
            items.append(MediaItem(path, media_id, kind))
    return items


def _write_image(array: np.ndarray, path: Path, options: OutputOptions) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if options.image_format == "png":
        Image.fromarray(array).save(path, format="PNG")
    else:
        Image.fromarray(array).save(path, format="JPEG", quality=options.jpeg_quality)


def write_crops(result: MediaFaces, item: MediaItem, out_dir: Path, options: OutputOptions) -> list[dict]:
    """Save every crop of every track; return the tracks as records with their files."""
    records = []
    folder = ExtractionFolder(out_dir)
    suffix = "png" if options.image_format == "png" else "jpg"
    for face in result.faces:
        record = face.track.to_dict()
        names, mouth_names = [], []
        for t, frame_index in enumerate(face.track.frame_indices.tolist()):
            name = f"{item.media_id}/t{face.track.track_id:02d}_f{frame_index:06d}.{suffix}"
            _write_image(face.crops[t], folder.image(name), options)
            names.append(name)
            if face.mouths is not None:
                _write_image(face.mouths[t], folder.mouth(name), options)
                mouth_names.append(name)
        record["crops"] = names
        if mouth_names:
            record["mouths"] = mouth_names
        records.append(record)
    return records


class _Worker:
    """Per-process state: the detector is loaded once per worker, not once per file."""

    extractor: FaceExtractor | None = None

    @classmethod
    def init(cls, config: ExtractConfig, threads: int, debug_log: Path | None = None) -> None:
        import torch

        if debug_log is not None:  # a spawned worker starts without the parent's log handlers
            open_debug_log(debug_log)
        torch.set_num_threads(threads)
        cls.extractor = FaceExtractor(config)


def process_item(item: MediaItem, label: LabelInfo, out_dir: Path, options: OutputOptions, extractor: FaceExtractor) -> dict:
    """Extract one file and write its crops; returns its tracks.jsonl or errors.jsonl record."""
    base = {
        "media_id": item.media_id,
        "path": str(item.path.resolve()),
        "kind": item.kind,
        "label": label.label,
        "method": label.method,
        "group": label.group,
        "label_source": label.source,
        "origin": label.origin,
    }
    try:
        if item.kind == "image":
            result = extractor.extract_image(item.path)
        else:
            result = extractor.extract_video(item.path)
    except Exception as error:  # one odd file must not end a run of thousands
        failure = file_failure(error, item.path)
        return {**base, "status": failure.status, "reason": failure.reason}
    if not result.faces:
        return {**base, "status": "no_face", "reason": f"no face found in {len(result.frame_indices)} sampled frames",
                "info": asdict(result.info)}
    record = {
        **base,
        "status": "ok",
        "info": asdict(result.info),
        "plan": result.plan,
        "frame_indices": result.frame_indices,
        "timestamps": np.round(result.timestamps, 4),
        "tracks": write_crops(result, item, out_dir, options),
        "warnings": result.warnings,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "rotation_retry": result.rotation_retry,  # the crops come from frames turned this much (see warnings)
    }
    if options.audio and item.kind == "video":
        try:
            record["audio"] = write_audio(item, out_dir)
        except DecodeError as error:  # the faces are good; only the sound track is damaged
            record["audio"] = None
            record["warnings"] = [*record["warnings"], f"audio not written: {error}"]
    return record


def write_audio(item: MediaItem, out_dir: Path, sample_rate: int = AUDIO_RATE) -> dict | None:
    """The video's audio as 16-bit mono WAV at ``sample_rate``, with its start time on the
    frames' clock so training can cut windows aligned with frame timestamps. None (and no
    file) for a video without audio."""
    try:
        audio = read_audio(item.path, sample_rate)
    except NoAudioError:
        return None
    name = f"{item.media_id}.wav"
    path = ExtractionFolder(out_dir).audio(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return {"file": name, "sample_rate": sample_rate, "start_time": round(audio.start_time, 6),
            "duration": round(audio.duration, 4)}


def _process_in_worker(item: MediaItem, label: LabelInfo, out_dir: Path, options: OutputOptions) -> dict:
    assert _Worker.extractor is not None
    return process_item(item, label, out_dir, options, _Worker.extractor)


def prepare_out_dir(out_dir: Path, config: ExtractConfig, options: OutputOptions, resume: bool) -> None:
    """Create ``out_dir`` with its ``config.json``; on ``resume``, check the settings are
    the ones it was extracted with (``ExtractError`` otherwise, or when it holds an
    extraction and ``resume`` is not set)."""
    settings = {"extract": config.to_dict(), "output": asdict(options)}
    folder = ExtractionFolder(out_dir)
    if folder.config_path.exists():
        previous = json.loads(folder.config_path.read_text())
        if not resume:
            raise ExtractError(f"{out_dir} already holds an extraction: pass --resume to continue it, or choose a new --out")
        saved = previous.get("extract") if isinstance(previous, dict) else None
        if isinstance(saved, dict) and "face_detector" not in saved:  # extracted before that key was renamed
            previous["extract"] = current_extract_keys(saved)
        if previous != json.loads(json.dumps(settings)):
            raise ExtractError(f"{out_dir} was extracted with other settings (see its config.json); use a new --out")
    folder.write_settings(settings)


def save_record(out_dir: Path, result: dict, summary: RunSummary) -> None:
    """Append one file's record to ``tracks.jsonl`` (faces found) or ``errors.jsonl``
    (no face, failed) and count it in ``summary``."""
    ExtractionFolder(out_dir).append(result)
    if result["status"] == "ok":
        summary.ok += 1
        summary.faces += len(result["tracks"])
        summary.crops += sum(len(t["crops"]) for t in result["tracks"])
    else:
        if result["status"] == "no_face":
            summary.no_face += 1
        else:
            summary.failed += 1


def extract_items(
    items: list[MediaItem],
    labels: LabelResolver,
    out_dir: Path,
    config: ExtractConfig,
    options: OutputOptions,
    workers: int = 1,
    debug_log: Path | None = None,
) -> Iterator[dict]:
    """Extract each item, writing its crops, and yield its record (``process_item``): in
    order with one worker, as they finish with a pool of ``workers`` processes."""
    if workers <= 1:
        extractor = FaceExtractor(config)
        for item in items:
            yield process_item(item, labels.lookup(item.path), out_dir, options, extractor)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_Worker.init, initargs=(config, threads, debug_log)
    ) as pool:
        futures = [pool.submit(_process_in_worker, item, labels.lookup(item.path), out_dir, options) for item in items]
        for future in as_completed(futures):
            yield future.result()


def run_extraction(
    items: list[MediaItem],
    labels: LabelResolver,
    out_dir: Path,
    config: ExtractConfig,
    options: OutputOptions = OutputOptions(),
    workers: int = 1,
    resume: bool = False,
    progress: bool = True,
    debug_log: Path | None = None,
) -> RunSummary:
    """Extract every item into ``out_dir``. Failures are recorded and the run goes on;
    ``debug_log`` is where worker processes send their debug messages (tracebacks)."""
    from tqdm import tqdm

    prepare_out_dir(out_dir, config, options, resume)
    summary = RunSummary(total=len(items), out_dir=str(out_dir))
    done = ExtractionFolder(out_dir).finished_files() if resume else set()
    todo = [item for item in items if str(item.path.resolve()) not in done]
    summary.skipped = len(items) - len(todo)
    bar = tqdm(total=len(todo), unit="video", disable=not progress, dynamic_ncols=True)
    try:
        with closing(extract_items(todo, labels, out_dir, config, options, workers, debug_log)) as results:
            for result in results:
                save_record(out_dir, result, summary)
                bar.update(1)
                bar.set_postfix(faces=summary.faces, no_face=summary.no_face, failed=summary.failed)
    finally:
        bar.close()
        ExtractionFolder(out_dir).write_labels_csv()
    return summary
