"""The one rule that turns an exception raised while handling one file into that file's
status, so a damaged or hostile file costs its own result and never the rest of a run.

Scoring (and through it ``vidfake score``, ``vidfake eval`` and the service's workers)
and ``vidfake extract`` call ``file_failure``; nothing else decides what a failure means.

- ``MediaError`` (the pipeline refuses the file: not an image, beyond the pixel limit)
  and ``MemoryError`` mean ``unsupported``;
- ``DecodeError`` (missing, empty, corrupt, no video stream) means ``unreadable``;
- any other exception is a vidfake bug met on odd input: the file is ``unreadable``,
  the reason names the exception, and the traceback goes to the ``vidfake.failures``
  logger at DEBUG level (``--debug-log FILE`` on the CLI, ``--log-level debug`` for the
  service), never in place of a result.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vidfake.extract.pipeline import MediaError
from vidfake.extract.video import DecodeError

UNREADABLE = "unreadable"
UNSUPPORTED = "unsupported"

log = logging.getLogger("vidfake.failures")


@dataclass(frozen=True)
class FileFailure:
    """What one file's failure means: its status, the reason to show, and whether it was
    foreseen (a decode error) or a bug that met odd input (``expected`` False)."""

    status: str  # UNREADABLE or UNSUPPORTED
    reason: str
    expected: bool


def file_failure(error: Exception, path: str | Path) -> FileFailure:
    """Classify ``error`` raised while handling ``path``; logs the traceback of an
    unexpected one (call it from the ``except`` block, while the traceback is live)."""
    if isinstance(error, MediaError):
        return FileFailure(UNSUPPORTED, str(error), True)
    if isinstance(error, DecodeError):
        return FileFailure(UNREADABLE, str(error), True)
    if isinstance(error, MemoryError):
        log.debug("%s: out of memory", path, exc_info=error)
        reason = f"{path}: ran out of memory while processing it (too large for this machine)"
        return FileFailure(UNSUPPORTED, reason, False)
    log.debug("%s: unexpected %s", path, type(error).__name__, exc_info=error)
    return FileFailure(
        UNREADABLE,
        f"{path}: unexpected {type(error).__name__} while processing it: {error} "
        "(a vidfake bug met by this file; the traceback is in the debug log)",
        False,
    )


def open_debug_log(path: str | Path) -> logging.Handler:
    """Send vidfake's DEBUG messages (the tracebacks above among them) to ``path``,
    appended; returns the handler for ``close_debug_log``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("vidfake")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return handler


def close_debug_log(handler: logging.Handler) -> None:
    """Detach and close a handler made by ``open_debug_log``, flushing its file."""
    logging.getLogger("vidfake").removeHandler(handler)
    handler.close()
