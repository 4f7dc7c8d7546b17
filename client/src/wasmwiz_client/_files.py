"""A run's files: the input files and archive as form parts, and collected files written
under a directory without ever leaving it."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path, PureWindowsPath
from typing import IO, TYPE_CHECKING, Any

from wasmwiz_client.errors import UnsafePathError

if TYPE_CHECKING:
    from wasmwiz_client.models import CollectedFile

# A file's content: its bytes, a path to a local file, or a binary file object (read to
# its end when the request is built, so a retry sends the same bytes again).
FileContent = bytes | os.PathLike[str] | IO[bytes]
InputFiles = Mapping[str, FileContent] | Iterable[tuple[str, FileContent]]
ArchiveSource = bytes | str | os.PathLike[str]

# httpx writes a part's filename HTML5-style: `"` as `%22` and control characters as `%XX`,
# which the service takes literally. Such a path would reach the run renamed, so it is
# refused here; an archive carries any name the service takes.
_NOT_IN_A_FILENAME = re.compile(r'["\x00-\x1f\x7f]')
_OCTET_STREAM = "application/octet-stream"


def input_file_parts(
    files: InputFiles | None, archive: ArchiveSource | None
) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The form's `files` parts (the filename is the path in the run's directory) or its
    one `archive` part. Reading a path or a file object is blocking I/O (the async client
    threads it)."""
    if files is not None and archive is not None:
        raise ValueError("pass files or archive, not both")
    if archive is not None:
        return [("archive", _archive_part(archive))]
    if files is None:
        return []
    if isinstance(files, str | bytes):
        raise TypeError("files is a mapping of path to content, or a list of (path, content)")
    pairs = files.items() if isinstance(files, Mapping) else files
    return [
        ("files", (_checked_path(path), _content(path, content), _OCTET_STREAM))
        for path, content in pairs
    ]


def has_local_reads(files: InputFiles | None, archive: ArchiveSource | None) -> bool:
    """Whether building the parts reads a local file (a path or a file object)."""
    if archive is not None and not isinstance(archive, bytes):
        return True
    if files is None or isinstance(files, str | bytes):
        return False
    if isinstance(files, Mapping):
        return any(not isinstance(content, bytes) for content in files.values())
    # An iterable of pairs may be a one-shot generator: assume it reads.
    return True


def _archive_part(archive: ArchiveSource) -> tuple[str, bytes, str]:
    # The service recognises tar, tar.gz and zip by content: the name is only a label.
    if isinstance(archive, bytes):
        return "archive", archive, _OCTET_STREAM
    path = Path(archive)
    return path.name, path.read_bytes(), _OCTET_STREAM


def _checked_path(path: object) -> str:
    if not isinstance(path, str):
        raise TypeError(f"a file's path in the run's directory is a str, not {type(path).__name__}")
    if _NOT_IN_A_FILENAME.search(path):
        raise ValueError(
            f"{path!r}: a path with a double quote or a control character cannot be sent as a "
            "file part intact; put the file in an archive instead"
        )
    return path


def _content(path: str, content: Any) -> bytes:
    if isinstance(content, bytes | bytearray | memoryview):
        return bytes(content)
    if isinstance(content, os.PathLike):
        return Path(content).read_bytes()
    if isinstance(content, str):
        raise TypeError(
            f"{path!r}: the content is a str; pass bytes (text.encode()) or a Path to a file"
        )
    read = getattr(content, "read", None)
    if callable(read):
        data = read()
        if isinstance(data, bytes):
            return data
        raise TypeError(f"{path!r}: the file object gave {type(data).__name__}, not bytes")
    raise TypeError(
        f"{path!r}: the content is bytes, a Path or a binary file, not {type(content).__name__}"
    )


def relative_parts(path: str) -> tuple[str, ...]:
    """A collected file's path as components that stay inside any directory, or
    UnsafePathError: absolute, drive-relative, `.`, `..`, empty components, backslashes
    and NUL are refused, on every platform alike."""
    why = None
    if not isinstance(path, str) or not path:
        why = "it is empty"
    elif "\0" in path or "\\" in path:
        why = "it holds a NUL or a backslash"
    elif path.startswith("/") or PureWindowsPath(path).drive:
        why = "it is absolute"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        why = "it has an empty, `.` or `..` component"
    if why is not None:
        raise UnsafePathError(f"will not write the collected file {path!r}: {why}")
    return tuple(path.split("/"))


def write_collected(
    files: Iterable[CollectedFile], directory: str | os.PathLike[str]
) -> list[Path]:
    """Write each collected file that has its content under `directory` (made if missing),
    at its path there; return the paths written, in order.

    Every path is checked before anything is written. Nothing is written through a
    symbolic link: one already in `directory` where a collected file or its parent
    directory would go is an UnsafePathError, so a planted link cannot send a file
    elsewhere. A file whose content the service left out (over its output cap) is skipped.
    """
    chosen = [
        (file.path, relative_parts(file.path), file.content)
        for file in files
        if file.content is not None
    ]
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for path, parts, content in chosen:
        parent = root
        for name in parts[:-1]:
            parent = parent / name
            _real_directory(parent, path)
        target = parent / parts[-1]
        _write_file(target, content, path)
        written.append(target)
    return written


def _real_directory(path: Path, collected: str) -> None:
    try:
        path.mkdir()
    except FileExistsError:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise UnsafePathError(
                f"will not write the collected file {collected!r}: {path} is a symbolic link"
            ) from None
        if not stat.S_ISDIR(mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path)) from None


def _write_file(path: Path, content: bytes, collected: str) -> None:
    # O_NOFOLLOW: a link at the target fails the open instead of being followed. Where the
    # platform has none, the check before it stands alone.
    if path.is_symlink():
        raise UnsafePathError(
            f"will not write the collected file {collected!r}: {path} is a symbolic link"
        )
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(
                f"will not write the collected file {collected!r}: {path} is a symbolic link"
            ) from None
        raise
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
