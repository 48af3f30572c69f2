"""``release_freed_memory`` gives a fragmented heap's free pages back to the system, which
is what keeps a long video's segments from starting ever higher (see ``vidfake/utils/memory.py``)."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from vidfake.utils.memory import release_freed_memory


def resident_mib() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's, /proc Linux's")
def test_freed_heap_blocks_stay_resident_until_released():
    blocks = [np.ones(64 << 10, np.uint8) for _ in range(3200)]  # 200 MiB in 64 KiB blocks: heap, not mmap
    pins = blocks[49::50]  # one block in 50 stays alive, so the freed ones are not at the heap's top
    before = resident_mib()
    del blocks
    freed = resident_mib()
    assert release_freed_memory()
    after = resident_mib()
    assert freed > before - 20  # free() alone returns (nearly) nothing
    assert freed - after > 150  # the 196 MiB freed around the pins go back
    assert all(int(pin[0]) == 1 for pin in pins)  # live blocks are untouched



def minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_freed_large_buffers_are_reused_without_faulting_their_pages_again():
    """After ``reuse_freed_memory`` a 100 MiB buffer freed and asked for again comes back
    from the heap: its pages are not faulted in a second time (25,600 pages of 4 KiB)."""
    from vidfake.utils.memory import reuse_freed_memory

    assert reuse_freed_memory()
    block = np.ones(100 << 20, np.uint8)
    del block
    before = minor_faults()
    block = np.ones(100 << 20, np.uint8)
    faults = minor_faults() - before
    del block
    assert faults < 2000


def test_prefault_leaves_pages_that_the_next_buffer_reuses():
    from vidfake.utils.memory import prefault_heap, reuse_freed_memory

    if not reuse_freed_memory():
        pytest.skip("mallopt is glibc's")
    prefault_heap(64 << 20)
    before = minor_faults()
    block = np.ones(64 << 20, np.uint8)
    faults = minor_faults() - before
    del block
    assert faults < 2000
    prefault_heap(0)  # nothing to do
