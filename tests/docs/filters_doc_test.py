"""tests/docs/filters_doc_test.py

docs/filters.md held to the code: the example rules file of "The rules language" and the
rules file the Kubernetes base ships (deploy/k8s/base/config/filter-bridge-rules.yaml) pass
sluice-filter-bridge's own start-up checks (`--check --rules=FILE`: every pattern, CIDR,
code and action compiled); every condition of sluice.v1.RuleMatch and every action of
RuleAction is named in the page.

Never: starts a server (--check starts nothing); writes outside its temporary directory.
"""
import os
import re
import subprocess
import tempfile
import unittest

SRC = os.environ.get("SLUICE_SOURCE_DIR") or os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SLUICE_BIN_DIR") or os.path.join(SRC, "build", "bin")
DOC = os.path.join(SRC, "docs", "filters.md")
PROTO = os.path.join(SRC, "proto", "sluice", "v1", "config.proto")
DEPLOY_RULES = os.path.join(SRC, "deploy", "k8s", "base", "config", "filter-bridge-rules.yaml")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def example_rules():
    """The ```yaml block of the rules section that starts with `rules:`."""
    section = read(DOC).split("## The rules language", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return [b for b in blocks if b.startswith("rules:")]


def check_rules(path):
    return subprocess.run([os.path.join(BIN, "sluice-filter-bridge"), "--check", "--rules=" + path],
                          capture_output=True, text=True, timeout=60)


class FiltersDocTest(unittest.TestCase):

    def test_the_example_rules_file_passes_the_start_up_checks(self):
        blocks = example_rules()
        self.assertEqual(len(blocks), 1, "one example rules file in docs/filters.md")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rules.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(blocks[0])
            r = check_rules(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        # A broken copy is refused: the check is real.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rules.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(blocks[0].replace("(?i)", "(?i"))
            self.assertEqual(check_rules(path).returncode, 1)

    def test_the_shipped_rules_file_passes_the_start_up_checks(self):
        r = check_rules(DEPLOY_RULES)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_every_condition_and_action_is_documented(self):
        proto = read(PROTO)
        match = proto.split("message RuleMatch {", 1)[1].split("\n}", 1)[0]
        conditions = re.findall(r"^\s*(?:repeated\s+)?\w+\s+(\w+)\s*=\s*\d+", match, re.M)
        actions = [a.lower() for a in re.findall(r"RULE_ACTION_(\w+)\s*=", proto) if a != "UNSPECIFIED"]
        section = read(DOC).split("## The rules language", 1)[1].split("\n## ", 1)[0]
        self.assertGreaterEqual(len(conditions), 10)
        for name in conditions + actions:
            self.assertIn("`%s`" % name, section, "docs/filters.md does not name `%s`" % name)


if __name__ == "__main__":
    unittest.main()
