"""`vidfake serve`: the HTTP service and its web page."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vidfake.cli.common import positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the command and its options (defaults from the settings dataclasses)."""
    from vidfake.serve.config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, ServeSettings

    d = ServeSettings(checkpoint=Path("-"))
    p = sub.add_parser(
        "serve",
        help="score uploaded videos and images over HTTP: a JSON API and a web page",
        description=(
            "Start an HTTP server: POST /v1/jobs uploads a file (multipart field 'file'), GET /v1/jobs/ID "
            "gives its status and verdict (the `vidfake score --json` record), the page at / does the same "
            "in a browser. Jobs are kept in SQLite under --data-dir, so a restart loses none. "
            f"The bearer token can also come from the {TOKEN_ENV} environment variable (safer than --token, "
            "which other users can see in the process list)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port")
    p.add_argument("--checkpoint", type=Path, action="append", metavar="CHECKPOINT",
                   help="model checkpoint (or ensemble file); without it, the model shipped with vidfake; repeat it "
                        "to serve an equally weighted ensemble")
    p.add_argument("--workers", type=int, default=d.workers, help="scoring processes, each with one model in memory")
    p.add_argument("--device", default=d.device, help="cpu or cuda[:N] for the workers' model and face detector")
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="job database, uploads and face thumbnails")
    p.add_argument("--db", type=Path, help="SQLite job database; without it, DATA_DIR/jobs.sqlite3")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="larger uploads get 413")
    p.add_argument("--upload-timeout", type=float, default=d.upload_timeout_s,
                   help="seconds the whole upload may take; a slower client gets 408 and its connection closed")
    p.add_argument("--max-duration", type=float, default=d.max_duration_s, help="longer videos (seconds) get 422")
    p.add_argument("--max-resolution", default="x".join(map(str, d.max_resolution)),
                   help="larger frames (either orientation) get 422")
    p.add_argument("--queue-size", type=int, default=d.queue_max, help="queued jobs beyond which uploads get 503")
    p.add_argument("--job-timeout", type=float, default=d.job_timeout_s,
                   help="seconds a job may take; past it the worker is killed and the job fails")
    p.add_argument("--retention-hours", type=float, default=d.retention_hours,
                   help="uploads and thumbnails are deleted this long after their job ends")
    p.add_argument("--heatmap-frames", type=int, default=d.heatmap_frames, metavar="K",
                   help="heat maps per face track shown under the timeline (the most suspicious frames; 0: none); "
                        "kept and deleted with the thumbnails")
    p.add_argument("--keyframe-interval", type=positive_int, metavar="K",
                   help="override the model's face search: a full search on every K-th sampled frame (the default "
                        "model: 4); 8 is about 0.3 s faster a 10 s 1080p job, scores move slightly (vidfake score "
                        "--help); /v1/model reports it")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' on every endpoint but /healthz and /readyz "
                                   f"(default: ${TOKEN_ENV} if set, else no authentication)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from this origin (repeatable); CORS is off by default")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; returns the exit code."""

    from vidfake.checkpoints.default import resolve_checkpoint
    from vidfake.checkpoints.format import CheckpointError
    from vidfake.serve.config import TOKEN_ENV, ServeSettings, parse_resolution

    try:
        checkpoints = [resolve_checkpoint(path) for path in args.checkpoint or [None]]
    except CheckpointError as error:
        print(f"vidfake serve: {error}", file=sys.stderr)
        return 2
    missing = [str(path) for path in checkpoints if not path.is_file()]
    if missing:
        print(f"vidfake serve: {', '.join(missing)}: no such checkpoint file", file=sys.stderr)
        return 2
    checkpoint = checkpoints[0].resolve() if len(checkpoints) == 1 else tuple(path.resolve() for path in checkpoints)
    try:
        settings = ServeSettings(
            checkpoint=checkpoint, data_dir=args.data_dir.resolve(), db_path=args.db, workers=args.workers,
            device=args.device, max_upload_mb=args.max_upload_mb, upload_timeout_s=args.upload_timeout,
            max_duration_s=args.max_duration,
            max_resolution=parse_resolution(args.max_resolution), queue_max=args.queue_size,
            job_timeout_s=args.job_timeout, retention_hours=args.retention_hours,
            token=args.token if args.token is not None else (os.environ.get(TOKEN_ENV) or None),
            cors_origins=tuple(args.cors_origin), heatmap_frames=args.heatmap_frames,
            keyframe_interval=args.keyframe_interval,
        )
    except ValueError as error:
        print(f"vidfake serve: {error}", file=sys.stderr)
        return 2
    from vidfake.serve.run import ServeError, serve_forever

    try:
        return serve_forever(settings, args.host, args.port, args.log_level)
    except ServeError as error:
        print(f"vidfake serve: {error}", file=sys.stderr)
        return 2
