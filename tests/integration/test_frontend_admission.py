"""tests/integration/test_frontend_admission.py -- who sluice-frontend lets in, and for what.

max_sessions+1 and per-client-limit+1 are refused with 421 at once while the admitted
sessions go on (the per-client limit counts the real client address; 127.0.0.2 stands in for
a remote client, with limit_exemptions moved off loopback); a client outside mynetworks may
not relay outside accepted_domains (554 5.7.1, and the filter never hears of it).

Never: leaves a connection or a process behind; uses any address but loopback.
"""
import smtplib
import unittest
import grpc

from harness import TempDirTest, send_mail
from test_frontend_support import RawClient, ScriptedSmtp, admin_stubs, metric, start_frontend, wait_for


BODY = b"Subject: admission\r\n\r\nhello\r\n"


class FrontendAdmissionTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)

    def connect(self, port, source=None):
        c = RawClient(port, source_address=source)
        self.addCleanup(c.close)
        return c

    def test_max_sessions_plus_one_gets_421_while_the_others_proceed(self):
        fe = start_frontend(self, self.filter.address, ["--max_sessions=3"])
        held = [self.connect(fe.smtp_port) for _ in range(3)]
        for c in held:
            self.assertEqual(c.reply()[0], 220)
        extra = self.connect(fe.smtp_port)
        code, text = extra.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.3.2", text)
        self.assertTrue(extra.eof(), "a refused connection is closed")
        # The admitted sessions carry on.
        c = held[0]
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(len(self.filter.messages()), 1)
        # A slot given back is a slot for the next client.
        self.assertEqual(held[1].cmd("QUIT")[0], 221)

        def admitted():
            c = RawClient(fe.smtp_port)
            try:
                return c.reply()[0] == 220
            finally:
                c.close()
        wait_for(admitted, 10, what="a freed session slot")
        self.assertRegex(fe.log(), r"event=refused .*reason=max_sessions")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_connections_total{outcome="max_sessions"}'), 1)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="max_sessions"}'), 1)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_transactions_total{outcome="delivered"}'), 1)

    def test_per_client_limit_plus_one_gets_421_while_others_proceed(self):
        config = ("limits:\n"
                  "  per_client_connection_limit: 2\n"
                  "  limit_exemptions: [\"192.0.2.0/24\"]\n")
        fe = start_frontend(self, self.filter.address, config=config)
        a = [self.connect(fe.smtp_port, "127.0.0.2") for _ in range(2)]
        for c in a:
            self.assertEqual(c.reply()[0], 220)
        third = self.connect(fe.smtp_port, "127.0.0.2")
        code, text = third.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.7.0", text)
        self.assertIn("too many connections from 127.0.0.2", text)
        self.assertTrue(third.eof())
        # Another client is not affected, and the admitted ones go on.
        other = self.connect(fe.smtp_port, "127.0.0.3")
        self.assertEqual(other.reply()[0], 220)
        code, _ = send_mail(fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY, source_address="127.0.0.4")
        self.assertEqual(code, 250)
        self.assertEqual(a[0].cmd("EHLO client.test")[0], 250)
        self.assertEqual(a[0].cmd("NOOP")[0], 250)
        self.assertRegex(fe.log(), r"event=refused client=127\.0\.0\.2 reason=per_client_limit")

    def test_message_and_recipient_rates_per_client(self):
        config = ("limits:\n"
                  "  per_client_message_rate_limit: 2\n"
                  "  per_client_recipient_rate_limit: 3\n"
                  "  limit_exemptions: [\"192.0.2.0/24\"]\n")
        fe = start_frontend(self, self.filter.address, config=config)
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="c.test", timeout=20,
                         source_address=("127.0.0.2", 0))
        self.addCleanup(s.close)
        s.ehlo("c.test")
        self.assertEqual(s.mail("a@example.org")[0], 250)
        for r in ("b1@example.net", "b2@example.net", "b3@example.net"):
            self.assertEqual(s.rcpt(r)[0], 250)
        code, text = s.rcpt("b4@example.net")
        self.assertEqual(code, 450, text)
        self.assertIn(b"4.7.1", text)
        self.assertEqual(s.data(BODY)[0], 250)
        self.assertEqual(s.mail("a@example.org")[0], 250)
        s.rset()
        code, text = s.mail("a@example.org")
        self.assertEqual(code, 450, text)
        # Another client has its own budget.
        code, _ = send_mail(fe.smtp_port, "a@example.org", ["b@example.net"], BODY, source_address="127.0.0.3")
        self.assertEqual(code, 250)

    def test_max_sessions_changes_live_through_the_admin_api(self):
        fe = start_frontend(self, self.filter.address)
        first = self.connect(fe.smtp_port)
        self.assertEqual(first.reply()[0], 220)
        m = admin_stubs()
        with grpc.insecure_channel(fe.admin) as ch:
            admin = m["admin_pb2_grpc"].AdminStub(ch)
            limits = m["limits_pb2"].Limits(max_sessions=1)
            admin.UpdateLimits(m["admin_pb2"].UpdateLimitsRequest(limits=limits), timeout=10)
        second = self.connect(fe.smtp_port)
        code, text = second.reply()
        self.assertEqual(code, 421, text)
        self.assertEqual(first.cmd("NOOP")[0], 250, "the admitted session is not affected")

    def test_message_over_the_size_limit_is_552_and_never_reaches_the_filter_whole(self):
        fe = start_frontend(self, self.filter.address, ["--message_size_limit=10000"])
        c = self.connect(fe.smtp_port)
        c.reply()
        code, text = c.cmd("EHLO client.test")
        self.assertIn("SIZE 10000", text)
        code, text = c.cmd("MAIL FROM:<a@example.org> SIZE=20000")
        self.assertEqual(code, 552, text)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 20 + b".\r\n")
        code, text = c.reply()
        self.assertEqual(code, 552, text)
        self.assertIn("5.3.4", text)
        self.assertEqual(self.filter.messages(), [])
        wait_for(lambda: self.filter.conns[0].aborted_data or self.filter.conns[0].closed, 10,
                 what="the filter connection dropped without a final dot")
        self.assertEqual(c.cmd("QUIT")[0], 221)

    def test_loopback_is_exempt_from_the_per_client_limit_by_default(self):
        fe = start_frontend(self, self.filter.address, ["--per_client_connection_limit=1"])
        clients = [self.connect(fe.smtp_port) for _ in range(3)]
        for c in clients:
            self.assertEqual(c.reply()[0], 220)

    def test_relay_outside_accepted_domains_from_outside_mynetworks_is_554_without_filter(self):
        fe = start_frontend(self, self.filter.address,
                            ["--mynetworks=127.0.0.1/32", "--accepted_domains=example.net,.sub.example.org"])
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="outsider.test", timeout=20,
                         source_address=("127.0.0.2", 0))
        self.addCleanup(s.close)
        s.ehlo("outsider.test")
        self.assertEqual(s.mail("spammer@example.com")[0], 250)
        for rcpt in ("victim@example.com", "x@example.net.evil.test", "x@sub.example.org.evil.test",
                     "x@sub.example.org", "x@[192.0.2.1]", "x@EXAMPLE.COM"):
            # ".sub.example.org" names its subdomains only, not sub.example.org itself.
            code, text = s.rcpt(rcpt)
            self.assertEqual(code, 554, (rcpt, text))
            self.assertTrue(text.startswith(b"5.7.1"), text)
            self.assertIn(b"Relay access denied", text)
        self.assertEqual(self.filter.connection_count(), 0, "a relay attempt never reaches the filter")
        # Logged once per refusal as Postfix's "NOQUEUE: reject: RCPT from …" line.
        self.assertRegex(fe.log(), r"event=reject queue_id=NOQUEUE command=RCPT client=\S*\[127\.0\.0\.2\] "
                                   r"reply=\"554 5\.7\.1 <victim@example\.com>: Relay access denied\" "
                                   r"from=<spammer@example\.com> to=<victim@example\.com> proto=ESMTP "
                                   r"helo=<outsider\.test> check=relay_access")
        s.rset()
        # Accepted domains are accepted from anyone: exact names and .subdomain patterns.
        s.mail("friend@example.com")
        self.assertEqual(s.rcpt("bob@Example.NET")[0], 250)
        self.assertEqual(s.rcpt("carol@deep.sub.example.org")[0], 250)
        self.assertEqual(s.rcpt("postmaster")[0], 250)
        self.assertEqual(s.data(BODY)[0], 250)
        self.assertEqual(self.filter.connection_count(), 1)

    def test_client_names_are_kept_for_the_next_connection_within_the_cache_bound(self):
        # One address fits: the first client's name is kept, the second finds the cache full
        # (counted), and the first one's next connection is answered from the cache.
        fe = start_frontend(self, self.filter.address,
                            config="limits:\n  client_name_cache_max_entries: 1\n")
        hits = 'sluice_frontend_limit_hits_total{limit="client_name_cache_max_entries"}'
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):
            code, text = send_mail(fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY, source_address=source)
            self.assertEqual(code, 250, text)
        self.assertEqual(metric(fe.metrics_port, hits), 1)

    def test_a_client_in_mynetworks_may_relay_anywhere(self):
        fe = start_frontend(self, self.filter.address,
                            ["--mynetworks=127.0.0.1/32", "--accepted_domains=example.net"])
        code, _ = send_mail(fe.smtp_port, "alice@example.org", ["anyone@example.com"], BODY)
        self.assertEqual(code, 250)


if __name__ == "__main__":
    unittest.main()
