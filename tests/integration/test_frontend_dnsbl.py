"""tests/integration/test_frontend_dnsbl.py -- DNS blocklists at connect (a small postscreen),
against Debian's dnsmasq on loopback serving the test's own zone (never a real blocklist),
with sluice-frontend in front of Postfix's smtp-sink.

- weights and threshold: a client listed by a weight-2 site is refused with
  "554 5.7.1 Service unavailable; client [addr] blocked using SITE" at RCPT (delay_reject),
  logged as a NOQUEUE line naming sender and recipient; one listed only by a weight-1 site
  (under the threshold 2) is accepted; an =127.0.0.[2..11] filter ignores an answer outside
  it; a negative weight allow-lists;
- answers are cached by TTL: a second session from the same client asks dnsmasq nothing;
- a client_access OK before the blocklists wins; mynetworks is never looked up;
- with delay_reject off, the refusal replaces the greeting;
- a DNS server that does not answer (dnsmasq stopped with SIGSTOP) makes every answer late
  after dnsbl_timeout_seconds: the client is not refused, and the answers count as late.

Never: uses any address but loopback; asks any DNS server but the test's dnsmasq.
"""
import os
import signal
import smtplib
import unittest
import urllib.request

from harness import SmtpSink, TempDirTest, wait_for
from test_frontend_support import RawClient, start_frontend
from test_restriction_support import Dnsmasq


class FrontendDnsblTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.sink = self.track(SmtpSink(self.tmp))
        # 127.0.0.2: listed by zen (weight 2). 127.0.0.3: listed by weak only (weight 1).
        # 127.0.0.4: listed by zen and by allow (weight -5). 127.0.0.5: filtered.bl answers
        # 127.0.0.20, outside its filter. 127.0.0.6: listed by zen, but client_access says OK.
        self.dns = self.track(Dnsmasq(self.tmp, ttl=300, a={
            "2.0.0.127.zen.example.test": "127.0.0.2",
            "3.0.0.127.weak.example.test": "127.0.0.2",
            "4.0.0.127.zen.example.test": "127.0.0.2",
            "4.0.0.127.allow.example.test": "127.0.0.2",
            "5.0.0.127.filtered.example.test": "127.0.0.20",
            "6.0.0.127.zen.example.test": "127.0.0.2",
            "1.0.0.127.zen.example.test": "127.0.0.2",
        }))
        self.access = os.path.join(self.tmp, "client_access")
        with open(self.access, "w") as f:
            f.write("127.0.0.6 OK\n")

    def answers(self, fe, result):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % fe.metrics_port, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('sluice_frontend_dnsbl_answers_total{result="%s"} ' % result):
                    return float(line.split()[-1])
        raise AssertionError("no dnsbl_answers metric for " + result)

    def frontend(self, delay_reject=True):
        config = "\n".join([
            "mynetworks: [127.0.0.1/32]",
            "accepted_domains: [example.com]",
            "resolve_client_names: false",
            "delay_reject: %s" % ("true" if delay_reject else "false"),
            "client_access: [%s]" % self.access,
            "dnsbl_sites: [zen.example.test*2, weak.example.test, 'allow.example.test*-5',",
            "              'filtered.example.test=127.0.0.[2..11]*2']",
            "dnsbl_threshold: 2",
            "dnsbl_resolver: %s" % self.dns.server,
            "limits:",
            "  dnsbl_timeout_seconds: 2",
            ""])
        return start_frontend(self, "127.0.0.1:%d" % self.sink.port, config=config)

    def rcpt(self, fe, source):
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="client.test", timeout=30,
                         source_address=(source, 0))
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertEqual(s.mail("sender@example.org")[0], 250)
        return s.rcpt("bob@example.com")

    def test_weights_threshold_filters_and_allow_lists(self):
        fe = self.frontend()
        self.assertEqual(self.rcpt(fe, "127.0.0.2"),
                         (554, b"5.7.1 Service unavailable; client [127.0.0.2] blocked using zen.example.test"))
        self.assertEqual(self.rcpt(fe, "127.0.0.3")[0], 250, "weight 1 is under the threshold 2")
        self.assertEqual(self.rcpt(fe, "127.0.0.4")[0], 250, "a negative weight allow-lists")
        self.assertEqual(self.rcpt(fe, "127.0.0.5")[0], 250, "an answer outside the filter does not list")
        self.assertEqual(self.rcpt(fe, "127.0.0.6")[0], 250, "client_access OK comes first")
        self.assertEqual(self.rcpt(fe, "127.0.0.7")[0], 250, "not listed anywhere")
        self.assertEqual(self.rcpt(fe, "127.0.0.1")[0], 250, "mynetworks is never looked up")
        self.assertEqual(self.dns.queries("1.0.0.127.zen.example.test"), 0)
        self.assertRegex(fe.log(), r"event=reject queue_id=NOQUEUE command=RCPT client=unknown\[127\.0\.0\.2\] "
                                   r"reply=\"554 5\.7\.1 Service unavailable; client \[127\.0\.0\.2\] blocked using "
                                   r"zen\.example\.test\" from=<sender@example\.org> to=<bob@example\.com> "
                                   r"proto=ESMTP helo=<client\.test> check=dnsbl")

    def test_answers_are_cached_by_ttl(self):
        fe = self.frontend()
        self.assertEqual(self.rcpt(fe, "127.0.0.2")[0], 554)
        asked = self.dns.queries("2.0.0.127.zen.example.test")
        self.assertEqual(asked, 1)
        self.assertEqual(self.rcpt(fe, "127.0.0.2")[0], 554)
        self.assertEqual(self.rcpt(fe, "127.0.0.3")[0], 250)
        self.assertEqual(self.rcpt(fe, "127.0.0.3")[0], 250)
        self.assertEqual(self.dns.queries("2.0.0.127.zen.example.test"), 1, "the second session used the cache")
        self.assertEqual(self.dns.queries("3.0.0.127.zen.example.test"), 1, "a negative answer is cached too")

    def test_without_delay_reject_the_refusal_replaces_the_greeting(self):
        fe = self.frontend(delay_reject=False)
        c = RawClient(fe.smtp_port, source_address="127.0.0.2")
        self.addCleanup(c.close)
        self.assertEqual(c.reply(), (554, "554 5.7.1 Service unavailable; client [127.0.0.2] blocked using "
                                          "zen.example.test"))
        self.assertTrue(c.eof())
        ok = RawClient(fe.smtp_port, source_address="127.0.0.3")
        self.addCleanup(ok.close)
        self.assertEqual(ok.reply()[0], 220)

    def test_a_silent_dns_server_means_not_listed_after_the_timeout(self):
        fe = self.frontend()
        self.assertEqual(self.rcpt(fe, "127.0.0.2")[0], 554)
        self.assertEqual(self.answers(fe, "listed"), 1)
        os.kill(self.dns.pid, signal.SIGSTOP)
        self.addCleanup(lambda: os.kill(self.dns.pid, signal.SIGCONT) if self.dns.alive() else None)
        # 127.0.0.8 is asked of nobody: its four sites answer late (dnsbl_timeout_seconds 2).
        self.assertEqual(self.rcpt(fe, "127.0.0.8")[0], 250)
        self.assertEqual(self.answers(fe, "late"), 4)
        os.kill(self.dns.pid, signal.SIGCONT)


if __name__ == "__main__":
    unittest.main()
