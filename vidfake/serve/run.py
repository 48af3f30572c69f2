"""Run the service until it stops: the lifecycle behind ``vidfake serve``.

Checks the settings before anything listens (``Service.preflight``: the model loads, the
data folder is writable), then serves with uvicorn; a fatal error reported by the service
(a worker that cannot start, say) stops the server and becomes the exit code's message.
"""
from __future__ import annotations

import logging

from vidfake.serve.config import ServeSettings

__all__ = ["ServeError", "serve_forever"]


class ServeError(RuntimeError):
    """The service could not start or stopped on a fatal error; the message says why."""


def serve_forever(settings: ServeSettings, host: str, port: int, log_level: str = "info") -> int:
    """Serve on ``host:port`` until stopped; returns the exit code (0 after a clean stop,
    130 after Ctrl-C, 1 if the server never started) or raises ``ServeError``."""
    import uvicorn

    from vidfake.serve.app import create_app
    from vidfake.serve.service import Service

    try:
        Service(settings).preflight()
    except (RuntimeError, OSError) as error:
        raise ServeError(str(error)) from error
    logging.basicConfig(level=log_level.upper(), format="%(levelname)-9s %(message)s")
    fatal: list[str] = []
    servers: list[uvicorn.Server] = []

    def stop_with(message: str) -> None:
        fatal.append(message)
        for server in servers:
            server.should_exit = True

    config = uvicorn.Config(create_app(settings, on_fatal=stop_with), host=host, port=port,
                            log_level=log_level, timeout_graceful_shutdown=10)
    servers.append(uvicorn.Server(config))
    try:
        servers[0].run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its clean shutdown
        return 130
    except SystemExit:  # uvicorn exits when start-up fails (port taken, service error)
        if not fatal:
            raise
    if fatal:
        raise ServeError(fatal[0])
    return 0 if servers[0].started else 1
