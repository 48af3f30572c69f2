"""What an upload really is, from its decoded header, and whether it is within limits.

Neither the file name nor the client's content type is trusted: the bytes are opened
with Pillow (images: the header only) and with the project's video probe
(``vidfake.extract.video.probe``: container header and packet scan, no pixel decoding).
``inspect_media`` runs inside a probe worker process with a time limit, so a file built
to hang a demuxer cannot hang the service; ``check_limits`` runs in the server.

Only the image formats the scoring pipeline is meant for are accepted (Pillow can open
formats, such as EPS, that hand the file to other programs), and demuxers that follow
references to other files or URLs (playlists, concat lists) are refused.
"""
from __future__ import annotations

import re
import struct
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from vidfake.serve.config import ServeSettings

IMAGE_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "WEBP": "WebP"}
ANIMATED_FORMATS = frozenset({"GIF"})  # identified by Pillow but scored as videos (FFmpeg decodes them)
# FFmpeg demuxers that read other files or URLs named inside the upload.
REFERENCE_DEMUXERS = frozenset({"hls", "applehttp", "concat", "dash", "ffmetadata", "image2", "tty", "lavfi"})


@dataclass(frozen=True)
class MediaFacts:
    """The result of the header check; ``kind`` is None when the file is neither a video
    nor an image we accept, with ``reason`` saying why."""

    kind: str | None
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None  # image format or video container
    codec: str | None = None
    duration: float | None = None
    fps: float | None = None
    frames: int | None = None
    has_audio: bool | None = None
    oversized: str | None = None  # an image too large to even open safely (Pillow's bomb check)

    def to_dict(self) -> dict:
        """The facts as a JSON-ready dict."""
        return asdict(self)

    def media_summary(self) -> dict:
        """What the job record shows about the file."""
        keys = ("width", "height", "format", "codec", "duration", "fps", "frames", "has_audio")
        return {k: v for k, v in self.to_dict().items() if k in keys and v is not None}


def inspect_media(path: Path) -> MediaFacts:
    """Identify ``path`` from its content: an accepted image, a video, or neither."""
    from PIL import Image, UnidentifiedImageError

    from vidfake.extract.video import DecodeError, probe

    if path.stat().st_size == 0:
        return MediaFacts(None, "the file is empty (0 bytes)")
    image_format = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header; pixels are not decoded
                image_format, size = image.format, image.size
    except Image.DecompressionBombError as error:
        return MediaFacts("image", format="image", oversized=str(error))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error):
        pass  # not an image Pillow knows (or one whose header lies): try it as a video
    if image_format in IMAGE_FORMATS:
        return MediaFacts("image", width=size[0], height=size[1], format=IMAGE_FORMATS[image_format])
    if image_format is not None and image_format not in ANIMATED_FORMATS:
        accepted = ", ".join(sorted(set(IMAGE_FORMATS.values())))
        return MediaFacts(None, f"{image_format} images are not supported (use {accepted}, or a video)")
    try:
        info = probe(path)
    except DecodeError as error:
        return MediaFacts(None, _without_path(str(error), path))
    demuxers = info.container_format.split(",")
    if REFERENCE_DEMUXERS.intersection(demuxers):
        return MediaFacts(None, f"{info.container_format} files (playlists, file lists) are not accepted")
    if any(d.endswith("_pipe") for d in demuxers):  # a still image Pillow could not read
        return MediaFacts(None, f"a {info.codec} image that cannot be read as an accepted image format")
    return MediaFacts(
        "video", width=info.width, height=info.height, format=info.container_format, codec=info.codec,
        duration=round(info.duration, 3), fps=round(info.fps, 3), frames=info.num_frames, has_audio=info.has_audio,
    )


def _without_path(message: str, path: Path) -> str:
    """A decoder message without the server's file path (and FFmpeg's errno noise)."""
    message = message.replace(f"{path}: ", "").replace(f": '{path}'", "").replace(str(path), "the file")
    return re.sub(r"\[Errno -?\d+\]\s*", "", message)


def check_limits(facts: MediaFacts, settings: ServeSettings) -> str | None:
    """Why an identified file is over the service's limits (answered 422), or None."""
    limit = "x".join(map(str, settings.max_resolution))
    if facts.oversized:
        return f"the image is too large to process ({facts.oversized}); the limit is {limit}"
    if facts.width is not None and facts.height is not None and not settings.resolution_allowed(facts.width, facts.height):
        return f"the {facts.kind} is {facts.width}x{facts.height}, larger than the {limit} limit (--max-resolution)"
    if facts.kind == "video" and facts.duration is not None and facts.duration > settings.max_duration_s:
        return (f"the video lasts {facts.duration:.1f} s, longer than the {settings.max_duration_s:g} s limit "
                "(--max-duration)")
    return None
