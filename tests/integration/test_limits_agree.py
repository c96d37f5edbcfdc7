"""tests/integration/test_limits_agree.py -- the frontend never advertises or accepts more
than every stage behind it takes.

The pipeline frontend -> filter-bridge -> reinject, each watching the next one's admin port
(filter_admin, next_hop_admin) as for backpressure:

- frontend raised to 20 MB, filter-bridge and reinject at the default 10240000: EHLO SIZE
  says 10240000; MAIL SIZE=12500000 and a 12.5 MB message without SIZE= both get
  "552 5.3.4" from the frontend, in the dialogue, and nothing is accepted by the filter
  stage (no filter transaction, nothing queued); the mismatch is logged once, and
  `sluicectl limits get` shows 10240000 from the filter-bridge, marked lowered.
- filter-bridge raised too, reinject at its default: the frontend learns reinject's limit
  through the filter-bridge (source reinject/reinject.test); raising reinject live
  (`sluicectl limits set`) lifts the frontend's SIZE to its own 20 MB within seconds.

Never: leaves a process running (every process is stopped by PID).
"""
import json
import os
import smtplib
import subprocess
import unittest

import harness
from test_filter_bridge_support import scrape

TWENTY_MB = 20000000
DEFAULT = 10240000


def ehlo_size(port):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    try:
        s.ehlo("client.test")
        return int(s.esmtp_features["size"])
    finally:
        s.quit()


def sluicectl(*args):
    r = subprocess.run([os.path.join(harness.BIN_DIR, "sluicectl")] + list(args),
                       capture_output=True, text=True, timeout=60)
    return r


def effective(stage, name="message_size_limit_bytes"):
    """(value, source, downstream replicas) of one data-path limit, as the stage reports it."""
    r = sluicectl("--admin=" + stage.admin, "--output=json", "limits", "get")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    resp = doc["effective"][0]["response"]
    for l in resp["limits"]:
        if l["name"] == name:
            return int(l["value"]), l["source"], int(resp.get("downstream_replicas", 0))
    raise AssertionError("no %s in %s" % (name, resp))


class LimitsAgreeTest(harness.TempDirTest):

    def start(self, frontend_size, bridge_size=None):
        """reinject at its defaults, then the filter-bridge and the frontend watching it."""
        self.reinject = self.track(harness.Stage(
            "sluice-reinject", ["--queue_dir=" + os.path.join(self.tmp, "queue"),
                                "--deliver=maildir:" + os.path.join(self.tmp, "mail")], self.tmp, "reinject"))
        bridge_yaml = "next_hop_admin: [\"%s\"]\n" % self.reinject.admin
        if bridge_size is not None:
            bridge_yaml += "limits:\n  message_size_limit_bytes: %d\n" % bridge_size
        self.bridge = self.track(harness.Stage(
            "sluice-filter-bridge",
            ["--next_hop=127.0.0.1:%d" % self.reinject.smtp_port,
             "--config=" + harness.write_yaml(os.path.join(self.tmp, "bridge.yaml"), bridge_yaml)],
            self.tmp, "filter-bridge"))
        frontend_yaml = "filter_admin: [\"%s\"]\nlimits:\n  message_size_limit_bytes: %d\n" % (
            self.bridge.admin, frontend_size)
        self.frontend = self.track(harness.Stage(
            "sluice-frontend",
            ["--filter=127.0.0.1:%d" % self.bridge.smtp_port,
             "--config=" + harness.write_yaml(os.path.join(self.tmp, "frontend.yaml"), frontend_yaml)],
            self.tmp, "frontend"))

    def wait_effective(self, stage, value, source=None):
        def reached():
            got = effective(stage)
            return got if got[0] == value and (source is None or got[1] == source) else None
        return harness.wait_for(reached, 30, interval=0.2, what="%s's effective size %d" % (stage.name, value))

    def test_a_frontend_raised_alone_advertises_and_enforces_the_filter_stages_limit(self):
        self.start(TWENTY_MB)
        self.wait_effective(self.frontend, DEFAULT, "filter-bridge/filter-bridge.test")
        self.assertEqual(ehlo_size(self.frontend.smtp_port), DEFAULT)
        bridge_before = scrape(self.bridge)

        # MAIL SIZE= over the limit: refused at MAIL, before any filter connection.
        s = smtplib.SMTP("127.0.0.1", self.frontend.smtp_port, local_hostname="client.test", timeout=60)
        s.ehlo("client.test")
        code, text = s.mail("sender@client.test", ["SIZE=12500000"])
        self.assertEqual(code, 552, text)
        self.assertTrue(text.startswith(b"5.3.4 "), text)
        s.rset()
        # No SIZE=: the content is refused when it passes the limit, by the frontend.
        code, text = s.mail("sender@client.test")
        self.assertEqual(code, 250, text)
        code, text = s.rcpt("user@example.com")
        self.assertEqual(code, 250, text)
        line = b"x" * 998 + b"\r\n"
        big = b"Subject: big\r\n\r\n" + line * (12500000 // len(line))
        code, text = s.data(big)
        self.assertEqual(code, 552, text)
        self.assertEqual(text, b"5.3.4 Message size exceeds fixed limit")
        s.quit()

        # Nothing reached the filter stage as a message: no transaction ended there in
        # anything but an abort, and reinject queued nothing.
        bridge_after = scrape(self.bridge)
        for key, value in bridge_after.items():
            if key.startswith("sluice_filter_bridge_transactions_total{") and 'verdict="aborted"' not in key:
                self.assertEqual(value, bridge_before.get(key, 0), key)
        self.assertEqual(scrape(self.reinject).get("sluice_reinject_transactions_total{outcome=\"queued\"}", 0), 0)

        # Logged once (not per session), and shown by sluicectl with its source.
        log = self.frontend.log()
        self.assertEqual(log.count("event=limit_lowered limit=message_size_limit_bytes"), 1, log[-3000:])
        self.assertRegex(log, r"event=limit_lowered limit=message_size_limit_bytes configured=20000000 "
                              r"effective=10240000 source=filter-bridge/filter-bridge\.test")
        table = sluicectl("--admin=" + self.frontend.admin, "limits", "get")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertRegex(table.stdout, r"message_size_limit_bytes +20000000 +10240000 +"
                                       r"filter-bridge/filter-bridge\.test \(lowered\)")
        self.assertEqual(scrape(self.frontend)['sluice_effective_limit_lowered{limit="message_size_limit_bytes"}'], 1)

    def test_reinjects_limit_reaches_the_frontend_through_the_filter_bridge_and_follows_live_changes(self):
        self.start(TWENTY_MB, bridge_size=TWENTY_MB)
        self.wait_effective(self.bridge, DEFAULT, "reinject/reinject.test")
        self.wait_effective(self.frontend, DEFAULT, "reinject/reinject.test")
        self.assertEqual(ehlo_size(self.frontend.smtp_port), DEFAULT)
        self.assertEqual(ehlo_size(self.bridge.smtp_port), DEFAULT)

        r = sluicectl("--admin=" + self.reinject.admin, "limits", "set", "message_size_limit_bytes=30000000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_effective(self.frontend, TWENTY_MB, "frontend/frontend.test")
        self.assertEqual(ehlo_size(self.frontend.smtp_port), TWENTY_MB)

    def test_a_frontend_without_a_watch_keeps_its_own_limit(self):
        self.reinject = self.track(harness.Stage(
            "sluice-reinject", ["--queue_dir=" + os.path.join(self.tmp, "queue"),
                                "--deliver=maildir:" + os.path.join(self.tmp, "mail")], self.tmp, "reinject"))
        fe = self.track(harness.Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % self.reinject.smtp_port,
                                                          "--message_size_limit=%d" % TWENTY_MB], self.tmp, "frontend"))
        value, source, replicas = effective(fe)
        self.assertEqual((value, source, replicas), (TWENTY_MB, "frontend/frontend.test", 0))
        self.assertEqual(ehlo_size(fe.smtp_port), TWENTY_MB)


if __name__ == "__main__":
    unittest.main()
