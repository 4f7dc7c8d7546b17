"""Subscription tiers: every limit at least 1 (max_fuel may be null, for none).

A tier row with a zero or negative limit cannot be turned into a rate-limit quota, so
every execution under it would fail; the database now refuses such a row when it is
written, where the operator sees it, instead. Suspending someone is deactivation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, condition); the full name is the models' convention, ck_subscription_tiers_<name>.
CHECKS = [
    ("requests_per_minute_positive", "requests_per_minute >= 1"),
    ("requests_per_day_positive", "requests_per_day >= 1"),
    ("max_concurrent_executions_positive", "max_concurrent_executions >= 1"),
    ("max_fuel_positive", "max_fuel IS NULL OR max_fuel >= 1"),
]


def upgrade() -> None:
    # Batch mode: SQLite adds a constraint by copying the table (render_as_batch in env.py).
    with op.batch_alter_table("subscription_tiers") as batch:
        for name, condition in CHECKS:
            batch.create_check_constraint(op.f(f"ck_subscription_tiers_{name}"), condition)


def downgrade() -> None:
    with op.batch_alter_table("subscription_tiers") as batch:
        for name, _ in reversed(CHECKS):
            batch.drop_constraint(op.f(f"ck_subscription_tiers_{name}"), type_="check")
