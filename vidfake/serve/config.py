"""The service's settings: every limit and folder in one frozen dataclass.

The CLI fills it from its options, tests build it directly; nothing else in
``vidfake.serve`` has numbers of its own, so a limit means the same thing in the upload
check, the worker pool and docs/serving.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vidfake.scoring.heatmap_settings import DEFAULT_HEATMAP_FRAMES

DEFAULT_HOST = "127.0.0.1"  # loopback: exposing the service is a choice (--host 0.0.0.0)
DEFAULT_PORT = 8000
TOKEN_ENV = "VIDFAKE_TOKEN"  # where `vidfake serve` reads the bearer token when --token is absent
DB_FILE = "jobs.sqlite3"


def parse_resolution(text: str) -> tuple[int, int]:
    """``"3840x2160"`` -> ``(3840, 2160)``; ValueError with the expected form otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"resolution {text!r} is not of the form WIDTHxHEIGHT, e.g. 3840x2160")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class ServeSettings:
    """How one ``vidfake serve`` instance runs; one instance owns one ``data_dir``."""

    checkpoint: Path | tuple[Path, ...]  # resolved already (the packaged default model or --checkpoint); several: an ensemble
    data_dir: Path = Path("vidfake-data")  # uploads/, faces/ and the job database live here
    db_path: Path | None = None  # SQLite job database; default data_dir/jobs.sqlite3
    workers: int = 1  # scoring processes, each with one model in memory
    device: str = "cpu"  # where each worker runs the model (cpu, cuda, cuda:N)
    max_upload_mb: float = 500.0  # larger uploads get 413 while streaming, before they are stored whole
    upload_timeout_s: float = 60.0  # the whole upload body must arrive within this; slower ones get 408
    max_duration_s: float = 600.0  # longer videos get 422
    max_resolution: tuple[int, int] = (3840, 2160)  # either orientation; larger frames get 422
    queue_max: int = 100  # queued jobs beyond which uploads get 503 with Retry-After
    job_timeout_s: float = 600.0  # a job's scoring past this is killed and the job fails
    probe_timeout_s: float = 30.0  # the header check of one upload, in its own killable process
    probe_workers: int = 2  # processes doing header checks of uploads in parallel
    retention_hours: float = 24.0  # uploads and face thumbnails are deleted this long after a job ends
    token: str | None = None  # bearer token; when set, every endpoint but health checks needs it
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; none by default
    thumbnail_size: int = 112  # face thumbnail side, pixels
    heatmap_frames: int = DEFAULT_HEATMAP_FRAMES  # heat-map pictures per face track (the most suspicious frames); 0: none
    max_attempts: int = 3  # a job the service died on this many times is failed, not retried again
    keyframe_interval: int | None = None  # the face search's interval where it overrides the model's (vidfake score --help)
    worker_start_timeout_s: float = 600.0  # loading the model in a worker (first import of torch included)

    def __post_init__(self) -> None:
        problems = []
        if self.workers < 1:
            problems.append("workers must be at least 1")
        if self.probe_workers < 1:
            problems.append("probe_workers must be at least 1")
        for name in ("max_upload_mb", "upload_timeout_s", "max_duration_s", "job_timeout_s", "probe_timeout_s",
                     "worker_start_timeout_s"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive")
        if self.queue_max < 1:
            problems.append("queue_max must be at least 1")
        if self.retention_hours < 0:
            problems.append("retention_hours cannot be negative")
        if min(self.max_resolution) < 1:
            problems.append("max_resolution must be positive")
        if self.token is not None and not self.token.strip():
            problems.append("the token is empty")
        if self.heatmap_frames < 0:
            problems.append("heatmap_frames cannot be negative")
        if self.max_attempts < 1:
            problems.append("max_attempts must be at least 1")
        if self.keyframe_interval is not None and self.keyframe_interval < 1:
            problems.append("keyframe_interval must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def database(self) -> Path:
        """The job database file: ``db_path`` if given, else inside ``data_dir``."""
        return self.db_path if self.db_path is not None else self.data_dir / DB_FILE

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files wait for scoring."""
        return self.data_dir / "uploads"

    @property
    def faces_dir(self) -> Path:
        """Where each job's face thumbnails are kept."""
        return self.data_dir / "faces"

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def retention_s(self) -> float:
        """``retention_hours`` in seconds."""
        return self.retention_hours * 3600.0

    def resolution_allowed(self, width: int, height: int) -> bool:
        """True when the frame fits the limit in either orientation (portrait phone video
        under a landscape limit is fine)."""
        long_limit, short_limit = max(self.max_resolution), min(self.max_resolution)
        return max(width, height) <= long_limit and min(width, height) <= short_limit
