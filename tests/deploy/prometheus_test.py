"""tests/deploy/prometheus_test.py

deploy/prometheus/ as Prometheus itself reads it: `promtool check rules` on rules.yaml,
`promtool test rules` on tests/deploy/rules_test.yaml (alerts firing when they should, and
not before), and `promtool check config` on the example prometheus.yml, whose
kubernetes_sd_configs is swapped for a static target first (Debian's promtool is built
without Kubernetes discovery). Metric names are checked in metrics_names_test.py.

Never: edits the files it checks (the swapped config goes to a temporary directory).
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import deploy_testing as dt

PROM = os.path.join(dt.DEPLOY, "prometheus")


def promtool(*args, cwd=None):
    if not shutil.which("promtool"):
        raise unittest.SkipTest("promtool not installed (Debian package prometheus, scripts/install-deps)")
    return subprocess.run(["promtool"] + list(args), capture_output=True, text=True, timeout=60, cwd=cwd)


class PrometheusTest(unittest.TestCase):
    def test_rules_pass_promtool_check(self):
        r = promtool("check", "rules", os.path.join(PROM, "rules.yaml"))
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_rule_unit_tests_pass(self):
        r = promtool("test", "rules", "rules_test.yaml", cwd=dt.HERE)
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_alert_has_severity_summary_and_description(self):
        rules = dt.load_yaml(os.path.join(PROM, "rules.yaml"))
        alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
        self.assertGreaterEqual(len(alerts), 10)
        for a in alerts:
            with self.subTest(alert=a["alert"]):
                self.assertIn(a["labels"]["severity"], ("critical", "warning"))
                self.assertTrue(a["annotations"]["summary"])
                self.assertTrue(a["annotations"]["description"])
                self.assertTrue(a["alert"].startswith("Sluice"))
        names = [a["alert"] for a in alerts]
        self.assertEqual(len(names), len(set(names)))

    def test_every_alert_has_a_case_that_fires_it_and_one_that_keeps_it_quiet(self):
        rules = dt.load_yaml(os.path.join(PROM, "rules.yaml"))
        alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
        tests = dt.load_yaml(os.path.join(dt.HERE, "rules_test.yaml"))["tests"]
        checks = [t for case in tests for t in case.get("alert_rule_test", [])]
        fires = {t["alertname"] for t in checks if t.get("exp_alerts")}
        quiet = {t["alertname"] for t in checks if not t.get("exp_alerts")}
        self.assertEqual(alerts - fires, set(), "alerts no rules_test.yaml case fires")
        self.assertEqual(alerts - quiet, set(), "alerts no rules_test.yaml case keeps quiet")

    def test_example_scrape_config_is_valid(self):
        config = dt.load_yaml(os.path.join(PROM, "prometheus.yml"))
        jobs = config["scrape_configs"]
        self.assertTrue(any(j.get("kubernetes_sd_configs") for j in jobs))
        labels = set()
        for job in jobs:
            for rc in job.get("relabel_configs", []):
                labels.add(rc.get("target_label"))
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["static_configs"] = [{"targets": ["127.0.0.1:9201"]}]
        # What rules.yaml and the dashboard group by.
        self.assertLessEqual({"stage", "namespace", "pod"}, labels)
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
                dt.yaml.safe_dump(config, f)
            for rule_file in config.get("rule_files", []):
                shutil.copy(os.path.join(PROM, rule_file), tmp)
            r = promtool("check", "config", os.path.join(tmp, "prometheus.yml"))
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_podmonitor_sets_the_same_labels(self):
        pm = dt.load_yaml(os.path.join(dt.K8S, "components", "prometheus-operator", "podmonitor.yaml"))
        (ep,) = pm["spec"]["podMetricsEndpoints"]
        self.assertEqual(ep["port"], "metrics")
        targets = {rc["targetLabel"] for rc in ep.get("relabelings", [])}
        # namespace is the Operator's own target label; stage and pod come from the relabelings.
        self.assertLessEqual({"stage", "pod"}, targets)


if __name__ == "__main__":
    dt.main()
