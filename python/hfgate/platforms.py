"""The platforms hfgate has a binary for, and what a binary file is built for.

hfgate's wheels carry a static Go binary for Linux (x86_64, aarch64) and macOS (x86_64,
arm64); the ``py3-none-any`` wheel carries the Python package only. The launcher asks
``check`` whether a binary runs on this machine before it execs it, and build_wheel.py asks
``inspect`` whether a binary is the one a wheel's tag names: one reader of ELF and Mach-O
headers for both (our own, since the standard library reads neither; a few fields suffice).

Standard library only.
"""

import platform
import struct
import sys
from collections import namedtuple

__all__ = ["SUPPORTED", "BinaryError", "Binary", "current", "describe", "inspect", "check"]

# (GOOS, GOARCH) with a wheel that carries the binary -> the wheel tag's machine name.
SUPPORTED = {
    ("linux", "amd64"): "x86_64",
    ("linux", "arm64"): "aarch64",
    ("darwin", "amd64"): "x86_64",
    ("darwin", "arm64"): "arm64",
}

# What platform.machine() says -> GOARCH.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_OS_NAMES = {"linux": "Linux", "darwin": "macOS"}

# ELF e_machine -> GOARCH (the others named only in messages).
_ELF = {62: "amd64", 183: "arm64", 3: "386", 40: "arm"}
# Mach-O cputype -> GOARCH.
_MACHO = {0x01000007: "amd64", 0x0100000C: "arm64", 7: "386", 12: "arm"}
_MH_MAGIC_64 = 0xFEEDFACF
_MH_EXECUTE = 2
_LC_VERSION_MIN_MACOSX = 0x24
_LC_BUILD_VERSION = 0x32
_LC_CODE_SIGNATURE = 0x1D


class BinaryError(Exception):
    """A binary that is not what it must be, said in one line."""


# os: "linux" or "darwin"; arch: a GOARCH; for Mach-O, min_macos: (major, minor) and signed:
# whether it has a code signature (macOS on arm64 runs no binary without one); None for ELF.
Binary = namedtuple("Binary", "os arch min_macos signed")


def current():
    """(GOOS, GOARCH) of this interpreter: ("linux", "amd64"), ("darwin", "arm64"); either part is
    what Python calls it ("win32", "riscv64") when Go's name for it is not one hfgate knows."""
    machine = platform.machine().lower()
    return sys.platform, _GOARCH.get(machine, machine)


def describe(goos, goarch):
    """A platform as people say it: "macOS arm64", "Linux amd64", "win32 AMD64"."""
    return "%s %s" % (_OS_NAMES.get(goos, goos), goarch)


def inspect(path):
    """Returns what the executable at path is built for, as a Binary, or raises BinaryError."""
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)  # Go's Mach-O load commands fit in the first few KiB
    except OSError as e:
        raise BinaryError("cannot read " + path + ": " + e.strerror) from None
    if head.startswith(b"version https://git-lfs"):
        raise BinaryError(path + " is a Git LFS pointer, not the binary: install git-lfs (git lfs install) "
                          "and push again, or install hfgate from requirements.txt instead")
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        e_machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
        return Binary("linux", _ELF.get(e_machine, "ELF machine %d" % e_machine), None, None)
    if len(head) >= 32 and struct.unpack_from("<I", head)[0] == _MH_MAGIC_64:
        return _macho(path, head)
    raise BinaryError(path + " is not a Linux or macOS executable: rebuild the Space folder with make space, "
                      "or reinstall hfgate")


def _macho(path, head):
    """The Mach-O part of inspect: a 64-bit little-endian executable, the oldest macOS it runs
    on (LC_BUILD_VERSION's minos, or LC_VERSION_MIN_MACOSX's), and whether it is signed."""
    _, cputype, _, filetype, ncmds, _, _, _ = struct.unpack_from("<IiiIIIII", head)
    arch = _MACHO.get(cputype, "Mach-O cputype %#x" % cputype)
    if filetype != _MH_EXECUTE:
        raise BinaryError("%s is a Mach-O file of type %d, not an executable" % (path, filetype))
    off, min_macos, signed = 32, None, False
    for _ in range(ncmds):
        if off + 8 > len(head):
            break
        cmd, size = struct.unpack_from("<II", head, off)
        if cmd == _LC_BUILD_VERSION and off + 16 <= len(head):
            version = struct.unpack_from("<I", head, off + 12)[0]
            min_macos = (version >> 16, (version >> 8) & 0xFF)
        elif cmd == _LC_VERSION_MIN_MACOSX and off + 12 <= len(head):
            version = struct.unpack_from("<I", head, off + 8)[0]
            min_macos = (version >> 16, (version >> 8) & 0xFF)
        signed = signed or cmd == _LC_CODE_SIGNATURE
        if size < 8:
            break
        off += size
    if min_macos is None:
        raise BinaryError(path + " is a Mach-O executable that names no minimum macOS version")
    return Binary("darwin", arch, min_macos, signed)


def check(path, here=None):
    """Raises BinaryError unless the executable at path runs on this machine (here: a
    (GOOS, GOARCH) pair, default current()).

    A binary committed to the Space (make space VENDOR_BINARY=1) can arrive as a Git LFS pointer
    or be built for another machine; the wheel's binary is the platform pip chose.
    """
    goos, goarch = here or current()
    b = inspect(path)
    if (goos, goarch) not in SUPPORTED:
        raise BinaryError("this machine is %s; hfgate has binaries for Linux and macOS on amd64 and arm64 only"
                          % describe(goos, goarch))
    if b.os != goos:
        want = {"linux": "Linux", "darwin": "macOS"}[goos]
        raise BinaryError("%s is not a %s executable (it is built for %s): rebuild the Space folder with make "
                          "space, or reinstall hfgate" % (path, want, describe(b.os, b.arch)))
    if b.arch != goarch:
        raise BinaryError("%s is built for %s but this machine is %s: use the %s build"
                          % (path, b.arch, describe(goos, goarch), goarch))
    return b
