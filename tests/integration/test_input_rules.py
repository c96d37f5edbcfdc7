"""tests/integration/test_input_rules.py -- the input rules every stage enforces on what it
is sent (issue 11, parts 1 and 2), through the three real stages:

- NUL octets in message content ("CRLF NUL . CRLF" and "CRLF . NUL CRLF", the smuggling
  variants a NUL-dropping downstream would read as an end of data) are refused with
  550 5.6.0, nothing is delivered, the refusal is counted; the filter-bridge and reinject
  refuse them too when spoken to directly; allow_nul_in_content lets them through.
- Unauthorized pipelining (Postfix smtpd_forbid_unauth_pipelining): talking before the
  greeting, pipelining after HELO or after a command that ends a group (EHLO, NOOP,
  STARTTLS...), content before the 354, commands after the final dot before its reply: each
  gets 554 5.5.0 and a disconnect, is logged with the input and counted, and delivers
  nothing. Legitimate RFC 2920 pipelining after EHLO (MAIL/RCPT.../DATA, and QUIT behind the
  final dot) is unaffected, and sluice stages talking to sluice stages -- kept connections,
  XFORWARD, RSET after an early end, pipelined starts -- never trip the check.

Never: leaves a process running; connects anywhere but loopback; asserts on timing.
"""
import os
import re
import smtplib
import socket
import unittest
import uuid

import harness
from test_frontend_support import RawClient, ScriptedSmtp, metric, start_frontend, write_config

SYNC = "554 5.5.0 Error: SMTP protocol synchronization"


def delivered_text(pipeline, recipient):
    out = []
    for path in pipeline.delivered(recipient):
        with open(path, "rb") as f:
            out.append(f.read())
    return b"\n".join(out)


class PipelineInputRulesTest(harness.ClassTempDirTest):
    """Three real stages with their defaults: every rule on at every stage."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = harness.write_hold_mark_key(cls.tmp)
        cls.p = harness.Pipeline(cls.tmp,
                                 frontend_flags=["--config=" + harness.write_yaml(
                                     os.path.join(cls.tmp, "fe.yaml"),
                                     "limits:\n  hop_connection_idle_limit_seconds: 60s\n")],
                                 bridge_flags=["--config=" + harness.write_yaml(
                                     os.path.join(cls.tmp, "fb.yaml"),
                                     "limits:\n  hop_connection_idle_limit_seconds: 60s\n")])
        for s in cls.p.stages:
            cls.class_track(s)

    def setUp(self):
        self.offsets = {s.name: len(s.log()) for s in self.p.stages}

    def new_log(self, stage):
        return stage.log()[self.offsets[stage.name]:]

    def raw(self, port):
        c = RawClient(port)
        self.addCleanup(c.close)
        return c

    def marker(self):
        return "m-" + uuid.uuid4().hex

    def assert_delivered_once(self, marker, rcpt="user@example.com"):
        harness.wait_for(lambda: marker.encode() in delivered_text(self.p, rcpt), 30, what="message " + marker)
        self.assertEqual(delivered_text(self.p, rcpt).count(marker.encode()), 1, marker)

    def assert_never_delivered(self, marker, rcpt="user@example.com"):
        # A message sent afterwards arrives; the refused one, sent before it, never did.
        after = self.marker()
        code, text = harness.send_mail(self.p.frontend.smtp_port, "a@example.org", [rcpt],
                                       "Subject: %s\r\n\r\nafter\r\n" % after)
        self.assertEqual(code, 250, text)
        self.assert_delivered_once(after, rcpt)
        self.assertNotIn(marker.encode(), delivered_text(self.p, rcpt))

    # ---- part 1: NUL in content ----

    def send_content(self, port, content, ehlo="client.test"):
        c = self.raw(port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO " + ehlo)[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<user@example.com>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(content)
        return c, c.reply()

    def test_nul_before_the_dot_is_refused_and_nothing_is_delivered(self):
        m = self.marker()
        before = metric(self.p.frontend.metrics_port, 'sluice_frontend_limit_hits_total{limit="nul_character"}')
        content = ("Subject: %s\r\n\r\nhello\r\n" % m).encode() + \
            b"\x00.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\nevil\r\n.\r\n"
        c, (code, text) = self.send_content(self.p.frontend.smtp_port, content)
        self.assertEqual((code, text), (550, "550 5.6.0 Error: NUL character in message content"))
        # The session goes on (a decision about one message, as for a bare LF).
        self.assertEqual(c.cmd("QUIT")[0], 221)
        self.assertEqual(metric(self.p.frontend.metrics_port,
                                'sluice_frontend_limit_hits_total{limit="nul_character"}'), before + 1)
        self.assert_never_delivered(m)

    def test_nul_after_the_dot_is_refused(self):
        m = self.marker()
        content = ("Subject: %s\r\n\r\nhello\r\n" % m).encode() + b".\x00\r\nRCPT TO:<user@example.com>\r\n.\r\n"
        _, (code, text) = self.send_content(self.p.frontend.smtp_port, content)
        self.assertEqual(code, 550, text)
        self.assertIn("5.6.0", text)
        self.assert_never_delivered(m)

    def test_the_filter_bridge_refuses_nul_itself(self):
        # Defence in depth: spoken to directly (loopback is in its mynetworks).
        m = self.marker()
        before = metric(self.p.bridge.metrics_port, 'sluice_filter_bridge_limit_hits_total{limit="nul_character"}')
        _, (code, text) = self.send_content(self.p.bridge.smtp_port,
                                            ("Subject: %s\r\n\r\na\x00b\r\n.\r\n" % m).encode())
        self.assertEqual(code, 550, text)
        self.assertIn("5.6.0", text)
        self.assertEqual(metric(self.p.bridge.metrics_port,
                                'sluice_filter_bridge_limit_hits_total{limit="nul_character"}'), before + 1)
        self.assert_never_delivered(m)

    def test_reinject_refuses_nul_itself(self):
        m = self.marker()
        before = metric(self.p.reinject.metrics_port, 'sluice_reinject_input_refusals_total{rule="nul_character"}')
        _, (code, text) = self.send_content(self.p.reinject.smtp_port,
                                            ("Subject: %s\r\n\r\n\x00\r\n.\r\n" % m).encode())
        self.assertEqual(code, 550, text)
        self.assertIn("5.6.0", text)
        self.assertEqual(metric(self.p.reinject.metrics_port,
                                'sluice_reinject_input_refusals_total{rule="nul_character"}'), before + 1)
        self.assert_never_delivered(m)

    # ---- part 2: unauthorized pipelining ----

    def assert_sync_refusal(self, c, after, input_fragment):
        code, text = c.reply()
        self.assertEqual((code, text), (554, SYNC))
        self.assertTrue(c.eof(10), "the session ends")
        log = harness.wait_for(lambda: re.search(r"event=improper_pipelining .*after=%s .*input=(\"[^\"]*\"|\S+)" % after,
                                                 self.new_log(self.p.frontend)), 10, what="the log line")
        self.assertIn(input_fragment, log.group(1))

    def test_pipelining_after_helo_is_refused_and_logged(self):
        before = metric(self.p.frontend.metrics_port, 'sluice_frontend_limit_hits_total{limit="unauth_pipelining"}')
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        c.send(b"HELO client.test\r\nMAIL FROM:<a@example.org>\r\n")
        self.assert_sync_refusal(c, "HELO", r"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(metric(self.p.frontend.metrics_port,
                                'sluice_frontend_limit_hits_total{limit="unauth_pipelining"}'), before + 1)

    def test_any_pipelining_in_a_helo_session_is_refused(self):
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("HELO client.test")[0], 250)
        # MAIL would be fine after EHLO; after HELO no PIPELINING was announced.
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<user@example.com>\r\n")
        self.assert_sync_refusal(c, "MAIL", "RCPT TO:<user@example.com>")

    def test_commands_behind_ehlo_before_its_reply_are_refused(self):
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n")
        self.assert_sync_refusal(c, "EHLO", "MAIL FROM")

    def test_commands_behind_noop_are_refused(self):
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        c.send(b"NOOP\r\nRSET\r\n")
        self.assert_sync_refusal(c, "NOOP", "RSET")

    def test_content_before_the_354_is_refused_and_nothing_is_delivered(self):
        m = self.marker()
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        c.send(("MAIL FROM:<a@example.org>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n"
                "Subject: %s\r\n\r\nno wait\r\n.\r\n" % m).encode())
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assert_sync_refusal(c, "DATA", "Subject: " + m)
        self.assert_never_delivered(m)

    def test_commands_after_the_final_dot_before_its_reply_are_refused_and_nothing_is_delivered(self):
        # What a smuggled second transaction looks like to the stage that finds the real end.
        m = self.marker()
        before_fb = metric(self.p.bridge.metrics_port, 'sluice_filter_bridge_limit_hits_total{limit="unauth_pipelining"}')
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<user@example.com>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(("Subject: %s\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@example.org>\r\n" % m).encode())
        self.assert_sync_refusal(c, "END-OF-MESSAGE", "MAIL FROM:<evil@example.org>")
        self.assert_never_delivered(m)
        # The filter-bridge never saw a dot it would have to answer.
        self.assertEqual(metric(self.p.bridge.metrics_port,
                                'sluice_filter_bridge_limit_hits_total{limit="unauth_pipelining"}'), before_fb)

    def test_rfc2920_pipelining_after_ehlo_and_quit_behind_the_dot_are_fine(self):
        m = self.marker()
        c = self.raw(self.p.frontend.smtp_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        # One group: MAIL, RCPT, RCPT, DATA (RFC 2920 §3.1), then the content.
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<user@example.com>\r\n"
               b"RCPT TO:<other@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        # The end of data with QUIT behind it, as Postfix's smtp client sends it.
        c.send(("Subject: %s\r\n\r\nbody\r\n.\r\nQUIT\r\n" % m).encode())
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(c.reply()[0], 221)
        self.assert_delivered_once(m)
        self.assert_delivered_once(m, "other@example.com")
        self.assertNotIn("improper_pipelining", self.new_log(self.p.frontend))

    def test_sluice_stages_talking_to_sluice_stages_never_trip_the_check(self):
        # Kept connections (the frontend's pool, the filter-bridge's next hop), XFORWARD, MAIL
        # and the first RCPT pipelined to a stage that announces PIPELINING, RSET first after a
        # transaction that ended early, refused recipients: all with the check on everywhere.
        fe_hits = 'sluice_frontend_limit_hits_total{limit="unauth_pipelining"}'
        before = metric(self.p.frontend.metrics_port, fe_hits)
        markers = []
        for session in range(3):
            s = smtplib.SMTP("127.0.0.1", self.p.frontend.smtp_port, local_hostname="client.test", timeout=30)
            try:
                s.ehlo("client.test")
                for n in range(3):
                    if n == 1:
                        s.mail("early@example.org")
                        s.rcpt("user@example.com")
                        s.rset()  # ends early: the next start on that connection begins with RSET
                    m = self.marker()
                    markers.append(m)
                    s.mail("a@example.org")
                    s.rcpt("user@example.com")
                    code, _ = s.rcpt("bad@@example.com")
                    self.assertGreaterEqual(code, 500)
                    code, text = s.data(("Subject: %s\r\n\r\nsession %d\r\n" % (m, session)).encode())
                    self.assertEqual(code, 250, text)
                s.quit()
            finally:
                s.close()
        for m in markers:
            self.assert_delivered_once(m)
        for stage in self.p.stages:
            self.assertNotIn("improper_pipelining", self.new_log(stage), stage.name)
        self.assertEqual(metric(self.p.frontend.metrics_port, fe_hits), before)
        self.assertEqual(metric(self.p.bridge.metrics_port,
                                'sluice_filter_bridge_limit_hits_total{limit="unauth_pipelining"}'), 0)
        self.assertEqual(metric(self.p.reinject.metrics_port,
                                'sluice_reinject_input_refusals_total{rule="unauth_pipelining"}'), 0)
        reused = metric(self.p.frontend.metrics_port, 'sluice_frontend_filter_connections_total{outcome="reused"}')
        self.assertGreater(reused, 0, "the frontend reused its filter connections")


class PregreetTest(harness.TempDirTest):
    """Talking before the greeting: judged on what arrived before it (a PROXY protocol header
    with the client's first command in the same write makes that certain), or during
    greet_wait_seconds after the greeting's first line."""

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)

    def test_a_command_before_the_greeting_is_refused(self):
        fe = start_frontend(self, self.filter.address,
                            config="proxy_protocol_trusted: [\"127.0.0.1/32\"]\nresolve_client_names: false\n")
        before = metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="unauth_pipelining"}')
        c = RawClient(fe.smtp_port, prefix=b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 25\r\nEHLO spam.test\r\n")
        self.addCleanup(c.close)
        code, text = c.reply()
        self.assertEqual((code, text), (554, SYNC))
        self.assertTrue(c.eof(10))
        self.assertRegex(fe.log(), r"event=improper_pipelining .*client=198\.51\.100\.7 after=CONNECT input=\"EHLO spam\.test\\r\\n\"")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="unauth_pipelining"}'),
                         before + 1)
        self.assertEqual(self.filter.connection_count(), 0)

    def test_greet_wait_catches_a_client_that_does_not_wait_for_the_last_line(self):
        # Loopback is taken out of mynetworks: clients in mynetworks never wait.
        fe = start_frontend(self, self.filter.address,
                            config="mynetworks: [\"192.0.2.0/24\"]\naccepted_domains: [\"example.com\"]\n"
                                   "resolve_client_names: false\nlimits:\n  greet_wait_seconds: 30\n")
        c = RawClient(fe.smtp_port)
        self.addCleanup(c.close)
        # The greeting's first line comes at once...
        while b"\r\n" not in c.buf:
            c.buf += c.sock.recv(4096)
        self.assertTrue(c.buf.startswith(b"220-frontend.test ESMTP"), c.buf)
        # ... and a client that talks now has not waited for the rest.
        c.send(b"EHLO spam.test\r\n")
        c.buf = c.buf[c.buf.index(b"\r\n") + 2:]
        code, text = c.reply()
        self.assertEqual((code, text), (554, SYNC))
        self.assertTrue(c.eof(10))
        self.assertRegex(fe.log(), r"event=improper_pipelining .*after=CONNECT")

    def test_greet_wait_lets_a_patient_client_through(self):
        self.filter.script = {}
        fe = start_frontend(self, self.filter.address,
                            config="mynetworks: [\"192.0.2.0/24\"]\naccepted_domains: [\"example.com\"]\n"
                                   "resolve_client_names: false\nlimits:\n  greet_wait_seconds: 1\n")
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="client.test", timeout=30)
        try:
            code, text = s.ehlo("client.test")
            self.assertEqual(code, 250)
            self.assertEqual(s.sendmail("a@example.org", ["user@example.com"], b"Subject: patient\r\n\r\nok\r\n"), {})
        finally:
            s.close()
        self.assertEqual(len(self.filter.messages()), 1)
        self.assertNotIn("improper_pipelining", fe.log())


class CheckOffTest(harness.TempDirTest):
    """forbid_unauth_pipelining: false gives the old behaviour: commands pipelined after HELO
    are answered in order."""

    def test_pipelining_after_helo_is_answered_with_the_check_off(self):
        flt = ScriptedSmtp()
        self.addCleanup(flt.stop)
        fe = start_frontend(self, flt.address, config="server:\n  forbid_unauth_pipelining: false\n")
        c = RawClient(fe.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        c.send(b"HELO client.test\r\nNOOP\r\nQUIT\r\n")
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 221])
        self.assertNotIn("improper_pipelining", fe.log())


if __name__ == "__main__":
    unittest.main()
