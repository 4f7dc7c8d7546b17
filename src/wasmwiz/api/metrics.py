"""GET /metrics: Prometheus exposition of the app's own registry, optionally behind a token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wasmwiz.api.openapi import problem_responses
from wasmwiz.errors import AuthenticationRequired, NotFound
from wasmwiz.http_common.dependencies import MetricsDep, SettingsDep
from wasmwiz.problem_codes import ProblemCode

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Request, execution, cache, queue, database-pool and usage-log metrics in the "
    "Prometheus text format. Labels are bounded: route templates, statuses, outcomes, tiers, "
    "codes. With METRICS_TOKEN set it needs `Authorization: Bearer <token>`; with METRICS_PORT "
    "set it is served only on that port.",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in the Prometheus text exposition format.",
            "content": {
                CONTENT_TYPE_LATEST: {
                    "schema": {"type": "string"},
                    "example": "# HELP wasmwiz_executions_total Executions by outcome and tier.\n"
                    "# TYPE wasmwiz_executions_total counter\n"
                    'wasmwiz_executions_total{outcome="success",tier="free"} 42.0\n',
                }
            },
        },
        **problem_responses(
            ProblemCode.UNAUTHORIZED,
            ProblemCode.NOT_FOUND,
            instance="/metrics",
            details={
                ProblemCode.UNAUTHORIZED: "A valid metrics token is required.",
                ProblemCode.NOT_FOUND: "Metrics are served on their own port.",
            },
        ),
    },
)
async def metrics(request: Request, settings: SettingsDep, metrics: MetricsDep) -> Response:
    if settings.metrics_port is not None:
        raise NotFound("Metrics are served on their own port.")
    if settings.metrics_token:
        supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        # Constant-time comparison: the token must not leak through response timing.
        if not hmac.compare_digest(supplied.encode(), settings.metrics_token.encode()):
            raise AuthenticationRequired("A valid metrics token is required.")
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
