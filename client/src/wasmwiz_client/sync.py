"""The blocking client: `Client(base_url, api_key).execute(wasm, input=…)`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from wasmwiz_client._protocol import (
    DEFAULT_TIMEOUT,
    EXECUTE_PATH,
    InputSource,
    RetryPolicy,
    WasmSource,
    client_headers,
    error_for,
    execute_request,
    normalize_base_url,
    read_execution,
    read_health,
    resolve_retry,
    settings_from_env,
)
from wasmwiz_client.errors import ConnectionFailed
from wasmwiz_client.models import ExecutionResult


class Client:
    """A WasmWiz API client over one pooled httpx connection.

    `retry` is off by default: pass `True` (or a `RetryPolicy`) to wait out 429 and 503
    refusals as `Retry-After` says. `transport` and `sleep` are seams for tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        retry: RetryPolicy | bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._retry = resolve_retry(retry)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=normalize_base_url(base_url),
            headers=client_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(
        cls, base_url: str | None = None, api_key: str | None = None, **options: Any
    ) -> Client:
        """A client for `WASMWIZ_URL` with `WASMWIZ_API_KEY`, unless given explicitly."""
        url, key = settings_from_env(base_url, api_key)
        return cls(url, key, **options)

    def execute(
        self,
        wasm: WasmSource,
        *,
        input: InputSource = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        filename: str | None = None,
        deterministic: bool | None = None,
        seed: int | None = None,
        max_fuel: int | None = None,
    ) -> ExecutionResult:
        """Run a module: `wasm` is its bytes (binary or WAT text) or a path to its file.

        `deterministic` runs it on virtual clocks with `random_get` seeded by `seed`, so
        the same request prints the same bytes; `max_fuel` caps the work it may do.
        Returns the result whatever the program did (check `.status`); raises a
        `ProblemError` subclass when the service refuses the request.
        """
        request = execute_request(
            wasm,
            input=input,
            args=args,
            env=env,
            filename=filename,
            deterministic=deterministic,
            seed=seed,
            max_fuel=max_fuel,
        )
        attempt = 0
        while True:
            response = self._send("POST", EXECUTE_PATH, **request)
            if response.status_code == 200 or self._retry is None:
                return read_execution(response)
            error = error_for(response)
            delay = self._retry.delay(error, attempt)
            if delay is None:
                raise error
            self._sleep(delay)
            attempt += 1

    def health(self) -> dict[str, Any]:
        """The service's health checks; a 503 (a check failing) is returned, not raised."""
        return read_health(self._send("GET", "/health"))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"Could not reach {self._http.base_url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
