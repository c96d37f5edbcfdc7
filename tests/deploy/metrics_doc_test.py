"""tests/deploy/metrics_doc_test.py

docs/metrics.md documents every metric family the three stages export, and only those. Each
stage binary is started twice on loopback (stage_scrape.py): as `make run` configures it
("as shipped"), and with every feature that brings families or label values of its own
turned on ("everything on": a filter chain; recipient verification and every restriction
check, with its tables, policy server and blocklist -- none of them is asked, no mail is
sent). Its /metrics is then held to the page:

- every family the everything-on run exports is documented under the stage's section (or
  under "Every stage" / "prometheus-cpp's own", whose families every stage must export),
  and every family documented for the stage is exported;
- same type, same label names; where the page lists a label's values, the values exported
  are among them and each listed value is exported by a stage;
- a family whose meaning starts with "Only with" is absent from the as-shipped run, every
  other documented family is present in it (prometheus-cpp leaves out a family that has no
  series, so the page must say which families need a feature on);
- the limit / alert column names only config or Limits fields, alerts and recording rules
  that exist.
A failure names the families and what the page should say. A stage whose binary is not
built is skipped, with its name.

Never: leaves a process running or listens beyond 127.0.0.1 (stage_scrape.py); contacts the
policy server, blocklist resolver or verification service it configures (nothing connects
to the frontend); accepts a documented family the binaries do not export.
"""

import os
import re
import unittest

import deploy_testing as dt
import stage_scrape

DOC = os.path.join(dt.SRC, "docs", "metrics.md")
# "## " sections of the page -> the stages whose families they document.
SECTION_STAGES = {
    "Every stage": set(dt.STAGES),
    "sluice-frontend": {"frontend"},
    "sluice-filter-bridge": {"filter-bridge"},
    "sluice-reinject": {"reinject"},
    "prometheus-cpp's own": set(dt.STAGES),
}
# Only the ports this test picks are contacted: port 9 (discard) is asked by nobody, since
# no client connects to the frontend.
FRONTEND_EVERYTHING_ON = """
verify_recipients: true
verify_service: 127.0.0.1:9
relay_recipients: ["{dir}/relay_recipients"]
client_access: ["{dir}/access"]
helo_access: ["{dir}/access"]
sender_access: ["{dir}/access"]
policy_services: ["inet:127.0.0.1:9"]
dnsbl_sites: [bl.example.test]
dnsbl_resolver: 127.0.0.1:9
"""
FILES = {"relay_recipients": "@example.com\n", "access": "192.0.2.1 REJECT\n"}
EVERYTHING_ON = {"frontend": FRONTEND_EVERYTHING_ON, "filter-bridge": stage_scrape.FILTER_CHAIN, "reinject": None}


# ---- the page ----

class Family:
    def __init__(self, name, kind, labels, only_with, limits, section):
        self.name, self.kind, self.labels, self.only_with = name, kind, labels, only_with
        self.limits, self.section = limits, section


_LABEL_ITEM = re.compile(r"`([a-z_][a-z0-9_]*)`:\s*(.*?)\s*(?=;\s*`[a-z_][a-z0-9_]*`:|$)")
_VALUE_LIST = re.compile(r"`[^`]+`(?:,\s*`[^`]+`)*")


def parse_labels(cell):
    """{label: set of values, or None where the page describes the values instead of
    listing them}. A list may end in a parenthesis saying where other values come from."""
    labels = {}
    for m in _LABEL_ITEM.finditer(cell.strip()):
        text = re.sub(r"\s*\([^()]*\)$", "", m.group(2))
        labels[m.group(1)] = set(re.findall(r"`([^`]+)`", text)) if _VALUE_LIST.fullmatch(text) else None
    return labels


def parse_page(text):
    """({family name: Family}, [problems]) of docs/metrics.md's tables."""
    families, problems = {}, []
    section = None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5:
            problems.append("docs/metrics.md:%d: want 5 cells (metric | type | labels | meaning | limit / alert), "
                            "got %d" % (n, len(cells)))
            continue
        name = cells[0].strip("`")
        if section not in SECTION_STAGES:
            problems.append("docs/metrics.md:%d: %s is under \"## %s\", which is none of %s"
                            % (n, name, section, ", ".join(SECTION_STAGES)))
            continue
        if name in families:
            problems.append("docs/metrics.md:%d: %s is documented twice" % (n, name))
        if cells[2] and not re.match(r"`[a-z_][a-z0-9_]*`:", cells[2]):
            problems.append("docs/metrics.md:%d: %s: labels are written `label`: `value`, ... (or `label`: how "
                            "its values come about), separated by \"; \"" % (n, name))
        families[name] = Family(name, cells[1], parse_labels(cells[2]), cells[3].startswith("Only with"),
                                cells[4], section)
    return families, problems


def describe(scrape, family):
    """One line for a family as exported, for a failure message."""
    labels = scrape.label_values(family)
    shown = "; ".join("`%s`: %s" % (l, ", ".join("`%s`" % v for v in sorted(vs))) for l, vs in sorted(labels.items()))
    return "%s (%s; labels: %s) -- HELP: %s" % (family, scrape.types[family], shown or "none",
                                                scrape.helps.get(family, ""))


class MetricsDocTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.families, cls.problems = parse_page(open(DOC, encoding="utf-8").read())
        runs = {}
        for stage in dt.STAGES:
            runs[stage] = (stage, EVERYTHING_ON[stage])
            runs[stage + " as shipped"] = (stage, None)
        stages = stage_scrape.StageRuns(runs, FILES)
        cls.runs = stages
        cls.full = {s: stages.scrapes[s] for s in dt.STAGES if s in stages.scrapes}
        cls.shipped = {s: stages.scrapes[s + " as shipped"] for s in dt.STAGES if s + " as shipped" in stages.scrapes}

    def documented_for(self, stage):
        return {n: f for n, f in self.families.items() if stage in SECTION_STAGES[f.section]}

    def stages_built(self):
        """The stages whose binary is built; skips when none is."""
        built = [s for s in dt.STAGES if s not in self.runs.missing]
        if not built:
            self.skipTest("no stage binary built: " + "; ".join(self.runs.missing.values()))
        return built

    def scrape(self, scrapes, stage):
        self.assertTrue(stage in scrapes, "sluice-%s did not start (see test_stages_start)" % stage)
        return scrapes[stage]

    def test_page_parses(self):
        self.assertEqual(self.problems, [])
        self.assertGreater(len(self.families), 40)
        for f in self.families.values():
            self.assertIn(f.kind, ("counter", "gauge", "histogram", "summary"), f.name)
            self.assertEqual(f.name.endswith("_total"), f.kind == "counter", f.name)

    def test_stages_start(self):
        self.stages_built()
        for run, (port, log) in self.runs.started.items():
            with self.subTest(run=run):
                self.assertIsNotNone(port, "%s did not start (no event=started metrics_port=N):\n%s"
                                     % (run, log[-3000:]))
                self.assertEqual(self.runs.exits[run], 0, "%s: exit status after SIGTERM" % run)

    def test_every_exported_family_is_documented(self):
        for stage in self.stages_built():
            with self.subTest(stage=stage):
                scrape = self.scrape(self.full, stage)
                documented = self.documented_for(stage)
                missing = sorted(set(scrape.types) - set(documented))
                elsewhere = [n for n in missing if n in self.families]
                self.assertEqual(missing, [], "docs/metrics.md does not document %d famil%s sluice-%s exports; add "
                                 "a row for each under \"## sluice-%s\" (or \"## Every stage\" if every stage "
                                 "has it)%s:\n  %s"
                                 % (len(missing), "y" if len(missing) == 1 else "ies", stage, stage,
                                    " -- %s documented under another stage" % ", ".join(elsewhere) if elsewhere else "",
                                    "\n  ".join(describe(scrape, n) for n in missing)))

    def test_every_documented_family_is_exported(self):
        for stage in self.stages_built():
            with self.subTest(stage=stage):
                scrape = self.scrape(self.full, stage)
                gone = sorted(set(self.documented_for(stage)) - set(scrape.types))
                self.assertEqual(gone, [], "docs/metrics.md documents famil%s that sluice-%s does not export (with "
                                 "every feature on): %s -- remove or correct the row%s"
                                 % ("y" if len(gone) == 1 else "ies", stage, ", ".join(gone),
                                    "" if len(gone) == 1 else "s"))

    def test_types_and_label_names_match(self):
        for stage in self.stages_built():
            with self.subTest(stage=stage):
                scrape = self.scrape(self.full, stage)
                for name, f in sorted(self.documented_for(stage).items()):
                    if name not in scrape.types:
                        continue  # test_every_documented_family_is_exported
                    self.assertEqual(f.kind, scrape.types[name], "docs/metrics.md: the type of %s" % name)
                    exported = scrape.label_values(name)
                    self.assertEqual(sorted(f.labels), sorted(exported),
                                     "docs/metrics.md: the label names of %s (exported: %s)"
                                     % (name, describe(scrape, name)))

    def test_listed_label_values_match(self):
        seen = {}  # (family, label) -> values exported by any stage
        for stage in self.stages_built():
            with self.subTest(stage=stage):
                scrape = self.scrape(self.full, stage)
                for name, f in sorted(self.documented_for(stage).items()):
                    exported = scrape.label_values(name) if name in scrape.types else {}
                    for label, listed in f.labels.items():
                        if listed is None or label not in exported:
                            continue
                        seen.setdefault((name, label), set()).update(exported[label])
                        extra = sorted(exported[label] - listed)
                        self.assertEqual(extra, [], "docs/metrics.md: %s{%s} lists %s but sluice-%s also exports %s"
                                         % (name, label, sorted(listed), stage, extra))
        for (name, label), values in sorted(seen.items()):
            unexported = sorted(self.families[name].labels[label] - values)
            self.assertEqual(unexported, [], "docs/metrics.md: %s{%s} lists values no stage exports: %s"
                             % (name, label, unexported))

    def test_only_with_marks_the_families_a_feature_brings(self):
        for stage in self.stages_built():
            with self.subTest(stage=stage):
                scrape = self.scrape(self.shipped, stage)
                for name, f in sorted(self.documented_for(stage).items()):
                    if f.only_with:
                        self.assertTrue(name not in scrape.types, "docs/metrics.md says \"Only with ...\" of %s, but "
                                         "sluice-%s exports it as shipped (deploy/k8s/base/config + deploy/local)"
                                         % (name, stage))
                    else:
                        self.assertTrue(name in scrape.types, "sluice-%s as shipped (deploy/k8s/base/config + "
                                      "deploy/local) does not export %s: start its meaning in docs/metrics.md with "
                                      "\"Only with <the config that brings it>.\"" % (stage, name))

    def test_limit_column_names_what_exists(self):
        fields = {f for message in dt.proto_messages().values() for f in message}
        rules = dt.load_yaml(os.path.join(dt.DEPLOY, "prometheus", "rules.yaml"))
        named = {r.get("alert") or r.get("record") for g in rules["groups"] for r in g["rules"]}
        checked = 0
        for f in self.families.values():
            own_values = set().union(*[v for v in f.labels.values() if v])
            for word in re.findall(r"`([^`]+)`", f.limits):
                if word.startswith("Sluice") or ":" in word:
                    self.assertTrue(word in named, "docs/metrics.md: %s names `%s`, which is no alert or recording "
                                    "rule of deploy/prometheus/rules.yaml" % (f.name, word))
                else:
                    self.assertTrue(word in fields or word in own_values, "docs/metrics.md: %s names `%s`, which is "
                                    "no field of proto/sluice/v1 nor a listed value of its labels" % (f.name, word))
                checked += 1
        self.assertGreater(checked, 0)


if __name__ == "__main__":
    dt.main()
