"""tests/integration/test_logging.py -- the log lines a support desk and an abuse desk work
from (docs/logging.md), through the whole pipeline: sluice-frontend -> sluice-filter-bridge
(a rules filter) -> sluice-reinject (queue, Maildir delivery).

One message to two recipients is found at every stage by one grep -- for its Message-ID, its
queue id, or the frontend's session id -- and each stage names each recipient on a line of
its own (event=accept at the frontend and the bridge, event=delivery at reinject). Every
refusal of the dialogue is one NOQUEUE line naming client, HELO, sender, recipient and who
refused (check=): a recipient over max_recipients, a MAIL SIZE= over the limit, a message
over it at the end of DATA (one line per recipient), the relay check, and a rule's verdict,
whose line at the bridge names the original client (XFORWARD) and the rule, and whose
transaction line says filters="rules=reject:RULE".

Never: leaves a process running (every stage is stopped by its PID).
"""
import os
import re
import smtplib
import unittest

import harness
import test_filter_bridge_support as fbs

RULES = [
    {"name": "no-spam", "match": {"header": "Subject", "header_pattern": r"\[spam\]"},
     "action": "reject", "code": 554, "enhanced_code": "5.7.1", "text": "Looks like spam"},
]


def message(subject, message_id, size=0):
    lines = ["From: sender@example.org", "To: a@example.com, b@example.com", "Subject: %s" % subject,
             "Message-ID: %s" % message_id, "", "Hello."]
    lines += ["x" * 70] * (size // 72)
    return ("\r\n".join(lines) + "\r\n").encode()


def lines_with(log, needle):
    return [line for line in log.splitlines() if needle in line]


class LoggingTest(harness.ClassTempDirTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reinject = cls.class_track(fbs.start_reinject(cls.tmp))
        cls.bridge = cls.class_track(fbs.start_bridge(cls.tmp, "127.0.0.1:%d" % cls.reinject.smtp_port,
                                                      {"filters": [{"name": "rules", "rules": {"rules": RULES}}]}))
        config = harness.write_yaml(os.path.join(cls.tmp, "frontend.yaml"),
                                    "mynetworks: [127.0.0.1/32]\naccepted_domains: [example.com]\n"
                                    "limits:\n  max_recipients: 2\n  message_size_limit_bytes: 20000\n")
        cls.frontend = cls.class_track(harness.Stage(
            "sluice-frontend", ["--filter=127.0.0.1:%d" % cls.bridge.smtp_port, "--config=" + config],
            cls.tmp, "frontend"))
        cls.stages = (cls.frontend, cls.bridge, cls.reinject)

    def smtp(self, source="127.0.0.1"):
        s = smtplib.SMTP("127.0.0.1", self.frontend.smtp_port, local_hostname="client.test", timeout=30,
                         source_address=(source, 0))
        self.addCleanup(s.close)
        s.ehlo("client.test")
        return s

    def test_one_grep_finds_a_message_at_every_stage(self):
        s = self.smtp()
        s.mail("sender@example.org")
        s.rcpt("a@example.com")
        s.rcpt("b@example.com")
        code, text = s.data(message("hello", "<trace-1@example.org>"))
        self.assertEqual(code, 250, text)
        queue_id = re.search(rb"queued as (\S+)", text).group(1).decode()
        self.reinject.wait_log(r"event=delivery queue_id=%s .*to=b@example\.com" % queue_id)
        self.reinject.wait_log(r"event=delivery queue_id=%s .*to=a@example\.com" % queue_id)
        fe_log, bridge_log, rj_log = (st.log() for st in self.stages)

        # At the frontend and the bridge, one accept line per recipient, with the queue id of
        # reinject's reply, the Message-ID and the frontend's session id.
        for log in (fe_log, bridge_log):
            for rcpt in ("a@example.com", "b@example.com"):
                self.assertRegex(log, r"event=accept queue_id=%s command=END-OF-MESSAGE client=\S+\[127\.0\.0\.1\] "
                                      r"reply=\"250 2\.0\.0 Ok: queued as %s\" from=<sender@example\.org> "
                                      r"to=<%s> proto=ESMTP helo=<client\.test> message_id=<trace-1@example\.org> "
                                      r"session=\S+" % (queue_id, queue_id, re.escape(rcpt)))
        session = re.search(r"event=accept queue_id=%s .* session=(\S+)" % queue_id, fe_log).group(1)
        # The bridge names the same session (XFORWARD IDENT), not its own connection's id.
        self.assertRegex(bridge_log, r"event=accept queue_id=%s .* session=%s" % (queue_id, session))
        self.assertRegex(fe_log, r"event=transaction session=%s .*nrcpt=2 .*message_id=<trace-1@example\.org> "
                                 r"queue_id=%s " % (session, queue_id))
        self.assertRegex(rj_log, r"event=received queue_id=%s session=%s .*message_id=<trace-1@example\.org>"
                         % (queue_id, session))

        # The three ways in: every stage answers each grep.
        for needle in ("<trace-1@example.org>", queue_id, session):
            for stage, log in zip(("frontend", "filter-bridge", "reinject"), (fe_log, bridge_log, rj_log)):
                self.assertTrue(lines_with(log, needle), "%s has no line with %s" % (stage, needle))

    def test_refusals_of_the_dialogue_are_one_line_each(self):
        s = self.smtp()
        # MAIL SIZE= over message_size_limit: 552 at MAIL, the sender named.
        code, _ = s.mail("big@example.org", ["SIZE=50000"])
        self.assertEqual(code, 552)
        self.frontend.wait_log(r"event=reject queue_id=NOQUEUE command=MAIL client=\S+\[127\.0\.0\.1\] "
                               r"reply=\"552 5\.3\.4 [^\"]*\" from=<big@example\.org> proto=ESMTP "
                               r"helo=<client\.test> check=message_size session=")
        # The third recipient is over max_recipients (2).
        s.mail("sender@example.org")
        s.rcpt("a@example.com")
        s.rcpt("b@example.com")
        code, _ = s.rcpt("c@example.com")
        self.assertEqual(code, 452)
        self.frontend.wait_log(r"event=reject queue_id=NOQUEUE command=RCPT client=\S+\[127\.0\.0\.1\] "
                               r"reply=\"452 4\.5\.3 Error: too many recipients\" from=<sender@example\.org> "
                               r"to=<c@example\.com> proto=ESMTP helo=<client\.test> check=max_recipients")
        # Too big at the end of DATA: one line per recipient.
        code, _ = s.data(message("big", "<big-1@example.org>", size=30000))
        self.assertEqual(code, 552)
        for rcpt in ("a", "b"):
            self.frontend.wait_log(r"event=reject queue_id=NOQUEUE command=END-OF-MESSAGE .*reply=\"552 5\.3\.4 "
                                   r"Message size exceeds fixed limit\" from=<sender@example\.org> "
                                   r"to=<%s@example\.com> .*check=message_size message_id=<big-1@example\.org>" % rcpt)

    def test_relay_refusal_names_client_helo_sender_and_recipient(self):
        s = self.smtp(source="127.0.0.2")
        s.mail("outsider@example.org")
        self.assertEqual(s.rcpt("victim@elsewhere.test")[0], 554)
        self.frontend.wait_log(r"event=reject queue_id=NOQUEUE command=RCPT client=\S+\[127\.0\.0\.2\] "
                               r"reply=\"554 5\.7\.1 <victim@elsewhere\.test>: Relay access denied\" "
                               r"from=<outsider@example\.org> to=<victim@elsewhere\.test> proto=ESMTP "
                               r"helo=<client\.test> check=relay_access detail=reject_unauth_destination session=")

    def test_a_rule_verdict_names_the_rule_at_every_stage(self):
        s = self.smtp()
        s.mail("spammer@example.org")
        s.rcpt("a@example.com")
        code, text = s.data(message("[spam] buy now", "<spam-1@example.org>"))
        self.assertEqual(code, 554, text)
        fe_line = self.frontend.wait_log(
            r"event=reject queue_id=NOQUEUE command=END-OF-MESSAGE client=\S+\[127\.0\.0\.1\] "
            r"reply=\"554 5\.7\.1 Looks like spam\" from=<spammer@example\.org> to=<a@example\.com> "
            r"proto=ESMTP helo=<client\.test> check=proxy message_id=<spam-1@example\.org> session=(\S+)")
        session = fe_line.group(1)
        # The bridge's line names the original client and the frontend's session, and the rule.
        self.bridge.wait_log(r"event=reject queue_id=NOQUEUE command=END-OF-MESSAGE client=\S+\[127\.0\.0\.1\] "
                             r"reply=\"554 5\.7\.1 Looks like spam\" from=<spammer@example\.org> "
                             r"to=<a@example\.com> proto=ESMTP helo=<client\.test> check=rules "
                             r"detail=\"rule no-spam\" message_id=<spam-1@example\.org> session=%s" % session)
        self.bridge.wait_log(r'event=transaction session=%s .*verdict=reject filters="rules=reject:no-spam"'
                             % session)


if __name__ == "__main__":
    unittest.main()
