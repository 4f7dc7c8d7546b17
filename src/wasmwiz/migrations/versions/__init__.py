"""Alembic revision scripts, applied in order by `wasmwiz.persistence.migrate`."""
