"""Jobs: runs accepted now and done later, on the task queue (docs/jobs.md).

jobs holds one row per job, the source of truth of its state (queued, running, finished,
failed, cancelled, expired): the queue only says which row to look at. A worker claims a
queued row by a conditional update that counts the attempt and sets a lease; a row whose
lease ran out (its process died) is queued again, up to a bounded number of attempts. The
result and the run's usage row are written in one transaction, only by the attempt that
holds the row, so a job is recorded once however often its message was delivered.
job_payloads keeps what the run needs (the module or its reference, stdin, args, env,
files) apart from the row (jobs.payload_size says how large, for the account's bound on
what its waiting jobs hold), and is deleted when the job ends. subscription_tiers gains the
tiers' job limits: a job's wall-clock limit (free 5 s, basic 30 s, pro 60 s; any other
tier 5 s), how many of an account's jobs may wait (free 10, basic 100, pro 1,000; other
10), and how long results are kept (free 1 hour, basic 1 day, pro 7 days; other 1 hour).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
HOUR = 3600
DEFAULT_LIMITS = (5, 10, HOUR)
TIER_LIMITS = {"free": (5, 10, HOUR), "basic": (30, 100, 24 * HOUR), "pro": (60, 1000, 168 * HOUR)}
_COLUMNS = ("job_timeout_seconds", "max_queued_jobs", "job_result_seconds")


def upgrade() -> None:
    with op.batch_alter_table("subscription_tiers") as batch:
        for column, default in zip(_COLUMNS, DEFAULT_LIMITS, strict=True):
            batch.add_column(
                sa.Column(column, sa.Integer(), nullable=False, server_default=str(default))
            )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_job_timeout_seconds_positive"), "job_timeout_seconds >= 1"
        )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_max_queued_jobs_not_negative"), "max_queued_jobs >= 0"
        )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_job_result_seconds_positive"), "job_result_seconds >= 1"
        )
    tiers = sa.table("subscription_tiers", sa.column("name"), *(sa.column(c) for c in _COLUMNS))
    for name, limits in TIER_LIMITS.items():
        op.execute(
            tiers.update()
            .where(tiers.c.name == name)
            .values(dict(zip(_COLUMNS, limits, strict=True)))
        )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("enqueued_at", _TIMESTAMP, nullable=False),
        sa.Column("started_at", _TIMESTAMP, nullable=True),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("expires_at", _TIMESTAMP, nullable=True),
        sa.Column("lease_until", _TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("result_seconds", sa.Integer(), nullable=False),
        sa.Column("input_size", sa.Integer(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("execution_id", sa.Uuid(), nullable=True),
        sa.Column("cached", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jobs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'finished', 'failed', 'cancelled', 'expired')",
            name=op.f("ck_jobs_state_known"),
        ),
    )
    op.create_index(op.f("ix_jobs_user_id_created_at"), "jobs", ["user_id", "created_at"])
    op.create_index(op.f("ix_jobs_user_id_state"), "jobs", ["user_id", "state"])
    op.create_index(op.f("ix_jobs_state_lease_until"), "jobs", ["state", "lease_until"])
    op.create_index(op.f("ix_jobs_expires_at"), "jobs", ["expires_at"])
    op.create_table(
        "job_payloads",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_payloads_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_payloads")),
    )


def downgrade() -> None:
    op.drop_table("job_payloads")
    op.drop_index(op.f("ix_jobs_expires_at"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_state_lease_until"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_user_id_state"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_user_id_created_at"), table_name="jobs")
    op.drop_table("jobs")
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.drop_constraint(
            op.f("ck_subscription_tiers_job_result_seconds_positive"), type_="check"
        )
        batch.drop_constraint(
            op.f("ck_subscription_tiers_max_queued_jobs_not_negative"), type_="check"
        )
        batch.drop_constraint(
            op.f("ck_subscription_tiers_job_timeout_seconds_positive"), type_="check"
        )
        for column in reversed(_COLUMNS):
            batch.drop_column(column)
