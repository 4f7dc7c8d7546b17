"""Schemathesis against the live app: no server errors, and every response as documented.

Requests are generated from the spec the server serves, authenticated with a real key.
The execute operations get mostly refusals (random bytes are not modules): each of those
must be a documented problem response too. The stateful phase is left out: it would chain
POST and DELETE /api/v1/keys and could revoke the key the run authenticates with.

The run is seeded (WASMWIZ_TEST_SEED, printed in pytest's header and in a failure), so CI
generates the same requests every time and a failure replays with the seed it names.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import randomized_test_seed
from tests.fixtures.app import LiveServer, create_account
from tests.fixtures.database import run_outside_loop

ST = Path(sys.executable).with_name("st")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        # Security: an operation that declares the Bearer scheme must refuse a request
        # without it (or with a wrong key), and an undocumented method must get 405.
        "ignored_auth",
        "unsupported_method",
        "negative_data_rejection",
    ]
)


@pytest.mark.timeout(300)
def test_the_live_api_conforms_to_its_spec(
    live_server: LiveServer, migrated_database_url: str, tmp_path: Path
) -> None:
    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    seed = randomized_test_seed()
    result = subprocess.run(
        [
            str(ST),
            "run",
            f"{live_server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {account.api_key}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--seed",
            str(seed),
            # It revokes every key of the account, the one this run authenticates with
            # included: every later operation would only see 401s (seed 3 did).
            "--exclude-path",
            "/api/v1/keys/revoke-all",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    output = f"schemathesis seed {seed} (WASMWIZ_TEST_SEED={seed} replays it)\n"
    output += result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in output, output
