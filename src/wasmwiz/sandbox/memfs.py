"""A run's private directory: an in-memory tree of files, directories and symlinks.

Nothing of it touches the host's filesystem. Every operation returns a WASI errno (or
raises `FsError` with one) instead of an OSError, and every byte and entry a guest adds
is counted twice: against the run's own quota (`FsLimits`: past it, EDQUOT) and against
the process-wide `FilesBudget` that all runs with files share (spent, ENOSPC; the
service refuses new runs with files while it is spent). Bytes are a file's logical
size (there are no sparse files: a write far past the end pays for the hole) and a
symlink's target; each entry is charged `ENTRY_COST` bytes of the budget for its
bookkeeping. When the run ends, `release()` returns everything to the budget.

Path resolution is relative to a directory node, as WASI's `path_*` calls are: `..`
never climbs above the directory the lookup started from, absolute paths and symlinks
with absolute targets are refused (EPERM, as wasmtime does), and following more than
MAX_SYMLINK_FOLLOWS symlinks is ELOOP: a symlink a guest creates cannot lead outside its
directory.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from wasmwiz.sandbox.file_input import InputEntry

# WASI preview 1 errno values used here.
ACCES = 2
BADF = 8
EXIST = 20
DQUOT = 19
FBIG = 22
INVAL = 28
ISDIR = 31
LOOP = 32
NAMETOOLONG = 37
NOENT = 44
NOSPC = 51
NOTDIR = 54
NOTEMPTY = 55
PERM = 63

FILETYPE_DIRECTORY = 3
FILETYPE_REGULAR_FILE = 4
FILETYPE_SYMBOLIC_LINK = 7

MAX_SYMLINK_FOLLOWS = 40
MAX_NAME_BYTES = 255
MAX_FILE_SIZE = 2**63 - 1
ENTRY_COST = 512  # budget bytes charged per entry, for the nodes and names that hold it
MIN_ROOM = 1024 * 1024  # what the budget must have beyond a run's input for it to start
DEVICE_ID = 1  # one device for the whole tree, as one mounted filesystem would have


class FsError(Exception):
    """An operation failed with a WASI errno."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


@dataclass(frozen=True, slots=True)
class FsLimits:
    """One run's quota: bytes (files' sizes and symlink targets) and entries."""

    max_bytes: int = 64 * 1024 * 1024
    max_entries: int = 10_000


class FilesBudget:
    """What all runs' directories together may hold, in bytes (entries at ENTRY_COST)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def available(self) -> int:
        return self.max_bytes - self._used

    def take(self, amount: int) -> bool:
        with self._lock:
            if self._used + amount > self.max_bytes:
                return False
            self._used += amount
            return True

    def give_back(self, amount: int) -> None:
        with self._lock:
            self._used -= amount


class Node:
    __slots__ = ("atim", "ctim", "ino", "mtim", "nlink")
    filetype = 0

    def __init__(self, ino: int, now: int) -> None:
        self.ino = ino
        self.atim = self.mtim = self.ctim = now
        self.nlink = 1

    @property
    def size(self) -> int:
        return 0


class File(Node):
    __slots__ = ("data", "open_count")
    filetype = FILETYPE_REGULAR_FILE

    def __init__(self, ino: int, now: int) -> None:
        super().__init__(ino, now)
        self.data = bytearray()
        self.open_count = 0

    @property
    def size(self) -> int:
        return len(self.data)


class Directory(Node):
    __slots__ = ("entries", "parent")
    filetype = FILETYPE_DIRECTORY

    def __init__(self, ino: int, now: int, parent: Directory | None) -> None:
        super().__init__(ino, now)
        self.entries: dict[str, Node] = {}
        self.parent = parent  # None: the root, or a directory that was removed

    @property
    def size(self) -> int:
        return 0


class Symlink(Node):
    __slots__ = ("target",)
    filetype = FILETYPE_SYMBOLIC_LINK

    def __init__(self, ino: int, now: int, target: str) -> None:
        super().__init__(ino, now)
        self.target = target

    @property
    def size(self) -> int:
        return len(self.target.encode())


@dataclass(slots=True)
class Lookup:
    """Where a path leads: the directory holding its last component, that component's
    name, the node there (None when absent) and whether the path ended in a slash."""

    parent: Directory
    name: str
    node: Node | None
    trailing_slash: bool


class MemoryFileSystem:
    """One run's directory tree, with its quota and its share of the budget."""

    def __init__(self, limits: FsLimits, budget: FilesBudget, clock: Callable[[], int]) -> None:
        self.limits = limits
        self.budget = budget
        self.clock = clock
        self._inodes = itertools.count(1)
        self.root = Directory(next(self._inodes), clock(), None)
        self.bytes_used = 0
        self.entries_used = 0
        self._budget_held = 0

    # -- accounting ------------------------------------------------------------------

    def charge(self, data_bytes: int, entries: int = 0) -> None:
        """Count bytes and entries about to be added; FsError(EDQUOT or ENOSPC) if they
        do not fit. Negative amounts give back."""
        if (data_bytes > 0 or entries > 0) and (
            self.bytes_used + data_bytes > self.limits.max_bytes
            or self.entries_used + entries > self.limits.max_entries
        ):
            raise FsError(DQUOT)
        cost = data_bytes + entries * ENTRY_COST
        if cost > 0:
            if not self.budget.take(cost):
                raise FsError(NOSPC)
        elif cost < 0:
            self.budget.give_back(-cost)
        self._budget_held += cost
        self.bytes_used += data_bytes
        self.entries_used += entries

    def release(self) -> None:
        """Give everything this tree holds back to the budget and let go of it (the run
        has ended): at once, not when the garbage collector finds the run's cycles."""
        if self._budget_held:
            self.budget.give_back(self._budget_held)
        self._budget_held = 0
        stack = [self.root]
        while stack:
            directory = stack.pop()
            for node in directory.entries.values():
                if isinstance(node, Directory):
                    stack.append(node)
                elif isinstance(node, File):
                    node.data = bytearray()
            directory.entries.clear()

    def room(self) -> int:
        """Bytes that can still be added before the quota or the budget refuses."""
        return max(0, min(self.limits.max_bytes - self.bytes_used, self.budget.available()))

    # -- nodes -----------------------------------------------------------------------

    def new_file(self) -> File:
        return File(next(self._inodes), self.clock())

    def new_directory(self, parent: Directory) -> Directory:
        return Directory(next(self._inodes), self.clock(), parent)

    def new_symlink(self, target: str) -> Symlink:
        return Symlink(next(self._inodes), self.clock(), target)

    def resize(self, file: File, size: int) -> None:
        """Set a file's size, zero-filling growth; charged before anything changes."""
        if size > MAX_FILE_SIZE:
            raise FsError(FBIG)
        growth = size - len(file.data)
        if growth > 0:
            if growth > self.limits.max_bytes:
                raise FsError(DQUOT)
            self.charge(growth)
            file.data.extend(bytes(growth))
        elif growth < 0:
            del file.data[size:]
            self.charge(growth)
        self.touch(file, modified=True)

    def write_at(self, file: File, offset: int, data: bytes) -> int:
        """Write `data` at `offset`, as much as the quota allows; how many bytes were
        written. Nothing fitting at all is FsError(EDQUOT or ENOSPC)."""
        if not data:
            return 0
        if offset > MAX_FILE_SIZE - len(data):
            raise FsError(FBIG)
        end = offset + len(data)
        growth = end - len(file.data)
        if growth > 0:
            room = self.room()
            if growth > room:
                # A short write of what fits, as a filling disk gives; if nothing fits
                # (or the hole before `offset` alone is too big) the error itself.
                fits = len(data) - (growth - room)
                if fits <= 0:
                    self.charge(growth)  # raises the right errno
                data = data[:fits]
                end = offset + fits
                growth = end - len(file.data)
            self.charge(max(0, growth))
            if offset > len(file.data):
                file.data.extend(bytes(offset - len(file.data)))
        file.data[offset:end] = data
        self.touch(file, modified=True)
        return len(data)

    def touch(self, node: Node, *, modified: bool = False, changed: bool = True) -> None:
        now = self.clock()
        if modified:
            node.mtim = now
        if changed or modified:
            node.ctim = now

    def forget(self, node: Node) -> None:
        """A node's last link is gone: give back its bytes once nothing holds it open."""
        if isinstance(node, File):
            if node.nlink > 0 or node.open_count > 0:
                return
            size = len(node.data)
            node.data = bytearray()
            self.charge(-size, -1)
        elif isinstance(node, Symlink):
            self.charge(-node.size, -1)
        else:
            self.charge(0, -1)

    # -- paths -----------------------------------------------------------------------

    def lookup(self, start: Directory, path: str, *, follow: bool) -> Lookup:
        """Resolve `path` from `start`; the last component is followed if it is a
        symlink and `follow`. FsError for a missing or non-directory intermediate."""
        if not path:
            raise FsError(NOENT)
        if path.startswith("/"):
            raise FsError(PERM)
        follows = [0]
        return self._walk(start, start, path, follow, follows)

    def _walk(
        self, top: Directory, current: Directory, path: str, follow: bool, follows: list[int]
    ) -> Lookup:
        trailing = path.endswith("/")
        parts = [part for part in path.split("/") if part]
        if not parts:  # "." style paths that name the directory itself
            parts = ["."]
        for index, part in enumerate(parts):
            if len(part.encode()) > MAX_NAME_BYTES:
                raise FsError(NAMETOOLONG)
            last = index == len(parts) - 1
            if last:
                if part in (".", ".."):
                    target = current if part == "." else self._up(top, current)
                    parent = target.parent if target.parent is not None else target
                    return Lookup(parent, part, target, trailing)
                node = current.entries.get(part)
                if isinstance(node, Symlink) and (follow or trailing):
                    return self._follow(top, current, node, follow, follows, trailing)
                return Lookup(current, part, node, trailing)
            if part == ".":
                continue
            if part == "..":
                current = self._up(top, current)
                continue
            node = current.entries.get(part)
            if node is None:
                raise FsError(NOENT)
            if isinstance(node, Symlink):
                found = self._follow(top, current, node, True, follows, True)
                node = found.node
                if node is None:
                    raise FsError(NOENT)
            if not isinstance(node, Directory):
                raise FsError(NOTDIR)
            current = node
        raise AssertionError("unreachable")  # pragma: no cover

    def _follow(
        self,
        top: Directory,
        current: Directory,
        link: Symlink,
        follow: bool,
        follows: list[int],
        trailing: bool,
    ) -> Lookup:
        follows[0] += 1
        if follows[0] > MAX_SYMLINK_FOLLOWS:
            raise FsError(LOOP)
        target = link.target
        if target.startswith("/"):
            raise FsError(PERM)
        if trailing and not target.endswith("/"):
            target += "/"
        return self._walk(top, current, target, follow, follows)

    @staticmethod
    def _up(top: Directory, current: Directory) -> Directory:
        if current is top or current.parent is None:
            raise FsError(PERM)  # `..` may not leave the directory looked up from
        return current.parent

    # -- operations used by the WASI layer -------------------------------------------

    def make_directory(self, start: Directory, path: str) -> Directory:
        found = self.lookup(start, path, follow=False)
        if found.node is not None:
            raise FsError(EXIST)
        return self.add_directory(found.parent, found.name)

    def add_directory(self, parent: Directory, name: str) -> Directory:
        self._check_live(parent)
        self.charge(0, 1)
        directory = self.new_directory(parent)
        parent.entries[name] = directory
        self.touch(parent, modified=True)
        return directory

    def add_file(self, parent: Directory, name: str, data: bytes = b"") -> File:
        self._check_live(parent)
        self.charge(len(data), 1)
        file = self.new_file()
        file.data[:] = data
        parent.entries[name] = file
        self.touch(parent, modified=True)
        return file

    def add_symlink(self, parent: Directory, name: str, target: str) -> Symlink:
        self._check_live(parent)
        link = self.new_symlink(target)
        self.charge(link.size, 1)
        parent.entries[name] = link
        self.touch(parent, modified=True)
        return link

    def _check_live(self, directory: Directory) -> None:
        if directory is not self.root and directory.parent is None:
            raise FsError(NOENT)  # created inside a directory that has been removed

    def unlink(self, start: Directory, path: str) -> None:
        found = self.lookup(start, path, follow=False)
        node = found.node
        if node is None:
            raise FsError(NOENT)
        if isinstance(node, Directory):
            raise FsError(ISDIR)
        if found.trailing_slash:
            raise FsError(NOTDIR)
        del found.parent.entries[found.name]
        node.nlink -= 1
        self.touch(found.parent, modified=True)
        self.touch(node)
        self.forget(node)

    def remove_directory(self, start: Directory, path: str) -> None:
        found = self.lookup(start, path, follow=False)
        node = found.node
        if node is None:
            raise FsError(NOENT)
        if not isinstance(node, Directory):
            raise FsError(NOTDIR)
        if found.name == ".":
            raise FsError(INVAL)
        if found.name == ".." or node is start or node is self.root:
            raise FsError(NOTEMPTY if node.entries else INVAL)
        if node.entries:
            raise FsError(NOTEMPTY)
        del found.parent.entries[found.name]
        node.parent = None
        node.nlink = 0
        self.touch(found.parent, modified=True)
        self.forget(node)

    def rename(
        self, old_start: Directory, old_path: str, new_start: Directory, new_path: str
    ) -> None:
        old = self.lookup(old_start, old_path, follow=False)
        if old.node is None:
            raise FsError(NOENT)
        if old.name in (".", ".."):
            raise FsError(INVAL if old.name == "." else NOTEMPTY)
        new = self.lookup(new_start, new_path, follow=False)
        if new.name in (".", ".."):
            raise FsError(INVAL if new.name == "." else NOTEMPTY)
        moving = old.node
        if not isinstance(moving, Directory) and (old.trailing_slash or new.trailing_slash):
            raise FsError(NOTDIR)
        replaced = new.node
        if replaced is moving:
            return
        if isinstance(moving, Directory):
            if replaced is not None and not isinstance(replaced, Directory):
                raise FsError(NOTDIR)
            if isinstance(replaced, Directory) and replaced.entries:
                raise FsError(NOTEMPTY)
            ancestor: Directory | None = new.parent
            while ancestor is not None:  # a directory cannot move inside itself
                if ancestor is moving:
                    raise FsError(INVAL)
                ancestor = ancestor.parent
        elif isinstance(replaced, Directory):
            raise FsError(ISDIR)
        self._check_live(new.parent)
        del old.parent.entries[old.name]
        new.parent.entries[new.name] = moving
        if isinstance(moving, Directory):
            moving.parent = new.parent
        self.touch(old.parent, modified=True)
        self.touch(new.parent, modified=True)
        self.touch(moving)
        if replaced is not None:
            replaced.nlink -= 1
            if isinstance(replaced, Directory):
                replaced.parent = None
                replaced.nlink = 0
            self.forget(replaced)

    def link(
        self,
        old_start: Directory,
        old_path: str,
        follow: bool,
        new_start: Directory,
        new_path: str,
    ) -> None:
        old = self.lookup(old_start, old_path, follow=follow)
        node = old.node
        if node is None:
            raise FsError(NOENT)
        if isinstance(node, Directory):
            raise FsError(PERM)
        new = self.lookup(new_start, new_path, follow=False)
        if new.node is not None:
            raise FsError(EXIST)
        if new.trailing_slash:
            raise FsError(NOENT)
        self._check_live(new.parent)
        self.charge(0, 1)
        new.parent.entries[new.name] = node
        node.nlink += 1
        self.touch(node)
        self.touch(new.parent, modified=True)

    def symlink(self, target: str, start: Directory, path: str) -> None:
        found = self.lookup(start, path, follow=False)
        if found.node is not None:
            raise FsError(EXIST)
        if found.trailing_slash:
            raise FsError(NOENT)
        if not target:
            raise FsError(NOENT)
        if target.startswith("/"):
            raise FsError(PERM)  # it could only ever lead outside the directory
        self.add_symlink(found.parent, found.name, target)

    def populate(self, entries: Iterable[InputEntry]) -> None:
        """Create the input entries (parents listed before their children)."""
        directories: dict[str, Directory] = {"": self.root}
        for entry in entries:
            parent_path, _, name = entry.path.rpartition("/")
            parent = directories.get(parent_path)
            if parent is None:
                raise FsError(NOENT)
            if entry.data is None:
                if entry.path not in directories:
                    directories[entry.path] = self.add_directory(parent, name)
            else:
                self.add_file(parent, name, entry.data)

    # -- output ----------------------------------------------------------------------

    def regular_files(self) -> Iterator[tuple[str, File]]:
        """Every regular file by its path, sorted, never through a symlink."""
        stack: list[tuple[str, Directory]] = [("", self.root)]
        found: list[tuple[str, File]] = []
        while stack:
            prefix, directory = stack.pop()
            for name, node in directory.entries.items():
                path = f"{prefix}{name}"
                if isinstance(node, File):
                    found.append((path, node))
                elif isinstance(node, Directory):
                    stack.append((f"{path}/", node))
        found.sort(key=lambda item: item[0])
        return iter(found)
