"""The form reader bounds each part's headers: their names, values and number."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wasmwiz.errors import InvalidRequest, PayloadTooLarge
from wasmwiz.http_common.multipart import FieldLimit, read_form

pytestmark = pytest.mark.anyio

BOUNDARY = "b0undary"
LIMITS = {"wasm": FieldLimit(1024, lambda limit: PayloadTooLarge(f"over {limit}"))}


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1000):
        yield body[start : start + 1000]


def form(headers: list[bytes]) -> bytes:
    head = b"\r\n".join(headers)
    return b"--%s\r\n%s\r\n\r\nhello\r\n--%s--\r\n" % (BOUNDARY.encode(), head, BOUNDARY.encode())


async def read(headers: list[bytes]) -> bytes:
    parts = await read_form(
        chunks(form(headers)), f"multipart/form-data; boundary={BOUNDARY}", LIMITS, 1 << 20
    )
    return parts["wasm"].data


DISPOSITION = b'Content-Disposition: form-data; name="wasm"; filename="m.wat"'


async def test_a_part_with_ordinary_headers_is_read() -> None:
    assert await read([DISPOSITION, b"Content-Type: text/plain"]) == b"hello"


@pytest.mark.parametrize(
    "extra",
    [
        [b"X-" + b"n" * 300 + b": 1"],  # a long header name
        [b"X-Long: " + b"v" * 10_000],  # a long header value
        [b"X-%d: 1" % index for index in range(50)],  # too many headers
    ],
    ids=["name", "value", "count"],
)
async def test_oversized_part_headers_are_refused(extra: list[bytes]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await read([DISPOSITION, *extra])

    assert caught.value.code == "invalid_form"
