"""CLI commands for administration: `wasmwiz tiers list|create|update`, `wasmwiz users
set-tier|deactivate|reactivate|delete` and `wasmwiz keys revoke-all`."""

from __future__ import annotations

import argparse
from argparse import SUPPRESS
from collections.abc import Callable, Coroutine
from typing import Any

from wasmwiz.cli.admin import _session
from wasmwiz.config import Settings
from wasmwiz.persistence.models import SubscriptionTier
from wasmwiz.services.admin import NO_LIMIT, AdminService, tier_limit_fields
from wasmwiz.services.configured import api_key_service

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]
Wrap = Callable[[Command], Callable[[Settings, argparse.Namespace], int]]

_NOTE = "Running servers apply it within API_KEY_CACHE_SECONDS (5 s by default), without a restart."


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    user_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    key_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    wrap: Wrap,
) -> None:
    tiers = commands.add_parser("tiers", help="subscription tiers and their limits")
    tiers.set_defaults(needs_schema=True)
    tier_commands = tiers.add_subparsers(dest="tiers_command", required=True)
    tier_commands.add_parser("list", help="list tiers").set_defaults(handler=wrap(list_tiers))
    create = tier_commands.add_parser("create", help="create a tier", description=_NOTE)
    create.add_argument("name")
    update = tier_commands.add_parser("update", help="change a tier's limits", description=_NOTE)
    update.add_argument("name")
    for field, spec in tier_limit_fields().items():
        option = "--" + field.replace("_", "-")
        what = f"{field} ({'a number' if spec.kind is float else 'a whole number'}"
        what += f", or 'none' for {spec.null_means})" if spec.nullable else ")"
        parse = _optional(spec.kind) if spec.nullable else spec.kind
        # SUPPRESS: an option not given leaves no attribute, so `--max-fuel none` (None)
        # and "not given" differ.
        create.add_argument(
            option, dest=field, type=parse, required=spec.required, default=SUPPRESS, help=what
        )
        update.add_argument(option, dest=field, type=parse, default=SUPPRESS, help=what)
    create.set_defaults(handler=wrap(create_tier))
    update.set_defaults(handler=wrap(update_tier))

    set_tier = user_commands.add_parser("set-tier", help="move a user to another tier")
    set_tier.add_argument("email")
    set_tier.add_argument("tier")
    set_tier.set_defaults(handler=wrap(set_user_tier))
    for name, active, what in (
        ("deactivate", False, "refuse a user's keys and end their web sessions"),
        ("reactivate", True, "let a deactivated user in again"),
    ):
        command = user_commands.add_parser(name, help=what)
        command.add_argument("email")
        command.set_defaults(handler=wrap(set_user_active), active=active)
    delete = user_commands.add_parser(
        "delete",
        help="delete a user: keys revoked, sessions ended, usage records kept",
        description="The account is anonymised, not removed, so its usage records stay "
        "for billing until `wasmwiz usage prune` removes them (docs/operations.md).",
    )
    delete.add_argument("email")
    delete.set_defaults(handler=wrap(delete_user))

    revoke_all = key_commands.add_parser("revoke-all", help="revoke every key of a user")
    revoke_all.add_argument("email")
    revoke_all.set_defaults(handler=wrap(revoke_all_keys))


def _optional(kind: type[int] | type[float]) -> Callable[[str], int | float | None]:
    def parse(text: str) -> int | float | None:
        return None if text.strip().lower() in ("none", "") else kind(text)

    return parse


def _limits(args: argparse.Namespace) -> dict[str, object]:
    return {field: getattr(args, field) for field in tier_limit_fields() if hasattr(args, field)}


def _print_tiers(tiers: list[SubscriptionTier]) -> None:
    fields = tier_limit_fields()
    print("  ".join([f"{'NAME':12}", *(field.upper() for field in fields)]))
    for tier in tiers:
        cells = [
            _cell(getattr(tier, field), spec.null_means, len(field))
            for field, spec in fields.items()
        ]
        print("  ".join([f"{tier.name:12}", *cells]))


def _cell(value: object, null_means: str, width: int) -> str:
    """A limit's cell; null is `none` (no limit) or `server` (the server's setting)."""
    shown = str(value) if value is not None else "none" if null_means == NO_LIMIT else "server"
    return f"{shown:>{width}}"


async def list_tiers(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        tiers = await AdminService().list_tiers(session)
    _print_tiers(tiers)
    return 0


async def create_tier(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        tier = await AdminService().create_tier(session, args.name, _limits(args))
    print(f"created tier {tier.name}")
    _print_tiers([tier])
    return 0


async def update_tier(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        tier = await AdminService().update_tier(session, args.name, _limits(args))
    print(f"updated tier {tier.name}; running servers apply it within API_KEY_CACHE_SECONDS")
    _print_tiers([tier])
    return 0


async def set_user_tier(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        admin = AdminService()
        user = await admin.set_tier(session, await admin.user_id(session, args.email), args.tier)
    print(f"{user.email} is now on the {user.tier.name} tier")
    return 0


async def set_user_active(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        admin = AdminService()
        user_id = await admin.user_id(session, args.email)
        user = await admin.set_active(session, user_id, args.active)
    state = "active again" if args.active else "deactivated: its keys are refused, it is signed out"
    print(f"{user.email} is {state}")
    return 0


async def delete_user(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        admin = AdminService()
        await admin.delete_user(session, await admin.user_id(session, args.email))
    print(f"deleted {args.email}: keys revoked, sessions ended, usage records kept (anonymised)")
    return 0


async def revoke_all_keys(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        user_id = await AdminService().user_id(session, args.email)
        revoked = await api_key_service(settings).revoke_all(session, user_id)
    print(f"revoked {revoked} key(s) of {args.email}; none of its keys works any more")
    return 0
