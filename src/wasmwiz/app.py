"""The application factory: everything is built in create_app(settings), nothing at import."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from wasmwiz import __version__
from wasmwiz.api import build_api_router
from wasmwiz.config import RateLimitBackend, Settings
from wasmwiz.http_common.problems import install_problem_handlers
from wasmwiz.observability.metrics import Metrics
from wasmwiz.observability.middleware import RequestContextMiddleware
from wasmwiz.persistence import Database
from wasmwiz.ratelimit import (
    Clock,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SystemClock,
)
from wasmwiz.sandbox import Limits, Sandbox
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.container import Services
from wasmwiz.services.executions import ExecutionService
from wasmwiz.services.health import HealthService
from wasmwiz.services.rate_limits import AdmissionGate
from wasmwiz.services.usage_recorder import UsageRecorder

logger = logging.getLogger(__name__)


def sandbox_limits(settings: Settings) -> Limits:
    return Limits(
        timeout_seconds=settings.execution_timeout,
        memory_bytes=settings.memory_limit,
        max_output_bytes=settings.max_output_size,
    )


def build_rate_limiter(settings: Settings, clock: Clock) -> RateLimiter:
    if settings.rate_limit_backend is RateLimitBackend.REDIS:
        assert settings.redis_url is not None
        return RedisRateLimiter.from_url(settings.redis_url, clock=clock)
    return MemoryRateLimiter(clock=clock)


def prepare_temp_dir(settings: Settings) -> None:
    """Start with an empty temp dir: nothing a previous process left behind is trusted."""
    temp_dir = settings.effective_temp_dir
    if temp_dir.exists():
        shutil.rmtree(temp_dir)
    temp_dir.mkdir(parents=True, mode=0o700)


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_temp_dir(settings)
        database = Database(settings.effective_database_url)
        sandbox = Sandbox(
            limits=sandbox_limits(settings),
            max_concurrency=settings.max_concurrent_executions,
            max_queue=settings.max_queued_executions,
            max_module_bytes=settings.max_wasm_size,
            cache_max_bytes=settings.compiled_cache_max_bytes,
        )
        limiter = build_rate_limiter(settings, clock or SystemClock())
        gate = AdmissionGate(
            limiter, metrics, fail_open=settings.rate_limit_fail_mode.value == "open"
        )
        recorder = UsageRecorder(
            database,
            spool_path=settings.var_dir / "usage-spool.jsonl",
            flush_interval=settings.usage_flush_interval,
            batch_size=settings.usage_batch_size,
        )
        await recorder.start()
        services = Services(
            settings=settings,
            metrics=metrics,
            database=database,
            sandbox=sandbox,
            limiter=limiter,
            gate=gate,
            recorder=recorder,
            executions=ExecutionService(sandbox, gate, recorder, sandbox_limits(settings), metrics),
            api_keys=ApiKeyService(settings.api_salt),
            health=HealthService(database, sandbox, settings.effective_temp_dir, limiter),
        )
        app.state.services = services
        logger.info("wasmwiz %s ready", __version__)
        try:
            yield
        finally:
            # In-flight runs finish first, so their usage records are in the final flush.
            sandbox.close()
            await recorder.close()
            await limiter.close()
            await database.dispose()
            logger.info("wasmwiz stopped; usage records written: %d", recorder.written)

    app = FastAPI(
        title="WasmWiz",
        version=__version__,
        summary="Run untrusted WebAssembly (WASI) modules inside strict limits.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.include_router(build_api_router())
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
