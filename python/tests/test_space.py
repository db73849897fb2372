"""Unit tests for hfgate.find_hfgate_bin and hfgate.space (run from the repository root: /usr/bin/python3 -m unittest discover -s python/tests)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, PYTHON_DIR)

from hfgate import space  # noqa: E402


class RequirementsTest(unittest.TestCase):
    def test_merge(self):
        tests = [
            ("empty backend", "", "hfgate==1.2.3", ["fastapi", "uvicorn", "hfgate==1.2.3"]),
            ("backend names both", "FastAPI>=0.100\nuvicorn[standard]\n", "hfgate==1.2.3",
             ["FastAPI>=0.100", "uvicorn[standard]", "hfgate==1.2.3"]),
            ("backend's hfgate gives way", "hfgate==0.1\nfastapi\nuvicorn\n", "hfgate @ https://x/h.whl",
             ["fastapi", "uvicorn", "hfgate @ https://x/h.whl"]),
            ("vendored: no hfgate line", "fastapi\n", None, ["fastapi", "uvicorn"]),
            ("a name that only starts alike", "fastapi-users\nuvicorn-worker\n", None,
             ["fastapi-users", "uvicorn-worker", "fastapi", "uvicorn"]),
        ]
        for name, backend, req, want in tests:
            with self.subTest(name=name):
                got = space.requirements(backend, req).splitlines()
                self.assertTrue(got[0].startswith("# "), got)
                self.assertEqual([ln for ln in got[1:] if ln], want)


class RequirementWarningTest(unittest.TestCase):
    def test_warning(self):
        tests = [
            ("a release", "hfgate==1.2.3", None),
            ("a dev release an index may hold", "hfgate==1.2.4.dev4", None),
            ("unpinned", "hfgate", None),
            ("a range", "hfgate>=1.2,<2", None),
            ("a URL", "hfgate @ https://example.com/hfgate-1.2.3-py3-none-manylinux_2_17_x86_64.whl", None),
            ("a local version", "hfgate==1.2.4.dev4+gabc1234", "a development build"),
            ("a dirty local version", "hfgate===0.0.1.dev181+ge61ca42.dirty", "(+ge61ca42.dirty)"),
            ("with a marker", "hfgate==1.2.4.dev4+gabc1234 ; platform_machine == 'x86_64'", "a development build"),
            ("file URL", "hfgate @ file:///home/me/dist/hfgate-1.2.3-py3-none-any.whl", "a file on this machine (file:///home/me/dist/"),
            ("a path", "./dist/hfgate-1.2.3-py3-none-any.whl", "a file on this machine (./dist/"),
            ("an absolute path", "/tmp/hfgate-1.2.3-py3-none-any.whl", "a file on this machine"),
        ]
        for name, req, want in tests:
            with self.subTest(name=name):
                got = space.requirement_warning(req)
                if want is None:
                    self.assertIsNone(got)
                    continue
                self.assertIn(want, got)
                self.assertNotIn("\n", got)
                # What to do: publish, or the URL form.
                self.assertIn("--requirement 'hfgate @ https://", got)

    def test_new_warns_once_last(self):
        """new writes the requirement it was given, and says once, last, why no index serves it."""
        backend = os.path.join(os.path.dirname(PYTHON_DIR), "examples", "chatbot")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        for req, warned in [("hfgate==1.2.4.dev4+gabc1234", True), ("hfgate @ file:///x/h.whl", True), ("hfgate==1.2.3", False)]:
            with self.subTest(req=req):
                lines = []
                out = os.path.join(tmp, "space")
                space.new(backend, "app:app", out, requirement=req, log=lines.append)
                with open(os.path.join(out, "requirements.txt")) as f:
                    self.assertIn(req, f.read().splitlines())
                warnings = [ln for ln in lines if ln.startswith("warning: ")]
                self.assertEqual(len(warnings), 1 if warned else 0, lines)
                if warned:
                    self.assertEqual(lines[-1], warnings[0])
                try_it = [ln for ln in lines if ln.startswith("try it: ")]
                self.assertEqual(len(try_it), 1, lines)
                self.assertEqual("<the hfgate wheel you built>" in try_it[0], "+" in req, try_it[0])


class EnvironmentTest(unittest.TestCase):
    def test_port_dropped_without_gradio_server_port(self):
        env = space.environment("main:app", "/b", {"PORT": "7861", "UPSTREAM_CMD": "x"})
        self.assertNotIn("PORT", env)

    def test_port_kept_with_gradio_server_port(self):
        env = space.environment("main:app", "/b", {"PORT": "7861", "GRADIO_SERVER_PORT": "7860", "UPSTREAM_CMD": "x"})
        self.assertEqual(env["PORT"], "7861")  # hfgate prefers GRADIO_SERVER_PORT itself

    def test_upstream_url_without_port(self):
        with self.assertRaises(space.SpaceError):
            space.environment("main:app", "/b", {"UPSTREAM_URL": "http://127.0.0.1"})

    def test_environ_not_changed(self):
        environ = {"A": "1"}
        space.environment("main:app", "/b", environ)
        self.assertEqual(environ, {"A": "1"})


class NewRejectsTest(unittest.TestCase):
    def test_rejects_before_writing(self):
        backend = os.path.join(os.path.dirname(PYTHON_DIR), "examples", "chatbot")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        out = os.path.join(tmp, "space")
        tests = [
            ("out inside backend", dict(backend=backend, app="app:app", out=os.path.join(backend, "space")), "must not be inside"),
            ("backend inside out", dict(backend=backend, app="app:app", out=os.path.dirname(backend)), "must not be inside"),
            ("title with a quote", dict(backend=backend, app="app:app", out=out, title='a "b"'), "--title"),
            ("no requirement, not installed", dict(backend=backend, app="app:app", out=out), "--requirement"),
            ("vendor binary missing", dict(backend=backend, app="app:app", out=out, vendor_binary=os.path.join(tmp, "nope")), "not a file"),
        ]
        for name, kw, want in tests:
            with self.subTest(name=name):
                with self.assertRaises(space.SpaceError) as cm:
                    space.new(log=lambda m: None, **kw)
                self.assertIn(want, str(cm.exception))
                self.assertFalse(os.path.exists(out))
                self.assertFalse(os.path.exists(os.path.join(backend, "space")))


class AppCheckTest(unittest.TestCase):
    """The typo check of module:attribute, at launch (run, through prepare) and in new."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.backend = os.path.join(self.tmp, "backend")
        os.makedirs(self.backend)
        with open(os.path.join(self.backend, "main.py"), "w") as f:
            f.write("from fastapi import FastAPI\n\napp = FastAPI()\n")

    def test_same_line_at_launch_and_in_new(self):
        with self.assertRaises(space.SpaceError) as launched:
            space.prepare("main:ap", self.backend, {})
        with self.assertRaises(space.SpaceError) as written:
            space.new(self.backend, "main:ap", os.path.join(self.tmp, "out"), requirement="hfgate==1.0", log=lambda m: None)
        want = 'main:ap: %s has no top-level name "ap" (did you mean "app"?)' % os.path.join(self.backend, "main.py")
        self.assertEqual(str(launched.exception), want)
        self.assertEqual(str(written.exception), want)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "out")))

    def test_module_neither_in_backend_nor_installed(self):
        with self.assertRaises(space.SpaceError) as cm:
            space.check_app("mian:app", self.backend)
        self.assertEqual(str(cm.exception), "mian:app: no module mian in %s (looked for mian.py and mian/__init__.py)" % self.backend)

    def test_installed_module_passes(self):
        space.check_app("json:app", self.backend)  # installed, not in backend/: cannot tell, says nothing

    def test_found(self):
        space.check_app("main:app", self.backend)

    def test_not_checked_when_the_space_sets_upstream_cmd(self):
        """With UPSTREAM_CMD set, app is not what runs: no typo is reported."""
        with mock.patch.object(space, "find_hfgate_bin", side_effect=space.HfgateNotFound(["(mocked)"])):
            with self.assertRaises(space.SpaceError) as cm:
                space.prepare("main:ap", self.backend, {"UPSTREAM_CMD": "python serve.py"})
        self.assertIn("hfgate binary not found", str(cm.exception))


class FindOrderTest(unittest.TestCase):
    """find_hfgate_bin in a fresh interpreter: the package copied to T/hfgate (a --target
    layout), a user base U, and a PATH directory P, each maybe holding a binary."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        shutil.copytree(os.path.join(PYTHON_DIR, "hfgate"), os.path.join(self.tmp, "T", "hfgate"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        scripts = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_path('scripts'))"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        if os.path.exists(os.path.join(scripts, "hfgate")):
            self.skipTest("an hfgate is installed in " + scripts)

    def binary(self, where):
        d = os.path.join(self.tmp, where, "bin")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "hfgate")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o755)
        return path

    def find(self):
        env = {"PYTHONPATH": os.path.join(self.tmp, "T"), "PYTHONUSERBASE": os.path.join(self.tmp, "U"),
               "PATH": os.path.join(self.tmp, "P", "bin"), "PYTHONDONTWRITEBYTECODE": "1"}
        r = subprocess.run([sys.executable, "-c", "import hfgate; print(hfgate.find_hfgate_bin())"],
                           env=env, cwd=self.tmp, capture_output=True, text=True)
        return r.returncode, r.stdout.strip(), r.stderr

    def test_order(self):
        on_path = self.binary("P")
        code, out, err = self.find()
        self.assertEqual((code, out), (0, on_path), err)
        target = self.binary("T")
        self.assertEqual(self.find()[1], target)
        user = self.binary("U")
        self.assertEqual(self.find()[1], user)

    def test_not_found_lists_every_place(self):
        code, out, err = self.find()
        self.assertNotEqual(code, 0)
        for want in ["(scripts)", os.path.join(self.tmp, "U", "bin", "hfgate") + " (user scheme)",
                     os.path.join(self.tmp, "T", "bin", "hfgate") + " (target layout)", "PATH: " + os.path.join(self.tmp, "P", "bin")]:
            self.assertIn(want, err)


if __name__ == "__main__":
    unittest.main()
