"""tests/integration/test_filter_bridge_milter_events.py -- milter events as they happen (issue 15).

sluice-filter-bridge with a milter (test_filter_bridge_support.MilterServer: the libmilter wire
protocol over TCP, in this process) and an aiosmtpd next hop that records every RCPT it is
sent. The upstream talks to the bridge directly, with XFORWARD before each MAIL as a pooling
frontend (or Postfix's before-filter smtpd) does; one test goes through sluice-frontend.
  * a milter refusing one of two recipients: 550 (its reply) at that RCPT only, the
    recipient never reaches the next hop, the message reaches the other -- and the milter
    saw that RCPT (with its {rcpt_addr} macro) before any content;
  * a milter refusing the sender: its reply at MAIL; the next hop sees no transaction;
  * a milter hanging at RCPT: with on_failure tempfail, 451 4.7.1 at that RCPT and at every
    later one (Postfix's persistent default reply), nothing relayed; with on_failure accept,
    the milter is skipped and the message delivered;
  * accept at MAIL skips the milter for the rest of the message; discard at RCPT discards it;
  * SMFIP_NORCPT: no RCPT events; SMFIP_NR_RCPT: none answered, none waited for;
  * two transactions of one bridge session from two clients (XFORWARD): each milter
    conversation's connect and HELO name that transaction's client.

Never: waits on a hung milter past its 1 s timeout; leaves a stage running.
"""
import shutil
import smtplib
import tempfile
import unittest

import harness
import test_filter_bridge_support as fbs

MESSAGE = (b"From: Alice <alice@example.com>\r\n"
           b"Subject: milter events\r\n"
           b"\r\n"
           b"Hello.\r\n")


class MilterEventsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, name, script=None, protocol=0, on_failure="tempfail"):
        """A sink, a milter with `script`, and a bridge between them; returns (bridge, milter, sink)."""
        sink = fbs.SinkSmtp()
        self.addCleanup(sink.stop)
        milter = fbs.MilterServer(script, protocol=protocol)
        self.addCleanup(milter.stop)
        bridge = fbs.start_bridge(self.tmp, sink.address,
                                  {"upstream_admin_port": 0,
                                   "filters": [fbs.milter_filter("m", milter.address, on_failure=on_failure)]},
                                  name=name)
        self.addCleanup(bridge.stop)
        return bridge, milter, sink

    def upstream(self, bridge, client="192.0.2.7", name="client.example", helo="helo.example", ident="SESS1"):
        """An SMTP session to the bridge, XFORWARD naming `client` sent (as before each MAIL)."""
        s = smtplib.SMTP("127.0.0.1", bridge.smtp_port, local_hostname="frontend.test", timeout=30)
        self.addCleanup(s.close)
        s.ehlo("frontend.test")
        self.xforward(s, client, name, helo, ident)
        return s

    def xforward(self, s, client, name, helo, ident):
        code, text = s.docmd("XFORWARD", "NAME=%s ADDR=%s PORT=4711 PROTO=ESMTP HELO=%s IDENT=%s"
                             % (name, client, helo, ident))
        self.assertEqual(code, 250, text)

    def test_a_milter_refusing_one_of_two_recipients_refuses_that_rcpt_only(self):
        bridge, milter, sink = self.start("fb-rcpt", {"rcpt:bad@example.net": "550 5.1.1 <bad@example.net>: "
                                                                               "no such user here"})
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("good@example.net")[0], 250)
        self.assertEqual(s.rcpt("bad@example.net"), (550, b"5.1.1 <bad@example.net>: no such user here"))
        # The milter heard the refused RCPT at once, before any content existed.
        self.assertEqual(milter.seen(), ["connect", "helo", "mail", "rcpt", "rcpt"])
        code, text = s.data(MESSAGE)
        self.assertEqual(code, 250, text)
        s.quit()
        # The next hop never heard of the refused recipient; the other got the message.
        self.assertEqual(sink.rcpt_commands, ["good@example.net"])
        self.assertEqual([(m[0], m[1]) for m in sink.received()], [("alice@example.com", ["good@example.net"])])
        self.assertTrue(sink.received()[0][2].endswith(MESSAGE))
        # Each RCPT came with its own macros, then the content on the same conversation.
        rcpts = milter.seen_calls("rcpt")
        self.assertEqual([c["args"][0] for c in rcpts], ["<good@example.net>", "<bad@example.net>"])
        self.assertEqual([c["macros"].get("{rcpt_addr}") for c in rcpts], ["good@example.net", "bad@example.net"])
        self.assertEqual(milter.connections, 1)
        self.assertEqual(milter.seen()[5:], ["data", "header", "header", "eoh", "body", "eom"])
        log = bridge.log()
        self.assertRegex(log, r"event=filter_refused [^\n]*filter=m step=rcpt recipient=bad@example\.net "
                              r"reply=\"550 5\.1\.1 <bad@example\.net>: no such user here\"")
        self.assertRegex(log, r"event=transaction [^\n]*nrcpt=1 [^\n]*verdict=deliver")

    def test_through_the_frontend_the_client_gets_the_refusal_at_that_rcpt(self):
        sink = fbs.SinkSmtp()
        self.addCleanup(sink.stop)
        milter = fbs.MilterServer({"rcpt:bad@example.net": "reject"})
        self.addCleanup(milter.stop)
        bridge = fbs.start_bridge(self.tmp, sink.address, {"upstream_admin_port": 0,
                                                           "filters": [fbs.milter_filter("m", milter.address)]},
                                  name="fb-via-frontend")
        self.addCleanup(bridge.stop)
        fe = harness.Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % bridge.smtp_port], self.tmp, "fe-milter")
        self.addCleanup(fe.stop)
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="client.test", timeout=30,
                         source_address=("127.0.0.2", 0))
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("good@example.net")[0], 250)
        self.assertEqual(s.rcpt("bad@example.net"), (550, b"5.7.1 Command rejected"))
        self.assertEqual(s.data(MESSAGE)[0], 250)
        s.quit()
        self.assertEqual(sink.rcpt_commands, ["good@example.net"])
        # The milter's client is the frontend's client, not the frontend.
        connect = milter.seen_calls("connect")[0]
        self.assertEqual((connect["args"][1], connect["args"][3]), ("4", "127.0.0.2"))
        self.assertEqual(milter.seen_calls("helo")[0]["args"], ["client.test"])

    def test_a_milter_refusing_the_sender_answers_mail(self):
        bridge, milter, sink = self.start("fb-mail", {"mail": "550 5.7.1 Sender refused by the test milter"})
        s = self.upstream(bridge)
        self.assertEqual(s.mail("spammer@example.org"), (550, b"5.7.1 Sender refused by the test milter"))
        s.quit()
        self.assertEqual(milter.seen(), ["connect", "helo", "mail"])
        self.assertEqual(milter.seen_calls("mail")[0]["args"], ["<spammer@example.org>"])
        self.assertEqual(sink.rcpt_commands, [])
        self.assertEqual(sink.received(), [])
        self.assertRegex(bridge.log(), r"event=filter_refused [^\n]*filter=m step=mail reply=\"550 5\.7\.1 Sender")

    def test_a_milter_hanging_at_rcpt_with_on_failure_tempfail_gives_451_at_rcpt(self):
        bridge, milter, sink = self.start("fb-hang-tf", {"rcpt": "hang"})
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        busy = (451, b"4.7.1 Service unavailable - try again later")
        self.assertEqual(s.rcpt("first@example.net"), busy)
        # Postfix's milter_default_action: every later command of the transaction too.
        self.assertEqual(s.rcpt("second@example.net"), busy)
        s.quit()
        self.assertEqual(sink.rcpt_commands, [])
        self.assertEqual(milter.seen(), ["connect", "helo", "mail", "rcpt"])
        self.assertRegex(bridge.log(), r"event=filter_failure [^\n]*filter=m reason=timeout [^\n]*step=rcpt")

    def test_a_milter_hanging_at_rcpt_with_on_failure_accept_is_skipped(self):
        bridge, milter, sink = self.start("fb-hang-acc", {"rcpt": "hang"}, on_failure="accept")
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("first@example.net")[0], 250)
        self.assertEqual(s.rcpt("second@example.net")[0], 250)
        self.assertEqual(s.data(MESSAGE)[0], 250)
        s.quit()
        self.assertEqual(sink.rcpt_commands, ["first@example.net", "second@example.net"])
        self.assertEqual(milter.seen(), ["connect", "helo", "mail", "rcpt"])
        self.assertRegex(bridge.log(), r'event=transaction [^\n]*verdict=deliver [^\n]*filters="m=error"')

    def test_accept_at_mail_skips_the_milter_for_the_rest_of_the_message(self):
        bridge, milter, sink = self.start("fb-accept", {"mail": "accept", "rcpt": "reject"})
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        self.assertEqual(s.data(MESSAGE)[0], 250)
        s.quit()
        self.assertEqual(milter.seen(), ["connect", "helo", "mail"])
        self.assertEqual(len(sink.received()), 1)
        self.assertRegex(bridge.log(), r'event=transaction [^\n]*filters="m=accept"')

    def test_discard_at_rcpt_discards_the_message(self):
        bridge, milter, sink = self.start("fb-discard", {"rcpt": "discard"})
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        self.assertEqual(s.data(MESSAGE), (250, b"2.0.0 Ok: discarded"))
        s.quit()
        self.assertEqual(sink.received(), [])
        self.assertNotIn("eom", milter.seen())
        self.assertRegex(bridge.log(), r'event=transaction [^\n]*verdict=discard [^\n]*filters="m=discard"')

    def test_protocol_flags_no_rcpt_events_and_no_rcpt_replies(self):
        bridge, milter, sink = self.start("fb-norcpt", protocol=fbs.SMFIP_NORCPT)
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        self.assertEqual(s.data(MESSAGE)[0], 250)
        s.quit()
        self.assertNotIn("rcpt", milter.seen())
        self.assertIn("eom", milter.seen())
        # SMFIP_NR_RCPT: the milter answers no RCPT (this one would hang if asked); the
        # bridge must not wait for one, so the message goes through well within the timeout.
        bridge, milter, sink = self.start("fb-nrrcpt", {"rcpt": "hang"}, protocol=fbs.SMFIP_NR_RCPT)
        s = self.upstream(bridge)
        self.assertEqual(s.mail("alice@example.com")[0], 250)
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        self.assertEqual(s.data(MESSAGE)[0], 250)
        s.quit()
        self.assertEqual(milter.seen()[:5], ["connect", "helo", "mail", "rcpt", "data"])
        self.assertIn("eom", milter.seen())
        self.assertNotIn("filter_failure", bridge.log())

    def test_each_transaction_of_one_session_connects_as_its_own_client(self):
        bridge, milter, sink = self.start("fb-pooled")
        s = self.upstream(bridge, client="192.0.2.7", name="one.example", helo="helo-one.example", ident="SESSA")
        for rcpt in ("one@example.net",):
            self.assertEqual(s.mail("alice@example.com")[0], 250)
            self.assertEqual(s.rcpt(rcpt)[0], 250)
            self.assertEqual(s.data(MESSAGE)[0], 250)
        self.xforward(s, "198.51.100.9", "two.example", "helo-two.example", "SESSB")
        self.assertEqual(s.mail("bob@example.org")[0], 250)
        self.assertEqual(s.rcpt("two@example.net")[0], 250)
        self.assertEqual(s.data(MESSAGE)[0], 250)
        s.quit()
        connects = milter.seen_calls("connect")
        self.assertEqual([(c["args"][0], c["args"][1], c["args"][3]) for c in connects],
                         [("one.example", "4", "192.0.2.7"), ("two.example", "4", "198.51.100.9")])
        self.assertEqual([c["macros"].get("{client_addr}") for c in connects], ["192.0.2.7", "198.51.100.9"])
        self.assertEqual([c["args"] for c in milter.seen_calls("helo")], [["helo-one.example"], ["helo-two.example"]])
        self.assertEqual([c["macros"].get("i") for c in milter.seen_calls("mail")], ["SESSA", "SESSB"])
        # One conversation per transaction.
        self.assertEqual(sorted({c["connection"] for c in milter.seen_calls()}), [1, 2])
        self.assertEqual(len(sink.received()), 2)


if __name__ == "__main__":
    unittest.main()
