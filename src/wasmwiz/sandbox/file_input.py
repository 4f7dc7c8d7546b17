"""A run's input files: checks their paths, and expands `files` parts or one archive in memory.

Nothing here touches the disk: the entries come back in an order a caller can create them
in (every directory before what is inside it, the parent directories a path implies
included), or the input is refused with a `FilesRefused` and a stable code.

An archive is untrusted and may be built to hurt: it is recognised by its content, never
trusted about sizes (every byte is counted as it is decompressed, and expansion stops the
moment a limit is passed), and may hold only regular files and directories.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, Self

from wasmwiz.problem_codes import ProblemCode

__all__ = [
    "FilesRefused",
    "InputEntry",
    "InputLimits",
    "from_archive",
    "from_parts",
    "normalize_path",
]


@dataclass(frozen=True, slots=True)
class InputLimits:
    """What a run's input files may take."""

    max_bytes: int  # total bytes of regular files, counted as they are expanded
    max_entries: int  # files + directories (implied parent directories count)
    max_path_length: int  # UTF-8 bytes of a normalized relative path
    max_path_depth: int  # path components


@dataclass(frozen=True, slots=True)
class InputEntry:
    """A file or a directory to create in the run's directory."""

    path: str  # normalized: relative POSIX, components joined by "/", none empty, "." or ".."
    data: bytes | None  # None: a directory


class FilesRefused(Exception):
    """The input files cannot be given to a run; `code` says why, `message` says which."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


_CHUNK = 64 * 1024
_BLOCK = tarfile.BLOCKSIZE
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# What an archive's structure may take beyond its files' bytes (which max_bytes bounds).
# A tar entry brings a header block, at most one extended header (pax or GNU long name:
# its own block, then the path and about 512 bytes of other records), and up to 511 bytes
# of padding after its data; 1 MiB more covers the end-of-archive blocks, record padding,
# global headers, the root directory's entry and what tarfile reads ahead.
_SLACK = 1024 * 1024
# Python's tarfile reads an extended header whole and parses it with regular expressions
# that were quadratic on crafted input before CPython 3.11.10 (CVE-2024-6232): a cap
# keeps both the memory and the time of one header small. Legitimate ones hold a path,
# times, ids and a few small extended attributes.
_MAX_EXTENDED_HEADER = 16 * 1024
_EXTENDED_HEADER_TYPES = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
    | {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end
_ZIP_END = struct.Struct("<4s4H2LH")  # the end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP_CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_ZIP_UTF8_NAMES = 0x800
_ZIP_ENCRYPTED = 0x1 | 0x40  # traditional, and strong, encryption
# Deflate's output per call is bounded by zipfile (max_length); bzip2's and LZMA's is
# not, so one small chunk of them could expand to gigabytes at once.
_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

# What a damaged archive raises from gzip, zlib, tarfile and zipfile, all of it mapped to
# invalid_archive; FilesRefused is none of these, so a limit's refusal passes through.
_DAMAGED: tuple[type[Exception], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,  # UnicodeDecodeError among them
    NotImplementedError,
    IndexError,  # tarfile indexes into a short read in places
    OverflowError,
    struct.error,
)


def normalize_path(raw: str, limits: InputLimits) -> str:
    """`raw` as a relative POSIX path inside the run's directory, or `invalid_file_path`."""
    components = _components(raw, limits)
    if not components:
        raise _bad_path(raw, "it names the directory itself, not a file in it")
    return "/".join(components)


def from_parts(parts: Iterable[tuple[str, bytes]], limits: InputLimits) -> list[InputEntry]:
    """The `files` parts as entries: each part's filename is its path, its bytes the data."""
    tree = _Tree(limits)
    for filename, data in parts:
        path = tree.claim_file(filename)
        tree.count_bytes(len(data))
        tree.add_file(path, data)
    return tree.entries


def from_archive(data: bytes, limits: InputLimits) -> list[InputEntry]:
    """The regular files and directories of a tar, tar.gz or zip, recognised by content."""
    tree = _Tree(limits)
    try:
        if data.startswith(_GZIP_MAGIC):
            with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as decompressed:
                _expand_tar(decompressed, tree, drain=True)
        elif data.startswith(_ZIP_MAGICS):
            _expand_zip(data, tree)
        elif _looks_like_tar(data):
            _expand_tar(io.BytesIO(data), tree, drain=False)
        else:
            raise FilesRefused(ProblemCode.INVALID_ARCHIVE, "not a tar, tar.gz or zip archive")
    except _DAMAGED as exc:
        detail = " ".join(str(exc).split()).encode("utf-8", "backslashreplace").decode()
        detail = _CONTROL.sub("?", detail)[:200] or type(exc).__name__
        raise FilesRefused(
            ProblemCode.INVALID_ARCHIVE, f"the archive is damaged: {detail}"
        ) from exc
    return tree.entries


class _Tree:
    """The entries so far, in creation order, held to the limits as they are added."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.entries: list[InputEntry] = []
        self.file_bytes = 0
        self._is_directory: dict[str, bool] = {}

    def add_directory(self, raw: str) -> None:
        """A directory; the root and a directory listed again are nothing new."""
        components = _components(raw, self.limits)
        if components:
            self._claim(raw, components, directory=True)

    def claim_file(self, raw: str) -> str:
        """Checks a file's path and makes its parents; `add_file` adds it once it is read."""
        components = _components(raw, self.limits)
        if not components:
            raise _bad_path(raw, "it names the directory itself, not a file in it")
        return self._claim(raw, components, directory=False)

    def add_file(self, path: str, data: bytes) -> None:
        self.entries.append(InputEntry(path, data))

    def count_bytes(self, size: int) -> None:
        self.file_bytes += size
        if self.file_bytes > self.limits.max_bytes:
            raise FilesRefused(
                ProblemCode.FILES_TOO_LARGE,
                f"the files take more than {self.limits.max_bytes} bytes",
            )

    def read(self, source: _Readable) -> bytes:
        """A member's bytes, read in chunks and counted: its declared size is not trusted."""
        chunks = []
        while chunk := source.read(_CHUNK):
            self.count_bytes(len(chunk))
            chunks.append(chunk)
        return b"".join(chunks)

    def _claim(self, raw: str, components: list[str], *, directory: bool) -> str:
        for depth in range(1, len(components)):
            parent = "/".join(components[:depth])
            is_directory = self._is_directory.get(parent)
            if is_directory is None:
                self._add(parent, directory=True)
                self.entries.append(InputEntry(parent, None))
            elif not is_directory:
                raise FilesRefused(
                    ProblemCode.DUPLICATE_FILE_PATH,
                    f"{_quote(parent)} is a file, and also the directory of {_quote(raw)}",
                )
        path = "/".join(components)
        known = self._is_directory.get(path)
        if known is None:
            self._add(path, directory=directory)
            if directory:
                self.entries.append(InputEntry(path, None))
        elif not (known and directory):
            raise FilesRefused(
                ProblemCode.DUPLICATE_FILE_PATH, f"{_quote(path)} is given more than once"
            )
        return path

    def _add(self, path: str, *, directory: bool) -> None:
        if len(self._is_directory) >= self.limits.max_entries:
            raise FilesRefused(
                ProblemCode.TOO_MANY_FILES,
                f"more than {self.limits.max_entries} files and directories",
            )
        self._is_directory[path] = directory


def _components(raw: str, limits: InputLimits) -> list[str]:
    """The path's components, `.` and empty ones dropped; [] for the directory itself."""
    if not raw:
        raise _bad_path(raw, "it is empty")
    if "\0" in raw:
        raise _bad_path(raw, "it contains NUL")
    if _CONTROL.search(raw):
        raise _bad_path(raw, "it contains a control character")
    if "\\" in raw:
        raise _bad_path(raw, "it contains a backslash")
    if raw.startswith("/"):
        raise _bad_path(raw, "it is absolute")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # a name tarfile decoded with surrogateescape
        raise _bad_path(raw, "it is not valid UTF-8") from None
    components = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in components:
        raise _bad_path(raw, "it has a '..' component")
    if len(components) > limits.max_path_depth:
        raise _bad_path(raw, f"it is deeper than {limits.max_path_depth} components")
    length = len("/".join(components).encode("utf-8"))
    if length > limits.max_path_length:
        raise _bad_path(raw, f"it is longer than {limits.max_path_length} bytes")
    return components


def _bad_path(raw: str, rule: str) -> FilesRefused:
    return FilesRefused(ProblemCode.INVALID_FILE_PATH, f"{_quote(raw)}: {rule}")


def _quote(name: str) -> str:
    """A name for a message: quoted, control characters escaped, and not too long."""
    quoted = repr(name)
    return quoted if len(quoted) <= 120 else quoted[:117] + "..."


# Tar


def _looks_like_tar(data: bytes) -> bool:
    """A header block whose checksum holds (ustar, GNU and v7 alike), or an empty archive:
    nothing but its zero end-of-archive blocks."""
    header = data[:_BLOCK]
    if len(header) < _BLOCK:
        return False
    if not header.strip(b"\0"):
        return len(data) >= 2 * _BLOCK and len(data) % _BLOCK == 0 and not data.strip(b"\0")
    stored = header[148:156].split(b"\0", 1)[0].strip()
    if not re.fullmatch(rb"[0-7]+", stored):
        return False
    # The checksum is the sum of the header's bytes with its own field as spaces; some old
    # tars summed signed bytes.
    unsigned = sum(header) - sum(header[148:156]) + 8 * 0x20
    signed = sum(struct.unpack_from("148b8x356b", header)) + 8 * 0x20
    return int(stored, 8) in (unsigned, signed)


class _CheckedTarInfo(tarfile.TarInfo):
    """A tar header, refused before tarfile reads what follows it if that is too much."""

    __slots__ = ()

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        header = super().frombuf(buf, encoding, errors)
        if header.size < 0:  # base-256 sizes can be negative; tarfile would seek back
            raise FilesRefused(ProblemCode.INVALID_ARCHIVE, "a tar header has a negative size")
        if header.type in _EXTENDED_HEADER_TYPES and header.size > _MAX_EXTENDED_HEADER:
            raise FilesRefused(
                ProblemCode.INVALID_ARCHIVE,
                f"a tar extended header of {header.size} bytes: at most "
                f"{_MAX_EXTENDED_HEADER} are supported",
            )
        if header.type == tarfile.GNUTYPE_SPARSE:
            raise _sparse_refused(header.name)
        return header

    # A sparse file's map (a GNU header's, or a pax header's GNU.sparse.*) is read by
    # tarfile into lists as long as the archive makes them, and it fails on some short
    # ones with an IndexError. Sparse files are not supported: refused before any map is
    # read. These are the hooks tarfile's own comments invite a subclass to override;
    # should a later Python rename them, `_check_tar_member` still refuses the member.
    def _proc_gnusparse_00(self, member: tarfile.TarInfo, *_: object) -> None:
        raise _sparse_refused(member.name)

    _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00

    def _proc_pax(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        """tarfile's own, over records checked first in linear time (see _check_pax)."""
        stream: Any = archive.fileobj
        blocks = (self.size + _BLOCK - 1) // _BLOCK * _BLOCK
        buffer = stream.read(blocks)
        _check_pax(buffer[: self.size])
        archive.fileobj = _Replay(buffer, stream)
        try:
            processed: tarfile.TarInfo = super()._proc_pax(archive)  # type: ignore[misc]
            return processed
        finally:
            archive.fileobj = stream


# The pax parser of CPython before 3.11.10 (CVE-2024-6232) backtracks quadratically over
# a run of digits: 16 KiB of them cost 0.4 s of CPU under the GIL, and an archive may hold
# hundreds of extended headers. Records are checked here first, in linear time: each is
# "LENGTH KEY=VALUE\n" with LENGTH its own size, and no run of digits is long enough
# (64) to cost; anything else is refused as a damaged archive.
_PAX_RECORD_LENGTH = re.compile(rb"[1-9][0-9]{0,5} ")
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{64}")


def _check_pax(records: bytes) -> None:
    position = 0
    while position < len(records):
        if records[position] == 0:  # NUL padding ends the records
            break
        prefix = _PAX_RECORD_LENGTH.match(records, position)
        end = position + int(prefix.group()[:-1]) if prefix else 0
        record = records[prefix.end() : end] if prefix else b""
        if not prefix or end > len(records) or not record.endswith(b"\n") or b"=" not in record:
            raise FilesRefused(ProblemCode.INVALID_ARCHIVE, "a tar pax header is malformed")
        position = end
    if _LONG_DIGIT_RUN.search(records):
        raise FilesRefused(
            ProblemCode.INVALID_ARCHIVE, "a tar pax header holds a run of 64 or more digits"
        )


class _Replay:
    """A stream that gives back `buffer` on the first read, then reads from `stream`."""

    def __init__(self, buffer: bytes, stream: Any) -> None:
        self._buffer = buffer
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._buffer:
            buffer, self._buffer = self._buffer, b""
            return buffer
        return bytes(self._stream.read(size))

    def __getattr__(self, name: str) -> Any:  # tell() and the rest: the stream's
        return getattr(self._stream, name)


class _CountingReader:
    """The decompressed tar stream as tarfile reads it, forward only.

    It counts every byte tarfile reads, headers and padding included, and refuses once
    more than `allowance` of them are not the files' data (which `_Tree` counts against
    max_bytes); and it keeps the last chunks, to look at where tarfile stopped.
    """

    def __init__(self, source: _Readable, tree: _Tree, allowance: int) -> None:
        self._source = source
        self._tree = tree
        self._allowance = allowance
        self._position = 0
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=8)

    def read(self, size: int = -1, /) -> bytes:
        size = _CHUNK if size < 0 or size > _CHUNK else size
        parts = []
        wanted = size
        while wanted > 0 and (part := self._source.read(wanted)):
            parts.append(part)
            wanted -= len(part)
        chunk = b"".join(parts)
        if chunk:
            self._recent.append((self._position, chunk))
            self._position += len(chunk)
            if self._position - self._tree.file_bytes > self._allowance:
                raise FilesRefused(
                    ProblemCode.FILES_TOO_LARGE,
                    f"the archive's headers and padding take more than {self._allowance} bytes",
                )
        return chunk

    def block_at(self, offset: int) -> bytes:
        """The block at `offset`, as far as it was read; b"" if it is no longer kept."""
        kept = b"".join(chunk for _, chunk in self._recent)
        start = offset - self._recent[0][0] if self._recent else -1
        return kept[start : start + _BLOCK] if start >= 0 else b""

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, /) -> int:
        raise io.UnsupportedOperation("the archive is read forward only")

    def write(self, data: bytes, /) -> int:
        raise io.UnsupportedOperation("the archive is read only")

    def close(self) -> None:
        """The source belongs to the caller."""


def _expand_tar(source: _Readable, tree: _Tree, *, drain: bool) -> None:
    limits = tree.limits
    records = limits.max_path_length + 512
    per_entry = 3 * _BLOCK + (records + _BLOCK - 1) // _BLOCK * _BLOCK
    reader = _CountingReader(source, tree, limits.max_entries * per_entry + _SLACK)
    listed = 0
    with tarfile.open(
        fileobj=reader,
        mode="r|",
        tarinfo=_CheckedTarInfo,
        encoding="utf-8",
        errors="surrogateescape",
    ) as archive:
        for member in archive:
            listed += 1
            if listed > limits.max_entries + 1:  # one more: an archive may list its root
                raise _too_many_members(limits.max_entries)
            _check_tar_member(member)
            if member.isdir():
                tree.add_directory(member.name)
                continue
            path = tree.claim_file(member.name)
            data = archive.extractfile(member)
            assert data is not None  # a regular file's is never None
            tree.add_file(path, tree.read(data))
        # tarfile also stops quietly at a header cut short or damaged: only a zero block
        # is the end of a whole archive.
        end = reader.block_at(archive.offset)
        if len(end) < _BLOCK or end.strip(b"\0"):
            raise FilesRefused(
                ProblemCode.INVALID_ARCHIVE,
                f"the archive is truncated or damaged at byte {archive.offset}",
            )
    # Read to the end of a compressed stream, so that its checksum and length are checked.
    while drain and reader.read(_CHUNK):
        pass


def _check_tar_member(member: tarfile.TarInfo) -> None:
    if member.isdir() or (member.isreg() and not member.issparse()):
        return
    if member.issparse():
        raise _sparse_refused(member.name)
    if member.issym():
        kind = "a symbolic link"
    elif member.islnk():
        kind = "a hard link"
    elif member.ischr() or member.isblk():
        kind = "a device"
    elif member.isfifo():
        kind = "a FIFO"
    else:
        kind = f"of type {member.type!r}"
    raise FilesRefused(
        ProblemCode.FILE_TYPE_NOT_ALLOWED,
        f"member {_quote(member.name)} is {kind}: only regular files and directories",
    )


def _sparse_refused(name: str) -> FilesRefused:
    return FilesRefused(
        ProblemCode.INVALID_ARCHIVE,
        f"member {_quote(name)} is a sparse file, which is not supported",
    )


# Zip


def _expand_zip(data: bytes, tree: _Tree) -> None:
    limits = tree.limits
    _count_zip_members(data, limits.max_entries)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > limits.max_entries + 1:  # should another Python look elsewhere
            raise _too_many_members(limits.max_entries)
        for info in members:
            name = _zip_name(info)
            if info.flag_bits & _ZIP_ENCRYPTED:
                raise FilesRefused(
                    ProblemCode.INVALID_ARCHIVE,
                    f"member {_quote(name)} is encrypted: encrypted members are not supported",
                )
            if _zip_is_directory(info, name):
                tree.add_directory(name)
                continue
            path = tree.claim_file(name)
            if info.compress_type not in _ZIP_METHODS:
                raise FilesRefused(
                    ProblemCode.INVALID_ARCHIVE,
                    f"member {_quote(name)} uses compression method {info.compress_type}: "
                    "only stored and deflate are supported",
                )
            with archive.open(info) as member:
                tree.add_file(path, tree.read(member))


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The member's name as stored (zipfile cuts `filename` at a NUL): UTF-8 if flagged,
    else UTF-8 if it decodes (as most tools write), else code page 437 (the format's)."""
    name = info.orig_filename
    if not info.flag_bits & _ZIP_UTF8_NAMES:
        with contextlib.suppress(UnicodeError):
            name = name.encode("cp437").decode("utf-8")
    return name


def _zip_is_directory(info: zipfile.ZipInfo, name: str) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFDIR:
        return True
    if kind in (0, stat.S_IFREG):  # 0: no Unix mode (DOS attributes only): by its name
        return name.endswith("/")
    what = "a symbolic link" if kind == stat.S_IFLNK else f"of file type {kind:#o}"
    raise FilesRefused(
        ProblemCode.FILE_TYPE_NOT_ALLOWED,
        f"member {_quote(name)} is {what}: only regular files and directories",
    )


def _count_zip_members(data: bytes, max_entries: int) -> None:
    """Refuses a central directory of too many entries before zipfile reads it: zipfile
    makes an object of each at once. Found where zipfile looks for it; one that is not
    there, or not whole, is left to zipfile to refuse."""
    end = _zip_end_of_directory(data)
    if end is None:
        return
    start, size = end
    directory = memoryview(data)[start : start + size]
    position = count = 0
    while position + _ZIP_CENTRAL_ENTRY.size <= len(directory):
        fields = _ZIP_CENTRAL_ENTRY.unpack_from(directory, position)
        if fields[0] != b"PK\x01\x02":
            return
        count += 1
        if count > max_entries + 1:  # one more: an archive may list its root, `./`
            raise _too_many_members(max_entries)
        name_length, extra_length, comment_length = fields[12:15]
        position += _ZIP_CENTRAL_ENTRY.size + name_length + extra_length + comment_length


def _zip_end_of_directory(data: bytes) -> tuple[int, int] | None:
    """Where the central directory starts, and its size, as zipfile computes them."""
    end = len(data) - _ZIP_END.size
    if end < 0 or not (data.startswith(b"PK\x05\x06", end) and data.endswith(b"\0\0")):
        # Not at the very end, so after it comes a comment of up to 64 KiB.
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - _ZIP_END.size - 0xFFFF))
        if end < 0 or end + _ZIP_END.size > len(data):
            return None
    size = _ZIP_END.unpack_from(data, end)[5]
    start = end - size
    locator = end - _ZIP64_LOCATOR.size
    if locator >= 0 and data.startswith(b"PK\x06\x07", locator):
        record = locator - _ZIP64_END.size
        if record >= 0 and data.startswith(b"PK\x06\x06", record):
            size = _ZIP64_END.unpack_from(data, record)[8]
            start = record - size
    return (start, size) if start >= 0 else None


def _too_many_members(max_entries: int) -> FilesRefused:
    return FilesRefused(
        ProblemCode.TOO_MANY_FILES, f"the archive lists more than {max_entries} members"
    )
