"""`wasmwiz serve`: uvicorn over create_app, one or several processes."""

from __future__ import annotations

import os

import uvicorn

from wasmwiz.app import create_app
from wasmwiz.config import Settings, load_settings
from wasmwiz.observability.logging import configure_logging


def app_factory() -> object:
    """Entry point for worker processes: each builds its own app from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.is_production)
    return create_app(settings)


def serve(settings: Settings, *, host: str | None, port: int | None, workers: int) -> int:
    configure_logging(settings.log_level, json_lines=settings.is_production)
    host = host or settings.server_host
    port = port or settings.server_port
    if workers > 1:
        # Each process is a whole app; they must share limits through Redis to be exact.
        os.environ.setdefault("SERVER_HOST", host)
        uvicorn.run(
            "wasmwiz.cli.serve:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
        return 0
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )
    return 0
