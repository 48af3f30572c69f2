"""Make the packaged example clip: re-encode a short talking-face video into a small
H.264/AAC mp4 that every decoder and browser opens.

``python -m vidfake.examples.package SOURCE OUT.mp4 [--crf 18]``

This is how ``vidfake/examples/grid_s1_bbaf3s.mp4`` was made from the GRID corpus file
``s1/bbaf3s.mpg`` (MPEG-1 video, MP2 audio, 438 KB). Every frame is kept at its size, rate
and timestamp, and the audio keeps its start on the same clock, so the lip sync is the
source's; only the audio is reduced to 16 kHz mono, which is what vidfake's sync head
reads. A clip that comes out larger than ``MAX_EXAMPLE_KB`` is refused: it ships in every
install.
"""
from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av

__all__ = ["ExampleEncodeError", "MAX_EXAMPLE_KB", "reencode_example"]

MAX_EXAMPLE_KB = 400
AUDIO_RATE = 16000  # the sync head's sample rate: anything above it is never used
AUDIO_BITRATE = 32000


class ExampleEncodeError(ValueError):
    """The source cannot become the example (no audio, no constant frame rate, too big)."""


def reencode_example(source: str | Path, out: str | Path, crf: int = 18) -> Path:
    """Re-encode ``source`` (a video with a face and speech) to ``out`` (.mp4): H.264
    yuv420p at the source's size and frame rate, AAC mono at 16 kHz."""
    source, out = Path(source), Path(out)
    with av.open(str(source)) as src:
        if not src.streams.video or not src.streams.audio:
            raise ExampleEncodeError(f"{source}: the example needs a video and an audio stream (it runs the lip-sync head)")
        video_in, audio_in = src.streams.video[0], src.streams.audio[0]
        fps = video_in.average_rate
        if not fps:
            raise ExampleEncodeError(f"{source}: no frame rate in the stream")
        width, height = video_in.codec_context.width, video_in.codec_context.height
        if width % 2 or height % 2:
            raise ExampleEncodeError(f"{source}: {width}x{height} is odd; yuv420p H.264 needs even sides")
        frame_tb = Fraction(1) / Fraction(fps)
        with av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"}) as dst:
            # one thread: x264's output then depends only on the input, so the file repeats
            video_out = dst.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "slow", "threads": "1"})
            video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
            video_out.codec_context.time_base = frame_tb
            audio_out = dst.add_stream("aac", rate=AUDIO_RATE)
            audio_out.layout = "mono"
            audio_out.bit_rate = AUDIO_BITRATE
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
            audio_pts: int | None = None
            frames = 0
            for frame in src.decode(video_in, audio_in):
                if frame.time is None:
                    raise ExampleEncodeError(f"{source}: a frame without a timestamp")
                if isinstance(frame, av.VideoFrame):
                    exact = Fraction(frame.time).limit_denominator(10**6) / frame_tb
                    if abs(exact - round(exact)) > Fraction(1, 100):
                        raise ExampleEncodeError(f"{source}: frame at {frame.time:.4f} s is off the {fps} fps grid")
                    picture = frame.reformat(format="yuv420p")
                    picture.pts, picture.time_base = round(exact), frame_tb
                    dst.mux(video_out.encode(picture))
                    frames += 1
                    continue
                if audio_pts is None:  # the audio starts where the source's does, on the frames' clock
                    audio_pts = round(frame.time * AUDIO_RATE)
                for chunk in resampler.resample(frame):
                    chunk.pts, chunk.time_base = audio_pts, Fraction(1, AUDIO_RATE)
                    audio_pts += chunk.samples
                    dst.mux(audio_out.encode(chunk))
            for chunk in resampler.resample(None):
                chunk.pts, chunk.time_base = audio_pts, Fraction(1, AUDIO_RATE)
                audio_pts += chunk.samples
                dst.mux(audio_out.encode(chunk))
            dst.mux(video_out.encode(None))
            dst.mux(audio_out.encode(None))
    if frames == 0 or audio_pts is None:
        out.unlink(missing_ok=True)
        raise ExampleEncodeError(f"{source}: no video frames or no audio decoded")
    size_kb = out.stat().st_size / 1024
    if size_kb > MAX_EXAMPLE_KB:
        out.unlink()
        raise ExampleEncodeError(f"{out.name} would be {size_kb:.0f} KB, over {MAX_EXAMPLE_KB} KB: use a shorter clip or a higher --crf")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: re-encode a source video into the example clip; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m vidfake.examples.package",
        description="Re-encode a short talking-face video into the small H.264/AAC mp4 that ships as vidfake's example.",
    )
    parser.add_argument("source", type=Path, help="a short video with one face and speech (e.g. a GRID corpus .mpg)")
    parser.add_argument("out", type=Path, help="the .mp4 to write")
    parser.add_argument("--crf", type=int, default=18, help="x264 quality (lower is better and bigger)")
    args = parser.parse_args(argv)
    try:
        path = reencode_example(args.source, args.out, args.crf)
    except (ExampleEncodeError, av.error.FFmpegError) as error:
        print(f"vidfake.examples.package: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
