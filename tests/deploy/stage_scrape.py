"""tests/deploy/stage_scrape.py

The stage binaries run on loopback for what they really export on /metrics, shared by the
checks that hold documents to it (metrics_names_test.py: the dashboard and the rules;
metrics_doc_test.py: docs/metrics.md). Each run starts one binary with ports 0, its config
from deploy/k8s/base/config + deploy/local plus an optional extra YAML, a private work dir
(the hold mark key scripts/run-local would make, a temporary queue and Maildir for
reinject), reads the metrics port from its `event=started ... metrics_port=N` log line,
scrapes /metrics once and stops it by its PID. A stage whose binary is not built is
reported as missing, with the reason.

Never: leaves a process running (SIGTERM, then SIGKILL after a timeout, by PID); listens
beyond 127.0.0.1; writes into the source tree.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import deploy_testing as dt

# A one-filter chain for the filter-bridge (a rule that never matches), so the per-filter
# families, which have no series without a filter, appear.
FILTER_CHAIN = """
filters:
  - name: deploy-check
    rules:
      rules:
        - name: never
          match: {header: X-Sluice-Deploy-Check, header_pattern: "^never$"}
          action: reject
"""


class Scrape:
    """Families and samples of one /metrics text."""

    def __init__(self, text):
        self.text = text
        self.types = dict(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
        self.helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
        self.samples = {}  # sample name -> list of label dicts
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s", line)
            labels = dict(re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', m.group(3) or ""))
            self.samples.setdefault(m.group(1), []).append(labels)

    def family_of(self, sample):
        """The family a sample name belongs to (histogram/summary _bucket, _sum, _count)."""
        if sample in self.types:
            return sample
        base = re.sub(r"_(bucket|sum|count)$", "", sample)
        return base if self.types.get(base) in ("histogram", "summary") else sample

    def label_values(self, family):
        """{label: set of values} over every series of a family, without the `le` and
        `quantile` labels the histogram and summary types add."""
        added = {"histogram": {"le"}, "summary": {"quantile"}}.get(self.types.get(family), set())
        out = {}
        for sample, series in self.samples.items():
            if self.family_of(sample) != family:
                continue
            for labels in series:
                for name, value in labels.items():
                    if name not in added:
                        out.setdefault(name, set()).add(value)
        return out


class StageRuns:
    """Runs named stage configurations side by side and keeps, per run name: the scrape
    (`scrapes`), (metrics port or None, log text) (`started`) and the exit status after
    SIGTERM (`exits`); per stage whose binary is missing, the reason (`missing`)."""

    def __init__(self, runs, files=None):
        """runs: {run name: (stage, extra YAML or None)}; files: {name: text} written into a
        shared temporary dir first, whose path replaces `{dir}` in every extra YAML."""
        self.scrapes, self.started, self.exits, self.missing = {}, {}, {}, {}
        tmp = tempfile.mkdtemp(prefix="sluice-metrics-")
        running = {}
        try:
            for name, text in (files or {}).items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
            for n, (run, (stage, extra)) in enumerate(runs.items()):
                extra = extra.replace("{dir}", tmp) if extra else None
                started = start_stage(stage, os.path.join(tmp, "run%d-%s" % (n, stage)), extra)
                if started is None:
                    self.missing[stage] = "%s/sluice-%s is not built" % (dt.BIN, stage)
                else:
                    running[run] = started
            deadline = time.time() + 20
            for run, (proc, log) in running.items():
                port, text = wait_metrics_port(proc, log, deadline)
                self.started[run] = (port, text)
                if port is not None:
                    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as resp:
                        self.scrapes[run] = Scrape(resp.read().decode())
        finally:
            # SIGTERM to all first: each takes ~2 s to stop after a scrape (prometheus-cpp).
            for proc, _ in running.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for run, (proc, log) in running.items():
                self.exits[run] = stop(proc)
                log.close()
            shutil.rmtree(tmp, ignore_errors=True)


def start_stage(stage, workdir, extra_yaml=None):
    """Starts sluice-STAGE in `workdir` (created); returns (process, log file) or None when
    the binary is not built."""
    binary = os.path.join(dt.BIN, "sluice-" + stage)
    if not (os.access(binary, os.X_OK) and os.path.getsize(binary) > 0):
        return None
    configs = [dt.stage_config_path(stage), os.path.join(dt.DEPLOY, "local", stage + ".yaml")]
    args = [binary, "--smtp_listen=127.0.0.1:0", "--admin_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"]
    os.makedirs(workdir)
    # scripts/run-local makes the hold mark key (deploy/local: var/hold-mark.key) before it
    # starts the stages.
    os.makedirs(os.path.join(workdir, "var"))
    with open(os.path.join(workdir, "var", "hold-mark.key"), "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    if extra_yaml:
        configs.append(os.path.join(workdir, "extra.yaml"))
        with open(configs[-1], "w") as f:
            f.write(extra_yaml)
    if stage == "reinject":
        args += ["--queue_dir=" + os.path.join(workdir, "queue"),
                 "--deliver=maildir:" + os.path.join(workdir, "mail")]
    args.insert(1, "--config=" + ",".join(configs))
    log = open(os.path.join(workdir, "log"), "w+")
    proc = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def wait_metrics_port(proc, log, deadline):
    while time.time() < deadline:
        log.seek(0)
        text = log.read()
        m = re.search(r"event=started .*\bmetrics_port=(\d+)", text)
        if m:
            return int(m.group(1)), text
        if proc.poll() is not None:
            return None, text
        time.sleep(0.05)
    log.seek(0)
    return None, log.read()


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "killed"
    return proc.returncode
