"""While the process drains, refuse new work with 503 `shutting_down`; count what runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wasmwiz.errors import ServiceUnavailable
from wasmwiz.http_common.lifecycle import Lifecycle, Phase
from wasmwiz.http_common.problems import error_response
from wasmwiz.problem_codes import ProblemCode

# Probes and scrapes keep working while draining: they are how the platform sees it.
_ALWAYS_SERVED = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})
_RETRY_AFTER = 1


class DrainingMiddleware:
    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _ALWAYS_SERVED:
            await self.app(scope, receive, send)
            return
        if self.lifecycle.phase is Phase.DRAINING:
            refusal = ServiceUnavailable(
                "The server is shutting down; retry, and another instance will answer.",
                code=ProblemCode.SHUTTING_DOWN,
                # Closing the connection sends the client's retry to a live instance.
                headers={"Connection": "close"},
                retry_after=_RETRY_AFTER,
            )
            await error_response(Request(scope), refusal)(scope, receive, send)
            return
        self.lifecycle.request_started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.lifecycle.request_finished()
