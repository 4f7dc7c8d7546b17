"""The on-disk level of the compiled-module cache: serialized artifacts the service wrote.

Layout: `<root>/<fingerprint>/<sha256>.cwasm` (a fingerprint per engine: the metered
and the unmetered one compile a module differently) with a `<sha256>.json` beside it
holding what the runner needs to know about the module and a MAC over the fingerprint,
digest, metadata and artifact: BLAKE3 in its keyed mode, which is built to be a MAC
(about twice as fast as HMAC-SHA256 here, even with the CPU's SHA extensions). The key is
the caller's (the service derives it from its configured secret) and is never stored on
disk, so whoever can read or write the directory still cannot make an artifact that
verifies.

Nothing on disk is trusted. The root is opened once, without following a symlink, and
must be a directory this user owns that group and others cannot write; every later
operation (open, stat, rename, unlink, listing) is relative to that descriptor or to the
fingerprint directory's, opened the same way, so a path component swapped afterwards
changes nothing. A file is opened with O_NOFOLLOW and loaded only if it is a regular
file this user owns that no one else may read or write (0600, as written here); anything
else is a miss. Nothing that is not a regular file of this user's is ever replaced or
deleted: a save that finds a link or another owner's file under its name keeps the
module in memory only. Eviction looks only into fingerprint directories (by name, type
and owner), and counts and deletes only regular files of this user's named as this
module names them: never a link or its target, never a directory it did not make.

Loading maps and runs machine code, so the bytes verified are the bytes loaded: the file
is opened once, hashed through a read-only mapping of that descriptor and given to
wasmtime as /proc/self/fd/N, the same open file (wasmtime then maps it too, so processes
share the pages). A file renamed over the name after the check is not what gets loaded.
What this cannot stop is a write into that very file between check and load: only this
user (the files are 0600 and never written in place) or root can do that, and they are
outside the threat model (docs/security.md). Without /proc the verified bytes are read
into memory and deserialized from there. Several processes may share the directory:
files appear by atomic rename, and a pair that does not match is simply a miss.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import mmap
import os
import re
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import blake3
import wasmtime

from wasmwiz.sandbox.models import SandboxError

logger = logging.getLogger(__name__)

MAC_KEY_BYTES = 32
# In every MAC: a record written under an earlier scheme (HMAC-SHA256) never verifies,
# so it is a miss, compiled again and replaced.
_MAC_SCHEME = "blake3-keyed-1"
_PROC_FD = Path("/proc/self/fd")
_FINGERPRINT = re.compile(r"[0-9a-f]{16,64}")
# The only names written here: `<sha256>.cwasm|json`, and `.tmp-<hex>.cwasm|json` while
# a file is being written.
_OURS = re.compile(r"(?:[0-9a-f]{64}|\.tmp-[0-9a-f]{32})\.(?:cwasm|json)")
_TEMP_PREFIX = ".tmp-"
# A temp file younger than this may be another process's write in progress.
_TEMP_GRACE_SECONDS = 600.0
_MAX_SIDECAR_BYTES = 4096
# Where 0.1.0 kept the MAC key, beside the artifacts; see _retire_old_secret.
_OLD_SECRET_NAME = "secret"  # noqa: S105 - a file name, not a secret
_OLD_SECRET_BYTES = 32
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO returns at once (and is then refused as not regular).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class ArtifactMeta:
    """What the runner needs about a module, kept beside its artifact."""

    size: int
    min_memory_bytes: int
    min_table_elements: int

    def to_json(self) -> dict[str, int]:
        return {
            "size": self.size,
            "min_memory_bytes": self.min_memory_bytes,
            "min_table_elements": self.min_table_elements,
        }


@dataclass(frozen=True, slots=True)
class LoadedArtifact:
    wasm_module: wasmtime.Module
    meta: ArtifactMeta
    artifact_bytes: int


class ArtifactStore:
    """Serialized artifacts keyed by module SHA-256 and a fingerprint (the engine and the
    rules the module was accepted under), size-bounded, checked under `mac_key`."""

    def __init__(
        self, directory: Path, max_bytes: int, fingerprint: str, *, mac_key: bytes
    ) -> None:
        if len(mac_key) != MAC_KEY_BYTES:
            raise ValueError(f"the disk cache's MAC key must be {MAC_KEY_BYTES} bytes")
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise ValueError(f"not a cache fingerprint: {fingerprint!r}")
        self._max_bytes = max_bytes
        self._fingerprint = fingerprint
        self._key = mac_key
        self._uid = os.geteuid()
        self._evicting = threading.Lock()
        self._root_fd = _open_root(directory)
        try:
            self._dir_fd = _open_private_dir(self._root_fd, fingerprint, directory / fingerprint)
            _retire_old_secret(self._root_fd, directory)
        except BaseException:
            os.close(self._root_fd)
            raise
        self.hits = 0

    def close(self) -> None:
        """Close the directories. Later loads miss and saves store nothing: -1 is no
        descriptor, whereas the old numbers may soon name someone else's files."""
        descriptors = (self._dir_fd, self._root_fd)
        self._dir_fd = self._root_fd = -1
        for fd in descriptors:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _mac(self, sha256: str, meta: ArtifactMeta) -> blake3.blake3:
        header = json.dumps(
            [_MAC_SCHEME, self._fingerprint, sha256, meta.to_json()], sort_keys=True
        )
        return blake3.blake3(header.encode() + b"\0", key=self._key)

    def load(self, engine: wasmtime.Engine, sha256: str) -> LoadedArtifact | None:
        """The module stored under `sha256`, if there is one of ours whose MAC checks out."""
        record = self._read_sidecar(f"{sha256}.json")
        if record is None:
            return None
        meta, expected = record
        fd = self._open_private(f"{sha256}.cwasm")
        if fd is None:
            return None
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return None
            mac = self._mac(sha256, meta)
            if _PROC_FD.is_dir():
                # Hashed through a read-only mapping: no copy into Python bytes, and
                # blake3 lets go of the GIL.
                with mmap.mmap(fd, size, prot=mmap.PROT_READ) as mapped:
                    mac.update(mapped)
                if not hmac.compare_digest(mac.digest(), expected):
                    return None
                wasm_module = _deserialize_fd(engine, fd)
            else:
                data = _read_all(fd, size)
                mac.update(data)
                if not hmac.compare_digest(mac.digest(), expected):
                    return None
                wasm_module = wasmtime.Module.deserialize(engine, data)
        except (OSError, ValueError, wasmtime.WasmtimeError):
            return None
        finally:
            os.close(fd)
        # Recency, for eviction; the pair together, so neither is evicted alone.
        with contextlib.suppress(OSError):
            os.utime(f"{sha256}.cwasm", dir_fd=self._dir_fd, follow_symlinks=False)
            os.utime(f"{sha256}.json", dir_fd=self._dir_fd, follow_symlinks=False)
        self.hits += 1
        return LoadedArtifact(wasm_module, meta, size)

    def save(
        self, engine: wasmtime.Engine, sha256: str, artifact: bytes, meta: ArtifactMeta
    ) -> wasmtime.Module:
        """Store `artifact` and return it loaded from the written file (mapped, not copied).

        If either name is taken by something that is not a file of ours (a link, a file
        of another owner), nothing is replaced: the module is returned, not stored.
        """
        if self._dir_fd < 0:
            return wasmtime.Module.deserialize(engine, artifact)
        artifact_name, meta_name = f"{sha256}.cwasm", f"{sha256}.json"
        mac = self._mac(sha256, meta)
        mac.update(artifact)
        record = json.dumps({"meta": meta.to_json(), "mac": mac.hexdigest()}).encode()
        fd, temp_name = self._write_temp(".cwasm", artifact)
        try:
            if _PROC_FD.is_dir():
                wasm_module = _deserialize_fd(engine, fd)
            else:
                wasm_module = wasmtime.Module.deserialize(engine, artifact)
            if self._replaceable(meta_name) and self._replaceable(artifact_name):
                self._write_atomically(meta_name, record)
                os.replace(
                    temp_name, artifact_name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd
                )
                temp_name = ""
        finally:
            os.close(fd)
            if temp_name:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name, dir_fd=self._dir_fd)
        self._evict()
        return wasm_module

    def _is_ours(self, info: os.stat_result) -> bool:
        """A regular file this user owns: the only kind replaced or deleted here."""
        return stat.S_ISREG(info.st_mode) and info.st_uid == self._uid

    def _is_private(self, info: os.stat_result) -> bool:
        """One of ours that no one else may read or write: the only kind loaded."""
        return self._is_ours(info) and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)

    def _open_private(self, name: str) -> int | None:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self._dir_fd)
        except OSError:
            return None  # missing, or a symlink (ELOOP)
        try:
            if self._is_private(os.fstat(fd)):
                return fd
        except OSError:
            pass
        os.close(fd)
        return None

    def _read_sidecar(self, name: str) -> tuple[ArtifactMeta, bytes] | None:
        fd = self._open_private(name)
        if fd is None:
            return None
        try:
            raw = os.read(fd, _MAX_SIDECAR_BYTES + 1)
            if len(raw) > _MAX_SIDECAR_BYTES:
                return None
            record = json.loads(raw)
            return ArtifactMeta(**record["meta"]), bytes.fromhex(record["mac"])
        except (OSError, ValueError, TypeError, KeyError):
            return None
        finally:
            os.close(fd)

    def _replaceable(self, name: str) -> bool:
        try:
            info = os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        return self._is_ours(info)

    def _write_temp(self, suffix: str, data: bytes) -> tuple[int, str]:
        """A new file of ours holding `data`, open for reading, and its name."""
        name = f"{_TEMP_PREFIX}{secrets.token_hex(16)}{suffix}"
        fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=self._dir_fd)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.close(fd)
            return os.open(name, _FILE_FLAGS, dir_fd=self._dir_fd), name
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self._dir_fd)
            raise

    def _write_atomically(self, name: str, data: bytes) -> None:
        fd, temp_name = self._write_temp(".json", data)
        os.close(fd)
        try:
            os.replace(temp_name, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name, dir_fd=self._dir_fd)
            raise

    def _evict(self) -> None:
        """Delete the least recently used files (any fingerprint) until under the budget."""
        with self._evicting:
            directories = self._fingerprint_dirs()
            try:
                files = [entry for dir_fd in directories for entry in self._evictable_files(dir_fd)]
                total = sum(size for _, size, _, _ in files)
                if total <= self._max_bytes:
                    return
                files.sort()
                for _, size, dir_fd, name in files:
                    if total <= self._max_bytes:
                        break
                    # unlink never follows a link: at worst (a name swapped since it was
                    # looked at) it removes a link inside our own directory.
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=dir_fd)  # a process that mapped it keeps it
                        total -= size
            finally:
                for dir_fd in directories:
                    os.close(dir_fd)

    def _fingerprint_dirs(self) -> list[int]:
        """A fresh descriptor for each fingerprint directory of ours under the root.

        Fresh ones (not `_dir_fd`): a listing moves its descriptor's offset, which
        every duplicate shares.
        """
        directories = []
        root_fd = os.open(".", _DIR_FLAGS, dir_fd=self._root_fd)
        try:
            with os.scandir(root_fd) as listing:
                names = [
                    entry.name
                    for entry in listing
                    if _FINGERPRINT.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
                ]
            for name in names:
                try:
                    # O_NOFOLLOW again: the entry may have been swapped for a link since.
                    dir_fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
                except OSError:
                    continue
                if _is_private_dir(os.fstat(dir_fd)):
                    directories.append(dir_fd)
                else:
                    os.close(dir_fd)
        finally:
            os.close(root_fd)
        return directories

    def _evictable_files(self, dir_fd: int) -> list[tuple[float, int, int, str]]:
        now = time.time()
        files = []
        with os.scandir(dir_fd) as listing:
            for entry in listing:
                if not _OURS.fullmatch(entry.name):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not self._is_ours(info):
                    continue
                if (
                    entry.name.startswith(_TEMP_PREFIX)
                    and now - info.st_mtime < _TEMP_GRACE_SECONDS
                ):
                    continue
                files.append((info.st_mtime, info.st_size, dir_fd, entry.name))
        return files


def _deserialize_fd(engine: wasmtime.Engine, fd: int) -> wasmtime.Module:
    # /proc/self/fd/N is the open file itself, even if another process renames a new
    # file over its name in between.
    return wasmtime.Module.deserialize_file(engine, str(_PROC_FD / str(fd)))


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _is_private_dir(info: os.stat_result) -> bool:
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _open_root(path: Path) -> int:
    """Open (creating it 0700 if missing) the cache root, refusing a link or a shared dir.

    The path up to the root's parent is the operator's to choose (it may go through
    links); the root itself must be a real directory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        if os.path.islink(path):
            raise SandboxError(
                f"the compiled-module cache directory {path} is a symbolic link; set "
                "COMPILED_CACHE_DIR to the directory itself"
            ) from None
        raise SandboxError(
            f"cannot open the compiled-module cache directory {path}: {exc.strerror}"
        ) from None
    if not _is_private_dir(os.fstat(fd)):
        os.close(fd)
        raise SandboxError(
            f"the compiled-module cache directory {path} must be owned by this user and "
            "not writable by group or others"
        )
    return fd


def _open_private_dir(root_fd: int, name: str, shown: Path) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=root_fd)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
    except OSError as exc:
        raise SandboxError(
            f"cannot open the compiled-module cache directory {shown}: {exc.strerror} "
            "(a symbolic link is refused)"
        ) from None
    if not _is_private_dir(os.fstat(fd)):
        os.close(fd)
        raise SandboxError(
            f"the compiled-module cache directory {shown} must be owned by this user and "
            "not writable by group or others"
        )
    return fd


def _retire_old_secret(root_fd: int, root: Path) -> None:
    """Delete the MAC key earlier releases kept in the root, if it is the file they made.

    It keys nothing now, and a key left on a shared volume would still let anyone who
    reads it forge artifacts for an older release sharing the directory. Anything else
    under that name (a link, another owner's file, another size) is left alone.
    """
    try:
        info = os.stat(_OLD_SECRET_NAME, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    made_by_us = (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
        and info.st_size == _OLD_SECRET_BYTES
    )
    if not made_by_us:
        logger.warning(
            "left %s alone: not the cache key file an earlier release made",
            root / _OLD_SECRET_NAME,
        )
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_OLD_SECRET_NAME, dir_fd=root_fd)
    logger.info("deleted %s, the disk cache's old key file", root / _OLD_SECRET_NAME)
