"""tests/integration/test_filter_bridge_rules.py -- the built-in rules through the whole
sluice pipeline (issue 4): sluice-frontend (STARTTLS offered) -> sluice-filter-bridge (a rules
filter) -> sluice-reinject (queue, Maildir delivery).

Each rule action does what it says, seen from the sender and from the queue: reject (the
rule's 5xx and text), tempfail (4xx), discard (250, nothing queued), header edits (add,
replace, remove, the rest of the message untouched), hold (queued in hold/, found with
Queue.List over gRPC, not delivered); attachment rules on real multipart messages built with
Python's email package (an .exe matched by file name, a PDF matched by content type); and a
TLS rule that can only be judged from the frontend's full session record (Admin.GetSession):
it fires for a STARTTLS session and not for a plaintext one, and the bridge logs
metadata=complete.

Never: leaves a process running (the three stages are stopped by PID).
"""
import email
import email.policy
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest
from email.message import EmailMessage

import grpc

import harness
import test_filter_bridge_support as fbs

RULES = [
    {"name": "tls-client", "match": {"tls": "yes"}, "action": "add_header",
     "header_name": "X-Client-TLS", "header_value": "yes (from the frontend's session record)"},
    {"name": "reject-subject", "match": {"header": "Subject", "header_pattern": r"\[rule-reject\]"},
     "action": "reject", "code": 554, "enhanced_code": "5.7.1", "text": "Rejected: rule-reject matched"},
    {"name": "tempfail-subject", "match": {"header": "Subject", "header_pattern": r"\[rule-tempfail\]"},
     "action": "tempfail", "code": 451, "enhanced_code": "4.7.1", "text": "Deferred by rule-tempfail"},
    {"name": "discard-subject", "match": {"header": "Subject", "header_pattern": r"\[rule-discard\]"},
     "action": "discard"},
    {"name": "edit-add", "match": {"header": "Subject", "header_pattern": r"\[rule-edit\]"},
     "action": "add_header", "header_name": "X-Rule-Added", "header_value": "added by rules"},
    {"name": "edit-replace", "match": {"header": "Subject", "header_pattern": r"\[rule-edit\]"},
     "action": "replace_header", "header_name": "X-Replace-Me", "header_value": "replaced"},
    {"name": "edit-remove", "match": {"header": "Subject", "header_pattern": r"\[rule-edit\]"},
     "action": "remove_header", "header_name": "X-Remove-Me"},
    {"name": "hold-subject", "match": {"header": "Subject", "header_pattern": r"\[rule-hold\]"},
     "action": "hold", "text": "quarantined by rule-hold"},
    {"name": "no-exe", "match": {"attachment_filename_pattern": r"(?i)\.(exe|scr|com)$"},
     "action": "reject", "code": 550, "enhanced_code": "5.7.1", "text": "Executable attachments are refused"},
    {"name": "no-pdf", "match": {"attachment_content_type_pattern": r"(?i)^application/pdf$"},
     "action": "reject", "code": 550, "enhanced_code": "5.7.1", "text": "PDF attachments are refused"},
]


def plain_message(subject, serial, extra_headers=()):
    lines = ["From: sender@example.org", "To: someone@example.com", "Subject: %s" % subject,
             "Date: Tue, 01 Jan 2030 00:00:00 +0000", "Message-ID: <rules-%d@example.org>" % serial]
    lines += list(extra_headers)
    lines += ["", "Body of message %d." % serial, ".leading dot", "end"]
    return ("\r\n".join(lines) + "\r\n").encode()


def multipart_message(serial, filename, maintype, subtype, payload):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "sender@example.org"
    msg["To"] = "someone@example.com"
    msg["Subject"] = "attachment test %d" % serial
    msg["Date"] = "Tue, 01 Jan 2030 00:00:00 +0000"
    msg["Message-ID"] = "<rules-%d@example.org>" % serial
    msg.set_content("Please find the file attached.\n")
    msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def make_certificate(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=frontend.test"], check=True, capture_output=True, timeout=60)
    return cert, key


class RulesThroughPipelineTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.stages = []
        try:
            # Hold marks are signed by the bridge and verified by reinject with one key.
            key = harness.write_hold_mark_key(cls.tmp)
            cls.reinject = fbs.start_reinject(cls.tmp, flags=["--config=" + harness.write_yaml(
                os.path.join(cls.tmp, "reinject.yaml"), "hold_mark_key_file: %s\n" % key)])
            cls.stages.append(cls.reinject)
            # The bridge asks the frontend for the full session record at <peer>:<admin port>:
            # the frontend's admin port must be known before it starts.
            frontend_admin = fbs.free_port()
            config = {"upstream_admin_port": frontend_admin, "hold_mark_key_file": key,
                      "filters": [{"name": "rules", "rules": {"rules": RULES}}]}
            cls.bridge = fbs.start_bridge(cls.tmp, "127.0.0.1:%d" % cls.reinject.smtp_port, config)
            cls.stages.append(cls.bridge)
            cert, key = make_certificate(cls.tmp)
            fe_config = fbs.write_config(os.path.join(cls.tmp, "frontend.yaml"),
                                         {"server": {"smtp_tls": {"cert_file": cert, "key_file": key}}})
            cls.frontend = harness.Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % cls.bridge.smtp_port,
                                                             "--config=" + fe_config],
                                         cls.tmp, "frontend", admin_listen="127.0.0.1:%d" % frontend_admin)
            cls.stages.append(cls.frontend)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in reversed(cls.stages):
            s.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.bridge_offset = len(self.bridge.log())

    def send(self, raw, rcpt, starttls=False, source=None):
        s = smtplib.SMTP("127.0.0.1", self.frontend.smtp_port, local_hostname="client.test", timeout=60,
                         source_address=(source, 0) if source else None)
        try:
            s.ehlo("client.test")
            if starttls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s.starttls(context=ctx)
                s.ehlo("client.test")
            code, text = s.mail("sender@example.org")
            self.assertEqual(code, 250, text)
            code, text = s.rcpt(rcpt)
            self.assertEqual(code, 250, text)
            code, text = s.data(raw)
            return code, text.decode()
        finally:
            s.quit()

    def delivered(self, rcpt, count=1):
        return harness.wait_for(
            lambda: (lambda m: m if len(m) >= count else None)(fbs.maildir_messages(self.reinject.maildir, rcpt)),
            timeout=30, what="delivery to %s" % rcpt)

    def queue(self, **kw):
        stubs = harness.grpc_stubs()
        q_pb2, q_grpc = stubs["queue_pb2"], stubs["queue_pb2_grpc"]
        with grpc.insecure_channel(self.reinject.admin) as ch:
            return q_grpc.QueueStub(ch).List(q_pb2.ListQueueRequest(**kw), timeout=10).records

    def assert_nothing_queued_or_delivered(self, rcpt):
        # The queue first, the Maildir second: a message queued and delivered in between
        # would still be seen in the Maildir.
        self.assertEqual(list(self.queue(recipient=rcpt)), [])
        time.sleep(0.3)
        self.assertEqual(fbs.maildir_messages(self.reinject.maildir, rcpt), [])

    def transaction_line(self):
        return harness.wait_for(lambda: re.search(r"event=transaction [^\n]*", self.bridge.log()[self.bridge_offset:]),
                                what="the bridge's transaction line").group(0)

    def test_reject_rule_gives_the_sender_its_code_and_text(self):
        code, text = self.send(plain_message("please [rule-reject] this", 1), "reject@example.com")
        self.assertEqual(code, 554)
        self.assertEqual(text, "5.7.1 Rejected: rule-reject matched")
        self.assertIn("verdict=reject", self.transaction_line())
        self.assert_nothing_queued_or_delivered("reject@example.com")

    def test_tempfail_rule_gives_4xx_and_nothing_is_queued(self):
        code, text = self.send(plain_message("please [rule-tempfail] this", 2), "tempfail@example.com")
        self.assertEqual(code, 451)
        self.assertEqual(text, "4.7.1 Deferred by rule-tempfail")
        self.assertIn("verdict=tempfail", self.transaction_line())
        self.assert_nothing_queued_or_delivered("tempfail@example.com")

    def test_discard_rule_answers_250_and_delivers_nothing(self):
        code, text = self.send(plain_message("please [rule-discard] this", 3), "discard@example.com")
        self.assertEqual(code, 250, text)
        self.assertNotIn("queued as", text)
        self.assertIn("verdict=discard", self.transaction_line())
        self.assert_nothing_queued_or_delivered("discard@example.com")

    def test_header_edits_add_replace_and_remove(self):
        raw = plain_message("please [rule-edit] this", 4,
                            ["X-Replace-Me: original value", "X-Remove-Me: one", "X-Keep-Me: kept",
                             "X-Remove-Me: two", "X-Replace-Me: second original"])
        code, text = self.send(raw, "edit@example.com")
        self.assertEqual(code, 250, text)
        got = self.delivered("edit@example.com")[0]
        head, body = fbs.split_header(got)
        ohead, obody = fbs.split_header(raw)
        self.assertEqual(body, obody)
        msg = email.message_from_bytes(got)
        self.assertEqual(msg.get_all("X-Rule-Added"), ["added by rules"])
        self.assertEqual(msg.get_all("X-Replace-Me"), ["replaced"])
        self.assertIsNone(msg.get_all("X-Remove-Me"))
        self.assertEqual(msg.get_all("X-Keep-Me"), ["kept"])
        # Every other original field is still there, in order and byte for byte.
        kept = [f for f in fbs.header_fields(ohead) if not f.startswith((b"X-Replace-Me", b"X-Remove-Me"))]
        fields = fbs.header_fields(head)
        positions = [fields.index(f) for f in kept]
        self.assertEqual(positions, sorted(positions))
        self.assertIn("verdict=deliver", self.transaction_line())

    def test_hold_rule_puts_the_message_in_the_hold_queue(self):
        code, text = self.send(plain_message("please [rule-hold] this", 5), "hold@example.com", source="127.0.0.2")
        self.assertEqual(code, 250, text)
        queue_id = re.search(r"queued as (\S+)", text).group(1)
        stubs = harness.grpc_stubs()
        held = self.queue(state=stubs["queue_pb2"].HOLD, recipient="hold@example.com")
        self.assertEqual([r.queue_id for r in held], [queue_id])
        self.assertIn("quarantined by rule-hold", held[0].hold_reason)
        # The XFORWARD facts the bridge passed on: the original client and the frontend's
        # session id, which is also the id the bridge logged the transaction under.
        self.assertEqual(held[0].original_client.client_address, "127.0.0.2")
        self.assertEqual(held[0].original_client.helo, "client.test")
        session = re.search(r"event=transaction session=(\S+)", self.transaction_line()).group(1)
        self.assertEqual(held[0].session_id, session)
        time.sleep(0.5)  # the scheduler would have delivered it by now if it were not held
        self.assertEqual(fbs.maildir_messages(self.reinject.maildir, "hold@example.com"), [])
        self.assertEqual(len(self.queue(state=stubs["queue_pb2"].HOLD, recipient="hold@example.com")), 1)

    def test_attachment_rule_matches_an_executable_by_file_name(self):
        raw = multipart_message(6, "setup.exe", "application", "octet-stream", b"MZ\x90\x00" + bytes(range(256)) * 8)
        code, text = self.send(raw, "exe@example.com")
        self.assertEqual(code, 550)
        self.assertEqual(text, "5.7.1 Executable attachments are refused")
        self.assert_nothing_queued_or_delivered("exe@example.com")

    def test_attachment_rule_matches_a_pdf_by_content_type(self):
        # The file name says nothing; the part's content type does.
        raw = multipart_message(7, "report.dat", "application", "pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
        code, text = self.send(raw, "pdf@example.com")
        self.assertEqual(code, 550)
        self.assertEqual(text, "5.7.1 PDF attachments are refused")
        self.assert_nothing_queued_or_delivered("pdf@example.com")

    def test_multipart_with_a_harmless_attachment_is_delivered_intact(self):
        raw = multipart_message(8, "notes.txt", "text", "plain", b"just notes\r\n")
        code, text = self.send(raw, "harmless@example.com")
        self.assertEqual(code, 250, text)
        got = self.delivered("harmless@example.com")[0]
        self.assertTrue(got.endswith(raw), got[-300:])

    def test_metrics_count_transactions_by_verdict_and_spooled_bytes(self):
        before = fbs.scrape(self.bridge)
        raw = plain_message("please [rule-reject] this", 11)
        self.assertEqual(self.send(raw, "m1@example.com")[0], 554)
        self.assertEqual(self.send(plain_message("please [rule-discard] this", 12), "m2@example.com")[0], 250)
        after = fbs.scrape(self.bridge)

        def delta(key):
            return after.get(key, 0) - before.get(key, 0)
        self.assertEqual(delta('sluice_filter_bridge_transactions_total{verdict="reject"}'), 1)
        self.assertEqual(delta('sluice_filter_bridge_transactions_total{verdict="discard"}'), 1)
        self.assertEqual(delta('sluice_filter_bridge_transactions_total{verdict="deliver"}'), 0)
        self.assertGreater(delta("sluice_filter_bridge_spool_bytes_total"), 2 * len(raw) - 10)
        self.assertEqual(after['sluice_filter_bridge_connections_total{outcome="not_authorized"}'], 0)

    def test_tls_rule_is_judged_from_the_frontends_session_record(self):
        code, text = self.send(plain_message("over TLS", 9), "tls@example.com", starttls=True)
        self.assertEqual(code, 250, text)
        line = self.transaction_line()
        self.assertIn("metadata=complete", line)
        got = email.message_from_bytes(self.delivered("tls@example.com")[0])
        self.assertEqual(got.get_all("X-Client-TLS"), ["yes (from the frontend's session record)"])

        self.bridge_offset = len(self.bridge.log())
        code, text = self.send(plain_message("in plain text", 10), "plain@example.com")
        self.assertEqual(code, 250, text)
        self.assertIn("metadata=complete", self.transaction_line())
        got = email.message_from_bytes(self.delivered("plain@example.com")[0])
        self.assertIsNone(got.get_all("X-Client-TLS"))


if __name__ == "__main__":
    unittest.main()
