"""Builds the hfgate platform wheel around a static linux binary (make wheel calls it).

    python3 python/build_wheel.py --binary dist/hfgate-linux-amd64 --arch amd64 --version v1.2.3 --out dist
    python3 python/build_wheel.py --pep440 v1.2.3-4-gabc1234      # prints 1.2.4.dev4+gabc1234

It lays the wheel out unpacked, the way maturin's ``bindings = "bin"`` does for ruff and uv
(the binary as ``hfgate-<v>.data/scripts/hfgate``, mode 0755; the ``hfgate`` package from
python/hfgate; METADATA and WHEEL; no console_scripts entry, which pip would write over the
binary), and packs it with ``wheel pack`` (Debian's python3-wheel), which writes RECORD with
the hashes and stores each file's type and mode bits in its zip entry. pip makes a script
executable only when that mode is a regular file with an x bit (S_IFREG|0755); the packed wheel
is read back and refused if its binary's entry says otherwise.
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

# GOARCH -> (wheel platform machine, ELF e_machine). A CGO_ENABLED=0 binary needs no libc, so
# one wheel is valid on glibc (manylinux_2_17, the oldest pip still picks) and musl systems.
ARCHES = {"amd64": ("x86_64", 62), "arm64": ("aarch64", 183)}


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


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise BuildError(path + " is not an ELF executable")
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def long_description(readme):
    """The README, its relative links made absolute, so that they work on an index's page."""
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)", lambda m: "](%s/blob/main/%s)" % (URL, m.group(1)), text)


def metadata(version, license_text, readme):
    head = [
        "Metadata-Version: 2.1",
        "Name: hfgate",
        "Version: " + version,
        "Summary: " + SUMMARY,
        "Home-page: " + URL,
        "License: " + license_text,
        "Project-URL: Source, " + URL,
        "Project-URL: Documentation, " + URL + "/blob/main/docs/deploy-hf-spaces.md",
        "Keywords: huggingface,spaces,fastapi,uvicorn,gateway,proxy",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Programming Language :: Go",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Topic :: Internet :: WWW/HTTP :: HTTP Servers",
        "Requires-Python: >=3.8",
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(head) + "\n\n" + long_description(readme)


def wheel_file(machine):
    tags = ["py3-none-manylinux_2_17_" + machine, "py3-none-musllinux_1_2_" + machine]
    return "".join(line + "\n" for line in
                   ["Wheel-Version: 1.0", "Generator: hfgate build_wheel.py (wheel pack)", "Root-Is-Purelib: false"]
                   + ["Tag: " + t for t in tags])


def _put(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.chmod(path, mode)


def build(binary, arch, version, out, readme, license_text, python=sys.executable):
    """Builds the wheel and returns its path."""
    if arch not in ARCHES:
        raise BuildError("--arch must be one of " + ", ".join(sorted(ARCHES)))
    machine, e_machine = ARCHES[arch]
    if elf_machine(binary) != e_machine:
        raise BuildError("%s is not built for linux/%s (ELF machine %d, want %d)" % (binary, arch, elf_machine(binary), e_machine))
    v = pep440(version)
    stage = tempfile.mkdtemp(prefix="hfgate-wheel-")
    try:
        for name in sorted(os.listdir(PACKAGE)):
            if name.endswith((".py", ".md")):
                with open(os.path.join(PACKAGE, name), "rb") as f:
                    _put(os.path.join(stage, "hfgate", name), f.read(), 0o644)
        with open(binary, "rb") as f:
            _put(os.path.join(stage, "hfgate-%s.data" % v, "scripts", "hfgate"), f.read(), 0o755)
        info = os.path.join(stage, "hfgate-%s.dist-info" % v)
        _put(os.path.join(info, "METADATA"), metadata(v, license_text, readme), 0o644)
        _put(os.path.join(info, "WHEEL"), wheel_file(machine), 0o644)
        os.makedirs(out, exist_ok=True)
        before = set(os.listdir(out))
        # wheel pack names the file from WHEEL's tags: hfgate-V-py3-none-manylinux...musllinux....whl
        subprocess.run([python, "-m", "wheel", "pack", "--dest-dir", out, stage], check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    name = "hfgate-%s-py3-none-manylinux_2_17_%s.musllinux_1_2_%s.whl" % (v, machine, machine)
    path = os.path.join(out, name)
    if not os.path.isfile(path):
        raise BuildError("wheel pack did not write %s (new files: %s)" % (name, sorted(set(os.listdir(out)) - before)))
    check(path, v)
    return path


def check(path, version):
    """Refuses a wheel whose binary pip would install non-executable, or that names a console
    script (which pip would write over the binary)."""
    with zipfile.ZipFile(path) as z:
        entry = "hfgate-%s.data/scripts/hfgate" % version
        mode = z.getinfo(entry).external_attr >> 16
        if not (stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o755):
            raise BuildError("%s: %s has mode %o, want %o (S_IFREG|0755): this wheel pack does not keep file types"
                             % (path, entry, mode, stat.S_IFREG | 0o755))
        if any(n.endswith(".dist-info/entry_points.txt") for n in z.namelist()):
            raise BuildError(path + " has entry_points.txt; a console script named hfgate would replace the binary")


def main(argv=None):
    p = argparse.ArgumentParser(description="Build the hfgate platform wheel around a static linux binary.")
    p.add_argument("--pep440", metavar="VERSION", help="print the PEP 440 form of VERSION and exit")
    p.add_argument("--binary", help="the static linux binary (CGO_ENABLED=0) to carry")
    p.add_argument("--arch", help="its GOARCH: " + ", ".join(sorted(ARCHES)))
    p.add_argument("--version", help="the version the binary prints (make's VERSION: a git describe form)")
    p.add_argument("--out", default="dist", help="folder to write the wheel to (default dist)")
    p.add_argument("--readme", default=os.path.join(ROOT, "README.md"), help="the long description")
    p.add_argument("--license", default="UNLICENSED", help="METADATA's License field")
    a = p.parse_args(argv)
    try:
        if a.pep440 is not None:
            print(pep440(a.pep440))
            return 0
        if not (a.binary and a.arch and a.version):
            p.error("--binary, --arch and --version are required")
        print(build(a.binary, a.arch, a.version, a.out, a.readme, a.license))
    except (BuildError, OSError, subprocess.CalledProcessError) as e:
        sys.stderr.write("build_wheel: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
