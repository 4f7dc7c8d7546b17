"""A streaming multipart/form-data reader that enforces size limits while the body arrives.

Starlette's own form parser spools file parts to disk without a size limit, so a 1 GB
upload would be written out before anyone could refuse it. This reader keeps parts in
memory and stops reading the moment a part or the whole body passes its limit.

A payload field (one whose limit is above `BUFFER_FROM`: the module, stdin) that arrives
in more than one piece is written into one private anonymous mapping, each piece copied
in as it arrives and then let go: one copy of the field, never the pieces and a joined
copy at once. The mapping goes back to the system, not to malloc's heap, when the
request lets go of it. Its size is the field's limit, or the body's declared length when
that is smaller. For a declared length (charged to the memory budget when the first
piece is read), one mapping is made as the body begins, its pages put in place
(MAP_POPULATE) in one call, where writing would otherwise take them one page fault at a
time: on a worker thread for a large body, on the event loop's thread up to
POPULATE_HERE_UP_TO, where the hop would cost more than it saves (docs/performance.md).
The first payload field in pieces takes it, and a second one (stdin after the module)
has its own populated where it is made. Without a declared length (a chunked body),
pages are mapped as they are touched, so an unknown length never holds more than arrived.
"""

from __future__ import annotations

import asyncio
import mmap
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from wasmwiz.errors import InvalidRequest, PayloadTooLarge, WasmWizError
from wasmwiz.problem_codes import ProblemCode

# python-multipart (0.0.27 and later) also caps a part's header lines (size and count);
# these bound what this reader itself accumulates, whatever the parser lets through.
_MAX_HEADER_BYTES = 8 * 1024
_MAX_HEADER_NAME_BYTES = 256
# Fields allowed more than this are written into one mapping (see the module docstring);
# smaller ones (the JSON and number fields) keep their pieces and join them once.
BUFFER_FROM = 64 * 1024
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only
# Populating costs the thread that asks about 0.3 ms per MiB here, and a hop to a worker
# thread and back about as much again (docs/performance.md): the event loop's thread
# populates mappings up to this size itself, a worker thread larger ones.
POPULATE_HERE_UP_TO = 2 * 1024 * 1024


def private_mapping(size: int, *, populate: bool = False) -> mmap.mmap:
    """An anonymous mapping of this process alone (not shared memory, whose page faults
    cost more), with its pages in place when `populate`."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (_POPULATE if populate else 0)
    return mmap.mmap(-1, size, flags=flags)


async def _populated_mapping(size: int) -> mmap.mmap:
    """A populated private mapping of `size` bytes: made on this thread up to
    POPULATE_HERE_UP_TO, where waiting for a worker thread would cost the request more
    than populating takes, and on a worker thread above, so a large body's pages never
    hold up the event loop."""
    if size <= POPULATE_HERE_UP_TO:
        return private_mapping(size, populate=True)
    return await asyncio.to_thread(private_mapping, size, populate=True)


@dataclass(frozen=True, slots=True)
class FieldLimit:
    """A field's bound. A `repeatable` field may come up to `max_count` times; its
    `max_bytes` bounds all its parts together, and `too_many` refuses one part too many."""

    max_bytes: int
    too_large: Callable[[int], WasmWizError]
    repeatable: bool = False
    max_count: int = 1
    too_many: Callable[[int], WasmWizError] | None = None


@dataclass(slots=True)
class FormPart:
    """One field as it arrived.

    A field in one piece keeps it (no copy). A field in several pieces is joined once,
    when `data` is first read; with a `capacity` (a payload field: the most it may hold)
    the pieces go instead into one mapping of that size as they arrive, and `contents`
    is a view of it. Never a growing bytearray: a 2 MB module would be copied as the
    buffer grows.
    """

    name: str
    filename: str | None
    content_type: str | None
    capacity: int = 0
    size: int = 0
    # A repeatable field's later parts, in order, on its first part.
    more: list[FormPart] = field(default_factory=list, repr=False)
    _pieces: list[bytes] = field(default_factory=list, repr=False)
    _buffer: mmap.mmap | None = field(default=None, repr=False)

    @property
    def needs_buffer(self) -> bool:
        """A payload field about to take its second piece: it needs its mapping now."""
        return self._buffer is None and self.capacity > 0 and bool(self._pieces)

    def use_buffer(self, buffer: mmap.mmap) -> None:
        """Move into `buffer` (at least `capacity` long), the piece held so far first."""
        self._buffer = buffer
        buffer.write(self._pieces.pop())

    def append(self, data: bytes, start: int, end: int) -> None:
        """Add `data[start:end]`; the caller has checked that it fits within `capacity`,
        and given a payload field its buffer when it `needs_buffer` (without one, the
        pieces are kept and joined when read)."""
        if self._buffer is not None:
            self._buffer.write(memoryview(data)[start:end])
        else:
            # A piece that is the whole chunk is kept as it is (slicing all of a bytes
            # object returns that object); otherwise this copies only the piece.
            self._pieces.append(data[start:end])
        self.size += end - start

    @property
    def contents(self) -> bytes | memoryview:
        """The field's bytes, not copied: a view of the mapping, or the one piece."""
        if self._buffer is not None:
            return memoryview(self._buffer)[: self.size]
        return self.data

    @property
    def data(self) -> bytes:
        """The field's bytes as one bytes object (a copy, for a field in a mapping)."""
        if self._buffer is not None:
            return self._buffer[: self.size]
        if len(self._pieces) != 1 or type(self._pieces[0]) is not bytes:
            self._pieces = [b"".join(self._pieces)]  # also turns a bytearray into bytes
        return self._pieces[0]


@dataclass(slots=True)
class _PartHeaders:
    raw: dict[bytes, bytes] = field(default_factory=dict)
    field_name: bytearray = field(default_factory=bytearray)
    value: bytearray = field(default_factory=bytearray)


class _FormCollector:
    """Parser callbacks that collect parts and raise the moment a limit is passed."""

    def __init__(self, limits: Mapping[str, FieldLimit], body_bytes: int | None = None) -> None:
        self.limits = limits
        self.body_bytes = body_bytes
        # Made as the body began to arrive: the first payload field in pieces takes it.
        self.spare: mmap.mmap | None = None
        self.parts: dict[str, FormPart] = {}
        self._headers = _PartHeaders()
        self._current: FormPart | None = None
        self._current_limit: FieldLimit | None = None
        self._field_bytes: dict[str, int] = {}  # each field's bytes, all its parts together

    def on_part_begin(self) -> None:
        self._headers = _PartHeaders()
        self._current = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._headers.field_name += data[start:end]
        if len(self._headers.field_name) > _MAX_HEADER_NAME_BYTES:
            raise InvalidRequest(
                "A multipart header name is too long.", code=ProblemCode.INVALID_FORM
            )

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers.value += data[start:end]
        if len(self._headers.value) > _MAX_HEADER_BYTES:
            raise InvalidRequest("A multipart header is too long.", code=ProblemCode.INVALID_FORM)

    def on_header_end(self) -> None:
        self._headers.raw[bytes(self._headers.field_name).lower()] = bytes(self._headers.value)
        self._headers.field_name = bytearray()
        self._headers.value = bytearray()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.raw.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidRequest("Each part needs a form-data name.", code=ProblemCode.INVALID_FORM)
        name = options[b"name"].decode("utf-8", "replace")
        if name not in self.limits:
            known = ", ".join(sorted(self.limits))
            raise InvalidRequest(
                f"Unknown form field {name!r}; the fields are: {known}.",
                code=ProblemCode.UNKNOWN_FIELD,
            )
        limit = self.limits[name]
        first = self.parts.get(name)
        if first is not None and not limit.repeatable:
            raise InvalidRequest(
                f"The field {name!r} was sent twice.", code=ProblemCode.INVALID_FORM
            )
        if first is not None and len(first.more) + 1 >= limit.max_count:
            assert limit.too_many is not None
            raise limit.too_many(limit.max_count)
        filename = options.get(b"filename")
        content_type = self._headers.raw.get(b"content-type")
        # A repeatable field's parts are joined when read, never given a mapping each.
        capacity = limit.max_bytes if limit.max_bytes > BUFFER_FROM and not limit.repeatable else 0
        if capacity and self.body_bytes is not None:
            capacity = min(capacity, self.body_bytes)  # no part is longer than its body
        self._current = FormPart(
            name=name,
            filename=filename.decode("utf-8", "replace") if filename is not None else None,
            content_type=content_type.decode("latin-1") if content_type else None,
            capacity=capacity,
        )
        self._current_limit = limit
        if first is None:
            self.parts[name] = self._current
        else:
            first.more.append(self._current)
        self._field_bytes.setdefault(name, 0)

    def _map_buffer(self, size: int) -> mmap.mmap:
        spare, self.spare = self.spare, None
        if spare is not None and len(spare) >= size:
            return spare
        if spare is not None:
            spare.close()
        return private_mapping(size, populate=self.body_bytes is not None)

    def close(self) -> None:
        """Let go of a spare mapping no field needed (every field came in one piece)."""
        if self.spare is not None:
            self.spare.close()
            self.spare = None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is None or self._current_limit is None:
            return
        # Refused before the piece is kept: a field never holds more than its limit.
        name = self._current.name
        total = self._field_bytes[name] + end - start
        if total > self._current_limit.max_bytes:
            raise self._current_limit.too_large(self._current_limit.max_bytes)
        self._field_bytes[name] = total
        if self._current.needs_buffer:
            self._current.use_buffer(self._map_buffer(self._current.capacity))
        self._current.append(data, start, end)


async def read_form(
    stream: AsyncIterator[bytes],
    content_type: str | None,
    limits: Mapping[str, FieldLimit],
    max_body_bytes: int,
    declared_bytes: int | None = None,
) -> dict[str, FormPart]:
    """Parse a multipart body from `stream`; only the fields named in `limits` are accepted.

    `declared_bytes`, the body's Content-Length, sizes the payload fields' mappings; a
    body longer than it is refused (HTTP framing never delivers one).
    """
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data" or b"boundary" not in options:
        raise InvalidRequest(
            "Send the request as multipart/form-data.", code=ProblemCode.UNSUPPORTED_MEDIA_TYPE
        )
    payload_limit = max((limit.max_bytes for limit in limits.values()), default=0)
    spare_bytes = min(declared_bytes or 0, payload_limit)
    collector = _FormCollector(limits, declared_bytes)
    parser = MultipartParser(
        options[b"boundary"],
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
        },
    )
    received = 0
    try:
        async for chunk in stream:
            if spare_bytes > BUFFER_FROM and not received:
                # Not before the first piece: reading it charged the body to the memory
                # budget (http_common/request_limits.py), which these pages are part of.
                collector.spare = await _populated_mapping(spare_bytes)
            received += len(chunk)
            if received > max_body_bytes:
                raise PayloadTooLarge(
                    f"The request body is larger than {max_body_bytes} bytes.",
                    code=ProblemCode.REQUEST_TOO_LARGE,
                )
            if declared_bytes is not None and received > declared_bytes:
                raise InvalidRequest(
                    "The request body is longer than its Content-Length.",
                    code=ProblemCode.INVALID_FORM,
                )
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(
            f"The multipart body could not be parsed: {exc}", code=ProblemCode.INVALID_FORM
        ) from None
    finally:
        collector.close()
    return collector.parts
