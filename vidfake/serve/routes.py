"""The service's HTTP routes: health checks and the ``/v1`` API.

Each endpoint is a thin call into ``Service``; here live only what HTTP adds: status
codes, headers, the OpenAPI description of every answer, and the check that a job id has
the server's own form before it reaches the store.
"""
from __future__ import annotations

import logging
import re
import uuid

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from vidfake.examples import ExampleMissingError
from vidfake.serve import schemas
from vidfake.serve.config import ServeSettings
from vidfake.serve.heatmap_files import heatmap_path
from vidfake.serve.service import Service
from vidfake.serve.store import STATUSES, Job
from vidfake.serve.uploads import FIELD, UploadRejected, receive_upload

log = logging.getLogger("vidfake.serve")
_JOB_ID = re.compile(r"[0-9a-f]{32}")

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary",
                                           "description": "a video or a still image; its type is read from its content"}},
                }
            }
        },
    }
}


def _error(status: int, description: str) -> dict:
    return {status: {"model": schemas.ErrorBody, "description": description}}


def _job_created(job: Job) -> JSONResponse:
    """202 with the new job's id and where to poll it (also in the Location header)."""
    created = schemas.JobCreated(id=job.id, status=job.status, url=schemas.job_url(job.id))
    return JSONResponse(created.model_dump(), status_code=202, headers={"Location": created.url})


def health_routes(service: Service) -> APIRouter:
    """``/healthz`` and ``/readyz``: never authenticated (orchestrators probe them without secrets)."""
    router = APIRouter()

    @router.get("/healthz", response_model=schemas.Health, tags=["health"])
    def healthz() -> schemas.Health:
        """The process is up and answering."""
        return schemas.Health()

    @router.get("/readyz", response_model=schemas.Readiness, tags=["health"],
                responses={503: {"model": schemas.Readiness, "description": "no worker has the model loaded"}})
    def readyz() -> JSONResponse:
        """Ready to score: at least one worker has the model loaded."""
        ready, body = service.readiness()
        return JSONResponse(schemas.Readiness(**body).model_dump(), status_code=200 if ready else 503)

    return router


def api_routes(service: Service, settings: ServeSettings, auth: list) -> APIRouter:
    """Everything under ``/v1``, behind ``auth`` (the token check; empty without a token)."""
    api = APIRouter(prefix="/v1", dependencies=auth, responses=_error(401, "bearer token missing or wrong") if auth else {})

    @api.get("/model", response_model=schemas.ModelInfo, tags=["model"], responses=_error(503, "the model is loading"))
    def model() -> schemas.ModelInfo:
        """The checkpoint the workers score with."""
        pool = service.scoring
        if pool is None or pool.model_info is None:
            raise HTTPException(503, pool.fatal_error if pool is not None and pool.fatal_error else "the model is loading")
        return schemas.ModelInfo(**pool.model_info, workers=pool.size, workers_ready=pool.workers_ready)

    @api.post(
        "/jobs", status_code=202, response_model=schemas.JobCreated, tags=["jobs"], openapi_extra=_UPLOAD_BODY,
        responses={
            **_error(400, "not a multipart upload with a 'file' field"),
            **_error(408, "the upload took longer than --upload-timeout: the connection is closed"),
            **_error(413, "the upload is over --max-upload-mb"),
            **_error(415, "the content is not a video or an image"),
            **_error(422, "over the duration or resolution limit"),
            **_error(503, "the queue is full: retry after the Retry-After header's seconds"),
            **_error(507, "the server's disk is full: the upload was discarded, no job was made"),
        },
    )
    async def create_job(request: Request) -> JSONResponse:
        """Upload a video or an image (multipart form field `file`) to be scored."""
        job_id = uuid.uuid4().hex
        partial = service.partial_path(job_id)
        try:
            service.refuse_if_full()
            received = await receive_upload(
                request.headers.get("content-type", ""), request.headers.get("content-length"),
                request.stream(), partial, settings.max_upload_bytes, settings.upload_timeout_s,
            )
            facts = await run_in_threadpool(service.check_upload, partial)
            job = await run_in_threadpool(service.enqueue, job_id, received, facts)
        except UploadRejected as rejected:
            partial.unlink(missing_ok=True)
            return JSONResponse({"detail": rejected.message}, status_code=rejected.status, headers=rejected.headers)
        except ClientDisconnect:
            partial.unlink(missing_ok=True)
            return JSONResponse({"detail": "the client disconnected during the upload"}, status_code=400)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return _job_created(job)

    @api.post(
        "/jobs/example", status_code=202, response_model=schemas.JobCreated, tags=["jobs"],
        responses={
            **_error(422, "the example is over the duration or resolution limit"),
            **_error(500, "the example clip is missing from this install"),
            **_error(503, "the queue is full: retry after the Retry-After header's seconds"),
        },
    )
    async def create_example_job() -> JSONResponse:
        """Score the example clip that ships with vidfake (3 s, a real talking face with
        speech; GRID corpus, CC BY 4.0) without uploading anything: the server queues its
        own copy, which is then a job like any other."""
        try:
            job = await run_in_threadpool(service.enqueue_example, uuid.uuid4().hex)
        except UploadRejected as rejected:
            return JSONResponse({"detail": rejected.message}, status_code=rejected.status, headers=rejected.headers)
        except ExampleMissingError as error:
            log.error("%s", error)  # the path is for the operator, not the client
            return JSONResponse({"detail": "the example clip is not installed on this server: reinstall vidfake"},
                                status_code=500)
        return _job_created(job)

    @api.get("/jobs", response_model=schemas.JobList, tags=["jobs"])
    def list_jobs(
        limit: int = Query(50, ge=1, le=500, description="jobs per page"),
        before: int | None = Query(None, ge=1, description="the next_before cursor of the previous page"),
        status: str | None = Query(None, description="only jobs with this status", pattern="^(" + "|".join(STATUSES) + ")$"),
    ) -> schemas.JobList:
        """Recent jobs, newest first, paged with a stable cursor."""
        jobs = service.store.list(limit + 1, before, status)
        page = jobs[:limit]
        next_before = page[-1].seq if len(jobs) > limit else None
        return schemas.JobList(jobs=[schemas.summary(j) for j in page], limit=limit, next_before=next_before)

    def _job_or_404(job_id: str):
        job = service.store.get(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    @api.get("/jobs/{job_id}", response_model=schemas.JobDetail, tags=["jobs"], responses=_error(404, "no such job"))
    def get_job(job_id: str) -> schemas.JobDetail:
        """A job's status and, when done, its verdict (the `vidfake score --json` record)."""
        job = _job_or_404(job_id)
        position = service.store.queue_position(job) if job.status == "queued" else None
        return schemas.detail(job, position)

    @api.delete("/jobs/{job_id}", status_code=204, tags=["jobs"], responses=_error(404, "no such job"))
    def delete_job(job_id: str) -> Response:
        """Remove a job, its stored upload and its thumbnails."""
        if not (_JOB_ID.fullmatch(job_id) and service.delete(job_id)):
            raise HTTPException(404, f"no job {job_id}")
        return Response(status_code=204)

    @api.get("/jobs/{job_id}/faces/{track_id}.jpg", tags=["jobs"], response_class=FileResponse,
             responses={200: {"content": {"image/jpeg": {}}}, **_error(404, "no such job, track or thumbnail")})
    def face_thumbnail(job_id: str, track_id: int) -> FileResponse:
        """The thumbnail of one face track (the face on the track's first frame)."""
        job = _job_or_404(job_id)
        path = service.thumbnail_path(job.id, track_id)
        if job.purged or not path.is_file():
            raise HTTPException(404, "no thumbnail for this track" + (" (deleted after the retention period)" if job.purged else ""))
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @api.get("/jobs/{job_id}/heatmaps/{name}", tags=["jobs"], response_class=FileResponse,
             responses={200: {"content": {"image/png": {}}}, **_error(404, "no such job or heat map")})
    def heatmap(job_id: str, name: str) -> FileResponse:
        """One heat-map picture the job's verdict names (its `heatmaps` list gives the URLs)."""
        job = _job_or_404(job_id)
        path = heatmap_path(settings.faces_dir, job.id, name)
        if job.purged or path is None or not path.is_file():
            raise HTTPException(404, "no such heat map" + (" (deleted after the retention period)" if job.purged else ""))
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    return api
