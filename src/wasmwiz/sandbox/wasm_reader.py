"""A small reader for the parts of a wasm binary that are checked before compiling it."""

from __future__ import annotations

from dataclasses import dataclass, field

HEADER_SIZE = 8

_SECTION_TYPE = 1
_SECTION_IMPORT = 2
_SECTION_TABLE = 4
_SECTION_MEMORY = 5

_KIND_FUNC = 0
_KIND_TABLE = 1
_KIND_MEMORY = 2
_KIND_GLOBAL = 3
_KIND_TAG = 4

_FORM_FUNC = 0x60
_REF_NULLABLE = 0x63
_REF_NON_NULL = 0x64


class TruncatedWasm(Exception):
    """The binary ends in the middle of a structure."""


class MalformedWasm(Exception):
    """The binary is not well-formed where this reader looked."""


@dataclass(frozen=True, slots=True)
class ImportEntry:
    module: str
    name: str
    kind: int

    @property
    def is_function(self) -> bool:
        return self.kind == _KIND_FUNC

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class MemoryDecl:
    min_pages: int
    shared: bool
    memory64: bool
    page_size: int = 65536


@dataclass(slots=True)
class WasmInfo:
    """What the reader found: imports, memories (imported and defined), tables, GC types."""

    imports: list[ImportEntry] = field(default_factory=list)
    memories: list[MemoryDecl] = field(default_factory=list)
    table_min_elements: list[int] = field(default_factory=list)
    uses_gc_types: bool = False

    @property
    def min_memory_bytes(self) -> int:
        return max((m.min_pages * m.page_size for m in self.memories), default=0)


class _Cursor:
    def __init__(self, data: bytes, pos: int, end: int, *, top_level: bool = False) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.top_level = top_level

    def _need(self, count: int) -> None:
        if self.pos + count > self.end:
            # Running out of the whole binary is truncation; overrunning a section whose
            # declared size fits in the binary is corruption.
            if self.top_level:
                raise TruncatedWasm
            raise MalformedWasm("a section ends in the middle of an entry")

    def byte(self) -> int:
        self._need(1)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def peek(self) -> int:
        self._need(1)
        return self.data[self.pos]

    def leb(self, max_bytes: int = 5) -> int:
        result = 0
        for index in range(max_bytes):
            value = self.byte()
            result |= (value & 0x7F) << (7 * index)
            if not value & 0x80:
                return result
        raise MalformedWasm("LEB128 integer too long")

    def name(self) -> str:
        length = self.leb()
        self._need(length)
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedWasm("a name is not valid UTF-8") from None

    def value_type(self) -> None:
        if self.byte() in (_REF_NULLABLE, _REF_NON_NULL):
            self.leb()  # heap type, an s33

    def limits(self) -> tuple[int, int]:
        """Read limits; returns (flags, minimum). Maximum and page size are skipped."""
        flags = self.byte()
        minimum = self.leb(10)
        if flags & 0x01:
            self.leb(10)
        return flags, minimum

    def memory(self) -> MemoryDecl:
        flags, minimum = self.limits()
        page_size = 65536
        if flags & 0x08:  # custom-page-sizes proposal: log2 of the page size follows
            page_size = 1 << min(self.leb(), 16)
        return MemoryDecl(minimum, bool(flags & 0x02), bool(flags & 0x04), page_size)


def read_wasm_info(data: bytes) -> WasmInfo:
    """Read a core-module binary whose 8-byte header was already checked.

    Raises TruncatedWasm when the binary is cut short and MalformedWasm when it is corrupt
    in a place this reader looks at. Everything else is left to wasmtime's validator.
    """
    info = WasmInfo()
    top = _Cursor(data, HEADER_SIZE, len(data), top_level=True)
    while top.pos < len(data):
        section_id = top.byte()
        size = top.leb()
        start = top.pos
        if start + size > len(data):
            raise TruncatedWasm
        section = _Cursor(data, start, start + size)
        if section_id == _SECTION_TYPE:
            info.uses_gc_types = _has_gc_types(section)
        elif section_id == _SECTION_IMPORT:
            _read_imports(section, info)
        elif section_id == _SECTION_TABLE:
            _read_tables(section, info)
        elif section_id == _SECTION_MEMORY:
            info.memories.extend(section.memory() for _ in range(section.leb()))
        top.pos = start + size
    return info


def _has_gc_types(section: _Cursor) -> bool:
    for _ in range(section.leb()):
        if section.byte() != _FORM_FUNC:
            return True  # rec groups, subtypes, structs and arrays are all GC proposal
        for _ in range(2):  # parameters, then results
            for _ in range(section.leb()):
                section.value_type()
    return False


def _read_imports(section: _Cursor, info: WasmInfo) -> None:
    for _ in range(section.leb()):
        entry = ImportEntry(section.name(), section.name(), section.byte())
        info.imports.append(entry)
        if entry.kind == _KIND_FUNC:
            section.leb()
        elif entry.kind == _KIND_MEMORY:
            info.memories.append(section.memory())
        elif entry.kind == _KIND_TABLE:
            section.value_type()
            info.table_min_elements.append(section.limits()[1])
        elif entry.kind == _KIND_GLOBAL:
            section.value_type()
            section.byte()
        elif entry.kind == _KIND_TAG:
            section.byte()
            section.leb()
        else:
            raise MalformedWasm(f"unknown import kind {entry.kind}")


def _read_tables(section: _Cursor, info: WasmInfo) -> None:
    for _ in range(section.leb()):
        if section.peek() == 0x40:
            # A table with an initializer expression: the sizes that follow cannot be
            # skipped without decoding instructions; wasmtime's own limits still apply.
            return
        section.value_type()
        info.table_min_elements.append(section.limits()[1])
