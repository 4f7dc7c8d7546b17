"""Builds wasm binaries byte by byte, for shapes WebAssembly text makes slow or impossible."""

from __future__ import annotations


def leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + leb(len(payload)) + payload


def vector(items: list[bytes]) -> bytes:
    return leb(len(items)) + b"".join(items)


def module(bodies: list[bytes], *, data_segments: int = 0) -> bytes:
    """A module of `bodies` (each a full function body), all of type () -> ().

    Function 0 is exported as `_start`; one page of memory is exported as `memory`.
    """
    parts = [
        b"\0asm\x01\0\0\0",
        section(1, vector([b"\x60\x00\x00"])),
        section(3, vector([leb(0)] * len(bodies))),
        section(5, vector([b"\x00\x01"])),
        section(7, vector([b"\x06_start\x00" + leb(0), b"\x06memory\x02\x00"])),
        section(10, vector([leb(len(body)) + body for body in bodies])),
    ]
    if data_segments:
        segment = b"\x00\x41\x00\x0b\x01\x2a"  # active, memory 0, offset 0, one byte
        parts.append(section(11, vector([segment] * data_segments)))
    return b"".join(parts)


EMPTY_BODY = b"\x00\x0b"


def many_functions(count: int) -> bytes:
    return module([EMPTY_BODY] * count)


def looping_functions(count: int, loops: int = 3) -> bytes:
    """`count` functions of `loops` small counting loops each: about 50 bytes a function,
    and several times an empty function's cost to compile."""
    counting_loop = b"\x03\x40\x20\x00\x41\x01\x6a\x22\x00\x41\x0a\x48\x0d\x00\x0b"
    return module([b"\x01\x01\x7f" + counting_loop * loops + b"\x0b"] * count)


def many_locals(count: int) -> bytes:
    return module([b"\x01" + leb(count) + b"\x7f\x0b"])


def straight_line(operations: int) -> bytes:
    """One function of `operations` x (local.get 0; i32.const 1; i32.add; local.set 0)."""
    return module([b"\x01\x01\x7f" + b"\x20\x00\x41\x01\x6a\x21\x00" * operations + b"\x0b"])


def nested_blocks(depth: int) -> bytes:
    return module([b"\x00" + b"\x02\x40" * depth + b"\x0b" * depth + b"\x0b"])


def big_br_table(targets: int) -> bytes:
    """A br_table with `targets` entries, all to the same block, taken once."""
    body = b"\x00\x02\x40\x41\x00\x0e" + leb(targets) + b"\x00" * targets + b"\x00\x0b\x0b"
    return module([body])
