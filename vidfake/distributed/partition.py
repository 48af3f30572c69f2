"""Which files each process takes: deterministic and balanced by expected cost.

Every process computes the same split from the same list, so no process has to send the
others their share. The cost of a file is its size on disk plus a fixed part
(``FILE_OVERHEAD_BYTES``: opening, probing and the face search on a first frame cost
something even for a small image); size follows decoding time closely for one codec and
costs only a ``stat``, where probing durations would open every file on every process.
"""
from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from pathlib import Path

FILE_OVERHEAD_BYTES = 256 * 1024


def file_cost(path: str | Path) -> float:
    """The expected cost of one file: its size in bytes plus ``FILE_OVERHEAD_BYTES``
    (an unreadable file costs only the overhead: it fails fast)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    return float(size + FILE_OVERHEAD_BYTES)


def balanced_shards(costs: Sequence[float], world_size: int) -> list[list[int]]:
    """Split item indices ``0..len(costs)-1`` into ``world_size`` shards of near-equal
    total cost: the costliest item first, each to the shard with the least cost so far
    (then the fewest items, then the lowest rank), so equal costs go round-robin. Each
    shard lists its indices in ascending order, the order a single process takes them.
    Deterministic: the same costs always give the same shards."""
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, not {world_size}")
    if any(cost < 0 for cost in costs):
        raise ValueError("costs must not be negative")
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    heap = [(0.0, 0, rank) for rank in range(world_size)]
    shards: list[list[int]] = [[] for _ in range(world_size)]
    for index in order:
        load, count, rank = heapq.heappop(heap)
        shards[rank].append(index)
        heapq.heappush(heap, (load + costs[index], count + 1, rank))
    return [sorted(shard) for shard in shards]
