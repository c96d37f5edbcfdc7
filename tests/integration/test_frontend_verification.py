"""tests/integration/test_frontend_verification.py -- unknown recipients refused at RCPT
(Postfix reject_unverified_recipient), against real final destinations.

The whole pipeline: sluice-frontend (verify_recipients, clients on loopback are NOT in its
mynetworks) -> filter-bridge -> reinject, whose delivery route the probes take:

- Dovecot's LMTP server (static passwd-file userdb): a known user is accepted and the mail
  arrives; an unknown user gets "550 5.1.1 ... undeliverable address: <Dovecot's reply>" at
  RCPT and the filter-bridge sees no connection at all; the second attempt is answered from
  reinject's cache without a new probe; with Dovecot stopped, a recipient not cached gets
  "450 4.1.1 ... Address verification in progress" (never a 5xx) while a cached one is still
  accepted; a client in mynetworks is not verified.
- Postfix's smtp-sink as an SMTP next hop refusing every RCPT with 5xx: refused at RCPT,
  with the sink's reply; the same sink accepting (restarted without -f) makes a new address
  deliverable.

Never: leaves a process running (every process is stopped by PID).
"""
import os
import smtplib
import unittest

import harness
from test_filter_bridge_support import scrape

# The verification config these tests use (README "Recipient verification" shows it).
FRONTEND_YAML = """
accepted_domains: [example.com]
mynetworks: [192.0.2.0/24]   # loopback clients are outsiders here
verify_recipients: true
verify_service: 127.0.0.1:%d
limits:
  address_verify_poll_count: 2
  address_verify_poll_delay_seconds: 1
"""

REINJECT_YAML = """
limits:
  verify_probe_timeout_seconds: 5
  verify_probe_concurrency: 4
"""


def rcpt(port, recipient, sender="sender@client.test"):
    """(code, text) of RCPT TO:<recipient> in a fresh session, which then ends."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=60)
    try:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        assert code == 250, text
        return s.rcpt(recipient)
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            s.close()


def total(samples, name):
    """Sum of every sample of a metric family."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


class Pipeline:
    """reinject (delivering to `deliver`) <- filter-bridge <- frontend(s) with verification."""

    def __init__(self, test, tmp, deliver):
        test_track = test.class_track
        self.reinject = test_track(harness.Stage(
            "sluice-reinject",
            ["--queue_dir=" + os.path.join(tmp, "queue"), "--deliver=" + deliver,
             "--config=" + harness.write_yaml(os.path.join(tmp, "reinject.yaml"), REINJECT_YAML)],
            tmp, "reinject"))
        self.bridge = test_track(harness.Stage(
            "sluice-filter-bridge", ["--next_hop=127.0.0.1:%d" % self.reinject.smtp_port], tmp, "filter-bridge"))
        config = harness.write_yaml(os.path.join(tmp, "frontend.yaml"), FRONTEND_YAML % self.reinject.admin_port)
        self.frontend = test_track(harness.Stage(
            "sluice-frontend", ["--filter=127.0.0.1:%d" % self.bridge.smtp_port, "--config=" + config],
            tmp, "frontend"))

    def bridge_connections(self):
        return total(scrape(self.bridge), "sluice_filter_bridge_connections_total")

    def probes(self):
        return total(scrape(self.reinject), "sluice_reinject_verify_probes_total")


class VerifyAgainstDovecotLmtpTest(harness.ClassTempDirTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.dovecot = cls.class_track(harness.DovecotLmtp(cls.tmp, ["bob@example.com", "carol@example.com"]))
            cls.p = Pipeline(cls, cls.tmp, "lmtp:127.0.0.1:%d" % cls.dovecot.port)
        except BaseException:
            cls._any_failed = True
            cls.tearDownClass()
            raise

    def test_a_known_user_is_accepted_and_the_mail_arrives(self):
        body = "From: sender@client.test\r\nSubject: verified\r\n\r\nhello bob\r\n"
        code, text = harness.send_mail(self.p.frontend.smtp_port, "sender@client.test", ["bob@example.com"], body)
        self.assertEqual(code, 250, text)
        harness.wait_for(lambda: [m for m in self.dovecot.mail("bob@example.com") if b"Subject: verified" in m],
                         30, what="the message in bob's Maildir")

    def test_an_unknown_user_is_refused_at_rcpt_before_any_filter_connection(self):
        before = self.p.bridge_connections()
        code, text = rcpt(self.p.frontend.smtp_port, "nobody@example.com")
        self.assertEqual(code, 550, text)
        self.assertEqual(text.decode(), "5.1.1 <nobody@example.com>: Recipient address rejected: undeliverable "
                                        "address: 550 5.1.1 <nobody@example.com> User doesn't exist: "
                                        "nobody@example.com")
        self.assertEqual(self.p.bridge_connections(), before)  # the filter stage never heard of it
        self.p.frontend.wait_log(r"event=recipient_verification .*to=nobody@example.com result=undeliverable")
        # A check of the RCPT restriction list: the refusal is one NOQUEUE line like any other.
        self.p.frontend.wait_log(r"event=reject queue_id=NOQUEUE command=RCPT .*to=<nobody@example\.com> .*"
                                 r"check=verify_recipient")

    def test_the_second_attempt_is_answered_from_the_cache_without_a_probe(self):
        code, _ = rcpt(self.p.frontend.smtp_port, "ghost@example.com")
        self.assertEqual(code, 550)
        probes = self.p.probes()
        hits = scrape(self.p.reinject)['sluice_reinject_verify_cache_lookups_total{result="hit"}']
        code, text = rcpt(self.p.frontend.smtp_port, "ghost@example.com")
        self.assertEqual(code, 550, text)
        self.assertIn(b"undeliverable address: 550 5.1.1", text)
        samples = scrape(self.p.reinject)
        self.assertEqual(total(samples, "sluice_reinject_verify_probes_total"), probes)
        self.assertEqual(samples['sluice_reinject_verify_cache_lookups_total{result="hit"}'], hits + 1)

    def test_a_client_in_mynetworks_is_not_verified(self):
        # A second frontend that trusts loopback (its default mynetworks): Postfix's
        # permit_mynetworks before reject_unverified_recipient.
        config = harness.write_yaml(os.path.join(self.tmp, "trusting.yaml"),
                                    "verify_recipients: true\nverify_service: 127.0.0.1:%d\n"
                                    % self.p.reinject.admin_port)
        trusting = self.class_track(harness.Stage(
            "sluice-frontend", ["--filter=127.0.0.1:%d" % self.p.bridge.smtp_port, "--config=" + config],
            self.tmp, "frontend-trusting"))
        probes = self.p.probes()
        code, text = rcpt(trusting.smtp_port, "unchecked@example.com")
        self.assertEqual(code, 250, text)
        self.assertEqual(self.p.probes(), probes)
        trusting.stop()

    def test_z_with_dovecot_stopped_an_unverified_recipient_gets_450_never_550(self):
        # Named to run last in the class: it stops Dovecot.
        code, _ = rcpt(self.p.frontend.smtp_port, "carol@example.com")
        self.assertEqual(code, 250)  # verified while Dovecot is up: cached
        self.dovecot.stop()
        code, text = rcpt(self.p.frontend.smtp_port, "dave@example.com")
        self.assertEqual(code, 450, text)
        self.assertEqual(text.decode(), "4.1.1 <dave@example.com>: Recipient address rejected: unverified "
                                        "address: Address verification in progress")
        self.p.reinject.wait_log(r"event=verify_probe to=dave@example.com .*result=failed")
        # The cached positive answer still stands while the destination is down.
        code, text = rcpt(self.p.frontend.smtp_port, "carol@example.com")
        self.assertEqual(code, 250, text)


class VerifyAgainstSmtpNextHopTest(harness.TempDirTest):

    def test_a_next_hop_refusing_rcpt_is_a_550_and_one_accepting_it_a_250(self):
        port = harness.free_port()
        refusing = self.track(harness.SmtpSink(self.tmp, ["-f", "RCPT", "-B", "550 5.1.1 No such user here"],
                                               port=port, name="sink-refusing"))
        p = Pipeline(self, self.tmp, "smtp:127.0.0.1:%d" % port)
        before = p.bridge_connections()
        code, text = rcpt(p.frontend.smtp_port, "someone@example.com")
        self.assertEqual(code, 550, text)
        self.assertEqual(text.decode(), "5.1.1 <someone@example.com>: Recipient address rejected: undeliverable "
                                        "address: 550 5.1.1 No such user here")
        self.assertEqual(p.bridge_connections(), before)
        refusing.stop()
        self.track(harness.SmtpSink(self.tmp, port=port, name="sink-accepting"))
        code, text = rcpt(p.frontend.smtp_port, "else@example.com")
        self.assertEqual(code, 250, text)

    def class_track(self, p):  # Pipeline's helper, per test here
        return self.track(p)


if __name__ == "__main__":
    unittest.main()
