"""HTTP -> HTTPS redirect for everything but the probes a platform sends over plain HTTP."""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Kubernetes probes and Prometheus scrapes reach the pod directly, without TLS.
_PLAIN_HTTP_PATHS = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})


class HttpsRedirectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("scheme") != "http"
            or scope.get("path") in _PLAIN_HTTP_PATHS
        ):
            await self.app(scope, receive, send)
            return
        # The port is dropped: the redirect is for a TLS-terminating proxy on 443.
        url = URL(scope=scope).replace(scheme="https", port=None)
        # 308 keeps the method and body, so a POST is not silently turned into a GET.
        await RedirectResponse(str(url), status_code=308)(scope, receive, send)
