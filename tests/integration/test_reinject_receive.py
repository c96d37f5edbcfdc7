"""tests/integration/test_reinject_receive.py -- sluice-reinject as the after-filter smtpd.

One sluice-reinject with mynetworks 127.0.0.1 and 127.0.0.3 and xforward_hosts 127.0.0.1 only,
delivering into a Maildir. Checks, with real SMTP sessions from loopback aliases: a client
outside mynetworks refused at connect (554 5.7.1); XFORWARD from an allowed client that is not
an xforward host refused with Postfix's 550 5.7.0 while its mail is still taken; the XFORWARD
client in the queue record (Queue.Get over gRPC) and in the log lines, our Received: naming the
real peer; the message in the Maildir byte-exact apart from the added header fields; the in-band
hold mark (X-Sluice-Hold:) honoured only when its MAC verifies with the hold_mark_key_file
(whoever sends it: a trusted filter stage that passes a sender's forged mark on, unsigned or
signed with another key, holds nothing), and never delivered; a message that already passed
50 hops (Received: fields, Postfix hopcount_limit) refused as a loop.

Never: leaves a process running (stopped by PID in tearDownClass).
"""
import email
import os
import re
import smtplib
import socket
import unittest

import grpc

import harness

TRUSTED = "127.0.0.1"      # mynetworks and xforward_hosts (the filter stage)
OUTSIDER = "127.0.0.2"     # neither
UNTRUSTED = "127.0.0.3"    # mynetworks only


def queue_id_of(text):
    m = re.search(r"queued as (\S+)", text.decode() if isinstance(text, bytes) else text)
    assert m, "no queue id in %r" % text
    return m.group(1)


def split_first_field(raw):
    """(first header field with its folded lines, rest) of a message as bytes."""
    end = 0
    while True:
        nl = raw.index(b"\r\n", end) + 2
        end = nl
        if raw[end:end + 1] not in (b" ", b"\t"):
            return raw[:end], raw[end:]


class ReinjectReceiveTest(harness.ClassTempDirTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.maildir = os.path.join(cls.tmp, "mail")
        try:
            key = harness.write_hold_mark_key(cls.tmp)
            config = harness.write_yaml(os.path.join(cls.tmp, "reinject.yaml"), "hold_mark_key_file: %s\n" % key)
            cls.rj = cls.class_track(harness.Stage(
                "sluice-reinject", ["--queue_dir=" + os.path.join(cls.tmp, "queue"), "--deliver=maildir:" + cls.maildir,
                                    "--mynetworks=%s/32,%s/32" % (TRUSTED, UNTRUSTED),
                                    "--xforward_hosts=%s/32" % TRUSTED, "--config=" + config], cls.tmp, "reinject"))
        except BaseException:
            cls._any_failed = True
            super().tearDownClass()
            raise
        cls.stubs = harness.grpc_stubs()
        cls.channel = grpc.insecure_channel(cls.rj.admin)
        cls.queue = cls.stubs["queue_pb2_grpc"].QueueStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        super().tearDownClass()

    def session(self, source):
        s = smtplib.SMTP("127.0.0.1", self.rj.smtp_port, local_hostname="filter.test", timeout=30,
                         source_address=(source, 0))
        s.ehlo("filter.test")
        return s

    def send(self, source, sender, rcpt, body, xforward=None):
        s = self.session(source)
        try:
            if xforward:
                code, text = s.docmd("XFORWARD", xforward)
                self.assertEqual(code, 250, text)
            code, text = s.mail(sender)
            self.assertEqual(code, 250, text)
            code, text = s.rcpt(rcpt)
            self.assertEqual(code, 250, text)
            code, text = s.data(body)
            self.assertEqual(code, 250, text)
            return queue_id_of(text)
        finally:
            s.quit()

    def delivered(self, rcpt, count=1):
        d = os.path.join(self.maildir, rcpt, "new")

        def files():
            names = sorted(os.listdir(d)) if os.path.isdir(d) else []
            return names if len(names) >= count else None
        names = harness.wait_for(files, 20, what="delivery to " + rcpt)
        out = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out

    def get(self, queue_id):
        return self.queue.Get(self.stubs["queue_pb2"].GetQueueEntryRequest(queue_id=queue_id), timeout=5)

    def test_client_outside_mynetworks_is_refused_at_connect(self):
        with socket.create_connection(("127.0.0.1", self.rj.smtp_port), timeout=10,
                                      source_address=(OUTSIDER, 0)) as s:
            greeting = s.makefile("rb").readline()
        self.assertTrue(greeting.startswith(b"554 5.7.1"), greeting)
        self.rj.wait_log(r"event=refused peer=%s reason=not_in_mynetworks" % re.escape(OUTSIDER))
        # The same port serves an allowed client.
        with socket.create_connection(("127.0.0.1", self.rj.smtp_port), timeout=10,
                                      source_address=(UNTRUSTED, 0)) as s:
            self.assertTrue(s.makefile("rb").readline().startswith(b"220 "))

    def test_xforward_from_a_host_not_authorized_is_refused_but_the_session_goes_on(self):
        s = self.session(UNTRUSTED)
        try:
            self.assertNotIn("xforward", s.esmtp_features)
            code, text = s.docmd("XFORWARD", "NAME=spoof.example ADDR=192.0.2.66 IDENT=FORGED1")
            self.assertEqual(code, 550)
            self.assertTrue(text.startswith(b"5.7.0"), text)
            code, text = s.mail("ok@example.org")
            self.assertEqual(code, 250, text)
            s.rcpt("xf-refused@example.com")
            code, text = s.data("Subject: after a refused XFORWARD\r\n\r\nbody\r\n")
            self.assertEqual(code, 250, text)
            queue_id = queue_id_of(text)
        finally:
            s.quit()
        raw = self.delivered("xf-refused@example.com")[0]
        self.assertNotIn(b"192.0.2.66", raw)
        log = self.rj.log()
        line = re.search(r"event=received queue_id=%s .*" % queue_id, log).group(0)
        self.assertIn("peer=%s" % UNTRUSTED, line)
        self.assertNotIn("FORGED1", line)
        self.assertNotIn("192.0.2.66", line)

    def test_xforward_client_is_in_the_record_and_the_log_and_received_names_the_real_peer(self):
        # Held (a signed X-Sluice-Hold) so the entry stays in the queue to be looked at.
        body = ("Subject: traced\r\nX-Sluice-Hold: %s\r\nMessage-ID: <t1@example.org>\r\n\r\nhello\r\n"
                % harness.hold_mark("orig@example.org", "inspect"))
        queue_id = self.send(TRUSTED, "orig@example.org", "traced@example.com", body,
                             xforward="NAME=client.example ADDR=192.0.2.7 PORT=4242 PROTO=ESMTP "
                                      "HELO=helo.example IDENT=SESSXF1")
        entry = self.get(queue_id)
        oc = entry.record.original_client
        self.assertEqual(oc.client_address, "192.0.2.7")
        self.assertEqual(oc.client_name, "client.example")
        self.assertEqual(oc.client_port, 4242)
        self.assertEqual(oc.helo, "helo.example")
        self.assertEqual(entry.record.session_id, "SESSXF1")
        self.assertEqual(entry.record.peer_address, TRUSTED)
        first = entry.headers.split("\r\n\t")[0]
        self.assertTrue(first.startswith("Received: from filter.test"), entry.headers[:200])
        self.assertIn("[%s]" % TRUSTED, entry.headers.split("\r\n")[0] + entry.headers.split("\r\n")[1])
        self.assertNotIn("192.0.2.7", entry.headers)
        log = self.rj.log()
        self.assertRegex(log, r"event=received queue_id=%s session=SESSXF1 peer=%s orig_client=client\.example\[192\.0\.2\.7\]"
                         % (queue_id, re.escape(TRUSTED)))
        self.assertRegex(log, r"event=queued queue_id=%s .*orig_client=192\.0\.2\.7" % queue_id)
        # Released, delivered: the delivery line names the original client too.
        self.queue.Release(self.stubs["queue_pb2"].QueueIdsRequest(queue_ids=[queue_id]), timeout=5)
        raw = self.delivered("traced@example.com")[0]
        self.assertNotIn(b"192.0.2.7", raw)
        self.rj.wait_log(r"event=delivery queue_id=%s .*status=sent .*orig_client=192\.0\.2\.7" % queue_id)

    def test_message_is_in_the_maildir_byte_exact_apart_from_added_fields(self):
        original = ("From: Alice <alice@example.org>\r\nTo: exact@example.com\r\nSubject: exact copy\r\n"
                    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <exact1@example.org>\r\n"
                    "X-Folded: first\r\n\tsecond line of the field\r\n\r\n"
                    "line one\r\n.leading dot\r\n\r\n  indented\r\n" + "x" * 990 + "\r\nlast line\r\n")
        self.send(TRUSTED, "alice@example.org", "exact@example.com", original)
        raw = self.delivered("exact@example.com")[0]
        prefix = b"Return-Path: <alice@example.org>\r\nDelivered-To: exact@example.com\r\n"
        self.assertTrue(raw.startswith(prefix), raw[:200])
        received, rest = split_first_field(raw[len(prefix):])
        self.assertTrue(received.startswith(b"Received: from filter.test"), received)
        self.assertIn(b"[127.0.0.1]", received)
        self.assertEqual(rest, original.encode())

    def test_missing_message_id_and_date_are_added_at_the_end_of_the_header(self):
        original = "From: a@example.org\r\nSubject: bare\r\n\r\nbody\r\n"
        queue_id = self.send(TRUSTED, "a@example.org", "bare@example.com", original)
        raw = self.delivered("bare@example.com")[0]
        msg = email.message_from_bytes(raw)
        self.assertIn(queue_id, msg["Message-ID"])
        self.assertIsNotNone(msg["Date"])
        head, body = raw.split(b"\r\n\r\n", 1)
        self.assertTrue(head.split(b"\r\n")[-2].startswith(b"Message-ID: <"))
        self.assertTrue(head.split(b"\r\n")[-1].startswith(b"Date: "))
        self.assertIn(b"\r\nFrom: a@example.org\r\nSubject: bare\r\nMessage-ID:", head)
        self.assertEqual(body, b"body\r\n")

    def test_signed_hold_mark_holds_until_released(self):
        body = "Subject: held\r\nX-Sluice-Hold: %s\r\n\r\nheld body\r\n" % harness.hold_mark("h@example.org",
                                                                                          "spam score 12")
        queue_id = self.send(TRUSTED, "h@example.org", "held@example.com", body)
        qpb = self.stubs["queue_pb2"]
        listed = self.queue.List(qpb.ListQueueRequest(state=qpb.HOLD), timeout=5)
        held = [r for r in listed.records if r.queue_id == queue_id]
        self.assertEqual(len(held), 1)
        self.assertEqual(held[0].hold_reason, "spam score 12")
        on_disk = harness.queue_log_bytes(os.path.join(self.tmp, "queue"))  # held from the commit on
        self.assertIn(queue_id.encode(), on_disk)
        self.assertIn(b"spam score 12", on_disk)
        self.assertNotIn("X-Sluice-Hold", self.get(queue_id).headers)
        # Nothing is delivered while held (the queue runs: another message passes meanwhile).
        self.send(TRUSTED, "h@example.org", "held-probe@example.com", "Subject: probe\r\n\r\nx\r\n")
        self.delivered("held-probe@example.com")
        self.assertFalse(os.path.isdir(os.path.join(self.maildir, "held@example.com")))
        released = self.queue.Release(qpb.QueueIdsRequest(queue_ids=[queue_id]), timeout=5)
        self.assertEqual(list(released.affected), [queue_id])
        raw = self.delivered("held@example.com")[0]
        self.assertNotIn(b"X-Sluice-Hold", raw)
        self.assertIn(b"held body", raw)

    def test_mail_looping_past_the_hop_limit_is_refused(self):
        def with_hops(n, rcpt):
            hops = "".join("Received: from hop%d.example by hop%d.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                           % (i, i + 1) for i in range(n))
            return harness.send_mail(self.rj.smtp_port, "loop@example.org", [rcpt],
                                     hops + "Subject: hops %d\r\n\r\nbody\r\n" % n, source_address=TRUSTED)
        code, text = with_hops(50, "looping@example.com")
        self.assertEqual((code, text), (554, b"5.4.6 Error: too many hops"))
        self.rj.wait_log(r"event=too_many_hops .*received=50")
        code, text = with_hops(49, "not-looping@example.com")
        self.assertEqual(code, 250, text)
        self.delivered("not-looping@example.com")
        self.assertFalse(os.path.isdir(os.path.join(self.maildir, "looping@example.com")))

    def test_unsigned_or_wrongly_signed_hold_mark_from_the_filter_peer_is_stripped_and_ignored(self):
        # The filter stage's own address (xforward_hosts): a Postfix or amavisd filter stage
        # passes a sender's mark on unchanged; a mark signed for another sender, or with
        # another key, is no better.
        marks = {"unsigned": "forged by a sender",
                 "other-sender": harness.hold_mark("someone-else@example.org", "replayed"),
                 "other-key": harness.hold_mark("f@example.org", "wrong key", secret="another-secret-0123456789abcdefgh"),
                 "bad-mac": "spam; mac=" + "0" * 64}
        for name, mark in marks.items():
            with self.subTest(name):
                rcpt = "not-held-%s@example.com" % name
                body = "Subject: not held\r\nX-Sluice-Hold: %s\r\n\r\nbody\r\n" % mark
                queue_id = self.send(TRUSTED, "f@example.org", rcpt, body)
                raw = self.delivered(rcpt)[0]
                self.assertNotIn(b"X-Sluice-Hold", raw)
                self.assertFalse(os.path.exists(os.path.join(self.tmp, "queue", "hold", queue_id)))
                self.assertRegex(self.rj.log(), r"event=received queue_id=%s .*held=false" % queue_id)
        self.assertRegex(self.rj.log(), r"event=hold_mark_ignored .*reason=\"hold mark MAC does not verify\"")
        self.assertRegex(self.rj.log(), r"event=hold_mark_ignored .*reason=\"hold mark without a MAC\"")

    def test_hold_mark_from_an_untrusted_peer_is_stripped_and_ignored(self):
        body = "Subject: not held\r\nX-Sluice-Hold: forged by a client\r\n\r\nbody\r\n"
        queue_id = self.send(UNTRUSTED, "u@example.org", "not-held@example.com", body)
        raw = self.delivered("not-held@example.com")[0]
        self.assertNotIn(b"X-Sluice-Hold", raw)
        self.assertNotIn(b"forged by a client", raw)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "queue", "hold", queue_id)))
        self.assertRegex(self.rj.log(), r"event=received queue_id=%s .*held=false" % queue_id)


if __name__ == "__main__":
    unittest.main()
