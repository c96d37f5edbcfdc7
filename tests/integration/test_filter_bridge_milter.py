"""tests/integration/test_filter_bridge_milter.py -- milters in sluice-filter-bridge (issue 4).

  * OpenDKIM (Debian's, Mode sv, a key made by opendkim-genkey) as a milter through the whole
    pipeline: sluice-frontend -> filter-bridge -> sluice-reinject -> Maildir; the delivered
    file carries a DKIM-Signature that `opendkim -t` verifies with the generated public key
    (TestPublicKeys), and a tampered copy fails the same check.
  * A tiny real milter in this process (test_filter_bridge_support.MilterServer, libmilter
    wire protocol over TCP) that rejects with a custom reply at end of message, or rejects
    at MAIL (the reply to MAIL itself), or stops answering (a hung milter): with on_failure tempfail the sender gets a
    4xx and nothing is queued, with on_failure accept the message is delivered and the trace
    header names the failure.

Clients talk SMTP to the bridge directly (from loopback, like a frontend) unless the test
says otherwise; reinject is the next hop throughout.

Never: leaves OpenDKIM or a stage running (stopped by PID); waits on a hung milter past its
configured timeout.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
import test_filter_bridge_support as fbs

MESSAGE = (b"From: Alice <alice@example.com>\r\n"
           b"To: Bob <bob@example.net>\r\n"
           b"Subject: milter test\r\n"
           b"  with a folded subject\r\n"
           b"Date: Tue, 01 Jan 2030 00:00:00 +0000\r\n"
           b"Message-ID: <milter-test@example.com>\r\n"
           b"\r\n"
           b"Hello Bob,\r\n"
           b"\r\n"
           b".this line started with a dot on the wire\r\n"
           b"Regards, Alice\r\n")


class MilterTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.reinject = fbs.start_reinject(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.reinject.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_bridge(self, filters, name):
        bridge = fbs.start_bridge(self.tmp, "127.0.0.1:%d" % self.reinject.smtp_port,
                                  {"upstream_admin_port": 0, "filters": filters}, name=name)
        self.addCleanup(bridge.stop)
        return bridge

    def start_milter(self, script):
        milter = fbs.MilterServer(script)
        self.addCleanup(milter.stop)
        return milter

    def delivered(self, rcpt):
        return harness.wait_for(lambda: fbs.maildir_messages(self.reinject.maildir, rcpt), timeout=30,
                                what="delivery to %s" % rcpt)

    def assert_nothing_queued_or_delivered(self, rcpt):
        stubs = harness.grpc_stubs()
        import grpc
        with grpc.insecure_channel(self.reinject.admin) as ch:
            records = stubs["queue_pb2_grpc"].QueueStub(ch).List(
                stubs["queue_pb2"].ListQueueRequest(recipient=rcpt), timeout=10).records
        self.assertEqual(list(records), [])
        self.assertEqual(fbs.maildir_messages(self.reinject.maildir, rcpt), [])

    def test_milter_reject_with_a_custom_reply_reaches_the_sender(self):
        milter = self.start_milter({"eom": "550 5.7.1 Rejected by the test milter: looks like spam"})
        bridge = self.start_bridge([fbs.milter_filter("spam-milter", milter.address)], "fb-reject")
        code, text = harness.send_mail(bridge.smtp_port, "alice@example.com", ["reject@example.net"], MESSAGE)
        self.assertEqual(code, 550)
        self.assertEqual(text.decode(), "5.7.1 Rejected by the test milter: looks like spam")
        # The milter saw the whole transaction, headers and body included, before it decided.
        events = milter.seen()
        for e in ("connect", "helo", "mail", "rcpt", "header", "eoh", "body", "eom"):
            self.assertIn(e, events)
        self.assertEqual(events.count("header"), 5)
        self.assert_nothing_queued_or_delivered("reject@example.net")

    def test_milter_reject_at_mail_from(self):
        milter = self.start_milter({"mail": "reject"})
        # From the command line (--milter=inet:HOST:PORT): named milter-1, default timeouts.
        bridge = fbs.start_bridge(self.tmp, "127.0.0.1:%d" % self.reinject.smtp_port, {"upstream_admin_port": 0},
                                  flags=["--milter=" + milter.address], name="fb-reject-mail")
        self.addCleanup(bridge.stop)
        # The milter hears MAIL when it comes: its refusal is the reply to MAIL.
        code, text = harness.send_mail(bridge.smtp_port, "alice@example.com", ["picky@example.net"], MESSAGE)
        self.assertEqual((code, text), (550, b"5.7.1 Command rejected"))
        self.assertEqual(milter.seen(), ["connect", "helo", "mail"])
        self.assertRegex(bridge.log(), r'event=filter_refused [^\n]*filter=milter-1 step=mail reply="550 5.7.1')
        self.assert_nothing_queued_or_delivered("picky@example.net")

    def test_hung_milter_with_on_failure_tempfail_gives_4xx(self):
        milter = self.start_milter({"eom": "hang"})
        bridge = self.start_bridge([fbs.milter_filter("hung", milter.address, on_failure="tempfail")], "fb-hung-tf")
        code, text = harness.send_mail(bridge.smtp_port, "alice@example.com", ["hung-tf@example.net"], MESSAGE)
        self.assertEqual(code // 100, 4, text)
        self.assertEqual(text.decode(), "4.7.1 Service unavailable - try again later")
        self.assertIn("eom", milter.seen())
        self.assertRegex(bridge.log(), r"event=filter_failure [^\n]*filter=hung reason=timeout")
        self.assert_nothing_queued_or_delivered("hung-tf@example.net")

    def test_hung_milter_with_on_failure_accept_delivers(self):
        milter = self.start_milter({"eom": "hang"})
        bridge = self.start_bridge([fbs.milter_filter("hung", milter.address, on_failure="accept")], "fb-hung-acc")
        code, text = harness.send_mail(bridge.smtp_port, "alice@example.com", ["hung-acc@example.net"], MESSAGE)
        self.assertEqual(code, 250, text)
        got = self.delivered("hung-acc@example.net")[0]
        self.assertTrue(got.endswith(MESSAGE))
        self.assertRegex(got.decode(), r"X-Sluice-Filter: fb-hung-acc\.test; hung=error \(")


class OpenDkimThroughPipelineTest(unittest.TestCase):

    def setUp(self):
        if not os.access("/usr/sbin/opendkim", os.X_OK):
            self.skipTest("opendkim is not installed")
        self.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        subprocess.run(["opendkim-genkey", "-D", self.tmp, "-d", "example.com", "-s", "test"], check=True,
                       capture_output=True, timeout=60)
        port = fbs.free_port()
        with open(os.path.join(self.tmp, "sign.conf"), "w") as f:
            f.write("Syslog no\nSocket inet:%d@127.0.0.1\nMode sv\nDomain example.com\nSelector test\n"
                    "KeyFile %s/test.private\nRequireSafeKeys no\nCanonicalization simple/simple\n"
                    % (port, self.tmp))
        self.opendkim = harness.Process(["/usr/sbin/opendkim", "-f", "-x", os.path.join(self.tmp, "sign.conf")],
                                        os.path.join(self.tmp, "opendkim.log"))
        self.addCleanup(self.opendkim.stop)
        harness.wait_for(lambda: harness.port_open(port) or (not self.opendkim.alive() and self.fail(
            "opendkim exited: " + self.opendkim.log())), timeout=20, what="opendkim")
        self.stages = []
        self.addCleanup(lambda: [s.stop() for s in reversed(self.stages)])
        self.reinject = fbs.start_reinject(self.tmp)
        self.stages.append(self.reinject)
        frontend_admin = fbs.free_port()
        self.bridge = fbs.start_bridge(
            self.tmp, "127.0.0.1:%d" % self.reinject.smtp_port,
            {"upstream_admin_port": frontend_admin,
             "filters": [fbs.milter_filter("opendkim", "inet:127.0.0.1:%d" % port, timeout="20s")]})
        self.stages.append(self.bridge)
        self.frontend = harness.Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % self.bridge.smtp_port],
                                      self.tmp, "frontend", admin_listen="127.0.0.1:%d" % frontend_admin)
        self.stages.append(self.frontend)

    def verify(self, raw):
        """What `opendkim -t` says about a message file, with the generated key as DNS."""
        with open(os.path.join(self.tmp, "test.txt")) as f:
            txt = f.read()
        key = re.search(r"p=([A-Za-z0-9+/=]+)", "".join(re.findall(r'"([^"]*)"', txt))).group(1)
        keys = os.path.join(self.tmp, "keys")
        with open(keys, "w") as f:
            f.write("test._domainkey.example.com v=DKIM1; k=rsa; p=%s\n" % key)
        conf = os.path.join(self.tmp, "verify.conf")
        with open(conf, "w") as f:
            f.write("Syslog no\nMode v\nTestPublicKeys %s\n" % keys)
        path = os.path.join(self.tmp, "check.eml")
        with open(path, "wb") as f:
            f.write(raw)
        r = subprocess.run(["/usr/sbin/opendkim", "-x", conf, "-t", path], capture_output=True, text=True,
                           timeout=60)
        return r.stdout + r.stderr

    def test_opendkim_signs_and_the_signature_verifies_after_delivery(self):
        # From 127.0.0.1: OpenDKIM signs for its InternalHosts (default 127.0.0.1) only.
        code, text = harness.send_mail(self.frontend.smtp_port, "alice@example.com", ["bob@example.net"], MESSAGE)
        self.assertEqual(code, 250, text)
        got = harness.wait_for(lambda: fbs.maildir_messages(self.reinject.maildir, "bob@example.net"),
                               timeout=30, what="delivery")[0]
        self.assertTrue(got.endswith(MESSAGE))
        head, _ = fbs.split_header(got)
        self.assertIn("DKIM-Signature", fbs.field_names(head))
        self.assertRegex(head.decode(), r"DKIM-Signature: v=1; a=rsa-sha256;[^\r]*(\r\n\s[^\r]*)*d=example\.com")
        good = self.verify(got)
        self.assertIn("verification (s=test, d=example.com, 2048-bit key) succeeded", good)
        self.assertNotIn("failed", good)
        bad = self.verify(got.replace(b"Regards, Alice", b"Regards, Mallory"))
        self.assertIn("signature verification failed", bad)
        self.assertNotIn("succeeded", bad)


if __name__ == "__main__":
    unittest.main()
