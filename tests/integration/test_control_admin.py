"""tests/integration/test_control_admin.py -- every stage's gRPC health and status (issue 6).

One pipeline of the three real binaries for the class. Each stage serves grpc.health.v1
SERVING for "" and "sluice.v1.Admin" (reinject also for "sluice.v1.Queue"); Admin.GetStatus
names the stage and its load while a message is in flight through all three (sessions,
transactions, the bridge's filter_capacity, reinject's queue messages/bytes and free disk,
the downstream each stage relays to); Admin.WatchStatus answers at once, pushes what upstream
stages act on (a limits change, `accepting` flipping as the stage fills up and empties)
without waiting for its interval, and ticks at the interval when nothing changes.

Reinject delivers into a "Maildir" that is a plain file, so a queued message stays deferred
in the queue and the queue fields have something to count.

Never: leaves a process or a socket open; asserts a time tighter than a generous bound.
"""
import os
import queue
import threading
import unittest

import grpc

import harness
from test_control_support import SharedStagesTest, Smtp, health, start_pipeline, write

CLIENT = "127.0.0.2"


class AdminApiTest(SharedStagesTest):

    @classmethod
    def start_stages(cls, owner):
        cls.blocker = write(os.path.join(cls.tmp, "maildir-is-a-file"), "")
        cls.p = start_pipeline(owner, deliver="maildir:" + cls.blocker)
        cls.m = harness.grpc_stubs()

    def admin(self, stage):
        ch = grpc.insecure_channel(stage.admin)
        self.addCleanup(ch.close)
        return self.m["admin_pb2_grpc"].AdminStub(ch)

    def status(self, stage):
        return self.admin(stage).GetStatus(self.m["admin_pb2"].GetStatusRequest(), timeout=5)

    def test_health_is_serving_for_the_server_and_the_admin_service_at_every_stage(self):
        for stage in self.p.stages:
            self.assertEqual(health(stage.admin, ""), "SERVING", stage.name)
            self.assertEqual(health(stage.admin, "sluice.v1.Admin"), "SERVING", stage.name)
        self.assertEqual(health(self.p.reinject.admin, "sluice.v1.Queue"), "SERVING")
        with self.assertRaises(grpc.RpcError) as e:
            health(self.p.frontend.admin, "no.such.Service")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_status_names_the_stage_and_its_load_while_a_message_is_in_flight(self):
        # One message queued and deferred (its delivery fails), for reinject's queue fields.
        code, text = harness.send_mail(self.p.frontend.smtp_port, "queued@example.org", ["user@example.com"],
                                       "Subject: queued\r\n\r\n" + "x" * 5000 + "\r\n")
        self.assertEqual(code, 250, text)
        rs = harness.wait_for(lambda: (lambda s: s if s.queue_messages >= 1 else None)(self.status(self.p.reinject)),
                              20, what="a queued message in reinject's status")
        self.assertGreater(rs.queue_bytes, 5000)

        c = Smtp(self.p.frontend.smtp_port, source=CLIENT)
        self.addCleanup(c.close)
        c.start_transaction(self)

        def in_flight(stage):
            return lambda: (lambda s: s if s.transactions_in_flight == 1 and s.sessions_active == 1 else None)(
                self.status(stage))
        for stage in self.p.stages:
            harness.wait_for(in_flight(stage), 20, what="the transaction in flight at " + stage.name)

        fe, fb, rj = self.status(self.p.frontend), self.status(self.p.bridge), self.status(self.p.reinject)
        ServingState = self.m["admin_pb2"].ServingState
        for stage, s, name in ((self.p.frontend, fe, "frontend"), (self.p.bridge, fb, "filter-bridge"),
                               (self.p.reinject, rj, "reinject")):
            self.assertEqual(s.stage, name)
            self.assertEqual(ServingState.Name(s.state), "SERVING", name)
            self.assertTrue(s.accepting, name)
            self.assertEqual(s.instance, stage.name + ".test")  # --hostname of the harness
            self.assertTrue(s.version, name)
            self.assertEqual(s.sessions_active, 1, name)
            self.assertEqual(s.sessions_max, 100, name)  # Limits.max_sessions default
            self.assertEqual(s.transactions_in_flight, 1, name)
            self.assertLessEqual(s.started_at.seconds, s.now.seconds)
        self.assertEqual(fe.downstream, "127.0.0.1:%d" % self.p.bridge.smtp_port)
        self.assertEqual(fb.downstream, "127.0.0.1:%d" % self.p.reinject.smtp_port)
        # The bridge has room for max_sessions filter transactions, one of them taken.
        self.assertEqual(fb.filter_capacity, 99)
        self.assertEqual(fe.filter_capacity, 0)
        # Reinject: the deferred message is counted; free disk is the queue file system's.
        self.assertEqual(rj.queue_messages, 1)
        self.assertGreater(rj.queue_bytes, 5000)
        st = os.statvfs(self.p.queue_dir)
        free = st.f_bavail * st.f_frsize
        self.assertGreater(rj.disk_free_bytes, 0)
        self.assertLess(abs(rj.disk_free_bytes - free), max(free // 10, 1 << 30))

        code, text = c.finish()
        self.assertEqual(code, 250, text)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        harness.wait_for(lambda: self.status(self.p.frontend).sessions_active == 0, 20, what="the session gone")

    def watch(self, stage, interval_seconds):
        """Starts WatchStatus; returns a queue.Queue receiving each StageStatus."""
        call = self.admin(stage).WatchStatus(self.m["admin_pb2"].WatchStatusRequest(interval_seconds=interval_seconds),
                                             timeout=120)
        out = queue.Queue()

        def pump():
            try:
                for s in call:
                    out.put(s)
            except grpc.RpcError:
                pass
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        self.addCleanup(t.join, 10)
        self.addCleanup(call.cancel)  # cleanups run last-in first-out: cancel, then join
        return out

    def test_watch_status_answers_at_once_and_pushes_a_change_before_its_interval(self):
        # The changes upstream stages act on (limits, accepting) are pushed at once, not at
        # the 600 s tick.
        updates = self.watch(self.p.bridge, interval_seconds=600)
        first = updates.get(timeout=10)
        self.assertEqual(first.stage, "filter-bridge")
        self.assertTrue(first.accepting)
        md = self.m["admin_pb2"]
        admin = self.admin(self.p.bridge)
        # The frontend keeps its filter connections between transactions: a drain makes it give
        # them up, so the bridge starts this test with no session.
        frontend = self.admin(self.p.frontend)
        frontend.Drain(md.DrainRequest(), timeout=5)
        frontend.Resume(md.ResumeRequest(), timeout=5)
        harness.wait_for(lambda: self.status(self.p.bridge).sessions_active == 0, 20, what="no session at the bridge")

        def set_max_sessions(n):
            req = md.UpdateLimitsRequest(limits=self.m["limits_pb2"].Limits(max_sessions=n))
            req.update_mask.paths.append("max_sessions")
            admin.UpdateLimits(req, timeout=5)
        self.addCleanup(set_max_sessions, 100)

        def next_where(pred):
            while True:
                s = updates.get(timeout=10)
                if pred(s):
                    return s
        set_max_sessions(1)
        next_where(lambda s: s.sessions_max == 1)
        # One session through the frontend (opened at the bridge at the first RCPT) fills it.
        c = Smtp(self.p.frontend.smtp_port, source=CLIENT)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO watch.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<w@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<user@example.com>")[0], 250)
        full = next_where(lambda s: not s.accepting)
        self.assertEqual(full.sessions_active, 1)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        # Its filter connection rests in the frontend's pool until hop_connection_idle_limit.
        room = next_where(lambda s: s.accepting)
        self.assertEqual(room.sessions_active, 0)

    def test_watch_status_ticks_at_its_interval_when_nothing_changes(self):
        updates = self.watch(self.p.reinject, interval_seconds=1)
        seen = [updates.get(timeout=10) for _ in range(3)]
        self.assertTrue(all(s.stage == "reinject" for s in seen))
        self.assertLess(seen[0].now.seconds, seen[2].now.seconds)


if __name__ == "__main__":
    unittest.main()
