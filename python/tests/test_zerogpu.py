"""Unit tests for hfgate.zerogpu: which functions count as @spaces.GPU, and the start-up report
sent through a stand-in spaces package to a stand-in device API (a local HTTP server)
(run: python3 -m unittest discover -s python/tests)."""

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zerogpu_standins")
sys.path.insert(0, PYTHON_DIR)

from hfgate import zerogpu  # noqa: E402


class GpuFunctionsTest(unittest.TestCase):
    def test_forms(self):
        tests = [
            ("bare decorator", "import spaces\n@spaces.GPU\ndef f(): pass\n", ["f"]),
            ("with arguments", "import spaces\n@spaces.GPU(duration=60)\ndef f(): pass\n", ["f"]),
            ("module alias", "import spaces as sp\n@sp.GPU(duration=5)\ndef f(): pass\n", ["f"]),
            ("from import", "from spaces import GPU\n@GPU\ndef f(): pass\n", ["f"]),
            ("from import alias", "from spaces import GPU as gpu\n@gpu(duration=1)\ndef f(): pass\n", ["f"]),
            ("method and async", "import spaces\nclass M:\n  @spaces.GPU\n  def run(self): pass\n"
             "@spaces.GPU\nasync def g(): pass\n", ["run", "g"]),
            ("wrapped", "import spaces\ndef g(): pass\nh = spaces.GPU(g)\nk = spaces.GPU(duration=3)(g)\n", ["g", "g"]),
            ("in order of the file", "import spaces\n@spaces.GPU\ndef b(): pass\n@spaces.GPU\ndef a(): pass\n", ["b", "a"]),
            ("other decorators", "import functools, spaces\n@functools.cache\ndef f(): pass\n", []),
            ("GPU of another module", "import torch\n@torch.GPU\ndef f(): pass\n", []),
            ("GPU without the import", "@GPU\ndef f(): pass\n@spaces.GPU\ndef g(): pass\n", []),
            ("spaces imported, nothing decorated", "import spaces\ndef f(): pass\n", []),
        ]
        for name, source, want in tests:
            with self.subTest(name=name):
                self.assertEqual(zerogpu.gpu_functions(source), want)

    def test_syntax_error(self):
        with self.assertRaises(SyntaxError):
            zerogpu.gpu_functions("def f(:\n")

    def test_enabled(self):
        for value, want in [("true", True), ("TRUE", True), ("1", True), ("t", True), ("", False), ("0", False),
                            ("false", False), ("yes", False)]:
            with self.subTest(value=value):
                self.assertEqual(zerogpu.enabled({"SPACES_ZERO_GPU": value}), want)
        self.assertFalse(zerogpu.enabled({}))


class DeviceAPI:
    """A stand-in of ZeroGPU's device API: records each request's path, answers status."""

    def __init__(self, status=200):
        self.requests = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                api.requests.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# Runs zerogpu.startup in a fresh interpreter (spaces reads its environment once, at import) and
# prints what it logged, then whether the launcher's process imported spaces and gradio.
SCRIPT = """
import sys
from hfgate import zerogpu
try:
    zerogpu.startup(sys.argv[1], sys.argv[2], sys.argv[3] or None, __import__("os").environ,
                    log=lambda line: print("LOG", line))
except zerogpu.ZeroGPUError as e:
    print("ERROR", e)
print("IMPORTED", "spaces" in sys.modules, "gradio" in sys.modules)
"""


class StartupTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.backend = os.path.join(self.tmp, "backend")
        os.makedirs(os.path.join(self.backend, "pkg"))
        files = {
            "app.py": "import spaces\nfrom fastapi import FastAPI\napp = FastAPI()\n@spaces.GPU(duration=10)\n"
                      "def generate(p):\n    return p\n",
            "plain.py": "app = object()\n",
            "pkg/__init__.py": "",
            "pkg/models.py": "from spaces import GPU\n@GPU\ndef embed(x):\n    return x\n",
            "broken.py": "def f(:\n",
        }
        for name, text in files.items():
            with open(os.path.join(self.backend, name), "w") as f:
                f.write(text)

    def startup(self, app, gpu="", env=None, status=200):
        api = DeviceAPI(status)
        self.addCleanup(api.close)
        full = {"PATH": "/usr/bin:/bin", "PYTHONPATH": STANDINS + os.pathsep + PYTHON_DIR,
                "PYTHONDONTWRITEBYTECODE": "1", "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api.url}
        full.update(env or {})
        r = subprocess.run([sys.executable, "-c", SCRIPT, app, self.backend, gpu], env={k: v for k, v in full.items() if v is not None},
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines(), api.requests

    def test_reports_for_the_apps_module(self):
        out, requests = self.startup("app:app")
        self.assertEqual(requests, ["/startup-report"])
        self.assertEqual(len(out), 2, out)
        self.assertRegex(out[0], r"^LOG ZeroGPU: start-up report sent in [0-9.]+s, before hfgate binds the port, "
                                 r"for backend/app.py \(generate\)$")
        self.assertEqual(out[1], "IMPORTED True True")

    def test_reports_for_named_modules(self):
        out, requests = self.startup("plain:app", gpu="pkg.models")
        self.assertEqual(requests, ["/startup-report"])
        self.assertIn("for backend/pkg/models.py (embed)", out[0])

    def test_nothing_declared(self):
        out, requests = self.startup("plain:app")
        self.assertEqual(requests, [])
        self.assertEqual(len(out), 2, out)
        self.assertTrue(out[0].startswith("LOG this Space runs on ZeroGPU hardware, which stops a Space that declares "
                                          "no @spaces.GPU function at start-up (\"No @spaces.GPU function detected "
                                          "during startup\"), and backend/plain.py declares none"), out[0])
        self.assertIn('hfgate.space.run("plain:app", gpu="models")', out[0])
        self.assertEqual(out[1], "IMPORTED False False")

    def test_declared_but_not_seen(self):
        out, requests = self.startup("app:app", gpu="plain")
        self.assertEqual(requests, ["/startup-report"])
        self.assertIn("no @spaces.GPU function found by reading backend/plain.py; reporting all the same", out[0])

    def test_errors(self):
        tests = [
            ("report refused", dict(app="app:app", status=500), "the ZeroGPU start-up report failed (RuntimeError: "
             "Error while initializing ZeroGPU: Unknown)"),
            ("no device API URL", dict(app="app:app", env={"SPACES_ZERO_DEVICE_API_URL": None}),
             "cannot import the spaces package (AssertionError: SPACES_ZERO_DEVICE_API_URL must be set on ZeroGPU)"),
            ("no spaces package", dict(app="app:app", env={"PYTHONPATH": PYTHON_DIR}),
             "cannot import the spaces package (ModuleNotFoundError"),
            ("module missing", dict(app="app:app", gpu="nope"), "gpu names the module nope, which is not in"),
            ("module does not parse", dict(app="broken:app"), "backend/broken.py does not parse (line 1"),
        ]
        for name, kw, want in tests:
            with self.subTest(name=name):
                out, _ = self.startup(**kw)
                self.assertTrue(out[0].startswith("ERROR ") and want in out[0], out)

    def test_off_zerogpu(self):
        for value in ("", "false"):
            with self.subTest(SPACES_ZERO_GPU=value):
                out, requests = self.startup("app:app", env={"SPACES_ZERO_GPU": value})
                self.assertEqual((out, requests), (["IMPORTED False False"], []))
        out, _ = self.startup("app:app", gpu="nope", env={"SPACES_ZERO_GPU": None})
        self.assertTrue(out[0].startswith("ERROR gpu names the module nope"), out)


if __name__ == "__main__":
    unittest.main()
