"""Stored modules, public runtimes and batches: content-addressed bytes, owned per
account, with names; runtimes every account may run; storage quotas; the batch a usage
record's run belonged to.

wasm_blobs holds each distinct module's bytes once, keyed by their SHA-256. wasm_modules
says which account stored which blob (what the compiled module imports and exports, and
whether it is a WASI command); an account sees only its own rows, so knowing a digest
grants nothing. wasm_module_names points an account's names (like registry tags) at its
modules. subscription_tiers gains the storage quota: how many modules an account may
keep and how many bytes they may take (free 10 / 50 MiB, basic 100 / 500 MiB, pro
1,000 / 5 GiB; any other tier 100 / 500 MiB). usage_logs gains batch_id: the batch
(POST /api/v1/execute/batch) a run was a case of, NULL for a single run.
public_runtimes: modules an administrator published (or the server installed from the
runtimes it ships) for every account, by name and version.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
MiB = 1024 * 1024
DEFAULT_QUOTA = (100, 500 * MiB)
TIER_QUOTAS = {"free": (10, 50 * MiB), "basic": (100, 500 * MiB), "pro": (1000, 5 * 1024 * MiB)}


def upgrade() -> None:
    op.create_table(
        "wasm_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_wasm_blobs")),
    )
    op.create_table(
        "wasm_modules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("imports", sa.Text(), nullable=False),
        sa.Column("exports", sa.Text(), nullable=False),
        sa.Column("is_command", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_wasm_modules_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["wasm_blobs.sha256"], name=op.f("fk_wasm_modules_sha256_wasm_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wasm_modules")),
        sa.UniqueConstraint("user_id", "sha256", name=op.f("uq_wasm_modules_user_id_sha256")),
    )
    op.create_index(
        op.f("ix_wasm_modules_user_id_created_at"),
        "wasm_modules",
        ["user_id", "created_at"],
    )
    op.create_index(op.f("ix_wasm_modules_sha256"), "wasm_modules", ["sha256"])
    op.create_table(
        "wasm_module_names",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("module_id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", _TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_wasm_module_names_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["wasm_modules.id"],
            name=op.f("fk_wasm_module_names_module_id_wasm_modules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "name", name=op.f("pk_wasm_module_names")),
    )
    op.create_index(op.f("ix_wasm_module_names_module_id"), "wasm_module_names", ["module_id"])
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.add_column(
            sa.Column(
                "max_stored_modules",
                sa.Integer(),
                nullable=False,
                server_default=str(DEFAULT_QUOTA[0]),
            )
        )
        batch.add_column(
            sa.Column(
                "max_stored_module_bytes",
                sa.BigInteger(),
                nullable=False,
                server_default=str(DEFAULT_QUOTA[1]),
            )
        )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_max_stored_modules_not_negative"),
            "max_stored_modules >= 0",
        )
        batch.create_check_constraint(
            op.f("ck_subscription_tiers_max_stored_module_bytes_not_negative"),
            "max_stored_module_bytes >= 0",
        )
    op.create_table(
        "public_runtimes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=64), nullable=False),
        sa.Column("usage", sa.Text(), nullable=False),
        sa.Column("license", sa.String(length=128), nullable=False),
        sa.Column("published_at", _TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["wasm_blobs.sha256"], name=op.f("fk_public_runtimes_sha256_wasm_blobs")
        ),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_public_runtimes")),
    )
    op.create_index(op.f("ix_public_runtimes_sha256"), "public_runtimes", ["sha256"])
    with op.batch_alter_table("usage_logs") as batch:
        batch.add_column(sa.Column("batch_id", sa.Uuid(), nullable=True))
        batch.create_index(op.f("ix_usage_logs_batch_id"), ["batch_id"])
    tiers = sa.table(
        "subscription_tiers",
        sa.column("name"),
        sa.column("max_stored_modules"),
        sa.column("max_stored_module_bytes"),
    )
    for name, (count, size) in TIER_QUOTAS.items():
        op.execute(
            tiers.update()
            .where(tiers.c.name == name)
            .values(max_stored_modules=count, max_stored_module_bytes=size)
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_logs") as batch:
        batch.drop_index(op.f("ix_usage_logs_batch_id"))
        batch.drop_column("batch_id")
    with op.batch_alter_table("subscription_tiers") as batch:
        batch.drop_constraint(
            op.f("ck_subscription_tiers_max_stored_module_bytes_not_negative"), type_="check"
        )
        batch.drop_constraint(
            op.f("ck_subscription_tiers_max_stored_modules_not_negative"), type_="check"
        )
        batch.drop_column("max_stored_module_bytes")
        batch.drop_column("max_stored_modules")
    op.drop_index(op.f("ix_public_runtimes_sha256"), table_name="public_runtimes")
    op.drop_table("public_runtimes")
    op.drop_index(op.f("ix_wasm_module_names_module_id"), table_name="wasm_module_names")
    op.drop_table("wasm_module_names")
    op.drop_index(op.f("ix_wasm_modules_sha256"), table_name="wasm_modules")
    op.drop_index(op.f("ix_wasm_modules_user_id_created_at"), table_name="wasm_modules")
    op.drop_table("wasm_modules")
    op.drop_table("wasm_blobs")
