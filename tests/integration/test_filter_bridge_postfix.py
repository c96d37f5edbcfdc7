"""tests/integration/test_filter_bridge_postfix.py -- sluice-filter-bridge as Postfix's
smtpd_proxy_filter (issue 4).

A private Postfix instance runs the SMTPD_PROXY_README set-up around the bridge:

    smtplib (from 127.0.0.2) -> Postfix before-filter smtpd (smtpd_proxy_filter=bridge)
      -> sluice-filter-bridge (--rules=FILE) -> Postfix after-filter smtpd (XFORWARD
      authorized) -> Postfix queue -> Postfix smtp client -> aiosmtpd sink in this process

and the tests check what arrives at the sink: the message byte for byte apart from the
header fields prepended on the way, the original client passed on by XFORWARD (the
after-filter smtpd logs orig_client=), session facts known only from XFORWARD
(metadata=xforward: a TLS rule is skipped, not guessed), a rule's rejection reaching the
Postfix client with its text, and the bridge's client side passing Postfix's own
smtpd_forbid_unauth_pipelining check.

Never: leaves Postfix or the bridge running (both stopped by PID / `postfix stop`).
"""
import os
import re
import shutil
import smtplib
import tempfile
import unittest

import harness
import test_filter_bridge_support as fbs

CLIENT_ADDR = "127.0.0.2"

RULES = [
    {"name": "reject-subject", "match": {"header": "Subject", "header_pattern": "(?i)please reject me"},
     "action": "reject", "code": 550, "enhanced_code": "5.7.1", "text": "Rejected by rule reject-subject"},
    # Needs the frontend's full session record: skipped with a Postfix upstream.
    {"name": "tls-only", "match": {"tls": "yes"}, "action": "reject", "text": "TLS rule fired"},
]


def message(subject, serial):
    lines = [
        "From: Alice <alice@example.org>",
        "To: Bob <bob@example.com>",
        "Subject: %s" % subject,
        "  folded onto a second line",
        "Date: Tue, 01 Jan 2030 00:00:00 +0000",
        "Message-ID: <postfix-%d@example.org>" % serial,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "Hello Bob, gr\u00fc\u00dfe aus K\u00f6ln.",
        ".a line that starts with a dot",
        "..and one with two",
        ".",
        "",
        "x" * 900,
        "\tindented line with trailing space ",
        "last line",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class PostfixAroundBridgeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("postfix"):
            raise unittest.SkipTest("a private Postfix instance needs root and Debian's postfix package")
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.sink = fbs.SinkSmtp()
        cls.bridge = cls.postfix = None
        try:
            after = fbs.free_port()
            # The rules from the command line (--rules=FILE), as an operator would start it.
            rules = fbs.write_config(os.path.join(cls.tmp, "rules.yaml"), {"rules": RULES})
            cls.bridge = fbs.start_bridge(cls.tmp, "127.0.0.1:%d" % after, flags=["--rules=" + rules])
            # Postfix's own check of its clients' pipelining is on (smtpd_forbid_unauth_pipelining,
            # default on since 3.9): the bridge's client side must pass it.
            cls.postfix = fbs.PostfixInstance("127.0.0.1:%d" % cls.bridge.smtp_port, cls.sink.port, after_port=after,
                                              extra_main_cf="smtpd_forbid_unauth_pipelining = yes\n")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.postfix:
            cls.postfix.stop()
        if cls.bridge:
            cls.bridge.stop()
        cls.sink.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def send(self, raw, sender="alice@example.org", rcpt="bob@example.com"):
        """Sends through the before-filter smtpd from CLIENT_ADDR; returns the end-of-data
        (code, text), or the refusing reply."""
        s = smtplib.SMTP("127.0.0.1", self.postfix.before_port, local_hostname="client.test", timeout=60,
                         source_address=(CLIENT_ADDR, 0))
        try:
            s.ehlo("client.test")
            code, text = s.mail(sender, ["BODY=8BITMIME"])
            if code != 250:
                return code, text.decode()
            code, text = s.rcpt(rcpt)
            if code != 250:
                return code, text.decode()
            code, text = s.data(raw)
            return code, text.decode()
        finally:
            s.quit()

    def delivered(self, serial):
        """The sink's copy of the message with Message-ID postfix-<serial>."""
        tag = b"<postfix-%d@example.org>" % serial

        def find():
            for m in self.sink.received():
                if tag in m[2]:
                    return m
            return None
        return harness.wait_for(find, timeout=30, what="delivery of message %d" % serial)

    def test_message_delivered_byte_exact_apart_from_added_headers(self):
        raw = message("byte-exact through Postfix and the bridge", 1)
        code, text = self.send(raw)
        self.assertEqual(code, 250, text)
        queue_id = re.search(r"queued as ([0-9A-F]+)", text).group(1)
        mail_from, rcpts, got = self.delivered(1)
        self.assertEqual(mail_from, "alice@example.org")
        self.assertEqual(rcpts, ["bob@example.com"])
        added = fbs.assert_original_follows_added_headers(self, got, raw, {"Received", "X-Sluice-Filter"})
        names = [f.split(b":", 1)[0] for f in added]
        # after-filter smtpd's Received, the bridge's trace header, the before-filter's Received.
        self.assertEqual(names, [b"Received", b"X-Sluice-Filter", b"Received"], added)
        self.assertIn(b"id %s" % queue_id.encode(), added[0])
        self.assertRegex(added[1].decode(), r"^X-Sluice-Filter: filter-bridge\.test; rules=continue \(")
        self.assertIn(b"from client.test (unknown [%s])" % CLIENT_ADDR.encode(), added[2])

    def test_xforward_facts_reach_the_after_filter_smtpd(self):
        offset = len(self.postfix.log())
        code, text = self.send(message("xforward facts", 2))
        self.assertEqual(code, 250, text)
        queue_id = re.search(r"queued as ([0-9A-F]+)", text).group(1)
        self.delivered(2)
        # The after-filter smtpd talked to the bridge (127.0.0.1) but records the original
        # client the before-filter smtpd saw, from XFORWARD (forwarded by the bridge).
        line = self.postfix.wait_log(r"after-filter/smtpd\[\d+\]: %s: client=[^\n]*" % queue_id).group(0)
        self.assertIn("client=localhost[127.0.0.1]", line)
        self.assertIn("orig_client=unknown[%s]" % CLIENT_ADDR, line)
        tail = self.postfix.log()[offset:]
        self.assertRegex(tail, r"after-filter/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] ehlo=1 xforward=1 ")

    def test_without_a_frontend_the_filters_see_xforward_facts_only(self):
        offset = len(self.bridge.log())
        code, text = self.send(message("no session record from Postfix", 3))
        # The TLS rule cannot be judged from XFORWARD facts: skipped, the message delivered.
        self.assertEqual(code, 250, text)
        self.delivered(3)
        line = harness.wait_for(lambda: re.search(r"event=transaction [^\n]*", self.bridge.log()[offset:]),
                                what="the bridge's transaction line").group(0)
        self.assertIn("metadata=xforward", line)
        self.assertIn("client=%s" % CLIENT_ADDR, line)
        self.assertIn("verdict=deliver", line)

    def test_rule_rejection_reaches_the_postfix_client_with_its_text(self):
        before = len(self.sink.received())
        code, text = self.send(message("Please reject me", 4))
        self.assertEqual(code, 550, text)
        self.assertIn("5.7.1 Rejected by rule reject-subject", text)
        # The before-filter smtpd logs the filter's reply; nothing reached the queue.
        self.postfix.wait_log(r"proxy-reject: END-OF-MESSAGE: 550 5\.7\.1 Rejected by rule reject-subject")
        self.assertEqual(len(self.sink.received()), before)
        for m in self.sink.received():
            self.assertNotIn(b"<postfix-4@example.org>", m[2])
        self.assertEqual(self.postfix.queue_files(), [])

    def test_the_bridge_passes_postfixs_pipelining_check_on_kept_connections(self):
        # Several transactions in a row, one refused by a rule before the final dot reached
        # the after-filter smtpd: the bridge starts each with XFORWARD, MAIL and RCPT in one
        # write, keeps the connection, resets the refused one. Postfix logs "improper command
        # pipelining" for anything it forbids.
        offset = len(self.postfix.log())
        for serial, subject in ((10, "kept connection one"), (11, "Please reject me"), (12, "kept connection two")):
            code, text = self.send(message(subject, serial))
            self.assertEqual(code, 550 if serial == 11 else 250, text)
        self.delivered(12)
        tail = self.postfix.log()[offset:]
        self.assertIn("after-filter/smtpd", tail)
        self.assertNotIn("improper command pipelining", tail)
        self.assertNotIn("improper command pipelining", self.postfix.log())


if __name__ == "__main__":
    unittest.main()
