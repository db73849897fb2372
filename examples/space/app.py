"""Starts hfgate in front of the FastAPI backend in backend/ on a Hugging Face Space.

The Space's Python runtime runs `python app.py` (the app_file in README.md); so does a user
trying the folder locally. This launcher checks that bin/hfgate is there and built for this
machine, makes it executable, fills in how hfgate starts the backend (unless the Space's
Variables already say), and replaces itself with hfgate (os.execv), which then binds the
Space's port at once, starts uvicorn and answers for the backend while it warms up.

It uses the standard library only: it runs before (and whatever) the backend's requirements.
Written by hfgate's `make space`; see docs/deploy-hf-spaces.md in the hfgate repository.
"""

import os
import platform
import shlex
import socket
import sys

# The ASGI app uvicorn serves, as module:attribute inside backend/ (set by make space APP=...).
APP = "app:app"

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "bin", "hfgate")
BACKEND = os.path.join(HERE, "backend")

# ELF e_machine values, by what platform.machine() says.
MACHINES = {
    "x86_64": (62, "amd64"),
    "amd64": (62, "amd64"),
    "aarch64": (183, "arm64"),
    "arm64": (183, "arm64"),
}
ELF_NAMES = {62: "amd64", 183: "arm64", 3: "386", 40: "arm"}


def fail(message):
    """Writes one line to stderr (the Space's Logs console) and exits 1."""
    sys.stderr.write("app.py: " + message + "\n")
    sys.stderr.flush()
    sys.exit(1)


def check_binary(path):
    """Fails unless path is an ELF executable for this machine."""
    rel = os.path.relpath(path, HERE)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        fail(rel + " is missing: rebuild the folder with `make space` and push bin/hfgate "
             "with Git LFS/Xet (see docs/deploy-hf-spaces.md)")
    except OSError as e:
        fail("cannot read " + rel + ": " + e.strerror)
    if head.startswith(b"version https://git-lfs"):
        fail(rel + " is a Git LFS pointer, not the binary: install git-lfs (git lfs install) "
             "and push again, or upload bin/hfgate in the Space's Files tab")
    if len(head) < 20 or head[:4] != b"\x7fELF":
        fail(rel + " is not a Linux executable: rebuild the folder with `make space`")
    order = "little" if head[5] == 1 else "big"
    e_machine = int.from_bytes(head[18:20], order)
    machine = platform.machine().lower()
    want = MACHINES.get(machine)
    if want is None:
        fail("this machine is " + machine + "; hfgate is built for amd64 and arm64 only")
    if e_machine != want[0]:
        built = ELF_NAMES.get(e_machine, "machine type %d" % e_machine)
        fail(rel + " is built for " + built + " but this machine is " + machine + " (" + want[1]
             + "): build it with GOARCH=" + want[1] + " (make release builds both)")


def make_executable(path):
    mode = os.stat(path).st_mode
    if mode & 0o111 != 0o111:
        try:
            os.chmod(path, mode | 0o111)
        except OSError as e:
            if not os.access(path, os.X_OK):
                fail("cannot make " + os.path.relpath(path, HERE) + " executable: " + e.strerror)


def free_port():
    """A loopback port that was free a moment ago, for uvicorn."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream_port(env):
    """The port uvicorn listens on: UPSTREAM_URL's when the Space sets it, else a free one."""
    url = env.get("UPSTREAM_URL", "").strip()
    if not url:
        return free_port()
    from urllib.parse import urlsplit

    try:
        port = urlsplit(url).port
    except ValueError:
        port = None
    if port is None:
        fail("UPSTREAM_URL is set without a port; set UPSTREAM_CMD too, or give the port "
             "(http://127.0.0.1:8000)")
    return port


def environment():
    """The environment hfgate starts with: the Space's, plus how to run the backend."""
    env = dict(os.environ)
    # Python's output reaches the Logs console as it is written, not in 8 KiB blocks.
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not env.get("UPSTREAM_CMD", "").strip():
        port = upstream_port(env)
        cmd = [sys.executable, "-m", "uvicorn", APP, "--app-dir", BACKEND,
               "--host", "127.0.0.1", "--port", str(port),
               "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
        env["UPSTREAM_CMD"] = " ".join(shlex.quote(w) for w in cmd)
        env.setdefault("UPSTREAM_URL", "http://127.0.0.1:%d" % port)
        # The backend runs in its own folder, as it did in development, so relative paths
        # in it keep working.
        env.setdefault("UPSTREAM_DIR", BACKEND)
    return env


def main():
    check_binary(BINARY)
    make_executable(BINARY)
    env = environment()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(BINARY, [BINARY], env)
    except OSError as e:
        fail("cannot start " + os.path.relpath(BINARY, HERE) + ": " + e.strerror)


if __name__ == "__main__":
    main()
