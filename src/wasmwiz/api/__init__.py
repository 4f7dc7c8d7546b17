"""The JSON API adapter."""

from fastapi import APIRouter

from wasmwiz.api import executions, health, metrics


def build_api_router() -> APIRouter:
    router = APIRouter()
    router.include_router(executions.router)
    router.include_router(health.router)
    router.include_router(metrics.router)
    return router


__all__ = ["build_api_router"]
