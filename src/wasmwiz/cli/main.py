"""The `wasmwiz` command: serve, migrate, manage users and keys, run a module locally."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmwiz import __version__
from wasmwiz.cli import remote

if TYPE_CHECKING:
    from wasmwiz.config import Settings


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    # `wasmwiz remote` is a client of another server: its parser alone, so it starts without
    # importing this server (the web framework, the runtime, the database layer).
    parser = build_parser(remote_only=raw[:1] == ["remote"])
    # Everything after a bare `--` belongs to the guest program, not to us.
    guest_args: list[str] = []
    if "--" in raw:
        split = raw.index("--")
        raw, guest_args = raw[:split], raw[split + 1 :]
    args, extra = parser.parse_known_args(raw)
    if extra:
        hint = ""
        remote_run = args.command == "remote" and args.remote_command == "run"
        if args.command == "run" or remote_run:
            command = "wasmwiz remote run" if remote_run else "wasmwiz run"
            module = args.module or f"--module {getattr(args, 'module_ref', None)}"
            example = f"{command} {module} -- {' '.join(extra)}"
            hint = f"; the program's arguments go after a bare `--`: {example}"
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    args.guest_args = guest_args
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # `wasmwiz keys list … | head`: the reader is gone, which is not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "remote":
        # A client of another server: it needs none of this server's settings (or VAR_DIR).
        return remote.dispatch(args)
    from wasmwiz.cli.admin import CommandError
    from wasmwiz.config import ENV_FILE, ConfigurationError, load_settings

    try:
        # No secret is written until we know the command has a database to use it with.
        settings = load_settings(generate_salt=False, env_file=ENV_FILE)
        if args.needs_schema:
            from wasmwiz.persistence.migrate import schema_problem

            problem = schema_problem(settings.effective_database_url)
            if problem is not None:
                print(f"wasmwiz: {problem}", file=sys.stderr)
                return 1
            settings = load_settings(env_file=ENV_FILE)
    except ConfigurationError as exc:
        print(f"wasmwiz: {exc}", file=sys.stderr)
        return 2
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        return handler(settings, args)
    except CommandError as exc:
        print(f"wasmwiz: {exc}", file=sys.stderr)
        return 1


def build_parser(*, remote_only: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmwiz", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wasmwiz {__version__}")
    # Commands check the database's schema first (and only then create the development
    # API_SALT), except those that leave both alone: db, run, remote, openapi.
    parser.set_defaults(needs_schema=True)
    commands = parser.add_subparsers(dest="command", required=True)
    if remote_only:
        remote.add_parser(commands)
    else:
        _add_all_commands(commands)
    return parser


def _add_all_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from wasmwiz.cli import admin, invites, openapi_spec, runtimes, tiers, usage
    from wasmwiz.services.principals import Scope

    serve = commands.add_parser("serve", help="serve the HTTP API and web pages")
    serve.add_argument("--host", help="address to bind (default: SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default: SERVER_PORT)")
    serve.add_argument("--workers", type=int, help="server processes (default: WORKERS)")
    serve.add_argument("--certfile", type=Path, help="serve HTTPS: PEM certificate chain")
    serve.add_argument("--keyfile", type=Path, help="serve HTTPS: PEM private key")
    serve.set_defaults(handler=_serve)

    database = commands.add_parser("db", help="database schema")
    database.set_defaults(needs_schema=False)
    database_commands = database.add_subparsers(dest="db_command", required=True)
    upgrade = database_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    # A rollback's second half (docs/releasing.md): back to the revision the old image ran on.
    downgrade = database_commands.add_parser("downgrade", help="revert migrations to a revision")
    downgrade.add_argument("revision", help="the revision to end at, e.g. 0001 (see `db current`)")
    downgrade.set_defaults(handler=_db_downgrade)
    current = database_commands.add_parser("current", help="print the schema's revision")
    current.set_defaults(handler=_db_current)

    users = commands.add_parser("users", help="user accounts")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    create_user = user_commands.add_parser("create", help="create a user")
    create_user.add_argument("email")
    create_user.add_argument("--tier", default="free", choices=["free", "basic", "pro"])
    create_user.add_argument("--admin", action="store_true", help="make the user an admin")
    create_user.set_defaults(handler=_async(admin.create_user))
    set_admin = user_commands.add_parser("set-admin", help="make a user an admin (web /admin)")
    set_admin.add_argument("email")
    set_admin.add_argument("--revoke", action="store_true", help="take admin rights away")
    set_admin.set_defaults(handler=_async(admin.set_admin))
    set_password = user_commands.add_parser(
        "set-password",
        help="set a user's password, so an account made here can sign in on the web",
        description="Reads the password from stdin when it is piped, or asks for it twice.",
    )
    set_password.add_argument("email")
    set_password.set_defaults(handler=_async(admin.set_password))

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create_key = key_commands.add_parser("create", help="create a key (printed once)")
    create_key.add_argument("email")
    create_key.add_argument("--name", default="default")
    create_key.add_argument("--expires-in-days", type=_positive_int, default=None)
    create_key.set_defaults(handler=_async(admin.create_key))
    list_keys = key_commands.add_parser("list", help="list a user's keys")
    list_keys.add_argument("email")
    list_keys.set_defaults(handler=_async(admin.list_keys))
    revoke_key = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke_key.add_argument("key_id")
    revoke_key.set_defaults(handler=_async(admin.revoke_key))
    create_key.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        choices=[scope.value for scope in Scope],
        help="what the key may do (repeat; default: execute and usage:read)",
    )
    tiers.add_parsers(commands, user_commands, key_commands, _async)

    invites.add_parser(commands, _async)
    runtimes.add_parser(commands, _async)

    demo = commands.add_parser("demo", help="create the demo user and key if none exist")
    demo.add_argument("--url", default=None, help="base URL to show in the curl example")
    demo.set_defaults(handler=_async(admin.ensure_demo))

    run = commands.add_parser("run", help="run a module locally through the sandbox")
    run.add_argument("module", type=Path)
    run.add_argument("--input", help="file to use as stdin ('-' for ours; piped stdin is used)")
    run.set_defaults(handler=admin.run_locally, needs_schema=False)

    remote.add_parser(commands)
    openapi_spec.add_parser(commands)
    usage.add_parser(commands)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, at least 1: {text!r}")
    return value


def _async(
    command: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        return asyncio.run(command(settings, args))

    return run


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from wasmwiz.cli.serve import serve

    return serve(
        settings,
        host=args.host,
        port=args.port,
        workers=args.workers,
        certfile=args.certfile,
        keyfile=args.keyfile,
    )


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from wasmwiz.persistence.migrate import upgrade

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url, args.revision)
    print(f"database upgraded to {args.revision}")
    return 0


def _db_downgrade(settings: Settings, args: argparse.Namespace) -> int:
    from wasmwiz.persistence.migrate import downgrade, sqlite_path

    path = sqlite_path(settings.effective_database_url)
    if path is not None and not path.exists():
        print(f"wasmwiz: no database at {path}", file=sys.stderr)
        return 1
    downgrade(settings.effective_database_url, args.revision)
    print(f"database downgraded to {args.revision}")
    return 0


def _db_current(settings: Settings, args: argparse.Namespace) -> int:
    from wasmwiz.persistence.migrate import current, head, sqlite_path

    path = sqlite_path(settings.effective_database_url)
    if path is not None and not path.exists():
        print(f"none: no database at {path} (this release's head: {head()})")
        return 0
    revision = current(settings.effective_database_url)
    print(f"{revision or 'none'} (this release's head: {head()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
