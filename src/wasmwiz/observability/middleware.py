"""Pure-ASGI middleware: request ids, trace headers, one access-log line and metrics per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wasmwiz.observability.metrics import Metrics
from wasmwiz.observability.tracing import traceresponse

access_log = logging.getLogger("wasmwiz.access")
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_template(scope: Scope) -> str:
    """The matched route's path template, never the raw path (which is unbounded)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                # The request's trace (observability/tracing.py): its server span, for a
                # caller to find the trace by.
                if (trace_header := traceresponse()) is not None:
                    headers["traceresponse"] = trace_header
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.request_duration.labels(route, method).observe(elapsed)
            state = scope.get("state", {})
            access_log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "event": "access",
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "key_id": state.get("key_id"),
                    # After TrustedProxiesMiddleware: the client's, not the proxy's.
                    "client": (scope.get("client") or ("", 0))[0] or None,
                    "scheme": scope.get("scheme"),
                },
            )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            # Only ids that are safe to echo and log are believed; others are replaced.
            if _ACCEPTABLE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex
