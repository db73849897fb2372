"""Runs hfgate as a Hugging Face Space's process, and writes Space folders that do.

A Space's ``app.py`` is three lines::

    import hfgate.space
    hfgate.space.run("main:app")

``run`` finds the installed hfgate binary, says how hfgate is to start the backend (uvicorn
under this same interpreter, unless the Space's variables already say), and replaces the
Python process with hfgate (``os.execve``), which binds the Space's port at once, starts
uvicorn and answers for the backend while it warms up. It does that at import time, because
the Space's runtime may import ``app.py`` rather than run it as ``__main__``, and it depends on
no directory, user or install scheme.

``python -m hfgate.space new --backend DIR --app main:app --out DIR`` writes a Space folder:
README.md with the Spaces front matter, that ``app.py``, requirements.txt (the backend's, plus
hfgate), and the backend under ``backend/``. hfgate's ``make space`` runs the same code. Both
``new`` and ``run`` check that ``main:app`` names something, from the module's source
(``appcheck``), and ``new`` warns when the requirement it writes is one no package index serves.

Standard library only: it runs before, and whatever, the backend's requirements.
"""

import argparse
import os
import re
import shlex
import shutil
import socket
import sys
import tempfile

from . import HfgateNotFound, appcheck, find_hfgate_bin, platforms, zerogpu

__all__ = ["run", "environment", "new"]

# What the Space's runtime runs; the README front matter names it (app_file).
APP_FILE = "app.py"

# A module:attribute ASGI app, as uvicorn takes it, with no path in it.
_APP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")


class SpaceError(Exception):
    """A problem stated in one line, for the Space's Logs console or the terminal."""


def _fail(prefix, message, code):
    sys.stderr.write(prefix + ": " + message + "\n")
    sys.stderr.flush()
    sys.exit(code)


# ---- run: the Space's process ----


def run(app="main:app", backend="backend", gpu=None):
    """Replaces this Python process with hfgate serving the ASGI app ``app`` from ``backend``.

    ``backend`` is relative to the folder of the file that calls ``run`` (the Space's
    ``app.py``), wherever the runtime runs it from; an absolute path is taken as it is. ``gpu``
    names the backend module(s) with ``@spaces.GPU`` functions when they are not in the app's
    own module: on ZeroGPU hardware the start-up report is sent for them before hfgate starts
    (hfgate.zerogpu). On a problem (a ``module:attribute`` the backend does not define, a
    missing binary) it writes one line starting ``app.py:`` to stderr and exits 1. It returns
    only if ``os.execve`` does, which it does not.
    """
    caller = sys._getframe(1).f_globals.get("__file__")
    here = os.path.dirname(os.path.abspath(caller)) if caller else os.getcwd()
    try:
        binary, env = prepare(app, os.path.join(here, backend), os.environ)
        zerogpu.startup(app, os.path.abspath(os.path.join(here, backend)), gpu, os.environ,
                        log=lambda line: sys.stderr.write("app.py: " + line + "\n"))
    except (SpaceError, zerogpu.ZeroGPUError) as e:
        _fail("app.py", str(e), 1)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(binary, [binary], env)
    except OSError as e:
        _fail("app.py", "cannot start " + binary + ": " + e.strerror, 1)


def prepare(app, backend_dir, environ):
    """Returns the hfgate binary to exec and its environment, or raises SpaceError."""
    if not _APP_RE.match(app):
        raise SpaceError("app must be module:attribute, such as main:app (got %r)" % (app,))
    backend_dir = os.path.abspath(backend_dir)
    if not os.path.isdir(backend_dir):
        raise SpaceError("the backend folder " + backend_dir + " is missing")
    if not environ.get("UPSTREAM_CMD", "").strip():
        check_app(app, backend_dir)
    try:
        binary = find_hfgate_bin()
    except HfgateNotFound as e:
        raise SpaceError(str(e).replace("\n", " ")) from None
    check_binary(binary)
    return executable(binary), environment(app, backend_dir, environ)


def check_app(app, backend_dir):
    """Raises SpaceError when app (module:attribute) names nothing uvicorn would find: a module
    neither in backend_dir nor installed, or an attribute its source does not define. Nothing
    of the backend is imported (see appcheck); what the source cannot tell passes."""
    module = app.split(":", 1)[0]
    if appcheck.module_path(backend_dir, module) is None:
        try:
            import importlib.util

            installed = importlib.util.find_spec(module.split(".", 1)[0]) is not None
        except (ImportError, ValueError):
            installed = True  # cannot tell: say nothing
        if not installed:
            rel = module.replace(".", os.sep)
            raise SpaceError("%s: no module %s in %s (looked for %s.py and %s/__init__.py)"
                             % (app, module, backend_dir, rel, rel))
        return
    problem = appcheck.problem(backend_dir, app)
    if problem:
        raise SpaceError(problem)


def check_binary(path):
    """Raises SpaceError unless path is an executable for this machine (platforms.check)."""
    try:
        platforms.check(path)
    except platforms.BinaryError as e:
        raise SpaceError(str(e)) from None


def executable(path):
    """Returns path if it is executable, else an executable copy of it.

    pip installs the wheel's binary executable. A binary uploaded over HTTP (the Space's web
    page, hf upload) has no mode bits: make it executable in place, or, when its folder is
    read-only to this user, as a copy in a temporary folder.
    """
    if os.access(path, os.X_OK):
        return path
    try:
        os.chmod(path, os.stat(path).st_mode | 0o111)
        return path
    except OSError:
        pass
    try:
        copy = os.path.join(tempfile.mkdtemp(prefix="hfgate-"), os.path.basename(path))
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o755)
    except OSError as e:
        raise SpaceError(path + " is not executable and cannot be copied to make it so: " + e.strerror) from None
    return copy


def _free_port():
    """A loopback port that was free a moment ago, for uvicorn."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upstream_port(env):
    """The port uvicorn listens on: UPSTREAM_URL's when the Space sets it, else a free one."""
    url = env.get("UPSTREAM_URL", "").strip()
    if not url:
        return _free_port()
    from urllib.parse import urlsplit

    try:
        port = urlsplit(url).port
    except ValueError:
        port = None
    if port is None:
        raise SpaceError("UPSTREAM_URL is set without a port; set UPSTREAM_CMD too, or give the port "
                         "(http://127.0.0.1:8000)")
    return port


def environment(app, backend_dir, environ):
    """The environment hfgate starts with: environ, plus how to run the backend.

    UPSTREAM_CMD runs uvicorn under this interpreter (sys.executable: the one pip installed the
    requirements for) unless environ sets it; UPSTREAM_URL and UPSTREAM_DIR follow it.
    """
    env = dict(environ)
    # Python's output reaches the Logs console as it is written, not in 8 KiB blocks.
    env.setdefault("PYTHONUNBUFFERED", "1")
    # hfgate binds GRADIO_SERVER_PORT, else PORT, else 7860. Without GRADIO_SERVER_PORT, a PORT
    # in the environment is not the Space's (gradio's server-side rendering has rewritten it to
    # its internal 7861): drop it, so that hfgate binds 7860, where the Space is routed.
    if not env.get("GRADIO_SERVER_PORT", "").strip():
        env.pop("PORT", None)
    if not env.get("UPSTREAM_CMD", "").strip():
        port = _upstream_port(env)
        cmd = [sys.executable, "-m", "uvicorn", app, "--app-dir", backend_dir,
               "--host", "127.0.0.1", "--port", str(port),
               "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
        env["UPSTREAM_CMD"] = " ".join(shlex.quote(w) for w in cmd)
        env.setdefault("UPSTREAM_URL", "http://127.0.0.1:%d" % port)
        # The backend runs in its own folder, as in development, so its relative paths work.
        env.setdefault("UPSTREAM_DIR", backend_dir)
    return env


# ---- new: writing a Space folder ----

APP_PY = '''import hfgate.space

hfgate.space.run("{app}")
'''

# Copied from the backend into backend/ never: caches, environments, VCS data.
_SKIP = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", "node_modules", ".venv", "venv",
                               ".pytest_cache", ".mypy_cache")

_LFS_LINE = "bin/** filter=lfs diff=lfs merge=lfs -text"


def default_requirement():
    """hfgate==<the installed hfgate's version>, or None when this copy is not installed."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8 is not supported; say so through the caller's error
        return None
    try:
        return "hfgate==" + version("hfgate")
    except PackageNotFoundError:
        return None


# A version pinned with == or ===, and a direct reference (name @ url).
_PINNED_RE = re.compile(r"===?\s*([^\s,;]+)")
_WHEEL_URL = "https://.../hfgate-<version>-py3-none-manylinux_2_17_x86_64.musllinux_1_2_x86_64.whl"


def requirement_warning(req):
    """One line saying why a Space's build cannot install the requirement req, and what to do;
    None when an index or URL can serve it. Two kinds cannot: a version with a local part
    (1.2.4.dev4+gabc1234, what a build between releases is called), which package indexes
    refuse, and a file on this machine (file:// or a path), which the Space's build, run
    elsewhere with only requirements.txt, cannot read."""
    spec = req.split(";", 1)[0].strip()  # without environment markers
    name, at, url = spec.partition("@")
    target = url.strip() if at else spec
    if target.lower().startswith("file:") or target.startswith((".", "/", "~")) or (not at and target.endswith(".whl")):
        return ("requirements.txt installs hfgate from a file on this machine (%s): fine for trying the folder "
                "here, but the Space's build runs elsewhere and cannot read it; before you push, write the folder "
                "again with a published version (--requirement hfgate==<version>) or the wheel's URL "
                "(--requirement 'hfgate @ %s')" % (target, _WHEEL_URL))
    local = _local_version(req)
    if local:
        return ("requirements.txt asks for %s, a development build: no package index serves a version with a "
                "local part (+%s), so the Space's build would stop at \"No matching distribution found\"; "
                "publish the wheel and ask for a released version, or give its URL "
                "(--requirement 'hfgate @ %s')" % (spec, local, _WHEEL_URL))
    return None


def _local_version(req):
    """The local part of the version req pins (gabc1234 of hfgate==1.2.4.dev4+gabc1234), or None."""
    spec = req.split(";", 1)[0]
    m = None if "@" in spec else _PINNED_RE.search(spec)
    if m and "+" in m.group(1):
        return m.group(1).split("+", 1)[1]
    return None


def _names(line, pkg):
    """Whether a requirements line asks for pkg (case, - and _ alike)."""
    norm = re.sub(r"[-_.]+", "[-_.]+", re.escape(pkg))
    return re.match(r"^\s*" + norm + r"\s*([\[<>=!~;@ ]|$)", line, re.IGNORECASE) is not None


def requirements(backend_req, hfgate_req):
    """requirements.txt: the backend's lines, then fastapi and uvicorn if it does not name them,
    then hfgate_req (None: the binary is vendored). A backend line naming hfgate gives way."""
    lines = [ln for ln in backend_req.splitlines() if not _names(ln, "hfgate")]
    out = ["# Written by hfgate.space from the backend's requirements.txt."] + lines
    for pkg in ("fastapi", "uvicorn"):
        if not any(_names(ln, pkg) for ln in lines):
            out.append(pkg)
    if hfgate_req:
        out.append(hfgate_req)
    return "\n".join(out) + "\n"


def new(backend, app, out, requirement=None, vendor_binary=None, title=None,
        python_version="3.12", sdk_version="6.3.0", startup_timeout="30m", log=None):
    """Writes the Space folder out for the FastAPI app ``app`` (module:attribute) in ``backend``.

    By default the Space installs hfgate with pip: requirements.txt gains ``requirement``
    (default: hfgate==<this hfgate's version>). With ``vendor_binary`` (a built linux binary)
    the folder carries it as bin/hfgate (through Git LFS) and this package as hfgate/, and
    requirements.txt does not name hfgate. Files it writes are replaced, others (a .git folder,
    your own files) kept; backend/ is replaced whole. Raises SpaceError before writing anything
    when an argument is wrong.
    """
    log = log or (lambda msg: sys.stderr.write("hfgate.space: " + msg + "\n"))
    if not os.path.isdir(backend):
        raise SpaceError("--backend " + backend + " is not a folder")
    if not _APP_RE.match(app):
        raise SpaceError("--app must be module:attribute, such as app:app or server.main:api (got %s)" % app)
    module = app.split(":", 1)[0]
    modpath = module.replace(".", os.sep)
    if not (os.path.isfile(os.path.join(backend, modpath + ".py"))
            or os.path.isfile(os.path.join(backend, modpath, "__init__.py"))):
        raise SpaceError("--app module %s not found in %s (looked for %s.py and %s/__init__.py)"
                         % (module, backend, modpath, modpath))
    typo = appcheck.problem(backend, app)
    if typo:
        raise SpaceError(typo)
    if not out or os.path.abspath(out) == os.sep:
        raise SpaceError("--out must name a folder")
    backend_abs, out_abs = os.path.realpath(backend), os.path.realpath(out)
    if (out_abs + os.sep).startswith(backend_abs + os.sep):
        raise SpaceError("--out (%s) must not be inside --backend (%s)" % (out, backend))
    if (backend_abs + os.sep).startswith(out_abs + os.sep):
        raise SpaceError("--backend (%s) must not be inside --out (%s)" % (backend, out))
    title = title or os.path.basename(out_abs)
    if any(c in title for c in '"\\\n'):
        raise SpaceError('--title must not contain " \\ or a newline')
    if vendor_binary is None:
        requirement = requirement or default_requirement()
        if not requirement:
            raise SpaceError("--requirement is needed: this hfgate is not installed, so its version is unknown")
    elif not os.path.isfile(vendor_binary):
        raise SpaceError("--vendor-binary " + vendor_binary + " is not a file")

    os.makedirs(out_abs, exist_ok=True)
    log("copying %s to backend/" % backend)
    shutil.rmtree(os.path.join(out_abs, "backend"), ignore_errors=True)
    shutil.copytree(backend_abs, os.path.join(out_abs, "backend"), ignore=_SKIP)

    backend_req = os.path.join(backend_abs, "requirements.txt")
    own = ""
    if os.path.isfile(backend_req):
        with open(backend_req, encoding="utf-8") as f:
            own = f.read()
    _write(out_abs, "requirements.txt", requirements(own, None if vendor_binary else requirement))
    _write(out_abs, APP_FILE, APP_PY.format(app=app))
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "space_readme.md"), encoding="utf-8") as f:
        readme = f.read()
    for k, v in {"TITLE": title, "PYTHON_VERSION": python_version, "SDK_VERSION": sdk_version,
                 "STARTUP_TIMEOUT": startup_timeout, "APP": app}.items():
        readme = readme.replace("{{" + k + "}}", v)
    _write(out_abs, "README.md", readme)

    warning = None
    if vendor_binary is None:
        _unvendor(out_abs, log)
        log("wrote %s: hfgate comes from requirements.txt (%s)" % (out, requirement))
        warning = requirement_warning(requirement)
    else:
        _vendor(out_abs, vendor_binary)
        log("wrote %s with bin/hfgate and hfgate/ vendored (push bin/ with Git LFS/Xet)" % out)
    if vendor_binary is None and _local_version(requirement):
        # No index has this version; the wheel it names is the one built here (make wheel).
        log("try it: cd %s && pip install <the hfgate wheel you built> && pip install -r requirements.txt "
            "&& python app.py" % out)
    else:
        log("try it: cd %s && pip install -r requirements.txt && python app.py" % out)
    if warning:
        # Last, where it is seen; once, whichever way new was called (make space says nothing more).
        log("warning: " + warning)


def _write(out, name, text):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.write(text)


def _package_files():
    here = os.path.dirname(os.path.abspath(__file__))
    return here, sorted(n for n in os.listdir(here) if n.endswith((".py", ".md")))


def _vendor(out, binary):
    """bin/hfgate, this package as hfgate/ (found there as a --target layout), and the Git
    attribute that sends bin/ through LFS, added to the Space's own .gitattributes."""
    os.makedirs(os.path.join(out, "bin"), exist_ok=True)
    dest = os.path.join(out, "bin", "hfgate")
    shutil.copyfile(binary, dest)
    os.chmod(dest, 0o755)
    here, names = _package_files()
    pkg = os.path.join(out, "hfgate")
    shutil.rmtree(pkg, ignore_errors=True)
    os.makedirs(pkg)
    for n in names:
        shutil.copyfile(os.path.join(here, n), os.path.join(pkg, n))
    attrs = os.path.join(out, ".gitattributes")
    have = []
    if os.path.isfile(attrs):
        with open(attrs, encoding="utf-8") as f:
            have = f.read().splitlines()
    if _LFS_LINE not in have:
        with open(attrs, "a", encoding="utf-8") as f:
            f.write(_LFS_LINE + "\n")


def _unvendor(out, log):
    """Removes what an earlier vendored run wrote, so that the pip-installed hfgate is the one
    app.py finds: bin/hfgate, hfgate/ and the LFS line."""
    for path in (os.path.join(out, "bin", "hfgate"), os.path.join(out, "hfgate")):
        if os.path.lexists(path):
            log("removing %s (from a VENDOR_BINARY=1 run)" % os.path.relpath(path, out))
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    bindir = os.path.join(out, "bin")
    if os.path.isdir(bindir) and not os.listdir(bindir):
        os.rmdir(bindir)
    attrs = os.path.join(out, ".gitattributes")
    if os.path.isfile(attrs):
        with open(attrs, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if _LFS_LINE in lines:
            rest = [ln for ln in lines if ln != _LFS_LINE]
            if any(ln.strip() for ln in rest):
                _write(out, ".gitattributes", "".join(ln + "\n" for ln in rest))
            else:
                os.remove(attrs)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hfgate.space",
                                description="Write a Hugging Face Space folder that runs a FastAPI backend behind hfgate.")
    sub = p.add_subparsers(dest="command", metavar="new")
    n = sub.add_parser("new", help="write a Space folder")
    n.add_argument("--backend", required=True, help="folder with the FastAPI app (copied to OUT/backend)")
    n.add_argument("--app", default="main:app", help="the ASGI app as module:attribute inside BACKEND (default main:app); checked against the module's source, not imported")
    n.add_argument("--out", required=True, help="the Space folder to write (a clone of the Space, say)")
    n.add_argument("--requirement", help="how requirements.txt asks for hfgate (default: hfgate==<this version>)")
    n.add_argument("--vendor-binary", metavar="PATH", help="carry this linux binary as bin/hfgate instead of installing hfgate with pip")
    n.add_argument("--title", help="Space title in the README front matter (default: OUT's folder name)")
    n.add_argument("--python-version", default="3.12", help="python_version in the front matter (default 3.12)")
    n.add_argument("--sdk-version", default="6.3.0", help="Gradio sdk_version in the front matter (default 6.3.0)")
    n.add_argument("--startup-timeout", default="30m", help="startup_duration_timeout in the front matter (default 30m)")
    a = p.parse_args(argv)
    if a.command != "new":
        p.print_usage(sys.stderr)
        return 2
    try:
        new(a.backend, a.app, a.out, requirement=a.requirement, vendor_binary=a.vendor_binary, title=a.title,
            python_version=a.python_version, sdk_version=a.sdk_version, startup_timeout=a.startup_timeout)
    except SpaceError as e:
        _fail("hfgate.space", str(e), 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
