"""tests/unittest_exit_test.py -- tests/unittest_exit.py gives ctest the right answer: a module
whose every test skipped itself (in the test or in setUpClass) exits 77, one that ran a test
exits 0 even if others skipped, and one with a failure exits 1 even if others skipped.

Never: writes outside its temp dir.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unittest_exit.py")


class UnittestExitTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-unittest-exit-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_module(self, body):
        path = os.path.join(self.tmp, "case_test.py")
        with open(path, "w") as f:
            f.write("import unittest\n\n" + textwrap.dedent(body))
        # The module imports a neighbour, as the integration tests import harness.
        with open(os.path.join(self.tmp, "neighbour.py"), "w") as f:
            f.write("VALUE = 1\n")
        return subprocess.run([sys.executable, RUNNER, path], capture_output=True, text=True, timeout=60)

    def test_every_test_skipped_exits_77_with_the_reason(self):
        r = self.run_module("""
            class T(unittest.TestCase):
                def test_a(self):
                    self.skipTest("no postfix here")
                @unittest.skip("no root")
                def test_b(self):
                    pass
            """)
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)
        self.assertIn("SKIPPED: no postfix here; no root", r.stdout)

    def test_a_skip_in_set_up_class_exits_77(self):
        r = self.run_module("""
            class T(unittest.TestCase):
                @classmethod
                def setUpClass(cls):
                    raise unittest.SkipTest("peer missing")
                def test_a(self):
                    pass
            """)
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)

    def test_one_test_run_exits_0(self):
        r = self.run_module("""
            import neighbour
            class T(unittest.TestCase):
                def test_ran(self):
                    self.assertEqual(neighbour.VALUE, 1)
                def test_skipped(self):
                    self.skipTest("x")
            """)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_a_failure_exits_1_whatever_was_skipped(self):
        r = self.run_module("""
            class T(unittest.TestCase):
                def test_fails(self):
                    self.fail("boom")
                def test_skipped(self):
                    self.skipTest("x")
            """)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_named_tests_only(self):
        r = self.run_module("""
            class T(unittest.TestCase):
                def test_fails(self):
                    self.fail("boom")
            class U(unittest.TestCase):
                def test_ok(self):
                    pass
            """)
        self.assertEqual(r.returncode, 1)
        path = os.path.join(self.tmp, "case_test.py")
        r = subprocess.run([sys.executable, RUNNER, path, "U"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
