"""Each tier may have its own request budget (API calls and pages) instead of the server's.

Every API call with a key but the runs, and every page a signed-in user loads, spends one
of the account's request budget (ApiRequestLimit): until now one budget for every tier,
the server's API_REQUESTS_PER_MINUTE (600) and API_REQUESTS_PER_DAY (200,000). A job's
submission spends one as well as a run, so a pro account submitting at its tier's 500 runs
a minute had 100 calls left to read its results with. subscription_tiers gains
api_requests_per_minute and api_requests_per_day, NULL meaning the server's setting; pro
gets 3,000 a minute and 300,000 a day (six times its runs), the others keep the server's.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("api_requests_per_minute", "api_requests_per_day")
TIER_BUDGETS = {"pro": (3000, 300_000)}


def upgrade() -> None:
    with op.batch_alter_table("subscription_tiers") as batch:
        for column in _COLUMNS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
            batch.create_check_constraint(
                op.f(f"ck_subscription_tiers_{column}_positive"),
                f"{column} IS NULL OR {column} >= 1",
            )
    tiers = sa.table("subscription_tiers", sa.column("name"), *(sa.column(c) for c in _COLUMNS))
    for name, budget in TIER_BUDGETS.items():
        op.execute(
            tiers.update()
            .where(tiers.c.name == name)
            .values(dict(zip(_COLUMNS, budget, strict=True)))
        )


def downgrade() -> None:
    with op.batch_alter_table("subscription_tiers") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_constraint(op.f(f"ck_subscription_tiers_{column}_positive"), type_="check")
            batch.drop_column(column)
