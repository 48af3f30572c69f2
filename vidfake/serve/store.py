"""Jobs persisted in SQLite: the service's only durable state.

A job row is written before the upload is acknowledged, and every change of status is a
committed transaction, so a crash or restart loses nothing: jobs found ``running`` at
start-up were interrupted and go back to the queue (``recover``). SQLite needs no server
and one file holds everything; WAL mode lets the API read while a worker writes.

Upload files are never named in the database: a job's upload is ``uploads/<id>`` and its
thumbnails ``faces/<id>/``, both derived from the server-made id, so nothing a client
sends can become a path.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("queued", "running", "done", "failed")
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order: queue order and paging cursor
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    filename TEXT NOT NULL,                  -- the client's name, for display only
    kind TEXT NOT NULL CHECK (kind IN ('video', 'image')),
    size_bytes INTEGER NOT NULL,
    media TEXT NOT NULL,                     -- JSON: what the header check found
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,     -- times a worker took it (restarts included)
    error TEXT,
    verdict TEXT,                            -- JSON: the Verdict record, when done
    faces TEXT,                              -- JSON: thumbnails written for the verdict's tracks
    purged INTEGER NOT NULL DEFAULT 0        -- 1 once the upload and thumbnails were deleted
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""


class QueueFull(Exception):
    """The queue holds ``queue_max`` jobs already; the caller answers 503."""


@dataclass(frozen=True)
class Job:
    """One job as stored."""

    id: str
    seq: int
    status: str
    filename: str
    kind: str
    size_bytes: int
    media: dict
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    error: str | None
    verdict: dict | None
    faces: list[dict] = field(default_factory=list)
    purged: bool = False


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"], seq=row["seq"], status=row["status"], filename=row["filename"], kind=row["kind"],
        size_bytes=row["size_bytes"], media=json.loads(row["media"]), created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], attempts=row["attempts"],
        error=row["error"], verdict=json.loads(row["verdict"]) if row["verdict"] else None,
        faces=json.loads(row["faces"]) if row["faces"] else [], purged=bool(row["purged"]),
    )


class JobDatabase:
    """The job table's SQLite file: one connection behind one lock (the writes are tiny,
    and a single writer is what SQLite wants anyway). Opening it checks the schema
    version and creates the table; every call holds the lock for one statement, or for
    one ``transaction``."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version}, this vidfake knows {_SCHEMA_VERSION}")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise RuntimeError(f"{path}: cannot use the job database: {error}") from None

    def close(self) -> None:
        """Close the connection (waits for a statement in progress)."""
        with self._lock:
            self._db.close()

    def rows(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """Every row the statement returns (fetched under the lock: an UPDATE ... RETURNING ends here)."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self._lock:
            return self._db.execute(sql, args).rowcount

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE`` (the write lock taken up front, so a
        check and the write it allows cannot interleave), committed on success and rolled
        back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


class JobStore:
    """The jobs, from upload to retention: each method is one statement or one transaction
    on the ``JobDatabase``, so it is safe from any thread."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = JobDatabase(self.path)

    def close(self) -> None:
        """Close the database; the store is unusable after."""
        self._db.close()

    def _one(self, sql: str, args: tuple = ()) -> Job | None:
        rows = self._db.rows(sql, args)
        return _job(rows[0]) if rows else None

    def _count(self, sql: str, args: tuple = ()) -> int:
        return self._db.rows(sql, args)[0][0]

    # -- API side ---------------------------------------------------------------------

    def create(self, job_id: str, filename: str, kind: str, size_bytes: int, media: dict, queue_max: int) -> Job:
        """Insert a queued job unless ``queue_max`` jobs are queued already (QueueFull);
        the check and the insert are one transaction, so concurrent uploads cannot
        overshoot the bound."""
        with self._db.transaction() as db:
            queued = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
            if queued >= queue_max:
                raise QueueFull(f"{queued} jobs are queued (the limit is {queue_max})")
            db.execute(
                "INSERT INTO jobs (id, status, filename, kind, size_bytes, media, created_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, filename, kind, size_bytes, json.dumps(media), time.time()),
            )
            return _job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def list(self, limit: int, before: int | None = None, status: str | None = None) -> list[Job]:
        """Newest first; ``before`` is the ``seq`` cursor of the previous page's last job,
        so pages stay stable while new jobs arrive."""
        where, args = [], []
        if before is not None:
            where.append("seq < ?")
            args.append(before)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT ?"
        return [_job(row) for row in self._db.rows(sql, (*args, limit))]

    def count(self, status: str | None = None) -> int:
        """Jobs with this status (every job when None)."""
        if status is None:
            return self._count("SELECT COUNT(*) FROM jobs")
        return self._count("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,))

    def queue_position(self, job: Job) -> int:
        """Queued jobs ahead of this one (0: it is next)."""
        return self._count("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < ?", (job.seq,))

    def delete(self, job_id: str) -> Job | None:
        """Remove the row; returns what it held (None if there was no such job)."""
        return self._one("DELETE FROM jobs WHERE id = ? RETURNING *", (job_id,))

    def recent_durations(self, n: int = 20) -> list[float]:
        """Seconds the last ``n`` finished jobs spent in a worker (for Retry-After)."""
        rows = self._db.rows(
            "SELECT finished_at - started_at FROM jobs WHERE status IN ('done', 'failed') "
            "AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?", (n,)
        )
        return [float(r[0]) for r in rows if r[0] is not None and r[0] >= 0]

    # -- worker side ------------------------------------------------------------------

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when the queue is empty)."""
        return self._one(
            "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 "
            "WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1) RETURNING *",
            (time.time(),),
        )

    def finish(self, job_id: str, verdict: dict, faces: list[dict]) -> bool:
        """Store the verdict; False when the job was deleted while it ran."""
        return self._db.execute(
            "UPDATE jobs SET status = 'done', finished_at = ?, verdict = ?, faces = ?, error = NULL "
            "WHERE id = ? AND status = 'running'",
            (time.time(), json.dumps(verdict), json.dumps(faces), job_id),
        ) == 1

    def fail(self, job_id: str, error: str) -> bool:
        """Mark a queued or running job failed; False when it is gone or finished already."""
        return self._db.execute(
            "UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status IN ('queued', 'running')",
            (time.time(), error, job_id),
        ) == 1

    def requeue(self, job_id: str) -> bool:
        """A running job goes back to the queue (its worker was stopped for a shutdown)."""
        return self._db.execute(
            "UPDATE jobs SET status = 'queued', started_at = NULL WHERE id = ? AND status = 'running'", (job_id,)
        ) == 1

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """At start-up: jobs left ``running`` by a stopped or crashed service go back to the
        queue, except those it was working on ``max_attempts`` times already (a file that
        takes the service down must not do so forever). Returns (requeued, failed)."""
        with self._db.transaction() as db:
            failed = db.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE status = 'running' AND attempts >= ?",
                (time.time(), f"the service stopped while scoring this file {max_attempts} times; not retried again",
                 max_attempts),
            ).rowcount
            requeued = db.execute("UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'").rowcount
        return requeued, failed

    # -- retention ----------------------------------------------------------------------

    def expired(self, finished_before: float) -> list[Job]:
        """Finished jobs whose files are still on disk and past their retention."""
        rows = self._db.rows(
            "SELECT * FROM jobs WHERE purged = 0 AND status IN ('done', 'failed') AND finished_at < ?",
            (finished_before,),
        )
        return [_job(row) for row in rows]

    def mark_purged(self, job_id: str) -> None:
        """Record that the job's upload and thumbnails are deleted (its row and verdict stay)."""
        self._db.execute("UPDATE jobs SET purged = 1 WHERE id = ?", (job_id,))

    def ids(self) -> set[str]:
        """Every job's id (to find upload files no job owns)."""
        return {row[0] for row in self._db.rows("SELECT id FROM jobs")}
