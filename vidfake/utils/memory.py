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

The opposite holds between the files of a scoring run: each file of a short clip frees
and allocates again the same large buffers (64 decoded full-HD frames of 6 MB each, the
model's and the face detector's activations), and by default glibc hands these straight
back to the system (``mmap``, or the heap's top beyond a few MB), so every file faults
them in afresh: on the project's 2-core VM about 350,000 page faults and 0.7 s of a 10 s
1080p clip's 3 to 5 s. ``reuse_freed_memory`` (called when a ``Scorer`` loads) keeps freed
buffers of up to 1 GiB in the heap for the next file instead; a process then stays at its
high-water mark between files, which is what it needs for the next one anyway. (Frames
are held one array each, not copied into one 400 MB block: a block that large seldom
fits the freed space left by the last file, so the heap grew again for the second file.)
``prefault_heap`` faults in the first file's frames while loading.

Where there is no glibc (macOS, Windows, musl) both do nothing.
"""
from __future__ import annotations

import ctypes
import sys

KEEP_FREED_BYTES = 1 << 30  # buffers up to this size are kept in the heap for reuse (reuse_freed_memory)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


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


def reuse_freed_memory(max_bytes: int = KEEP_FREED_BYTES) -> bool:
    """Make glibc keep freed blocks of up to ``max_bytes`` for the next allocation rather
    than return them to the system at once (``mallopt``: allocations that size and below
    come from the heap, and the heap is trimmed only when more than ``max_bytes`` is free
    at its top). Process-wide; ``release_freed_memory`` still trims on demand. True when set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, max_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, max_bytes))


def prefault_heap(nbytes: int) -> None:
    """Allocate ``nbytes``, write every page and free them: after ``reuse_freed_memory`` the
    pages stay in the heap, so the first file's frames find them there instead of faulting
    each page in (on the project's VM the first file of a process then cost 0.3-0.6 s more
    than the next ones instead of 0.7-1.1 s, for 0.7 s more loading)."""
    if nbytes > 0:
        import numpy as np

        block = np.ones(nbytes, np.uint8)  # written, so every page is faulted in (calloc'd zeros would not be)
        del block
