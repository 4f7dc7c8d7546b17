"""A Python client for the WasmWiz API, sync and async, on httpx alone.

    from wasmwiz.client import Client

    with Client("http://127.0.0.1:8080", "ww_…") as client:
        result = client.execute(Path("hello.wasm"), input=b"world\\n", args=["-v"])
        print(result.status, result.stdout.decode())

This package imports nothing of the server, so it works wherever httpx is installed.
"""

from wasmwiz.client._protocol import API_KEY_ENV, URL_ENV, RetryPolicy
from wasmwiz.client.aio import AsyncClient
from wasmwiz.client.errors import (
    AuthenticationError,
    ConnectionFailed,
    DailyQuotaExceededError,
    DatabaseUnavailableError,
    InvalidRequestError,
    LimitExceededError,
    ModuleRejectedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProblemError,
    RateLimitedError,
    RateLimiterUnavailableError,
    ServerBusyError,
    ServiceUnavailableError,
    TooManyConcurrentError,
    UnexpectedResponse,
    WasmWizClientError,
)
from wasmwiz.client.models import ExecutionResult, Outcome, RateLimit
from wasmwiz.client.sync import Client

__all__ = [
    "API_KEY_ENV",
    "URL_ENV",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConnectionFailed",
    "DailyQuotaExceededError",
    "DatabaseUnavailableError",
    "ExecutionResult",
    "InvalidRequestError",
    "LimitExceededError",
    "ModuleRejectedError",
    "NotFoundError",
    "Outcome",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProblemError",
    "RateLimit",
    "RateLimitedError",
    "RateLimiterUnavailableError",
    "RetryPolicy",
    "ServerBusyError",
    "ServiceUnavailableError",
    "TooManyConcurrentError",
    "UnexpectedResponse",
    "WasmWizClientError",
]
