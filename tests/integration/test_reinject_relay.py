"""tests/integration/test_reinject_relay.py -- sluice-reinject relaying to a real next hop.

--deliver=smtp: to Postfix's smtp-sink (the message arrives with the original DSN and BODY
parameters and byte for byte; a next hop answering 4xx defers the message, which the retry
after the backoff delivers once the next hop takes mail) and --deliver=lmtp: to Dovecot's LMTP
server (the message lands in the user's Maildir; a recipient Dovecot refuses with 5xx is
bounced with an RFC 3464 report that Dovecot delivers into the sender's Maildir).

Never: leaves a process running (every process is stopped by PID).
"""
import email
import os
import re
import smtplib
import unittest

import grpc

import harness

FAST_RETRY = """
limits:
  minimal_backoff_seconds: 1
  maximal_backoff_seconds: 1
  queue_run_delay_seconds: 1
"""


def send(port, sender, rcpts, body, mail_options=(), rcpt_options=()):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="filter.test", timeout=30)
    try:
        s.ehlo("filter.test")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, text
        for r in rcpts:
            code, text = s.rcpt(r, list(rcpt_options))
            assert code == 250, text
        code, text = s.data(body)
        assert code == 250, text
        return re.search(r"queued as (\S+)", text.decode()).group(1)
    finally:
        s.quit()


def sink_message(dump):
    """The message in an smtp-sink capture: after its headers and its 3-line Received:."""
    head, sep, rest = dump.partition(b"\nReceived: from ")
    assert sep, dump[:300]
    lines = rest.split(b"\n", 3)
    return lines[3]


class RelayToSmtpSinkTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.config = harness.write_yaml(os.path.join(self.tmp, "reinject.yaml"), FAST_RETRY)

    def start_reinject(self, port):
        return self.track(harness.Stage("sluice-reinject",
                                        ["--config=" + self.config, "--queue_dir=" + os.path.join(self.tmp, "queue"),
                                         "--deliver=smtp:127.0.0.1:%d" % port], self.tmp, "reinject"))

    def test_next_hop_receives_the_message_with_its_original_parameters(self):
        sink = self.track(harness.SmtpSink(self.tmp))
        rj = self.start_reinject(sink.port)
        body = ("From: a@example.org\r\nSubject: relayed\r\nMessage-ID: <r1@example.org>\r\n"
                "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n.dot line\r\n8bit: \xe9t\xe9\r\nend\r\n")
        queue_id = send(rj.smtp_port, "a@example.org", ["b@example.com", "c@example.com"], body.encode("latin-1"),
                        mail_options=["BODY=8BITMIME", "RET=HDRS", "ENVID=env1"],
                        rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;b@example.com"])
        dumps = harness.wait_for(lambda: sink.dumps(), 20, what="the relayed message")
        self.assertEqual(len(dumps), 1)
        d = dumps[0]
        self.assertIn(b"X-Mail-Args: <a@example.org> BODY=8BITMIME RET=HDRS ENVID=env1\n", d)
        self.assertIn(b"X-Rcpt-Args: <b@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.com\n", d)
        self.assertIn(b"X-Rcpt-Args: <c@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.com\n", d)
        # Our Received: first, then the original byte for byte (smtp-sink stores LF line ends
        # and adds an empty line).
        msg = sink_message(d)
        self.assertTrue(msg.startswith(b"Received: from filter.test"), msg[:200])
        original = body.encode("latin-1").replace(b"\r\n", b"\n")
        self.assertTrue(msg.endswith(b"\n" + original + b"\n"), msg)
        rj.wait_log(r"event=delivery queue_id=%s .*to=b@example.com relay=smtp:127\.0\.0\.1:%d .*status=sent"
                    % (queue_id, sink.port))
        self.assertEqual(len(re.findall(r"event=relay_connected", rj.log())), 1)
        self.assertEqual(rj.stop(), 0)  # with the connection still cached

    def test_next_hop_answering_4xx_defers_and_the_retry_delivers(self):
        port = harness.free_port()
        refusing = self.track(harness.SmtpSink(self.tmp, ["-r", "RCPT"], port=port, name="sink-refusing"))
        rj = self.start_reinject(port)
        queue_id = send(rj.smtp_port, "a@example.org", ["later@example.com"], "Subject: later\r\n\r\nretry me\r\n")
        rj.wait_log(r"event=delivery queue_id=%s .*status=deferred reply=\"450 4\.3\.0" % queue_id)
        stubs = harness.grpc_stubs()
        with grpc.insecure_channel(rj.admin) as ch:
            q = stubs["queue_pb2_grpc"].QueueStub(ch)

            def deferred():  # the record is rewritten just after the log line
                e = q.Get(stubs["queue_pb2"].GetQueueEntryRequest(queue_id=queue_id), timeout=5)
                return e if e.record.state == stubs["queue_pb2"].DEFERRED else None
            entry = harness.wait_for(deferred, 10, what="the entry deferred")
        self.assertEqual(entry.record.recipients[0].status, stubs["queue_pb2"].RECIPIENT_STATUS_DEFERRED)
        self.assertTrue(entry.record.recipients[0].last_reply.startswith("450 4.3.0"), entry.record)
        self.assertEqual(refusing.dumps(), [])
        refusing.stop()
        accepting = self.track(harness.SmtpSink(self.tmp, port=port, name="sink-accepting"))
        dumps = harness.wait_for(lambda: accepting.dumps(), 30, what="delivery on a later attempt")
        self.assertIn(b"retry me", dumps[0])
        rj.wait_log(r"event=delivery queue_id=%s .*status=sent" % queue_id)


class RelayToDovecotLmtpTest(harness.ClassTempDirTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.dovecot = cls.class_track(harness.DovecotLmtp(cls.tmp, ["alice@example.org", "bob@example.com"]))
            cls.rj = cls.class_track(harness.Stage("sluice-reinject",
                                                   ["--queue_dir=" + os.path.join(cls.tmp, "queue"),
                                                    "--deliver=lmtp:127.0.0.1:%d" % cls.dovecot.port],
                                                   cls.tmp, "reinject"))
        except BaseException:
            cls._any_failed = True
            cls.tearDownClass()
            raise

    def test_message_lands_in_the_users_maildir(self):
        body = ("From: alice@example.org\r\nSubject: via lmtp\r\nMessage-ID: <l1@example.org>\r\n"
                "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nhello bob\r\n")
        send(self.rj.smtp_port, "alice@example.org", ["bob@example.com"], body)
        mail = harness.wait_for(lambda: [m for m in self.dovecot.mail("bob@example.com") if b"via lmtp" in m],
                                20, what="the message in bob's Maildir")
        self.assertEqual(len(mail), 1)
        self.assertIn(b"Return-Path: <alice@example.org>", mail[0])
        self.assertTrue(mail[0].replace(b"\r\n", b"\n").endswith(body.encode().replace(b"\r\n", b"\n")), mail[0])

    def test_recipient_refused_with_5xx_is_bounced_to_the_sender_with_a_dsn(self):
        body = "From: alice@example.org\r\nSubject: to someone unknown\r\nMessage-ID: <b1@example.org>\r\n\r\nbody\r\n"
        queue_id = send(self.rj.smtp_port, "alice@example.org", ["nobody@example.com", "bob@example.com"], body,
                        mail_options=["ENVID=bounce-env-1"])
        self.rj.wait_log(r"event=delivery queue_id=%s .*to=nobody@example.com .*status=bounced" % queue_id)

        def report():
            for m in self.dovecot.mail("alice@example.org"):
                if b"multipart/report" in m and b"bounce-env-1" in m:
                    return m
            return None
        raw = harness.wait_for(report, 20, what="the DSN in alice's Maildir")
        self.assertIn(b"Return-Path: <>", raw)  # from the null sender
        msg = email.message_from_bytes(raw)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = msg.get_payload()
        status = parts[1]
        self.assertEqual(status.get_content_type(), "message/delivery-status")
        text = status.as_bytes()
        self.assertIn(b"Original-Envelope-Id: bounce-env-1", text)
        self.assertIn(b"Final-Recipient: rfc822; nobody@example.com", text)
        self.assertIn(b"Action: failed", text)
        self.assertIn(b"Status: 5.1.1", text)
        self.assertIn(b"Remote-MTA: dns; 127.0.0.1", text)
        self.assertRegex(text, rb"Diagnostic-Code: smtp;\s+550 5\.1\.1 <nobody@example\.com>")
        self.assertNotIn(b"bob@example.com", text)  # delivered, so not in the report
        self.assertIn(b"Subject: to someone unknown", parts[2].as_bytes())
        self.assertTrue(any(b"to someone unknown" in m for m in self.dovecot.mail("bob@example.com")))


if __name__ == "__main__":
    unittest.main()
