"""`wasmwiz usage prune`: the retention job, run once (from cron or a Kubernetes CronJob)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from wasmwiz.config import Settings
from wasmwiz.persistence import Database
from wasmwiz.services.retention import prune_usage


def add_parser(commands: Any) -> None:
    usage = commands.add_parser("usage", help="the usage log")
    usage_commands = usage.add_subparsers(dest="usage_command", required=True)
    prune = usage_commands.add_parser(
        "prune", help="delete usage records older than USAGE_RETENTION_DAYS, in batches"
    )
    prune.add_argument(
        "--days", type=int, default=None, help="keep this many days (default: USAGE_RETENTION_DAYS)"
    )
    prune.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per transaction (default: USAGE_RETENTION_BATCH_SIZE)",
    )
    prune.set_defaults(handler=run_prune)


def run_prune(settings: Settings, args: argparse.Namespace) -> int:
    days = args.days if args.days is not None else settings.usage_retention_days
    batch_size = args.batch_size or settings.usage_retention_batch_size
    if days < 1 or batch_size < 1:
        print("wasmwiz: --days and --batch-size must be at least 1")
        return 2
    deleted = asyncio.run(_prune(settings, days, batch_size))
    print(f"deleted {deleted} usage records older than {days} days")
    return 0


async def _prune(settings: Settings, days: int, batch_size: int) -> int:
    database = Database(settings.effective_database_url)
    try:
        return await prune_usage(database, retention_days=days, batch_size=batch_size)
    finally:
        await database.dispose()
