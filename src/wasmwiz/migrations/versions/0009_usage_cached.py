"""The result cache: whether a usage record's answer came from it.

usage_logs.cached is true for an execution answered from the result cache of
deterministic runs (services/result_cache.py): admitted and counted like any run, but
nothing ran; its figures are those of the run whose result was served. Every row written
before is a run, so the column is false for them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_logs") as batch:
        batch.add_column(
            sa.Column("cached", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_logs") as batch:
        batch.drop_column("cached")
