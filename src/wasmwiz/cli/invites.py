"""`wasmwiz invites create`: single-use sign-up codes for SIGNUP_MODE=invite."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from wasmwiz.config import Settings
from wasmwiz.persistence import Database
from wasmwiz.services.invites import create_invite

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]
Wrap = Callable[[Command], Callable[[Settings, argparse.Namespace], int]]
MAX_COUNT = 1000


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    invites = commands.add_parser("invites", help="sign-up invite codes (SIGNUP_MODE=invite)")
    invites.set_defaults(needs_schema=True)
    invite_commands = invites.add_subparsers(dest="invites_command", required=True)
    create = invite_commands.add_parser(
        "create",
        help="make invite codes (printed once, one a line)",
        description="Each code signs up one account, then is used up. Only a hash is stored.",
    )
    create.add_argument("--count", type=_count, default=1, help="how many codes (default 1)")
    create.add_argument(
        "--expires-in-days", type=_days, default=None, help="unused codes expire (default never)"
    )
    create.set_defaults(handler=wrap(create_invites))


async def create_invites(settings: Settings, args: argparse.Namespace) -> int:
    expires_in = None if args.expires_in_days is None else timedelta(days=args.expires_in_days)
    database = Database(settings.effective_database_url)
    try:
        async with database.writer() as session:
            codes = [await create_invite(session, expires_in=expires_in) for _ in range(args.count)]
            await session.commit()
    finally:
        await database.dispose()
    for code in codes:
        print(code)
    return 0


def _count(text: str) -> int:
    return _bounded(text, 1, MAX_COUNT, "a count")


def _days(text: str) -> int:
    return _bounded(text, 1, 3650, "a number of days")


def _bounded(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}: {text!r}")
    return value
