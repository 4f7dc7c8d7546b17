"""A payload field arriving in pieces is written into one buffer, never joined from them."""

from __future__ import annotations

import gc
import mmap
import os
from collections.abc import AsyncIterator

import pytest

from wasmwiz.errors import InvalidRequest, PayloadTooLarge
from wasmwiz.http_common.multipart import BUFFER_FROM, FieldLimit, FormPart, read_form

pytestmark = pytest.mark.anyio

BOUNDARY = "b0undary"
PAYLOAD_LIMIT = 4 * BUFFER_FROM
LIMITS = {
    "wasm": FieldLimit(PAYLOAD_LIMIT, lambda limit: PayloadTooLarge(f"over {limit}", code="big")),
    "args": FieldLimit(BUFFER_FROM, lambda limit: InvalidRequest(f"over {limit}", code="long")),
    "input": FieldLimit(2 * BUFFER_FROM, lambda limit: PayloadTooLarge(f"over {limit}", code="in")),
}


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def form(**fields: bytes) -> bytes:
    body = b""
    for name, value in fields.items():
        body += b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
            BOUNDARY.encode(),
            name.encode(),
            value,
        )
    return body + b"--%s--\r\n" % BOUNDARY.encode()


async def read(
    body: bytes, chunk: int = 4096, declared: int | None = None
) -> dict[str, bytes | memoryview]:
    parts = await read_form(
        chunks(body, chunk),
        f"multipart/form-data; boundary={BOUNDARY}",
        LIMITS,
        1 << 22,
        declared_bytes=declared,
    )
    return {name: part.contents for name, part in parts.items()}


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
async def test_a_payload_in_any_pieces_reads_back_whole(chunk: int) -> None:
    payload = os.urandom(PAYLOAD_LIMIT // 3) if chunk > 1 else os.urandom(5000)
    fields = await read(form(wasm=payload, args=b'["a"]'), chunk)

    assert bytes(fields["wasm"]) == payload
    assert fields["args"] == b'["a"]'


async def test_a_payload_of_exactly_its_limit_fills_the_buffer() -> None:
    payload = os.urandom(PAYLOAD_LIMIT)
    fields = await read(form(wasm=payload))

    assert len(fields["wasm"]) == PAYLOAD_LIMIT
    assert bytes(fields["wasm"]) == payload


async def test_one_byte_over_the_limit_is_refused_with_the_fields_code() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await read(form(wasm=b"x" * (PAYLOAD_LIMIT + 1)))

    assert caught.value.code == "big"


async def test_a_payload_in_one_piece_is_that_piece_not_a_copy() -> None:
    # The hot path (a small module in one chunk) allocates no buffer.
    fields = await read(form(wasm=b"(module)"), chunk=1 << 20)

    assert type(fields["wasm"]) is bytes
    assert fields["wasm"] == b"(module)"


async def test_a_small_field_keeps_its_pieces_and_joins_them() -> None:
    fields = await read(form(args=b'["' + b"a" * 3000 + b'"]'), chunk=100)

    assert type(fields["args"]) is bytes
    assert fields["args"] == b'["' + b"a" * 3000 + b'"]'


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
async def test_with_a_declared_length_every_payload_reads_back_whole(chunk: int) -> None:
    # The first payload field in pieces takes the mapping made before the body was read;
    # a second one maps its own.
    module, stdin = os.urandom(PAYLOAD_LIMIT // 2), os.urandom(2 * BUFFER_FROM)
    body = form(wasm=module, input=stdin, args=b'["a"]')
    fields = await read(body, chunk, declared=len(body))

    assert bytes(fields["wasm"]) == module
    assert bytes(fields["input"]) == stdin
    assert fields["args"] == b'["a"]'


async def test_a_payload_as_long_as_a_short_declared_body_fits_its_mapping() -> None:
    # The mapping is the declared length when that is less than the field's limit.
    payload = os.urandom(PAYLOAD_LIMIT // 2)
    body = form(wasm=payload)
    fields = await read(body, 1000, declared=len(body))

    assert bytes(fields["wasm"]) == payload


async def test_a_body_longer_than_it_declared_is_refused() -> None:
    body = form(wasm=os.urandom(3 * BUFFER_FROM))
    with pytest.raises(InvalidRequest) as caught:
        await read(body, declared=len(body) // 2)

    assert caught.value.code == "invalid_form"


async def test_parts_are_freed_by_reference_counting_not_left_to_the_collector() -> None:
    # A part's mapping holds megabytes the cyclic collector cannot see: if a part were in
    # a reference cycle, a burst of uploads would hold them all until it happened to run.
    body = form(wasm=os.urandom(3 * BUFFER_FROM), input=os.urandom(2 * BUFFER_FROM))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        fields = await read(body, 4096, declared=len(body))
        assert len(fields["wasm"]) == 3 * BUFFER_FROM
        del fields
        gc.collect()
        left = [item for item in gc.garbage if isinstance(item, FormPart | mmap.mmap)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
