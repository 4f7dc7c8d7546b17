"""Fixtures for the logging and metrics tests: the operations suite's account."""

from tests.ops.conftest import ops_account

__all__ = ["ops_account"]
