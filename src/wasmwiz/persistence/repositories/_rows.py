"""The affected-row count of an UPDATE or DELETE run through a session."""

from typing import Any, cast

from sqlalchemy.engine import CursorResult, Result


def rowcount(result: Result[Any]) -> int:
    # Session.execute() is typed to return Result; DML statements give a CursorResult.
    return cast("CursorResult[Any]", result).rowcount
