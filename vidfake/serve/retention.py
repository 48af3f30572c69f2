"""Deleting uploads and face thumbnails once their retention period is over.

Uploaded videos are users' data: the service keeps them only while they are useful
(being scored, and ``retention_hours`` after, so a moderator can look again), then
deletes the upload and its thumbnails. The job record with its verdict stays, marked
``files_purged``. Files that belong to no job (a partial upload cut off by a crash, a
job deleted while its worker wrote thumbnails) are removed at start-up and on each sweep.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from vidfake.serve.config import ServeSettings
from vidfake.serve.store import JobStore

log = logging.getLogger("vidfake.serve")

ORPHAN_AGE_S = 3600.0  # a file with no job is left alone this long (an upload may still be arriving)


def purge_expired(store: JobStore, settings: ServeSettings, now: float | None = None) -> int:
    """Delete the files of jobs that finished more than the retention period ago."""
    now = time.time() if now is None else now
    jobs = store.expired(now - settings.retention_s)
    for job in jobs:
        (settings.uploads_dir / job.id).unlink(missing_ok=True)
        shutil.rmtree(settings.faces_dir / job.id, ignore_errors=True)
        store.mark_purged(job.id)
    return len(jobs)


def remove_orphans(store: JobStore, settings: ServeSettings, min_age_s: float = ORPHAN_AGE_S, now: float | None = None) -> int:
    """Delete upload files and thumbnail folders that belong to no job and are older
    than ``min_age_s`` (0 at start-up, when no upload can be in progress)."""
    now = time.time() if now is None else now
    known = store.ids()
    removed = 0
    for folder in (settings.uploads_dir, settings.faces_dir):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            job_id = entry.name.removesuffix(".part")
            if job_id in known and not entry.name.endswith(".part"):
                continue
            try:
                if now - entry.stat().st_mtime < min_age_s:
                    continue
            except FileNotFoundError:
                continue
            _remove(entry)
            removed += 1
    return removed


def _remove(entry: Path) -> None:
    if entry.is_dir():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


class Janitor:
    """A thread running the sweeps every ``interval_s`` until stopped."""

    def __init__(self, store: JobStore, settings: ServeSettings, interval_s: float | None = None):
        self.store = store
        self.settings = settings
        # often enough that files outlive their retention by at most a quarter of it
        self.interval_s = interval_s if interval_s is not None else min(300.0, max(1.0, settings.retention_s / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidfake-retention", daemon=True)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait up to 10 s for a sweep in progress."""
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                purged = purge_expired(self.store, self.settings)
                orphans = remove_orphans(self.store, self.settings)
                if purged or orphans:
                    log.info("retention: deleted the files of %d jobs and %d orphaned files", purged, orphans)
            except Exception:  # a sweep must never take the service down; try again next time
                log.exception("retention sweep failed")
