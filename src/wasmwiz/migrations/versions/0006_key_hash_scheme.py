"""API-key hashes under a purpose-derived secret: the hash scheme of each key.

- api_keys.hash_scheme: how key_hash was made. 1 (every key that exists when this runs):
  HMAC-SHA256 under the configured secret itself; 2: HMAC-SHA256 under the key derived
  from it for API-key hashing alone (auth.key_derivation). The service gives new keys,
  and moves a key to when it authenticates one, the scheme API_KEY_HASH_SCHEME names
  (default 2; docs/api-keys.md). Downgrading drops the column: keys already at 2 then no longer
  authenticate on the older release, which knows only scheme 1 (docs/releasing.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("hash_scheme", sa.SmallInteger(), nullable=False, server_default="1")
        )
        batch.create_check_constraint(
            op.f("ck_api_keys_hash_scheme_known"), "hash_scheme IN (1, 2)"
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("ck_api_keys_hash_scheme_known"), type_="check")
        batch.drop_column("hash_scheme")
