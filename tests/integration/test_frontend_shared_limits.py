"""tests/integration/test_frontend_shared_limits.py -- per-client limits counted across frontend
replicas in one Redis (FrontendConfig.shared_limits).

Two sluice-frontend replicas on loopback share a real redis-server started here on a free
port with no persistence: the per-client connection count and the message rate are summed
over both; a replica killed with SIGKILL stops counting when its lease runs out; a replica
stopped with SIGTERM takes its counts out at once; Redis SIGSTOPped and then killed never
holds a session past the bound (the replicas count alone, say so once in the log and in
sluice_frontend_shared_limits_up), and the shared count resumes, with every replica's
connections in it, when Redis is back; Admin.UpdateLimits changes the shared limit at once.
127.0.0.2 and 127.0.0.3 stand in for remote clients (limit_exemptions is moved off loopback).

Never: leaves a process or a connection behind; uses any address but loopback.
"""
import re
import signal
import time
import urllib.request

import grpc

from harness import RedisServer, TempDirTest, wait_for
from test_frontend_support import RawClient, ScriptedSmtp, admin_stubs, start_frontend


def metric(stage, name):
    """The value of one sample of a stage's /metrics ("name{labels}" exactly as exposed)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % stage.metrics_port, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError("no metric " + name)


def config(redis_port, extra=""):
    return ("shared_limits: redis://127.0.0.1:%d\n"
            "limits:\n"
            "  limit_exemptions: [\"192.0.2.0/24\"]\n"
            "  shared_limits_lease_seconds: 4\n" % redis_port) + extra


class SharedLimitsTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)
        self.redis = self.track(RedisServer(self.tmp))

    def replicas(self, extra):
        text = config(self.redis.port, extra)
        a = start_frontend(self, self.filter.address, config=text, name="frontend-a")
        b = start_frontend(self, self.filter.address, config=text, name="frontend-b")
        for fe in (a, b):
            fe.wait_log(r"event=shared_limits_up ")
            self.assertEqual(metric(fe, "sluice_frontend_shared_limits_up"), 1)
        return a, b

    def connect(self, fe, source):
        """A session from `source`; returns (client, the greeting's code and text)."""
        c = RawClient(fe.smtp_port, source_address=source)
        self.addCleanup(c.close)
        return c, c.reply()

    def admitted(self, fe, source):
        c, (code, text) = self.connect(fe, source)
        self.assertEqual(code, 220, text)
        return c

    def refused(self, fe, source):
        c, (code, text) = self.connect(fe, source)
        self.assertEqual(code, 421, text)
        self.assertIn("4.7.0", text)
        self.assertIn("too many connections from %s" % source, text)
        self.assertTrue(c.eof(), "a refused connection is closed")

    def test_connection_limit_counts_every_replica(self):
        a, b = self.replicas("  per_client_connection_limit: 4\n")
        held = [self.admitted(a, "127.0.0.2") for _ in range(3)] + [self.admitted(b, "127.0.0.2")]
        self.refused(a, "127.0.0.2")
        self.refused(b, "127.0.0.2")
        self.admitted(a, "127.0.0.3")
        self.admitted(b, "127.0.0.3")
        # A connection that ends on A is a slot for the client on B.
        self.assertEqual(held[0].cmd("QUIT")[0], 221)
        wait_for(lambda: self.try_admit(b, "127.0.0.2"), 10, what="the slot freed on A to be usable on B")
        self.refused(a, "127.0.0.2")
        self.assertEqual(metric(a, 'sluice_frontend_limit_hits_total{limit="per_client_connections"}'), 2)
        self.assertGreaterEqual(metric(b, 'sluice_frontend_limit_hits_total{limit="per_client_connections"}'), 1)
        self.assertEqual(metric(a, 'sluice_frontend_shared_limits_fallbacks_total{reason="timeout"}'), 0)
        print("4 of 127.0.0.2 held across A and B: the 5th refused on either; 127.0.0.3 admitted")

    def try_admit(self, fe, source):
        c, (code, _) = self.connect(fe, source)
        if code == 220:
            return c
        c.close()
        return None

    def test_message_rate_counts_every_replica(self):
        a, b = self.replicas("  per_client_message_rate_limit: 3\n"
                             "  per_client_recipient_rate_limit: 5\n"
                             "  rate_time_unit_seconds: 1h\n")
        ca = self.admitted(a, "127.0.0.2")
        cb = self.admitted(b, "127.0.0.2")
        for c in (ca, cb):
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        for c in (ca, cb, ca):
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
            self.assertEqual(c.cmd("RSET")[0], 250)
        code, text = cb.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(code, 450, text)
        self.assertIn("4.7.1", text)
        self.assertIn("too much mail from 127.0.0.2", text)
        # Recipients: 5 per hour across both.
        self.assertEqual(self.admitted(b, "127.0.0.3").cmd("QUIT")[0], 221)
        c3a, c3b = self.admitted(a, "127.0.0.3"), self.admitted(b, "127.0.0.3")
        for c in (c3a, c3b):
            self.assertEqual(c.cmd("EHLO client.test")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        for i, c in enumerate((c3a, c3b, c3a, c3b, c3a)):
            self.assertEqual(c.cmd("RCPT TO:<r%d@example.net>" % i)[0], 250)
        code, text = c3b.cmd("RCPT TO:<r9@example.net>")
        self.assertEqual(code, 450, text)
        self.assertIn("too many recipients from 127.0.0.3", text)
        self.assertEqual(metric(b, 'sluice_frontend_limit_hits_total{limit="message_rate"}'), 1)
        print("message rate 3/h: 2 MAIL on A + 1 on B, the 4th refused on B; recipients 5/h likewise")

    def test_a_killed_replica_stops_counting_after_its_lease(self):
        a, b = self.replicas("  per_client_connection_limit: 4\n")
        for _ in range(3):
            self.admitted(a, "127.0.0.2")
        self.admitted(b, "127.0.0.2")
        self.refused(b, "127.0.0.2")
        a.kill()  # SIGKILL: nothing cleans up; A's counts stay until its lease (4 s) runs out
        killed = time.monotonic()
        self.refused(b, "127.0.0.2")
        wait_for(lambda: self.try_admit(b, "127.0.0.2"), 30, what="the dead replica's lease to run out")
        print("A SIGKILLed: its 3 connections counted until its lease ran out, %.1f s later (lease 4 s)" %
              (time.monotonic() - killed))
        self.admitted(b, "127.0.0.2")
        self.admitted(b, "127.0.0.2")
        self.refused(b, "127.0.0.2")

    def test_a_stopped_replica_takes_its_counts_out_at_once(self):
        a, b = self.replicas("  per_client_connection_limit: 2\n")
        self.admitted(a, "127.0.0.2")
        self.assertEqual(self.redis.command("SCARD", "sluice:limits:replicas"), 1)
        self.admitted(b, "127.0.0.2")
        self.refused(b, "127.0.0.2")
        replica_a = re.search(r"event=shared_limits_up .*replica=(\S+)", a.log()).group(1)
        self.assertEqual(self.redis.command("HGET", "sluice:limits:conn:" + replica_a, "127.0.0.2"), "1")
        self.assertEqual(a.stop(), 0)  # SIGTERM: drain (the client gets 421), then its counts leave Redis
        self.assertEqual(self.redis.command("EXISTS", "sluice:limits:conn:" + replica_a), 0)
        self.admitted(b, "127.0.0.2")

    def test_redis_stopped_then_killed_never_holds_a_session_and_counting_resumes(self):
        a, b = self.replicas("  per_client_connection_limit: 2\n")
        self.redis.signal(signal.SIGSTOP)
        # Each replica waits at most the bound (50 ms) once, then counts alone and says so.
        for fe in (a, b):
            started = time.monotonic()
            self.admitted(fe, "127.0.0.2")
            waited = time.monotonic() - started
            self.assertLess(waited, 10, "a session waited for a stopped Redis")
            print("%s: greeting %.3f s after connect with Redis stopped" % (fe.name, waited))
            fe.wait_log(r"event=shared_limits_down .*reason=timeout")
            self.assertEqual(metric(fe, "sluice_frontend_shared_limits_up"), 0)
            self.assertEqual(metric(fe, 'sluice_frontend_shared_limits_fallbacks_total{reason="timeout"}'), 1)
        # Alone, each replica counts its own: one more from 127.0.0.2 on A is still under 2 locally.
        extra = self.admitted(a, "127.0.0.2")
        self.refused(a, "127.0.0.2")
        self.assertGreaterEqual(metric(a, 'sluice_frontend_shared_limits_fallbacks_total{reason="down"}'), 2)
        extra.close()
        # Redis dies and comes back empty (no persistence) on the same address.
        port = self.redis.port
        self.redis.kill()
        time.sleep(1)  # reconnects are refused meanwhile
        self.redis = self.track(RedisServer(self.tmp, port=port, name="redis-again"))
        for fe in (a, b):
            fe.wait_log(r"event=shared_limits_up .*after_outage=true", timeout=30)
            self.assertEqual(metric(fe, "sluice_frontend_shared_limits_up"), 1)
            self.assertEqual(len(re.findall(r"event=shared_limits_down", fe.log())), 1,
                             "an outage is logged once, whatever the reconnects")
        # Each replica wrote its connections back: 1 on A + 1 on B reach the limit of 2,
        # which neither replica alone would see.
        wait_for(lambda: self.try_refused(a, "127.0.0.2"), 10, what="A's closed extra session to leave the count")
        self.refused(b, "127.0.0.2")
        self.admitted(b, "127.0.0.3")
        print("Redis SIGSTOPped then killed: sessions admitted at once, one shared_limits_down line per "
              "replica; Redis back: the 1+1 connections of both replicas counted together again")

    def try_refused(self, fe, source):
        c, (code, _) = self.connect(fe, source)
        c.close()
        return code == 421

    def test_update_limits_applies_to_the_shared_count_at_once(self):
        a, b = self.replicas("  per_client_connection_limit: 4\n")
        self.admitted(a, "127.0.0.2")
        self.admitted(a, "127.0.0.2")
        self.admitted(b, "127.0.0.2")
        m = admin_stubs()
        with grpc.insecure_channel(b.admin) as ch:
            limits = m["limits_pb2"].Limits(per_client_connection_limit=3)
            m["admin_pb2_grpc"].AdminStub(ch).UpdateLimits(m["admin_pb2"].UpdateLimitsRequest(limits=limits),
                                                           timeout=10)
        self.refused(b, "127.0.0.2")  # 3 across both reach B's new limit of 3
        self.admitted(a, "127.0.0.2")  # A still allows 4
        self.refused(a, "127.0.0.2")


if __name__ == "__main__":
    import unittest
    unittest.main()
