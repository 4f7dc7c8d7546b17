"""The cursor of a page listed newest first: where the last row shown stands, opaque.

Lists of stored modules, jobs, webhook endpoints and deliveries page by (created_at, id),
newest first; the cursor carries the last row's pair, base64url-encoded so that callers
treat it as a token, not as a date to edit.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from wasmwiz import errors
from wasmwiz.problem_codes import ProblemCode


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor carries; 422 `invalid_request` for one this service
    did not give."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("no time zone")
        return created_at, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.InvalidParameter(
            "`cursor` is not one this API gave out.", code=ProblemCode.INVALID_REQUEST
        ) from None
