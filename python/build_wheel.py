"""Builds hfgate's wheels: one per platform around its static binary, and one with no binary
(make wheel calls it for each).

    python3 python/build_wheel.py --binary dist/hfgate-linux-amd64 --os linux --arch amd64 --version v1.2.3 --out dist
    python3 python/build_wheel.py --binary dist/hfgate-darwin-arm64 --os darwin --arch arm64 --version v1.2.3 --out dist
    python3 python/build_wheel.py --any --version v1.2.3 --out dist     # py3-none-any: the package only
    python3 python/build_wheel.py --pep440 v1.2.3-4-gabc1234            # prints 1.2.4.dev4+gabc1234

A platform wheel is laid out unpacked the way maturin's ``bindings = "bin"`` does for ruff and
uv (the binary as ``hfgate-<v>.data/scripts/hfgate``, mode 0755; the ``hfgate`` package from
python/hfgate; METADATA, WHEEL and LICENSE; no console_scripts entry, which pip would write over
the binary), and packed with ``wheel pack`` (Debian's python3-wheel), which writes RECORD with
the hashes and stores each file's type and mode bits in its zip entry. pip makes a script
executable only when that mode is a regular file with an x bit (S_IFREG|0755); the packed wheel
is read back and refused if its binary's entry says otherwise.

Tags, one wheel per platform as ruff and uv publish them: Linux wheels are
``manylinux_2_17_<m>.musllinux_1_2_<m>`` (a CGO_ENABLED=0 binary needs no libc), macOS wheels
``macosx_<major>_<minor>_<m>`` with the oldest macOS the binary itself names (Go 1.26: 12.0),
and the ``py3-none-any`` wheel, with no binary, is what pip takes everywhere else. Every wheel
has the same METADATA.
"""

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "python", "hfgate")
URL = "https://github.com/hfgate/hfgate"
SUMMARY = ("A gateway that makes a FastAPI chatbot backend a reliable public service on "
           "Hugging Face Spaces (the hfgate binary, and a Space launcher)")

LICENSE = os.path.join(ROOT, "LICENSE")
LICENSE_ID = "Apache-2.0"

sys.path.insert(0, os.path.join(ROOT, "python"))
from hfgate import platforms  # noqa: E402  (the same ELF and Mach-O reader the launcher uses)

ARCHES = sorted({arch for _, arch in platforms.SUPPORTED})


class BuildError(Exception):
    pass


_VERSION_RE = re.compile(
    r"v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-.]?(?P<pre>a|b|rc|alpha|beta|c|pre|preview)[-.]?(?P<pren>\d+)?)?"
    r"(?:-(?P<n>\d+)-g(?P<hash>[0-9a-f]{4,40}))?"
    r"(?P<dirty>-dirty)?"
)
_PRE = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "rc": "rc", "c": "rc", "pre": "rc", "preview": "rc"}


def pep440(version):
    """The PEP 440 form of a `git describe --tags --dirty` version (what hfgate --version prints).

    A release tag stays itself (v1.2.3 -> 1.2.3, v1.3.0-rc.1 -> 1.3.0rc1). N commits after a tag
    is a development release of the next version, as setuptools-scm's guess-next-dev scheme
    writes it, with the commit as the local label: v1.2.3-4-gabc1234 -> 1.2.4.dev4+gabc1234,
    v1.3.0-rc.1-2-gabc1234 -> 1.3.0rc2.dev2+gabc1234. Uncommitted changes add "dirty" to the
    local label. Anything else raises BuildError.
    """
    m = _VERSION_RE.fullmatch(version.strip())
    if not m:
        raise BuildError("version %r has no PEP 440 form: want a tag such as v1.2.3 or v1.3.0-rc.1, "
                         "or git describe output such as v1.2.3-4-gabc1234" % version)
    release = [int(x) for x in m.group("release").split(".")]
    pre = _PRE[m.group("pre")] if m.group("pre") else ""
    pren = int(m.group("pren") or 0)
    n = int(m.group("n") or 0)
    local = []
    if n:
        if pre:
            pren += 1
        else:
            release[-1] += 1
        local.append("g" + m.group("hash"))
    if m.group("dirty"):
        local.append("dirty")
    out = ".".join(str(x) for x in release)
    if pre:
        out += pre + str(pren)
    if n:
        out += ".dev%d" % n
    if local:
        out += "+" + ".".join(local)
    return out


def long_description(readme):
    """The README, its relative links made absolute, so that they work on an index's page."""
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)", lambda m: "](%s/blob/main/%s)" % (URL, m.group(1)), text)


def metadata(version, license_id, readme):
    head = [
        "Metadata-Version: 2.1",
        "Name: hfgate",
        "Version: " + version,
        "Summary: " + SUMMARY,
        "Home-page: " + URL,
        "License: " + license_id,
        "Project-URL: Source, " + URL,
        "Project-URL: Documentation, " + URL + "/blob/main/docs/deploy-hf-spaces.md",
        "Keywords: huggingface,spaces,fastapi,uvicorn,gateway,proxy",
        "Classifier: License :: OSI Approved :: Apache Software License",
        "Classifier: Operating System :: MacOS",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Programming Language :: Go",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Topic :: Internet :: WWW/HTTP :: HTTP Servers",
        "Requires-Python: >=3.8",
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(head) + "\n\n" + long_description(readme)


def platform_tags(goos, arch, min_macos=None):
    """The wheel's platform tags for a binary built for goos/arch."""
    machine = platforms.SUPPORTED[(goos, arch)]
    if goos == "linux":
        # manylinux_2_17 is the oldest glibc tag pip still picks; musl systems take musllinux_1_2.
        return ["manylinux_2_17_" + machine, "musllinux_1_2_" + machine]
    major, minor = min_macos
    # macOS 11 and later are tagged by major version, minor 0 (pip and packaging do the same).
    return ["macosx_%d_%d_%s" % (major, 0 if major >= 11 else minor, machine)]


def wheel_file(tags, purelib=False):
    return "".join(line + "\n" for line in
                   ["Wheel-Version: 1.0", "Generator: hfgate build_wheel.py (wheel pack)",
                    "Root-Is-Purelib: " + ("true" if purelib else "false")]
                   + ["Tag: py3-none-" + t for t in tags])


def _put(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.chmod(path, mode)


def build(binary, goos, arch, version, out, readme, license_id=LICENSE_ID, license_file=LICENSE, python=sys.executable):
    """Builds the wheel for binary, built for goos/arch (binary None: the py3-none-any wheel)
    and returns its path."""
    if binary is None:
        tags = ["any"]
    else:
        if (goos, arch) not in platforms.SUPPORTED:
            raise BuildError("--os/--arch must be one of " + ", ".join("%s/%s" % p for p in sorted(platforms.SUPPORTED)))
        try:
            got = platforms.inspect(binary)
        except platforms.BinaryError as e:
            raise BuildError(str(e)) from None
        if (got.os, got.arch) != (goos, arch):
            raise BuildError("%s is not built for %s/%s (it is built for %s/%s)" % (binary, goos, arch, got.os, got.arch))
        if goos == "darwin" and arch == "arm64" and not got.signed:
            raise BuildError(binary + " has no code signature: macOS on arm64 kills an unsigned binary "
                             "(the Go linker signs it ad hoc; do not strip it with another tool)")
        tags = platform_tags(goos, arch, got.min_macos)
    v = pep440(version)
    stage = tempfile.mkdtemp(prefix="hfgate-wheel-")
    try:
        for name in sorted(os.listdir(PACKAGE)):
            if name.endswith((".py", ".md")):
                with open(os.path.join(PACKAGE, name), "rb") as f:
                    _put(os.path.join(stage, "hfgate", name), f.read(), 0o644)
        if binary is not None:
            with open(binary, "rb") as f:
                _put(os.path.join(stage, "hfgate-%s.data" % v, "scripts", "hfgate"), f.read(), 0o755)
        info = os.path.join(stage, "hfgate-%s.dist-info" % v)
        _put(os.path.join(info, "METADATA"), metadata(v, license_id, readme), 0o644)
        _put(os.path.join(info, "WHEEL"), wheel_file(tags, purelib=binary is None), 0o644)
        with open(license_file, "rb") as f:
            _put(os.path.join(info, "LICENSE"), f.read(), 0o644)
        os.makedirs(out, exist_ok=True)
        before = set(os.listdir(out))
        # wheel pack names the file from WHEEL's tags: hfgate-V-py3-none-<tag>[.<tag>].whl
        subprocess.run([python, "-m", "wheel", "pack", "--dest-dir", out, stage], check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    name = "hfgate-%s-py3-none-%s.whl" % (v, ".".join(tags))
    path = os.path.join(out, name)
    if not os.path.isfile(path):
        raise BuildError("wheel pack did not write %s (new files: %s)" % (name, sorted(set(os.listdir(out)) - before)))
    check(path, v, has_binary=binary is not None)
    return path


def check(path, version, has_binary=True):
    """Refuses a wheel whose binary pip would install non-executable, or that names a console
    script (which pip would write over the binary)."""
    with zipfile.ZipFile(path) as z:
        if any(n.endswith(".dist-info/entry_points.txt") for n in z.namelist()):
            raise BuildError(path + " has entry_points.txt; a console script named hfgate would replace the binary")
        entry = "hfgate-%s.data/scripts/hfgate" % version
        if not has_binary:
            if any(n.startswith("hfgate-%s.data/" % version) for n in z.namelist()):
                raise BuildError(path + " is the py3-none-any wheel but carries a .data folder")
            return
        mode = z.getinfo(entry).external_attr >> 16
        if not (stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o755):
            raise BuildError("%s: %s has mode %o, want %o (S_IFREG|0755): this wheel pack does not keep file types"
                             % (path, entry, mode, stat.S_IFREG | 0o755))


def main(argv=None):
    p = argparse.ArgumentParser(description="Build an hfgate wheel: around a static binary, or with no binary (--any).")
    p.add_argument("--pep440", metavar="VERSION", help="print the PEP 440 form of VERSION and exit")
    p.add_argument("--binary", help="the static binary (CGO_ENABLED=0) to carry")
    p.add_argument("--os", default="linux", help="its GOOS: linux (default) or darwin")
    p.add_argument("--arch", help="its GOARCH: " + ", ".join(ARCHES))
    p.add_argument("--any", action="store_true", help="build the py3-none-any wheel: the Python package, no binary")
    p.add_argument("--version", help="the version the binary prints (make's VERSION: a git describe form)")
    p.add_argument("--out", default="dist", help="folder to write the wheel to (default dist)")
    p.add_argument("--readme", default=os.path.join(ROOT, "README.md"), help="the long description")
    p.add_argument("--license", default=LICENSE_ID, help="METADATA's License field (default %s)" % LICENSE_ID)
    p.add_argument("--license-file", default=LICENSE, help="the license text, as dist-info/LICENSE (default LICENSE)")
    a = p.parse_args(argv)
    try:
        if a.pep440 is not None:
            print(pep440(a.pep440))
            return 0
        if not a.version:
            p.error("--version is required")
        if a.any:
            if a.binary or a.arch:
                p.error("--any takes no --binary or --arch")
            print(build(None, None, None, a.version, a.out, a.readme, a.license, a.license_file))
            return 0
        if not (a.binary and a.arch):
            p.error("--binary and --arch are required (or --any)")
        print(build(a.binary, a.os, a.arch, a.version, a.out, a.readme, a.license, a.license_file))
    except (BuildError, OSError, subprocess.CalledProcessError) as e:
        sys.stderr.write("build_wheel: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
