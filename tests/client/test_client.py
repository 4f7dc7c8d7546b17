"""The sync client against a real server: results, every outcome, refusals, retries."""

from __future__ import annotations

import os
import socket
import uuid

import httpx
import pytest

from tests.api import wat
from tests.client.conftest import new_account
from tests.client.programs import echo_then_exit
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz.ratelimit import ManualClock
from wasmwiz_client import (
    AuthenticationError,
    Client,
    ConnectionFailed,
    DailyQuotaExceededError,
    ExecutionResult,
    InvalidCasesError,
    InvalidRequestError,
    LimitExceededError,
    ModuleRejectedError,
    Outcome,
    PayloadTooLargeError,
    ProblemError,
    RateLimitedError,
    RetryPolicy,
    ServerBusyError,
    StorageQuotaExceededError,
    StoredModuleNotFoundError,
    UnexpectedResponse,
)


def test_hello_world(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        result = client.execute(wat.HELLO.encode(), filename="hello.wat")
    assert isinstance(result, ExecutionResult)
    assert result.status is Outcome.SUCCESS
    assert result.ok
    assert result.finished
    assert result.stdout == b"Hello, WasmWiz!\n"
    assert result.text == "Hello, WasmWiz!\n"
    assert result.stderr == b""
    assert result.exit_code == 0
    assert result.error is None
    assert isinstance(result.execution_id, uuid.UUID)
    assert result.fuel_consumed is None  # no fuel budget: not metered
    assert result.memory_peak_bytes == 65536
    assert result.request_id
    assert result.rate_limit is not None
    assert result.rate_limit.limit == 500
    assert result.rate_limit.remaining == 499
    assert result.rate_limit.daily_limit == 50_000


def test_stdin_stdout_and_stderr_are_byte_exact(server: LiveServer, api_key: str) -> None:
    payload = os.urandom(200_000) + b"\xff\xfe\x00"
    with Client(server.url, api_key) as client:
        result = client.execute(
            echo_then_exit(7, b"warn\xff\n").encode(), input=payload, filename="echo.wat"
        )
    assert result.status is Outcome.EXIT_NONZERO
    assert not result.ok
    assert result.finished
    assert result.exit_code == 7
    assert result.stdout == payload
    assert result.stderr == b"warn\xff\n"


def test_module_from_a_path_with_args_env_and_text_input(
    server: LiveServer, api_key: str, tmp_path: os.PathLike[str]
) -> None:
    module = os.path.join(tmp_path, "show-args.wat")
    with open(module, "w") as file:
        file.write(wat.ARGS_AND_ENV)
    with Client(server.url, api_key) as client:
        result = client.execute(
            module, input="ignored", args=["-n", "3", "two words"], env={"LANG": "C"}
        )
    assert result.text == "show-args.wat\n-n\n3\ntwo words\n-\nLANG=C\n"


def test_a_string_is_not_taken_for_args(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client, pytest.raises(TypeError):
        client.execute(wat.HELLO.encode(), args="-n 3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("module", "status"),
    [
        (wat.EXIT_3, Outcome.EXIT_NONZERO),
        (wat.UNREACHABLE, Outcome.TRAP),
        (wat.INFINITE_LOOP, Outcome.TIMEOUT),
        (wat.RECURSION, Outcome.STACK_OVERFLOW),
        (wat.MEMORY_BOMB, Outcome.MEMORY_LIMIT),
        (wat.FLOOD, Outcome.OUTPUT_LIMIT),
    ],
)
def test_every_outcome_is_a_result_not_an_exception(
    server_factory: ServerFactory, api_key: str, module: str, status: Outcome
) -> None:
    # 257 pages: the bomb, growing 16 pages at a time from 1, reaches exactly the limit.
    server = server_factory(memory_limit=257 * 65536, max_output_size=4096)
    with Client(server.url, api_key) as client:
        result = client.execute(module.encode())
    assert result.status is status
    assert not result.ok
    assert result.finished is (status is Outcome.EXIT_NONZERO)
    if status is Outcome.EXIT_NONZERO:
        assert result.exit_code == 3
    else:
        assert result.error
    if status is Outcome.OUTPUT_LIMIT:
        assert result.stdout_truncated
        assert len(result.stdout) == 4096


def test_fuel_exhausted_and_deterministic_runs(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        starved = client.execute(wat.INFINITE_LOOP.encode(), max_fuel=10_000)
        first = client.execute(wat.HELLO.encode(), deterministic=True, seed=7)
        second = client.execute(wat.HELLO.encode(), deterministic=True, seed=7)
        ran_again = client.execute(wat.HELLO.encode(), deterministic=True, seed=7, cache=False)
    assert starved.status is Outcome.FUEL_EXHAUSTED
    assert starved.error
    assert first.stdout == second.stdout == ran_again.stdout == b"Hello, WasmWiz!\n"
    # The second is the first's result from the service's result cache; cache=False runs.
    assert (first.cached, second.cached, ran_again.cached) == (False, True, False)
    assert second.duration_ms == first.duration_ms


def test_a_wrong_key_raises_authentication_error(server: LiveServer) -> None:
    with Client(server.url, "ww_" + "x" * 40) as client, pytest.raises(AuthenticationError) as info:
        client.execute(wat.HELLO.encode())
    error = info.value
    assert isinstance(error, ProblemError)
    assert error.status == 401
    assert error.code == "unauthorized"
    assert error.request_id
    assert error.request_id == error.response.headers["x-request-id"]
    assert error.detail
    assert str(error).startswith("unauthorized: ")


def test_no_key_raises_authentication_error(server: LiveServer) -> None:
    with Client(server.url) as client, pytest.raises(AuthenticationError):
        client.execute(wat.HELLO.encode())


@pytest.mark.parametrize(
    ("module", "code"),
    [
        (b"(module (func", "invalid_wat"),  # text that starts like WAT but is not
        (wat.UNKNOWN_IMPORT.encode(), "unsupported_import"),
        (wat.COMPONENT_HEADER, "component_not_supported"),
    ],
)
def test_a_rejected_module_raises_module_rejected(
    server: LiveServer, api_key: str, module: bytes, code: str
) -> None:
    with Client(server.url, api_key) as client, pytest.raises(ModuleRejectedError) as info:
        client.execute(module)
    assert (info.value.status, info.value.code) == (422, code)


def test_bad_env_raises_invalid_request(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client, pytest.raises(InvalidRequestError) as info:
        client.execute(wat.HELLO.encode(), env={"A=B": "c"})
    assert (info.value.status, info.value.code) == (400, "invalid_env")


def test_an_oversized_module_raises_payload_too_large(
    server_factory: ServerFactory, api_key: str
) -> None:
    server = server_factory(max_wasm_size=1024)
    with Client(server.url, api_key) as client, pytest.raises(PayloadTooLargeError) as info:
        client.execute(b"\0asm\x01\0\0\0" + bytes(4096))
    assert (info.value.status, info.value.code) == (413, "wasm_too_large")


def spend_free_burst(client: Client) -> None:
    for _ in range(10):
        assert client.execute(wat.HELLO.encode()).ok


def frozen_server(server_factory: ServerFactory) -> LiveServer:
    """A server whose rate limiter's clock stands still: no token refills mid-test, however
    slowly the machine runs the burst."""
    return server_factory(app_options={"clock": ManualClock()})


def test_429_without_retry_raises_at_once(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = frozen_server(server_factory)
    free_key = new_account(migrated_database_url, tier="free").api_key
    slept: list[float] = []
    with Client(server.url, free_key, sleep=slept.append) as client:
        spend_free_burst(client)
        with pytest.raises(RateLimitedError) as info:
            client.execute(wat.HELLO.encode())
    error = info.value
    assert isinstance(error, LimitExceededError)
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.retry_after == 6
    assert slept == []


def test_429_with_retry_waits_retry_after_then_succeeds(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    clock = ManualClock()
    server = server_factory(app_options={"clock": clock})
    free_key = new_account(migrated_database_url, tier="free").api_key
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        # The server's rate limiter reads this clock: "sleeping" moves its time forward.
        slept.append(seconds)
        clock.advance(seconds)

    with Client(server.url, free_key, retry=True, sleep=sleep) as client:
        spend_free_burst(client)
        result = client.execute(wat.HELLO.encode())
    assert result.ok
    assert len(slept) == 1
    assert 6 <= slept[0] <= 6 * 1.1
    assert result.rate_limit is not None
    assert result.rate_limit.remaining == 0


def test_retry_gives_up_after_max_retries(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = frozen_server(server_factory)
    free_key = new_account(migrated_database_url, tier="free").api_key
    slept: list[float] = []
    policy = RetryPolicy(max_retries=2)
    # Our sleep does not move the server's clock: every retry is refused.
    with Client(server.url, free_key, retry=policy, sleep=slept.append) as client:
        spend_free_burst(client)
        with pytest.raises(RateLimitedError):
            client.execute(wat.HELLO.encode())
    assert len(slept) == 2


def test_retry_does_not_wait_past_max_wait(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = frozen_server(server_factory)
    free_key = new_account(migrated_database_url, tier="free").api_key
    slept: list[float] = []
    with Client(server.url, free_key, retry=RetryPolicy(max_wait=5), sleep=slept.append) as client:
        spend_free_burst(client)
        with pytest.raises(RateLimitedError):
            client.execute(wat.HELLO.encode())
    assert slept == []


def test_a_closed_port_raises_connection_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", "ww_x") as client, pytest.raises(ConnectionFailed):
        client.execute(wat.HELLO.encode())


def test_a_non_problem_error_page_raises_unexpected_response() -> None:
    # A proxy in front of the service answering with its own HTML page.
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            502, text="<h1>Bad Gateway</h1>", headers={"content-type": "text/html"}
        )

    transport = httpx.MockTransport(proxy)
    with (
        Client("http://proxy.invalid", "ww_x", transport=transport) as client,
        pytest.raises(UnexpectedResponse) as info,
    ):
        client.execute(wat.HELLO.encode())
    assert info.value.status == 502


def test_health(server: LiveServer) -> None:
    with Client(server.url) as client:
        body = client.health()
    assert body["status"] == "ok"


def test_from_env_reads_url_and_key(
    server: LiveServer, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASMWIZ_URL", server.url)
    monkeypatch.setenv("WASMWIZ_API_KEY", api_key)
    with Client.from_env() as client:
        assert client.execute(wat.HELLO.encode()).ok


def _problem(status: int, code: str, retry_after: str | None) -> ProblemError:
    headers = {"content-type": "application/problem+json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    response = httpx.Response(
        status,
        json={"status": status, "code": code, "detail": "d"},
        headers=headers,
        request=httpx.Request("POST", "http://x/api/v1/execute"),
    )
    from wasmwiz_client._protocol import error_for

    error = error_for(response)
    assert isinstance(error, ProblemError)
    return error


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "attempt", "expected"),
    [
        (429, "rate_limited", "6", 0, 6.0),  # exact, as the service promises
        (429, "rate_limited", "6", 2, 6.0),
        (429, "too_many_concurrent", "1", 0, 1.0),
        (429, "api_rate_limited", "2", 0, 2.0),
        (503, "server_busy", "1", 0, 1.0),
        (503, "server_busy", "1", 3 - 1, 4.0),  # at least exponential backoff on 503
        (503, "rate_limiter_unavailable", None, 1, 2.0),
        (429, "rate_limited", "6", 3, None),  # out of retries
        (429, "daily_quota_exceeded", "3600", 0, None),  # never retried by default
        (429, "rate_limited", "61", 0, None),  # longer than max_wait
        (400, "invalid_args", None, 0, None),
    ],
)
def test_retry_policy_delays(
    status: int, code: str, retry_after: str | None, attempt: int, expected: float | None
) -> None:
    policy = RetryPolicy()
    error = _problem(status, code, retry_after)
    assert policy.delay(error, attempt, rand=lambda: 0.0) == expected
    if expected is not None:
        assert policy.delay(error, attempt, rand=lambda: 1.0) == pytest.approx(expected * 1.1)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (429, "daily_quota_exceeded", DailyQuotaExceededError),
        (429, "api_rate_limited", LimitExceededError),
        (503, "server_busy", ServerBusyError),
        (422, "invalid_request", InvalidRequestError),
        (404, "module_not_found", StoredModuleNotFoundError),
        (403, "storage_quota_exceeded", StorageQuotaExceededError),
        (400, "invalid_cases", InvalidCasesError),
        (400, "wasm_and_module", InvalidRequestError),
        (418, "teapot", ProblemError),
    ],
)
def test_problem_classes(status: int, code: str, cls: type[ProblemError]) -> None:
    assert type(_problem(status, code, None)) is cls


def _refusal(status: int, problem: dict[str, object]) -> ProblemError:
    from wasmwiz_client._protocol import error_for

    response = httpx.Response(
        status,
        json={"status": status, **problem},
        headers={"content-type": "application/problem+json"},
        request=httpx.Request("POST", "http://x/api/v1/execute/batch"),
    )
    error = error_for(response)
    assert isinstance(error, ProblemError)
    return error


def test_a_batch_refusal_says_which_case_and_how_many_fit() -> None:
    bad = _refusal(400, {"code": "invalid_cases", "detail": "d", "case": 3})
    assert isinstance(bad, InvalidCasesError)
    assert bad.case == 3
    whole = _refusal(400, {"code": "invalid_cases", "detail": "more than 100 cases"})
    assert isinstance(whole, InvalidCasesError)
    assert whole.case is None
    for code in ("rate_limited", "daily_quota_exceeded", "too_many_concurrent"):
        limited = _refusal(429, {"code": code, "fits": 4})
        assert isinstance(limited, LimitExceededError)
        assert limited.fits == 4
    assert isinstance(plain := _refusal(429, {"code": "rate_limited"}), LimitExceededError)
    assert plain.fits is None
    # Not a count: whatever else a server sends there is no answer.
    for odd in (True, -1, "4", 2.5):
        limited = _refusal(429, {"code": "rate_limited", "fits": odd})
        assert isinstance(limited, LimitExceededError)
        assert limited.fits is None
