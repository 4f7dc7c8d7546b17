"""A Python client for the WasmWiz API, sync and async, on httpx alone.

    from wasmwiz_client import BatchCase, Client

    with Client("http://127.0.0.1:8080", "ww_…") as client:
        result = client.execute(Path("hello.wasm"), input=b"world\\n", args=["-v"])
        print(result.status, result.stdout.decode())
        # Upload once, then run by id or name, one input at a time or a batch of them:
        client.upload_module(Path("grader.wasm"), name="grader")
        result = client.execute(module="grader", input=b"42\\n")
        batch = client.run_batch([BatchCase(stdin=b"1\\n"), BatchCase(stdin=b"2\\n")],
                                 module="grader")
        # Files in the run's directory, and the ones it writes back:
        result = client.execute(Path("copy.wasm"), files={"in.txt": Path("data.txt")},
                                collect=["out/*"])
        result.write_files("results")  # results/out/in.txt
        # Or queue it, and wait for it (or cancel it) later:
        handle = client.submit(Path("hello.wasm"), input=b"later\n")
        job = handle.wait(timeout=60)  # a Job; job.result is the ExecutionResult

The distribution `wasmwiz-client` (client/ in the WasmWiz repository) needs httpx alone and
imports nothing of the server: `pip install ./client`.
"""

from wasmwiz_client._protocol import API_KEY_ENV, URL_ENV, RetryPolicy
from wasmwiz_client._version import __version__
from wasmwiz_client.aio import AsyncClient, AsyncJobHandle
from wasmwiz_client.errors import (
    AuthenticationError,
    ConflictError,
    ConnectionFailed,
    DailyQuotaExceededError,
    DatabaseUnavailableError,
    FilesTooLargeError,
    InvalidCallbackURLError,
    InvalidCasesError,
    InvalidFilesError,
    InvalidRequestError,
    JobNotCancellableError,
    JobNotFoundError,
    JobQueueFullError,
    JobWaitTimeout,
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
    StorageQuotaExceededError,
    StoredModuleNotFoundError,
    TooManyConcurrentError,
    UnexpectedResponse,
    UnsafePathError,
    WasmWizClientError,
    WebhookNotFoundError,
    WebhookURLRefusedError,
)
from wasmwiz_client.models import (
    BatchCase,
    BatchResult,
    CollectedFile,
    ExecutionResult,
    Job,
    JobError,
    JobPage,
    JobState,
    ModuleExport,
    ModuleImport,
    ModulePage,
    Outcome,
    RateLimit,
    StoredModule,
)
from wasmwiz_client.sync import Client, JobHandle

__all__ = [
    "API_KEY_ENV",
    "URL_ENV",
    "AsyncClient",
    "AsyncJobHandle",
    "AuthenticationError",
    "BatchCase",
    "BatchResult",
    "Client",
    "CollectedFile",
    "ConflictError",
    "ConnectionFailed",
    "DailyQuotaExceededError",
    "DatabaseUnavailableError",
    "ExecutionResult",
    "FilesTooLargeError",
    "InvalidCallbackURLError",
    "InvalidCasesError",
    "InvalidFilesError",
    "InvalidRequestError",
    "Job",
    "JobError",
    "JobHandle",
    "JobNotCancellableError",
    "JobNotFoundError",
    "JobPage",
    "JobQueueFullError",
    "JobState",
    "JobWaitTimeout",
    "LimitExceededError",
    "ModuleExport",
    "ModuleImport",
    "ModulePage",
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
    "StorageQuotaExceededError",
    "StoredModule",
    "StoredModuleNotFoundError",
    "TooManyConcurrentError",
    "UnexpectedResponse",
    "UnsafePathError",
    "WasmWizClientError",
    "WebhookNotFoundError",
    "WebhookURLRefusedError",
    "__version__",
]
