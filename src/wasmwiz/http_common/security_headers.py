"""Security headers on every response: CSP, HSTS over HTTPS, framing, sniffing, referrer."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# HTML pages load only our own scripts, styles and images: no inline script, no CDN.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
# Swagger UI and ReDoc write inline styles of their own (ReDoc through styled-components),
# so these two pages alone may use inline styles; scripts stay 'self' only.
API_DOCS_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
API_DOCS_PATHS = frozenset({"/docs", "/redoc"})
# Anything that is not a page (JSON, problem details, metrics) may load nothing at all.
NON_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Adds the headers unless the route set its own (a page may need a stricter CSP)."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int) -> None:
        self.app = app
        self._hsts = f"max-age={hsts_max_age}; includeSubDomains" if hsts_max_age else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _COMMON.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", _csp(scope, headers))
                # HSTS is only meaningful (and only honoured) over HTTPS; the scheme is
                # the client's, as corrected from X-Forwarded-Proto by a trusted proxy.
                if self._hsts and scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", self._hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _csp(scope: Scope, headers: MutableHeaders) -> str:
    if not headers.get("content-type", "").startswith("text/html"):
        return NON_PAGE_CSP
    return API_DOCS_CSP if scope.get("path") in API_DOCS_PATHS else PAGE_CSP
