"""tests/integration/test_frontend_policy.py -- the Postfix policy delegation protocol with the
real policy servers from Debian, in front of Postfix's smtp-sink as the filter stage.

- postfix-policyd-spf-python (spawned per connection as Postfix's spawn(8) would, asking a
  dnsmasq on loopback that serves the test's SPF records): an SPF pass is accepted and its
  "Received-SPF: Pass" header (PREPEND) reaches the message above our Received:; an SPF fail
  is refused at RCPT with policyd-spf's own "550 5.7.23"; one connection serves many
  requests (reused across transactions and sessions).
- postgrey: a new triplet is greylisted at RCPT (DEFER_IF_PERMIT),
  ("450 4.2.0 ... Greylisted", postgrey's own DSN), the retry after the delay is accepted and
  carries postgrey's X-Greylist header.
- policy_protocol_states: asked at MAIL (delay_reject off) policyd-spf's refusal answers MAIL
  as "Sender address rejected"; asked at END-OF-MESSAGE it answers the final dot
  ("End-of-data rejected") and the filter stage never sees the message end;
- connections are reused, and closed by policy_service_request_limit,
  policy_service_max_idle_seconds and policy_service_max_ttl_seconds
  (sluice_frontend_policy_connections_total counts each);
- a policy server that does not answer in time (postgrey stopped with SIGSTOP) gives
  Postfix's "451 4.3.5 Server configuration problem", after policy_service_try_limit tries.

Never: uses any address but loopback; touches the machine's resolv.conf (policyd-spf gets
its own in a private mount namespace); leaves a process behind.
"""
import os
import signal
import smtplib
import time
import unittest
import urllib.request

from harness import SmtpSink, TempDirTest, wait_for
from test_frontend_support import start_frontend
from test_restriction_support import Dnsmasq, PolicySpawn, Postgrey, have_root_namespaces, private_dns_address

BODY = b"Subject: policy\r\n\r\nhello\r\n"


class FrontendPolicyTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.sink = self.track(SmtpSink(self.tmp))

    def frontend(self, services, limits="", extra="", name="frontend"):
        config = "\n".join([
            extra,
            "mynetworks: [127.0.0.1/32]",
            "accepted_domains: [example.com]",
            "resolve_client_names: false",
            "policy_services: [%s]" % ", ".join('"%s"' % s for s in services),
            "limits:",
            "  policy_service_timeout_seconds: 2",
            "  policy_service_retry_delay_seconds: 0",
            limits, ""])
        return start_frontend(self, "127.0.0.1:%d" % self.sink.port, config=config, name=name)

    def session(self, fe, source="127.0.0.2"):
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="client.test", timeout=30,
                         source_address=(source, 0))
        self.addCleanup(s.close)
        s.ehlo("client.test")
        return s

    def policyd_spf(self):
        """policyd-spf, spawned per connection, asking a dnsmasq that serves the SPF records."""
        dns = self.track(Dnsmasq(self.tmp, address=private_dns_address(), port=53, txt={
            "spf-pass.test": "v=spf1 ip4:127.0.0.2 -all",
            "spf-fail.test": "v=spf1 ip4:192.0.2.1 -all",
        }))
        conf = os.path.join(self.tmp, "policyd-spf.conf")
        with open(conf, "w") as f:
            # Debian's default skips 127/8: our clients are loopback addresses.
            f.write("debugLevel = 1\nTestOnly = 1\nHELO_reject = Fail\nMail_From_reject = Fail\n"
                    "PermError_reject = False\nTempError_Defer = False\nskip_addresses = 192.0.2.0/24\n")
        spf = PolicySpawn(self.tmp, ["/usr/bin/policyd-spf", conf], resolver=dns.address, name="policyd-spf")
        self.addCleanup(spf.stop)
        return dns, spf

    @unittest.skipUnless(have_root_namespaces(), "policyd-spf's private resolv.conf needs root and unshare")
    def test_policyd_spf_verdicts_and_received_spf(self):
        dns, spf = self.policyd_spf()
        fe = self.frontend([spf.address])

        s = self.session(fe)
        self.assertEqual(s.mail("alice@spf-pass.test")[0], 250)
        self.assertEqual(s.rcpt("bob@example.com")[0], 250)
        self.assertEqual(s.data(BODY)[0], 250)
        wait_for(lambda: len(self.sink.dumps()) == 1, what="the message at the sink")
        message = self.sink.dumps()[0].decode()
        header = message[message.index("Received-SPF:"):]
        self.assertRegex(header, r"^Received-SPF: Pass \(mailfrom\) identity=mailfrom; client-ip=127\.0\.0\.2; "
                                 r"helo=client\.test; envelope-from=alice@spf-pass\.test; receiver=")
        self.assertLess(message.index("Received-SPF:"), message.index("Received: from client.test"),
                        "PREPEND goes above our Received:")

        s.mail("mallory@spf-fail.test")
        code, text = s.rcpt("bob@example.com")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.23 <bob@example.com>: Recipient address rejected: Message rejected "
                                        b"due to: SPF fail - not authorized."), text)
        s.rset()
        # Another session: the connection to policyd-spf is reused (one per frontend thread at most).
        s2 = self.session(fe)
        s2.mail("alice@spf-pass.test")
        self.assertEqual(s2.rcpt("bob@example.com")[0], 250)
        self.assertLessEqual(spf.connections(), 2, "policy connections are reused")
        self.assertRegex(fe.log(), r"event=reject queue_id=NOQUEUE command=RCPT client=unknown\[127\.0\.0\.2\] "
                                   r"reply=\"550 5\.7\.23 .*from=<mallory@spf-fail\.test> to=<bob@example\.com> "
                                   r"proto=ESMTP helo=<client\.test> check=policy")
        self.assertGreater(dns.log().count("spf-pass.test"), 0, "policyd-spf asked our dnsmasq")

    @unittest.skipUnless(have_root_namespaces(), "policyd-spf's private resolv.conf needs root and unshare")
    def test_policy_at_mail_and_at_end_of_message(self):
        _, spf = self.policyd_spf()
        at_mail = self.frontend([spf.address], extra="delay_reject: false\npolicy_protocol_states: [MAIL]",
                                name="frontend-mail")
        s = self.session(at_mail)
        code, text = s.mail("mallory@spf-fail.test")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.23 <mallory@spf-fail.test>: Sender address rejected: Message rejected "
                                        b"due to: SPF fail"), text)
        self.assertEqual(s.mail("alice@spf-pass.test")[0], 250)
        self.assertEqual(s.rcpt("bob@example.com")[0], 250)
        self.assertRegex(at_mail.log(), r"event=reject queue_id=NOQUEUE command=MAIL .*check=policy")

        at_end = self.frontend([spf.address], extra="policy_protocol_states: [END-OF-MESSAGE]",
                               name="frontend-eom")
        s = self.session(at_end)
        self.assertEqual(s.mail("mallory@spf-fail.test")[0], 250)
        self.assertEqual(s.rcpt("bob@example.com")[0], 250, "not asked at RCPT")
        code, text = s.data(BODY)
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.23 <END-OF-MESSAGE>: End-of-data rejected: Message rejected due to: "
                                        b"SPF fail"), text)
        self.assertEqual(self.sink.dumps(), [], "the filter stage never saw the final dot")
        self.assertRegex(at_end.log(), r"event=reject queue_id=NOQUEUE command=END-OF-MESSAGE .*check=policy")

    def test_postgrey_greylists_then_accepts_the_retry(self):
        grey = self.track(Postgrey(self.tmp, delay=2))
        fe = self.frontend([grey.address])
        s = self.session(fe)
        s.mail("alice@example.org")
        code, text = s.rcpt("bob@example.com")
        self.assertEqual(code, 450)
        # postgrey writes DSN 4.2.0 itself when the request carries etrn_domain (Postfix >= 2.3).
        self.assertRegex(text.decode(), r"^4\.2\.0 <bob@example\.com>: Recipient address rejected: Greylisted, see "
                                        r"http://postgrey")
        s.rset()
        time.sleep(3)  # postgrey's delay (2 s) has passed: the retry is accepted
        s.mail("alice@example.org")
        self.assertEqual(s.rcpt("bob@example.com")[0], 250)
        self.assertEqual(s.data(BODY)[0], 250)
        wait_for(lambda: len(self.sink.dumps()) == 1, what="the message at the sink")
        self.assertIn("X-Greylist: delayed ", self.sink.dumps()[0].decode())
        self.assertIn("action=greylist, reason=new", grey.log())
        self.assertIn("action=pass, reason=triplet found", grey.log())

    def connections(self, fe, event):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % fe.metrics_port, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('sluice_frontend_policy_connections_total{event="%s"} ' % event):
                    return float(line.split()[-1])
        raise AssertionError("no policy_connections metric for " + event)

    def test_connections_are_reused_within_the_request_limit_max_idle_and_max_ttl(self):
        grey = self.track(Postgrey(self.tmp, delay=2))

        def two_requests(fe, pause=0):
            # postgrey answers both (greylisted, or passed once a triplet's delay is over):
            # what counts here is how many connections carried the two requests.
            s = self.session(fe)
            s.mail("alice@example.org")
            self.assertIn(s.rcpt("bob@example.com")[0], (250, 450))
            time.sleep(pause)
            self.assertIn(s.rcpt("carol@example.com")[0], (250, 450))

        reused = self.frontend([grey.address], name="frontend-reuse")
        two_requests(reused)
        self.assertEqual(self.connections(reused, "opened"), 1)
        self.assertEqual(self.connections(reused, "reused"), 1)

        one_each = self.frontend([grey.address], limits="  policy_service_request_limit: 1", name="frontend-limit")
        two_requests(one_each)
        self.assertEqual(self.connections(one_each, "opened"), 2)
        self.assertEqual(self.connections(one_each, "closed_request_limit"), 2)

        idle = self.frontend([grey.address], limits="  policy_service_max_idle_seconds: 1", name="frontend-idle")
        two_requests(idle, pause=1.5)  # longer than max_idle: the first connection is not reused
        self.assertEqual(self.connections(idle, "opened"), 2)
        self.assertEqual(self.connections(idle, "closed_max_idle"), 1)

        old = self.frontend([grey.address], limits="  policy_service_max_ttl_seconds: 1", name="frontend-ttl")
        two_requests(old, pause=1.5)  # older than max_ttl: not reused, though not idle that long
        self.assertEqual(self.connections(old, "opened"), 2)
        self.assertEqual(self.connections(old, "closed_max_ttl"), 1)

    def test_a_policy_server_that_does_not_answer_gives_451_4_3_5(self):
        grey = self.track(Postgrey(self.tmp, delay=2))
        fe = self.frontend([grey.address], limits="  policy_service_try_limit: 2")
        os.kill(grey.pid, signal.SIGSTOP)  # connections queue in the kernel; nothing answers
        self.addCleanup(lambda: os.kill(grey.pid, signal.SIGCONT) if grey.alive() else None)
        s = self.session(fe)
        s.mail("alice@example.org")
        self.assertEqual(s.rcpt("bob@example.com"), (451, b"4.3.5 Server configuration problem"))
        log = fe.log()
        self.assertEqual(log.count("event=policy_request_failed"), 2)
        self.assertRegex(log, r"event=reject .*reply=\"451 4\.3\.5 Server configuration problem\" .*check=policy")
        os.kill(grey.pid, signal.SIGCONT)
        # The server is back: the next request is answered (greylisted, as a new triplet).
        s.rset()
        s.mail("carol@example.org")
        self.assertEqual(s.rcpt("bob@example.com")[0], 450)


if __name__ == "__main__":
    unittest.main()
