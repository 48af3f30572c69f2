"""Handing freed heap memory back to the operating system during long work.

glibc's malloc keeps freed blocks in its heap for reuse and returns them to the system
only from the heap's top. Scoring a long video alternates decoding, detection and model
batches whose buffers are freed in an order that leaves the heap fragmented: with
``every:30`` on a 10-minute 720p video, 400-650 MiB of freed heap stayed resident, and
each model batch's activations (about 1.2 GiB for 64 crops with Lite0) landed on top of
the last one's leftovers. ``malloc_trim(0)`` returns the free pages of the whole heap.

It is not free: the pages it returns are faulted in again when the heap grows back
(trimming once or twice a file made scoring a short clip take 5-8% more CPU time). So it
is called only where memory would otherwise grow with a video's length: between the
segments of a plan too long for one (``vidfake.extract.pipeline``) and between the
batches of one model call (``vidfake.scoring.model``); a short clip with the default
plan reaches neither.
Where there is no glibc (macOS, Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import sys


def release_freed_memory() -> bool:
    """Return the heap's free pages to the system (glibc's ``malloc_trim``); True when it ran."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process already uses
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
