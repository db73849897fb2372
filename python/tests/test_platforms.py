"""Unit tests for hfgate.platforms and the one line for an install without a binary
(run: python3 -m unittest discover -s python/tests)."""

import os
import shutil
import struct
import sys
import tempfile
import unittest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

import hfgate  # noqa: E402
from hfgate import platforms  # noqa: E402


def elf(machine):
    h = bytearray(64)
    h[0:4] = b"\x7fELF"
    h[4], h[5], h[6] = 2, 1, 1
    h[16] = 2
    h[18:20] = machine.to_bytes(2, "little")
    return bytes(h)


def macho(cputype, filetype=2, minos=(12, 0), signed=True, old_style=False):
    """A 64-bit Mach-O header with the load commands platforms.inspect reads."""
    cmds = []
    version = (minos[0] << 16) | (minos[1] << 8) if minos else 0
    if old_style:
        cmds.append(struct.pack("<IIII", 0x24, 16, version, version))  # LC_VERSION_MIN_MACOSX
    elif minos is not None:
        cmds.append(struct.pack("<IIIIII", 0x32, 24, 1, version, version, 0))  # LC_BUILD_VERSION
    cmds.append(struct.pack("<II", 0x19, 72) + bytes(64))  # LC_SEGMENT_64, unread
    if signed:
        cmds.append(struct.pack("<IIII", 0x1D, 16, 0, 0))  # LC_CODE_SIGNATURE
    body = b"".join(cmds)
    return struct.pack("<IiiIIIII", 0xFEEDFACF, cputype, 0, filetype, len(cmds), len(body), 0, 0) + body


class InspectTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def file(self, data):
        path = os.path.join(self.tmp, "hfgate")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_reads(self):
        tests = [
            ("elf amd64", elf(62), platforms.Binary("linux", "amd64", None, None)),
            ("elf arm64", elf(183), platforms.Binary("linux", "arm64", None, None)),
            ("macho arm64", macho(0x0100000C), platforms.Binary("darwin", "arm64", (12, 0), True)),
            ("macho amd64 unsigned", macho(0x01000007, signed=False), platforms.Binary("darwin", "amd64", (12, 0), False)),
            ("macho old load command", macho(0x01000007, minos=(10, 13), old_style=True),
             platforms.Binary("darwin", "amd64", (10, 13), True)),
        ]
        for name, data, want in tests:
            with self.subTest(name=name):
                self.assertEqual(platforms.inspect(self.file(data)), want)

    def test_rejects(self):
        tests = [
            ("lfs pointer", b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n", "Git LFS pointer"),
            ("html", b"<html>404</html>\n", "is not a Linux or macOS executable"),
            ("empty", b"", "is not a Linux or macOS executable"),
            ("macho dylib", macho(0x0100000C, filetype=6), "not an executable"),
            ("macho without minos", macho(0x0100000C, minos=None), "names no minimum macOS version"),
        ]
        for name, data, want in tests:
            with self.subTest(name=name):
                with self.assertRaises(platforms.BinaryError) as cm:
                    platforms.inspect(self.file(data))
                self.assertIn(want, str(cm.exception))

    def test_check(self):
        tests = [
            ("linux on linux", elf(62), ("linux", "amd64"), None),
            ("mac on mac", macho(0x0100000C), ("darwin", "arm64"), None),
            ("mac binary on linux", macho(0x0100000C), ("linux", "arm64"), "is not a Linux executable (it is built for macOS arm64)"),
            ("linux binary on a mac", elf(183), ("darwin", "arm64"), "is not a macOS executable (it is built for Linux arm64)"),
            ("other arch", elf(183), ("linux", "amd64"), "is built for arm64 but this machine is Linux amd64: use the amd64 build"),
            ("other platform", elf(62), ("win32", "amd64"), "this machine is win32 amd64; hfgate has binaries for Linux and macOS"),
        ]
        for name, data, here, want in tests:
            with self.subTest(name=name):
                path = self.file(data)
                if want is None:
                    platforms.check(path, here)
                    continue
                with self.assertRaises(platforms.BinaryError) as cm:
                    platforms.check(path, here)
                self.assertIn(want, str(cm.exception))


class NoBinaryLineTest(unittest.TestCase):
    def test_lines(self):
        tests = [
            ("platform wheel installed", dict(here=("linux", "amd64"), wheel_tag="py3-none-manylinux_2_17_x86_64"), None),
            ("not installed by pip", dict(here=("darwin", "arm64"), wheel_tag=None), None),
            ("any wheel on linux", dict(here=("linux", "amd64"), wheel_tag="py3-none-any", version="1.2.3"),
             "this hfgate install is the py3-none-any wheel, which has no hfgate binary, though Linux amd64 has a wheel "
             "that does: upgrade pip (20.3 or later reads its tags) and reinstall: pip install --upgrade pip && "
             "pip install --force-reinstall hfgate==1.2.3"),
            ("any wheel on macOS 14", dict(here=("darwin", "arm64"), wheel_tag="py3-none-any", mac_version="14.5", version="1.2.3"),
             "though macOS arm64 has a wheel"),
            ("any wheel on macOS 11", dict(here=("darwin", "amd64"), wheel_tag="py3-none-any", mac_version="11.7.1", version="1.2.3"),
             "hfgate's macOS build needs macOS 12 or later and this is macOS 11.7.1"),
            ("windows", dict(here=("win32", "amd64"), wheel_tag="py3-none-any"),
             "there is no hfgate binary for this platform (win32 amd64): hfgate runs on Linux and macOS"),
            ("freebsd", dict(here=("freebsd14", "amd64"), wheel_tag="py3-none-any"), "such as a Linux container"),
        ]
        for name, kw, want in tests:
            with self.subTest(name=name):
                got = hfgate.no_binary_line(**kw)
                if want is None:
                    self.assertIsNone(got)
                    continue
                self.assertIn(want, got)
                self.assertNotIn("\n", got)
        self.assertIn("or WSL", hfgate.no_binary_line(here=("win32", "amd64")))


if __name__ == "__main__":
    unittest.main()
