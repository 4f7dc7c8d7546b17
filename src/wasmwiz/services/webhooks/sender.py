"""One delivery attempt: POST the signed body to a checked address, bounded in time and
in what is read back, following no redirect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from wasmwiz import __version__
from wasmwiz.services.webhooks.targets import TargetPolicy, TargetRefused, parse_target

# What is read of a receiver's answer at most: its status is what counts, and a receiver
# that answers gigabytes costs us this much memory and no more.
MAX_RESPONSE_BYTES = 64 * 1024
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    status: int | None
    """The receiver's HTTP status, None when there was no answer."""
    error: str | None
    """Why the attempt failed, None when it succeeded (a 2xx)."""

    @property
    def succeeded(self) -> bool:
        return self.error is None


class WebhookSender:
    def __init__(self, policy: TargetPolicy, *, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout
        # No pooled connection: each attempt connects to the address it checked, and a
        # connection opened for one name is never reused for another on the same address.
        # trust_env=False: no proxy from the environment, which would do its own lookup.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (for its tracing: observability/instrumentation.py)."""
        return self._client

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptOutcome:
        """POST `body` to `url`, checked again now: a refused address is a failed attempt."""
        try:
            target = parse_target(url)
            addresses = await self._policy.addresses(target)
        except TargetRefused as refused:
            return AttemptOutcome(None, str(refused))
        # Connect to the address just checked, never to the name (which could resolve
        # elsewhere by now); the name rides in Host and in TLS's SNI, and the certificate
        # is verified against it.
        request = self._client.build_request(
            "POST",
            target.url.copy_with(host=str(addresses[0])),
            content=body,
            headers={
                **headers,
                "Host": target.url.netloc.decode("ascii"),
                "Content-Type": "application/json",
                "User-Agent": f"WasmWiz-Webhooks/{__version__}",
            },
            extensions={"sni_hostname": target.host} if target.is_https else {},
        )
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request, stream=True)
                try:
                    received = 0
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
                        if received >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            return AttemptOutcome(None, f"No answer within {self._timeout:g} s.")
        except httpx.HTTPError as exc:
            return AttemptOutcome(None, _short(f"{type(exc).__name__}: {exc}"))
        status = response.status_code
        if 200 <= status < 300:
            return AttemptOutcome(status, None)
        if 300 <= status < 400:
            return AttemptOutcome(status, f"HTTP {status}: redirects are not followed.")
        return AttemptOutcome(status, f"HTTP {status}.")


def _short(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"
