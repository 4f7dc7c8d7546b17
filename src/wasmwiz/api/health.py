"""Health endpoints: /health (every check), /health/live (the process), /health/ready."""

from __future__ import annotations

from fastapi import APIRouter, Request

from wasmwiz.api.schemas import HealthCheck, HealthResponse
from wasmwiz.http_common.app_state import app_state
from wasmwiz.http_common.dependencies import HealthDep, LifecycleDep
from wasmwiz.http_common.lifecycle import Phase
from wasmwiz.http_common.problems import JsonResponse
from wasmwiz.services.health import CheckResult

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Service health",
    description="200 when every check passes, 503 naming the failing check otherwise. "
    "The checks run at most once per HEALTH_CACHE_SECONDS (default 5 s); calls in between "
    "get that run's answer.",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A check failed."}},
)
async def health(health: HealthDep) -> JsonResponse:
    return _report(await health.run_checks())


@router.get(
    "/health/live",
    summary="Liveness",
    description="200 while the process can answer at all; it checks nothing else, so a "
    "database outage never gets healthy replicas restarted.",
    response_model=HealthResponse,
)
async def live() -> JsonResponse:
    return _report([])


@router.get(
    "/health/ready",
    summary="Readiness",
    description="200 when this instance should get traffic: started, not draining, and the "
    "database, its schema, the rate limiter (Redis when configured), temp dir and sandbox "
    "all pass. "
    "503 otherwise, naming what failed. The checks are those of `/health`, shared and "
    "reused for HEALTH_CACHE_SECONDS; the sandbox self-test runs on a thread of its own, "
    "so a sandbox busy with guests stays ready.",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Not ready."}},
)
async def ready(request: Request, lifecycle: LifecycleDep) -> JsonResponse:
    """Every check, after the lifecycle: a starting or draining process is not ready."""
    if lifecycle.phase is not Phase.READY:
        return _report([CheckResult("lifecycle", False, lifecycle.phase.value)])
    # Read once ready, not as a dependency: while starting, the state is not built yet.
    checks = await app_state(request).health.run_checks()
    return _report([CheckResult("lifecycle", True), *checks])


def _report(results: list[CheckResult]) -> JsonResponse:
    body = HealthResponse(
        status="ok" if all(result.ok for result in results) else "unavailable",
        checks=[HealthCheck(name=r.name, ok=r.ok, detail=r.detail) for r in results],
    )
    # No caching on the way: the server already reuses a run for a few seconds at most.
    return JsonResponse(
        body.model_dump(),
        status_code=200 if body.status == "ok" else 503,
        headers={"Cache-Control": "no-store"},
    )
