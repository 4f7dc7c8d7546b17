"""Fuel is counted only for runs with a fuel budget: usage_logs.fuel_consumed may be NULL.

A run without a fuel budget runs on an engine that does not count fuel (the epoch deadline
stops it), so its fuel_consumed is NULL, "not metered", rather than a number it never
had. Sums over the column (usage analytics, billing) count the metered runs only: SQL's
SUM skips NULL. Every row written before keeps its figure. Downgrading writes 0 into the
NULLs, since the old schema has no way to say "not metered".

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_logs") as batch:
        batch.alter_column("fuel_consumed", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    op.execute(sa.text("UPDATE usage_logs SET fuel_consumed = 0 WHERE fuel_consumed IS NULL"))
    with op.batch_alter_table("usage_logs") as batch:
        batch.alter_column("fuel_consumed", existing_type=sa.BigInteger(), nullable=False)
