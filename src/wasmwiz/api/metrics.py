"""GET /metrics: Prometheus exposition of the app's own registry."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wasmwiz.api.dependencies import ServicesDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Request, execution, cache, queue and usage-log metrics in the Prometheus "
    "text format. Labels are bounded: route templates, statuses, outcomes, tiers, codes.",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(services: ServicesDep) -> Response:
    registry = services.metrics
    stats = services.sandbox.stats()
    registry.in_flight.set(stats.in_flight)
    registry.queued.set(stats.queued)
    registry.cache_hits.set(stats.cache_hits)
    registry.cache_misses.set(stats.cache_misses)
    registry.usage_pending.set(services.recorder.pending)
    registry.usage_lag.set(services.recorder.lag_seconds)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
