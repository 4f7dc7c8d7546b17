"""Believe X-Forwarded-For/-Proto only from the proxies named in TRUSTED_PROXIES."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxiesMiddleware:
    """Rewrites the scope's client address and scheme from forwarded headers.

    uvicorn's middleware does the parsing (rightmost untrusted X-Forwarded-For hop wins);
    this wrapper exists so the app, not the server's command line, decides whom to
    believe, and so an empty list means "nobody", which is what a direct deployment needs.
    `wasmwiz serve` turns uvicorn's own copy off.
    """

    def __init__(self, app: ASGIApp, networks: Sequence[Network]) -> None:
        self.app = app
        self._proxy: ASGIApp | None = None
        if networks:
            # uvicorn types its middleware with its own (structurally equal) ASGI aliases.
            self._proxy = ProxyHeadersMiddleware(  # type: ignore[assignment]
                app,  # type: ignore[arg-type]
                trusted_hosts=[str(network) for network in networks],
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._proxy is None:
            await self.app(scope, receive, send)
        else:
            await self._proxy(scope, receive, send)
