"""A child process that runs one task at a time, killed when a task overruns its limit.

Decoding a hostile file can hang or crash inside FFmpeg, where no Python timeout
reaches; the only reliable stop is to kill the process doing it. So uploads are probed
and scored in children (``spawn``ed: the server has threads, and a forked copy of a
threaded process can deadlock), each talking to its parent over a pipe. A child loads
its task handler once (for scoring: the model), answers ``ready``, then serves requests
until its pipe closes. When a request overruns, the parent kills the child; the next
request starts a fresh one.

Handlers are named by import path (``"package.module:Class"``) so this module knows
nothing about what the children do.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

_CONTEXT = multiprocessing.get_context("spawn")
log = logging.getLogger("vidfake.serve")


class ChildError(RuntimeError):
    """Base for failures of a child process."""


class TaskTimeout(ChildError):
    """The task ran past its time limit; the child was killed."""


class ChildDied(ChildError):
    """The child exited (crashed, was killed) before answering."""


class ChildStartError(ChildError):
    """The child's handler could not be set up; ``fatal`` when retrying cannot help."""

    def __init__(self, message: str, fatal: bool):
        super().__init__(message)
        self.fatal = fatal


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent is gone, even in the middle of a hung task: an orphaned
    child would otherwise decode a hostile file forever."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(3)


def _child_main(conn: Connection, handler_path: str, kwargs: dict, parent_pid: int, log_level: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops the children
    _log_like_parent(log_level)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        module_name, _, class_name = handler_path.partition(":")
        handler = getattr(importlib.import_module(module_name), class_name)(**kwargs)
    except Exception as error:  # report why, then exit; a set-up that raised will raise again
        conn.send(("init_error", f"{type(error).__name__}: {error}", bool(getattr(error, "fatal", True))))
        return
    conn.send(("ready", getattr(handler, "info", {})))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed the pipe: shut down
        try:
            reply = ("ok", handler(request))
        except Exception as error:  # a bug or an unexpected file: answer, stay alive
            reply = ("error", f"{type(error).__name__}: {error}", traceback.format_exc(limit=5))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _log_like_parent(level: int) -> None:
    """vidfake's messages from the child (a traceback ``file_failure`` logs at DEBUG among
    them) go to the stderr it shares with the server, at the server's level."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s [pid %(process)d] %(message)s"))
    logger = logging.getLogger("vidfake")
    logger.setLevel(level)
    logger.addHandler(handler)


class ChildProcess:
    """One child process serving one handler. ``start``, ``call`` and ``close`` belong to
    one thread at a time (its owner); ``kill`` may come from any thread and interrupts a
    ``call`` in progress."""

    def __init__(self, handler_path: str, kwargs: dict | None = None, start_timeout_s: float = 600.0, name: str = "child"):
        self.handler_path = handler_path
        self.kwargs = kwargs or {}
        self.start_timeout_s = start_timeout_s
        self.name = name
        self.info: dict = {}  # what the handler reported when it was ready
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._handshake_done = False  # the handler answered "ready"

    @property
    def ready(self) -> bool:
        """True once the child has set up its handler and is still alive."""
        process = self._process
        return self._handshake_done and process is not None and process.is_alive()

    @property
    def pid(self) -> int | None:
        """The child's process id, or None before it was started."""
        return self._process.pid if self._process is not None else None

    def start(self) -> dict:
        """Start the child and wait until its handler is set up; returns its ``info``."""
        self.close()
        parent_conn, child_conn = _CONTEXT.Pipe(duplex=True)
        process = _CONTEXT.Process(
            target=_child_main,
            args=(child_conn, self.handler_path, self.kwargs, os.getpid(),
                  logging.getLogger("vidfake").getEffectiveLevel()),
            name=f"vidfake-{self.name}", daemon=True,
        )
        process.start()
        child_conn.close()
        self._process, self._conn = process, parent_conn
        try:
            if not parent_conn.poll(self.start_timeout_s):
                raise ChildStartError(f"{self.name} did not start within {self.start_timeout_s:g} s", fatal=False)
            message = parent_conn.recv()
        except (EOFError, OSError):
            process.join(5)
            code = process.exitcode
            self.close()
            raise ChildStartError(f"{self.name} exited while starting ({_exit_description(code)})", fatal=False) from None
        except ChildStartError:
            self.close()
            raise
        if message[0] != "ready":
            self.close()
            raise ChildStartError(message[1], fatal=message[2])
        self.info = message[1]
        self._handshake_done = True
        log.info("%s started (pid %s)", self.name, process.pid)
        return self.info

    def call(self, request: Any, timeout_s: float) -> Any:
        """Send a request and wait for the answer; starts the child first if needed.
        Raises TaskTimeout (child killed), ChildDied, ChildStartError, or
        RuntimeError carrying the handler's own exception message."""
        if not self.ready:
            self.start()
        conn, process = self._conn, self._process
        try:
            conn.send(request)
            if not conn.poll(timeout_s):
                self.close()
                raise TaskTimeout(f"no answer within {timeout_s:g} s")
            reply = conn.recv()
        except (EOFError, OSError):
            process.join(5)
            code = process.exitcode
            self.close()
            raise ChildDied(_exit_description(code)) from None
        if reply[0] == "error":
            log.debug("%s: the task raised:\n%s", self.name, reply[2])
            raise RuntimeError(reply[1])
        return reply[1]

    def kill(self) -> None:
        """Kill the child now, from any thread (SIGKILL: a hung decoder answers nothing
        gentler). A ``call`` waiting on it returns with ChildDied."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def close(self) -> None:
        """Kill the child and release its pipe; only from the thread that calls ``call``
        (or when no call is in progress)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        self._handshake_done = False
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(10)
        if conn is not None:
            conn.close()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        try:
            return f"the worker process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the worker process was killed by signal {-code}"
    return f"the worker process exited with code {code}"
