"""``vidfake extract`` across processes: each writes its own crops (their names hold the
file's media id, so they never collide) and appends each file's record to its shard;
rank 0 then appends the records to ``tracks.jsonl`` and ``errors.jsonl`` in the order one
process gives and rebuilds ``labels.csv``. ``--resume`` keeps its meaning: files in
``tracks.jsonl``, or with no face, are done; failed ones are tried again.
"""
from __future__ import annotations

from contextlib import closing
from pathlib import Path

from vidfake.distributed.context import DistContext
from vidfake.distributed.group import ProcessGroup
from vidfake.distributed.partition import file_cost
from vidfake.distributed.runner import Emit, run_sharded
from vidfake.distributed.shard_store import ShardStore
from vidfake.extract.dataset import (
    MediaItem,
    OutputOptions,
    RunSummary,
    extract_items,
    prepare_out_dir,
    save_record,
)
from vidfake.extract.folder import ExtractionFolder, json_default
from vidfake.extract.labels import LabelResolver
from vidfake.extract.pipeline import ExtractConfig

RESUME_HINT = "run the same command again with --resume to extract only the files that are missing"
SHARDS = "shards"  # DIR/shards/rank-*.jsonl until rank 0 has merged them


def _done_for_good(record: dict) -> bool:
    return record.get("status") in ("ok", "no_face")


def run_extraction_sharded(
    items: list[MediaItem],
    labels: LabelResolver,
    out_dir: Path,
    config: ExtractConfig,
    options: OutputOptions,
    context: DistContext,
    *,
    workers: int = 1,
    resume: bool = False,
    progress: bool = True,
    debug_log: Path | None = None,
) -> RunSummary | None:
    """``run_extraction`` with this process doing its share; rank 0 returns the summary
    of the files merged, the other processes None. ``ShardError`` when a process stopped."""
    from tqdm import tqdm

    keys = [str(item.path.resolve()) for item in items]
    with ProcessGroup(context, RESUME_HINT) as group:
        group.on_main(lambda: prepare_out_dir(out_dir, config, options, resume))
        done = ExtractionFolder(out_dir).finished_files() if resume else set()

        def process(indices: list[int], emit: Emit) -> None:
            index_of = {keys[i]: i for i in indices}
            bar = tqdm(total=len(indices), unit="video", desc=f"rank 0 of {context.world_size}", dynamic_ncols=True,
                       disable=not progress or not context.is_main)
            todo = [items[i] for i in indices]
            with closing(extract_items(todo, labels, out_dir, config, options, workers, debug_log)) as results:
                for record in results:
                    emit(index_of[record["path"]], record)
                    bar.update(1)
            bar.close()

        merged = run_sharded(keys, [file_cost(key) for key in keys], process, out_dir / SHARDS, group,
                             resume=resume, finished=_done_for_good, done=done, default=json_default)
    if merged is None:
        return None
    summary = RunSummary(total=len(items), out_dir=str(out_dir), skipped=len(items) - len(merged))
    try:
        for _, record in merged:
            save_record(out_dir, record, summary)
    finally:
        ExtractionFolder(out_dir).write_labels_csv()
    ShardStore(out_dir / SHARDS, context.rank).clear()
    return summary
