"""tests/integration/test_frontend_speed_adjust.py -- sluice-frontend with speed_adjust.

With speed_adjust the filter hears nothing until the whole message is in: recipients get a
local 250, the content is spooled to an unlinked temporary file under spool_dir, and the
transaction is replayed at the end of DATA. A filter refusing a recipient or the message
gives the client that reply then (a 4xx when any refusal was a 4xx), and nothing is
delivered for part of the recipients.

Never: leaves a spool file behind; asserts on timing.
"""
import os
import smtplib
import unittest

from harness import send_mail
from test_frontend_support import DROP, RawClient, SharedFrontendTest, strip_received, wait_for

BODY = (b"From: alice@example.org\r\nSubject: spooled\r\n\r\n"
        b".dot line\r\n" + b"z" * 5000 + b"\r\nend\r\n")


def _config(tmp):
    os.makedirs(os.path.join(tmp, "spool"))
    return "speed_adjust: true\nspool_dir: %s/spool\nlimits:\n  proxy_timeout_seconds: 2\n" % tmp


class FrontendSpeedAdjustTest(SharedFrontendTest):

    frontend_config = staticmethod(_config)

    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")

    def test_no_filter_connection_until_the_message_is_complete(self):
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org> SIZE=%d" % len(BODY))[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.net>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<carol@example.net> NOTIFY=NEVER")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        stuffed = BODY.replace(b"\r\n.", b"\r\n..")
        c.send(stuffed[:100])
        self.assertEqual(self.filter.connection_count(), 0, "nothing reaches the filter before the end of DATA")
        self.assertEqual(os.listdir(self.spool), [], "the spool file is unlinked at once")
        c.send(stuffed[100:] + b".\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(self.filter.connection_count(), 1)
        conn = self.filter.conns[0]
        cmds = conn.commands
        self.assertEqual(cmds[0], "EHLO frontend.test")
        self.assertTrue(cmds[1].startswith("XFORWARD "))
        self.assertTrue(cmds[2].startswith("MAIL FROM:<alice@example.org>") and "SIZE=%d" % len(BODY) in cmds[2])
        self.assertEqual(cmds[3:6], ["RCPT TO:<bob@example.net>", "RCPT TO:<carol@example.net> NOTIFY=NEVER", "DATA"])
        received, rest = strip_received(conn.messages[0])
        self.assertEqual(rest, BODY.replace(b"\r\n.", b"\r\n.."))
        self.assertNotIn(b"for <", received)
        self.assertEqual(os.listdir(self.spool), [])

    def test_the_replay_is_pipelined_to_a_pipelining_filter(self):
        self.filter.pipelining = True
        rcpts = ["bob@example.net", "carol@example.net", "dave@example.net"]
        code, _ = send_mail(self.fe.smtp_port, "alice@example.org", rcpts, BODY)
        self.assertEqual(code, 250)
        conn = self.filter.conns[0]
        # XFORWARD, MAIL and every RCPT in one write: all but the first arrive pipelined.
        self.assertTrue(conn.commands[1].startswith("XFORWARD "), conn.commands)
        self.assertEqual(conn.pipelined, [c for c in conn.commands if c.startswith("MAIL")] +
                         ["RCPT TO:<%s>" % r for r in rcpts])
        self.assertEqual(len(conn.messages), 1)

    def test_a_refused_recipient_is_the_end_of_data_reply_and_nothing_is_delivered(self):
        self.filter.script["rcpt"] = lambda line: ("550 5.1.1 <nobody@example.net>: Recipient address rejected"
                                                   if "nobody@" in line else "250 2.1.5 Ok")
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net", "nobody@example.net"],
                               BODY)
        self.assertEqual((code, text), (550, b"5.1.1 <nobody@example.net>: Recipient address rejected"))
        self.assertEqual(self.filter.messages(), [])
        self.assertNotIn("DATA", self.filter.conns[0].commands)

    def test_a_temporary_refusal_wins_over_a_permanent_one(self):
        def rcpt(line):
            if "nobody@" in line:
                return "550 5.1.1 no such user"
            if "later@" in line:
                return "450 4.2.1 try again later"
            return "250 2.1.5 Ok"
        self.filter.script["rcpt"] = rcpt
        code, text = send_mail(self.fe.smtp_port, "alice@example.org",
                               ["nobody@example.net", "bob@example.net", "later@example.net"], BODY)
        self.assertEqual((code, text), (450, b"4.2.1 try again later"))
        self.assertEqual(self.filter.messages(), [])

    def test_a_refused_sender_is_the_end_of_data_reply(self):
        self.filter.script["mail"] = "553 5.7.1 sender rejected"
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual((code, text), (553, b"5.7.1 sender rejected"))

    def test_a_rejected_message_is_the_end_of_data_reply(self):
        self.filter.script["dot"] = "554 5.7.1 spam"
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual((code, text), (554, b"5.7.1 spam"))

    def test_filter_failures_are_451_and_nothing_delivered(self):
        self.filter.script["dot"] = ("sleep", 5, "250 too late")
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual(code, 451, text)
        self.assertTrue(text.startswith(b"4.3.0"))
        self.filter.script["dot"] = "250 2.0.0 Ok"
        self.filter.script["data"] = "250 wrong"
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual(code, 451, text)
        self.filter.script["data"] = "354 go ahead"
        self.filter.script["greeting"] = DROP
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual(code, 451, text)
        self.assertEqual(os.listdir(self.spool), [])

    def test_rset_mid_transaction_and_a_second_transaction(self):
        s = smtplib.SMTP("127.0.0.1", self.fe.smtp_port, local_hostname="client.test", timeout=20)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        s.mail("alice@example.org")
        s.rcpt("bob@example.net")
        s.rset()
        self.assertEqual(self.filter.connection_count(), 0)
        for rcpt in ("bob@example.net", "carol@example.net"):
            s.mail("alice@example.org")
            s.rcpt(rcpt)
            self.assertEqual(s.data(BODY)[0], 250)
        s.quit()
        self.assertEqual(self.filter.connection_count(), 1, "the second transaction reuses the connection")
        self.assertEqual(len(self.filter.conns[0].messages), 2)


if __name__ == "__main__":
    unittest.main()
