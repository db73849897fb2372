"""hfgate: the gateway binary for a FastAPI backend on a Hugging Face Space, as a Python package.

The platform wheels (Linux and macOS, amd64 and arm64) carry the static Go binary as a script
(``hfgate-<version>.data/scripts/hfgate``), so pip installs it, executable, into the scripts
directory of whatever install scheme it uses: ``<venv>/bin``, ``/usr/local/bin``,
``~/.local/bin`` (``--user``), ``<prefix>/bin`` (``--prefix``) or ``<target>/bin``
(``--target``). This package finds it there (``find_hfgate_bin``), runs it (``python -m hfgate
ARGS``) and launches a Space (``hfgate.space``). The ``py3-none-any`` wheel, for every other
platform, has the package only: ``python -m hfgate.space new`` works there, and running the
gateway says in one line that there is no binary and what to do. Standard library only,
Python 3.8 or later.
"""

import os
import platform
import shutil
import sys
import sysconfig

__all__ = ["HfgateNotFound", "find_hfgate_bin"]

EXE = "hfgate" + (sysconfig.get_config_var("EXE") or "")


class HfgateNotFound(FileNotFoundError):
    """No hfgate binary in any of the places the install schemes put it.

    ``tried`` lists each place looked at, in order. ``no_binary`` is set when this install
    cannot have one (this platform has no hfgate binary, or pip chose the ``py3-none-any``
    wheel): the message is then that one line, saying what to do, and not the list.
    """

    def __init__(self, tried, no_binary=None):
        self.tried = list(tried)
        self.no_binary = no_binary
        if no_binary:
            super().__init__(no_binary)
            return
        lines = "\n".join("  - " + p for p in self.tried)
        super().__init__(
            "hfgate binary not found; looked in:\n" + lines + "\n"
            "Install the hfgate wheel for this platform (pip install hfgate) and try again."
        )


def _installed_wheel_tag():
    """The Tag of the wheel this package was installed from ("py3-none-any", ...), or None when
    it was not installed by pip (a source checkout, a vendored Space folder)."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution
    except ImportError:  # pragma: no cover (Python 3.7)
        return None
    try:
        dist = distribution("hfgate")
        mine = os.path.realpath(os.path.abspath(__file__))
        if os.path.realpath(str(dist.locate_file("hfgate/__init__.py"))) != mine:
            return None
        for line in (dist.read_text("WHEEL") or "").splitlines():
            if line.startswith("Tag:"):
                return line.split(":", 1)[1].strip()
    except (PackageNotFoundError, OSError):
        return None
    return None


def no_binary_line(here=None, wheel_tag=None, mac_version=None, version=None):
    """One line saying that this install has no hfgate binary and what to do, or None when it
    should have one (then the places tried say more).

    The arguments stand in for this machine in tests: here is (GOOS, GOARCH), wheel_tag the
    installed wheel's tag, mac_version macOS's "major.minor" and version hfgate's.
    """
    from . import platforms

    goos, goarch = here or platforms.current()
    plat = platforms.describe(goos, goarch)
    if (goos, goarch) not in platforms.SUPPORTED:
        return ("there is no hfgate binary for this platform (%s): hfgate runs on Linux and macOS, amd64 and "
                "arm64; python -m hfgate.space new works here, but run the gateway (python app.py) on one of "
                "those, such as a Linux container%s" % (plat, " or WSL" if goos == "win32" else ""))
    if wheel_tag is None:
        wheel_tag = _installed_wheel_tag()
    if wheel_tag != "py3-none-any":
        return None
    if version is None:
        try:
            from importlib.metadata import version as _version

            version = _version("hfgate")
        except Exception:  # noqa: BLE001 (any failure: leave the version out)
            version = ""
    pin = "hfgate==" + version if version else "hfgate"
    if goos == "darwin":
        mac_version = mac_version if mac_version is not None else platform.mac_ver()[0]
        try:
            major = int(mac_version.split(".")[0])
        except ValueError:
            major = 0
        if 0 < major < 12:
            return ("there is no hfgate binary for this Mac: hfgate's macOS build needs macOS 12 or later and "
                    "this is macOS %s, so pip chose the wheel without one; run the gateway on a newer macOS or "
                    "in a Linux container" % mac_version)
    return ("this hfgate install is the py3-none-any wheel, which has no hfgate binary, though %s has a wheel "
            "that does: upgrade pip (20.3 or later reads its tags) and reinstall: pip install --upgrade pip && "
            "pip install --force-reinstall %s" % (plat, pin))


def _user_scheme():
    """The name of the user install scheme (pip --user) for this interpreter."""
    if sys.version_info >= (3, 10):
        return sysconfig.get_preferred_scheme("user")
    if os.name == "nt":
        return "nt_user"
    if sys.platform == "darwin" and getattr(sys, "_framework", None):
        return "osx_framework_user"
    return "posix_user"


def _candidates():
    """Directories that may hold the binary, most specific first, as (why, directory)."""
    here = os.path.dirname(os.path.abspath(__file__))  # .../hfgate
    site = os.path.dirname(here)  # site-packages, or a --target folder
    out = [("scripts", sysconfig.get_path("scripts"))]
    try:
        out.append(("user scheme", sysconfig.get_path("scripts", scheme=_user_scheme())))
    except KeyError:  # an interpreter built without a user scheme
        pass
    # pip --prefix P (or a venv/base prefix that is not this interpreter's): the package is in
    # P/lib/pythonX.Y/site-packages (dist-packages on Debian) and the scripts in P/bin.
    lib = os.path.dirname(site)
    if os.path.basename(site) in ("site-packages", "dist-packages") and os.path.basename(lib).startswith("python"):
        out.append(("prefix layout", os.path.join(os.path.dirname(os.path.dirname(lib)), "bin")))
    # pip --target T: the package is T/hfgate and the scripts T/bin.
    out.append(("target layout", os.path.join(site, "bin")))
    return out


def find_hfgate_bin():
    """Returns the path of the hfgate binary that was installed with this package.

    It looks, in this order (the order ruff's ``find_ruff_bin`` uses), in the running
    interpreter's scripts directory, the user scheme's (``pip install --user``), the ``bin``
    folder of the prefix this package sits in (``pip install --prefix``), the ``bin`` folder
    beside the package (``pip install --target``, or a Space folder that vendors it), and last
    on ``PATH``. It never relies on ``PATH`` alone: a Space's image may not have the scripts
    directory on it. Raises ``HfgateNotFound`` (a ``FileNotFoundError``) listing every place
    tried, or, when this install cannot have a binary (another platform, the
    ``py3-none-any`` wheel), saying so and what to do in one line.
    """
    tried, seen = [], set()
    for why, d in _candidates():
        path = os.path.join(d, EXE) if d else ""
        if not path or path in seen:
            continue
        seen.add(path)
        tried.append(path + " (" + why + ")")
        if os.path.isfile(path):
            return path
    found = shutil.which(EXE)
    if found:
        return found
    tried.append("PATH: " + (os.environ.get("PATH") or "(unset)"))
    raise HfgateNotFound(tried, no_binary_line())
