"""The `wasmwiz` command: serve, migrate, manage users and keys, run a module locally."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from wasmwiz.cli import admin
from wasmwiz.config import ConfigurationError, Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare `--` belongs to the guest program, not to us.
    guest_args: list[str] = []
    if "--" in raw:
        split = raw.index("--")
        raw, guest_args = raw[:split], raw[split + 1 :]
    args = parser.parse_args(raw)
    args.guest_args = guest_args
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"wasmwiz: {exc}", file=sys.stderr)
        return 2
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        return handler(settings, args)
    except admin.CommandError as exc:
        print(f"wasmwiz: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmwiz", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API and web pages")
    serve.add_argument("--host", help="address to bind (default: SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default: SERVER_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.set_defaults(handler=_serve)

    database = commands.add_parser("db", help="database schema")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    upgrade = database_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)

    users = commands.add_parser("users", help="user accounts")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    create_user = user_commands.add_parser("create", help="create a user")
    create_user.add_argument("email")
    create_user.add_argument("--tier", default="free", choices=["free", "basic", "pro"])
    create_user.add_argument("--admin", action="store_true", help="make the user an admin")
    create_user.set_defaults(handler=_async(admin.create_user))

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create_key = key_commands.add_parser("create", help="create a key (printed once)")
    create_key.add_argument("email")
    create_key.add_argument("--name", default="default")
    create_key.add_argument("--expires-in-days", type=int, default=None)
    create_key.set_defaults(handler=_async(admin.create_key))
    list_keys = key_commands.add_parser("list", help="list a user's keys")
    list_keys.add_argument("email")
    list_keys.set_defaults(handler=_async(admin.list_keys))
    revoke_key = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke_key.add_argument("key_id")
    revoke_key.set_defaults(handler=_async(admin.revoke_key))

    demo = commands.add_parser("demo", help="create the demo user and key if none exist")
    demo.add_argument("--url", default=None, help="base URL to show in the curl example")
    demo.set_defaults(handler=_async(admin.ensure_demo))

    run = commands.add_parser("run", help="run a module locally through the sandbox")
    run.add_argument("module", type=Path)
    run.add_argument("--input", type=Path, help="file to use as stdin")
    run.set_defaults(handler=admin.run_locally)
    return parser


def _async(
    command: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        return asyncio.run(command(settings, args))

    return run


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from wasmwiz.cli.serve import serve

    return serve(settings, host=args.host, port=args.port, workers=args.workers)


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from wasmwiz.persistence.migrate import upgrade

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url, args.revision)
    print(f"database upgraded to {args.revision}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
