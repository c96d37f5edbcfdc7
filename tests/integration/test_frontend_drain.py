"""tests/integration/test_frontend_drain.py -- SIGTERM drains sluice-frontend.

On SIGTERM the listener stops (new connections are refused), an idle session gets
"421 4.3.2" at once, a transaction in flight finishes with the filter's reply, and the
process exits 0 once nothing is left. A session that outlives drain_timeout gets 421.

Never: waits on a fixed sleep where a condition can be polled; leaves a process running.
"""
import signal
import socket
import unittest

from harness import TempDirTest
from test_frontend_support import RawClient, ScriptedSmtp, start_frontend, wait_for


def refused(port):
    """True when a new connection is refused or gets no greeting other than 421."""
    try:
        c = RawClient(port, timeout=5)
    except OSError:
        return True
    try:
        code, _ = c.reply()
        return code in (None, 421)
    except OSError:
        return True
    finally:
        c.close()


class FrontendDrainTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)

    def test_sigterm_lets_the_transaction_in_flight_finish_and_exits_0(self):
        fe = start_frontend(self, self.filter.address)
        busy = RawClient(fe.smtp_port)
        self.addCleanup(busy.close)
        busy.start_data(self)
        busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        idle = RawClient(fe.smtp_port)
        self.addCleanup(idle.close)
        self.assertEqual(idle.reply()[0], 220)
        self.assertEqual(idle.cmd("EHLO idle.test")[0], 250)

        fe.signal(signal.SIGTERM)
        code, text = idle.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.3.2", text)
        wait_for(lambda: refused(fe.smtp_port), 10, what="new connections refused while draining")
        self.assertTrue(fe.alive(), "a transaction is in flight: the process waits for it")

        busy.send(b"second half\r\n.\r\n")
        code, text = busy.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(len(self.filter.messages()), 1)
        self.assertTrue(self.filter.messages()[0].endswith(b"first half\r\nsecond half\r\n"))
        # The session ends at the next command boundary outside a transaction.
        code, text = busy.cmd("NOOP")
        self.assertIn(code, (221, 421, None), text)
        fe.proc.wait(20)
        self.assertEqual(fe.proc.returncode, 0)

    def test_drain_timeout_ends_what_is_left_with_421(self):
        fe = start_frontend(self, self.filter.address, config="limits:\n  drain_timeout_seconds: 1\n")
        c = RawClient(fe.smtp_port)
        self.addCleanup(c.close)
        c.start_data(self)
        c.send(b"Subject: slow\r\n\r\nnever finished\r\n")
        fe.signal(signal.SIGTERM)
        code, text = c.reply()
        self.assertEqual(code, 421, text)
        fe.proc.wait(20)
        self.assertEqual(fe.proc.returncode, 0)
        self.assertEqual(self.filter.messages(), [], "an unfinished message is never delivered")

    def test_drain_deadline_does_not_wait_for_a_slow_filter(self):
        # The filter sits on the end of data far past drain_timeout (1 s); proxy_timeout is
        # 100 s. The deadline must end the wait on the filter at once: the client hears a
        # 4xx (so it retries; the filter got the whole message, and like Postfix's proxy we
        # cannot know what it did with it) long before the proxy timeout.
        slow = ScriptedSmtp({"dot": ("sleep", 60, "250 2.0.0 Ok: too late")})
        self.addCleanup(slow.stop)
        fe = start_frontend(self, slow.address, config="limits:\n  drain_timeout_seconds: 1\n")
        c = RawClient(fe.smtp_port)
        self.addCleanup(c.close)
        c.start_data(self)
        c.send(b"Subject: slow filter\r\n\r\nbody\r\n.\r\n")
        wait_for(lambda: slow.connection_count() == 1, 10, what="the filter connection")
        fe.signal(signal.SIGTERM)
        code, text = c.reply()
        self.assertIsNotNone(code, "no reply before the connection closed")
        self.assertTrue(400 <= code < 500, text)
        fe.proc.wait(30)  # far below the 60 s the filter would take
        self.assertEqual(fe.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
