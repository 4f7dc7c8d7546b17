"""A streaming multipart/form-data reader that enforces size limits while the body arrives.

Starlette's own form parser spools file parts to disk without a size limit, so a 1 GB
upload would be written out before anyone could refuse it. This reader keeps parts in
memory and stops reading the moment a part or the whole body passes its limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from wasmwiz.errors import InvalidRequest, PayloadTooLarge, WasmWizError

_MAX_HEADER_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class FieldLimit:
    max_bytes: int
    too_large: Callable[[int], WasmWizError]


@dataclass(slots=True)
class FormPart:
    """One field as it arrived: its pieces are joined once, when `data` is first read.

    Pieces, not a growing bytearray: a 2 MB module would otherwise be copied as the
    buffer grows and once more into bytes, each copy into freshly faulted memory.
    """

    name: str
    filename: str | None
    content_type: str | None
    size: int = 0
    _pieces: list[bytes] = field(default_factory=list, repr=False)

    def append(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self.size += len(piece)

    @property
    def data(self) -> bytes:
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

    def __init__(self, limits: Mapping[str, FieldLimit]) -> None:
        self.limits = limits
        self.parts: dict[str, FormPart] = {}
        self._headers = _PartHeaders()
        self._current: FormPart | None = None
        self._current_limit: FieldLimit | None = None

    def on_part_begin(self) -> None:
        self._headers = _PartHeaders()
        self._current = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._headers.field_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers.value += data[start:end]
        if len(self._headers.value) > _MAX_HEADER_BYTES:
            raise InvalidRequest("A multipart header is too long.", code="invalid_form")

    def on_header_end(self) -> None:
        self._headers.raw[bytes(self._headers.field_name).lower()] = bytes(self._headers.value)
        self._headers.field_name = bytearray()
        self._headers.value = bytearray()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.raw.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidRequest("Each part needs a form-data name.", code="invalid_form")
        name = options[b"name"].decode("utf-8", "replace")
        if name not in self.limits:
            known = ", ".join(sorted(self.limits))
            raise InvalidRequest(
                f"Unknown form field {name!r}; the fields are: {known}.", code="unknown_field"
            )
        if name in self.parts:
            raise InvalidRequest(f"The field {name!r} was sent twice.", code="invalid_form")
        filename = options.get(b"filename")
        content_type = self._headers.raw.get(b"content-type")
        self._current = FormPart(
            name=name,
            filename=filename.decode("utf-8", "replace") if filename is not None else None,
            content_type=content_type.decode("latin-1") if content_type else None,
        )
        self._current_limit = self.limits[name]
        self.parts[name] = self._current

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is None or self._current_limit is None:
            return
        # A piece that is the whole chunk is kept as it is (slicing all of a bytes object
        # returns that object); otherwise this copies only the piece.
        self._current.append(data[start:end])
        if self._current.size > self._current_limit.max_bytes:
            raise self._current_limit.too_large(self._current_limit.max_bytes)


async def read_form(
    stream: AsyncIterator[bytes],
    content_type: str | None,
    limits: Mapping[str, FieldLimit],
    max_body_bytes: int,
) -> dict[str, FormPart]:
    """Parse a multipart body from `stream`; only the fields named in `limits` are accepted."""
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data" or b"boundary" not in options:
        raise InvalidRequest(
            "Send the request as multipart/form-data.", code="unsupported_media_type"
        )
    collector = _FormCollector(limits)
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
            received += len(chunk)
            if received > max_body_bytes:
                raise PayloadTooLarge(
                    f"The request body is larger than {max_body_bytes} bytes.",
                    code="request_too_large",
                )
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(
            f"The multipart body could not be parsed: {exc}", code="invalid_form"
        ) from None
    return collector.parts
