"""Re-encode a video the ways uploads arrive: H.264 at high and low quality, half size,
MPEG-1, MPEG-4 Part 2 and VP9, audio carried along.

Why: a detector's score should not move when one and the same clip is re-encoded, and the
codec benchmark (``benchmarks/codec_consistency.py``) measures how far it does. Everything is
done with PyAV (the FFmpeg libraries the package already decodes with), so no ``ffmpeg``
binary is needed. Frames are taken at the encoding's frame rate from the source timeline
(the latest source frame at each output time), so a codec with fixed frame rates (MPEG-1)
gets the same motion as the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["ENCODINGS", "Encoding", "reencode"]

MPEG1_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50),
               Fraction(60000, 1001), Fraction(60))


@dataclass(frozen=True)
class Encoding:
    """One way to write a video: codec, container suffix, options, scale and audio codec."""

    name: str
    codec: str
    suffix: str
    options: dict[str, str] = field(default_factory=dict)
    scale: float = 1.0
    bits_per_pixel: float | None = None  # constant bit rate (codecs without a quality mode here)
    audio_codec: str = "aac"
    fixed_rates: tuple[Fraction, ...] = ()  # the codec only accepts these frame rates


ENCODINGS: dict[str, Encoding] = {e.name: e for e in (
    Encoding("h264-crf18", "libx264", ".mp4", {"crf": "18", "preset": "veryfast"}),
    Encoding("h264-crf36", "libx264", ".mp4", {"crf": "36", "preset": "veryfast"}),
    Encoding("half-size", "libx264", ".mp4", {"crf": "23", "preset": "veryfast"}, scale=0.5),
    Encoding("mpeg1", "mpeg1video", ".mpg", bits_per_pixel=0.12, audio_codec="mp2", fixed_rates=MPEG1_RATES),
    Encoding("mpeg4-part2", "mpeg4", ".mp4", bits_per_pixel=0.12),
    Encoding("vp9", "libvpx-vp9", ".webm", {"crf": "34", "b": "0", "deadline": "realtime", "cpu-used": "8"},
             audio_codec="libopus"),
)}


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _output_rate(rate: Fraction, encoding: Encoding) -> Fraction:
    if not encoding.fixed_rates:
        return rate
    return min(encoding.fixed_rates, key=lambda allowed: abs(float(allowed) - float(rate)))


def _video_frames(container: av.container.InputContainer, max_seconds: float) -> list[tuple[float, np.ndarray]]:
    """(time in seconds, RGB frame) of the first ``max_seconds`` of the first video stream."""
    stream = container.streams.video[0]
    frames = []
    for frame in container.decode(stream):
        t = float(frame.time) if frame.time is not None else len(frames) / float(stream.average_rate or 25)
        if frames and t - frames[0][0] >= max_seconds:
            break
        frames.append((t, frame.to_ndarray(format="rgb24")))
    return frames


def _add_audio_stream(source: Path, out: av.container.OutputContainer, encoding: Encoding):
    """The output's audio stream (before anything is muxed), or None when the source has no audio."""
    with av.open(str(source)) as container:
        if not container.streams.audio:
            return None
    stream = out.add_stream(encoding.audio_codec, rate=48000 if encoding.audio_codec == "libopus" else 44100)
    stream.layout = "stereo"
    return stream


def _write_audio(source: Path, out: av.container.OutputContainer, stream, max_seconds: float) -> None:
    """The first audio stream's first ``max_seconds``, re-encoded into ``stream``."""
    rate = stream.codec_context.sample_rate
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="stereo", rate=rate,
                                  frame_size=stream.codec_context.frame_size or None)
    written = 0
    with av.open(str(source)) as container:
        for packet_in in container.demux(container.streams.audio[0]):
            try:
                frames = packet_in.decode()
            except av.error.InvalidDataError:  # a damaged packet: skip it, as players do
                continue
            for frame in frames:
                frame.pts = None
                for chunk in resampler.resample(frame):
                    for packet in stream.encode(chunk):
                        out.mux(packet)
                    written += chunk.samples
            if written >= max_seconds * rate:
                break
    for chunk in resampler.resample(None):
        for packet in stream.encode(chunk):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def reencode(source: str | Path, target_stem: str | Path, encoding: Encoding | str, max_seconds: float = 10.0) -> Path:
    """Write ``source``'s first ``max_seconds`` as ``target_stem`` + the encoding's suffix and
    return that path (written under a temporary name and renamed when complete). Audio, where
    the source has it, is re-encoded alongside."""
    encoding = ENCODINGS[encoding] if isinstance(encoding, str) else encoding
    source = Path(source)
    target = Path(f"{target_stem}{encoding.suffix}")  # appended: a stem may hold dots of its own
    partial = target.with_name(f".{target.stem}.partial{encoding.suffix}")  # the suffix picks the container
    with av.open(str(source)) as container:
        if not container.streams.video:
            raise ValueError(f"{source}: no video stream")
        in_rate = container.streams.video[0].average_rate or Fraction(25)
        frames = _video_frames(container, max_seconds)
    if not frames:
        raise ValueError(f"{source}: no video frames decoded")
    rate = _output_rate(Fraction(in_rate).limit_denominator(1001), encoding)
    height, width = frames[0][1].shape[:2]
    out_w, out_h = _even(width * encoding.scale), _even(height * encoding.scale)
    start, end = frames[0][0], frames[-1][0]
    count = max(1, int(np.floor((end - start) * float(rate))) + 1)
    with av.open(str(partial), "w") as out:
        stream = out.add_stream(encoding.codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
        stream.options = dict(encoding.options)
        if encoding.bits_per_pixel is not None:
            stream.bit_rate = int(encoding.bits_per_pixel * out_w * out_h * float(rate))
        audio = _add_audio_stream(source, out, encoding)
        times = np.array([t for t, _ in frames])
        for k in range(count):
            index = int(np.searchsorted(times, start + k / float(rate), side="right")) - 1
            image = av.VideoFrame.from_ndarray(frames[max(index, 0)][1], format="rgb24")
            if (out_w, out_h) != (width, height):
                image = image.reformat(width=out_w, height=out_h)
            for packet in stream.encode(image):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio is not None:
            _write_audio(source, out, audio, max_seconds)
    partial.replace(target)  # only a finished file gets the name, so a cache of them never holds a torn one
    return target
