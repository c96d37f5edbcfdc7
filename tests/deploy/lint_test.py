"""tests/deploy/lint_test.py

yamllint over every YAML file of deploy/ and tests/deploy/ with deploy/.yamllint, strict
(warnings fail too), from the source root so the config's per-file ignores apply.

Never: lints files outside deploy/ and tests/deploy/ (other folders have other owners).
"""

import shutil
import subprocess
import unittest

import deploy_testing as dt


class YamllintTest(unittest.TestCase):
    def test_deploy_yaml_is_lint_clean(self):
        if not shutil.which("yamllint"):
            raise unittest.SkipTest("yamllint not installed (scripts/install-deps)")
        r = subprocess.run(["yamllint", "-s", "-f", "parsable", "-c", "deploy/.yamllint", "deploy", "tests/deploy"],
                           cwd=dt.SRC, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, "yamllint:\n" + r.stdout + r.stderr)


if __name__ == "__main__":
    dt.main()
