"""tests/integration/test_frontend_actions.py -- what the checks' actions do to a message that
goes on, through the whole sluice pipeline (frontend -> filter-bridge -> reinject -> Maildir):

- HOLD (here from sender_access; a policy server's HOLD is the same verdict): the message is
  accepted and lands in reinject's hold queue with the check's reason (the filter-bridge takes
  the frontend's mark above its Received: as its own hold, signed with hold_mark_key_file),
  delivered to nobody until released;
- DISCARD: the client is told "250 2.0.0 Ok: discarded", the filter stage never sees the
  message, nothing is delivered;
- PREPEND: the header reaches the mailbox above the frontend's Received:;
- a sender's own X-Sluice-Hold below our Received: holds nothing.

Never: uses any address but loopback; leaves a process behind.
"""
import os
import smtplib
import unittest

import grpc

from harness import Pipeline, TempDirTest, grpc_stubs, wait_for, write_hold_mark_key, write_yaml


class FrontendActionsTest(TempDirTest):

    def setUp(self):
        super().setUp()
        access = os.path.join(self.tmp, "sender_access")
        with open(access, "w") as f:
            f.write("held@example.org HOLD quarantined by sender_access\n"
                    "drop@example.org DISCARD\n"
                    "tagged@example.org PREPEND X-Tagged: by sender_access\n")
        config = write_yaml(os.path.join(self.tmp, "frontend.yaml"), "\n".join([
            "mynetworks: [127.0.0.1/32]",
            "accepted_domains: [example.com]",
            "resolve_client_names: false",
            "sender_access: [%s]" % access, ""]))
        # Hold marks cross to reinject signed with the deployment's key (lib/smtp/hold_mark.h).
        key = write_hold_mark_key(self.tmp)
        bridge = write_yaml(os.path.join(self.tmp, "bridge.yaml"), "hold_mark_key_file: %s\n" % key)
        reinject = write_yaml(os.path.join(self.tmp, "reinject.yaml"), "hold_mark_key_file: %s\n" % key)
        self.p = Pipeline(self.tmp, frontend_flags=["--config=" + config], bridge_flags=["--config=" + bridge],
                          reinject_flags=["--config=" + reinject])
        self.addCleanup(self.p.stop)
        self.stubs = grpc_stubs()
        channel = grpc.insecure_channel(self.p.reinject.admin)
        self.addCleanup(channel.close)
        self.queue = self.stubs["queue_pb2_grpc"].QueueStub(channel)

    def send(self, sender, rcpt, body):
        s = smtplib.SMTP("127.0.0.1", self.p.frontend.smtp_port, local_hostname="client.test", timeout=30,
                         source_address=("127.0.0.2", 0))
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertEqual(s.mail(sender)[0], 250)
        self.assertEqual(s.rcpt(rcpt)[0], 250)
        return s.data(body)

    def held(self):
        qpb = self.stubs["queue_pb2"]
        return list(self.queue.List(qpb.ListQueueRequest(state=qpb.HOLD), timeout=5).records)

    def test_hold_lands_in_reinjects_hold_queue(self):
        code, _ = self.send("held@example.org", "bob@example.com", b"Subject: hold me\r\n\r\nbody\r\n")
        self.assertEqual(code, 250)
        wait_for(lambda: len(self.held()) == 1, what="the message in the hold queue")
        self.assertEqual(self.held()[0].hold_reason, "quarantined by sender_access")
        self.assertEqual(self.p.delivered("bob@example.com"), [])
        self.assertRegex(self.p.frontend.log(), r"event=hold queue_id=NOQUEUE command=RCPT client=unknown\[127\.0\.0\.2\] "
                                                r"check=sender_access reason=\"quarantined by sender_access\"")

    def test_discard_is_accepted_and_goes_nowhere(self):
        code, text = self.send("drop@example.org", "bob@example.com", b"Subject: drop me\r\n\r\nbody\r\n")
        self.assertEqual((code, text), (250, b"2.0.0 Ok: discarded"))
        # A normal message afterwards arrives; the discarded one never does.
        self.assertEqual(self.send("fine@example.org", "carol@example.com", b"Subject: fine\r\n\r\nok\r\n")[0], 250)
        wait_for(lambda: self.p.delivered("carol@example.com"), what="the normal message")
        self.assertEqual(self.p.delivered("bob@example.com"), [])
        self.assertNotIn("drop@example.org", self.p.bridge.log())

    def test_prepend_reaches_the_mailbox_and_a_senders_hold_mark_holds_nothing(self):
        body = b"Subject: tagged\r\nX-Sluice-Hold: forged by the sender\r\n\r\nbody\r\n"
        self.assertEqual(self.send("tagged@example.org", "bob@example.com", body)[0], 250)
        wait_for(lambda: self.p.delivered("bob@example.com"), what="the delivery")
        with open(self.p.delivered("bob@example.com")[0], "rb") as f:
            raw = f.read()
        self.assertIn(b"X-Tagged: by sender_access\r\n", raw)
        self.assertLess(raw.index(b"X-Tagged:"), raw.index(b"Received: from client.test"))
        self.assertNotIn(b"X-Sluice-Hold", raw)
        self.assertEqual(self.held(), [])


if __name__ == "__main__":
    unittest.main()
