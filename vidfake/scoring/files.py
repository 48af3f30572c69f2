"""Score many files: the batch loop behind ``vidfake score`` (and any caller with a list).

In one process the files are scored in order; under torchrun or srun, or with ``resume``,
each process appends its files' verdicts to a shard next to ``out`` (``OUT.shards/``),
rank 0 returns every verdict in the order one process gives, and ``clear_shards`` deletes
the shards once the results are written. A resumed run scores only the files no shard
holds yet.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from vidfake.distributed.context import DistContext
from vidfake.distributed.group import ProcessGroup, ShardError
from vidfake.distributed.runner import map_sharded
from vidfake.distributed.shard_store import ShardStore
from vidfake.extract.dataset import MediaItem
from vidfake.scoring.verdict import Verdict

__all__ = ["RESUME_HINT", "clear_shards", "score_files", "shard_folder"]

RESUME_HINT = "run the same command again with --resume to score only the files that are missing"


def shard_folder(out: Path) -> Path:
    """Where the shards of a run writing ``out`` go: ``out`` + ``.shards``."""
    return out.with_name(out.name + ".shards")


def score_files(
    items: Sequence[MediaItem],  # or anything with ``path`` and ``kind`` (``vidfake eval``'s items)
    scorer,
    *,
    heatmaps: dict | None = None,
    out: Path | None = None,
    resume: bool = False,
    context: DistContext | None = None,
    progress: bool = True,
    on_verdict: Callable[[MediaItem, Verdict], None] | None = None,
    shards: Path | None = None,
) -> list[Verdict] | None:
    """Score ``items`` with ``scorer`` (anything with ``score(path, kind, heatmaps)``) and
    return their verdicts in order; None on a process other than rank 0 of a sharded run.

    ``heatmaps``: each path's heat-map options (``vidfake.scoring.heatmaps.options_for``).
    The run is sharded when ``context`` is distributed or ``resume`` is set; it then needs
    ``out`` (the shards live beside it, or in ``shards`` when given) and raises
    ``ShardError`` when a process stopped. ``on_verdict(item, verdict)`` sees each verdict
    as it is made (one process) or, in order, once merged (sharded).
    """
    context = context or DistContext.from_env()
    maps = heatmaps or {}

    def score(item: MediaItem) -> Verdict:
        return scorer.score(item.path, item.kind, maps.get(item.path))

    if context.distributed or resume:
        if out is None and shards is None:
            raise ShardError("give --out: the processes keep their verdicts next to it (OUT.shards/) until merged")
        with ProcessGroup(context, RESUME_HINT) as group:
            merged = map_sharded(items, [item.path for item in items], lambda item: score(item).to_dict(),
                                 shards or shard_folder(out), group, resume=resume, progress=progress)
        if merged is None:
            return None
        verdicts = [Verdict(**record) for _, record in merged]
        for (index, _), verdict in zip(merged, verdicts) if on_verdict else ():
            on_verdict(items[index], verdict)
        return verdicts
    verdicts = []
    for item in tqdm(items, unit="file", disable=not progress or len(items) < 2, dynamic_ncols=True):
        verdicts.append(score(item))
        if on_verdict:
            on_verdict(item, verdicts[-1])
    return verdicts


def clear_shards(out: Path) -> None:
    """Delete the shards of a run writing ``out``: its results are written."""
    ShardStore(shard_folder(out), rank=0).clear()
