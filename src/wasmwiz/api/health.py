"""Health endpoints: /health (every check), /health/live (the process), /health/ready."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wasmwiz.api.dependencies import ServicesDep
from wasmwiz.api.schemas import HealthCheck, HealthResponse
from wasmwiz.services.health import CheckResult

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Service health",
    description="200 when every check passes, 503 naming the failing check otherwise.",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A check failed."}},
)
async def health(services: ServicesDep) -> JSONResponse:
    return _report(await services.health.run_checks())


@router.get(
    "/health/live",
    summary="Liveness",
    description="200 while the process can answer at all; it checks nothing else, so a "
    "database outage never gets healthy replicas restarted.",
    response_model=HealthResponse,
)
async def live() -> JSONResponse:
    return _report([])


@router.get(
    "/health/ready",
    summary="Readiness",
    description="200 when this instance should get traffic: started, not draining, and the "
    "database, rate limiter (Redis when configured), temp dir and sandbox all pass. "
    "503 otherwise, naming what failed.",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Not ready."}},
)
async def ready(request: Request) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    if services is None:
        return _report([CheckResult("lifecycle", False, "starting")])
    return _report(await services.health.readiness())


def _report(results: list[CheckResult]) -> JSONResponse:
    body = HealthResponse(
        status="ok" if all(result.ok for result in results) else "unavailable",
        checks=[HealthCheck(name=r.name, ok=r.ok, detail=r.detail) for r in results],
    )
    # No caching: a probe must see the state now.
    return JSONResponse(
        body.model_dump(),
        status_code=200 if body.status == "ok" else 503,
        headers={"Cache-Control": "no-store"},
    )
