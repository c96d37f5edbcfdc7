"""tests/integration/test_control_tls.py -- trust between stages by mutual TLS on the SMTP hop (issue 6).

A test CA (openssl CLI, at test time) signs a certificate for each stage; another CA signs a
rogue one. Reinject and the filter-bridge trust no loopback address (mynetworks and
xforward_hosts 192.0.2.0/24) but trust_verified_client_cert, with STARTTLS whose ca_file is
the cluster CA. The frontend (filter_tls) and the bridge (next_hop_tls) present their client
certificates after EHLO: a message from 127.0.0.2 goes through, and reinject's queue record
names the original client (XFORWARD honoured by certificate). A bridge that presents no
certificate, or one from the other CA, is refused at MAIL with 554 5.7.1 (and XFORWARD with
550 when tried), and nothing is queued; so is a client of the bridge itself that is neither in
its mynetworks nor verified. A hop whose ca_file requires TLS does not go on without it
(451 4.3.0 and a log line); without ca_file, a hop to a server that offers no STARTTLS goes
on in plaintext; a missing certificate file stops the stage at start.

Reinject delivers into a "Maildir" that is a plain file, so queued messages stay in the queue
to be looked at.

Never: uses a fixed port or a non-loopback address; leaves a process running.
"""
import os
import smtplib
import ssl
import subprocess
import unittest

import grpc

import harness
from harness import Stage
from test_control_support import SharedStagesTest, Smtp, TestCa, tls_yaml, write

CLIENT = "127.0.0.2"
NOT_LOOPBACK = "[192.0.2.0/24]"


def stage_tls_config(cert, key, ca, extra=""):
    """A stage that trusts upstreams by certificate only: STARTTLS with our CA."""
    return ("server:\n  trust_verified_client_cert: true\n" +
            tls_yaml("smtp_tls", cert, key, ca, indent="  ") +
            "mynetworks: %s\nxforward_hosts: %s\n" % (NOT_LOOPBACK, NOT_LOOPBACK) + extra)


class StageTrustByCertificateTest(SharedStagesTest):

    @classmethod
    def start_stages(cls, owner):
        cls.ca = TestCa(cls.tmp, "cluster-ca")
        cls.other_ca = TestCa(cls.tmp, "other-ca")
        cls.reinject_cert = cls.ca.issue("reinject")
        cls.bridge_cert = cls.ca.issue("filter-bridge")
        cls.frontend_cert = cls.ca.issue("frontend")
        cls.rogue_cert = cls.other_ca.issue("rogue")
        blocker = write(os.path.join(cls.tmp, "maildir"), "")  # deliveries defer: records stay queued
        config = write(os.path.join(cls.tmp, "reinject.yaml"),
                       stage_tls_config(cls.reinject_cert[0], cls.reinject_cert[1], cls.ca.cert))
        cls.reinject = Stage("sluice-reinject", ["--queue_dir=" + os.path.join(cls.tmp, "queue"),
                                                 "--deliver=maildir:" + blocker, "--config=" + config],
                             cls.tmp, "reinject")
        owner.addCleanup(cls.reinject.stop)
        cls.m = harness.grpc_stubs()

    def start_bridge(self, name, next_hop_tls):
        config = write(os.path.join(self.tmp, name + ".yaml"),
                       stage_tls_config(self.bridge_cert[0], self.bridge_cert[1], self.ca.cert, next_hop_tls))
        bridge = Stage("sluice-filter-bridge", ["--next_hop=127.0.0.1:%d" % self.reinject.smtp_port,
                                                "--config=" + config], self.tmp, name)
        self.addCleanup(bridge.stop)
        return bridge

    def start_frontend(self, name, bridge, filter_tls):
        config = write(os.path.join(self.tmp, name + ".yaml"), filter_tls)
        fe = Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % bridge.smtp_port, "--config=" + config],
                   self.tmp, name)
        self.addCleanup(fe.stop)
        return fe

    def queued(self, sender):
        with grpc.insecure_channel(self.reinject.admin) as ch:
            stub = self.m["queue_pb2_grpc"].QueueStub(ch)
            return list(stub.List(self.m["queue_pb2"].ListQueueRequest(sender=sender), timeout=5).records)

    def send(self, fe, sender):
        """One message from CLIENT through `fe`: the (code, text) of the first refusal or of the end of data."""
        try:
            return harness.send_mail(fe.smtp_port, sender, ["user@example.com"],
                                     "Subject: tls %s\r\n\r\nbody\r\n" % sender, source_address=CLIENT)
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error

    def test_certificates_of_the_cluster_ca_carry_xforward_and_relaying(self):
        bridge = self.start_bridge("filter-bridge", tls_yaml("next_hop_tls", *self.bridge_cert, ca=self.ca.cert))
        fe = self.start_frontend("frontend", bridge, tls_yaml("filter_tls", *self.frontend_cert, ca=self.ca.cert))
        code, text = self.send(fe, "trusted@example.org")
        self.assertEqual(code, 250, text)
        records = harness.wait_for(lambda: self.queued("trusted@example.org"), 20, what="the queue record")
        self.assertEqual(len(records), 1)
        rec = records[0]
        # XFORWARD was honoured (by certificate: no loopback address is trusted here).
        self.assertEqual(rec.original_client.client_address, CLIENT)
        self.assertTrue(rec.session_id)
        self.assertEqual(rec.peer_address, "127.0.0.1")
        with grpc.insecure_channel(self.reinject.admin) as ch:
            entry = self.m["queue_pb2_grpc"].QueueStub(ch).Get(
                self.m["queue_pb2"].GetQueueEntryRequest(queue_id=rec.queue_id), timeout=5)
        self.assertIn("[%s]" % CLIENT, entry.headers)  # the frontend's Received: names the client
        self.assertNotIn("event=downstream_failed", bridge.log())
        self.assertNotIn("event=proxy_failed", fe.log())

    def assertBridgeRefusedDownstream(self, next_hop_tls, name):
        bridge = self.start_bridge(name, next_hop_tls)
        fe = self.start_frontend("frontend-" + name, bridge, tls_yaml("filter_tls", *self.frontend_cert,
                                                                      ca=self.ca.cert))
        sender = "%s@example.org" % name
        code, text = self.send(fe, sender)
        # Over TLS, but not trusted: reinject does not offer XFORWARD to the bridge and refuses
        # its MAIL (554 5.7.1), which the bridge passes on as the downstream's answer.
        self.assertEqual(code, 554, text)
        self.assertIn(b"5.7.1", text)
        self.reinject.wait_log(r"event=refused .*peer=127\.0\.0\.1 reason=not_in_mynetworks_nor_verified_certificate "
                               r"tls=true")
        self.assertEqual(self.queued(sender), [])

    def test_a_bridge_without_a_client_certificate_is_refused(self):
        self.assertBridgeRefusedDownstream(tls_yaml("next_hop_tls", ca=self.ca.cert), "bridge-nocert")

    def test_a_bridge_with_a_certificate_of_another_ca_is_refused(self):
        self.assertBridgeRefusedDownstream(tls_yaml("next_hop_tls", *self.rogue_cert, ca=self.ca.cert),
                                           "bridge-rogue")

    def smtp_to_reinject(self, cert=None):
        """A plain client of reinject after STARTTLS (verifying reinject by the CA), with `cert`."""
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        if cert:
            ctx.load_cert_chain(*cert)
        s = smtplib.SMTP("127.0.0.1", self.reinject.smtp_port, local_hostname="direct.test", timeout=20)
        self.addCleanup(s.close)
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        s.starttls(context=ctx)
        s.ehlo()
        return s

    def test_reinject_decides_by_the_certificate_at_mail_and_xforward(self):
        for name, cert in (("no certificate", None), ("other CA", self.rogue_cert)):
            with self.subTest(name):
                s = self.smtp_to_reinject(cert)
                code, text = s.docmd("XFORWARD", "ADDR=10.1.2.3")
                self.assertEqual(code, 550, text)
                code, text = s.mail("direct@example.org")
                self.assertEqual(code, 554, text)
                self.assertIn(b"5.7.1", text)
        s = self.smtp_to_reinject(self.bridge_cert)  # the control: the cluster CA's certificate
        self.assertEqual(s.docmd("XFORWARD", "ADDR=10.1.2.3")[0], 250)
        self.assertEqual(s.mail("direct@example.org")[0], 250)
        s.rset()

    def test_a_hold_mark_from_a_certificate_trusted_peer_holds_without_a_key(self):
        # No hold_mark_key_file here: the verified certificate is what proves the peer is our
        # filter stage, so its unsigned mark holds the message.
        s = self.smtp_to_reinject(self.bridge_cert)
        self.assertEqual(s.mail("held-by-cert@example.org")[0], 250)
        self.assertEqual(s.rcpt("user@example.com")[0], 250)
        code, text = s.data("Subject: held\r\nX-Sluice-Hold: held by a trusted filter\r\n\r\nbody\r\n")
        self.assertEqual(code, 250, text)
        records = self.queued("held-by-cert@example.org")
        self.assertEqual([(r.state, r.hold_reason) for r in records],
                         [(self.m["queue_pb2"].HOLD, "held by a trusted filter")])

    def test_the_bridge_refuses_relaying_from_an_untrusted_peer_without_a_certificate(self):
        bridge = self.start_bridge("filter-bridge-direct", tls_yaml("next_hop_tls", *self.bridge_cert,
                                                                    ca=self.ca.cert))
        s = smtplib.SMTP("127.0.0.1", bridge.smtp_port, local_hostname="direct.test", timeout=20)
        self.addCleanup(s.close)
        s.ehlo()
        code, text = s.mail("direct@example.org")
        self.assertEqual(code, 554, text)
        self.assertIn(b"5.7.1", text)
        bridge.wait_log(r"event=refused .*reason=not_in_mynetworks_nor_verified_certificate tls=false")

    def test_a_hop_whose_ca_file_requires_tls_does_not_go_on_without_it(self):
        # A bridge that offers no STARTTLS (loopback trusted by default; it presents its own
        # certificate to reinject) behind a frontend that requires TLS.
        plain_config = write(os.path.join(self.tmp, "filter-bridge-plain.yaml"),
                             tls_yaml("next_hop_tls", *self.bridge_cert, ca=self.ca.cert))
        plain = Stage("sluice-filter-bridge", ["--next_hop=127.0.0.1:%d" % self.reinject.smtp_port,
                                               "--config=" + plain_config], self.tmp, "filter-bridge-plain")
        self.addCleanup(plain.stop)
        fe = self.start_frontend("frontend-requires-tls", plain, tls_yaml("filter_tls", ca=self.ca.cert))
        code, text = self.send(fe, "plaintext@example.org")
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.3.0", text)
        line = fe.wait_log(r"event=proxy_failed .*step=starttls.*").group(0)
        self.assertIn("does not offer STARTTLS", line)
        # Without ca_file the client certificate is offered when STARTTLS is, and plaintext
        # goes on when it is not (opportunistic).
        fe_opportunistic = self.start_frontend("frontend-opportunistic", plain,
                                               tls_yaml("filter_tls", *self.frontend_cert))
        code, text = self.send(fe_opportunistic, "opportunistic@example.org")
        self.assertEqual(code, 250, text)
        # A bridge whose certificate is not of our CA fails the handshake: the same answer.
        rogue_config = write(os.path.join(self.tmp, "rogue-bridge.yaml"),
                             "server:\n" + tls_yaml("smtp_tls", *self.rogue_cert, indent="  "))
        rogue = Stage("sluice-filter-bridge", ["--next_hop=127.0.0.1:%d" % self.reinject.smtp_port,
                                               "--config=" + rogue_config], self.tmp, "filter-bridge-rogue")
        self.addCleanup(rogue.stop)
        fe2 = self.start_frontend("frontend-verifies", rogue, tls_yaml("filter_tls", ca=self.ca.cert))
        code, text = self.send(fe2, "unverified@example.org")
        self.assertEqual(code, 451, text)
        line = fe2.wait_log(r"event=proxy_failed .*step=starttls.*").group(0)
        self.assertIn("certificate verify failed", line)
        self.assertEqual(self.queued("plaintext@example.org") + self.queued("unverified@example.org"), [])

    def test_a_missing_client_certificate_file_is_a_config_error_at_start(self):
        missing = os.path.join(self.tmp, "no-such.crt")
        for binary, key in (("sluice-frontend", "filter_tls"), ("sluice-filter-bridge", "next_hop_tls")):
            config = write(os.path.join(self.tmp, "bad-%s.yaml" % key), tls_yaml(key, missing, missing))
            r = subprocess.run([os.path.join(harness.BIN_DIR, binary), "--config=" + config,
                                "--smtp_listen=127.0.0.1:0", "--admin_listen=127.0.0.1:0",
                                "--metrics_listen=127.0.0.1:0"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, binary)
            self.assertIn(key, r.stderr, binary)
            self.assertIn("no-such.crt", r.stderr, binary)


if __name__ == "__main__":
    unittest.main()
