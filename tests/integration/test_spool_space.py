"""tests/integration/test_spool_space.py -- a full spool answers 4xx before the pod is evicted.

The frontend (speed_adjust) and the filter-bridge spool message content to a directory that
on Kubernetes is an emptyDir with a sizeLimit; going over it gets the pod evicted. Each
stage counts what its spool files hold and checks the spool's file system:

- filter-bridge, spool_max_bytes 100000 and spool_memory_bytes 4096: while one client's
  message (200 kB, its DATA not yet ended) holds the spool, a second client's MAIL gets
  "452 4.3.1"; once the first message is through, the second one's MAIL is accepted again.
- frontend with speed_adjust, the same at DATA.
- A spool on a 1 MB tmpfs (when this test may mount one): with the default
  spool_min_free_bytes (1.5 x message_size_limit) every MAIL gets "452 4.3.1"; with
  spool_min_free_bytes 1 a 2 MB message fills the tmpfs and gets a 4xx, and the stage
  still serves the next client (no crash).

Never: leaves a process or a mount behind (stages stopped by PID, the tmpfs unmounted).
"""
import os
import smtplib
import subprocess
import unittest

import harness
import test_filter_bridge_support as fbs
from harness import Stage

BODY_LINE = b"x" * 98 + b"\r\n"


def start_dialogue(port, sender):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    s.ehlo("client.test")
    return s


def begin_data(s, rcpt, lines):
    """MAIL, RCPT, DATA and `lines` of content, without the final dot."""
    code, _ = s.mail("a@example.org")
    if code != 250:
        return code
    s.rcpt(rcpt)
    code, _ = s.docmd("DATA")
    if code != 354:
        return code
    s.send(b"Subject: big\r\n\r\n" + BODY_LINE * lines)
    return 354


def end_data(s):
    s.send(b".\r\n")
    return s.getreply()[0]


class SpoolSpaceTest(harness.TempDirTest):

    def reinject(self):
        return self.track(fbs.start_reinject(self.tmp))

    def test_filter_bridge_refuses_mail_while_its_spool_budget_is_held(self):
        rj = self.reinject()
        bridge = self.track(fbs.start_bridge(self.tmp, "127.0.0.1:%d" % rj.smtp_port, {
            "limits": {"spool_max_bytes": 100000, "spool_memory_bytes": 4096}}))
        first = start_dialogue(bridge.smtp_port, "a@example.org")
        self.addCleanup(first.close)
        self.assertEqual(begin_data(first, "bob@example.com", 2000), 354)  # 200 kB spooled
        second = start_dialogue(bridge.smtp_port, "b@example.org")
        self.addCleanup(second.close)

        def refused():
            code, text = second.mail("b@example.org")
            if code == 250:
                second.rset()
            return code == 452 and b"4.3.1" in text
        harness.wait_for(refused, 20, what="452 4.3.1 while the spool budget is held")
        bridge.wait_log(r"event=reject .*command=MAIL .*reply=\"452 4\.3\.1 Insufficient system storage\" "
                        r"from=<b@example\.org> .*check=spool_space detail=\"spool full: ")
        self.assertEqual(end_data(first), 250)
        # The first message's spool is gone with its transaction: room again.
        code, _ = second.mail("b@example.org")
        self.assertEqual(code, 250)
        metrics = fbs.scrape(bridge)
        self.assertGreaterEqual(metrics['sluice_filter_bridge_limit_hits_total{limit="spool_space"}'], 1)

    def test_frontend_speed_adjust_refuses_data_while_its_spool_budget_is_held(self):
        rj = self.reinject()
        config = harness.write_yaml(os.path.join(self.tmp, "frontend.yaml"),
                                    "mynetworks: [127.0.0.0/8]\nspeed_adjust: true\n"
                                    "limits:\n  spool_max_bytes: 100000\n")
        fe = self.track(Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % rj.smtp_port, "--config=" + config],
                              self.tmp, "frontend"))
        first = start_dialogue(fe.smtp_port, "a@example.org")
        self.addCleanup(first.close)
        self.assertEqual(begin_data(first, "bob@example.com", 2000), 354)
        second = start_dialogue(fe.smtp_port, "b@example.org")
        self.addCleanup(second.close)
        self.assertEqual(second.mail("b@example.org")[0], 250)
        self.assertEqual(second.rcpt("bob@example.com")[0], 250)

        def refused():
            return second.docmd("DATA")[0] == 452
        harness.wait_for(refused, 20, what="452 at DATA while the spool budget is held")
        fe.wait_log(r"event=reject .*command=DATA .*reply=\"452 4\.3\.1 Insufficient system storage\" .*check=spool_space")
        self.assertEqual(end_data(first), 250)
        self.assertEqual(second.docmd("DATA")[0], 354)
        second.send(b"Subject: small\r\n\r\nhello\r\n")
        self.assertEqual(end_data(second), 250)


class SmallSpoolTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", self.spool],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot mount a tmpfs here: " + r.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", self.spool])

    def test_a_one_megabyte_spool_gives_4xx_not_a_crash(self):
        rj = self.track(fbs.start_reinject(self.tmp))
        bridge = self.track(fbs.start_bridge(self.tmp, "127.0.0.1:%d" % rj.smtp_port, {
            "spool_dir": self.spool, "limits": {"spool_memory_bytes": 4096}}))
        with smtplib.SMTP("127.0.0.1", bridge.smtp_port, local_hostname="client.test", timeout=30) as s:
            s.ehlo("client.test")
            code, text = s.mail("a@example.org")
            self.assertEqual((code, text[:5]), (452, b"4.3.1"), text)
        bridge.wait_log(r"check=spool_space detail=\"spool disk full: ")
        # Told to keep nothing free, a 2 MB message fills the tmpfs: a 4xx, and the stage lives.
        bridge2 = self.track(fbs.start_bridge(self.tmp, "127.0.0.1:%d" % rj.smtp_port, {
            "spool_dir": self.spool, "limits": {"spool_memory_bytes": 4096, "spool_min_free_bytes": 1}},
            name="filter-bridge-2"))
        with smtplib.SMTP("127.0.0.1", bridge2.smtp_port, local_hostname="client.test", timeout=30) as s:
            s.ehlo("client.test")
            self.assertEqual(begin_data(s, "bob@example.com", 21000), 354)
            code = end_data(s)
            self.assertTrue(400 <= code < 500, code)
        with smtplib.SMTP("127.0.0.1", bridge2.smtp_port, local_hostname="client.test", timeout=30) as s:
            s.ehlo("client.test")
            self.assertEqual(s.mail("a@example.org")[0], 250)
        self.assertTrue(bridge2.alive())


if __name__ == "__main__":
    unittest.main()
