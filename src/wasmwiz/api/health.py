"""GET /health: is the database reachable, the temp dir writable, the sandbox ready."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from wasmwiz.api.dependencies import ServicesDep
from wasmwiz.api.schemas import HealthCheck, HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Service health",
    description="200 when every check passes, 503 naming the failing check otherwise.",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A check failed."}},
)
async def health(services: ServicesDep) -> JSONResponse:
    results = await services.health.run_checks()
    body = HealthResponse(
        status="ok" if all(result.ok for result in results) else "unavailable",
        checks=[HealthCheck(name=r.name, ok=r.ok, detail=r.detail) for r in results],
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
