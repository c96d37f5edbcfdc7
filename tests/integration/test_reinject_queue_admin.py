"""tests/integration/test_reinject_queue_admin.py -- operating the reinject queue.

The sluice.v1.Queue service over gRPC (List with its filters, Get, Hold, Release, Delete, Flush)
and the same through `sluicectl queue ... --admin=... --output=json`, on messages kept in the
queue by an smtp: next hop that is not listening (until a test starts one there and flushes).
A queue over queue_max_bytes answers 452 4.3.1 and loses none of the mail it already took;
meanwhile the stage is UNAVAILABLE (gRPC health NOT_SERVING, Admin status accepting=false) and
SERVING again once the queue has room.

Never: leaves a process running (every process is stopped by PID).
"""
import json
import os
import re
import smtplib
import subprocess
import unittest

import grpc

import harness

HOLD_QUEUE = """
limits:
  minimal_backoff_seconds: 300
  queue_run_delay_seconds: 300
"""
SMALL_QUEUE = """
limits:
  queue_max_bytes: 3000
"""


def send(port, sender, rcpt, body, mail_options=()):
    """(code, text) of the first refusal, or of the end of DATA."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="filter.test", timeout=30)
    try:
        s.ehlo("filter.test")
        code, text = s.mail(sender, list(mail_options))
        if code != 250:
            return code, text
        code, text = s.rcpt(rcpt)
        if code != 250:
            return code, text
        return s.data(body)
    finally:
        s.quit()


def queue_id_of(text):
    return re.search(r"queued as (\S+)", text.decode()).group(1)


class QueueAdminTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.next_hop = harness.free_port()
        self.stubs = harness.grpc_stubs()
        self.pb = self.stubs["queue_pb2"]

    def start(self, config):
        path = harness.write_yaml(os.path.join(self.tmp, "reinject.yaml"), config)
        self.rj = self.track(harness.Stage("sluice-reinject",
                                           ["--config=" + path, "--queue_dir=" + os.path.join(self.tmp, "queue"),
                                            "--deliver=smtp:127.0.0.1:%d" % self.next_hop], self.tmp, "reinject"))
        self.channel = grpc.insecure_channel(self.rj.admin)
        self.addCleanup(self.channel.close)
        self.queue = self.stubs["queue_pb2_grpc"].QueueStub(self.channel)

    def queued(self, sender, rcpt, subject):
        code, text = send(self.rj.smtp_port, sender, rcpt, "Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))
        self.assertEqual(code, 250, text)
        return queue_id_of(text)

    def deferred(self, queue_id):
        """Waits until the first attempt (to the silent next hop) has deferred the entry."""
        def state():
            try:
                e = self.queue.Get(self.pb.GetQueueEntryRequest(queue_id=queue_id), timeout=5)
            except grpc.RpcError:
                return None
            return e if e.record.state == self.pb.DEFERRED else None
        return harness.wait_for(state, 20, what="%s deferred" % queue_id)

    def sluicectl(self, *args, expect=0):
        p = subprocess.run([os.path.join(harness.BIN_DIR, "sluicectl"), "--admin=" + self.rj.admin, "--output=json"]
                           + list(args), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, expect, "sluicectl %s: %s %s" % (" ".join(args), p.stdout, p.stderr))
        return json.loads(p.stdout) if p.stdout.strip() else None

    def test_grpc_list_get_hold_release_delete_flush(self):
        self.start(HOLD_QUEUE)
        a = self.queued("ann@example.org", "x@example.com", "first")
        b = self.queued("ben@example.org", "y@example.com", "second")
        c = self.queued("ann@example.org", "z@example.net", "third")
        for i in (a, b, c):
            self.deferred(i)

        listed = self.queue.List(self.pb.ListQueueRequest(), timeout=5)
        self.assertEqual(sorted(r.queue_id for r in listed.records), sorted([a, b, c]))
        self.assertEqual(listed.total_messages, 3)
        self.assertGreater(listed.total_bytes, 0)
        by_sender = self.queue.List(self.pb.ListQueueRequest(sender="ann@"), timeout=5)
        self.assertEqual(sorted(r.queue_id for r in by_sender.records), sorted([a, c]))
        by_rcpt = self.queue.List(self.pb.ListQueueRequest(recipient="example.net"), timeout=5)
        self.assertEqual([r.queue_id for r in by_rcpt.records], [c])
        deferred = self.queue.List(self.pb.ListQueueRequest(state=self.pb.DEFERRED), timeout=5)
        self.assertEqual(deferred.total_messages, 3)
        limited = self.queue.List(self.pb.ListQueueRequest(limit=1), timeout=5)
        self.assertEqual((len(limited.records), limited.total_messages), (1, 3))

        entry = self.queue.Get(self.pb.GetQueueEntryRequest(queue_id=b), timeout=5)
        self.assertEqual(entry.record.sender, "ben@example.org")
        self.assertEqual(entry.record.recipients[0].address, "y@example.com")
        self.assertIn("Subject: second", entry.headers)
        self.assertNotIn("body of second", entry.headers)
        self.assertRegex(entry.record.last_error, r"^451 4\.4\.1 connect.*127\.0\.0\.1:%d" % self.next_hop)
        with self.assertRaises(grpc.RpcError) as missing:
            self.queue.Get(self.pb.GetQueueEntryRequest(queue_id="NOSUCHID"), timeout=5)
        self.assertEqual(missing.exception.code(), grpc.StatusCode.NOT_FOUND)

        held = self.queue.Hold(self.pb.QueueIdsRequest(queue_ids=[a, "NOSUCHID"], reason="looked suspicious"), timeout=5)
        self.assertEqual(list(held.affected), [a])
        self.assertEqual(list(held.not_found), ["NOSUCHID"])
        entry = self.queue.Get(self.pb.GetQueueEntryRequest(queue_id=a), timeout=5)
        self.assertEqual((entry.record.state, entry.record.hold_reason), (self.pb.HOLD, "looked suspicious"))
        # Durable: the held record is in the segment log on disk.
        self.assertIn(b"looked suspicious", harness.queue_log_bytes(os.path.join(self.tmp, "queue")))

        deleted = self.queue.Delete(self.pb.QueueIdsRequest(queue_ids=[c]), timeout=5)
        self.assertEqual(list(deleted.affected), [c])
        with self.assertRaises(grpc.RpcError) as gone:
            self.queue.Get(self.pb.GetQueueEntryRequest(queue_id=c), timeout=5)
        self.assertEqual(gone.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(sorted(r.queue_id for r in self.queue.List(self.pb.ListQueueRequest(), timeout=5).records),
                         sorted([a, b]))

        # The next hop comes up; the backoff (300 s) would wait, a flush delivers now. The held
        # entry stays held through the flush, and goes once released.
        sink = self.track(harness.SmtpSink(self.tmp, port=self.next_hop))
        flushed = self.queue.Flush(self.pb.QueueIdsRequest(all=True), timeout=5)
        self.assertIn(b, list(flushed.affected))
        harness.wait_for(lambda: len(sink.dumps()) == 1, 20, what="the flushed message at the next hop")
        self.assertIn(b"Subject: second", sink.dumps()[0])
        harness.wait_for(lambda: [r.queue_id for r in self.queue.List(self.pb.ListQueueRequest(), timeout=5).records]
                         == [a], 20, what="only the held entry left")
        released = self.queue.Release(self.pb.QueueIdsRequest(queue_ids=[a]), timeout=5)
        self.assertEqual(list(released.affected), [a])
        harness.wait_for(lambda: len(sink.dumps()) == 2, 20, what="the released message at the next hop")
        harness.wait_for(lambda: self.queue.List(self.pb.ListQueueRequest(), timeout=5).total_messages == 0, 20,
                         what="an empty queue")
        self.assertEqual(len(sink.dumps()), 2)  # the deleted one never went

    def test_sluicectl_queue_commands(self):
        self.start(HOLD_QUEUE)
        a = self.queued("cli@example.org", "one@example.com", "cli one")
        b = self.queued("cli@example.org", "two@example.com", "cli two")
        self.deferred(a)
        self.deferred(b)

        listed = self.sluicectl("queue", "list", "--state=deferred")
        records = [r for res in listed["results"] for r in res["response"].get("records", [])]
        self.assertEqual(sorted(r["queue_id"] for r in records), sorted([a, b]))
        shown = self.sluicectl("queue", "show", a)
        entry = shown["results"][0]["response"]
        self.assertEqual(entry["record"]["queue_id"], a)
        self.assertIn("Subject: cli one", entry["headers"])

        held = self.sluicectl("queue", "hold", a, "--reason=by the operator")
        self.assertEqual(held["results"][0]["response"]["affected"], [a])
        self.assertEqual(self.queue.Get(self.pb.GetQueueEntryRequest(queue_id=a), timeout=5).record.hold_reason,
                         "by the operator")
        self.assertEqual(self.sluicectl("queue", "release", a)["results"][0]["response"]["affected"], [a])
        self.assertEqual(self.sluicectl("queue", "delete", b)["results"][0]["response"]["affected"], [b])
        self.assertEqual(self.sluicectl("queue", "delete", "NOSUCHID", expect=3)["not_found"], ["NOSUCHID"])
        self.sluicectl("queue", "show", "NOSUCHID", expect=3)

        self.deferred(a)  # released: tried at once, no next hop yet
        sink = self.track(harness.SmtpSink(self.tmp, port=self.next_hop))
        self.sluicectl("queue", "flush")
        harness.wait_for(lambda: len(sink.dumps()) == 1, 20, what="the flushed message")
        self.assertIn(b"Subject: cli one", sink.dumps()[0])

    def health(self):
        h = self.stubs["health_pb2"]
        stub = self.stubs["health_pb2_grpc"].HealthStub(self.channel)
        return stub.Check(h.HealthCheckRequest(service=""), timeout=5).status == h.HealthCheckResponse.SERVING

    def status(self):
        a = self.stubs["admin_pb2"]
        return self.stubs["admin_pb2_grpc"].AdminStub(self.channel).GetStatus(a.GetStatusRequest(), timeout=5)

    def test_queue_full_answers_452_keeps_accepted_mail_and_reports_unavailable(self):
        self.start(SMALL_QUEUE)
        self.assertTrue(self.health())
        big = "Subject: fills the queue\r\n\r\n" + ("z" * 78 + "\r\n") * 50  # 4 KB > queue_max_bytes 3000
        code, text = send(self.rj.smtp_port, "full@example.org", "one@example.com", big)
        self.assertEqual(code, 250, text)  # the queue was empty
        kept = queue_id_of(text)

        code, text = send(self.rj.smtp_port, "full@example.org", "two@example.com", "Subject: small\r\n\r\nx\r\n")
        self.assertEqual((code, text[:5]), (452, b"4.3.1"))
        code, text = send(self.rj.smtp_port, "full@example.org", "two@example.com", "x", mail_options=["SIZE=10"])
        self.assertEqual((code, text[:5]), (452, b"4.3.1"))
        self.rj.wait_log(r"event=queue_full")

        harness.wait_for(lambda: not self.health(), 10, what="health NOT_SERVING")
        st = self.status()
        a = self.stubs["admin_pb2"]
        self.assertEqual(st.state, a.UNAVAILABLE)
        self.assertEqual(st.state_reason, "queue full")
        self.assertFalse(st.accepting)
        self.assertGreater(st.queue_bytes, 3000)

        # The accepted message is intact and goes once the next hop is there.
        self.assertEqual([r.queue_id for r in self.queue.List(self.pb.ListQueueRequest(), timeout=5).records], [kept])
        sink = self.track(harness.SmtpSink(self.tmp, port=self.next_hop))
        self.queue.Flush(self.pb.QueueIdsRequest(all=True), timeout=5)
        harness.wait_for(lambda: sink.dumps(), 20, what="the accepted message delivered")
        self.assertIn(b"Subject: fills the queue", sink.dumps()[0])
        harness.wait_for(self.health, 10, what="health SERVING again")
        st = self.status()
        self.assertEqual((st.state, st.accepting), (a.SERVING, True))
        code, text = send(self.rj.smtp_port, "full@example.org", "two@example.com", "Subject: room again\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)


if __name__ == "__main__":
    unittest.main()
