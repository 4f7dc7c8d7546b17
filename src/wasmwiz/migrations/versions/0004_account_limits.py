"""Account-level limits: key scopes, per-key lower limits, key caps, soft-deleted accounts.

- api_keys.scopes: what a key may do, space-separated. Keys that exist already get every
  scope they could use before (`execute usage:read keys:write`), so nothing breaks;
  the service gives new keys `execute usage:read` unless asked otherwise.
- api_keys.requests_per_minute / requests_per_day / max_concurrent_executions: a key's
  own lower limits, enforced on top of its account's (NULL: the account's only).
- subscription_tiers.max_api_keys: the cap on an account's live keys.
- users.deleted_at: a deleted account is kept, anonymised, so its usage rows (billing)
  keep their user_id (usage_logs.user_id is ON DELETE CASCADE).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_SCOPES_BEFORE = "execute usage:read keys:write"
KEY_LIMITS = ["requests_per_minute", "requests_per_day", "max_concurrent_executions"]
KEY_CAPS = {"free": 5, "basic": 20, "pro": 100}


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(200), nullable=False, server_default=ALL_SCOPES_BEFORE)
        )
        for column in KEY_LIMITS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch.create_check_constraint(
                op.f(f"ck_api_keys_{column}_positive"), f"{column} IS NULL OR {column} >= 1"
            )
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.add_column(
            sa.Column("max_api_keys", sa.Integer(), nullable=False, server_default="5")
        )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_max_api_keys_positive"), "max_api_keys >= 1"
        )
    tiers = sa.table("subscription_tiers", sa.column("name"), sa.column("max_api_keys"))
    for name, cap in KEY_CAPS.items():
        op.execute(tiers.update().where(tiers.c.name == name).values(max_api_keys=cap))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.drop_constraint(op.f("ck_subscription_tiers_max_api_keys_positive"), type_="check")
        batch.drop_column("max_api_keys")
    with op.batch_alter_table("api_keys") as batch:
        for column in reversed(KEY_LIMITS):
            batch.drop_constraint(op.f(f"ck_api_keys_{column}_positive"), type_="check")
            batch.drop_column(column)
        batch.drop_column("scopes")
