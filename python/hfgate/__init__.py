"""hfgate: the gateway binary for a FastAPI backend on a Hugging Face Space, as a Python package.

The wheel carries the static Go binary as a script (``hfgate-<version>.data/scripts/hfgate``),
so pip installs it, executable, into the scripts directory of whatever install scheme it uses:
``<venv>/bin``, ``/usr/local/bin``, ``~/.local/bin`` (``--user``), ``<prefix>/bin``
(``--prefix``) or ``<target>/bin`` (``--target``). This package finds it there
(``find_hfgate_bin``), runs it (``python -m hfgate ARGS``) and launches a Space
(``hfgate.space``). Standard library only, Python 3.8 or later.
"""

import os
import shutil
import sys
import sysconfig

__all__ = ["HfgateNotFound", "find_hfgate_bin"]

EXE = "hfgate" + (sysconfig.get_config_var("EXE") or "")


class HfgateNotFound(FileNotFoundError):
    """No hfgate binary in any of the places the install schemes put it.

    ``tried`` lists each place looked at, in order.
    """

    def __init__(self, tried):
        self.tried = list(tried)
        lines = "\n".join("  - " + p for p in self.tried)
        super().__init__(
            "hfgate binary not found; looked in:\n" + lines + "\n"
            "Install the hfgate wheel for this platform (pip install hfgate) and try again."
        )


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
    tried.
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
    raise HfgateNotFound(tried)
