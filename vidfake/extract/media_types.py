"""Which files count as videos and which as still images, decided by suffix alone.

One shared definition, so that input discovery, label lookup and extraction agree on what
a "video" is. Deciding by suffix (not by probing) keeps folder scans cheap; a file with a
video suffix that cannot be decoded is reported later by the decoder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

# Lowercase, with the dot, as Path.suffix gives them. ".ts" is MPEG transport stream
# (it also matches TypeScript sources, which do not normally sit in video folders).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".ts"}
)
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

MediaKind = Literal["video", "image"]


def media_kind(path: str | os.PathLike[str]) -> MediaKind | None:
    """Return "video" or "image" from the file's suffix (any case), else None."""
    suffix = Path(path).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None
