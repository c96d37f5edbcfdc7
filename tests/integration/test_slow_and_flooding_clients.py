"""tests/integration/test_slow_and_flooding_clients.py -- clients that abuse the frontend by
speed or by number (issue 11, part 4), while a well-behaved client sends numbered messages
(tests/integration/ledger.py) and must see no difference:

- one byte a second, in a command and in the content: cut by session_deadline_seconds with
  "421 4.4.2" (the deadline bounds every read, not only the next command);
- a connection flood from one address past per_client_connection_limit: "421" at once for
  each connection over the limit, the other client unaffected; a flood from many addresses
  past max_sessions: "421 4.3.2" at once, and a freed slot serves again;
- recipients pipelined in one write: of 1,500, max_recipients (1000) taken, the rest "452
  4.5.3", the message goes through; of 10,000, as Postfix, 1000 more refused without
  counting as errors (recipient_overshoot_limit), then errors up to hard_error_limit and
  "421 4.7.0": the session ends without the frontend reading the rest;
- a pipelining flood where the client must wait (NOOP after NOOP): "554 5.5.0" and the
  session ends, without the frontend reading the whole flood;
- garbage instead of a TLS handshake after STARTTLS: the session ends, the others go on.

The filter stage is a scripted SMTP server (tests/integration/test_frontend_support.py).

Never: leaves a connection, thread or process behind; asserts on timing (a limit that bites
is judged by what the client was told before it could finish, not by a clock).
"""
import os
import socket
import threading

from harness import TempDirTest, wait_for
from ledger import ACCEPTED, Ledger
from test_frontend_support import RawClient, ScriptedSmtp, metric, start_frontend
from test_frontend_transport import make_certificate

NOT_EXEMPT = "limit_exemptions: [\"192.0.2.0/24\"]\n"  # loopback counted like any client


class ClientAbuseTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp(pipelining=True)
        self.addCleanup(self.filter.stop)

    def frontend(self, limits="", flags=()):
        return start_frontend(self, self.filter.address, list(flags), config="limits:\n" + "".join(
            "  " + line + "\n" for line in limits.splitlines()) if limits else None)

    def client(self, port, source=None, timeout=20):
        c = RawClient(port, source_address=source, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def well_behaved(self, port, tag):
        """A ledger client from 127.0.0.2 sending until the cleanup stops it."""
        ledger = Ledger(port, tag, "bob@example.net", source="127.0.0.2")
        ledger.start(1)
        self.addCleanup(ledger.stop)
        wait_for(lambda: len(ledger.numbers(ACCEPTED)) >= 3, 30, what="the well-behaved client's first messages")
        return ledger

    def assert_unaffected(self, ledger, more=3):
        have = len(ledger.numbers(ACCEPTED))
        wait_for(lambda: len(ledger.numbers(ACCEPTED)) >= have + more, 30, what="the well-behaved client going on")
        ledger.stop()
        self.assertEqual(set(ledger.outcomes) - ledger.numbers(ACCEPTED), set(),
                         [ledger.outcomes[n] for n in set(ledger.outcomes) - ledger.numbers(ACCEPTED)][:5])

    def dribble(self, c, data, limit_seconds):
        """Sends `data` one byte a second until the server answers; what it said (None if it
        never did within `limit_seconds` bytes)."""
        c.sock.settimeout(1)
        for i, byte in enumerate(data[:limit_seconds]):
            try:
                c.send(bytes([byte]))
            except OSError:
                break
            try:
                got = c.sock.recv(4096)
            except socket.timeout:
                continue
            return got.decode(errors="replace") if got else ""
        c.sock.settimeout(5)
        try:
            got = c.sock.recv(4096)
        except (socket.timeout, OSError):
            return None
        return got.decode(errors="replace")

    def test_one_byte_a_second_is_cut_by_the_session_deadline(self):
        fe = self.frontend("session_deadline_seconds: 5")
        ledger = self.well_behaved(fe.smtp_port, "slow")
        # In a command: a line that would take 40 s.
        c = self.client(fe.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        said = self.dribble(c, b"EHLO " + b"a" * 35 + b"\r\n", 20)
        self.assertIsNotNone(said, "nothing before the client finished its slow line")
        self.assertRegex(said, r"^421 4\.4\.2 ")
        self.assertTrue(c.eof(), "the session ends")
        # In the content: a message that would take 40 s.
        d = self.client(fe.smtp_port)
        d.start_data(self)
        said = self.dribble(d, b"Subject: slow\r\n\r\n" + b"x" * 30 + b"\r\n.\r\n", 20)
        self.assertIsNotNone(said, "nothing before the client finished its slow content")
        self.assertRegex(said, r"^421 4\.4\.2 ")
        self.assertFalse([m for m in self.filter.messages() if b"Subject: slow" in m], "a cut message passed on")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="session_deadline"}'), 2)
        self.assert_unaffected(ledger)

    def test_a_connection_flood_from_one_address_past_its_limit_gets_421_at_once(self):
        fe = self.frontend(NOT_EXEMPT + "per_client_connection_limit: 5")
        ledger = self.well_behaved(fe.smtp_port, "flood-one")
        flood = [self.client(fe.smtp_port, source="127.0.0.3") for _ in range(40)]
        codes = [c.reply()[0] for c in flood]
        self.assertEqual(codes.count(220), 5, codes)
        self.assertEqual(codes.count(421), 35, codes)
        for c, code in zip(flood, codes):
            if code == 421:
                self.assertTrue(c.eof(), "a refused connection is closed")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="per_client_connections"}'), 35)
        self.assert_unaffected(ledger)

    def test_a_connection_flood_past_max_sessions_gets_421_at_once_and_a_freed_slot_serves(self):
        fe = self.frontend("max_sessions: 10")
        flood = [self.client(fe.smtp_port, source="127.0.1.%d" % (i + 1)) for i in range(30)]
        codes = [c.reply() for c in flood]
        self.assertEqual([c for c, _ in codes].count(220), 10, codes)
        refused = [t for c, t in codes if c == 421]
        self.assertEqual(len(refused), 20, codes)
        for t in refused:
            self.assertIn("4.3.2", t)
        for c in flood:
            c.close()
        ledger = self.well_behaved(fe.smtp_port, "flood-many")
        self.assert_unaffected(ledger)

    def pipeline_recipients(self, c, count):
        """MAIL and `count` RCPTs in one write after EHLO; the replies (None after the end)."""
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        group = b"MAIL FROM:<alice@example.org>\r\n" + b"".join(
            b"RCPT TO:<r%d@example.net>\r\n" % i for i in range(count))
        # Written by another thread while this one reads the replies: a client that only
        # writes would stall once both directions' buffers are full.
        writer = threading.Thread(target=self._send_quietly, args=(c, group), daemon=True)
        writer.start()
        replies = []
        for _ in range(count + 1):
            replies.append(c.reply())
            if replies[-1][0] is None:
                break
        writer.join(60)
        self.assertEqual(replies[0][0], 250, replies[0])
        return [code for code, _ in replies[1:]], replies

    @staticmethod
    def _send_quietly(c, data):
        try:
            c.send(data)
        except OSError:
            pass  # the session ended while the group was being written

    def test_fifteen_hundred_recipients_pipelined_take_max_recipients_and_the_message_goes_through(self):
        fe = self.frontend()
        c = self.client(fe.smtp_port, timeout=120)
        codes, replies = self.pipeline_recipients(c, 1500)
        self.assertEqual(codes, [250] * 1000 + [452] * 500)
        self.assertIn("4.5.3", replies[1001][1])
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: many\r\n\r\nto many\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        rcpts = [cmd for conn in self.filter.conns for cmd in conn.commands if cmd.startswith("RCPT")]
        self.assertEqual(len(rcpts), 1000)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="recipient_overshoot"}'), 0)

    def test_ten_thousand_recipients_pipelined_end_past_the_overshoot_limit(self):
        # As Postfix: max_recipients (1000) taken, 1000 more refused as no error
        # (recipient_overshoot_limit), then each refusal is an error up to hard_error_limit
        # (20), and the session ends. No error sleep: it would only make the test slow.
        fe = self.frontend("error_sleep_seconds: 0")
        ledger = self.well_behaved(fe.smtp_port, "rcpt-flood")
        c = self.client(fe.smtp_port, timeout=120)
        codes, replies = self.pipeline_recipients(c, 10000)
        self.assertEqual(codes[:1000], [250] * 1000)
        refused = codes[1000:]
        end = refused.index(421)
        self.assertEqual(set(refused[:end]), {452})
        # 1000 overshoots, 20 errors; the next command is answered with the 421.
        self.assertEqual(end, 1000 + 20, "452s before the 421")
        self.assertIn("4.7.0", replies[1000 + end + 1][1])
        self.assertTrue(c.eof(), "the session ends")
        self.assertLess(len(codes), 10000, "the frontend stopped reading the flood")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="recipient_overshoot"}'), 20)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="hard_errors"}'), 1)
        self.assert_unaffected(ledger)

    def test_a_pipelining_flood_where_the_client_must_wait_is_554_and_the_end(self):
        fe = self.frontend()
        ledger = self.well_behaved(fe.smtp_port, "noop-flood")
        c = self.client(fe.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        flood = b"NOOP\r\n" * 200000  # 1.2 MB: far more than the frontend ever reads ahead
        try:
            c.send(flood)
        except OSError:
            pass  # the frontend closed the connection while the flood was being written
        code, text = c.reply()
        self.assertEqual(code, 554, text)
        self.assertIn("5.5.0", text)
        self.assertTrue(c.eof(), "the session ends")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="unauth_pipelining"}'), 1)
        self.assert_unaffected(ledger)

    def test_garbage_instead_of_a_tls_handshake_ends_only_that_session(self):
        cert, key = make_certificate(self.tmp)
        fe = start_frontend(self, self.filter.address, config=(
            "server:\n  smtp_tls:\n    cert_file: %s\n    key_file: %s\n" % (cert, key)))
        ledger = self.well_behaved(fe.smtp_port, "tls-garbage")
        for garbage in (os.urandom(4096), b"\x16\x03\x01\xff\xff" + b"\0" * 100, b"EHLO again\r\n" * 50):
            c = self.client(fe.smtp_port)
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("STARTTLS")[0], 220)
            try:
                c.send(garbage)
            except OSError:
                pass
            self.assertTrue(c.eof(10), "the session ends after garbage for a handshake: %r" % garbage[:16])
        self.assert_unaffected(ledger)
