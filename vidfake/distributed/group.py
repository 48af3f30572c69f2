"""The process group of a distributed run, and the few collective steps it takes.

The processes exchange only a handful of small messages (start, "my share is done", an
error found by rank 0), never tensors, so the group is gloo whatever the device: it works
alike for CPU and GPU processes, and it notices a peer that died at once (its connection
closes) where NCCL would wait for its watchdog. Every collective step turns such a death
into a ``ShardError`` that says how to resume, and SIGTERM (``torchrun`` stopping the
others after one failed, a pre-empted SLURM job) ends a process the same way, keeping
every file it finished.

The steps wait at most ``VIDFAKE_DIST_TIMEOUT`` seconds (default one day: the last step
waits for the slowest process's whole share); a dead peer is noticed long before.
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from vidfake.distributed.context import DistContext, ShardError

TIMEOUT_ENV = "VIDFAKE_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 24 * 3600
T = TypeVar("T")


class Terminated(BaseException):
    """SIGTERM arrived. A ``BaseException``, so per-file ``except Exception`` handlers do
    not record it as that file's failure."""


def _timeout_s() -> float:
    value = os.environ.get(TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ShardError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


class ProcessGroup:
    """Joins the run's process group on ``__enter__`` and leaves it on ``__exit__``; for
    one process every step is a no-op. ``resume_hint`` ends every error message."""

    def __init__(self, context: DistContext, resume_hint: str):
        self.context = context
        self.resume_hint = resume_hint
        self._started = False
        self._previous_handler = None

    def __enter__(self) -> ProcessGroup:
        if not self.context.distributed:
            return self
        import torch
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_gloo_available():
            raise ShardError("this torch build has no torch.distributed with gloo: run one process")
        if torch.cuda.is_available():  # "cuda" now means this process's GPU
            torch.cuda.set_device(self.context.local_rank % torch.cuda.device_count())
        init = "env://"
        if self.context.launcher == "slurm":
            init = f"tcp://{self.context.master_addr}:{self.context.master_port}"
        dist.init_process_group("gloo", init_method=init, rank=self.context.rank, world_size=self.context.world_size,
                                timeout=timedelta(seconds=_timeout_s()))
        self._started = True
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None
        if self._started:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._started = False
        if exc_type is not None and issubclass(exc_type, Terminated):
            raise ShardError(f"process {self.context.rank} was stopped (SIGTERM); every file it had finished is "
                             f"kept; {self.resume_hint}") from None

    def barrier(self, stage: str) -> None:
        """Wait until every process reaches this point; ``stage`` names it in the error
        raised when a process died before it."""
        if not self._started:
            return
        import torch.distributed as dist

        try:
            dist.barrier()
        except RuntimeError as error:  # gloo: "Connection closed by peer", or the timeout
            detail = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise ShardError(f"a process of this run stopped before {stage} ({detail}); {self.resume_hint}") from None

    def on_main(self, step: Callable[[], T]) -> T | None:
        """Run ``step`` on rank 0 only; an exception it raises is raised on every process,
        so all stop with rank 0's message instead of waiting for it. Returns its value on
        rank 0, None elsewhere."""
        if not self._started:
            return step()
        import torch.distributed as dist

        value, failure = None, None
        if self.context.is_main:
            try:
                value = step()
            except Exception as error:  # handed to every process, then raised
                failure = error
        message = [failure]
        try:
            dist.broadcast_object_list(message, src=0)
        except RuntimeError as error:
            raise ShardError(f"a process of this run stopped at its start ({error}); {self.resume_hint}") from None
        if message[0] is not None:
            raise message[0]
        return value


def _raise_terminated(signum, frame) -> None:
    raise Terminated()
