"""The FastAPI application: the service's lifespan, authentication and the web page; the
routes themselves are in ``routes``.

Only HTTP lives here; what an endpoint does is a call into ``Service``. Everything under
``/v1`` and the OpenAPI schema need the bearer token when one is configured; the health
checks never do (orchestrators probe them without secrets), and neither do the web
page's static files, which hold no data: the page asks for the token and sends it with
every API call. The /docs page (Swagger UI) works offline: its scripts come from the
installed ``fastapi-offline`` package and are served here, never from a CDN; it sends the
token the web page stored when it fetches the schema.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from vidfake import __version__
from vidfake.serve.config import ServeSettings
from vidfake.serve.routes import api_routes, health_routes
from vidfake.serve.service import Service

STATIC_DIR = Path(__file__).parent / "static"


def _token_check(token: str | None) -> list:
    """The dependency list guarding the API: empty without a token."""
    if token is None:
        return []
    bearer = HTTPBearer(auto_error=False, description="the token given to vidfake serve (--token or VIDFAKE_TOKEN)")
    expected = token.encode()

    async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token (send Authorization: Bearer TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    return [Depends(require_token)]


def _lifespan(service: Service, on_fatal: Callable[[str], None] | None):
    """Start the service (in a thread: it loads models) before the first request and stop
    it after the last; a service that cannot start is reported to ``on_fatal``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            await run_in_threadpool(service.start)
        except Exception as error:
            if on_fatal is not None:
                on_fatal(str(error))
            await run_in_threadpool(service.stop)
            raise
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    return lifespan


def create_app(settings: ServeSettings, on_fatal: Callable[[str], None] | None = None) -> FastAPI:
    """The app for one data folder. The service (store, workers) starts with the app's
    lifespan; ``on_fatal`` is told when it cannot go on (no model can be loaded), so the
    caller can stop the server with that message."""
    service = Service(settings, on_fatal)
    app = FastAPI(
        title="vidfake",
        version=__version__,
        description="Deepfake scores for uploaded videos and images: upload a file, poll its job, read the verdict.",
        lifespan=_lifespan(service, on_fatal), docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.service = service
    auth = _token_check(settings.token)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization"], expose_headers=["Location", "Retry-After"],
        )

    app.include_router(health_routes(service))
    app.include_router(api_routes(service, settings, auth))

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    # -- web page (static, no data, no token needed) -----------------------------------

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Swagger UI's own files, from the installed package (vidfake's static/ holds only its page)
    app.mount("/docs/assets", StaticFiles(directory=str(resources.files("fastapi_offline") / "static")),
              name="docs-assets")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        """The API documentation: Swagger UI on this server's OpenAPI schema."""
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html")

    return app
