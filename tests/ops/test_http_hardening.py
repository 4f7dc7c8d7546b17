"""Security headers, the HTTPS redirect and forwarded headers believed only from proxies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.app import WORKERS_AT_START, LiveServer, ServerFactory
from wasmwiz.http_common.security_headers import NON_PAGE_CSP, PAGE_CSP

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def _assert_common_headers(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers[name] == value, name
    assert "camera=()" in response.headers["permissions-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_api_and_html_responses_carry_every_header(live_server: LiveServer) -> None:
    api = httpx.post(f"{live_server.url}/api/v1/execute")  # a problem-details 401
    assert api.headers["content-type"] == "application/problem+json"
    _assert_common_headers(api)
    assert api.headers["content-security-policy"] == NON_PAGE_CSP

    health = httpx.get(f"{live_server.url}/health/live")
    _assert_common_headers(health)

    page = httpx.get(f"{live_server.url}/login")
    assert page.headers["content-type"].startswith("text/html")
    _assert_common_headers(page)
    assert page.headers["content-security-policy"] == PAGE_CSP
    # Plain HTTP from an untrusted peer: HSTS would be meaningless and is left out.
    assert "strict-transport-security" not in page.headers


class _AccessLines(logging.Handler):
    """The access logger's records, taken on that logger itself.

    Not through the root logger (pytest's caplog): what other code does to the root
    logger's handlers while a server thread is logging cannot lose a line here.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def line_for(self, response: httpx.Response) -> logging.LogRecord:
        """The access line of `response`; it is written just after the response is sent."""
        request_id = response.headers["x-request-id"]

        def matches() -> list[logging.LogRecord]:
            return [r for r in self.records if getattr(r, "request_id", None) == request_id]

        with self.arrived:
            self.arrived.wait_for(matches, timeout=10)
            found = matches()
        assert len(found) == 1, f"{len(found)} access lines for {request_id}"
        return found[0]


@pytest.fixture
def access_lines() -> Iterator[_AccessLines]:
    access_logger = logging.getLogger("wasmwiz.access")
    handler = _AccessLines()
    level = access_logger.level
    access_logger.setLevel(logging.INFO)
    access_logger.addHandler(handler)
    try:
        yield handler
    finally:
        access_logger.removeHandler(handler)
        access_logger.setLevel(level)


def test_forwarded_headers_are_believed_from_a_trusted_proxy(
    server_factory: ServerFactory, access_lines: _AccessLines
) -> None:
    server = server_factory(trusted_proxies="127.0.0.0/8")
    response = httpx.get(f"{server.url}/health/live", headers=FORWARDED)
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    access = access_lines.line_for(response)
    assert (access.client, access.scheme) == ("203.0.113.9", "https")  # type: ignore[attr-defined]


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"])
def test_forwarded_headers_are_ignored_from_anyone_else(
    server_factory: ServerFactory, access_lines: _AccessLines, trusted: str
) -> None:
    server = server_factory(trusted_proxies=trusted)
    response = httpx.get(f"{server.url}/health/live", headers=FORWARDED)
    assert "strict-transport-security" not in response.headers
    access = access_lines.line_for(response)
    assert (access.client, access.scheme) == ("127.0.0.1", "http")  # type: ignore[attr-defined]


def test_http_is_redirected_to_https_except_for_probes(server_factory: ServerFactory) -> None:
    server = server_factory(https_redirect=True, trusted_proxies="127.0.0.1", **WORKERS_AT_START)
    redirected = httpx.post(f"{server.url}/api/v1/execute?encoding=base64", content=b"x")
    assert redirected.status_code == 308  # keeps the method and the body
    host = server.url.removeprefix("http://").split(":")[0]
    assert redirected.headers["location"] == f"https://{host}/api/v1/execute?encoding=base64"
    _assert_common_headers(redirected)
    for probe in ("/health/live", "/health/ready", "/metrics"):
        assert httpx.get(f"{server.url}{probe}").status_code == 200, probe
    # Behind a trusted TLS-terminating proxy the request already was HTTPS: no loop.
    proxied = httpx.post(f"{server.url}/api/v1/execute", headers=FORWARDED)
    assert proxied.status_code == 401


def test_redirect_is_not_fooled_by_an_untrusted_forwarded_proto(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(https_redirect=True)
    response = httpx.get(f"{server.url}/login", headers=FORWARDED)
    assert response.status_code == 308
