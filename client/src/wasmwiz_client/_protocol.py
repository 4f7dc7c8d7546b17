"""What the sync and async clients share: building the request, reading the reply, retrying."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wasmwiz_client._version import __version__
from wasmwiz_client.errors import (
    ProblemError,
    UnexpectedResponse,
    WasmWizClientError,
    problem_class,
)
from wasmwiz_client.models import ExecutionResult

EXECUTE_PATH = "/api/v1/execute"
DEFAULT_TIMEOUT = 60.0
URL_ENV = "WASMWIZ_URL"
API_KEY_ENV = "WASMWIZ_API_KEY"

WasmSource = bytes | str | os.PathLike[str]
InputSource = bytes | str | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a refused request again.

    Only refusals that say "try again later" are retried. A `Retry-After` on 429 is exact
    (retrying then succeeds unless the same key spends the budget meanwhile), so it is
    waited as given; a 503 gets at least exponential backoff. A wait longer than
    `max_wait` (a spent daily quota waits until midnight) is not slept: the error is raised.
    Connection failures are never retried: the run may already have happened.
    """

    max_retries: int = 3
    max_wait: float = 60.0
    backoff: float = 1.0
    jitter: float = 0.1
    codes: frozenset[str] = field(
        default=frozenset(
            {"rate_limited", "too_many_concurrent", "server_busy", "rate_limiter_unavailable"}
        )
    )

    def delay(
        self, error: WasmWizClientError, attempt: int, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        if (
            not isinstance(error, ProblemError)
            or attempt >= self.max_retries
            or error.code not in self.codes
        ):
            return None
        exponential = self.backoff * 2.0**attempt
        if error.retry_after is None:
            wait = exponential
        elif error.status == 429:
            wait = error.retry_after
        else:
            wait = max(error.retry_after, exponential)
        if wait > self.max_wait:
            return None
        # Jitter only lengthens the wait: Retry-After is the earliest moment that works, and
        # clients sharing a key should not all come back at the same instant.
        return wait * (1 + self.jitter * rand())


def resolve_retry(retry: RetryPolicy | bool) -> RetryPolicy | None:
    if retry is True:
        return RetryPolicy()
    return retry or None


def client_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": f"wasmwiz-client/{__version__}", "Accept": "application/json"}
    if api_key:
        check_api_key(api_key)
        headers["Authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


def check_api_key(api_key: str) -> None:
    """Refuse a key that cannot go in a header, saying why without ever showing it."""
    for position, char in enumerate(api_key, start=1):
        if not char.isascii() or not char.isprintable() or char.isspace():
            what = "a line break" if char in "\r\n" else f"the character {char!a}"
            raise WasmWizClientError(
                f"The API key has {what} at position {position} of {len(api_key)}: "
                "copy it again without it (the key is not shown here)."
            )


def normalize_base_url(url: str) -> str:
    """The service's root: a URL copied with the API's prefix (`…/api/v1`) works too."""
    url = url.strip().rstrip("/")
    return url.removesuffix("/api/v1").rstrip("/")


def settings_from_env(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    url = base_url or os.environ.get(URL_ENV)
    if not url:
        raise WasmWizClientError(
            f"No service URL: set {URL_ENV}, e.g. export {URL_ENV}=http://127.0.0.1:8080"
        )
    return url, api_key or os.environ.get(API_KEY_ENV)


def execute_request(
    wasm: WasmSource,
    *,
    input: InputSource,
    args: Sequence[str] | None,
    env: Mapping[str, str] | None,
    filename: str | None,
    deterministic: bool | None = None,
    seed: int | None = None,
    max_fuel: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for httpx: the multipart form and `?encoding=base64`.

    Base64 output keeps stdout and stderr byte-exact, whatever the program wrote.
    """
    if isinstance(wasm, bytes):
        module, name = wasm, filename or "main.wasm"
    else:
        path = Path(wasm)
        module, name = path.read_bytes(), filename or path.name
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        ("wasm", (name, module, "application/octet-stream"))
    ]
    if input is not None:
        stdin = input.encode("utf-8") if isinstance(input, str) else input
        files.append(("input", ("input", stdin, "application/octet-stream")))
    data: dict[str, str] = {}
    if args is not None:
        if isinstance(args, str):
            raise TypeError("args must be a sequence of strings, not a string")
        data["args"] = json.dumps(list(args))
    if env is not None:
        data["env"] = json.dumps(dict(env))
    if deterministic is not None:
        data["deterministic"] = "true" if deterministic else "false"
    if seed is not None:
        data["seed"] = str(seed)
    if max_fuel is not None:
        data["max_fuel"] = str(max_fuel)
    return {"files": files, "data": data, "params": {"encoding": "base64"}}


def read_execution(response: httpx.Response) -> ExecutionResult:
    if response.status_code == 200:
        try:
            return ExecutionResult.from_response(response.json(), response.headers)
        except (ValueError, KeyError, TypeError) as exc:
            raise UnexpectedResponse(
                f"A 200 response that is not an execution result: {exc}", response
            ) from None
    raise error_for(response)


def read_health(response: httpx.Response) -> dict[str, Any]:
    """The health checks' body; a 503 (a check failing) is a value, not an error."""
    if response.status_code not in (200, 503) or "json" not in response.headers.get(
        "content-type", ""
    ):
        raise error_for(response)
    body: dict[str, Any] = response.json()
    return body


def error_for(response: httpx.Response) -> WasmWizClientError:
    """The exception for a refusal: a ProblemError subclass when the body is problem details."""
    content_type = response.headers.get("content-type", "")
    if "json" in content_type:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return problem_class(response.status_code, body["code"])(body, response)
    return UnexpectedResponse(
        f"HTTP {response.status_code} from {response.request.url} "
        f"({content_type or 'no content type'}), not a WasmWiz response",
        response,
    )
