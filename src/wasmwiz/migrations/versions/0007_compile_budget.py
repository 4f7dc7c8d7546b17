"""Compile budgets: each tier's compile seconds per minute.

subscription_tiers.compile_seconds_per_minute: the CPU seconds of compiling (modules
not in any cache) an account of the tier may spend per minute, refilled continuously.
free 20, basic 60, pro 120; any other tier gets 60. A 2 MB module takes some 1-2.5 CPU
seconds to compile, and the compile timeout is 10 s, so even a free account can compile
a large module every few seconds and one at the limit twice a minute, while no account
can keep the shared compile workers busy all the time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_BUDGET = 60
TIER_BUDGETS = {"free": 20, "basic": 60, "pro": 120}


def upgrade() -> None:
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.add_column(
            sa.Column(
                "compile_seconds_per_minute",
                sa.Integer(),
                nullable=False,
                server_default=str(DEFAULT_BUDGET),
            )
        )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_compile_seconds_per_minute_positive"),
            "compile_seconds_per_minute >= 1",
        )
    tiers = sa.table(
        "subscription_tiers", sa.column("name"), sa.column("compile_seconds_per_minute")
    )
    for name, budget in TIER_BUDGETS.items():
        op.execute(
            tiers.update().where(tiers.c.name == name).values(compile_seconds_per_minute=budget)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.drop_constraint(
            op.f("ck_subscription_tiers_compile_seconds_per_minute_positive"), type_="check"
        )
        batch.drop_column("compile_seconds_per_minute")
