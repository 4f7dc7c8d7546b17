"""Profile one request on demand: `X-Profile` with an administrator's API key (docs/operations.md).

Installed only when PROFILING_ENABLED (on by default in development alone): otherwise
the header means nothing and costs nothing. With it, a request whose key belongs to an
administrator and holds the `admin` scope runs under pyinstrument, and the answer is
the profile in place of the route's own answer (whose status is in `X-Profiled-Status`).
Anyone else's header is ignored: the request is answered as if it were not there.

What keeps it safe to leave on a server:
- Only an administrator's key turns it on. The key is checked as every route checks it,
  through the key cache, before anything runs; a key that fails is left to the route.
- One profile at a time, process-wide: a second one while one runs is answered unprofiled,
  with `X-Profile-Skipped: busy`. The profiler's samples live as long as the request.
- pyinstrument's async mode records this request's task only: while it awaits, other
  requests' code running on the loop shows as `[await]`, never as their frames. A profile
  holds function names, files and timings, no values.
- The report is bounded (MAX_REPORT_BYTES): a larger one is sent as text, cut short.
- The route's own body is read and dropped, never held.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pyinstrument import Profiler
from pyinstrument.renderers import SpeedscopeRenderer
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wasmwiz.errors import WasmWizError
from wasmwiz.http_common.app_state import app_state
from wasmwiz.services.principals import Scope as KeyScope

logger = logging.getLogger("wasmwiz.profiling")

PROFILE_HEADER = "x-profile"
MAX_REPORT_BYTES = 4 * 1024 * 1024
# pyinstrument's default: a sample a millisecond.
SAMPLE_INTERVAL = 0.001


@dataclass(frozen=True, slots=True)
class ReportFormat:
    media_type: str
    filename: str | None  # sent as an attachment under this name; None: shown inline


FORMATS = {
    "html": ReportFormat("text/html; charset=utf-8", "profile.html"),
    "text": ReportFormat("text/plain; charset=utf-8", None),
    "speedscope": ReportFormat("application/json", "profile.speedscope.json"),
}
# `X-Profile: 1` (or true, yes): the HTML report.
_DEFAULT_NAMES = {"1", "true", "yes", "on"}


def requested_format(value: str | None) -> str | None:
    """The report asked for by an `X-Profile` value, or None for no (or an unknown) one."""
    if value is None:
        return None
    name = value.strip().lower()
    if name in _DEFAULT_NAMES:
        return "html"
    return name if name in FORMATS else None


class ProfilingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._running = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        report = requested_format(headers.get(PROFILE_HEADER))
        if report is None or not await _is_administrator(scope, headers.get("authorization")):
            await self.app(scope, receive, send)
            return
        if self._running.locked():
            await self.app(scope, receive, _with_header(send, b"x-profile-skipped", b"busy"))
            return
        async with self._running:
            await self._profile(scope, receive, send, report)

    async def _profile(self, scope: Scope, receive: Receive, send: Send, report: str) -> None:
        status = 500
        response_started = False

        async def drop_body(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True

        profiler = Profiler(interval=SAMPLE_INTERVAL, async_mode="enabled")
        profiler.start()
        try:
            await self.app(scope, receive, drop_body)
        finally:
            profiler.stop()
        if not response_started:
            status = 500
        body, chosen = _render(profiler, report)
        logger.info(
            "profiled %s %s (%d): %d bytes of %s",
            scope["method"],
            scope["path"],
            status,
            len(body),
            chosen,
            extra={"event": "profile", "status": status, "report": chosen},
        )
        form = FORMATS[chosen]
        response_headers = [
            (b"content-type", form.media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-profiled-status", str(status).encode()),
        ]
        if form.filename is not None:
            disposition = f'attachment; filename="{form.filename}"'
            response_headers.append((b"content-disposition", disposition.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


def _render(profiler: Profiler, report: str) -> tuple[bytes, str]:
    """The report in the format asked for, or as text cut to MAX_REPORT_BYTES if larger."""
    if report == "html":
        body = profiler.output_html().encode()
    elif report == "speedscope":
        body = profiler.output(renderer=SpeedscopeRenderer()).encode()
    else:
        body = profiler.output_text(unicode=True).encode()
    if len(body) <= MAX_REPORT_BYTES:
        return body, report
    text = profiler.output_text(unicode=True).encode()
    if len(text) > MAX_REPORT_BYTES:
        note = b"\n[cut short: the report is larger than the limit]\n"
        text = text[: MAX_REPORT_BYTES - len(note)] + note
    return text, "text"


async def _is_administrator(scope: Scope, authorization: str | None) -> bool:
    """Whether the request's API key is an administrator's with the `admin` scope; any
    refusal is the route's to give, so it counts as no."""
    if not authorization:
        return False
    state = app_state(HTTPConnection(scope))
    try:
        principal = await state.api_keys.authenticate(state.database, authorization)
    except WasmWizError:
        return False
    return principal.is_admin and KeyScope.ADMIN in principal.scopes


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    async def send_with_header(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value)]}
        await send(message)

    return send_with_header
