"""The JSON API adapter."""

from fastapi import APIRouter

from wasmwiz.api import (
    admin,
    executions,
    health,
    jobs,
    keys,
    metrics,
    modules,
    runtimes,
    usage,
    webhooks,
)


def build_api_router() -> APIRouter:
    router = APIRouter()
    router.include_router(executions.router)
    router.include_router(jobs.router)
    router.include_router(modules.router)
    router.include_router(runtimes.router)
    router.include_router(health.router)
    router.include_router(metrics.router)
    router.include_router(keys.router)
    router.include_router(usage.router)
    router.include_router(webhooks.router)
    router.include_router(admin.router)
    return router


__all__ = ["build_api_router"]
