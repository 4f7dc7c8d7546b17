"""`wasmwiz serve`: uvicorn over create_app, with TLS, workers and a draining shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from wasmwiz.app import create_app
from wasmwiz.cli.malloc_arenas import cap_malloc_arenas
from wasmwiz.config import ENV_FILE, ConfigurationError, Settings, load_settings
from wasmwiz.http_common.lifecycle import Lifecycle, Phase
from wasmwiz.http_common.transport import BoundedHttpToolsProtocol, TransportLimits
from wasmwiz.observability.logging import configure_logging

logger = logging.getLogger(__name__)


def build_app(settings: Settings) -> FastAPI:
    """The app of one serving process, its SIGTERM turned into draining."""
    cap_malloc_arenas()  # before the app starts threads: each takes an arena at its first malloc
    configure_logging(settings.log_level, json_lines=settings.is_production)
    # Here, not in `serve`: a worker process builds its app before its first connection.
    BoundedHttpToolsProtocol.configure(transport_limits(settings))
    app = create_app(settings)
    drain_on_sigterm(app.state.lifecycle, grace_seconds=settings.shutdown_grace_period)
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Move what start-up built (modules, classes, the app) out of the collector's reach.

    The cyclic garbage collector's oldest generation is scanned whole, every object in it,
    each time it runs: in a serving process that is mostly what imports and `create_app`
    made, which lives as long as the process. Frozen, those are never scanned again: a
    full collection, which runs on whichever thread allocates when it falls due (often
    the event loop's), then scans only what was made since (bench/untrusted_body.py's
    "event loop worst" shows the difference).
    """
    gc.collect()
    gc.freeze()


def transport_limits(settings: Settings) -> TransportLimits:
    return TransportLimits(
        max_head_bytes=settings.max_header_size,
        max_header_count=settings.max_header_count,
        head_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
        drain_bytes=settings.early_answer_drain_bytes,
        drain_timeout=settings.early_answer_drain_timeout,
    )


def app_factory() -> FastAPI:
    """Entry point for worker processes: each builds its own app from the environment."""
    return build_app(load_settings(env_file=ENV_FILE))


class _SettingsAppFactory:
    """A one-process factory: uvicorn calls it after installing its signal handlers, which
    is what lets `drain_on_sigterm` wrap them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self) -> FastAPI:
        return build_app(self.settings)


def drain_on_sigterm(lifecycle: Lifecycle, *, grace_seconds: float) -> None:
    """Make the first SIGTERM drain before uvicorn's own shutdown begins.

    Draining: readiness turns 503 and new requests get 503 `shutting_down` while the
    listener stays open, so a load balancer sees the instance leave instead of refused
    connections; in-flight requests get up to `grace_seconds` to finish. Then uvicorn's
    handler runs: it closes the listener and the lifespan flushes usage and closes pools.
    A second SIGTERM skips the wait.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread; an embedded server keeps its own
    stop_server = signal.getsignal(signal.SIGTERM)
    if not callable(stop_server):
        return
    tasks: set[asyncio.Task[None]] = set()

    async def drain(signum: int) -> None:
        try:
            async with asyncio.timeout(grace_seconds):
                await lifecycle.wait_idle()
        except TimeoutError:
            logger.warning(
                "shutdown grace period over with %d request(s) in flight", lifecycle.in_flight
            )
        stop_server(signum, None)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop = _running_loop()
        if lifecycle.phase is Phase.DRAINING or loop is None:
            stop_server(signum, frame)
            return
        lifecycle.begin_draining()
        # Held so the task is not garbage-collected while it waits.
        tasks.add(loop.create_task(drain(signum)))

    signal.signal(signal.SIGTERM, on_sigterm)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> int:
    overrides: dict[str, Any] = {
        name: value
        for name, value in {
            "server_host": host,
            "server_port": port,
            "workers": workers,
            "tls_certfile": certfile,
            "tls_keyfile": keyfile,
        }.items()
        if value is not None
    }
    try:
        # Flags go through the same validation as the environment (e.g. SQLite x workers).
        settings = load_settings(**(settings.model_dump() | overrides))
    except ConfigurationError as exc:
        print(f"wasmwiz: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json_lines=settings.is_production)
    options: dict[str, Any] = {
        "host": settings.server_host,
        "port": settings.server_port,
        "factory": True,
        "log_config": None,
        # The app believes forwarded headers only from TRUSTED_PROXIES; uvicorn's own
        # default would trust anything from 127.0.0.1.
        "proxy_headers": False,
        "server_header": False,
        # Ours is written by RequestContextMiddleware; uvicorn's (its logger disabled in
        # configure_logging) would still build the client address and quoted path of
        # every request before finding no one listening.
        "access_log": False,
        # httptools with bounded heads and connections (http_common/transport.py).
        "http": BoundedHttpToolsProtocol,
        # No route speaks WebSocket: an upgrade request is served as a plain request.
        "ws": "none",
        # asyncio's own loop, not uvloop: while busy, uvloop takes about one waiting
        # connection per turn of the loop, so a burst of new clients waits in the accept
        # queue for seconds; asyncio takes them all at once (docs/performance.md,
        # bench/event_loop.py, tests/security/test_connection_burst.py).
        "loop": "asyncio",
        # Draining already waited for in-flight requests; this bounds what is left.
        "timeout_graceful_shutdown": int(settings.shutdown_grace_period) + 1,
        "ssl_certfile": str(settings.tls_certfile) if settings.tls_certfile else None,
        "ssl_keyfile": str(settings.tls_keyfile) if settings.tls_keyfile else None,
    }
    if settings.workers > 1:
        # Each process is a whole app; they must share limits through Redis to be exact.
        os.environ.setdefault("SERVER_HOST", settings.server_host)
        uvicorn.run("wasmwiz.cli.serve:app_factory", workers=settings.workers, **options)
        return 0
    uvicorn.run(_SettingsAppFactory(settings), **options)
    return 0
