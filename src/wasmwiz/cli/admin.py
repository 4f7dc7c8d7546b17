"""CLI commands over the services: users, keys, the demo account, and local runs."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.cli.remote_report import outcome_line
from wasmwiz.cli.stdin import is_piped
from wasmwiz.config import Settings
from wasmwiz.errors import WasmWizError
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.persistence.repositories import users as user_repository
from wasmwiz.sandbox import ModuleRefused, Outcome, RunRequest, Sandbox
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.api_keys import key_status
from wasmwiz.services.configured import api_key_service, sandbox_limits
from wasmwiz.services.principals import DEFAULT_KEY_SCOPES, parse_scopes

DEMO_EMAIL = "demo@wasmwiz.local"
EXIT_TIMEOUT = 124
EXIT_SANDBOX_FAILURE = 125


class CommandError(Exception):
    """A command failed in a way the user can act on; the message says how."""


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    database = Database(settings.effective_database_url)
    try:
        async with database.writer() as session:
            try:
                yield session
            except WasmWizError as exc:
                raise CommandError(exc.message) from None
            await session.commit()
    finally:
        await database.dispose()


async def create_user(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        user = await AccountService().create_user(
            session, args.email, tier=args.tier, is_admin=args.admin
        )
    print(f"created user {user.email} (id {user.id}, tier {args.tier})")
    return 0


async def set_admin(settings: Settings, args: argparse.Namespace) -> int:
    """Make an account (e.g. one signed up on the web) an admin, or take that away."""
    async with _session(settings) as session:
        user = await AccountService().set_admin(session, args.email, not args.revoke)
    print(f"{user.email} is {'no longer' if args.revoke else 'now'} an admin")
    return 0


async def set_password(settings: Settings, args: argparse.Namespace) -> int:
    """Set a password (read from stdin, or asked for at a terminal) so the user can sign in."""
    password = _read_password(args.email)
    async with _session(settings) as session:
        user = await AccountService().set_password(session, args.email, password)
    print(f"{user.email} can now sign in on the web pages with that password")
    return 0


def _read_password(email: str) -> str:
    if not sys.stdin.isatty():
        # One line from a pipe: `printf '%s\n' "$PASSWORD" | wasmwiz users set-password EMAIL`.
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    password = getpass.getpass(f"New password for {email}: ")
    if getpass.getpass("Again: ") != password:
        raise CommandError("the two passwords differ; nothing was changed")
    return password


async def create_key(settings: Settings, args: argparse.Namespace) -> int:
    expires_at = (
        datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    )
    async with _session(settings) as session:
        user = await AccountService().get_by_email(session, args.email)
        created = await api_key_service(settings).create(
            session,
            user.id,
            name=args.name,
            expires_at=expires_at,
            scopes=parse_scopes(args.scopes) if args.scopes else DEFAULT_KEY_SCOPES,
        )
    print(f"created key {created.key.id} ({created.key.prefix}…) for {user.email}")
    print("The key is shown once; store it now:")
    print(created.plaintext)
    return 0


async def list_keys(settings: Settings, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with _session(settings) as session:
        user = await AccountService().get_by_email(session, args.email)
        keys = await api_key_service(settings).list_for_user(session, user.id, limit=1000)
    print(f"{'ID':36}  {'PREFIX':12}  {'STATUS':8}  {'CREATED':20}  NAME")
    for key in keys:
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{key.id!s:36}  {key.prefix:12}  {key_status(key, now):8}  {created:20}  {key.name}")
    return 0


async def revoke_key(settings: Settings, args: argparse.Namespace) -> int:
    try:
        key_id = uuid.UUID(args.key_id)
    except ValueError:
        raise CommandError(f"{args.key_id!r} is not a key id (see `wasmwiz keys list`)") from None
    async with _session(settings) as session:
        key = await key_repository.get_by_id(session, key_id)
        if key is not None and key.revoked_at is not None:
            print(f"key {key_id} was already revoked on {key.revoked_at:%Y-%m-%d %H:%M:%S}")
            return 0
        await api_key_service(settings).revoke(session, key_id)
    print(f"revoked key {key_id}")
    return 0


async def ensure_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Create the demo user and one key unless they exist; print the key once, and where
    the web pages and the API docs are."""
    base_url = args.url or f"http://{settings.server_host}:{settings.server_port}"
    async with _session(settings) as session:
        user = await user_repository.get_by_email(session, DEMO_EMAIL)
        if user is not None:
            print(f"Demo user {DEMO_EMAIL} exists; its key was printed when it was created.")
            print(f"Make another with: .venv/bin/wasmwiz keys create {DEMO_EMAIL}\n")
            print(_addresses(base_url))
            return 0
        user = await AccountService().create_user(session, DEMO_EMAIL, tier="pro")
        created = await api_key_service(settings).create(session, user.id, name="demo")
    with as_file(files("wasmwiz.examples") / "hello.wat") as hello:
        example = hello.resolve()
    print(
        f"Created the demo user {DEMO_EMAIL} and an API key, shown only this once:\n\n"
        f"    {created.plaintext}\n\n"
        "In another terminal, paste this line: the examples, the Python client and\n"
        "`wasmwiz remote run` read the service's address and the key from there.\n\n"
        f"    export WASMWIZ_URL={base_url} WASMWIZ_API_KEY={created.plaintext}\n\n"
        f"{_addresses(base_url)}\n"
        "Run the bundled hello-world module with:\n\n"
        f"    curl -s -H 'Authorization: Bearer {created.plaintext}' \\\n"
        f"         -F wasm=@{example} {base_url}/api/v1/execute\n"
    )
    return 0


def _addresses(base_url: str) -> str:
    return (
        f"Web pages (playground, keys, usage): {base_url}/\n"
        f"API docs: {base_url}/docs\n"
        f"To sign in as {DEMO_EMAIL}, give it a password first:\n"
        f"    .venv/bin/wasmwiz users set-password {DEMO_EMAIL}\n"
    )


def _local_stdin(path: str | None) -> bytes:
    """`--input FILE`, `--input -` or, with no option, whatever is piped or redirected in."""
    if path == "-" or (path is None and is_piped(sys.stdin.buffer)):
        return sys.stdin.buffer.read()
    return Path(path).read_bytes() if path else b""


def run_locally(settings: Settings, args: argparse.Namespace) -> int:
    """Run a module through the same sandbox and limits as the service, with no server."""
    try:
        data = args.module.read_bytes()
        stdin = _local_stdin(args.input)
    except OSError as exc:
        raise CommandError(str(exc)) from None
    sandbox = Sandbox(limits=sandbox_limits(settings), max_concurrency=1)
    try:
        compiled = sandbox.prepare(data)
        result = sandbox.run(
            compiled,
            RunRequest(stdin=stdin, args=tuple(args.guest_args), program_name=args.module.name),
        )
    except ModuleRefused as exc:
        raise CommandError(f"{exc.code}: {exc.message}") from None
    finally:
        sandbox.close()
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    if result.outcome in (Outcome.SUCCESS, Outcome.EXIT_NONZERO):
        return result.exit_code or 0
    print(f"wasmwiz: {outcome_line(result.outcome.value, result.error)}", file=sys.stderr)
    return EXIT_TIMEOUT if result.outcome is Outcome.TIMEOUT else EXIT_SANDBOX_FAILURE
