"""A run's input files: paths checked, `files` parts and archives expanded within limits,
and hostile archives (bombs, links, lies, damage) refused with their codes."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.file_input import (
    FilesRefused,
    InputEntry,
    InputLimits,
    from_archive,
    from_parts,
    normalize_path,
)

MiB = 1024 * 1024
LIMITS = InputLimits(max_bytes=MiB, max_entries=50, max_path_length=255, max_path_depth=8)
FILE_CODES = {
    ProblemCode.INVALID_FILE_PATH,
    ProblemCode.DUPLICATE_FILE_PATH,
    ProblemCode.FILE_TYPE_NOT_ALLOWED,
    ProblemCode.TOO_MANY_FILES,
    ProblemCode.FILES_TOO_LARGE,
    ProblemCode.INVALID_ARCHIVE,
}
# What a refusal of a bomb may cost at most: it is refused while expanding, in chunks.

Member = tuple[str, bytes | None]  # a path, and its data (None: a directory)


def make_tar(members: list[Member | tarfile.TarInfo], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_zip(members: list[Member], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression=method) as archive:
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # some tests mean it
        for name, data in members:
            info = zipfile.ZipInfo(name)  # dated 1980, not now: the same bytes in every run
            info.external_attr = (0o40755 if data is None else 0o100644) << 16
            archive.writestr(info, b"" if data is None else data, compress_type=method)
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def raw_tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One header block as a hostile tool would write it: the size is whatever it says."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(format=tarfile.GNU_FORMAT)


def refusal(call: Callable[[], object]) -> FilesRefused:
    with pytest.raises(FilesRefused) as caught:
        call()
    assert caught.value.code in FILE_CODES
    assert "\n" not in caught.value.message
    return caught.value


def archive_refusal(data: bytes) -> FilesRefused:
    return refusal(lambda: from_archive(data, LIMITS))


def in_order(entries: list[InputEntry]) -> list[InputEntry]:
    """The entries, checked to come parents first with each directory listed once."""
    seen: dict[str, bool] = {}
    for entry in entries:
        assert entry.path not in seen
        parent = entry.path.rpartition("/")[0]
        assert not parent or seen.get(parent), f"{entry.path} before its directory"
        seen[entry.path] = entry.data is None
    return entries


def as_pairs(entries: list[InputEntry]) -> list[Member]:
    return [(entry.path, entry.data) for entry in in_order(entries)]


@contextmanager
def bounded(limit_bytes: int) -> Iterator[None]:
    """Fails unless the block's peak of traced memory stays under the limit: a bomb that
    were expanded (hundreds of MiB) could not; no time is asserted (shared machines)."""
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < limit_bytes, f"peak {peak} bytes"


# Paths


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("..", "'..'"),
        ("../up", "'..'"),
        ("a/../../b", "'..'"),
        ("a/..", "'..'"),
        ("a\\b", "backslash"),
        ("..\\evil", "backslash"),
        ("a\0b", "NUL"),
        ("a\nb", "control character"),
        ("tab\there", "control character"),
        ("esc\x1b[31m", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "control character"),
        ("bad\udc80", "not valid UTF-8"),
        ("a" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),  # 128 characters, 256 bytes
        ("/".join("abcdefghi"), "deeper than 8 components"),
        (".", "directory itself"),
        ("./", "directory itself"),
        ("././/.", "directory itself"),
    ],
)
def test_a_path_breaking_a_rule_is_refused_saying_which(raw: str, rule: str) -> None:
    refused = refusal(lambda: normalize_path(raw, LIMITS))
    assert refused.code is ProblemCode.INVALID_FILE_PATH
    assert rule in refused.message


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("in.txt", "in.txt"),
        ("./a/b", "a/b"),
        ("a//b///c/", "a/b/c"),
        ("a/./b/.", "a/b"),
        ("données/é.csv", "données/é.csv"),
        ("a" * 255, "a" * 255),
        ("./" * 200 + "x", "x"),  # the normalized path is measured, not the raw one
        ("/".join("abcdefgh"), "/".join("abcdefgh")),
        ("-rf/ *?[]", "-rf/ *?[]"),
    ],
)
def test_a_path_is_normalized(raw: str, normalized: str) -> None:
    assert normalize_path(raw, LIMITS) == normalized


# Parts


def test_parts_come_back_with_their_parent_directories_first() -> None:
    entries = from_parts(
        iter([("data/in.csv", b"1,2\n"), ("b.txt", b""), ("data/deep/x", b"x")]), LIMITS
    )
    assert as_pairs(entries) == [
        ("data", None),
        ("data/in.csv", b"1,2\n"),
        ("b.txt", b""),
        ("data/deep", None),
        ("data/deep/x", b"x"),
    ]


@pytest.mark.parametrize(
    "names",
    [
        ["a", "a"],
        ["a", "./a"],
        ["d/x", "d//x/"],
        ["a", "a/b"],  # a file whose path is also needed as a directory
        ["a/b", "a"],
        ["a/b/c", "a/b"],
    ],
)
def test_a_duplicate_part_is_refused(names: list[str]) -> None:
    refused = refusal(lambda: from_parts([(name, b"x") for name in names], LIMITS))
    assert refused.code is ProblemCode.DUPLICATE_FILE_PATH


def test_a_part_with_a_bad_path_is_refused() -> None:
    refused = refusal(lambda: from_parts([("ok", b""), ("../etc/passwd", b"")], LIMITS))
    assert refused.code is ProblemCode.INVALID_FILE_PATH
    assert "../etc/passwd" in refused.message
    refused = refusal(lambda: from_parts([("./", b"")], LIMITS))
    assert "directory itself" in refused.message


def test_implied_directories_count_as_entries() -> None:
    limits = InputLimits(max_bytes=MiB, max_entries=3, max_path_length=255, max_path_depth=8)
    assert len(from_parts([("a/b/c", b"")], limits)) == 3
    refused = refusal(lambda: from_parts([("a/b/c", b""), ("a/d", b"")], limits))
    assert refused.code is ProblemCode.TOO_MANY_FILES


def test_parts_are_held_to_the_byte_limit() -> None:
    half = bytes(MiB // 2)
    assert len(from_parts([("a", half), ("b", half)], LIMITS)) == 2
    refused = refusal(lambda: from_parts([("a", half), ("b", half), ("c", b"!")], LIMITS))
    assert refused.code is ProblemCode.FILES_TOO_LARGE


# Archives that are fine


TREE: list[Member] = [
    ("./", None),
    ("./src/", None),
    ("./src/main.c", b"int main(void) { return 0; }\n"),
    ("./src/empty/", None),
    ("./data/in.bin", bytes(range(256)) * 40),
    ("./é/ü.txt", "ß\n".encode()),
]
EXPECTED: list[Member] = [
    ("src", None),
    ("src/main.c", b"int main(void) { return 0; }\n"),
    ("src/empty", None),
    ("data", None),
    ("data/in.bin", bytes(range(256)) * 40),
    ("é", None),
    ("é/ü.txt", "ß\n".encode()),
]
BUILDERS: dict[str, Callable[[list[Member]], bytes]] = {
    "pax": make_tar,
    "gnu": lambda members: make_tar(members, tarfile.GNU_FORMAT),
    "ustar": lambda members: make_tar(members, tarfile.USTAR_FORMAT),
    "tar.gz": lambda members: gz(make_tar(members)),
    "zip": lambda members: make_zip(list(members)),
    "zip-stored": lambda members: make_zip(list(members), zipfile.ZIP_STORED),
}


@pytest.mark.parametrize("kind", BUILDERS)
def test_an_archive_expands_with_its_empty_directories(kind: str) -> None:
    assert as_pairs(from_archive(BUILDERS[kind](TREE), LIMITS)) == EXPECTED


@pytest.mark.parametrize("kind", BUILDERS)
def test_an_empty_archive_has_no_entries(kind: str) -> None:
    assert from_archive(BUILDERS[kind]([]), LIMITS) == []


def test_an_empty_zip_is_its_end_record_alone() -> None:
    data = make_zip([])
    assert data.startswith(b"PK\x05\x06")
    assert from_archive(data, LIMITS) == []


@pytest.mark.parametrize("kind", BUILDERS)
def test_a_directory_listed_after_its_files_or_twice_is_no_duplicate(kind: str) -> None:
    members: list[Member] = [("d/f", b"f"), ("d/", None), ("d/", None), ("./", None)]
    assert as_pairs(from_archive(BUILDERS[kind](members), LIMITS)) == [
        ("d", None),
        ("d/f", b"f"),
    ]


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize(
    "members",
    [
        [("a", b"1"), ("a", b"2")],
        [("a", b"1"), ("./a", b"2")],
        [("a", b"1"), ("a/b", b"2")],
        [("a/b", b"1"), ("a", b"2")],
        [("a/", None), ("a", b"2")],
    ],
)
def test_a_duplicate_member_is_refused(kind: str, members: list[Member]) -> None:
    assert archive_refusal(BUILDERS[kind](members)).code is ProblemCode.DUPLICATE_FILE_PATH


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/cron.d/x", "a\\b"])
def test_a_member_with_a_bad_path_is_refused(kind: str, name: str) -> None:
    refused = archive_refusal(BUILDERS[kind]([("ok", b""), (name, b"x")]))
    assert refused.code is ProblemCode.INVALID_FILE_PATH


def test_a_long_path_in_a_pax_or_gnu_header_is_read_whole() -> None:
    name = "/".join(["d" * 30] * 8)  # 247 bytes: more than a header holds, so a pax
    # record or a GNU long name carries it
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        entries = from_archive(make_tar([(name, b"x")], fmt), LIMITS)
        assert entries[-1] == InputEntry(name, b"x")


def test_zip_names_without_the_utf8_flag_are_utf8_if_they_decode_else_cp437() -> None:
    def unflagged(name: bytes) -> bytes:
        data = bytearray(make_zip([("N" * len(name), b"x")]))
        for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = data.index(signature)
            (flags,) = struct.unpack_from("<H", data, at + flags_at)
            struct.pack_into("<H", data, at + flags_at, flags & ~0x800)
            name_at = data.index(b"N" * len(name), at)
            data[name_at : name_at + len(name)] = name
        return bytes(data)

    assert from_archive(unflagged("é.txt".encode()), LIMITS)[0].path == "é.txt"
    assert from_archive(unflagged(b"\x82.txt"), LIMITS)[0].path == "é.txt"  # cp437


def test_a_tar_file_named_as_the_root_is_refused() -> None:
    refused = archive_refusal(make_tar([("./", None), (".", b"x")]))
    assert refused.code is ProblemCode.INVALID_FILE_PATH


def as_zip64(data: bytes) -> bytes:
    """The zip with a zip64 end of central directory, as zipfile writes past 65,535 members."""
    end = data.rindex(b"PK\x05\x06")
    _, _, _, _, count, size, offset, _ = struct.unpack_from("<4s4H2LH", data, end)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    short = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, *[0xFFFF] * 2, *[0xFFFF_FFFF] * 2, 0)
    return data[:end] + record + locator + short


def test_a_zip_with_a_comment_or_a_zip64_end_expands() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("f", b"x")
        archive.comment = b"a comment: the end record is no longer last"
    assert from_archive(out.getvalue(), LIMITS) == [InputEntry("f", b"x")]
    assert as_pairs(from_archive(as_zip64(make_zip(TREE)), LIMITS)) == EXPECTED


def test_a_zip_directory_may_say_so_by_its_mode_alone() -> None:
    info = zipfile.ZipInfo("d")
    info.external_attr = (stat.S_IFDIR | 0o755) << 16
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(info, b"")
        archive.writestr("d/f", b"f")
    assert as_pairs(from_archive(out.getvalue(), LIMITS)) == [("d", None), ("d/f", b"f")]


# Member types


@pytest.mark.parametrize(
    ("member", "kind"),
    [
        (special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("inside", tarfile.SYMTYPE, "ok"), "symbolic link"),
        (special("hard", tarfile.LNKTYPE, "ok"), "hard link"),
        (special("tty", tarfile.CHRTYPE), "device"),
        (special("disk", tarfile.BLKTYPE), "device"),
        (special("pipe", tarfile.FIFOTYPE), "FIFO"),
        (special("label", b"V"), "of type b'V'"),
    ],
)
def test_a_tar_member_that_is_not_a_file_or_directory_is_refused(
    member: tarfile.TarInfo, kind: str
) -> None:
    refused = archive_refusal(make_tar([("ok", b"data"), member]))
    assert refused.code is ProblemCode.FILE_TYPE_NOT_ALLOWED
    assert member.name in refused.message
    assert kind in refused.message


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFLNK | 0o777, "symbolic link"),
        (stat.S_IFIFO | 0o644, "file type 0o10000"),
        (stat.S_IFCHR | 0o644, "file type 0o20000"),
        (stat.S_IFSOCK | 0o644, "file type 0o140000"),
    ],
)
def test_a_zip_member_whose_mode_is_not_a_file_or_directory_is_refused(
    mode: int, kind: str
) -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = mode << 16
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(info, b"/etc/passwd")
    refused = archive_refusal(out.getvalue())
    assert refused.code is ProblemCode.FILE_TYPE_NOT_ALLOWED
    assert "'link'" in refused.message
    assert kind in refused.message


def pax_sparse(headers: dict[str, str]) -> tarfile.TarInfo:
    member = tarfile.TarInfo("holes")
    member.pax_headers = {"GNU.sparse.name": "holes", "GNU.sparse.realsize": "9", **headers}
    return member


def gnu_sparse(extended: bool) -> bytes:
    header = bytearray(raw_tar_header("holes", 0, tarfile.GNUTYPE_SPARSE))
    header[482] = extended  # more of the map in the blocks that follow: none do
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


@pytest.mark.parametrize(
    "data",
    [
        gnu_sparse(extended=False) + bytes(1024),
        gnu_sparse(extended=True),  # tarfile's own reading of it fails with an IndexError
        make_tar([pax_sparse({"GNU.sparse.size": "9", "GNU.sparse.offset": "0"})]),
        make_tar([pax_sparse({"GNU.sparse.map": "0,9"})]),
        make_tar([pax_sparse({"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})]),
    ],
    ids=["gnu", "gnu-extended", "pax-0.0", "pax-0.1", "pax-1.0"],
)
def test_a_sparse_tar_member_is_refused(data: bytes) -> None:
    refused = archive_refusal(data)
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "'holes' is a sparse file" in refused.message


def test_an_encrypted_zip_member_is_refused() -> None:
    data = bytearray(make_zip([("secret", b"x")]))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + flags_at
        data[at] |= 0x01
    refused = archive_refusal(bytes(data))
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "encrypted members are not supported" in refused.message


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_methods_whose_output_zipfile_cannot_bound_are_refused(method: int) -> None:
    refused = archive_refusal(make_zip([("f", b"x" * 1000)], method))
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "only stored and deflate" in refused.message


# Limits, and archives built to hurt


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """128 MiB of zeros deflated to about 128 KiB, streamed in: 128 times the limit."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros", "w", force_zip64=True) as member,
    ):
        block = bytes(MiB)
        for _ in range(128):
            member.write(block)
    return out.getvalue()


def test_a_zip_bomb_is_refused_while_expanding(zip_bomb: bytes) -> None:
    assert len(zip_bomb) < MiB // 4
    with bounded(3 * LIMITS.max_bytes):
        refused = archive_refusal(zip_bomb)
    assert refused.code is ProblemCode.FILES_TOO_LARGE


def test_a_gzip_bomb_of_a_tar_is_refused_while_expanding() -> None:
    # gzip members concatenate: 1 GiB of zeros behind a header declaring them, in 1 MiB.
    header = raw_tar_header("zeros", 1 << 30)
    bomb = gz(header) + gz(bytes(MiB)) * 1024
    assert len(bomb) < 2 * MiB
    with bounded(3 * LIMITS.max_bytes):
        refused = archive_refusal(bomb)
    assert refused.code is ProblemCode.FILES_TOO_LARGE


def test_a_declared_size_is_not_trusted() -> None:
    # It declares a terabyte: what is read is counted, and it is over the limit...
    huge = raw_tar_header("big", 1 << 40)
    data = huge + bytes(2 * MiB)
    with bounded(3 * LIMITS.max_bytes):
        refused = archive_refusal(data)
    assert refused.code is ProblemCode.FILES_TOO_LARGE
    # ...or there is not that much, and the archive is cut short.
    assert archive_refusal(huge + bytes(4 * 512)).code is ProblemCode.INVALID_ARCHIVE


def test_a_negative_size_is_refused() -> None:
    refused = archive_refusal(raw_tar_header("back", -512) + bytes(2048))
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "negative size" in refused.message


def test_a_pax_header_bomb_is_refused_before_it_is_read() -> None:
    # A pax header that declares a gigabyte of records, and has them (compressed).
    header = raw_tar_header("././@PaxHeader", 1 << 30, tarfile.XHDTYPE)
    bomb = gz(header) + gz(b"9" * MiB) * 1024
    with bounded(3 * LIMITS.max_bytes):
        refused = archive_refusal(bomb)
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "extended header" in refused.message


def test_a_huge_gnu_long_name_is_refused_before_it_is_read() -> None:
    data = raw_tar_header("././@LongLink", 1 << 30, tarfile.GNUTYPE_LONGNAME) + bytes(MiB)
    assert archive_refusal(data).code is ProblemCode.INVALID_ARCHIVE


def test_headers_are_counted_with_the_files() -> None:
    # Global pax headers of 16 KiB each: no entry, no data, but every byte is read.
    record = b"16000 comment=" + b"x" * (16000 - 15) + b"\n"
    assert len(record) == 16000
    one = raw_tar_header("pax_global_header", len(record), tarfile.XGLTYPE)
    one += record + bytes(-len(record) % 512)
    after = make_tar([("f", b"x")])
    assert from_archive(one * 4 + after, LIMITS) == [InputEntry("f", b"x")]
    data = gz(one * 200 + after)
    with bounded(3 * LIMITS.max_bytes):
        refused = archive_refusal(data)
    assert refused.code is ProblemCode.FILES_TOO_LARGE
    assert "headers and padding" in refused.message


def test_a_zip_central_directory_that_understates_a_size_is_not_believed() -> None:
    data = bytearray(make_zip([("f", bytes(2 * MiB))]))
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<L", data, data.index(signature) + size_at, 10)
    # zipfile stops at the declared size; the CRC of what it read then fails.
    assert archive_refusal(bytes(data)).code is ProblemCode.INVALID_ARCHIVE


def test_a_zip_central_directory_that_overstates_a_size_is_not_believed() -> None:
    data = bytearray(make_zip([("f", bytes(2 * MiB))]))
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<L", data, data.index(signature) + size_at, 0xFFFF_FFF0)
    overstated = bytes(data)
    with bounded(3 * LIMITS.max_bytes):
        refused = archive_refusal(overstated)
    assert refused.code is ProblemCode.FILES_TOO_LARGE


def test_files_of_an_archive_are_held_to_the_byte_limit_together() -> None:
    third = bytes(400 * 1024)
    assert len(from_archive(make_tar([("a", third), ("b", third)]), LIMITS)) == 2
    data = make_zip([("a", third), ("b", third), ("c", third)])
    assert archive_refusal(data).code is ProblemCode.FILES_TOO_LARGE


@pytest.mark.parametrize("kind", BUILDERS)
def test_an_archive_of_too_many_entries_is_refused(kind: str) -> None:
    fits: list[Member] = [("./", None), *((f"f{i}", b"") for i in range(50))]
    assert len(from_archive(BUILDERS[kind](fits), LIMITS)) == 50
    data = BUILDERS[kind]([*fits, ("one-more", b"")])
    assert archive_refusal(data).code is ProblemCode.TOO_MANY_FILES
    nested = BUILDERS[kind]([(f"d{i}/f", b"") for i in range(26)])  # 52 with directories
    assert archive_refusal(nested).code is ProblemCode.TOO_MANY_FILES


@pytest.mark.parametrize("zip64", [False, True])
def test_a_huge_zip_directory_is_counted_before_zipfile_reads_it(zip64: bool) -> None:
    data = bytearray(make_zip([(f"{i:05}", b"") for i in range(5_000)], zipfile.ZIP_STORED))
    # The end record claims a single entry: the directory itself is what is counted.
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<2H", data, end + 8, 1, 1)
    lying = as_zip64(bytes(data)) if zip64 else bytes(data)
    with bounded(MiB):  # zipfile's 5,000 objects of it would take 2.5 MiB
        refused = archive_refusal(lying)
    assert refused.code is ProblemCode.TOO_MANY_FILES


# Damage


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world\n",
        b"\x1f\x8b",
        b"\x1f\x8b\x08\x00garbage",
        b"PK\x03\x04garbage",
        b"PK\x05\x06",
        bytes(511),
        bytes(513),
        b"\x00" * 1024 + b"junk" + bytes(508),
        b"%PDF-1.7\n" + bytes(1024),
        gz(b"plain text, not a tar\n"),
        gz(b""),
    ],
    ids=lambda data: f"{len(data)}-bytes-{data[:4].hex()}",
)
def test_what_is_not_an_archive_is_refused(data: bytes) -> None:
    assert archive_refusal(data).code is ProblemCode.INVALID_ARCHIVE


@pytest.mark.parametrize("kind", BUILDERS)
def test_a_truncated_archive_is_refused(kind: str) -> None:
    whole = BUILDERS[kind](TREE)
    end = len(whole)
    if kind in ("pax", "gnu", "ustar"):
        # A tar ends with its first zero block: the padding after it may go.
        last_data = len(whole.rstrip(b"\0"))
        end = last_data + -last_data % 512 + 512
    cuts = {*range(0, end, 512), *range(1, end, 97)}
    for cut in sorted(cuts):
        assert archive_refusal(whole[:cut]).code is ProblemCode.INVALID_ARCHIVE, cut
    assert from_archive(whole[:end], LIMITS)


def test_a_damaged_header_in_the_middle_of_a_tar_is_refused() -> None:
    data = bytearray(make_tar([("a", b"x"), ("b", b"y"), ("c", b"z")]))
    data[1024:1536] = b"\xff" * 512  # b's header
    refused = archive_refusal(bytes(data))
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "at byte 1024" in refused.message


def test_a_gzip_stream_is_read_to_its_end_and_checked() -> None:
    padded = make_tar([("a", b"x")]) + bytes(20 * 10240)  # as `tar -b` pads, say
    data = bytearray(gz(padded))
    assert from_archive(bytes(data), LIMITS) == [InputEntry("a", b"x")]
    data[-8] ^= 0xFF  # the CRC-32, after the tar's end
    assert archive_refusal(bytes(data)).code is ProblemCode.INVALID_ARCHIVE


def test_a_damaged_zip_member_is_refused() -> None:
    data = bytearray(make_zip([("a", b"hello " * 100)], zipfile.ZIP_STORED))
    data[data.index(b"hello")] ^= 0x20
    refused = archive_refusal(bytes(data))
    assert refused.code is ProblemCode.INVALID_ARCHIVE
    assert "CRC" in refused.message


# Anything at all


CORPUS = [
    make_tar(TREE),
    make_tar(TREE, tarfile.GNU_FORMAT),
    make_tar([("x" * 150 + "/f", b"long"), special("l", tarfile.SYMTYPE, "f")]),
    make_tar([pax_sparse({"GNU.sparse.major": "1", "GNU.sparse.minor": "0"})]),
    gnu_sparse(extended=True) + make_tar([("f", b"x")], tarfile.GNU_FORMAT),
    gz(make_tar(TREE)),
    make_zip(list(TREE)),
    make_zip(list(TREE), zipfile.ZIP_STORED),
]


def _fix_tar_checksums(data: bytearray) -> None:
    """Mutated headers with their checksum right again, so tarfile reads them further."""
    for at in range(0, len(data) - 511, 512):
        if data[at + 257 : at + 262] == b"ustar":
            block = data[at : at + 512]
            block[148:156] = b" " * 8
            data[at + 148 : at + 156] = b"%06o\0 " % sum(block)


@st.composite
def mutated_archives(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "repeat"]))
        if operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "set" and position < len(data):
            data[position] = draw(st.sampled_from([0x00, 0x01, 0x2F, 0x30, 0x37, 0x7F, 0xFF]))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 600))]
        elif operation == "cut":
            del data[position:]
        elif operation == "repeat":
            data[position:position] = data[position : position + draw(st.integers(1, 1024))]
    if draw(st.booleans()):
        _fix_tar_checksums(data)
    return bytes(data)


def anything_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same inputs in every run; a failure reproduces locally
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def outcome(data: bytes) -> list[InputEntry] | FilesRefused:
    try:
        return from_archive(data, LIMITS)
    except FilesRefused as refused:
        return refused


def expands_or_is_refused(data: bytes) -> None:
    entries = outcome(data)  # anything else it raised fails the test
    if isinstance(entries, FilesRefused):
        assert entries.code in FILE_CODES
        assert "\n" not in entries.message
        return
    in_order(entries)
    assert sum(len(entry.data or b"") for entry in entries) <= LIMITS.max_bytes
    assert len(entries) <= LIMITS.max_entries


@anything_settings(300)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.tuples(
            st.sampled_from([b"\x1f\x8b\x08", b"PK\x03\x04", b"PK\x05\x06", bytes(1024)]),
            st.binary(max_size=2048),
        ).map(b"".join),
    )
)
def test_arbitrary_bytes_expand_or_are_refused(data: bytes) -> None:
    expands_or_is_refused(data)


@anything_settings(500)
@given(data=mutated_archives())
def test_mutated_archives_expand_or_are_refused(data: bytes) -> None:
    expands_or_is_refused(data)


def _pax_archive(records: bytes) -> bytes:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = len(records)
    member = tarfile.TarInfo("f")
    padding = b"\0" * (-len(records) % tarfile.BLOCKSIZE)
    return (
        header.tobuf(tarfile.USTAR_FORMAT)
        + records
        + padding
        + member.tobuf(tarfile.USTAR_FORMAT)
        + b"\0" * (2 * tarfile.BLOCKSIZE)
    )


@pytest.mark.parametrize(
    "records",
    [
        b"9" * 16000,  # no record at all: tarfile's regex backtracks over every digit
        b"16011 comment=" + b"7" * 15996 + b"\n",  # well formed, but one long run of digits
        b"12 path=a\n",  # a length that is not the record's
        b"10 path a\n",  # no '='
    ],
    ids=["digits", "long-digit-value", "wrong-length", "no-equals"],
)
def test_pax_records_that_cost_or_lie_are_refused_at_once(records: bytes) -> None:
    """CPython before 3.11.10 parses these quadratically (CVE-2024-6232): 0.4 s each. They
    are refused by the linear check, before tarfile's own parser sees them."""
    with pytest.raises(FilesRefused) as refused:
        from_archive(_pax_archive(records), LIMITS)
    assert refused.value.code is ProblemCode.INVALID_ARCHIVE
    assert "pax header" in refused.value.message


def test_a_pax_archive_with_a_long_path_expands() -> None:
    buffer = io.BytesIO()
    path = "/".join(["d" * 60] * 3) + "/file"  # longer than a ustar header holds
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(path)
        info.size = 3
        info.pax_headers = {"comment": "made with tar", "mtime": "1700000000.5"}
        archive.addfile(info, io.BytesIO(b"abc"))
    entries = from_archive(buffer.getvalue(), LIMITS)
    assert entries[-1] == InputEntry(path, b"abc")
