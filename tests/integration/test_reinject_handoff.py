"""tests/integration/test_reinject_handoff.py -- issue 10, "queue hand-off on scale-down", with
real processes: two sluice-reinject replicas A and B (--handoff_peers on A names B's admin
port) relaying to a Postfix smtp-sink that answers 4xx, so the queue fills with deferred mail,
some of it held by an operator.

- SIGTERM A: A hands every entry to B and exits 0 with an empty queue; B lists every entry
  with the same id and state; when the next hop recovers, B delivers the deferred ones (each
  once) and keeps the held ones held.
- kill -9 A in the middle of a hand-off, restart it, SIGTERM it again: every entry is in
  exactly one of the two queues (B in the end), none twice, none lost.
- sluicectl queue move ID... --to=B moves chosen entries by hand.
- sluicectl drain --handoff on A: A's queue goes to B while A keeps running, drained, until
  sluicectl resume (then it receives and delivers again); on a replica without peers it is
  refused and the replica goes on serving.
- a peer that takes the connection but never answers (B stopped with SIGSTOP): the hand-off
  ends at handoff_timeout_seconds, sluice_reinject_handoff_timeouts_total counts it, every
  entry stays on A as it was, and once B answers again a second hand-off moves them all.

Never: leaves a process running (every process is stopped by PID in tearDown).
"""
import os
import signal
import subprocess
import time
import unittest
import urllib.request

import grpc

import harness

ENTRIES = int(os.environ.get("SLUICE_HANDOFF_ENTRIES", "500"))
HELD_EVERY = 10  # one entry in ten is held by an operator


class HandoffTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.m = harness.grpc_stubs()
        self.q = self.m["queue_pb2"]
        self.sink_port = harness.free_port()

    def replica(self, name, peers=(), log=None):
        """A sluice-reinject with its queue in NAME-queue (a restart: the same name, another log)."""
        flags = ["--queue_dir=" + os.path.join(self.tmp, name + "-queue"),
                 "--deliver=smtp:127.0.0.1:%d" % self.sink_port]
        if peers:
            flags.append("--handoff_peers=" + ",".join(peers))
        return self.track(harness.Stage("sluice-reinject", flags, self.tmp, log or name))

    def stub(self, stage):
        ch = grpc.insecure_channel(stage.admin)
        self.addCleanup(ch.close)
        return self.m["queue_pb2_grpc"].QueueStub(ch)

    def listing(self, stage):
        """{queue id: state name} of every entry."""
        r = self.stub(stage).List(self.q.ListQueueRequest(limit=100000), timeout=30)
        return {e.queue_id: self.q.QueueState.Name(e.state) for e in r.records}

    def sluicectl(self, *args):
        return subprocess.run([os.path.join(harness.BIN_DIR, "sluicectl")] + list(args),
                              capture_output=True, text=True, timeout=400)

    def state(self, stage):
        """The replica's serving state name (Admin.GetStatus)."""
        a = self.m["admin_pb2"]
        ch = grpc.insecure_channel(stage.admin)
        self.addCleanup(ch.close)
        s = self.m["admin_pb2_grpc"].AdminStub(ch).GetStatus(a.GetStatusRequest(), timeout=10)
        return a.ServingState.Name(s.state)

    def fill(self, stage, n):
        """n messages queued at `stage`, deferred behind the 4xx next hop, every tenth held."""
        for i in range(n):
            body = "Subject: handoff %d\r\nX-Serial: %d\r\n\r\nmessage %d\r\n" % (i, i, i)
            code, text = harness.send_mail(stage.smtp_port, "s@example.org", ["r%d@example.com" % (i % 7)], body)
            self.assertEqual(code, 250, text)
        ids = sorted(self.listing(stage))
        self.assertEqual(len(ids), n)
        held = ids[::HELD_EVERY]
        self.stub(stage).Hold(self.q.QueueIdsRequest(queue_ids=held, reason="kept for the test"), timeout=30)
        # Every entry not held has been tried once and deferred.
        harness.wait_for(lambda: sorted(set(self.listing(stage).values())) == ["DEFERRED", "HOLD"], 120,
                         what="every entry deferred or held")
        return self.listing(stage)

    def test_sigterm_hands_every_entry_to_the_peer(self):
        sink = self.track(harness.SmtpSink(self.tmp, ["-r", "RCPT"], port=self.sink_port, name="sink-4xx"))
        b = self.replica("b")
        a = self.replica("a", peers=["127.0.0.1:%d" % b.admin_port])
        before = self.fill(a, ENTRIES)
        started = time.monotonic()
        self.assertEqual(a.stop(timeout=120), 0, a.log()[-3000:])
        took = time.monotonic() - started
        self.assertIn("event=handoff_done", a.log())
        after = self.listing(b)
        self.assertEqual(after, before)  # same ids, same states
        # A's queue is empty: a restart finds nothing.
        a_again = self.replica("a", log="a-restarted")
        self.assertEqual(self.listing(a_again), {})
        self.assertEqual(a_again.stop(), 0)
        # The next hop recovers: B delivers the deferred entries, each once; the held stay held.
        sink.stop()
        good = self.track(harness.SmtpSink(self.tmp, port=self.sink_port, name="sink-ok"))
        self.stub(b).Flush(self.q.QueueIdsRequest(all=True), timeout=30)
        held = sorted(i for i, s in before.items() if s == "HOLD")
        harness.wait_for(lambda: sorted(self.listing(b)) == held, 180, what="B delivering every deferred entry")
        self.assertEqual(set(self.listing(b).values()), {"HOLD"})
        serials = [d.split(b"X-Serial: ")[1].split(b"\n")[0] for d in good.dumps()]
        self.assertEqual(len(serials), len(set(serials)), "a message delivered twice")
        self.assertEqual(len(serials), ENTRIES - len(held))
        print("handed off %d entries (%d held) from A to B in %.1f s" % (ENTRIES, len(held), took))

    def test_kill_9_in_the_middle_of_a_handoff_loses_and_duplicates_nothing(self):
        self.track(harness.SmtpSink(self.tmp, ["-r", "RCPT"], port=self.sink_port, name="sink-4xx"))
        b = self.replica("b")
        peer = "127.0.0.1:%d" % b.admin_port
        a = self.replica("a", peers=[peer])
        before = self.fill(a, ENTRIES)
        a.signal(signal.SIGTERM)
        # Killed as soon as the first entry is confirmed: marks written, entries on the wire.
        harness.wait_for(lambda: "event=handoff_sent" in a.log(), 60, what="A handing entries off")
        a.kill()
        moved_first = len(self.listing(b))
        a = self.replica("a", peers=[peer], log="a-restarted")
        # The restarted A: entries marked for B are asked after at B (recognised, never twice).
        self.assertEqual(a.stop(timeout=120), 0, a.log()[-3000:])
        after = self.listing(b)
        self.assertEqual(sorted(after), sorted(before))
        self.assertEqual(after, before)
        a_again = self.replica("a", log="a-empty")
        self.assertEqual(self.listing(a_again), {})
        print("killed A with %d of %d entries at B; after the restart B has all %d, none twice" %
              (moved_first, ENTRIES, len(after)))

    def test_sluicectl_queue_move(self):
        self.track(harness.SmtpSink(self.tmp, ["-r", "RCPT"], port=self.sink_port, name="sink-4xx"))
        b = self.replica("b")
        a = self.replica("a")
        before = self.fill(a, 20)
        chosen = sorted(before)[:3]
        out = subprocess.run([os.path.join(harness.BIN_DIR, "sluicectl"), "--admin=" + a.admin,
                              "queue", "move"] + chosen + ["--to=" + b.admin],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        at_b = self.listing(b)
        self.assertEqual(sorted(at_b), chosen)
        self.assertEqual({i: before[i] for i in chosen}, at_b)
        self.assertEqual(sorted(self.listing(a)), sorted(set(before) - set(chosen)))
        print(out.stdout.strip())

    def test_sluicectl_drain_handoff_empties_a_replica_that_stays_up_drained(self):
        self.track(harness.SmtpSink(self.tmp, ["-r", "RCPT"], port=self.sink_port, name="sink-4xx"))
        b = self.replica("b")
        a = self.replica("a", peers=[b.admin])
        before = self.fill(a, 40)
        # B has no handoff_peers: refused before anything drains.
        refused = self.sluicectl("--admin=" + b.admin, "drain", "--handoff")
        self.assertNotEqual(refused.returncode, 0, refused.stdout + refused.stderr)
        self.assertIn("handoff_peers", refused.stderr)
        self.assertEqual(self.state(b), "SERVING")
        out = self.sluicectl("--admin=" + a.admin, "drain", "--handoff", "--timeout=5s")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr + a.log()[-3000:])
        self.assertEqual(self.listing(a), {})
        self.assertEqual(self.listing(b), before)  # same ids, same states
        self.assertTrue(a.alive())
        self.assertEqual(self.state(a), "DRAINING")
        self.assertIn("event=handoff_done", a.log())
        # Resume: A receives again and delivers again (the 4xx next hop defers the new entry).
        resumed = self.sluicectl("--admin=" + a.admin, "resume")
        self.assertEqual(resumed.returncode, 0, resumed.stdout + resumed.stderr)
        self.assertEqual(self.state(a), "SERVING")
        code, text = harness.send_mail(a.smtp_port, "s@example.org", ["after@example.com"],
                                       "Subject: after resume\r\n\r\nbody\r\n")
        self.assertEqual(code, 250, text)
        harness.wait_for(lambda: list(self.listing(a).values()) == ["DEFERRED"], 120,
                         what="A delivering again after resume")
        self.assertEqual(a.stop(timeout=120), 0, a.log()[-3000:])
        print(refused.stderr.strip())
        print(out.stdout.strip())
    def test_a_stalled_peer_ends_the_handoff_at_its_timeout_and_loses_nothing(self):
        self.track(harness.SmtpSink(self.tmp, ["-r", "RCPT"], port=self.sink_port, name="sink-4xx"))
        b = self.replica("b")
        a = self.replica("a", peers=[b.admin])
        before = self.fill(a, 20)
        ctl = self.sluicectl("--admin=" + a.admin, "limits", "set", "handoff_timeout_seconds=3")
        self.assertEqual(ctl.returncode, 0, ctl.stdout + ctl.stderr)
        b.signal(signal.SIGSTOP)  # its kernel still accepts the connection; nothing answers
        try:
            stalled = self.sluicectl("--admin=" + a.admin, "drain", "--handoff", "--timeout=2s")
        finally:
            b.signal(signal.SIGCONT)
        self.assertNotEqual(stalled.returncode, 0, stalled.stdout + stalled.stderr)
        self.assertIn("left %d entries" % len(before), stalled.stderr)
        self.assertEqual(self.listing(a), before)  # every entry still here, as it was
        self.assertEqual(self.listing(b), {})
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % a.metrics_port, timeout=5).read().decode()
        self.assertIn("sluice_reinject_handoff_timeouts_total 1", metrics)
        # B answers again: the next hand-off moves every entry, none twice.
        ctl = self.sluicectl("--admin=" + a.admin, "limits", "set", "handoff_timeout_seconds=120")
        self.assertEqual(ctl.returncode, 0, ctl.stdout + ctl.stderr)
        again = self.sluicectl("--admin=" + a.admin, "drain", "--handoff")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr + a.log()[-3000:])
        self.assertEqual(self.listing(a), {})
        self.assertEqual(self.listing(b), before)
        print(stalled.stderr.strip())

    def test_a_peer_without_a_port_is_refused_at_start(self):
        out = subprocess.run([os.path.join(harness.BIN_DIR, "sluice-reinject"), "--check",
                              "--queue_dir=" + os.path.join(self.tmp, "q"), "--handoff_peers=reinject-admin"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("handoff_peers", out.stderr)

if __name__ == "__main__":
    unittest.main()
