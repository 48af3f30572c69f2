"""A per-file job run across the processes of a launched run, resumable per file.

Every process, in step:

1. (a fresh run) rank 0 deletes the shards an earlier run left;
2. reads every shard and skips the files finished there (and those the caller says are
   done already, e.g. in an extraction's ``tracks.jsonl``);
3. takes its balanced share of the rest (``shard.balanced_shards``), and appends each
   file's record to its own shard as soon as it is done;
4. waits for the others; rank 0 then reads the shards and returns every record in the
   caller's order, or fails naming what is missing.

One process (``--resume`` without a launcher) goes through the same steps alone.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from vidfake.distributed.group import ProcessGroup, ShardError
from vidfake.distributed.partition import balanced_shards, file_cost
from vidfake.distributed.shard_store import ShardStore

__all__ = ["ShardError", "map_sharded", "run_sharded"]

T = TypeVar("T")
Emit = Callable[[int, dict], None]


def _any_record(record: dict) -> bool:
    return True


def run_sharded(
    keys: Sequence[str],
    costs: Sequence[float],
    process: Callable[[list[int], Emit], None],
    store_dir: Path,
    group: ProcessGroup,
    *,
    resume: bool,
    finished: Callable[[dict], bool] = _any_record,
    done: Collection[str] = (),
    default: Callable[[Any], Any] | None = None,
) -> list[tuple[int, dict]] | None:
    """Run ``process(indices, emit)`` on this process's share of the unfinished items.

    Args:
        keys: one key per item (its path), the same list on every process.
        costs: each item's expected cost, for balancing (``shard.file_cost``).
        process: does the given item indices, calling ``emit(index, record)`` for each
            one as soon as it is done (in any order; a pool of workers may do them).
        store_dir: the shard folder, on a filesystem every process writes to.
        group: the run's process group, entered.
        resume: keep what the shards hold; otherwise rank 0 first deletes them.
        finished: whether a shard record counts as done on resume (an extraction
            retries its failures); every record counts by default.
        done: keys finished before the shards (not returned again).
        default: ``json.dumps``'s ``default`` for values JSON cannot hold.

    Returns:
        On rank 0, ``(index, record)`` for every item whose key is not in ``done``, in
        index order; None on the other ranks. Raises ``ShardError`` when a process
        stopped or a record is missing, with how to resume.
    """
    context = group.context
    store = ShardStore(store_dir, context.rank, default)
    if not resume:
        group.on_main(store.clear)
    entries = store.read()
    run = 1 + max((entry.run for entry in entries.values()), default=0)
    skip = set(done) | {key for key, entry in entries.items() if finished(entry.record)}
    todo = [i for i, key in enumerate(keys) if key not in skip]
    group.barrier("sharing out the files")  # everyone has read the shards before anyone writes
    share = balanced_shards([costs[i] for i in todo], context.world_size)[context.rank]
    mine = [todo[j] for j in share]

    def emit(index: int, record: dict) -> None:
        store.append(keys[index], run, record)

    process(mine, emit)  # SIGTERM: the group's exit says which files are kept and how to resume
    group.barrier("every process had finished its share of the files")
    if not context.is_main:
        return None
    entries = store.read()
    results, missing = [], []
    for index, key in enumerate(keys):
        if key in done:
            continue
        if key in entries:
            results.append((index, entries[key].record))
        else:
            missing.append(key)
    if missing:
        raise ShardError(
            f"{len(missing)} of {len(keys)} files have no result in {store_dir} (first: {missing[0]}); "
            f"{group.resume_hint}. Across machines, the output must be on a filesystem every machine writes to"
        )
    return results


def map_sharded(
    items: Sequence[T],
    paths: Sequence[str | Path],
    work: Callable[[T], dict],
    store_dir: Path,
    group: ProcessGroup,
    *,
    resume: bool,
    done: Collection[str] = (),
    progress: bool = True,
) -> list[tuple[int, dict]] | None:
    """``run_sharded`` for a job that turns one item into one record (``work``), keyed
    and balanced by each item's path; a progress bar on rank 0 counts its share."""
    from tqdm import tqdm

    context = group.context

    def process(indices: list[int], emit: Emit) -> None:
        label = f"rank 0 of {context.world_size}" if context.distributed else None
        bar = tqdm(indices, unit="file", desc=label, dynamic_ncols=True,
                   disable=not progress or not context.is_main or len(indices) < 2)
        for index in bar:
            emit(index, work(items[index]))

    keys = [str(path) for path in paths]
    return run_sharded(keys, [file_cost(path) for path in paths], process, store_dir, group,
                       resume=resume, done=done)
