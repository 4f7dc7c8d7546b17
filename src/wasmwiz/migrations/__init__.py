"""Alembic migrations, shipped in the package: run them with `wasmwiz.persistence.migrate`."""
