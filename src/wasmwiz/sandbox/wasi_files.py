"""WASI preview 1's file calls, served from a run's in-memory directory (memfs).

A run with files gets these host functions in place of wasmtime's: every `fd_*` and
`path_*` call, `poll_oneoff` and the `sock_*` calls (which only ever see EBADF or
ENOTSOCK), so the descriptor table is ours alone. Descriptors 0, 1 and 2 are stdin
(the request's bytes), stdout and stderr (captured under the output cap, as in runs
without files), and 3 is the run's directory, preopened at `/`. Nothing else of the host
is reachable: there is no host path anywhere in this module.

Where WASI leaves a choice, the answers follow wasmtime's own preview 1 implementation
(the suite's reference runtime): `.` and `..` lead `fd_readdir`'s entries; rights are
reported from how a file was opened (read, write) and only those two are enforced (EBADF,
as wasmtime does); `fd_fdstat_set_rights` and `fd_allocate` are ENOTSUP; a symlink with an
absolute target, or `..` past the directory a lookup starts from, is EPERM; reading or
writing a directory's descriptor is EBADF.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import wasmtime

from wasmwiz.sandbox import memfs, wasi_host
from wasmwiz.sandbox.guest import GuestFault, GuestMemory, RunState
from wasmwiz.sandbox.memfs import Directory, File, FsError, MemoryFileSystem, Node, Symlink

WASI = wasi_host.WASI

SUCCESS = 0
BADF = memfs.BADF
ILSEQ = 25
INVAL = memfs.INVAL
ISDIR = memfs.ISDIR
MFILE = 33
NAMETOOLONG = memfs.NAMETOOLONG
NOENT = memfs.NOENT
NOTDIR = memfs.NOTDIR
NOTSOCK = 57
NOTSUP = 58
SPIPE = 70
FAULT = 21
EXIST = memfs.EXIST
LOOP = memfs.LOOP

FILETYPE_UNKNOWN = 0
FILETYPE_CHARACTER_DEVICE = 2

# Rights (a bit each, in WASI's order).
RIGHT_FD_DATASYNC = 1 << 0
RIGHT_FD_READ = 1 << 1
RIGHT_FD_SEEK = 1 << 2
RIGHT_FD_FDSTAT_SET_FLAGS = 1 << 3
RIGHT_FD_SYNC = 1 << 4
RIGHT_FD_TELL = 1 << 5
RIGHT_FD_WRITE = 1 << 6
RIGHT_FD_ADVISE = 1 << 7
RIGHT_FD_ALLOCATE = 1 << 8
RIGHT_FD_READDIR = 1 << 14
RIGHT_FD_FILESTAT_GET = 1 << 21
RIGHT_FD_FILESTAT_SET_SIZE = 1 << 22
RIGHT_FD_FILESTAT_SET_TIMES = 1 << 23
RIGHT_POLL_FD_READWRITE = 1 << 27
ALL_RIGHTS = (1 << 30) - 1
FILE_RIGHTS = (
    RIGHT_FD_DATASYNC | RIGHT_FD_READ | RIGHT_FD_SEEK | RIGHT_FD_FDSTAT_SET_FLAGS
    | RIGHT_FD_SYNC | RIGHT_FD_TELL | RIGHT_FD_WRITE | RIGHT_FD_ADVISE | RIGHT_FD_ALLOCATE
    | RIGHT_FD_FILESTAT_GET | RIGHT_FD_FILESTAT_SET_SIZE | RIGHT_FD_FILESTAT_SET_TIMES
    | RIGHT_POLL_FD_READWRITE
)  # fmt: skip
DIRECTORY_RIGHTS = ALL_RIGHTS & ~(
    RIGHT_FD_READ | RIGHT_FD_SEEK | RIGHT_FD_TELL | RIGHT_FD_WRITE | RIGHT_FD_ADVISE
    | RIGHT_FD_ALLOCATE | RIGHT_FD_FILESTAT_SET_SIZE | RIGHT_POLL_FD_READWRITE
)  # fmt: skip

LOOKUP_SYMLINK_FOLLOW = 1
OFLAGS_CREAT = 1
OFLAGS_DIRECTORY = 2
OFLAGS_EXCL = 4
OFLAGS_TRUNC = 8
FDFLAGS_APPEND = 1
FDFLAGS_NONBLOCK = 4
FSTFLAGS_ATIM = 1
FSTFLAGS_ATIM_NOW = 2
FSTFLAGS_MTIM = 4
FSTFLAGS_MTIM_NOW = 8
WHENCE_SET, WHENCE_CUR, WHENCE_END = 0, 1, 2

MAX_DESCRIPTORS = 1024
MAX_PATH_BYTES = 4096
MAX_IO_BYTES = 64 * 1024 * 1024  # one read's copy, whatever the iovecs claim

_FILESTAT = struct.Struct("<QQB7xQQQQQ")
_FDSTAT = struct.Struct("<BxH4xQQ")
_PRESTAT = struct.Struct("<B3xI")
_DIRENT = struct.Struct("<QQIB3x")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_IOVEC = struct.Struct("<II")
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF

STDIN, STDOUT, STDERR, REGULAR, DIRECTORY = range(5)

HostCall = Callable[[RunState, "FileTable", GuestMemory, list[int]], int]


class Descriptor:
    __slots__ = ("append", "kind", "node", "nonblock", "offset", "preopen", "readable",
                 "writable")  # fmt: skip

    def __init__(
        self,
        kind: int,
        node: Node | None = None,
        *,
        readable: bool = False,
        writable: bool = False,
        append: bool = False,
        preopen: str | None = None,
    ) -> None:
        self.kind = kind
        self.node = node
        self.readable = readable
        self.writable = writable
        self.append = append
        self.nonblock = False
        self.offset = 0
        self.preopen = preopen


class FileTable:
    """A run's descriptors over its directory, and its stdin."""

    def __init__(self, fs: MemoryFileSystem, stdin: bytes | memoryview) -> None:
        self.fs = fs
        self.stdin = bytes(stdin)
        self.stdin_offset = 0
        self.descriptors: dict[int, Descriptor] = {
            0: Descriptor(STDIN, readable=True),
            1: Descriptor(STDOUT, writable=True),
            2: Descriptor(STDERR, writable=True),
            3: Descriptor(DIRECTORY, fs.root, readable=True, preopen="/"),
        }

    def get(self, fd: int) -> Descriptor:
        descriptor = self.descriptors.get(fd)
        if descriptor is None:
            raise FsError(BADF)
        return descriptor

    def directory(self, fd: int) -> Directory:
        descriptor = self.get(fd)
        if descriptor.kind != DIRECTORY or not isinstance(descriptor.node, Directory):
            raise FsError(NOTDIR)
        return descriptor.node

    def file(self, fd: int) -> tuple[Descriptor, File]:
        descriptor = self.get(fd)
        if descriptor.kind != REGULAR or not isinstance(descriptor.node, File):
            raise FsError(BADF)
        return descriptor, descriptor.node

    def add(self, descriptor: Descriptor) -> int:
        if len(self.descriptors) >= MAX_DESCRIPTORS:
            raise FsError(MFILE)
        fd = 0
        while fd in self.descriptors:
            fd += 1
        self.descriptors[fd] = descriptor
        if isinstance(descriptor.node, File):
            descriptor.node.open_count += 1
        return fd

    def close(self, fd: int) -> None:
        descriptor = self.descriptors.pop(fd)
        node = descriptor.node
        if isinstance(node, File):
            node.open_count -= 1
            if node.nlink == 0 and node.open_count == 0:
                self.fs.forget(node)


def install(linker: wasmtime.Linker) -> list[Any]:
    """Shadow every file call of WASI preview 1 with the functions below (after
    wasi_host.install on the same linker). Returns what must be kept alive."""
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    keep_alive: list[Any] = []
    for name, (params, impl) in _definitions(i32, i64).items():
        func_type = wasmtime.FuncType(params, [i32])
        widths = [64 if p == i64 else 32 for p in params]
        callback = wasi_host.trampoline(_with_errno(impl), widths)
        wasi_host.define(linker, name, func_type, callback)
        keep_alive += [callback, func_type]
    return keep_alive


def _definitions(i32: Any, i64: Any) -> dict[str, tuple[list[Any], Any]]:
    return {
        "fd_advise": ([i32, i64, i64, i32], fd_advise),
        "fd_allocate": ([i32, i64, i64], fd_allocate),
        "fd_close": ([i32], fd_close),
        "fd_datasync": ([i32], fd_sync),
        "fd_fdstat_get": ([i32, i32], fd_fdstat_get),
        "fd_fdstat_set_flags": ([i32, i32], fd_fdstat_set_flags),
        "fd_fdstat_set_rights": ([i32, i64, i64], fd_fdstat_set_rights),
        "fd_filestat_get": ([i32, i32], fd_filestat_get),
        "fd_filestat_set_size": ([i32, i64], fd_filestat_set_size),
        "fd_filestat_set_times": ([i32, i64, i64, i32], fd_filestat_set_times),
        "fd_pread": ([i32, i32, i32, i64, i32], fd_pread),
        "fd_prestat_get": ([i32, i32], fd_prestat_get),
        "fd_prestat_dir_name": ([i32, i32, i32], fd_prestat_dir_name),
        "fd_pwrite": ([i32, i32, i32, i64, i32], fd_pwrite),
        "fd_read": ([i32, i32, i32, i32], fd_read),
        "fd_readdir": ([i32, i32, i32, i64, i32], fd_readdir),
        "fd_renumber": ([i32, i32], fd_renumber),
        "fd_seek": ([i32, i64, i32, i32], fd_seek),
        "fd_sync": ([i32], fd_sync),
        "fd_tell": ([i32, i32], fd_tell),
        "fd_write": ([i32, i32, i32, i32], fd_write),
        "path_create_directory": ([i32, i32, i32], path_create_directory),
        "path_filestat_get": ([i32, i32, i32, i32, i32], path_filestat_get),
        "path_filestat_set_times": (
            [i32, i32, i32, i32, i64, i64, i32],
            path_filestat_set_times,
        ),
        "path_link": ([i32, i32, i32, i32, i32, i32, i32], path_link),
        "path_open": ([i32, i32, i32, i32, i32, i64, i64, i32, i32], path_open),
        "path_readlink": ([i32, i32, i32, i32, i32, i32], path_readlink),
        "path_remove_directory": ([i32, i32, i32], path_remove_directory),
        "path_rename": ([i32, i32, i32, i32, i32, i32], path_rename),
        "path_symlink": ([i32, i32, i32, i32, i32], path_symlink),
        "path_unlink_file": ([i32, i32, i32], path_unlink_file),
        "poll_oneoff": ([i32, i32, i32, i32], poll_oneoff),
        "sock_accept": ([i32, i32, i32], sock_call),
        "sock_recv": ([i32, i32, i32, i32, i32, i32], sock_call),
        "sock_send": ([i32, i32, i32, i32, i32], sock_call),
        "sock_shutdown": ([i32, i32], sock_call),
    }


def _with_errno(impl: Any) -> Any:
    def call(state: RunState, memory: GuestMemory, args: list[int]) -> int:
        table = state.files
        if table is None:  # a files linker used for a run without files: a host bug
            raise RuntimeError("a file call in a run without a directory")
        try:
            result: int = impl(state, table, memory, args)
            return result
        except FsError as error:
            return error.errno
        except GuestFault:
            return FAULT

    return call


# -- helpers -----------------------------------------------------------------------------


def _path(memory: GuestMemory, ptr: int, length: int) -> str:
    if length > MAX_PATH_BYTES:
        raise FsError(NAMETOOLONG)
    raw = memory.read(ptr, length)
    if b"\0" in raw:
        raise FsError(INVAL)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FsError(ILSEQ) from None


def _iovecs(memory: GuestMemory, ptr: int, count: int) -> list[tuple[int, int]]:
    if count > wasi_host.IOV_MAX:
        raise FsError(INVAL)
    vectors = list(_IOVEC.iter_unpack(memory.read(ptr, count * _IOVEC.size)))
    memory.require_spans(vectors)
    return vectors


def _filestat(node: Node) -> bytes:
    return _FILESTAT.pack(memfs.DEVICE_ID, node.ino, node.filetype, node.nlink, node.size,
                          node.atim, node.mtim, node.ctim)  # fmt: skip


def _now(state: RunState) -> int:
    return wasi_host.realtime_ns(state)


def _read_into(memory: GuestMemory, vectors: list[tuple[int, int]], data: bytes) -> int:
    done = 0
    for ptr, length in vectors:
        if done >= len(data):
            break
        piece = data[done : done + length]
        memory.write(ptr, piece)
        done += len(piece)
    return done


def _gather(memory: GuestMemory, vectors: list[tuple[int, int]]) -> bytes:
    return b"".join(memory.read(ptr, length) for ptr, length in vectors if length)


def _io_size(vectors: list[tuple[int, int]]) -> int:
    return min(MAX_IO_BYTES, sum(length for _, length in vectors))


def _signed64(value: int) -> int:
    return value - (1 << 64) if value & (1 << 63) else value


# -- descriptors -------------------------------------------------------------------------


def fd_read(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, iovs, count, nread_ptr = args
    vectors = _iovecs(memory, iovs, count)
    memory.require(nread_ptr, 4)
    descriptor = table.get(fd)
    wanted = _io_size(vectors)
    if descriptor.kind == STDIN:
        data = table.stdin[table.stdin_offset : table.stdin_offset + wanted]
        table.stdin_offset += len(data)
    else:
        descriptor, file = table.file(fd)
        if not descriptor.readable:
            raise FsError(BADF)
        data = bytes(file.data[descriptor.offset : descriptor.offset + wanted])
        descriptor.offset += len(data)
        file.atim = _now(state)
    memory.write(nread_ptr, _U32.pack(_read_into(memory, vectors, data)))
    return SUCCESS


def fd_pread(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, iovs, count, offset, nread_ptr = args
    vectors = _iovecs(memory, iovs, count)
    memory.require(nread_ptr, 4)
    descriptor = table.get(fd)
    if descriptor.kind in (STDIN, STDOUT, STDERR):
        raise FsError(SPIPE)
    descriptor, file = table.file(fd)
    if not descriptor.readable:
        raise FsError(BADF)
    data = bytes(file.data[offset : offset + _io_size(vectors)])
    memory.write(nread_ptr, _U32.pack(_read_into(memory, vectors, data)))
    return SUCCESS


def fd_write(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, iovs, count, nwritten_ptr = args
    descriptor = table.get(fd)
    if descriptor.kind in (STDOUT, STDERR):
        stream = 1 if descriptor.kind == STDOUT else 2
        return wasi_host.fd_write(state, memory, [stream, iovs, count, nwritten_ptr])
    vectors = _iovecs(memory, iovs, count)
    memory.require(nwritten_ptr, 4)
    if descriptor.kind == STDIN:
        raise FsError(BADF)
    descriptor, file = table.file(fd)
    if not descriptor.writable:
        raise FsError(BADF)
    offset = len(file.data) if descriptor.append else descriptor.offset
    written = table.fs.write_at(file, offset, _gather(memory, vectors))
    descriptor.offset = offset + written
    memory.write(nwritten_ptr, _U32.pack(written))
    return SUCCESS


def fd_pwrite(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, iovs, count, offset, nwritten_ptr = args
    vectors = _iovecs(memory, iovs, count)
    memory.require(nwritten_ptr, 4)
    descriptor = table.get(fd)
    if descriptor.kind in (STDIN, STDOUT, STDERR):
        raise FsError(SPIPE)
    descriptor, file = table.file(fd)
    if not descriptor.writable:
        raise FsError(BADF)
    if descriptor.append:  # as Linux does: O_APPEND writes at the end, whatever the offset
        offset = len(file.data)
    written = table.fs.write_at(file, offset, _gather(memory, vectors))
    memory.write(nwritten_ptr, _U32.pack(written))
    return SUCCESS


def fd_seek(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, offset, whence, newoffset_ptr = args
    memory.require(newoffset_ptr, 8)
    descriptor = table.get(fd)
    if descriptor.kind in (STDIN, STDOUT, STDERR):
        raise FsError(SPIPE)
    if descriptor.kind == DIRECTORY:
        raise FsError(BADF)
    descriptor, file = table.file(fd)
    delta = _signed64(offset)
    if whence == WHENCE_SET:
        position = delta
    elif whence == WHENCE_CUR:
        position = descriptor.offset + delta
    elif whence == WHENCE_END:
        position = len(file.data) + delta
    else:
        raise FsError(INVAL)
    if position < 0 or position > memfs.MAX_FILE_SIZE:
        raise FsError(INVAL)
    descriptor.offset = position
    memory.write(newoffset_ptr, _U64.pack(position))
    return SUCCESS


def fd_tell(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, offset_ptr = args
    memory.require(offset_ptr, 8)
    descriptor = table.get(fd)
    if descriptor.kind in (STDIN, STDOUT, STDERR):
        raise FsError(SPIPE)
    descriptor, _ = table.file(fd)
    memory.write(offset_ptr, _U64.pack(descriptor.offset))
    return SUCCESS


def fd_close(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    (fd,) = args
    table.get(fd)
    table.close(fd)
    return SUCCESS


def fd_renumber(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, to = args
    descriptor = table.get(fd)
    table.get(to)
    if fd == to:
        return SUCCESS
    table.close(to)
    table.descriptors[to] = table.descriptors.pop(fd)
    del descriptor
    return SUCCESS


def fd_sync(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    (fd,) = args
    descriptor = table.get(fd)
    if descriptor.kind in (STDIN, STDOUT, STDERR):
        raise FsError(INVAL)
    return SUCCESS


def fd_advise(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, _offset, _length, advice = args
    descriptor = table.get(fd)
    if descriptor.kind in (STDIN, STDOUT, STDERR):
        raise FsError(SPIPE)
    table.file(fd)
    if advice > 5:
        raise FsError(INVAL)
    return SUCCESS


def fd_allocate(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    table.file(args[0])
    raise FsError(NOTSUP)


def fd_fdstat_get(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, stat_ptr = args
    memory.require(stat_ptr, _FDSTAT.size)
    descriptor = table.get(fd)
    flags = (FDFLAGS_APPEND if descriptor.append else 0) | (
        FDFLAGS_NONBLOCK if descriptor.nonblock else 0
    )
    if descriptor.kind == DIRECTORY:
        stat = _FDSTAT.pack(memfs.FILETYPE_DIRECTORY, flags, DIRECTORY_RIGHTS, ALL_RIGHTS)
    elif descriptor.kind == REGULAR:
        rights = FILE_RIGHTS
        if not descriptor.readable:
            rights &= ~(RIGHT_FD_READ | RIGHT_FD_READDIR)
        if not descriptor.writable:
            rights &= ~RIGHT_FD_WRITE
        stat = _FDSTAT.pack(memfs.FILETYPE_REGULAR_FILE, flags, rights, rights)
    else:
        right = RIGHT_FD_READ if descriptor.kind == STDIN else RIGHT_FD_WRITE
        rights = right | RIGHT_POLL_FD_READWRITE
        stat = _FDSTAT.pack(FILETYPE_UNKNOWN, flags, rights, rights)
    memory.write(stat_ptr, stat)
    return SUCCESS


def fd_fdstat_set_flags(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    fd, flags = args
    descriptor = table.get(fd)
    if flags & ~(FDFLAGS_APPEND | FDFLAGS_NONBLOCK):
        raise FsError(INVAL)
    if descriptor.kind == REGULAR:
        descriptor.append = bool(flags & FDFLAGS_APPEND)
    elif flags & FDFLAGS_APPEND:
        raise FsError(INVAL)
    descriptor.nonblock = bool(flags & FDFLAGS_NONBLOCK)
    return SUCCESS


def fd_fdstat_set_rights(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    table.get(args[0])
    raise FsError(NOTSUP)


def fd_filestat_get(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, stat_ptr = args
    memory.require(stat_ptr, _FILESTAT.size)
    descriptor = table.get(fd)
    if descriptor.node is None:  # stdio: a character device of its own, no times
        stat = _FILESTAT.pack(0, 0, FILETYPE_CHARACTER_DEVICE, 1, 0, 0, 0, 0)
    else:
        stat = _filestat(descriptor.node)
    memory.write(stat_ptr, stat)
    return SUCCESS


def fd_filestat_set_size(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    fd, size = args
    descriptor, file = table.file(fd)
    if not descriptor.writable:
        raise FsError(BADF)
    table.fs.resize(file, size)
    return SUCCESS


def fd_filestat_set_times(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    fd, atim, mtim, flags = args
    descriptor = table.get(fd)
    if descriptor.node is None:
        raise FsError(BADF)
    _set_times(state, table, descriptor.node, atim, mtim, flags)
    return SUCCESS


def _set_times(
    state: RunState, table: FileTable, node: Node, atim: int, mtim: int, flags: int
) -> None:
    if (flags & FSTFLAGS_ATIM and flags & FSTFLAGS_ATIM_NOW) or (
        flags & FSTFLAGS_MTIM and flags & FSTFLAGS_MTIM_NOW
    ):
        raise FsError(INVAL)
    if flags & ~0xF:
        raise FsError(INVAL)
    now = _now(state)
    if flags & FSTFLAGS_ATIM:
        node.atim = atim
    elif flags & FSTFLAGS_ATIM_NOW:
        node.atim = now
    if flags & FSTFLAGS_MTIM:
        node.mtim = mtim
    elif flags & FSTFLAGS_MTIM_NOW:
        node.mtim = now
    node.ctim = now


def fd_prestat_get(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, prestat_ptr = args
    memory.require(prestat_ptr, _PRESTAT.size)
    descriptor = table.get(fd)
    if descriptor.preopen is None:
        raise FsError(BADF)
    memory.write(prestat_ptr, _PRESTAT.pack(0, len(descriptor.preopen.encode())))
    return SUCCESS


def fd_prestat_dir_name(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    fd, path_ptr, path_len = args
    descriptor = table.get(fd)
    if descriptor.preopen is None:
        raise FsError(BADF)
    name = descriptor.preopen.encode()
    if path_len < len(name):
        raise FsError(NAMETOOLONG)
    memory.write(path_ptr, name)
    return SUCCESS


def fd_readdir(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    fd, buf, buf_len, cookie, bufused_ptr = args
    memory.require(buf, buf_len)
    memory.require(bufused_ptr, 4)
    descriptor = table.get(fd)
    if descriptor.kind != DIRECTORY or not isinstance(descriptor.node, Directory):
        raise FsError(NOTDIR)
    directory = descriptor.node
    parent = directory.parent or directory
    entries: list[tuple[str, Node]] = [(".", directory), ("..", parent)]
    entries += list(directory.entries.items())
    out = bytearray()
    for index in range(cookie, len(entries)):
        if len(out) >= buf_len:
            break
        name, node = entries[index]
        raw = name.encode()
        out += _DIRENT.pack(index + 1, node.ino, len(raw), node.filetype) + raw
    used = min(len(out), buf_len)
    memory.write(buf, bytes(out[:used]))
    memory.write(bufused_ptr, _U32.pack(used))
    return SUCCESS


# -- paths -------------------------------------------------------------------------------


def path_open(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    dirfd, dirflags, path_ptr, path_len, oflags, rights, _inheriting, fdflags, fd_ptr = args
    memory.require(fd_ptr, 4)
    start = table.directory(dirfd)
    path = _path(memory, path_ptr, path_len)
    fs = table.fs
    create, exclusive = bool(oflags & OFLAGS_CREAT), bool(oflags & OFLAGS_EXCL)
    follow = bool(dirflags & LOOKUP_SYMLINK_FOLLOW) and not (create and exclusive)
    found = fs.lookup(start, path, follow=follow)
    node = found.node
    if node is None:
        if not create:
            raise FsError(NOENT)
        if oflags & OFLAGS_DIRECTORY or found.trailing_slash:
            raise FsError(ISDIR if found.trailing_slash else NOENT)
        node = fs.add_file(found.parent, found.name)
    elif create and exclusive:
        raise FsError(EXIST)
    elif create and isinstance(node, Directory):
        raise FsError(ISDIR)
    if isinstance(node, Symlink):
        raise FsError(LOOP)
    readable = bool(rights & (RIGHT_FD_READ | RIGHT_FD_READDIR))
    writable = bool(rights & RIGHT_FD_WRITE)
    if isinstance(node, Directory):
        if writable or oflags & OFLAGS_TRUNC:
            raise FsError(ISDIR)
        descriptor = Descriptor(DIRECTORY, node, readable=True)
    else:
        assert isinstance(node, File)
        if oflags & OFLAGS_DIRECTORY or found.trailing_slash:
            raise FsError(NOTDIR)
        if oflags & OFLAGS_TRUNC:
            fs.resize(node, 0)
        descriptor = Descriptor(REGULAR, node, readable=readable, writable=writable,
                                append=bool(fdflags & FDFLAGS_APPEND))  # fmt: skip
    descriptor.nonblock = bool(fdflags & FDFLAGS_NONBLOCK)
    memory.write(fd_ptr, _U32.pack(table.add(descriptor)))
    return SUCCESS


def _on_path(operation: Callable[[MemoryFileSystem, Directory, str], object]) -> HostCall:
    """A `path_*` call of (dirfd, path, path_len) that only applies `operation` there."""

    def call(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
        dirfd, path_ptr, path_len = args
        operation(table.fs, table.directory(dirfd), _path(memory, path_ptr, path_len))
        return SUCCESS

    return call


path_create_directory = _on_path(MemoryFileSystem.make_directory)
path_remove_directory = _on_path(MemoryFileSystem.remove_directory)
path_unlink_file = _on_path(MemoryFileSystem.unlink)


def _lookup(
    table: FileTable, memory: GuestMemory, dirfd: int, flags: int, path_ptr: int, path_len: int
) -> Node:
    """The node a `path_*` call names, following a final symlink if `flags` say so."""
    start = table.directory(dirfd)
    path = _path(memory, path_ptr, path_len)
    return _existing(table.fs.lookup(start, path, follow=bool(flags & LOOKUP_SYMLINK_FOLLOW)))


def path_filestat_get(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    dirfd, flags, path_ptr, path_len, stat_ptr = args
    memory.require(stat_ptr, _FILESTAT.size)
    memory.write(stat_ptr, _filestat(_lookup(table, memory, dirfd, flags, path_ptr, path_len)))
    return SUCCESS


def _existing(found: memfs.Lookup) -> Node:
    node = found.node
    if node is None:
        raise FsError(NOENT)
    if found.trailing_slash and not isinstance(node, Directory):
        raise FsError(NOTDIR)
    return node


def path_filestat_set_times(
    state: RunState, table: FileTable, memory: GuestMemory, args: list[int]
) -> int:
    dirfd, flags, path_ptr, path_len, atim, mtim, fst_flags = args
    node = _lookup(table, memory, dirfd, flags, path_ptr, path_len)
    _set_times(state, table, node, atim, mtim, fst_flags)
    return SUCCESS


def path_rename(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    old_fd, old_ptr, old_len, new_fd, new_ptr, new_len = args
    old_start = table.directory(old_fd)
    new_start = table.directory(new_fd)
    table.fs.rename(old_start, _path(memory, old_ptr, old_len),
                    new_start, _path(memory, new_ptr, new_len))  # fmt: skip
    return SUCCESS


def path_link(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    old_fd, old_flags, old_ptr, old_len, new_fd, new_ptr, new_len = args
    old_start = table.directory(old_fd)
    new_start = table.directory(new_fd)
    table.fs.link(old_start, _path(memory, old_ptr, old_len),
                  bool(old_flags & LOOKUP_SYMLINK_FOLLOW),
                  new_start, _path(memory, new_ptr, new_len))  # fmt: skip
    return SUCCESS


def path_symlink(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    old_ptr, old_len, dirfd, new_ptr, new_len = args
    target = _path(memory, old_ptr, old_len)
    start = table.directory(dirfd)
    table.fs.symlink(target, start, _path(memory, new_ptr, new_len))
    return SUCCESS


def path_readlink(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    dirfd, path_ptr, path_len, buf, buf_len, bufused_ptr = args
    memory.require(buf, buf_len)
    memory.require(bufused_ptr, 4)
    start = table.directory(dirfd)
    found = table.fs.lookup(start, _path(memory, path_ptr, path_len), follow=False)
    node = found.node
    if node is None:
        raise FsError(NOENT)
    if not isinstance(node, Symlink):
        raise FsError(INVAL)
    target = node.target.encode()[:buf_len]
    memory.write(buf, target)
    memory.write(bufused_ptr, _U32.pack(len(target)))
    return SUCCESS


# -- polling and sockets -----------------------------------------------------------------


def poll_oneoff(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    """wasi_host's poll_oneoff, with readiness for this run's descriptors."""
    return wasi_host.poll_oneoff(state, memory, args, fd_event=_fd_event)


def _fd_event(state: RunState, userdata: int, tag: int, fd: int) -> bytes:
    table = state.files
    descriptor = table.descriptors.get(fd) if table is not None else None
    if descriptor is None or table is None:
        return wasi_host.event(userdata, BADF, tag, 0)
    if descriptor.kind == STDIN:
        available = len(table.stdin) - table.stdin_offset
        return wasi_host.event(userdata, SUCCESS, tag, available)
    if descriptor.kind in (STDOUT, STDERR):
        stream = 1 if descriptor.kind == STDOUT else 2
        return wasi_host.event(userdata, SUCCESS, tag, state.output_room(stream))
    if isinstance(descriptor.node, File) and tag == wasi_host.EVENTTYPE_FD_READ:
        available = max(0, len(descriptor.node.data) - descriptor.offset)
        return wasi_host.event(userdata, SUCCESS, tag, available)
    return wasi_host.event(userdata, SUCCESS, tag, 0)


def sock_call(state: RunState, table: FileTable, memory: GuestMemory, args: list[int]) -> int:
    table.get(args[0])
    return NOTSOCK
