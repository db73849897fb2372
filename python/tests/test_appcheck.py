"""Unit tests for hfgate.appcheck (run: python3 -m unittest discover -s python/tests)."""

import os
import shutil
import sys
import tempfile
import textwrap
import unittest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

from hfgate import appcheck  # noqa: E402


class ProblemTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def write(self, rel, source):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(source))
        return path

    def test_found(self):
        """Every way a module binds a top-level name counts; no problem is reported."""
        tests = [
            ("assignment", "from fastapi import FastAPI\napp = FastAPI()\n", "app"),
            ("annotated", "app: object = object()\n", "app"),
            ("unpacked", "app, other = make()\n", "app"),
            ("starred", "first, *app = make()\n", "app"),
            ("from import", "from server.main import app\n", "app"),
            ("from import as", "from server.main import create as app\n", "app"),
            ("import", "import app\n", "app"),
            ("dotted import binds the first name", "import app.routes\n", "app"),
            ("def", "async def app(scope, receive, send):\n    pass\n", "app"),
            ("class", "class App:\n    pass\n", "App"),
            ("if/else", "if X:\n    app = 1\nelse:\n    app = 2\n", "app"),
            ("try/except", "try:\n    from a import app\nexcept ImportError:\n    app = None\n", "app"),
            ("with", "with make() as app:\n    pass\n", "app"),
            ("for", "for app in range(1):\n    pass\n", "app"),
            ("walrus", "if (app := make()):\n    pass\n", "app"),
            ("global in a factory", "def create():\n    global app\n    app = make()\n\ncreate()\n", "app"),
            ("dotted attribute: the first name", "app = make()\n", "app.router"),
        ]
        for name, source, attr in tests:
            with self.subTest(name=name):
                self.write("main.py", source)
                self.assertIsNone(appcheck.problem(self.dir, "main:" + attr))

    def test_missing(self):
        """A name bound only in a function, a class or an annotation is not there."""
        tests = [
            ("typo", "app = make()\napi_version = 2\n", "ap", '(did you mean "app"?)'),
            ("only in a function", "def create():\n    ap = make()\n    return ap\n", "ap", ""),
            ("only in a class", "class Config:\n    ap = 1\n", "ap", ""),
            ("renamed on import", "from server import app as api\n", "app", '(did you mean "api"?)'),
        ]
        for name, source, attr, hint in tests:
            with self.subTest(name=name):
                path = self.write("main.py", source)
                got = appcheck.problem(self.dir, "main:" + attr)
                want = 'main:%s: %s has no top-level name "%s"' % (attr, path, attr)
                self.assertEqual(got, (want + " " + hint).strip())
                self.assertNotIn("\n", got)

    def test_cannot_tell(self):
        """Where the source does not show the module's names, the check says nothing."""
        tests = [
            ("star import", "from server import *\n"),
            ("globals()", 'globals()["app"] = make()\n'),
            ("module __getattr__", "def __getattr__(name):\n    return make(name)\n"),
            ("sys.modules", "import sys\nsys.modules[__name__] = make()\n"),
            ("exec", 'exec("app = make()")\n'),
            ("syntax error", "def broken(:\n    pass\n"),
        ]
        for name, source in tests:
            with self.subTest(name=name):
                self.write("main.py", source)
                self.assertIsNone(appcheck.problem(self.dir, "main:app"))

    @unittest.skipUnless(sys.version_info >= (3, 10), "match statements need Python 3.10 (this is %d.%d)" % sys.version_info[:2])
    def test_match_capture(self):
        self.write("main.py", "match make():\n    case {'app': app}:\n        pass\n")
        self.assertIsNone(appcheck.problem(self.dir, "main:app"))

    def test_package(self):
        init = self.write(os.path.join("server", "__init__.py"), "from .routes import api\n")
        self.write(os.path.join("server", "worker.py"), "x = 1\n")
        self.assertIsNone(appcheck.problem(self.dir, "server:api"))
        self.assertIsNone(appcheck.problem(self.dir, "server:routes"), "from .routes import ... sets server.routes")
        self.assertIsNone(appcheck.problem(self.dir, "server:worker"), "a submodule: the check cannot tell")
        self.assertEqual(appcheck.problem(self.dir, "server:app"), 'server:app: %s has no top-level name "app" (did you mean "api"?)' % init)

    def test_dotted_module(self):
        path = self.write(os.path.join("src", "main.py"), "app = 1\n")
        self.assertIsNone(appcheck.problem(self.dir, "src.main:app"))
        self.assertEqual(appcheck.problem(self.dir, "src.main:ap"), 'src.main:ap: %s has no top-level name "ap" (did you mean "app"?)' % path)

    def test_module_not_in_backend(self):
        self.assertIsNone(appcheck.problem(self.dir, "elsewhere:app"), "the caller judges a module that is not there")
        self.assertIsNone(appcheck.module_path(self.dir, "elsewhere"))

    def test_source_encoding(self):
        path = os.path.join(self.dir, "main.py")
        with open(path, "wb") as f:
            f.write("# -*- coding: latin-1 -*-\ngreeting = 'Grüß'\napp = 1\n".encode("latin-1"))
        self.assertIsNone(appcheck.problem(self.dir, "main:app"))

    def test_not_imported(self):
        """The check never runs the backend's code."""
        marker = os.path.join(self.dir, "ran")
        self.write("main.py", "open(%r, 'w').close()\napp = 1\n" % marker)
        appcheck.problem(self.dir, "main:ap")
        self.assertFalse(os.path.exists(marker))
        self.assertNotIn("main", sys.modules)


if __name__ == "__main__":
    unittest.main()
