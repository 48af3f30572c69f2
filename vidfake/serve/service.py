"""The service's parts wired together for one data folder: what the HTTP layer calls.

Owns the job store, the probe and scoring pools and the retention sweeps, and holds an
exclusive lock on the data folder, so two servers cannot share one queue (each would
think the other's running jobs were abandoned).
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from vidfake.examples import example_path
from vidfake.serve.config import ServeSettings
from vidfake.serve.media_check import MediaFacts, check_limits
from vidfake.serve.retention import Janitor, remove_orphans
from vidfake.serve.store import Job, JobStore, QueueFull
from vidfake.serve.thumbnails import thumbnail_name
from vidfake.serve.uploads import DISK_FULL_MESSAGE, ReceivedUpload, UploadRejected, is_disk_full
from vidfake.serve.worker import ProbePool, ProbeUnavailable, ScoringPool

log = logging.getLogger("vidfake.serve")


class ServiceError(RuntimeError):
    """The service cannot start with these settings (data folder in use, bad database)."""


class DataDirLock:
    """An exclusive lock on a data folder (its ``serve.lock`` file, which also holds the
    server's pid), so two servers cannot share one queue."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._handle = None

    def acquire(self) -> None:
        """Take the lock, or raise ``ServiceError`` when another server holds it."""
        handle = open(self.data_dir / "serve.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ServiceError(f"{self.data_dir} is in use by another vidfake serve; give each server its own --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let go of the lock (nothing to do when it is not held)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Service:
    """Start with ``start()``, stop with ``stop()``; in between, the methods below."""

    def __init__(self, settings: ServeSettings, on_fatal: Callable[[str], None] | None = None):
        self.settings = settings
        self.on_fatal = on_fatal
        self.store: JobStore | None = None
        self.scoring: ScoringPool | None = None
        self.probes: ProbePool | None = None
        self.janitor: Janitor | None = None
        self.data_lock = DataDirLock(settings.data_dir)

    def start(self) -> None:
        """Take the data folder, recover interrupted jobs and start the workers and the janitor."""
        settings = self.settings
        self.preflight()
        self.data_lock.acquire()
        self.store = JobStore(settings.database)
        requeued, failed = self.store.recover(settings.max_attempts)
        if requeued or failed:
            log.info("recovered after a restart: %d interrupted job(s) queued again, %d given up", requeued, failed)
        removed = remove_orphans(self.store, settings, min_age_s=0)
        if removed:
            log.info("removed %d partial or orphaned upload files", removed)
        self.probes = ProbePool(settings)
        threading.Thread(target=self.probes.warm_up, name="vidfake-probe-warmup", daemon=True).start()
        self.scoring = ScoringPool(settings, self.store, self.on_fatal)
        self.scoring.start()
        self.janitor = Janitor(self.store, settings)
        self.janitor.start()
        log.info("serving with data in %s; %d queued jobs", settings.data_dir, self.store.count("queued"))

    def preflight(self) -> None:
        """Check what ``start`` needs (a free data folder, a usable job database) and let
        go again, so the CLI can refuse with a plain message before the server starts."""
        for folder in (self.settings.data_dir, self.settings.uploads_dir, self.settings.faces_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.data_lock.acquire()
        try:
            JobStore(self.settings.database).close()
        finally:
            self.data_lock.release()

    def stop(self) -> None:
        """Stop the janitor and workers, close the database and release the data folder."""
        if self.janitor is not None:
            self.janitor.stop()
        if self.scoring is not None:
            self.scoring.stop()
        if self.probes is not None:
            self.probes.close()
        if self.store is not None:
            self.store.close()
        self.data_lock.release()

    def readiness(self) -> tuple[bool, dict]:
        """Ready when at least one worker has its model loaded."""
        pool = self.scoring
        ready = pool.workers_ready if pool is not None else 0
        body = {"ready": ready > 0, "workers_ready": ready, "workers": self.settings.workers}
        if pool is not None and pool.fatal_error:
            body["error"] = pool.fatal_error
        elif ready == 0:
            body["reason"] = "the model is loading" if pool is None or not pool.last_error else pool.last_error
        return ready > 0, body

    def partial_path(self, job_id: str) -> Path:
        """Where an upload is written while it arrives."""
        return self.settings.uploads_dir / f"{job_id}.part"

    def upload_path(self, job_id: str) -> Path:
        """Where a complete upload waits for scoring."""
        return self.settings.uploads_dir / job_id

    def thumbnail_path(self, job_id: str, track_id: int) -> Path:
        """The thumbnail file of one face track of a job."""
        return self.settings.faces_dir / job_id / thumbnail_name(track_id)

    def refuse_if_full(self) -> None:
        """Answer 503 before receiving a body the queue has no room for."""
        queued = self.store.count("queued")
        if queued >= self.settings.queue_max:
            raise self._busy(queued)

    def _busy(self, queued: int) -> UploadRejected:
        retry = self.scoring.retry_after_s(queued)
        return UploadRejected(503, f"the queue is full ({queued} jobs waiting); try again in {retry} s",
                              headers={"Retry-After": str(retry)})

    def check_upload(self, path: Path) -> MediaFacts:
        """415 unless the file is a video or an accepted image; 422 past the limits."""
        try:
            facts = self.probes.inspect(path)
        except ProbeUnavailable as error:
            raise UploadRejected(503, f"the service is overloaded: {error}", headers={"Retry-After": "5"}) from None
        if facts.kind is None:
            raise UploadRejected(415, f"not a video or an image: {facts.reason}")
        problem = check_limits(facts, self.settings)
        if problem is not None:
            raise UploadRejected(422, problem)
        return facts

    def enqueue(self, job_id: str, received: ReceivedUpload, facts: MediaFacts) -> Job:
        """Move the checked upload into place and queue its job (503 if the queue filled
        up while it arrived)."""
        final = self.upload_path(job_id)
        os.replace(self.partial_path(job_id), final)
        try:
            job = self.store.create(job_id, received.filename, facts.kind, received.size, facts.media_summary(),
                                    self.settings.queue_max)
        except QueueFull:
            final.unlink(missing_ok=True)
            raise self._busy(self.store.count("queued")) from None
        except sqlite3.OperationalError as error:
            final.unlink(missing_ok=True)
            if is_disk_full(error):  # the job row could not be written: no job, no file
                raise UploadRejected(507, DISK_FULL_MESSAGE) from None
            raise
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        self.scoring.notify()
        return job

    def enqueue_example(self, job_id: str) -> Job:
        """Queue the example clip that ships with vidfake, copied in as if it had been
        uploaded, so it is checked, stored, kept and deleted like every upload."""
        self.refuse_if_full()
        source = example_path()
        partial = self.partial_path(job_id)
        try:
            shutil.copyfile(source, partial)
            facts = self.check_upload(partial)
            return self.enqueue(job_id, ReceivedUpload(source.name, partial.stat().st_size), facts)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def delete(self, job_id: str) -> bool:
        """Remove a job, its upload and its thumbnails (a running job's worker finishes,
        and its result is discarded)."""
        job = self.store.delete(job_id)
        if job is None:
            return False
        self.upload_path(job_id).unlink(missing_ok=True)
        shutil.rmtree(self.settings.faces_dir / job_id, ignore_errors=True)
        return True
