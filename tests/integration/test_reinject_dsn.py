"""tests/integration/test_reinject_dsn.py -- DSN success notices and the 8BITMIME downgrade
through a real sluice-reinject (RFC 3461 NOTIFY=SUCCESS, RFC 6152 §3).

Mail is sent with smtplib carrying ENVID/RET and per recipient NOTIFY/ORCPT:
- --deliver=maildir: a recipient with NOTIFY=SUCCESS gets an RFC 3464 report "delivered" from
  <> in the sender's Maildir (ENVID and ORCPT in it, the headers only although RET=FULL); a
  recipient without SUCCESS is not in it.
- --deliver=smtp: to Postfix's smtp-sink started with -N -8 (it announces neither DSN nor
  8BITMIME): the 8-bit message arrives quoted-printable with no 8-bit byte and decodes to the
  original body, and the sender's "relayed" report follows it to the sink from <>.

Never: leaves a process running (every process is stopped by PID); talks to anything but
loopback.
"""
import email
import email.policy
import os
import re
import smtplib
import unittest

import harness

BODY_8BIT = "Gr\u00fc\u00dfe aus K\u00f6ln = 100 %\r\n.dot line\r\ntrailing blank \r\n".encode("utf-8")


def send(port, sender, rcpts, body, mail_options=(), rcpt_options=()):
    """One transaction; rcpt_options: one list per recipient. Returns the queue id."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="filter.test", timeout=30)
    try:
        s.ehlo("filter.test")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, text
        for r, opts in zip(rcpts, rcpt_options):
            code, text = s.rcpt(r, list(opts))
            assert code == 250, text
        code, text = s.data(body)
        assert code == 250, text
        return re.search(r"queued as (\S+)", text.decode()).group(1)
    finally:
        s.quit()


def maildir_messages(root, user):
    d = os.path.join(root, user, "new")
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out.append(f.read())
    return out


def recipient_groups(report):
    """The per-recipient field groups of a report's message/delivery-status part, as dicts."""
    status = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, report
    # Python's email package parses each field group as a message of its own.
    groups = status[0].get_payload()
    return [dict(g.items()) for g in groups[1:]], dict(groups[0].items())


def sink_message(dump):
    """The message in an smtp-sink capture: after its headers and its 3-line Received:."""
    head, sep, rest = dump.partition(b"\nReceived: from ")
    assert sep, dump[:300]
    return rest.split(b"\n", 3)[3]


class SuccessNoticeTest(harness.TempDirTest):

    def start_reinject(self, deliver):
        return self.track(harness.Stage("sluice-reinject",
                                        ["--queue_dir=" + os.path.join(self.tmp, "queue"), "--deliver=" + deliver],
                                        self.tmp, "reinject"))

    def test_maildir_delivery_with_notify_success_puts_a_delivered_report_in_the_senders_maildir(self):
        maildir = os.path.join(self.tmp, "mail")
        rj = self.start_reinject("maildir:" + maildir)
        body = ("From: alice@example.org\r\nTo: bob@example.com\r\nSubject: tell me when it is there\r\n"
                "Message-ID: <s1@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nthe body line\r\n")
        queue_id = send(rj.smtp_port, "alice@example.org", ["bob@example.com", "carol@example.com"], body,
                        mail_options=["ENVID=env-42", "RET=FULL"],
                        rcpt_options=[["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob@Example.com"],
                                      ["NOTIFY=FAILURE"]])
        reports = harness.wait_for(lambda: maildir_messages(maildir, "alice@example.org"), 20,
                                   what="the success report in the sender's Maildir")
        rj.wait_log(r"event=success_notice_queued .*orig_queue_id=%s .*nrcpt=1" % queue_id)
        self.assertEqual(len(maildir_messages(maildir, "bob@example.com")), 1)
        self.assertEqual(len(maildir_messages(maildir, "carol@example.com")), 1)
        self.assertEqual(len(reports), 1)
        self.assertTrue(reports[0].startswith(b"Return-Path: <>\r\n"), reports[0][:200])
        report = email.message_from_bytes(reports[0], policy=email.policy.compat32)
        self.assertEqual(report["Subject"], "Successful Mail Delivery Report")
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        parts = report.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        groups, per_message = recipient_groups(report)
        self.assertEqual(per_message["Original-Envelope-Id"], "env-42")
        self.assertEqual(len(groups), 1, groups)  # carol asked for failures only
        self.assertEqual(groups[0]["Final-Recipient"], "rfc822; bob@example.com")
        self.assertEqual(groups[0]["Original-Recipient"], "rfc822; Bob@Example.com")
        self.assertEqual(groups[0]["Action"], "delivered")
        self.assertEqual(groups[0]["Status"], "2.0.0")
        # A success notice returns the headers only, RET=FULL notwithstanding (RFC 3461 §4.3).
        returned = parts[2].get_payload()
        self.assertIn("Subject: tell me when it is there", returned)
        self.assertNotIn("the body line", returned)

    def test_relay_without_dsn_and_8bitmime_gets_quoted_printable_and_a_relayed_report(self):
        sink = self.track(harness.SmtpSink(self.tmp, ["-N", "-8"]))
        rj = self.start_reinject("smtp:127.0.0.1:%d" % sink.port)
        body = (b"From: alice@example.org\r\nTo: bob@example.com\r\nSubject: eight bit\r\n"
                b"Message-ID: <e1@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + BODY_8BIT)
        queue_id = send(rj.smtp_port, "alice@example.org", ["bob@example.com"], body,
                        mail_options=["BODY=8BITMIME", "ENVID=env-7", "RET=HDRS"],
                        rcpt_options=[["NOTIFY=SUCCESS,FAILURE"]])
        dumps = harness.wait_for(lambda: sink.dumps() if len(sink.dumps()) >= 2 else None, 20,
                                 what="the message and the success report at the sink")
        self.assertEqual(len(dumps), 2)
        original = [d for d in dumps if b"X-Mail-Args: <alice@example.org>" in d]
        reports = [d for d in dumps if b"X-Mail-Args: <>" in d]
        self.assertEqual((len(original), len(reports)), (1, 1), dumps)

        # The message: no BODY= and no NOTIFY for a next hop that announces neither; not one
        # 8-bit byte; quoted-printable that decodes to the body that was sent.
        self.assertIn(b"X-Mail-Args: <alice@example.org>\n", original[0])
        self.assertNotIn(b"BODY=", original[0])
        self.assertIn(b"X-Rcpt-Args: <bob@example.com>\n", original[0])
        self.assertTrue(all(b < 0x80 for b in original[0]), original[0])
        msg = email.message_from_bytes(sink_message(original[0]), policy=email.policy.compat32)
        self.assertEqual(msg["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(msg["Subject"], "eight bit")
        decoded = msg.get_payload(decode=True)
        expected = BODY_8BIT.replace(b"\r\n", b"\n")
        self.assertIn(decoded, (expected, expected + b"\n"))  # smtp-sink appends an empty line

        # The sender's report: relayed, from <>, to alice, through the same next hop.
        self.assertIn(b"X-Rcpt-Args: <alice@example.org>\n", reports[0])
        report = email.message_from_bytes(sink_message(reports[0]), policy=email.policy.compat32)
        self.assertEqual(report["Subject"], "Successful Mail Delivery Report")
        groups, per_message = recipient_groups(report)
        self.assertEqual(per_message["Original-Envelope-Id"], "env-7")
        self.assertEqual(len(groups), 1, groups)
        self.assertEqual(groups[0]["Final-Recipient"], "rfc822; bob@example.com")
        self.assertEqual(groups[0]["Action"], "relayed")
        self.assertEqual(groups[0]["Status"], "2.0.0")
        self.assertEqual(groups[0]["Remote-MTA"], "dns; 127.0.0.1")
        rj.wait_log(r"event=delivery queue_id=%s .*to=bob@example.com .*status=sent" % queue_id)


if __name__ == "__main__":
    unittest.main()
