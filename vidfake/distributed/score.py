"""``vidfake score`` across processes (or resumable in one): each process appends its
files' verdicts to a shard next to ``--out`` (``OUT.shards/``); rank 0 returns every
verdict in the order one process gives, and the shards are deleted once the results
are written. ``--resume`` scores only the files no shard holds yet.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from vidfake.distributed.context import DistContext
from vidfake.distributed.group import ProcessGroup, ShardError
from vidfake.distributed.runner import map_sharded
from vidfake.distributed.shards import ShardStore
from vidfake.extract.dataset import MediaItem
from vidfake.scoring.verdict import Verdict

RESUME_HINT = "run the same command again with --resume to score only the files that are missing"


def shard_folder(out: Path) -> Path:
    """Where the shards of a run writing ``out`` go: ``out`` + ``.shards``."""
    return out.with_name(out.name + ".shards")


def score_sharded(
    items: Sequence[MediaItem],
    score: Callable[[MediaItem], Verdict],
    out: Path | None,
    context: DistContext,
    *,
    resume: bool,
    progress: bool = True,
) -> list[Verdict] | None:
    """Score this process's share of ``items`` with ``score``; rank 0 returns the verdict
    of every item in order (None on the other processes). Call ``clear_shards(out)`` once
    they are written. ``ShardError`` without ``out``, or when a process stopped."""
    if out is None:
        raise ShardError("give --out: the processes keep their verdicts next to it (OUT.shards/) until merged")
    with ProcessGroup(context, RESUME_HINT) as group:
        merged = map_sharded(items, [item.path for item in items], lambda item: score(item).to_dict(),
                             shard_folder(out), group, resume=resume, progress=progress)
    if merged is None:
        return None
    return [Verdict(**record) for _, record in merged]


def clear_shards(out: Path) -> None:
    """Delete the shards of a run writing ``out``: its results are written."""
    ShardStore(shard_folder(out), rank=0).clear()
