"""Unit tests for build_wheel.py's version mapping (run from the repository root: /usr/bin/python3 -m unittest discover -s python/tests)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import build_wheel  # noqa: E402

try:  # pip's own copy of packaging: the parser pip will read the version with.
    from pip._vendor.packaging.version import Version
except ImportError:  # pragma: no cover
    Version = None


class Pep440Test(unittest.TestCase):
    def test_forms(self):
        tests = [
            ("v1.2.3", "1.2.3"),
            ("1.2.3", "1.2.3"),
            ("v2.0", "2.0"),
            ("v1.2.3-dirty", "1.2.3+dirty"),
            ("v1.3.0-rc.1", "1.3.0rc1"),
            ("v1.3.0-beta2", "1.3.0b2"),
            ("v1.3.0a", "1.3.0a0"),
            ("v1.2.3-4-gabc1234", "1.2.4.dev4+gabc1234"),
            ("v1.2.3-4-gabc1234-dirty", "1.2.4.dev4+gabc1234.dirty"),
            ("v1.3.0-rc.1-2-gabc1234", "1.3.0rc2.dev2+gabc1234"),
            ("v0.0.0-104-g5bdb569", "0.0.1.dev104+g5bdb569"),
            ("v1.2.3-0-gabc1234", "1.2.3"),
        ]
        for given, want in tests:
            with self.subTest(given=given):
                got = build_wheel.pep440(given)
                self.assertEqual(got, want)
                if Version is not None:
                    self.assertEqual(str(Version(got)), want, "not in PEP 440's normal form")

    def test_ordering(self):
        if Version is None:
            self.skipTest("pip's packaging is not importable")
        order = ["v1.2.3", "v1.2.3-4-gabc1234", "v1.2.4-rc.1", "v1.2.4-rc.1-1-gdef5678", "v1.2.4"]
        got = [Version(build_wheel.pep440(v)) for v in order]
        self.assertEqual(got, sorted(got), "a later commit must sort after an earlier one")

    def test_rejects(self):
        for bad in ["devel", "5bdb569", "v9.8.7-spacetest", "", "v1.2.3-4-gXYZ", "latest"]:
            with self.subTest(bad=bad):
                with self.assertRaises(build_wheel.BuildError) as cm:
                    build_wheel.pep440(bad)
                self.assertIn("PEP 440", str(cm.exception))


class LongDescriptionTest(unittest.TestCase):
    def test_relative_links_made_absolute(self):
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write("[a](docs/x.md) [b](https://e.org/y) [c](#top) ![d](docs/p.png)\n")
        try:
            got = build_wheel.long_description(f.name)
        finally:
            os.remove(f.name)
        base = build_wheel.URL + "/blob/main/"
        self.assertEqual(got, "[a](%sdocs/x.md) [b](https://e.org/y) [c](#top) ![d](%sdocs/p.png)\n" % (base, base))


if __name__ == "__main__":
    unittest.main()
