"""tests/integration/test_frontend_session_limits.py -- the dialogue's own limits, each
biting once against a real sluice-frontend and counted in its metric.

smtpd_timeout (421 4.4.2), hard_error_limit (421 4.7.0 after that many errors, with the
soft limit's error sleep before), junk_command_limit (NOOPs past it count as errors),
line_length_limit (500 5.5.0, the line discarded, the session goes on), max_recipients
(452 4.5.3), header_size_limit (552 5.3.4, nothing passed on), max_transactions_per_session
(452 4.5.3 at the next MAIL), session_deadline (421 4.4.2 at the next command).

Never: waits on a fixed sleep where a reply can be read; leaves a process running.
"""
import time
import unittest

from harness import TempDirTest
from test_frontend_admission import metric
from test_frontend_support import RawClient, ScriptedSmtp, start_frontend

LIMITS = """limits:
  smtpd_timeout_seconds: 2
  hard_error_limit: 5
  soft_error_limit: 3
  error_sleep_seconds: 1
  junk_command_limit: 3
  line_length_limit_bytes: 512
  max_recipients: 2
  header_size_limit_bytes: 1024
  max_transactions_per_session: 1
"""


class SessionLimitsTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)
        self.fe = start_frontend(self, self.filter.address, config=LIMITS)

    def client(self):
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        return c

    def hits(self, limit):
        return metric(self.fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="%s"}' % limit)

    def test_a_silent_client_gets_421_after_smtpd_timeout(self):
        c = self.client()
        code, text = c.reply()  # nothing sent: the server speaks first, then closes
        self.assertEqual(code, 421, text)
        self.assertIn("4.4.2", text)
        self.assertTrue(c.eof())
        self.assertEqual(self.hits("timeout"), 1)

    def test_hard_error_limit_ends_the_session_after_the_error_sleep(self):
        c = self.client()
        started = time.monotonic()
        for _ in range(4):
            self.assertEqual(c.cmd("BOGUS")[0], 502)
        code, text = c.cmd("BOGUS")  # the fifth error: the hard limit
        self.assertEqual(code, 502, text)
        code, text = c.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.7.0", text)
        self.assertTrue(c.eof())
        # Past the soft limit (3) an error reply waits error_sleep (1 s): the 4th did; the
        # 5th reached the hard limit and ended the session at once.
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assertEqual(self.hits("hard_errors"), 1)

    def test_junk_commands_past_the_limit_count_as_errors(self):
        c = self.client()
        for _ in range(3):
            self.assertEqual(c.cmd("NOOP")[0], 250)
        self.assertEqual(c.cmd("NOOP")[0], 250)  # the 4th: answered, but counted
        self.assertGreaterEqual(self.hits("junk_commands"), 1)

    def test_an_overlong_command_is_500_and_the_session_goes_on(self):
        c = self.client()
        code, text = c.cmd("NOOP " + "x" * 600)
        self.assertEqual(code, 500, text)
        self.assertIn("5.5.0", text)
        self.assertEqual(c.cmd("NOOP")[0], 250)  # the rest of the long line was discarded
        self.assertEqual(self.hits("line_length"), 1)

    def test_recipients_past_max_recipients_get_452(self):
        c = self.client()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b1@example.net>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b2@example.net>")[0], 250)
        code, text = c.cmd("RCPT TO:<b3@example.net>")
        self.assertEqual(code, 452, text)
        self.assertIn("4.5.3", text)
        self.assertEqual(self.hits("max_recipients"), 1)

    def test_a_header_over_header_size_limit_is_552_and_never_passed_on(self):
        c = self.client()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send("".join("X-Filler-%d: %s\r\n" % (i, "y" * 60) for i in range(40)) + "\r\nbody\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 552, text)
        self.assertIn("5.3.4", text)
        self.assertEqual(self.filter.messages(), [])
        self.assertEqual(self.hits("header_size"), 1)

    def test_a_second_transaction_past_the_limit_gets_452(self):
        c = self.client()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        code, text = c.cmd("Subject: one\r\n\r\nbody\r\n.")
        self.assertEqual(code, 250, text)
        code, text = c.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(code, 452, text)
        self.assertEqual(self.hits("max_transactions"), 1)


class SessionDeadlineTest(TempDirTest):

    def test_a_session_past_its_deadline_gets_421_at_the_next_command(self):
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)
        fe = start_frontend(self, self.filter.address, config="limits:\n  session_deadline_seconds: 1\n")
        c = RawClient(fe.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        time.sleep(1.2)  # the deadline is a time: let it pass
        code, text = c.cmd("NOOP")
        self.assertEqual(code, 421, text)
        self.assertIn("4.4.2", text)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="session_deadline"}'), 1)


if __name__ == "__main__":
    unittest.main()
