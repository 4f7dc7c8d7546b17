"""A Python client for the WasmWiz API, sync and async, on httpx alone.

    from wasmwiz_client import Client

    with Client("http://127.0.0.1:8080", "ww_…") as client:
        result = client.execute(Path("hello.wasm"), input=b"world\\n", args=["-v"])
        print(result.status, result.stdout.decode())

The distribution `wasmwiz-client` (client/ in the WasmWiz repository) needs httpx alone and
imports nothing of the server: `pip install ./client`.
"""

from wasmwiz_client._protocol import API_KEY_ENV, URL_ENV, RetryPolicy
from wasmwiz_client._version import __version__
from wasmwiz_client.aio import AsyncClient
from wasmwiz_client.errors import (
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
from wasmwiz_client.models import ExecutionResult, Outcome, RateLimit
from wasmwiz_client.sync import Client

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
    "__version__",
]
