"""tests/integration/test_reinject_discard.py -- sluice-reinject with --deliver=discard, Postfix's
discard(8) transport: every recipient is accepted and logged, nothing is delivered anywhere.

- Three messages (one with two recipients) from smtplib: each is queued (250 ... queued as ID),
  then each recipient gets one event=delivery line with relay=none, status=sent and the reply
  "250 2.0.0 discarded"; the queue ends empty (Queue.List over gRPC) and the metric of delivered
  recipients says 4; no Maildir or other file is written.
- With --deliver=discard:sink-domain the reply names that text instead.
- A NOTIFY=SUCCESS recipient gets a success notice queued for the sender, which is then
  discarded too (as Postfix's discard sends "delivered" notices).

Never: leaves a process running (every process is stopped by PID in tearDown).
"""
import os
import re
import smtplib
import unittest
import urllib.request

import grpc

import harness


def queue_id_of(text):
    return re.search(r"queued as (\S+)", text.decode()).group(1)


def metric(port, name, label):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(label)), body, re.M)
    return float(m.group(1)) if m else None


class ReinjectDiscardTest(harness.TempDirTest):

    def start(self, deliver):
        self.queue_dir = os.path.join(self.tmp, "queue")
        return self.track(harness.Stage("sluice-reinject", ["--queue_dir=" + self.queue_dir, "--deliver=" + deliver],
                                        self.tmp, "reinject"))

    def queue_total(self, stage):
        stubs = harness.grpc_stubs()
        with grpc.insecure_channel(stage.admin) as ch:
            stub = stubs["queue_pb2_grpc"].QueueStub(ch)
            return stub.List(stubs["queue_pb2"].ListQueueRequest(), timeout=5).total_messages

    def test_every_recipient_is_logged_as_sent_and_nothing_is_delivered(self):
        rj = self.start("discard")
        sent = []  # (queue id, recipient)
        for i, rcpts in enumerate((["a@sink.example"], ["b@sink.example", "c@other.example"], ["d@sink.example"])):
            code, text = harness.send_mail(rj.smtp_port, "s%d@example.org" % i, rcpts,
                                           "Subject: discard %d\r\n\r\nbody %d\r\n" % (i, i))
            self.assertEqual(code, 250, text)
            sent += [(queue_id_of(text), r) for r in rcpts]
        for queue_id, rcpt in sent:
            rj.wait_log(r"event=delivery queue_id=%s .*to=%s relay=none .*dsn=2\.0\.0 status=sent "
                        r"reply=\"250 2\.0\.0 discarded\"" % (queue_id, re.escape(rcpt)))
        harness.wait_for(lambda: self.queue_total(rj) == 0, 20, what="an empty queue")
        harness.wait_for(lambda: metric(rj.metrics_port, "sluice_reinject_recipients_total",
                                        'outcome="delivered"') == 4, 10, what="4 delivered recipients")
        self.assertEqual(len(re.findall(r"event=delivery ", rj.log())), 4)  # one line per recipient
        # Nothing was written outside the queue directory (no Maildir appeared).
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n != "queue" and not n.endswith(".log")), [])

    def test_discard_text_is_the_reply(self):
        rj = self.start("discard:sink-domain")
        code, text = harness.send_mail(rj.smtp_port, "s@example.org", ["x@sink.example"], "Subject: x\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)
        rj.wait_log(r"event=delivery queue_id=%s .*relay=none .*status=sent reply=\"250 2\.0\.0 sink-domain\""
                    % queue_id_of(text))

    def test_notify_success_gets_a_delivered_notice_which_is_discarded_too(self):
        rj = self.start("discard")
        s = smtplib.SMTP("127.0.0.1", rj.smtp_port, local_hostname="filter.test", timeout=30)
        try:
            s.ehlo("filter.test")
            self.assertEqual(s.mail("alice@example.org")[0], 250)
            self.assertEqual(s.rcpt("bob@sink.example", ["NOTIFY=SUCCESS"])[0], 250)
            code, text = s.data(b"Subject: tell me\r\n\r\nbody\r\n")
            self.assertEqual(code, 250, text)
        finally:
            s.quit()
        queue_id = queue_id_of(text)
        m = rj.wait_log(r"event=success_notice_queued queue_id=(\S+) orig_queue_id=%s" % queue_id)
        rj.wait_log(r"event=delivery queue_id=%s .*to=alice@example.org relay=none .*status=sent" % m.group(1))
        harness.wait_for(lambda: self.queue_total(rj) == 0, 20, what="an empty queue")


if __name__ == "__main__":
    unittest.main()
