"""tests/deploy/metrics_names_test.py

The dashboard (deploy/grafana/sluice-dashboard.json) and the rules (deploy/prometheus/
rules.yaml) use only metrics that exist: each stage binary is started on loopback with
ports 0 (its config from deploy/k8s/base/config + deploy/local, a filter chain for the
filter-bridge so the per-filter families appear, a temporary queue for reinject), its
/metrics is scraped (the port read from its `event=started ... metrics_port=N` log line),
checked with `promtool check metrics`, and every metric name and label value a query
selects is looked up in what the binaries really export (stage_scrape.py runs them).
Histogram _bucket/_sum/_count are the sample names; recording-rule names must be recorded
by rules.yaml; `up` is Prometheus' own. The filter-bridge is also started exactly as `make run` configures it (no filter chain),
so a shipped config a stage cannot start with fails here. A stage whose binary is not built
is skipped, with its name.

Never: leaves a process running (each is stopped by its PID, then killed after a timeout);
listens beyond 127.0.0.1; accepts a label value that no series has.
"""

import json
import os
import re
import shutil
import subprocess
import unittest

import deploy_testing as dt
import stage_scrape

# Series Prometheus makes itself, not the targets.
PROMETHEUS_OWN = {"up"}
# Labels the scrape adds (PodMonitor / prometheus.yml relabelling), not the binaries.
TARGET_LABELS = {"stage", "namespace", "pod", "job", "instance", "container", "endpoint"}
STAGE_PREFIX = {"frontend": "sluice_frontend_", "filter-bridge": "sluice_filter_bridge_",
                "reinject": "sluice_reinject_"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "offset", "bool", "inf", "nan", "atan2"}


# ---- PromQL: metric names and label matchers of an expression ----

_TOKEN = re.compile(r'\s+|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|\[[^\]]*\]|[A-Za-z_:][A-Za-z0-9_:]*'
                    r'|[0-9.]+(?:e[+-]?\d+)?[a-z]*|=~|!~|!=|==|>=|<=|.')


def tokens(expr):
    return [t for t in _TOKEN.findall(expr) if not t.isspace()]


def selectors(expr):
    """[(metric name, [(label, op, value)])] of every vector selector in a PromQL expression."""
    toks = tokens(expr)
    out = []
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", t):
            if t in KEYWORDS and nxt == "(":
                # by (...), on (...), group_left (...): label names
                j = toks.index(")", i)
                i = j + 1
                continue
            if nxt in ("(", "by", "without") or t in KEYWORDS:  # a function or an aggregation
                i += 1
                continue
            matchers = []
            if nxt == "{":
                j = i + 2
                while toks[j] != "}":
                    if toks[j] == ",":
                        j += 1
                        continue
                    label, op, value = toks[j], toks[j + 1], toks[j + 2]
                    matchers.append((label, op, value[1:-1]))
                    j += 3
                i = j + 1
            else:
                i += 1
            out.append((t, matchers))
            continue
        i += 1
    return out


def dashboard_exprs(dash):
    exprs = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append(("panel %r" % p.get("title"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q.strip())
            exprs.append(("variable %s" % v["name"], m.group(1) if m else q))
    return exprs


def rule_exprs(rules):
    return [("rule %s" % (r.get("record") or r.get("alert")), r["expr"])
            for g in rules["groups"] for r in g["rules"]]


class MetricsNamesTest(unittest.TestCase):
    scrapes = {}
    missing = {}
    exits = {}
    started = {}

    @classmethod
    def setUpClass(cls):
        runs = {stage: (stage, stage_scrape.FILTER_CHAIN if stage == "filter-bridge" else None) for stage in dt.STAGES}
        # The filter-bridge also exactly as `make run` starts it (no filter chain).
        runs["filter-bridge as shipped"] = ("filter-bridge", None)
        stages = stage_scrape.StageRuns(runs)
        cls.started, cls.exits, cls.missing = stages.started, stages.exits, stages.missing
        cls.scrapes = {stage: stages.scrapes[stage] for stage in dt.STAGES if stage in stages.scrapes}
        cls.dashboard = json.load(open(os.path.join(dt.DEPLOY, "grafana", "sluice-dashboard.json")))
        cls.rules = dt.load_yaml(os.path.join(dt.DEPLOY, "prometheus", "rules.yaml"))
        cls.recorded = {r["record"] for g in cls.rules["groups"] for r in g["rules"] if "record" in r}

    def test_stages_start_with_the_shipped_configs(self):
        if not self.started:
            self.skipTest("no stage binary built: " + "; ".join(self.missing.values()))
        for stage, (port, text) in self.started.items():
            with self.subTest(stage=stage):
                self.assertIsNotNone(port, "sluice-%s did not start with deploy/k8s/base/config + deploy/local "
                                     "(no event=started metrics_port=N):\n%s" % (stage, text[-3000:]))

    def stage_test_guard(self, stage):
        if stage not in self.scrapes:
            self.skipTest(self.missing.get(stage, "sluice-%s did not start (see test_stages_start_...)" % stage))

    def test_stages_exit_zero_on_sigterm(self):
        for stage, code in self.exits.items():
            if self.started.get(stage, (None,))[0] is not None:
                self.assertEqual(code, 0, "sluice-%s exit status after SIGTERM" % stage)

    def test_scrapes_pass_promtool_check_metrics(self):
        if not self.scrapes:
            self.skipTest("no stage binary built: " + "; ".join(self.missing.values()))
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed")
        for stage, scrape in self.scrapes.items():
            with self.subTest(stage=stage):
                r = subprocess.run(["promtool", "check", "metrics"], input=scrape.text,
                                   capture_output=True, text=True, timeout=30)
                # prometheus-cpp's own exposer_* metrics are not ours to lint.
                ours = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("sluice_")]
                self.assertEqual(ours, [], "promtool check metrics (%s)" % stage)
                self.assertTrue(any(n.startswith(STAGE_PREFIX[stage]) for n in scrape.samples))

    def test_dashboard_is_valid_json_with_a_description(self):
        self.assertTrue(self.dashboard["title"])
        self.assertIn("Never", self.dashboard["description"])
        ids = []

        def walk(panels):
            for p in panels:
                ids.append(p["id"])
                walk(p.get("panels", []))
        walk(self.dashboard["panels"])
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        types = {p["type"] for p in self.dashboard["panels"]}
        self.assertIn("heatmap", types)

    def test_parser_finds_names_and_matchers(self):
        sel = selectors('sum by (namespace, le) (rate(a_bucket{x="1", y=~"b|c"}[5m])) / ignoring (o) '
                        'ns:rec:rate5m > 0 and on (pod) up{stage!="x"} offset 5m')
        self.assertEqual(sel, [("a_bucket", [("x", "=", "1"), ("y", "=~", "b|c")]),
                               ("ns:rec:rate5m", []), ("up", [("stage", "!=", "x")])])

    def check_names(self, stage):
        uses = dashboard_exprs(self.dashboard) + rule_exprs(self.rules)
        checked = 0
        for where, expr in uses:
            for name, matchers in selectors(expr):
                if ":" in name or name in PROMETHEUS_OWN:  # see test_recorded_names_are_recorded
                    continue
                owner = next((s for s, p in STAGE_PREFIX.items() if name.startswith(p)), None)
                if owner != stage and not (owner is None and stage == "shared"):
                    continue
                self.assertTrue(name.startswith("sluice_"), "%s: %s is not a sluice metric" % (where, name))
                sources = [self.scrapes[stage]] if owner else list(self.scrapes.values())
                for scrape in sources:
                    self.assertIn(name, scrape.samples, "%s: no sample %s in the real /metrics" % (where, name))
                    series = scrape.samples[name]
                    for label, op, value in matchers:
                        if label in TARGET_LABELS or "$" in value:
                            continue
                        values = {s.get(label) for s in series}
                        self.assertTrue(values - {None}, "%s: %s has no label %s" % (where, name, label))
                        if op in ("=", "!="):
                            self.assertIn(value, values, "%s: %s{%s%s%r} matches no label value %s"
                                          % (where, name, label, op, value, sorted(values - {None})))
                        else:
                            for alt in value.split("|"):
                                self.assertTrue(any(v is not None and re.fullmatch(alt, v) for v in values),
                                                "%s: %s{%s%s%r}: %r matches no value of %s"
                                                % (where, name, label, op, value, alt, sorted(values - {None})))
                checked += 1
        return checked

    def test_recorded_names_are_recorded(self):
        used = [(where, name) for where, e in dashboard_exprs(self.dashboard) + rule_exprs(self.rules)
                for name, _ in selectors(e) if ":" in name]
        self.assertTrue(used)
        for where, name in used:
            self.assertIn(name, self.recorded, "%s: %s is not recorded by rules.yaml" % (where, name))
        for where, name in [(w, n) for w, e in dashboard_exprs(self.dashboard) + rule_exprs(self.rules)
                            for n, _ in selectors(e) if ":" not in n and not n.startswith("sluice_")]:
            self.assertIn(name, PROMETHEUS_OWN, "%s: %s is neither a sluice metric nor Prometheus' own" % (where, name))

    def stage_test(self, stage):
        self.stage_test_guard(stage)
        self.assertGreater(self.check_names(stage), 0, "no %s metric used by the dashboard or rules" % stage)

    def test_frontend_metrics_exist(self):
        self.stage_test("frontend")

    def test_filter_bridge_metrics_exist(self):
        self.stage_test("filter-bridge")

    def test_reinject_metrics_exist(self):
        self.stage_test("reinject")

    def test_shared_metrics_exist_in_every_stage(self):
        if not self.scrapes:
            self.skipTest("no stage binary built: " + "; ".join(self.missing.values()))
        self.assertGreater(self.check_names("shared"), 0)

    def test_dashboard_covers_every_stage(self):
        used = {name for _, e in dashboard_exprs(self.dashboard) for name, _ in selectors(e)}
        for stage, prefix in STAGE_PREFIX.items():
            self.assertTrue([n for n in used if n.startswith(prefix)], stage)
        for must in ("sluice_frontend_sessions_active", "sluice_frontend_connections_total",
                     "sluice_frontend_transactions_total", "sluice_frontend_limit_hits_total",
                     "sluice_filter_bridge_filter_duration_seconds_bucket", "sluice_reinject_queue_messages"):
            self.assertIn(must, used)


if __name__ == "__main__":
    dt.main()
