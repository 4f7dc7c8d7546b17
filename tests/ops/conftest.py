"""Fixtures for the operations tests, which drive servers from plain (sync) tests."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.app import Account, create_account
from tests.fixtures.database import run_outside_loop


@pytest.fixture
def ops_account(migrated_database_url: str) -> Account:
    """A pro-tier user and key, made without an event loop in the test's thread."""
    return run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
