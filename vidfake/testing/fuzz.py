"""Seeded mutation fuzzing of media files: damaged copies of real videos and images, run
through probe, decode and scoring to find inputs that crash instead of being reported.

A mutant is a source file with one to three mutations applied (bit flips, truncation, a
garbage header, swapped or duplicated blocks, zeroed blocks, and lying sizes: a box,
chunk or table-count field overwritten with an extreme value). Everything is derived
from ``(seed, source name, index)``, so a mutant is rebuilt exactly from its name, and a
crash found in a long run (``benchmarks/fuzz.py``) can be replayed and shrunk
(``minimize``) into a regression test.

What counts as a crash: at the decode level (``check_decode``) any exception other than
``DecodeError`` (which is the decoder's clean answer for a bad file); at the scoring
level (``check_score``) a verdict whose failure ``file_failure`` marked unexpected (the
traceback it logs is captured and reported). Hangs and memory are bounded by running
each file in a child process (``FuzzTask`` under ``vidfake.serve.process.ChildProcess``,
as ``benchmarks/fuzz.py`` does): killed past a time limit, its peak memory read per file.
The test suite runs a fixed-seed set in-process (``tests/testing/test_fuzz.py``).
"""
from __future__ import annotations

import logging
import os
import random
import struct
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vidfake.extract.media_types import media_kind

# Box / chunk types whose size or count fields the "lying size" mutation targets.
# MP4/MOV atoms (size: 4 bytes big-endian before the type), PNG chunks (same layout),
# RIFF/AVI chunks (size: 4 bytes little-endian after the id).
MP4_BOXES = (b"ftyp", b"moov", b"mvhd", b"trak", b"tkhd", b"mdia", b"mdhd", b"hdlr", b"minf", b"stbl", b"stsd",
             b"stts", b"stss", b"stsc", b"stsz", b"stco", b"co64", b"ctts", b"edts", b"elst", b"avcC", b"hvcC",
             b"esds", b"mdat", b"udta", b"meta", b"free")
MP4_TABLES = frozenset({b"stts", b"stss", b"stsc", b"stsz", b"stco", b"co64", b"ctts", b"elst", b"stsd"})
PNG_CHUNKS = (b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tEXt", b"pHYs")
RIFF_CHUNKS = (b"RIFF", b"LIST", b"avih", b"strh", b"strf", b"movi", b"idx1", b"00dc", b"01wb")
EXTREMES = (0, 1, 7, 8, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000000)
MAX_BLOCK = 4096


@dataclass(frozen=True)
class Mutant:
    """One damaged copy of ``source``; ``name`` encodes how to rebuild it."""

    source: Path
    index: int
    operations: tuple[str, ...]
    data: bytes

    @property
    def name(self) -> str:
        """File name for the mutant: source stem and index, source suffix."""
        return f"{self.source.stem}-{self.index:04d}{self.source.suffix}"


# -- mutations (each takes the bytes and an RNG, returns new bytes and a description) --


def bit_flips(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Flip a few to a few hundred random bits."""
    out = bytearray(data)
    n = rng.choice((1, 4, 16, 64, 300))
    for _ in range(n):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), f"bit_flips(n={n})"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Cut the file off at a random point, as an interrupted download would."""
    keep = rng.randrange(1, len(data))
    return data[:keep], f"truncate(keep={keep})"


def garbage_header(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Overwrite the first bytes (the container's magic and header) with random ones."""
    n = min(len(data), rng.choice((4, 16, 64, 512)))
    return rng.randbytes(n) + data[n:], f"garbage_header(n={n})"


def _block(data: bytes, rng: random.Random) -> tuple[int, int]:
    size = rng.randrange(1, max(2, min(MAX_BLOCK, len(data) // 4)))
    return rng.randrange(max(1, len(data) - size)), size


def swap_blocks(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Exchange two non-overlapping blocks, so offsets point at the wrong data."""
    (a, size), (b, _) = _block(data, rng), _block(data, rng)
    a, b = sorted((a, b))
    if b < a + size:
        return data, "swap_blocks(overlap: none)"
    out = data[:a] + data[b : b + size] + data[a + size : b] + data[a : a + size] + data[b + size :]
    return out, f"swap_blocks(at={a},{b} size={size})"


def duplicate_block(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Insert a copy of a block elsewhere, shifting everything after it."""
    start, size = _block(data, rng)
    at = rng.randrange(len(data))
    return data[:at] + data[start : start + size] + data[at:], f"duplicate_block(from={start} size={size} at={at})"


def zero_block(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Zero out a block, as a damaged disk sector would."""
    start, size = _block(data, rng)
    return data[:start] + bytes(size) + data[start + size :], f"zero_block(at={start} size={size})"


def lying_size(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Overwrite a container's size or count field with an extreme or off-by-one value."""
    sites = []  # (offset of the 4-byte field, byte order, what it is)
    for tag in MP4_BOXES + PNG_CHUNKS:
        at = data.find(tag, 4)
        while at != -1 and len(sites) < 256:
            sites.append((at - 4, ">", tag.decode("latin-1") + ".size"))
            if tag in MP4_TABLES and at + 12 <= len(data):
                sites.append((at + 8, ">", tag.decode("latin-1") + ".count"))  # after version and flags
            at = data.find(tag, at + 4)
    for tag in RIFF_CHUNKS:
        at = data.find(tag)
        while at != -1 and at + 8 <= len(data) and len(sites) < 512:
            sites.append((at + 4, "<", tag.decode("latin-1") + ".size"))
            at = data.find(tag, at + 4)
    if not sites:  # no known container: any aligned 32-bit word in the first KiB
        sites = [(i, rng.choice("<>"), "word") for i in range(0, min(len(data) - 4, 1024), 4)]
    if not sites:
        return data, "lying_size(no site)"
    offset, order, what = rng.choice(sites)
    (old,) = struct.unpack(order + "I", data[offset : offset + 4])
    value = rng.choice(EXTREMES + ((old + 1) & 0xFFFFFFFF, max(0, old - 1), (old * 16) & 0xFFFFFFFF))
    out = data[:offset] + struct.pack(order + "I", value) + data[offset + 4 :]
    return out, f"lying_size({what} {old}->{value})"


MUTATIONS: dict[str, Callable[[bytes, random.Random], tuple[bytes, str]]] = {
    "bit_flips": bit_flips,
    "truncate": truncate,
    "garbage_header": garbage_header,
    "swap_blocks": swap_blocks,
    "duplicate_block": duplicate_block,
    "zero_block": zero_block,
    "lying_size": lying_size,
}


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, tuple[str, ...]]:
    """One to three mutations, chosen and parameterised by ``rng``."""
    steps = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        if len(data) < 2:
            break
        data, step = MUTATIONS[rng.choice(sorted(MUTATIONS))](data, rng)
        steps.append(step)
    return data, tuple(steps)


def make_mutant(source: Path, index: int, seed: int = 0, data: bytes | None = None) -> Mutant:
    """Mutant ``index`` of ``source`` under ``seed`` (the same bytes on every machine)."""
    source = Path(source)
    original = source.read_bytes() if data is None else data
    rng = random.Random(f"{seed}:{source.name}:{index}")
    mutated, steps = mutate(original, rng)
    return Mutant(source, index, steps, mutated)


def mutants(sources: Sequence[Path], count: int, seed: int = 0) -> Iterator[Mutant]:
    """``count`` mutants, taking the sources in turn (each source is read once)."""
    originals = {Path(s): Path(s).read_bytes() for s in sources}
    order = list(originals)
    for i in range(count):
        source = order[i % len(order)]
        yield make_mutant(source, i // len(order), seed, originals[source])


def write_mutants(sources: Sequence[Path], out_dir: Path, count: int, seed: int = 0) -> list[Path]:
    """Write ``count`` mutants into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for mutant in mutants(sources, count, seed):
        path = out_dir / mutant.name
        path.write_bytes(mutant.data)
        paths.append(path)
    return paths


# -- seeds made here, so a run covers several containers and codecs without fixtures ------

# (file suffix, container format, video codec, pixel format, audio codec or None)
SYNTHETIC_FORMATS = (
    (".mp4", "mp4", "libx264", "yuv420p", "aac"),
    (".mkv", "matroska", "libvpx-vp9", "yuv420p", "libopus"),
    (".avi", "avi", "mjpeg", "yuvj420p", "pcm_s16le"),
    (".mpg", "mpeg", "mpeg2video", "yuv420p", "mp2"),
    (".webm", "webm", "libvpx", "yuv420p", None),
    (".mov", "mov", "libx265", "yuv420p10le", "aac"),
)


def synthetic_seeds(out_dir: Path, face: np.ndarray | None = None, frames: int = 12, size: tuple[int, int] = (160, 120)
                    ) -> list[Path]:
    """Small clips (``size``, ``frames`` frames at 25 fps, a tone where the container
    takes audio) in each of ``SYNTHETIC_FORMATS`` whose encoder this FFmpeg has, plus a
    JPEG and a PNG still. ``face`` (an RGB image) is pasted moving across the frames so
    the scoring path past face detection is exercised too."""
    import av
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (height, width, 3), dtype=np.uint8)
    pictures = []
    for t in range(frames):
        frame = np.roll(base, 3 * t, axis=1)
        if face is not None:
            h, w = min(face.shape[0], height), min(face.shape[1], width)
            x = (width - w) * t // max(1, frames - 1)
            frame[(height - h) // 2 : (height - h) // 2 + h, x : x + w] = face[:h, :w]
        pictures.append(frame)
    written = []
    for suffix, container_format, codec, pix_fmt, audio_codec in SYNTHETIC_FORMATS:
        path = out_dir / f"synthetic_{codec.replace('lib', '')}{suffix}"
        try:
            _encode(path, container_format, codec, pix_fmt, audio_codec, pictures)
        except (av.error.FFmpegError, ValueError):  # an encoder this FFmpeg lacks
            path.unlink(missing_ok=True)
            continue
        written.append(path)
    for suffix in (".jpg", ".png"):
        path = out_dir / f"synthetic_still{suffix}"
        Image.fromarray(pictures[frames // 2]).save(path)
        written.append(path)
    return written


def _encode(path: Path, container_format: str, codec: str, pix_fmt: str, audio_codec: str | None,
            pictures: list[np.ndarray]) -> None:
    import av

    fps, rate = 25, 48000 if audio_codec == "libopus" else 16000
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = pictures[0].shape[1], pictures[0].shape[0], pix_fmt
        if codec == "libx265":
            video.options = {"x265-params": "log-level=none"}
        audio = container.add_stream(audio_codec, rate=rate) if audio_codec else None
        if audio is not None:
            audio.layout = "mono"
        for picture in pictures:
            container.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(video.encode(None))
        if audio is not None:
            seconds = len(pictures) / fps
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
            frame_size = audio.codec_context.frame_size or 1024
            to_codec = av.AudioResampler(format=audio.codec_context.format.name, layout="mono", rate=rate)
            for start in range(0, len(tone), frame_size):
                frame = av.AudioFrame.from_ndarray(tone[None, start : start + frame_size], format="flt", layout="mono")
                frame.sample_rate, frame.pts = rate, start
                for resampled in to_codec.resample(frame):
                    container.mux(audio.encode(resampled))
            container.mux(audio.encode(None))


# -- running a file through the code ------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one file: ``ok`` (handled, scored or decoded), ``rejected``
    (reported cleanly as unreadable or unsupported), or ``crash`` (an exception that
    no caller expects, with its traceback)."""

    path: str
    stage: str  # "decode" or "score"
    result: str  # "ok", "rejected" or "crash"
    detail: str = ""  # status or error message
    error_type: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The outcome as a JSON-ready dict."""
        return asdict(self)


def check_decode(path: Path, frames: int = 8) -> Outcome:
    """Probe, open and decode ``frames`` frames spread over the video, and its audio, as
    the scoring pipeline does; an image is loaded as scoring loads it."""
    from vidfake.extract.pipeline import ExtractConfig, MediaError, load_image
    from vidfake.extract.sampling import uniform
    from vidfake.extract.video import DecodeError, open_video, read_audio

    start = time.perf_counter()
    try:
        if media_kind(path) == "image":
            image = load_image(path)
            detail = f"image {image.shape[1]}x{image.shape[0]}"
        else:
            with open_video(path) as reader:
                info, limit = reader.info, ExtractConfig().max_pixels
                if info.width * info.height > limit:  # refused before decoding, as the pipeline does
                    raise MediaError(f"{path}: {info.width}x{info.height} is over the {limit / 1e6:.0f} MP limit")
                wanted = uniform(frames).indices(reader.info.num_frames)
                decoded = sum(len(indices) for indices, _ in reader.iter_chunks(wanted))
                audio = read_audio(path).duration if reader.info.has_audio else None
            detail = f"{decoded} of {len(wanted)} frames decoded" + ("" if audio is None else f", {audio:.2f} s audio")
        return Outcome(str(path), "decode", "ok", detail, seconds=time.perf_counter() - start)
    except DecodeError as error:
        return Outcome(str(path), "decode", "rejected", str(error), type(error).__name__,
                       seconds=time.perf_counter() - start)
    except Exception as error:  # finding these is the point
        return Outcome(str(path), "decode", "crash", f"{type(error).__name__}: {error}", type(error).__name__,
                       traceback.format_exc(), time.perf_counter() - start)


class _Captured(logging.Handler):
    """Collects the tracebacks ``file_failure`` logs for unexpected errors."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_score(path: Path, scorer) -> Outcome:
    """Score ``path`` with ``scorer`` (a ``vidfake.scoring.Scorer``); a crash is a failure
    that the per-file safety net had to catch (``file_failure`` logged it unexpected)."""
    logger = logging.getLogger("vidfake.failures")
    handler, level = _Captured(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    start = time.perf_counter()
    try:
        kind = media_kind(path) or "video"
        verdict = scorer.score(path, kind)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    seconds = time.perf_counter() - start
    if handler.records:
        record = handler.records[0]
        tb = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else record.getMessage()
        error_type = type(record.exc_info[1]).__name__ if record.exc_info else None
        return Outcome(str(path), "score", "crash", verdict.error or "", error_type, tb, seconds)
    result = "ok" if verdict.status in ("ok", "no_face") else "rejected"
    return Outcome(str(path), "score", result, verdict.error or verdict.status, seconds=seconds,
                   extra={"status": verdict.status})


# -- shrinking a crash ----------------------------------------------------------------------


def minimize(data: bytes, still_fails: Callable[[bytes], bool], original: bytes | None = None,
             max_tries: int = 200) -> bytes:
    """A smaller input that still fails: cut the tail while it fails (halving the cut
    each time it stops failing), then, given the ``original`` the mutant came from, put
    back original bytes wherever the failure does not need the change. Greedy and
    bounded by ``max_tries`` calls of ``still_fails``."""
    tries = 0

    def fails(candidate: bytes) -> bool:
        nonlocal tries
        tries += 1
        return still_fails(candidate)

    step = len(data) // 2
    while step >= 1 and tries < max_tries:
        if len(data) - step >= 1 and fails(data[: len(data) - step]):
            data = data[: len(data) - step]
        else:
            step //= 2
    if original is not None:
        diffs = [i for i in range(min(len(data), len(original))) if data[i] != original[i]]
        chunk = max(1, len(diffs) // 2)
        while diffs and chunk >= 1 and tries < max_tries:
            kept = []
            for start in range(0, len(diffs), chunk):
                part = diffs[start : start + chunk]
                candidate = bytearray(data)
                for i in part:
                    candidate[i] = original[i]
                if tries < max_tries and fails(bytes(candidate)):
                    data = bytes(candidate)
                else:
                    kept += part
            if len(kept) == len(diffs):
                chunk //= 2
            diffs = kept
    return data


# -- isolation: one file per call in a child process (hangs killed, memory measured) --------


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``) in MiB since the last
    ``reset_peak_rss`` (Linux; elsewhere the lifetime peak from ``getrusage``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start the peak-memory count afresh, so each file's peak is its own (Linux's
    ``clear_refs`` 5 resets ``VmHWM``; a no-op where it is not available)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class FuzzTask:
    """The handler a ``vidfake.serve.process.ChildProcess`` runs for ``benchmarks/fuzz.py``:
    ``{"path", "stage"}`` -> the ``Outcome`` as a dict plus ``peak_rss_mb`` (this file's
    peak) and ``added_mb`` (how far it rose above the memory held before it). The parent
    kills the child when a file overruns its time limit (a hang) and sees a native crash
    as the child's death, so neither can stop the run."""

    def __init__(self, checkpoint: str | None = None, plan: str = "uniform:4", threads: int = 1):
        import torch

        torch.set_num_threads(threads)
        self.scorer = None
        if checkpoint is not None:
            from vidfake.scoring import Scorer

            self.scorer = Scorer(checkpoint, plan=plan)
            self.scorer.load()
        self.info = {"pid": os.getpid()}

    def __call__(self, request: dict) -> dict:
        path, stage = Path(request["path"]), request["stage"]
        reset_peak_rss()
        before = peak_rss_mb()  # after a reset: the resident memory now (libraries, model)
        if stage == "score":
            if self.scorer is None:
                raise ValueError("the score stage needs a checkpoint")
            outcome = check_score(path, self.scorer)
        else:
            outcome = check_decode(path)
        peak = peak_rss_mb()
        return {**outcome.to_dict(), "peak_rss_mb": round(peak, 1), "added_mb": round(peak - before, 1)}
