"""Response bodies of the HTTP API, as pydantic models: they are the OpenAPI schema
(``/openapi.json``) that client code is generated from, and they keep every endpoint's
answer in one checked shape."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from vidfake.serve.heatmap_files import heatmap_links
from vidfake.serve.store import Job

JobStatus = Literal["queued", "running", "done", "failed"]


class ErrorBody(BaseModel):
    """The body of every error response."""
    detail: str = Field(description="what went wrong, in words")


class Health(BaseModel):
    """Answer of ``/healthz``: the server process is up."""
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Answer of ``/readyz``: whether a job submitted now would be scored."""
    ready: bool
    workers_ready: int = Field(description="scoring workers with the model loaded")
    workers: int
    reason: str | None = None
    error: str | None = Field(None, description="why the service cannot score at all")


class EnsembleMember(BaseModel):
    """One model of an ensemble."""
    name: str
    version: str
    sha256: str
    weight: float = Field(description="its weight in the mean of the members' calibrated logits")
    backbone: str
    input_size: int
    plan: str


class ModelInfo(BaseModel):
    """The model the service scores with, and how many workers have it loaded."""
    name: str
    version: str
    sha256: str
    checkpoint: str = Field(description="checkpoint file name")
    device: str
    backbone: str = Field(description="timm backbone (an ensemble: its members', joined by ' + ')")
    input_size: int | None = Field(description="face crop side in pixels (None: an ensemble whose members differ)")
    lip_sync_head: bool
    mouth_motion_head: bool = Field(description="a mouth-motion head reads the mouth region for re-generated mouths")
    plan: str = Field(description="frame sampling plan (an ensemble: its members' distinct plans)")
    keyframe_interval: int | None = Field(
        description="full face search on every K-th sampled frame, tracking between: the model's own unless the "
                    "service was started with --keyframe-interval (None: an ensemble whose members differ)")
    threshold: float = Field(description="scores at or above it are labelled FAKE")
    untrained: bool = Field(description="a randomly initialised checkpoint (an ensemble: any member)")
    members: list[EnsembleMember] = Field(default_factory=list, description="an ensemble's members; empty for one model")
    workers: int
    workers_ready: int


class JobCreated(BaseModel):
    """Answer to an accepted upload: the new job and where to poll it."""
    id: str
    status: JobStatus
    url: str = Field(description="where to poll the job")


class FaceThumbnail(BaseModel):
    """A link to one face track's thumbnail."""
    track_id: int = Field(description="the verdict's track id")
    frame: int = Field(description="frame index the thumbnail was cut from (the track's first)")
    url: str


class HeatmapPicture(BaseModel):
    """A link to one heat map picture of a face track, and what it shows."""
    track_id: int = Field(description="the verdict's track id")
    method: Literal["mask_head", "grad_cam"] = Field(description="the model's blend-mask head, or Grad-CAM without one")
    label: str = Field(description="the method in words")
    frame: int = Field(description="video frame index (0 for an image)")
    time: float = Field(description="seconds")
    score: float = Field(description="the track's fake probability on this frame")
    peak: float = Field(description="the map's highest value (mask head: blend probability)")
    box: list[float] = Field(description="the map's hot region, x1,y1,x2,y2 in frame pixels")
    note: str | None = None
    url: str


class JobSummary(BaseModel):
    """A job as the job list shows it: status, file facts and, when done, the score."""
    id: str
    status: JobStatus
    filename: str = Field(description="the uploaded file's name, for display")
    kind: Literal["video", "image"]
    size_bytes: int
    media: dict = Field(description="what the header check found: size, duration, codec...")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(description="times a worker took the job (restarts included)")
    queue_position: int | None = Field(None, description="queued jobs ahead of this one")
    verdict_status: str | None = Field(None, description="ok, no_face, unreadable or unsupported, when done")
    score: float | None = Field(None, description="probability that the file is fake (when done and ok)")
    label: str | None = None
    error: str | None = Field(None, description="why the job failed")
    files_purged: bool = Field(description="the upload and thumbnails were deleted after the retention period")
    url: str


class JobDetail(JobSummary):
    """A job with its full verdict, face thumbnails and heat maps."""
    verdict: dict | None = Field(None, description="when done: the same record as `vidfake score --json`")
    faces: list[FaceThumbnail] = Field(default_factory=list, description="one thumbnail per face track")
    heatmaps: list[HeatmapPicture] = Field(
        default_factory=list, description="each face track's most suspicious frames with the heat map over the face")


class JobList(BaseModel):
    """One page of jobs, newest first."""
    jobs: list[JobSummary]
    limit: int
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null on the last page")


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def job_url(job_id: str) -> str:
    """The API path of a job."""
    return f"/v1/jobs/{job_id}"


def summary(job: Job, queue_position: int | None = None) -> JobSummary:
    """A job record as the API's summary."""
    verdict = job.verdict or {}
    return JobSummary(
        id=job.id, status=job.status, filename=job.filename, kind=job.kind, size_bytes=job.size_bytes,
        media=job.media, created_at=_time(job.created_at), started_at=_time(job.started_at),
        finished_at=_time(job.finished_at), attempts=job.attempts, queue_position=queue_position,
        verdict_status=verdict.get("status"), score=verdict.get("score"), label=verdict.get("label"),
        error=job.error, files_purged=job.purged, url=job_url(job.id),
    )


def detail(job: Job, queue_position: int | None = None) -> JobDetail:
    """A job record as the API's detail, with links to the thumbnails and heat maps still on disk."""
    faces = [] if job.purged else [
        FaceThumbnail(track_id=f["track_id"], frame=f["frame"], url=f"{job_url(job.id)}/faces/{f['track_id']}.jpg")
        for f in job.faces
    ]
    heatmaps = [] if job.purged else [HeatmapPicture(**link) for link in heatmap_links(job_url(job.id), job.verdict)]
    return JobDetail(**summary(job, queue_position).model_dump(), verdict=job.verdict, faces=faces, heatmaps=heatmaps)
