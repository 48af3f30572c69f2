"""Run ``vidfake score``, ``extract`` and ``eval`` across processes and machines.

The launchers are the ones training uses: ``torchrun`` (one node or many, with
``--nnodes``/``--rdzv-endpoint``) or SLURM's ``srun``. Each process takes a deterministic,
size-balanced share of the files that are not finished yet, appends each finished file to
its own shard, and rank 0 merges the shards into the single-process output (same records,
same order). A stopped process leaves its shard behind, so ``--resume`` finishes only what
is missing.

- ``context``: who this process is (rank, world size, local rank) from the launcher's
  environment; one process without a launcher;
- ``group``: the process group (gloo) with the few collective steps a run needs, each
  turning a dead peer into a ``ShardError`` that says how to resume;
- ``partition``: which files each process takes (pure functions);
- ``shard_store``: the per-process shard files: append, read back, clear;
- ``runner``: the run itself (share, process, wait, merge), for any per-file job;
- ``extract``: extraction's use of it (scoring's is ``vidfake.scoring.files``, ``eval``
  calls ``runner``).

Importing this package loads no torch: the process group starts only in a launched run.
"""
from vidfake.distributed.context import DistContext, ShardError
from vidfake.distributed.runner import map_sharded, run_sharded

__all__ = ["DistContext", "ShardError", "map_sharded", "run_sharded"]
