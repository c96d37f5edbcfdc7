"""tests/unittest_exit.py -- run a Python unittest module for ctest, with ctest's three
answers: 0 when every test passed and at least one ran, 77 (SKIP_RETURN_CODE, set by
tests/testing.cmake) when every test skipped itself (a missing peer, no root), 1 on a
failure. `python3 -m unittest` exits 0 for a module that skipped everything, which ctest
would show as Passed.

    python3 tests/unittest_exit.py FILE.py [TestClass[.test_name] ...]

Never: hides a failure behind a skip (a module with a failure exits 1, whatever it skipped).
"""
import importlib.util
import os
import sys
import unittest

SKIP_RETURN_CODE = 77


def exit_code(result):
    """0, SKIP_RETURN_CODE or 1 for a finished unittest result."""
    if not result.wasSuccessful():
        return 1
    # A skip in setUpClass counts no test run and one skip for the class.
    skipped_tests = sum(1 for case, _ in result.skipped if isinstance(case, unittest.TestCase))
    if result.skipped and result.testsRun == skipped_tests:
        print("SKIPPED: " + "; ".join(sorted({reason for _, reason in result.skipped})))
        return SKIP_RETURN_CODE
    return 0


def run(module, names=()):
    """Runs the tests of `module` (or the named ones in it) verbosely; returns exit_code()."""
    loader = unittest.defaultTestLoader
    suite = (unittest.TestSuite(loader.loadTestsFromName(n, module) for n in names) if names
             else loader.loadTestsFromModule(module))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    sys.stdout.flush()
    return exit_code(result)


def main(argv):
    path = os.path.abspath(argv[0])
    # The module imports its neighbours (harness.py, *_support.py) as `python3 -m unittest`
    # run from its folder would let it.
    sys.path.insert(0, os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return run(module, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
