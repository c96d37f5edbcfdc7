"""tests/integration/test_postfix_counterparts.py -- each sluice stage swapped with its Postfix
counterpart, as the README promises (issue 11, part 5), with private Postfix instances
(tests/integration/test_filter_bridge_support.PostfixInstance) on loopback:

- Postfix relaying into the sluice frontend: smtplib -> Postfix smtpd -> Postfix queue ->
  Postfix smtp client -> sluice-frontend -> sluice-filter-bridge -> sluice-reinject -> Maildir.
  Postfix's client pipelines (QUIT behind the final dot) into a frontend whose
  forbid_unauth_pipelining is on.
- The sluice frontend proxying to a Postfix after-filter smtpd
  (smtpd_authorized_xforward_hosts), which logs the original client from XFORWARD
  (orig_client=) and answers the client's end of DATA with its own queue id.
- sluice-reinject relaying to a real Postfix smtpd as its next hop.
- The frontend's Received: against what a real Postfix smtpd writes for the same client
  facts: a known reverse name, an unknown one, an address-literal HELO, one recipient and
  two. Only the host name, the mail name, the id and the date may differ.

The Postfix smtpd that takes sluice's mail has smtpd_forbid_unauth_pipelining and
smtpd_forbid_bare_newline on: sluice's client side passes Postfix's own checks.

Never: leaves Postfix or a stage running (postfix stop and the master's PID awaited, stages
stopped by PID); skips silently (without root or Postfix the module exits 77, shown as
Skipped).
"""
import email.utils
import os
import re
import shutil
import sys
import unittest
import uuid

import harness
import test_filter_bridge_support as fbs

UNKNOWN_CLIENT = "127.0.0.2"  # no reverse name (not in /etc/hosts)
STRICT_MAIN_CF = "smtpd_forbid_unauth_pipelining = yes\nsmtpd_forbid_bare_newline = reject\n"


def send(port, raw, rcpts=("bob@example.com",), source="127.0.0.1", helo="client.test"):
    """One message from `source` with EHLO `helo`; the end-of-data (code, text)."""
    code, text = harness.send_mail(port, "alice@example.org", list(rcpts), raw, source_address=source, ehlo=helo)
    return code, text.decode()


def message(tag):
    return ("From: alice@example.org\r\nTo: bob@example.com\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.org>\r\n\r\nbody of %s\r\n" % (tag, tag, tag)).encode()


def first_received(raw):
    """The first Received: field of a message, unfolded lines joined with LF."""
    lines = raw.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.startswith(b"Received:"):
            out = [line]
            for more in lines[i + 1:]:
                if more[:1] not in (b" ", b"\t"):
                    break
                out.append(more)
            return b"\n".join(out).decode()
    raise AssertionError("no Received: in %r" % raw[:300])


def layout(received):
    """A Received: field with what may differ between two MTAs taken out: the receiving
    host's name and software ("by HOST (NAME)") and the id; the date-time keeps its shape
    (every digit a 9, day and month names Aaa: "Aaa,  9 Aaa 9999 99:99:99 +9999 (UTC)")
    after it is checked to parse."""
    m = re.search(r"; *\n?\t?([^;]+?) ([+-]\d{4} \(\w+\))$", received)
    assert m, received
    assert email.utils.parsedate_to_datetime(m.group(1).strip() + " " + m.group(2)) is not None, received
    shape = re.sub(r"\d", "9", re.sub(r"\b[A-Z][a-z]{2}\b", "Aaa", m.group(1) + " " + m.group(2)))
    out = received[:m.start(1)] + shape
    out = re.sub(r"\bby \S+ \(\S+\)", "by HOST (NAME)", out)
    return re.sub(r"\bid [^\s;]+", "id ID", out)


class PostfixCounterpartsTest(harness.ClassTempDirTest):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("postfix"):
            raise unittest.SkipTest("private Postfix instances need root and Debian's postfix package")
        super().setUpClass()
        try:
            cls.sink = fbs.SinkSmtp()
            # Postfix B: an after-filter smtpd (XFORWARD from loopback) whose queue delivers
            # to the sink; the before-filter service of the set-up is not used.
            cls.postfix_b = fbs.PostfixInstance("127.0.0.1:%d" % harness.free_port(), cls.sink.port,
                                                extra_main_cf=STRICT_MAIN_CF)
            # The sluice pipeline Postfix A relays into, and Postfix A itself.
            cls.p = harness.Pipeline(os.path.join(cls.tmp))
            for s in cls.p.stages:
                cls.class_track(s)
            cls.postfix_a = fbs.PostfixInstance("127.0.0.1:%d" % harness.free_port(), cls.p.frontend.smtp_port)
            # A frontend whose filter stage is Postfix B's after-filter smtpd.
            cls.fe = cls.class_track(harness.Stage(
                "sluice-frontend", ["--filter=127.0.0.1:%d" % cls.postfix_b.after_port], cls.tmp, "frontend-b"))
            # A reinject whose next hop is Postfix B.
            cls.rj = cls.class_track(harness.Stage(
                "sluice-reinject", ["--queue_dir=" + os.path.join(cls.tmp, "queue-b"),
                                    "--deliver=smtp:127.0.0.1:%d" % cls.postfix_b.after_port],
                cls.tmp, "reinject-b"))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for name in ("postfix_a", "postfix_b"):
            pf = getattr(cls, name, None)
            if pf is not None:
                pf.stop()
        if getattr(cls, "sink", None) is not None:
            cls.sink.stop()
        super().tearDownClass()

    def at_sink(self, tag):
        needle = ("<%s@example.org>" % tag).encode()

        def find():
            return [m for m in self.sink.received() if needle in m[2]]
        return harness.wait_for(find, 60, what="message %s at the sink" % tag)

    def test_postfix_relays_into_the_sluice_frontend(self):
        tag = "pf-to-sluice-" + uuid.uuid4().hex
        code, text = send(self.postfix_a.after_port, message(tag))
        self.assertEqual(code, 250, text)
        postfix_id = re.search(r"queued as ([0-9A-F]+)", text).group(1)

        def delivered():
            found = []
            for path in self.p.delivered("bob@example.com"):
                with open(path, "rb") as f:
                    if tag.encode() in f.read():
                        found.append(path)
            return found
        files = harness.wait_for(delivered, 60, what="the message in sluice's Maildir")
        self.assertEqual(len(files), 1)
        # Postfix's smtp client was told sluice's final 250 (reinject's queue id).
        line = self.postfix_a.wait_log(r"%s: to=<bob@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
                                       r"[^\n]*status=sent \(250 2\.0\.0 Ok: queued as [0-9A-Za-z]+\)"
                                       % (postfix_id, self.p.frontend.smtp_port), timeout=60).group(0)
        self.assertIn("status=sent", line)
        with open(files[0], "rb") as f:
            raw = f.read()
        # The frontend names Postfix's smtp client as it introduced itself.
        self.assertIn("from postfix.test (localhost [127.0.0.1])", raw.decode(errors="replace"))
        self.assertNotIn("improper_pipelining", self.p.frontend.log())

    def test_the_frontend_proxies_to_a_postfix_after_filter_smtpd(self):
        tag = "sluice-to-pf-" + uuid.uuid4().hex
        offset = len(self.postfix_b.log())
        code, text = send(self.fe.smtp_port, message(tag), source=UNKNOWN_CLIENT)
        # The client's end-of-DATA reply is the after-filter smtpd's own.
        self.assertEqual(code, 250, text)
        queue_id = re.search(r"2\.0\.0 Ok: queued as ([0-9A-F]+)", text).group(1)
        got = self.at_sink(tag)
        self.assertEqual(len(got), 1)
        # It talked to the frontend (loopback) and logs the original client from XFORWARD.
        line = self.postfix_b.wait_log(r"after-filter/smtpd\[\d+\]: %s: client=[^\n]*" % queue_id).group(0)
        self.assertIn("client=localhost[127.0.0.1]", line)
        self.assertIn("orig_client=unknown[%s]" % UNKNOWN_CLIENT, line)
        # The frontend keeps the connection for its next transaction, then QUITs it when idle
        # (hop_connection_idle_limit_seconds): Postfix counts what it was sent.
        rx = re.compile(r"after-filter/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] ([^\n]*)")
        counts = harness.wait_for(lambda: rx.search(self.postfix_b.log()[offset:]), 30,
                                  what="the frontend's connection ending").group(1)
        n = dict((k, int(v)) for k, v in (kv.split("=") for kv in counts.split()))
        # One EHLO, XFORWARD with every MAIL (the connection may have carried other tests'
        # transactions too), and QUIT at the end.
        self.assertEqual((n.get("ehlo"), n.get("quit")), (1, 1), counts)
        self.assertGreaterEqual(n.get("mail", 0), 1, counts)
        self.assertGreaterEqual(n.get("xforward", 0), n["mail"], counts)
        self.assertNotIn("improper command pipelining", self.postfix_b.log()[offset:])

    def test_reinject_relays_to_a_postfix_smtpd(self):
        tag = "rj-to-pf-" + uuid.uuid4().hex
        code, text = send(self.rj.smtp_port, message(tag))
        self.assertEqual(code, 250, text)
        mail_from, rcpts, raw = self.at_sink(tag)[0]
        self.assertEqual((mail_from, rcpts), ("alice@example.org", ["bob@example.com"]))
        self.assertIn(("body of %s" % tag).encode(), raw)
        line = self.rj.wait_log(r"event=delivery [^\n]*relay=smtp:127\.0\.0\.1:%d [^\n]*" % self.postfix_b.after_port,
                                timeout=60).group(0)
        self.assertIn("status=sent", line)
        # Postfix's own queue id in the reply reinject logs.
        self.assertRegex(line, r'reply="250 2\.0\.0 Ok: queued as [0-9A-F]+"')
        self.assertNotIn("improper command pipelining", self.postfix_b.log())

    def test_received_is_postfixs_layout_for_the_same_client_facts(self):
        cases = [
            ("known reverse name", "127.0.0.1", "client.test", ("bob@example.com",)),
            ("unknown reverse name", UNKNOWN_CLIENT, "client.test", ("bob@example.com",)),
            ("address-literal HELO", "127.0.0.1", "[127.0.0.1]", ("bob@example.com",)),
            ("two recipients: no for clause", UNKNOWN_CLIENT, "client.test", ("bob@example.com", "carol@example.com")),
        ]
        for what, source, helo, rcpts in cases:
            with self.subTest(what):
                # What a real Postfix smtpd writes: sent straight to Postfix B.
                direct = "rcv-pf-" + uuid.uuid4().hex
                code, text = send(self.postfix_b.after_port, message(direct), rcpts, source, helo)
                self.assertEqual(code, 250, text)
                postfix_received = first_received(self.at_sink(direct)[0][2])
                # What the frontend writes: through it to Postfix B, whose own Received comes first.
                proxied = "rcv-sl-" + uuid.uuid4().hex
                code, text = send(self.fe.smtp_port, message(proxied), rcpts, source, helo)
                self.assertEqual(code, 250, text)
                raw = self.at_sink(proxied)[0][2]
                ours = first_received(raw[raw.index(b"\r\nReceived:") + 2:])
                self.assertIn("(sluice)", ours)
                self.assertEqual(layout(ours), layout(postfix_received),
                                 "\nours:    %r\npostfix: %r" % (ours, postfix_received))
                print("\n%s:\n  postfix: %r\n  sluice:  %r" % (what, postfix_received, ours), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
