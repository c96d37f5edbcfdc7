"""tests/integration/test_reinject_durability.py -- "250 means queued": sluice-reinject killed.

SIGKILL right after the 250 of several messages (delivery held back: the smtp: next hop is not
listening yet) loses none of them: after a restart with the next hop up (Postfix smtp-sink),
each is delivered exactly once and the queue ends empty; their content was in the segment log
on disk at the moment of the kill. SIGKILL in the middle of DATA (before the 250) leaves no
entry at all: the half-received message (spilled to large/, being over the writer's buffer) is
deleted at the restart, nothing goes to corrupt/, nothing is listed and nothing is delivered.

Never: leaves a process running (every process is stopped by PID in tearDown).
"""
import os
import re
import socket
import time
import unittest

import grpc

import harness

STATE_DIRS = ("large", "corrupt")
FAST_RETRY = """
limits:
  minimal_backoff_seconds: 1
  maximal_backoff_seconds: 2
  queue_run_delay_seconds: 1
"""


def files_in(queue_dir):
    out = {}
    for d in STATE_DIRS:
        p = os.path.join(queue_dir, d)
        out[d] = sorted(os.listdir(p)) if os.path.isdir(p) else []
    return out


class ReinjectDurabilityTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.queue_dir = os.path.join(self.tmp, "queue")
        self.config = harness.write_yaml(os.path.join(self.tmp, "reinject.yaml"), FAST_RETRY)
        self.stubs = harness.grpc_stubs()

    def start(self, deliver, name):
        return self.track(harness.Stage("sluice-reinject", ["--config=" + self.config, "--queue_dir=" + self.queue_dir,
                                                            "--deliver=" + deliver], self.tmp, name))

    def list_queue(self, stage):
        with grpc.insecure_channel(stage.admin) as ch:
            stub = self.stubs["queue_pb2_grpc"].QueueStub(ch)
            return stub.List(self.stubs["queue_pb2"].ListQueueRequest(), timeout=5)

    def test_sigkill_right_after_250_loses_nothing_and_delivers_after_restart(self):
        port = harness.free_port()
        rj = self.start("smtp:127.0.0.1:%d" % port, "reinject-1")
        ids = {}
        for i in range(5):
            body = "Subject: durable %d\r\nX-Serial: %d\r\n\r\nmessage %d\r\n" % (i, i, i)
            code, text = harness.send_mail(rj.smtp_port, "s%d@example.org" % i, ["r%d@example.com" % i], body)
            self.assertEqual(code, 250, text)
            ids[re.search(r"queued as (\S+)", text.decode()).group(1)] = i
        rj.kill()  # right after the last 250
        on_disk = harness.queue_log_bytes(self.queue_dir)
        for queue_id, i in ids.items():
            self.assertIn(queue_id.encode(), on_disk)
            self.assertIn(b"X-Serial: %d\r\n" % i, on_disk)

        sink = self.track(harness.SmtpSink(self.tmp, port=port))
        rj2 = self.start("smtp:127.0.0.1:%d" % port, "reinject-2")
        dumps = harness.wait_for(lambda: sink.dumps() if len(sink.dumps()) >= 5 else None, 60,
                                 what="5 deliveries after the restart")
        harness.wait_for(lambda: self.list_queue(rj2).total_messages == 0, 20, what="an empty queue")
        time.sleep(0.3)  # nothing more may come: exactly once
        dumps = sink.dumps()
        serials = sorted(int(re.search(rb"X-Serial: (\d+)", d).group(1)) for d in dumps)
        self.assertEqual(serials, [0, 1, 2, 3, 4])
        log = rj2.log()
        for queue_id in ids:
            self.assertRegex(log, r"event=delivery queue_id=%s .*status=sent" % queue_id)
        self.assertEqual(files_in(self.queue_dir), {d: [] for d in STATE_DIRS})

    def test_sigkill_in_the_middle_of_data_leaves_no_entry(self):
        rj = self.start("maildir:" + os.path.join(self.tmp, "mail"), "reinject-1")
        s = socket.create_connection(("127.0.0.1", rj.smtp_port), timeout=10)
        f = s.makefile("rb")
        try:
            self.assertTrue(f.readline().startswith(b"220"))
            s.sendall(b"EHLO client.test\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            for cmd, want in ((b"MAIL FROM:<a@example.org>", b"250"), (b"RCPT TO:<b@example.com>", b"250"),
                              (b"DATA", b"354")):
                s.sendall(cmd + b"\r\n")
                self.assertTrue(f.readline().startswith(want))
            s.sendall(b"Subject: never queued\r\n\r\n")
            line = b"y" * 100 + b"\r\n"
            for _ in range(4000):  # 400 KB: the writer has put some of it in data/
                s.sendall(line)
            harness.wait_for(lambda: files_in(self.queue_dir)["large"], 20, what="a partial large/ file")
            rj.kill()  # before the final "." and the 250
        finally:
            s.close()
        on_disk = files_in(self.queue_dir)
        self.assertEqual(len(on_disk["large"]), 1, on_disk)  # the partial content, no record for it
        self.assertEqual(on_disk["corrupt"], [])

        rj2 = self.start("maildir:" + os.path.join(self.tmp, "mail"), "reinject-2")
        self.assertEqual(files_in(self.queue_dir), {d: [] for d in STATE_DIRS})
        self.assertEqual(self.list_queue(rj2).total_messages, 0)
        self.assertRegex(rj2.log(), r"event=queue_orphan_deleted")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "mail")))


if __name__ == "__main__":
    unittest.main()
