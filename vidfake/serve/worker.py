"""The bounded pools that do the work: header probes of uploads, and scoring jobs.

``ScoringPool`` runs ``workers`` scoring processes, each holding one model, each fed by
its own dispatcher thread that takes the oldest queued job from the store; ``JobRunner``
hands it to the process under the per-job time limit and writes back the verdict. A
process that overruns is killed (the job fails with the reason) and a fresh one is
started for the next job. A process that dies mid-job (a signal, the OOM killer) is
replaced and the job scored once more on the fresh one, its verdict saying so; a second
death fails the job.
A file the worker reports as damaged is an answer, not a failure, and is never retried.
Nothing one job does (a verdict that cannot be stored, an unexpected error) stops its
dispatcher. The store, not memory, is the queue, so what is queued survives a restart.

``ProbePool`` runs the header check of an upload in one of a few small processes
(no model), so a hostile file cannot hang a request handler either.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import sqlite3
import statistics
import threading
from collections.abc import Callable
from pathlib import Path

from vidfake.serve.config import ServeSettings
from vidfake.serve.media_check import MediaFacts
from vidfake.serve.process import ChildDied, ChildProcess, ChildStartError, TaskTimeout
from vidfake.serve.store import Job, JobStore

log = logging.getLogger("vidfake.serve")

MAX_START_FAILURES = 3  # consecutive failed worker starts before the service gives up
SCORE_TASK = "vidfake.serve.tasks:ScoreTask"
WORKER_DEATH_RETRIES = 1  # a job whose worker dies is scored again this many times on a fresh one
DEFAULT_JOB_SECONDS = 10.0  # assumed time per job for Retry-After until jobs have finished


class ProbeUnavailable(RuntimeError):
    """No probe process became free in time (the service is overloaded or stopping)."""


class ProbePool:
    """``probe_workers`` probe processes; ``inspect`` blocks until one is free."""

    def __init__(self, settings: ServeSettings):
        self.timeout_s = settings.probe_timeout_s
        self._idle: queue.Queue[ChildProcess] = queue.Queue()
        self._children = [
            ChildProcess("vidfake.serve.tasks:ProbeTask", start_timeout_s=120.0, name=f"probe-{i}")
            for i in range(settings.probe_workers)
        ]
        for child in self._children:
            self._idle.put(child)

    def warm_up(self) -> None:
        """Start the probe processes ahead of the first upload (best effort)."""
        for _ in self._children:
            try:
                child = self._idle.get(timeout=1.0)
            except queue.Empty:
                return
            try:
                if not child.ready:
                    child.start()
            except ChildStartError as error:
                log.warning("probe worker did not start: %s", error)
            finally:
                self._idle.put(child)

    def inspect(self, path: Path) -> MediaFacts:
        """Identify an upload; a file that hangs or crashes the probe is reported as not
        decodable (the probe process is replaced)."""
        try:
            child = self._idle.get(timeout=self.timeout_s * 2)
        except queue.Empty:
            raise ProbeUnavailable("every probe worker is busy") from None
        try:
            return MediaFacts(**child.call({"path": str(path)}, self.timeout_s))
        except TaskTimeout:
            return MediaFacts(None, f"reading the file's header took longer than {self.timeout_s:g} s; the file was abandoned")
        except ChildDied as error:
            return MediaFacts(None, f"the file could not be decoded ({error} while reading its header)")
        except ChildStartError as error:
            raise ProbeUnavailable(f"the probe worker could not start: {error}") from None
        except RuntimeError as error:  # the check raised on this file: refuse it, do not answer 500
            log.warning("header check of an upload raised: %s", error)
            return MediaFacts(None, "the file could not be read (its header check failed unexpectedly)")
        finally:
            self._idle.put(child)

    def close(self) -> None:
        """Stop every probe process."""
        for child in self._children:
            child.kill()
        for child in self._children:
            child.close()


class _Slot:
    """One scoring process and the thread that feeds it."""

    def __init__(self, child: ChildProcess):
        self.child = child
        self.thread: threading.Thread | None = None
        self.job: Job | None = None  # the job in progress


class JobRunner:
    """One job on one worker process: the call under the job's time limit, one retry on a
    fresh worker when the process dies, and the outcome written to the store."""

    def __init__(self, settings: ServeSettings, store: JobStore, stopping: threading.Event):
        self.settings = settings
        self.store = store
        self._stop = stopping  # set when the service stops: a death then requeues, not retries

    def run(self, child: ChildProcess, job: Job) -> None:
        """Score ``job`` on ``child`` and store what came of it: the verdict, or why the job
        failed, or the job back in the queue when the service is stopping or the worker
        cannot start."""
        settings = self.settings
        upload = settings.uploads_dir / job.id
        faces_dir = settings.faces_dir / job.id
        if not upload.is_file():
            self.store.fail(job.id, "the uploaded file is gone (deleted or past its retention) before it was scored")
            return
        request = {"path": str(upload), "kind": job.kind, "faces_dir": str(faces_dir), "display_name": job.filename}
        log.info("job %s: scoring %s (%s, attempt %d)", job.id, job.filename, job.kind, job.attempts)
        error, deaths = None, []
        while error is None:
            try:
                result = child.call(request, settings.job_timeout_s)
                break
            except TaskTimeout:
                error = (f"scoring did not finish within the {settings.job_timeout_s:g} s limit (--job-timeout); "
                         "the file was abandoned and its worker restarted")
            except ChildDied as died:
                if self._stop.is_set():
                    self.store.requeue(job.id)  # stopped for a shutdown: the next start picks it up
                    log.info("job %s: back in the queue (service stopping)", job.id)
                    return
                deaths.append(str(died))
                shutil.rmtree(faces_dir, ignore_errors=True)
                if len(deaths) > WORKER_DEATH_RETRIES:
                    error = (f"scoring failed: the worker died {len(deaths)} times on this file "
                             f"({'; then '.join(deaths)}); the file may be malformed, or the machine short of memory")
                else:  # a killed worker (OOM killer, an operator) need not be the file's fault: once more
                    log.warning("job %s: %s while scoring; retrying on a fresh worker", job.id, died)
            except ChildStartError as start_error:
                self.store.requeue(job.id)
                log.error("job %s: back in the queue, the worker did not start: %s", job.id, start_error)
                return
            except RuntimeError as failure:  # the handler raised: the file's own fault, not retried
                error = f"scoring failed: {failure}"
        if error is not None:
            shutil.rmtree(faces_dir, ignore_errors=True)
            self.fail(job.id, error)
            log.warning("job %s failed: %s", job.id, error)
            return
        verdict = result["verdict"]
        if deaths:  # the verdict says what happened to get it
            verdict["warnings"] = [*verdict.get("warnings", []), *(
                f"a worker scoring this file stopped ({death}); it was scored again on a fresh worker"
                for death in deaths)]
        try:
            stored = self.store.finish(job.id, verdict, result["faces"])
        except (sqlite3.Error, OSError) as failure:  # e.g. the disk is full: this job fails, the service goes on
            shutil.rmtree(faces_dir, ignore_errors=True)
            self.fail(job.id, f"the verdict could not be stored ({failure}); the server's disk may be full")
            log.error("job %s: its verdict could not be stored: %s", job.id, failure)
            return
        if not stored:
            shutil.rmtree(faces_dir, ignore_errors=True)  # deleted while it ran
            return
        log.info("job %s done: %s score %s", job.id, verdict["status"], verdict.get("score"))

    def fail(self, job_id: str, error: str) -> None:
        """Mark a job failed; when even that cannot be written, the job stays ``running``
        and the next start puts it back in the queue (``JobStore.recover``)."""
        try:
            self.store.fail(job_id, error)
        except (sqlite3.Error, OSError) as failure:
            log.error("job %s: could not record its failure (%s): %s", job_id, failure, error)


class ScoringPool:
    """``settings.workers`` scoring processes fed from the job store."""

    def __init__(self, settings: ServeSettings, store: JobStore, on_fatal: Callable[[str], None] | None = None,
                 task: str = SCORE_TASK):
        """``task``: the handler each worker runs, by import path (tests put a stand-in
        there that needs no model)."""
        self.settings = settings
        self.store = store
        self.on_fatal = on_fatal
        self.fatal_error: str | None = None
        self.last_error: str | None = None
        self.model_info: dict | None = None
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._jobs = JobRunner(settings, store, self._stop)
        threads = max(1, (os.cpu_count() or 1) // settings.workers)
        checkpoint = settings.checkpoint
        kwargs = {"checkpoint": [str(p) for p in checkpoint] if isinstance(checkpoint, tuple) else str(checkpoint),
                  "device": settings.device,
                  "thumbnail_size": settings.thumbnail_size, "threads": threads,
                  "heatmap_frames": settings.heatmap_frames, "keyframe_interval": settings.keyframe_interval}
        self._slots = [
            _Slot(ChildProcess(task, kwargs, settings.worker_start_timeout_s, f"scorer-{i}"))
            for i in range(settings.workers)
        ]

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        """Start one dispatcher thread per worker; each starts its process and takes jobs."""
        for i, slot in enumerate(self._slots):
            slot.thread = threading.Thread(target=self._run, args=(slot,), name=f"vidfake-dispatch-{i}", daemon=True)
            slot.thread.start()

    def notify(self) -> None:
        """A job was queued: wake an idle dispatcher."""
        with self._wake:
            self._wake.notify()

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every worker now; jobs in progress go back to the queue."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for slot in self._slots:
            slot.child.kill()
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout_s)

    @property
    def workers_ready(self) -> int:
        """Workers whose process has the model loaded."""
        return sum(slot.child.ready for slot in self._slots)

    @property
    def size(self) -> int:
        """Workers in the pool."""
        return len(self._slots)

    def retry_after_s(self, queued: int) -> int:
        """Seconds until the queue has room again, estimated from recent jobs."""
        durations = self.store.recent_durations()
        per_job = statistics.median(durations) if durations else DEFAULT_JOB_SECONDS
        return int(min(3600, max(1, math.ceil(per_job * max(1, queued) / self.size))))

    # -- dispatcher -----------------------------------------------------------------------

    def _run(self, slot: _Slot) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                if not slot.child.ready:
                    try:
                        self.model_info = slot.child.start()
                        failures = 0
                        log.info("%s ready: model %s (%s)", slot.child.name, self.model_info.get("name"),
                                 self.model_info.get("sha256", "")[:12])
                    except ChildStartError as error:
                        if self._stop.is_set():
                            break
                        failures += 1
                        self.last_error = str(error)
                        log.error("%s did not start: %s", slot.child.name, error)
                        if error.fatal or failures >= MAX_START_FAILURES:
                            self._fail_service(f"the scoring worker cannot start: {error}")
                            return
                        self._stop.wait(min(30.0, 2.0**failures))
                        continue
                    if self._stop.is_set():
                        break
                job = self.store.claim_next()
                if job is None:
                    with self._wake:
                        self._wake.wait(timeout=0.5)
                    continue
                slot.job = job
                try:
                    self._jobs.run(slot.child, job)
                except Exception as error:  # a job's trouble must not end this dispatcher
                    log.exception("job %s: unexpected error in its dispatcher", job.id)
                    shutil.rmtree(self.settings.faces_dir / job.id, ignore_errors=True)
                    self._jobs.fail(job.id, f"the service failed while handling this job ({type(error).__name__}: {error})")
                finally:
                    slot.job = None
        finally:
            slot.child.close()

    def _fail_service(self, message: str) -> None:
        self.fatal_error = message
        if self.on_fatal is not None:
            self.on_fatal(message)
