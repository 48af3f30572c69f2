"""Who this process is in a launched run, read from the launcher's environment.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. ``srun`` running ``vidfake`` itself (one task per process) sets
``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` and ``SLURM_LOCALID``; the address of the
first node of the step and a port derived from the job id stand in for the master
address and port unless those are set. The step's variables, not the allocation's, are
read, so a plain ``vidfake score`` typed into an ``salloc`` shell stays one process.
Without either launcher the context is one process, and nothing distributed happens.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

SLURM_BASE_PORT = 15000  # SLURM runs without MASTER_PORT meet on 15000 + job id mod 10000


class ShardError(RuntimeError):
    """A distributed (or resumable) run cannot start or finish: a bad launcher
    environment, a process that stopped, results that are missing. The message says what
    to do."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: rank ``rank`` of ``world_size`` processes,
    ``local_rank`` on its machine (which GPU it takes). ``launcher`` says what started it:
    ``torchrun``, ``slurm`` or ``none``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str = "none"
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def distributed(self) -> bool:
        """More than one process shares the work."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that merges and writes the results."""
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DistContext:
        """The context the launcher's environment describes (``os.environ`` by default).
        Raises ``ShardError`` for a rank outside the world size or a non-numeric value."""
        env = os.environ if env is None else env
        try:
            context = cls._read(env)
        except ValueError as error:
            raise ShardError(f"the launcher's environment is not usable: {error}") from None
        if not 0 <= context.rank < context.world_size:
            raise ShardError(f"rank {context.rank} is outside a world of {context.world_size} processes")
        return context

    @classmethod
    def _read(cls, env: Mapping[str, str]) -> DistContext:
        if "RANK" in env and "WORLD_SIZE" in env:
            return cls(
                rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]), local_rank=int(env.get("LOCAL_RANK", 0)),
                launcher="torchrun", master_addr=env.get("MASTER_ADDR"),
                master_port=int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else None,
            )
        if "SLURM_PROCID" in env and "SLURM_STEP_NUM_TASKS" in env:
            nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "127.0.0.1"
            port = env.get("MASTER_PORT") or SLURM_BASE_PORT + int(env.get("SLURM_JOB_ID", "0")) % 10000
            return cls(
                rank=int(env["SLURM_PROCID"]), world_size=int(env["SLURM_STEP_NUM_TASKS"]),
                local_rank=int(env.get("SLURM_LOCALID", 0)), launcher="slurm",
                master_addr=env.get("MASTER_ADDR") or first_host(nodes), master_port=int(port),
            )
        return cls()


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[07-09,12],cpu1`` gives ``gpu07``
    (every bracketed range contributes its first value)."""
    entry = re.match(r"(?:[^,\[]|\[[^\]]*\])+", nodelist.strip())
    if entry is None:
        raise ValueError(f"cannot read the SLURM node list {nodelist!r}")
    return re.sub(r"\[([^\],\-]+)[^\]]*\]", r"\1", entry.group(0))
