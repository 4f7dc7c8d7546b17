"""The webhook receiver example, run for real: deliveries signed as Standard Webhooks signs
them reach it over HTTP; it prints the ones that verify and refuses the rest. And the
example that submits a job and waits for it, against a live server (it skips, saying
"jobs API not on this branch", on a server without the jobs API).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.examples.conftest import EXAMPLES, ROOT
from tests.examples.test_examples import ECHO, STDIN, new_key, run_example
from tests.fixtures.app import LiveServer

RECEIVER = EXAMPLES / "python" / "webhook_receiver.py"
SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 random bytes").decode()
JOB_ID = "0b5a3c1e-8f7d-4c2b-9a61-3e2f1d0c9b8a"
FINISHED = {
    "type": "job.finished",
    "timestamp": "2025-01-02T03:04:07Z",
    "data": {
        "id": JOB_ID,
        "state": "finished",
        "result": {"status": "exit_nonzero", "exit_code": 3, "output": "hi\n"},
        "error": None,
    },
}


class Receiver:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def deliver(
        self,
        event: dict[str, object],
        message_id: str,
        *,
        secret: str = SECRET,
        at: datetime | None = None,
        tamper: bytes = b"",
    ) -> httpx.Response:
        body = json.dumps(event).encode()
        timestamp = at or datetime.now(UTC)
        signature = Webhook(secret).sign(message_id, timestamp, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
        }
        return httpx.post(self.url, content=body + tamper, headers=headers, timeout=30)

    def output(self) -> tuple[str, str]:
        """Stop it; what it printed on stdout (after its first line) and stderr."""
        self.process.terminate()
        stdout, stderr = self.process.communicate(timeout=30)
        return stdout, stderr


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    env = {**os.environ, "WASMWIZ_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:"), first
        yield Receiver(process, first.removeprefix("listening on ").strip())
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def test_a_signed_delivery_is_printed_once(receiver: Receiver) -> None:
    first = receiver.deliver(FINISHED, "msg_1")
    again = receiver.deliver(FINISHED, "msg_1")  # a retry of the same delivery
    warning = receiver.deliver(
        {"type": "quota.warning", "timestamp": "2025-01-02T03:04:07Z", "data": {"used": 0.9}},
        "msg_2",
    )
    failed = {
        **FINISHED,
        "type": "job.failed",
        "data": {
            "id": JOB_ID,
            "state": "failed",
            "result": None,
            "error": {"code": "internal_error", "detail": "worker lost"},
        },
    }
    assert receiver.deliver(failed, "msg_3").status_code == 204
    assert (first.status_code, again.status_code, warning.status_code) == (204, 204, 204)
    stdout, stderr = receiver.output()
    assert stdout.splitlines() == [
        f"job.finished (msg_1): job {JOB_ID} finished, status: exit_nonzero, exit code: 3",
        'quota.warning (msg_2): {"used": 0.9}',
        f"job.failed (msg_3): job {JOB_ID} failed, error: internal_error: worker lost",
    ]
    assert stderr == ""


@pytest.mark.parametrize(
    ("how", "delivery"),
    [
        ("another secret", {"secret": "whsec_" + base64.b64encode(b"x" * 32).decode()}),
        ("a changed body", {"tamper": b" "}),
        ("an old timestamp", {"at": datetime.now(UTC) - timedelta(minutes=10)}),
    ],
)
def test_a_delivery_that_does_not_verify_is_refused(
    receiver: Receiver, how: str, delivery: dict[str, object]
) -> None:
    response = receiver.deliver(FINISHED, "msg_bad", **delivery)
    unsigned = httpx.post(receiver.url, json=FINISHED, timeout=30)
    assert response.status_code == 400, how
    assert unsigned.status_code == 400
    stdout, stderr = receiver.output()
    assert stdout == ""
    assert stderr.count("refused a delivery: ") == 2


def test_the_receiver_needs_its_secret() -> None:
    env = {key: value for key, value in os.environ.items() if key != "WASMWIZ_WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, str(RECEIVER), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "WASMWIZ_WEBHOOK_SECRET" in done.stderr


SUBMIT = [sys.executable, str(EXAMPLES / "python" / "submit_job.py")]


def test_submit_and_wait_prints_the_result(
    live_server: LiveServer, migrated_database_url: str
) -> None:
    result = run_example(SUBMIT, live_server, new_key(migrated_database_url), str(ECHO))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "status: success, exit code: 0\n" + STDIN
    assert result.stderr.startswith("job ")
    assert result.stderr.endswith(" submitted\n")


def test_submit_reports_a_refusal_by_its_code(live_server: LiveServer, tmp_path: Path) -> None:
    result = run_example(SUBMIT, live_server, "ww_not-a-real-key", str(ECHO))
    assert result.returncode == 1
    assert "WasmWiz refused the request: unauthorized (HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr
