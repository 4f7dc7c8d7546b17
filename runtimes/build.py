"""Builds the bundled language runtimes (QuickJS-ng, Lua) for wasm32-wasi, byte for byte.

    .venv/bin/python runtimes/build.py          # rebuild src/wasmwiz/runtimes/ (make runtimes)
    .venv/bin/python runtimes/build.py --check  # build elsewhere, compare with what is committed

The sources are pinned source distributions from PyPI, fetched by pip and checked against
the SHA-256 below; the compiler is Zig's clang from the pinned `ziglang` package. The
same inputs give the same bytes: sources are compiled in a fixed order, every path the
compiler could record is mapped to a fixed one, no time is recorded, and the output is
stripped of everything but code and data. docs/runtimes.md says what ships and how to
change it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUR_SOURCES = ROOT / "runtimes" / "src"
OUTPUT = ROOT / "src" / "wasmwiz" / "runtimes"

# The bytes depend on the compiler: a different ziglang builds different (working) files,
# and --check would fail. Move this with the lock, then rebuild and commit.
ZIG_VERSION = "0.17.1"
TARGET = "wasm32-wasi"
# The C stack in linear memory (Zig's default is 16 MiB, all of it counted against a
# run's memory limit). Zig places it below the data, so an overflow traps instead of
# overwriting anything. QuickJS stops at 192 KiB of it (quickjs_main.c says why).
STACK_BYTES = 1024 * 1024
# Where the build tree and Zig's own files appear to the compiler, whatever the machine.
BUILD_PREFIX = "/wasmwiz-runtimes"
ZIG_PREFIX = "/zig"


@dataclass(frozen=True)
class Sdist:
    """A pinned source distribution on PyPI."""

    project: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Runtime:
    """One runtime: which sdist its sources come from and how they are compiled."""

    name: str
    language: str
    sdist: Sdist
    source_dir: str  # inside the sdist's top directory
    sources: tuple[str, ...]  # C files in source_dir
    ours: tuple[str, ...]  # files from runtimes/src; the first is the C main
    flags: tuple[str, ...]
    libraries: tuple[str, ...]
    spdx: str
    license_file: str
    version: Callable[[Path], str]  # read from the sources, given source_dir
    license_text: Callable[[Path], str]


def header_defines(header: Path, *names: str) -> list[str]:
    """The values of `#define NAME value` lines, quotes removed, in the order asked."""
    text = header.read_text(encoding="utf-8")
    values = []
    for name in names:
        match = re.search(rf"^#define\s+{name}\s+(.*?)\s*$", text, flags=re.MULTILINE)
        if match is None:
            raise SystemExit(f"{header.name}: no #define {name}")
        values.append(match.group(1).strip('"'))
    return values


def quickjs_version(source_dir: Path) -> str:
    major, minor, patch, suffix = header_defines(
        source_dir / "quickjs.h",
        "QJS_VERSION_MAJOR",
        "QJS_VERSION_MINOR",
        "QJS_VERSION_PATCH",
        "QJS_VERSION_SUFFIX",
    )
    return f"{major}.{minor}.{patch}{suffix}"


def lua_version(source_dir: Path) -> str:
    major, minor, release = header_defines(
        source_dir / "lua.h", "LUA_VERSION_MAJOR", "LUA_VERSION_MINOR", "LUA_VERSION_RELEASE"
    )
    return f"{major}.{minor}.{release}"


def licence_notices(path: Path) -> list[str]:
    """The licence notices in a C file's comments, without comment syntax or the line
    before them that says what the file is."""
    found = []
    for comment in re.findall(r"/\*(.*?)\*/", path.read_text(encoding="utf-8"), flags=re.DOTALL):
        if "Permission is hereby granted" not in comment:
            continue
        lines = [re.sub(r"^\s*\*? ?", "", line).rstrip() for line in comment.splitlines()]
        start = next(i for i, line in enumerate(lines) if re.match(r"Copyright|UNICODE", line))
        found.append("\n".join(lines[start:]).strip("\n"))
    return found


def quickjs_license(source_dir: Path) -> str:
    """Each distinct licence notice in QuickJS-ng's files, with the files that carry it.

    The sdist's own LICENSE is its Python binding's, which WasmWiz does not use; the
    engine's terms are in its files: MIT (several copyright holders) and, for the Unicode
    tables in libunicode-table.h, the Unicode License v3.
    """
    notices: dict[str, list[str]] = {}
    for path in sorted(source_dir.iterdir()):
        if path.suffix in (".c", ".h"):
            for notice in licence_notices(path):
                notices.setdefault(notice, []).append(path.name)
    parts = [
        f"QuickJS-ng {quickjs_version(source_dir)}, from the quickjs-ng {QUICKJS_NG.version} "
        "source distribution\n(upstream-quickjs/). Its licence is in the notices its files "
        "carry, reproduced here\nwith the files that carry each.\n"
    ]
    for terms, files in notices.items():
        parts.append(f"Files: {', '.join(files)}\n\n{terms}\n")
    return "\n".join(parts)


def lua_license(source_dir: Path) -> str:
    """The notice at the end of lua.h, which Lua's own documentation names its licence."""
    text = (source_dir / "lua.h").read_text(encoding="utf-8")
    block = text[text.index("* Copyright (C)") : text.rindex("SOFTWARE.") + len("SOFTWARE.")]
    notice = "\n".join(re.sub(r"^\* ?", "", line).rstrip() for line in block.splitlines())
    return (
        f"Lua {lua_version(source_dir)}, from the lupa {LUPA.version} source distribution "
        "(third-party/lua54/).\nIts licence is this notice from lua.h:\n\n"
        f"{notice}\n"
    )


QUICKJS_NG = Sdist(
    "quickjs-ng",
    "0.17.0.2",
    "quickjs_ng-0.17.0.2.tar.gz",
    "43d2e48272208721a7aaea8e3f02d4b9318f12ef20cc4f5421b59d9a470706ef",
)
# The newest lupa with Lua 5.4 (it bundles 5.1 to 5.5 and LuaJIT; only lua54 is used).
LUPA = Sdist(
    "lupa",
    "2.8",
    "lupa-2.8.tar.gz",
    "d8022641b9ec8ecf2c5ecbe9f47e5a70e0b87c4b5ae921b92cb02a638e0acd08",
)

# Lua's own makefile: CORE_O and LIB_O (not lua.c and luac.c, its commands; not onelua.c,
# the same sources in one file; not ltests.c, its internal tests).
LUA_SOURCES = (
    *("lapi.c", "lcode.c", "lctype.c", "ldebug.c", "ldo.c", "ldump.c", "lfunc.c", "lgc.c"),
    *("llex.c", "lmem.c", "lobject.c", "lopcodes.c", "lparser.c", "lstate.c", "lstring.c"),
    *("ltable.c", "ltm.c", "lundump.c", "lvm.c", "lzio.c"),
    *("lauxlib.c", "lbaselib.c", "lcorolib.c", "ldblib.c", "liolib.c", "lmathlib.c"),
    *("loadlib.c", "loslib.c", "lstrlib.c", "ltablib.c", "lutf8lib.c", "linit.c"),
)

RUNTIMES = (
    Runtime(
        name="quickjs",
        language="JavaScript",
        sdist=QUICKJS_NG,
        source_dir="upstream-quickjs",
        # As the sdist's setup.py builds the engine (its module.c is the Python binding).
        sources=("dtoa.c", "libregexp.c", "libunicode.c", "quickjs.c"),
        ours=("quickjs_main.c", "inspect.js"),
        # NDEBUG as in QuickJS-ng's release builds: a failed assert would be a trap.
        flags=("-O2", "-DNDEBUG"),
        libraries=(),
        spdx="MIT AND Unicode-3.0",
        license_file="QuickJS-ng.LICENSE",
        version=quickjs_version,
        license_text=quickjs_license,
    ),
    Runtime(
        name="lua",
        language="Lua",
        sdist=LUPA,
        source_dir="third-party/lua54",
        sources=LUA_SOURCES,
        ours=("lua_main.c", "lua_wasi.h", "lua_shim/setjmp.h"),
        flags=(
            "-O2",
            # As Lua's makefile builds the lua command.
            "-DLUA_COMPAT_5_3",
            '-DLUA_USER_H="lua_wasi.h"',
            "-Ilua_shim",
            # os.clock reads the process CPU clock through wasi-libc's emulation.
            "-D_WASI_EMULATED_PROCESS_CLOCKS",
        ),
        libraries=("-lwasi-emulated-process-clocks",),
        spdx="MIT",
        license_file="Lua.LICENSE",
        version=lua_version,
        license_text=lua_license,
    ),
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(sdists: list[Sdist], into: Path) -> dict[str, Path]:
    """Download the sdists with pip, which checks their hashes before using them."""
    into.mkdir(parents=True)
    requirements = into / "requirements.txt"
    requirements.write_text(
        "".join(f"{s.project}=={s.version} --hash=sha256:{s.sha256}\n" for s in sdists)
    )
    # pip prepares each sdist's metadata, which runs its setup.py: with the venv's locked
    # setuptools (no build isolation, nothing else fetched), and with lupa told not to
    # build LuaJIT for the host (a minute of work nothing here uses).
    subprocess.run(  # noqa: S603 - our own argv
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
            *("--no-binary", ":all:", "--no-build-isolation", "--require-hashes"),
            *("-r", str(requirements), "-d", str(into)),
        ],
        check=True,
        env={**os.environ, "LUPA_NO_LUAJIT": "true"},
    )
    paths = {}
    for sdist in sdists:
        path = into / sdist.filename
        if sha256_of(path) != sdist.sha256:  # pip checked it too: this one is ours
            raise SystemExit(f"{sdist.filename}: SHA-256 is not the pinned one")
        paths[sdist.project] = path
    return paths


def unpack(archive: Path, into: Path) -> Path:
    """The sdist's top directory, extracted (the "data" filter: no links out, no devices)."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


def zig_lib_dir() -> Path:
    spec = importlib.util.find_spec("ziglang")
    assert spec is not None
    assert spec.origin is not None
    return Path(spec.origin).parent / "lib"


def compile_runtime(runtime: Runtime, source_dir: Path, build_root: Path, output: Path) -> None:
    """One zig cc run over the runtime's sources, copied with ours into one directory."""
    tree = build_root / runtime.name
    shutil.copytree(source_dir, tree)
    for name in runtime.ours:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OUR_SOURCES / name, tree / name)
    command = [
        *(sys.executable, "-m", "ziglang", "cc", "-target", TARGET),
        *runtime.flags,
        "-g0",
        f"-ffile-prefix-map={build_root}={BUILD_PREFIX}",
        f"-ffile-prefix-map={zig_lib_dir()}={ZIG_PREFIX}",
        f"-Wl,-z,stack-size={STACK_BYTES}",
        # No DWARF and no name section: a trap's backtrace shows indices, not names.
        "-Wl,--strip-all",
        "-o",
        str(output),
        runtime.ours[0],
        *runtime.sources,
        *runtime.libraries,
    ]
    # SOURCE_DATE_EPOCH fixes __DATE__ and __TIME__, should a future source use them.
    environment = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    subprocess.run(command, cwd=tree, check=True, env=environment)  # noqa: S603 - our own argv


def build(into: Path, work: Path) -> None:
    """Fetch, compile and describe every runtime into `into`."""
    archives = fetch([r.sdist for r in RUNTIMES], work / "sdists")
    (into / "licenses").mkdir(parents=True, exist_ok=True)
    described = []
    for runtime in RUNTIMES:
        top = unpack(archives[runtime.sdist.project], work / "unpacked" / runtime.name)
        source_dir = top / runtime.source_dir
        wasm = into / f"{runtime.name}.wasm"
        print(f"compiling {runtime.name} ({len(runtime.sources) + 1} C files)", flush=True)
        compile_runtime(runtime, source_dir, work / "build", wasm)
        license_path = into / "licenses" / runtime.license_file
        license_path.write_text(runtime.license_text(source_dir), encoding="utf-8")
        described.append(
            {
                "name": runtime.name,
                "language": runtime.language,
                "version": runtime.version(source_dir),
                "file": wasm.name,
                "sha256": sha256_of(wasm),
                "size": wasm.stat().st_size,
                "usage": "stdin",
                "source": {"sdist": runtime.sdist.filename, "sha256": runtime.sdist.sha256},
                "license": runtime.spdx,
                "license_file": f"licenses/{runtime.license_file}",
            }
        )
    manifest = {
        "built_by": "runtimes/build.py",
        "toolchain": {"ziglang": ZIG_VERSION, "target": TARGET},
        "runtimes": described,
    }
    (into / "runtimes.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def generated(directory: Path) -> list[str]:
    """The files this script writes in `directory` (other files there are not its own)."""
    paths = [*directory.glob("*.wasm"), *directory.glob("runtimes.json")]
    paths += directory.glob("licenses/*")
    return sorted(str(path.relative_to(directory)) for path in paths if path.is_file())


def compare(built: Path, committed: Path) -> list[str]:
    """What differs between a fresh build and the committed files, one line each."""
    problems = []
    for name in sorted(set(generated(built)) | set(generated(committed))):
        ours, theirs = built / name, committed / name
        if not theirs.exists():
            problems.append(f"{name}: built but not committed")
        elif not ours.exists():
            problems.append(f"{name}: committed but not built")
        elif sha256_of(ours) != sha256_of(theirs):
            problems.append(
                f"{name}: differs (committed {sha256_of(theirs)}, built {sha256_of(ours)})"
            )
    return problems


def install(built: Path, output: Path) -> None:
    """Replace the generated files in `output` with the ones in `built`."""
    for name in generated(output):
        (output / name).unlink()
    for name in generated(built):
        (output / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built / name, output / name)
        print(f"{sha256_of(output / name)}  {name}")


def check_toolchain() -> None:
    if importlib.util.find_spec("ziglang") is None:
        raise SystemExit("ziglang is not installed: `make install` installs the dev toolchain")
    installed = importlib.metadata.version("ziglang")
    if installed != ZIG_VERSION:
        raise SystemExit(
            f"ziglang {installed} is installed, but the runtimes are built with {ZIG_VERSION}: "
            "its output would differ (see ZIG_VERSION in runtimes/build.py)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="build into a temporary directory and compare with the committed files",
    )
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="where to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    check_toolchain()
    with tempfile.TemporaryDirectory(prefix="wasmwiz-runtimes-") as temporary:
        work = Path(temporary)
        build(work / "out", work)
        if not args.check:
            install(work / "out", args.output)
            return 0
        problems = compare(work / "out", args.output)
    if problems:
        print(f"The committed runtimes in {args.output} are not what this script builds:")
        for problem in problems:
            print(f"  {problem}")
        print("Rebuild them with `make runtimes` and commit the result.")
        return 1
    print(f"The committed runtimes in {args.output} are exactly what this script builds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
