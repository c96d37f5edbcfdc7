"""tests/integration/test_filter_bridge_downstream.py -- what the next hop says reaches the
sender unchanged, and a next hop that dies costs a 4xx, never a message (issue 4).

sluice-filter-bridge (no filters) talks to:
  * an aiosmtpd server in this process that refuses chosen recipients (5xx and 4xx) and
    chosen messages at end of data: each refusal reaches the SMTP client byte for byte, and
    only accepted recipients get the message;
  * a scripted SMTP server (test_frontend_support.ScriptedSmtp) that refuses DATA, or closes
    the connection partway through the content the bridge streams to it;
  * sluice-reinject, killed (SIGKILL) while the sender is still in DATA: the sender gets
    451 4.3.0 and, after a restart on the same queue directory, nothing is queued.
Also: XFORWARD facts given to the bridge go on to a next hop that announces XFORWARD.

Never: leaves a process, thread or socket running.
"""
import os
import shutil
import signal
import smtplib
import tempfile
import unittest

import grpc

import harness
import test_filter_bridge_support as fbs
from test_frontend_support import ScriptedSmtp, RawClient

MESSAGE = (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: downstream\r\n"
           b"Message-ID: <downstream@example.org>\r\n\r\nbody line\r\n.dot line\r\n")


class DownstreamRefusalTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.sink = fbs.SinkSmtp(
            refuse_rcpt={"nobody@example.com": "550 5.1.1 <nobody@example.com>: Recipient address rejected: "
                                               "User unknown in virtual mailbox table",
                         "full@example.com": "452 4.2.2 <full@example.com>: Mailbox full, try later"},
            refuse_content=lambda raw: ("554 5.7.0 Downstream refuses this content (marker seen)"
                                        if b"X-Refuse-Me: yes" in raw else None))
        try:
            cls.bridge = fbs.start_bridge(cls.tmp, cls.sink.address, {"upstream_admin_port": 0})
        except BaseException:
            cls.sink.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.bridge.stop()
        cls.sink.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_refused_recipients_reach_the_sender_unchanged(self):
        s = smtplib.SMTP("127.0.0.1", self.bridge.smtp_port, local_hostname="client.test", timeout=30)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertEqual(s.mail("a@example.org")[0], 250)
        code, text = s.rcpt("nobody@example.com")
        self.assertEqual((code, text.decode()), (550, "5.1.1 <nobody@example.com>: Recipient address rejected: "
                                                      "User unknown in virtual mailbox table"))
        code, text = s.rcpt("full@example.com")
        self.assertEqual((code, text.decode()), (452, "4.2.2 <full@example.com>: Mailbox full, try later"))
        self.assertEqual(s.rcpt("b@example.com")[0], 250)
        raw = MESSAGE.replace(b"downstream@", b"refused-rcpt@")
        code, text = s.data(raw)
        self.assertEqual(code, 250, text)
        s.quit()
        got = [m for m in self.sink.received() if b"<refused-rcpt@example.org>" in m[2]]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][1], ["b@example.com"])  # only the accepted recipient
        # Byte for byte, under the trace header of a chain without filters.
        self.assertEqual(got[0][2], b"X-Sluice-Filter: filter-bridge.test; no filters\r\n" + raw)

    def test_refused_message_reaches_the_sender_unchanged(self):
        before = len(self.sink.received())
        code, text = harness.send_mail(self.bridge.smtp_port, "a@example.org", ["b@example.com"],
                                       b"X-Refuse-Me: yes\r\n" + MESSAGE)
        self.assertEqual((code, text.decode()), (554, "5.7.0 Downstream refuses this content (marker seen)"))
        self.assertEqual(len(self.sink.received()), before)


class DownstreamFailureTest(harness.TempDirTest):

    def stage(self, process):
        # A cleanup, not track(): cleanups run last-registered first, so the clients a test
        # opens later are closed before the stage drains (no drain waits on an open client).
        self.addCleanup(process.stop)
        return process

    def scripted(self, script=None, **kw):
        server = ScriptedSmtp(script, **kw)
        self.addCleanup(server.stop)
        bridge = self.stage(fbs.start_bridge(self.tmp, server.address, {"upstream_admin_port": 0}))
        return server, bridge

    def test_downstream_refusing_data_is_passed_on_and_never_a_250(self):
        server, bridge = self.scripted({"data": "451 4.3.0 Not now: queue busy"})
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.com>")[0], 250)
        self.assertEqual(c.cmd("DATA"), (451, "451 4.3.0 Not now: queue busy"))
        self.assertEqual(server.messages(), [])

    def test_downstream_dying_mid_data_gives_4xx_and_delivers_nothing(self):
        # The next hop closes the connection after 64 KiB of the content the bridge streams.
        server, bridge = self.scripted({"data_drop_after": 65536})
        big = MESSAGE + (b"z" * 998 + b"\r\n") * 1000  # ~1 MB
        code, text = harness.send_mail(bridge.smtp_port, "a@example.org", ["b@example.com"], big)
        self.assertEqual(code, 451, text)
        self.assertEqual(text.decode(), "4.3.0 Error: queue file write error")
        self.assertEqual(server.messages(), [])
        self.assertTrue(server.conns[0].aborted_data)
        self.assertRegex(bridge.log(), r"event=downstream_failed [^\n]*step=end_of_data")

    def test_xforward_facts_go_on_to_the_next_hop(self):
        server, bridge = self.scripted()
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        code, ehlo = c.cmd("EHLO frontend.test")
        self.assertIn("XFORWARD", ehlo)
        self.assertEqual(c.cmd("XFORWARD NAME=mail.example.net ADDR=192.0.2.7 PORT=40123 HELO=mail.example.net")[0],
                         250)
        self.assertEqual(c.cmd("XFORWARD PROTO=ESMTPS IDENT=1ABCDEF SOURCE=REMOTE")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.com>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(MESSAGE + b".\r\n")
        self.assertEqual(c.reply()[0], 250)
        commands = server.conns[0].commands
        xf = " ".join(x for x in commands if x.startswith("XFORWARD"))
        for fact in ("NAME=mail.example.net", "ADDR=192.0.2.7", "PORT=40123", "HELO=mail.example.net",
                     "PROTO=ESMTPS", "IDENT=1ABCDEF", "SOURCE=REMOTE"):
            self.assertIn(fact, xf)
        # XFORWARD before MAIL, never inside the transaction.
        self.assertLess(max(i for i, x in enumerate(commands) if x.startswith("XFORWARD")),
                        next(i for i, x in enumerate(commands) if x.startswith("MAIL")))

    def test_xforward_before_every_mail_and_pipelined_with_it(self):
        # Postfix forgets XFORWARD at a transaction's end: each MAIL needs it again, and each
        # transaction's own facts go on. With PIPELINING announced, XFORWARD, MAIL and the
        # first RCPT arrive in one write; the next-hop connection is kept for the second.
        server, bridge = self.scripted(pipelining=True)
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO frontend.test")[0], 250)
        for i in range(2):
            self.assertEqual(c.cmd("XFORWARD NAME=mail%d.example.net ADDR=192.0.2.%d HELO=mail.example.net" % (i, i + 7))[0],
                             250)
            self.assertEqual(c.cmd("MAIL FROM:<a%d@example.org>" % i)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.com>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(MESSAGE + b".\r\n")
            self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        harness.wait_for(lambda: server.conns and server.conns[0].closed, timeout=10, what="downstream QUIT")
        self.assertEqual(len(server.conns), 1)  # one downstream connection for both
        commands = server.conns[0].commands
        verbs = [x.split(" ", 1)[0] for x in commands]
        self.assertEqual(verbs, ["EHLO", "XFORWARD", "MAIL", "RCPT", "DATA", "XFORWARD", "MAIL", "RCPT", "DATA",
                                 "QUIT"])
        self.assertIn("ADDR=192.0.2.7", commands[1])
        self.assertIn("ADDR=192.0.2.8", commands[5])
        self.assertEqual([x.split(" ", 1)[0] for x in server.conns[0].pipelined], ["MAIL", "RCPT", "MAIL", "RCPT"])

    def test_session_without_mail_leaves_the_next_hop_cleanly(self):
        # The next hop is opened while the upstream greets; a session that never sends MAIL
        # must end that connection with QUIT, not leave it hanging.
        server, bridge = self.scripted()
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO frontend.test")[0], 250)
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        harness.wait_for(lambda: server.conns and server.conns[0].closed, timeout=10, what="downstream closed")
        self.assertEqual(len(server.conns), 1)
        self.assertEqual([x.split(" ", 1)[0] for x in server.conns[0].commands], ["EHLO", "QUIT"])

    def test_xforward_only_from_xforward_hosts(self):
        server = ScriptedSmtp()
        self.addCleanup(server.stop)
        bridge = self.stage(fbs.start_bridge(self.tmp, server.address, {
            "upstream_admin_port": 0, "xforward_hosts": ["192.0.2.0/24"]}))
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        code, ehlo = c.cmd("EHLO frontend.test")
        self.assertEqual(code, 250)
        self.assertNotIn("XFORWARD", ehlo)
        code, _ = c.cmd("XFORWARD ADDR=192.0.2.7 NAME=spoofed.example")
        self.assertEqual(code // 100, 5)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertFalse([x for x in server.conns[0].commands if x.startswith("XFORWARD")])

    def test_envelope_parameters_pass_through_verbatim(self):
        server, bridge = self.scripted()
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO frontend.test")[0], 250)
        mail = "MAIL FROM:<a@example.org> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=QQ+2Bx"
        rcpt = "RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@example.com"
        self.assertEqual(c.cmd(mail)[0], 250)
        self.assertEqual(c.cmd(rcpt)[0], 250)
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertEqual(server.conns[0].commands[1:3], [mail, rcpt])

    def test_next_hop_down_gives_451_at_the_first_rcpt(self):
        bridge = self.stage(fbs.start_bridge(self.tmp, "127.0.0.1:%d" % fbs.free_port(), {"upstream_admin_port": 0}))
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO frontend.test")[0], 250)
        # MAIL goes on with the first recipient (one write): that is where the next hop is missed.
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.com>"), (451, "451 4.3.0 Error: queue file write error"))
        self.assertRegex(bridge.log(), r"event=downstream_failed [^\n]*step=connect reason=connect")
        metrics = fbs.scrape(bridge)
        self.assertGreaterEqual(metrics['sluice_filter_bridge_downstream_failures_total{reason="connect"}'], 1)

    def test_message_larger_than_the_memory_bound_is_relayed_byte_exact(self):
        # 64 KiB in memory, the rest in a temporary file under spool_dir.
        server = ScriptedSmtp()
        self.addCleanup(server.stop)
        spool = os.path.join(self.tmp, "spool")
        os.makedirs(spool)
        bridge = self.stage(fbs.start_bridge(self.tmp, server.address, {
            "upstream_admin_port": 0, "spool_dir": spool, "limits": {"spool_memory_bytes": 65536}}))
        lines = [b"Subject: big", b""] + [(b"." if i % 7 == 0 else b"") + b"line %06d " % i + b"y" * 60
                                          for i in range(40000)]
        raw = b"\r\n".join(lines) + b"\r\n"  # ~3 MB, every 7th line starts with a dot
        code, text = harness.send_mail(bridge.smtp_port, "a@example.org", ["b@example.com"], raw)
        self.assertEqual(code, 250, text)
        got = server.messages()[0]  # dot-stuffed as on the wire
        self.assertEqual(got, b"X-Sluice-Filter: filter-bridge.test; no filters\r\n" +
                         raw.replace(b"\r\n.", b"\r\n.."))
        self.assertEqual(os.listdir(spool), [])  # the spool file is unlinked from the start

    def test_drain_lets_the_transaction_in_flight_finish(self):
        server, bridge = self.scripted()
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        c.start_data(self, sender="a@example.org", rcpt="b@example.com")
        c.send(MESSAGE)
        bridge.signal(signal.SIGTERM)
        harness.wait_for(lambda: not harness.port_open(bridge.smtp_port), timeout=10, what="listener closed")
        c.send(b"more content after SIGTERM\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        # Between transactions a draining session ends (421 4.3.2, sent at once).
        self.assertIn(c.cmd("QUIT")[0], (221, 421))
        self.assertEqual(bridge.proc.wait(20), 0)
        self.assertEqual(len(server.messages()), 1)

    def test_reinject_killed_mid_data_gives_4xx_and_nothing_is_queued(self):
        reinject = self.stage(fbs.start_reinject(self.tmp))
        bridge = self.stage(fbs.start_bridge(self.tmp, "127.0.0.1:%d" % reinject.smtp_port,
                                             {"upstream_admin_port": 0}))
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        c.start_data(self, sender="a@example.org", rcpt="b@example.com")
        c.send(MESSAGE + b"first half of the content\r\n")
        # reinject is in DATA too: the bridge opened it at once.
        reinject.kill()
        c.send(b"second half\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 451, text)
        self.assertIn("4.3.0", text)
        # A restarted reinject on the same queue finds nothing: no message, not even a part.
        again = self.stage(fbs.start_reinject(self.tmp, name="reinject-again", queue_dir=reinject.queue_dir))
        stubs = harness.grpc_stubs()
        with grpc.insecure_channel(again.admin) as ch:
            listed = stubs["queue_pb2_grpc"].QueueStub(ch).List(stubs["queue_pb2"].ListQueueRequest(), timeout=10)
        self.assertEqual(list(listed.records), [])
        self.assertEqual(fbs.maildir_messages(reinject.maildir, "b@example.com"), [])


if __name__ == "__main__":
    unittest.main()
