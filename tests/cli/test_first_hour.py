"""What a newcomer meets first on the command line: a database not made yet, the demo user's
password, piped stdin, a key pasted with a newline, and the small refusals (issue 22)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.api import wat
from tests.fixtures.app import TEST_SALT, LiveServer, create_account, make_settings
from tests.fixtures.database import _execute, run_outside_loop
from wasmwiz.app import SchemaNotReady, create_app
from wasmwiz.cli.main import main
from wasmwiz.persistence import Database
from wasmwiz.persistence.migrate import head, schema_problem, upgrade

WASMWIZ = [sys.executable, "-m", "wasmwiz.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without any WasmWiz setting, as in a new shell."""
    drop = ("WASMWIZ_", "DATABASE_URL", "API_SALT", "VAR_DIR", "REDIS_URL", "RATE_LIMIT")
    env = {name: value for name, value in os.environ.items() if not name.startswith(drop)}
    return {**env, **extra}


def wasmwiz(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*WASMWIZ, *argv],
        cwd=cwd,
        env=env or clean_env(),
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


# 1 and 2: a database that is missing or behind ---------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "list", "ada@example.com"],
        ["keys", "create", "ada@example.com"],
        ["users", "create", "ada@example.com"],
        ["demo"],
        ["usage", "prune"],
        ["serve"],
    ],
)
def test_a_command_in_another_directory_creates_nothing_and_says_one_line(
    tmp_path: Path, argv: list[str]
) -> None:
    done = wasmwiz(*argv, cwd=tmp_path)
    assert done.returncode == 1
    database = tmp_path / "var" / "wasmwiz.db"
    assert done.stderr.decode() == (
        f"wasmwiz: no database at {database}: run `wasmwiz db upgrade` to create it\n"
    )
    assert not (tmp_path / "var").exists()  # no api_salt, no empty database


def test_read_only_commands_create_nothing(tmp_path: Path) -> None:
    current = wasmwiz("db", "current", cwd=tmp_path)
    assert current.returncode == 0
    assert current.stdout.decode().startswith("none: no database at ")
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    assert wasmwiz("run", str(module), cwd=tmp_path).stdout == b"Hello, WasmWiz!\n"
    assert wasmwiz("openapi", cwd=tmp_path).returncode == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hello.wat"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_a_schema_that_was_never_migrated_is_named_with_the_fix(
    database_url: str, tmp_path: Path
) -> None:
    # A database that exists but is empty: a SQLite file someone touched, a new schema.
    if database_url.startswith("sqlite"):
        run_outside_loop(lambda: asyncio.run(_execute(database_url, "SELECT 1")))
    problem = run_outside_loop(lambda: schema_problem(database_url))
    assert problem is not None
    assert problem.endswith("has no schema: run `wasmwiz db upgrade`")
    env = clean_env(DATABASE_URL=database_url, API_SALT=TEST_SALT, VAR_DIR=str(tmp_path))
    done = wasmwiz("keys", "list", "ada@example.com", cwd=tmp_path, env=env)
    assert done.returncode == 1
    assert done.stderr.decode() == f"wasmwiz: {problem}\n"


@pytest.mark.anyio
@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_app_refuses_to_start_on_a_schema_behind_its_own(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url)
    if database_url.startswith("sqlite"):
        await _execute(database_url, "SELECT 1")
    app = create_app(settings)
    with pytest.raises(SchemaNotReady, match=r"has no schema: run `wasmwiz db upgrade`$"):
        async with app.router.lifespan_context(app):
            pass

    run_outside_loop(lambda: upgrade(database_url, "0003"))
    with pytest.raises(SchemaNotReady, match=f"is at revision 0003, this release needs {head()}"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.anyio
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_newer_schema_is_accepted_as_the_next_release_s(
    migrated_database_url: str,
) -> None:
    # During a rollback the older image runs on the newer schema (docs/releasing.md).
    database = Database(migrated_database_url)
    try:
        async with database.session() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = '9999'"))
            await session.commit()
    finally:
        await database.dispose()
    assert run_outside_loop(lambda: schema_problem(migrated_database_url)) is None


# 5: a password for an account made on the command line -------------------------------


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated_database_url: str
) -> dict[str, str]:
    env = clean_env(
        DATABASE_URL=migrated_database_url, API_SALT=TEST_SALT, VAR_DIR=str(tmp_path / "var")
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_set_password_lets_a_cli_account_sign_in_on_the_web(
    environment: dict[str, str], tmp_path: Path, server_factory: object
) -> None:
    created = wasmwiz(
        "users", "create", "ops@example.com", "--admin", cwd=tmp_path, env=environment
    )
    assert created.returncode == 0, created.stderr
    weak = wasmwiz(
        "users", "set-password", "ops@example.com", cwd=tmp_path, stdin=b"short\n", env=environment
    )
    assert weak.returncode == 1
    assert b"at least" in weak.stderr
    done = wasmwiz(
        "users",
        "set-password",
        "ops@example.com",
        cwd=tmp_path,
        stdin=b"correct horse battery\n",
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == (
        "ops@example.com can now sign in on the web pages with that password\n"
    )

    server: LiveServer = server_factory()  # type: ignore[operator]
    with httpx.Client(base_url=server.url) as browser:
        page = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        signed_in = browser.post(
            "/login",
            data={
                "email": "ops@example.com",
                "password": "correct horse battery",
                "csrf_token": token.group(1),
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        assert browser.get("/admin").status_code == 200


# 18: `wasmwiz run` and stdin ---------------------------------------------------------


def test_run_reads_piped_stdin_and_input_dash(tmp_path: Path) -> None:
    module = tmp_path / "echo.wat"
    module.write_text(wat.ECHO)
    piped = wasmwiz("run", str(module), cwd=tmp_path, stdin=b"from a pipe\n")
    assert piped.stdout == b"from a pipe\n"
    dash = wasmwiz("run", str(module), "--input", "-", cwd=tmp_path, stdin=b"dash\n")
    assert (dash.returncode, dash.stdout) == (0, b"dash\n")


# 19 and 20: the key, the URL and the small refusals -------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_remote_run_checks_the_key_locally_and_never_shows_it(
    live_server: LiveServer, migrated_database_url: str, tmp_path: Path
) -> None:
    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)

    unset = wasmwiz("remote", "run", str(module), cwd=tmp_path, env=clean_env(WASMWIZ_URL="x"))
    assert unset.returncode == 1
    assert unset.stderr.decode().startswith("wasmwiz: No API key: set WASMWIZ_API_KEY")

    pasted = clean_env(WASMWIZ_URL=live_server.url, WASMWIZ_API_KEY=account.api_key + "\n")
    newline = wasmwiz("remote", "run", str(module), cwd=tmp_path, env=pasted)
    assert newline.returncode == 1
    stderr = newline.stderr.decode()
    assert "has a line break at position 47 of 47" in stderr
    assert account.api_key[3:] not in stderr
    assert "Bearer" not in stderr

    # A URL copied with the API's prefix works as the service's root.
    prefixed = clean_env(WASMWIZ_URL=live_server.url + "/api/v1/", WASMWIZ_API_KEY=account.api_key)
    done = wasmwiz("remote", "run", str(module), cwd=tmp_path, env=prefixed)
    assert (done.returncode, done.stdout) == (0, b"Hello, WasmWiz!\n"), done.stderr


def test_remote_run_without_a_url_names_the_variable_only(tmp_path: Path) -> None:
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    done = wasmwiz("remote", "run", str(module), cwd=tmp_path, env=clean_env(WASMWIZ_API_KEY="k"))
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert "No service URL: set WASMWIZ_URL" in stderr
    assert "base_url" not in stderr


def test_guest_arguments_without_the_dashes_get_a_hint(tmp_path: Path) -> None:
    done = wasmwiz("remote", "run", "mod.wasm", "Ada", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "the program's arguments go after a bare `--`: wasmwiz remote run mod.wasm -- Ada"
        in done.stderr.decode()
    )


def test_version(tmp_path: Path) -> None:
    from wasmwiz import __version__

    done = wasmwiz("--version", cwd=tmp_path)
    assert done.stdout.decode() == f"wasmwiz {__version__}\n"


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_a_key_that_expires_at_once_or_never_by_mistake_is_refused(
    environment: dict[str, str], capsys: pytest.CaptureFixture[str], days: str
) -> None:
    assert main(["users", "create", "ada@example.com"]) == 0
    with pytest.raises(SystemExit) as refused:
        main(["keys", "create", "ada@example.com", "--expires-in-days", days])
    assert refused.value.code == 2
    assert "at least 1" in capsys.readouterr().err


def test_revoking_twice_says_so(
    environment: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "create", "ada@example.com"]) == 0
    assert main(["keys", "create", "ada@example.com"]) == 0
    key_id = re.search(r"created key ([0-9a-f-]{36})", capsys.readouterr().out)
    assert key_id is not None
    assert main(["keys", "revoke", key_id.group(1)]) == 0
    assert capsys.readouterr().out == f"revoked key {key_id.group(1)}\n"
    assert main(["keys", "revoke", key_id.group(1)]) == 0
    assert capsys.readouterr().out.startswith(f"key {key_id.group(1)} was already revoked on ")


def test_a_closed_pipe_is_not_a_traceback(environment: dict[str, str], tmp_path: Path) -> None:
    # `keys list … | head` once head has gone: the reading end is closed before we write.
    assert main(["users", "create", "ada@example.com"]) == 0
    assert main(["keys", "create", "ada@example.com"]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*WASMWIZ, "keys", "list", "ada@example.com"],
            cwd=tmp_path,
            env=environment,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == b""
    assert done.returncode == 141  # as a shell reports a command ended by SIGPIPE


# 10: a key cut short ---------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_truncated_key_is_asked_whether_it_was_copied_whole(
    live_server: LiveServer, migrated_database_url: str
) -> None:
    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    for key, detail in [
        (account.api_key[:20], "That is not a well-formed WasmWiz API key: was it copied whole?"),
        ("sk-" + "a" * 40, "That is not a WasmWiz API key (they start with ww_)."),
    ]:
        response = httpx.post(
            f"{live_server.url}/api/v1/execute",
            headers={"Authorization": f"Bearer {key}"},
            files={"wasm": ("m.wat", wat.HELLO.encode())},
        )
        assert response.status_code == 401
        assert response.json()["detail"] == detail


# 17: no message says its outcome twice ------------------------------------------------


def test_a_trap_is_named_once(tmp_path: Path) -> None:
    module = tmp_path / "trap.wat"
    module.write_text(wat.UNREACHABLE)
    done = wasmwiz("run", str(module), cwd=tmp_path)
    assert done.returncode == 125
    stderr = done.stderr.decode()
    assert stderr.startswith("wasmwiz: trap: ")
    assert "trap: trap" not in stderr
