"""A small reader for the parts of a wasm binary that are checked before compiling it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from wasmwiz.problem_codes import ProblemCode

HEADER_SIZE = 8

_SECTION_TYPE = 1
_SECTION_IMPORT = 2
_SECTION_FUNCTION = 3
_SECTION_TABLE = 4
_SECTION_MEMORY = 5
_SECTION_EXPORT = 7
_SECTION_CODE = 10
_SECTION_DATA = 11

_KIND_FUNC = 0
_KIND_TABLE = 1
_KIND_MEMORY = 2
_KIND_GLOBAL = 3
_KIND_TAG = 4

_FORM_FUNC = 0x60
_REF_NULLABLE = 0x63
_REF_NON_NULL = 0x64


class ShapeBounds(Protocol):
    """The bounds `read_wasm_info` enforces while it reads (see models.InspectionLimits)."""

    @property
    def max_functions(self) -> int: ...
    @property
    def max_function_locals(self) -> int: ...
    @property
    def max_function_body_bytes(self) -> int: ...
    @property
    def max_data_segments(self) -> int: ...
    @property
    def max_types(self) -> int: ...
    @property
    def max_imports(self) -> int: ...
    @property
    def max_exports(self) -> int: ...
    @property
    def max_memories(self) -> int: ...
    @property
    def max_tables(self) -> int: ...


class TruncatedWasm(Exception):
    """The binary ends in the middle of a structure."""


class MalformedWasm(Exception):
    """The binary is not well-formed where this reader looked."""


class ShapeExceeded(Exception):
    """The module declares more than a bound allows; `code` names which bound."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(message)
        self.code = code


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
    # (parameter count, result count) of each type; None for a non-function (GC) type.
    func_types: list[tuple[int, int] | None] = field(default_factory=list)
    imported_function_types: list[int] = field(default_factory=list)
    function_count: int = 0
    # The exports named `_start` and `memory`: (kind, index), and where the function
    # section lies.
    start_export: tuple[int, int] | None = None
    memory_export: tuple[int, int] | None = None
    _function_section: tuple[int, int] | None = None

    def start_signature(self, data: bytes) -> tuple[int, int] | None:
        """(params, results) of the function exported as `_start`, None if not a function."""
        if self.start_export is None or self.start_export[0] != _KIND_FUNC:
            return None
        index = self.start_export[1]
        if index < len(self.imported_function_types):
            type_index = self.imported_function_types[index]
        else:
            index -= len(self.imported_function_types)
            if self._function_section is None or index >= self.function_count:
                return None
            cursor = _Cursor(data, *self._function_section)
            cursor.leb()
            for _ in range(index):
                cursor.leb()
            type_index = cursor.leb()
        if type_index >= len(self.func_types):
            return None
        return self.func_types[type_index]

    @property
    def exports_memory(self) -> bool:
        """Whether the module exports a memory named `memory`, as WASI preview 1 needs."""
        return self.memory_export is not None and self.memory_export[0] == _KIND_MEMORY

    @property
    def imports_functions(self) -> bool:
        return any(entry.is_function for entry in self.imports)

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


def read_wasm_info(data: bytes, bounds: ShapeBounds) -> WasmInfo:
    """Read a core-module binary whose 8-byte header was already checked.

    Raises TruncatedWasm when the binary is cut short, MalformedWasm when it is corrupt
    in a place this reader looks at, and ShapeExceeded when it declares more than
    `bounds` allow. Everything else is left to wasmtime's validator. Every section's
    declared count is checked against its bound before any entry is read, so a huge
    declared count costs nothing and the work is bounded by the bounds, not the input.
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
            _read_types(section, info, bounds)
        elif section_id == _SECTION_IMPORT:
            _read_imports(section, info, bounds)
        elif section_id == _SECTION_FUNCTION:
            info.function_count = _bounded_count(
                section, bounds.max_functions, ProblemCode.TOO_MANY_FUNCTIONS, "functions"
            )
            info._function_section = (start, start + size)
        elif section_id == _SECTION_TABLE:
            count = _bounded_count(
                section, bounds.max_tables, ProblemCode.TOO_MANY_TABLES, "tables"
            )
            _read_tables(section, info, count)
        elif section_id == _SECTION_MEMORY:
            count = _bounded_count(
                section, bounds.max_memories, ProblemCode.TOO_MANY_MEMORIES, "memories"
            )
            info.memories.extend(section.memory() for _ in range(count))
        elif section_id == _SECTION_EXPORT:
            _read_exports(section, info, bounds)
        elif section_id == _SECTION_CODE:
            _read_code(section, bounds)
        elif section_id == _SECTION_DATA:
            _bounded_count(section, bounds.max_data_segments, ProblemCode.TOO_MANY_DATA_SEGMENTS,
                           "data segments")  # fmt: skip
        top.pos = start + size
    return info


def _bounded_count(section: _Cursor, bound: int, code: ProblemCode, what: str) -> int:
    count = section.leb()
    if count > bound:
        raise ShapeExceeded(code, f"the module declares {count} {what}; the limit is {bound}")
    return count


def _read_types(section: _Cursor, info: WasmInfo, bounds: ShapeBounds) -> None:
    for _ in range(_bounded_count(section, bounds.max_types, ProblemCode.TOO_MANY_TYPES, "types")):
        if section.byte() != _FORM_FUNC:
            # Rec groups, subtypes, structs and arrays are all GC proposal; the rest of
            # the section cannot be read without it and the module is refused anyway.
            info.uses_gc_types = True
            return
        counts = []
        for _ in range(2):  # parameters, then results
            count = section.leb()
            for _ in range(count):
                section.value_type()
            counts.append(count)
        info.func_types.append((counts[0], counts[1]))


def _read_exports(section: _Cursor, info: WasmInfo, bounds: ShapeBounds) -> None:
    for _ in range(
        _bounded_count(section, bounds.max_exports, ProblemCode.TOO_MANY_EXPORTS, "exports")
    ):
        name = section.name()
        kind = section.byte()
        index = section.leb()
        if name == "_start":
            info.start_export = (kind, index)
        elif name == "memory":
            info.memory_export = (kind, index)


def _read_code(section: _Cursor, bounds: ShapeBounds) -> None:
    count = _bounded_count(
        section, bounds.max_functions, ProblemCode.TOO_MANY_FUNCTIONS, "functions"
    )
    max_body, max_locals = bounds.max_function_body_bytes, bounds.max_function_locals
    for index in range(count):
        body_size = section.leb()
        if body_size > max_body:
            raise ShapeExceeded(
                ProblemCode.FUNCTION_TOO_LARGE,
                f"function body {index} is {body_size} bytes; the limit is {max_body} bytes",
            )
        body_end = section.pos + body_size
        if body_end > section.end:
            raise MalformedWasm("a function body overruns the code section")
        body = _Cursor(section.data, section.pos, body_end)
        locals_total = 0
        for _ in range(body.leb()):
            locals_total += body.leb()
            if locals_total > max_locals:
                raise ShapeExceeded(
                    ProblemCode.TOO_MANY_LOCALS,
                    f"function body {index} declares more than {max_locals} locals",
                )
            body.value_type()
        section.pos = body_end


def _read_imports(section: _Cursor, info: WasmInfo, bounds: ShapeBounds) -> None:
    for _ in range(
        _bounded_count(section, bounds.max_imports, ProblemCode.TOO_MANY_IMPORTS, "imports")
    ):
        entry = ImportEntry(section.name(), section.name(), section.byte())
        info.imports.append(entry)
        if entry.kind == _KIND_FUNC:
            info.imported_function_types.append(section.leb())
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


def _read_tables(section: _Cursor, info: WasmInfo, count: int) -> None:
    for _ in range(count):
        if section.peek() == 0x40:
            # A table with an initializer expression: the sizes that follow cannot be
            # skipped without decoding instructions; wasmtime's own limits still apply.
            return
        section.value_type()
        info.table_min_elements.append(section.limits()[1])
