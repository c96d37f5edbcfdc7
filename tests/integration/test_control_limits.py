"""tests/integration/test_control_limits.py -- limits changed live, shared across replicas (issue 6).

The three real stages plus a second frontend replica in front of the same filter-bridge.
`sluicectl limits set` lowers the per-client connection limit at the running frontend (and
moves limit_exemptions off loopback, which is exempt by default): the next connection from
that client is refused with 421 4.7.0 while its open session carries on to delivery, other
clients are still served, and nothing was restarted. `limits get` against both replicas shows
the drift after one replica alone was changed; `limits set` against both applies to each and
the drift is gone. Invalid values are refused naming the field, by sluicectl (exit 2) and by
the stage itself (INVALID_ARGUMENT), and change nothing.

Never: leaves a process or a connection behind; uses anything but loopback.
"""
import unittest

import grpc

import harness
from harness import Stage
from test_control_support import Smtp, admin_flag, greeting, results_by_replica, sluicectl, start_pipeline

CLIENT = "127.0.0.2"
OTHER_CLIENT = "127.0.0.3"


class LiveLimitsTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.p = start_pipeline(self)

    def ctl(self, *args, want=0):
        r = sluicectl(*args)
        self.assertEqual(r.rc, want, r)
        return r

    def test_lowered_per_client_limit_refuses_the_next_connection_and_spares_the_open_session(self):
        fe = self.p.frontend
        pids = [s.pid for s in self.p.stages]
        held = Smtp(fe.smtp_port, source=CLIENT)
        self.addCleanup(held.close)
        self.assertEqual(held.reply()[0], 220)
        self.assertEqual(held.cmd("EHLO held.test")[0], 250)
        self.assertEqual(held.cmd("MAIL FROM:<held@example.org>")[0], 250)
        self.assertEqual(held.cmd("RCPT TO:<user@example.com>")[0], 250)

        r = self.ctl("--admin=" + fe.admin, "--output=json", "limits", "set", "per_client_connection_limit=1",
                     "limit_exemptions=192.0.2.0/24")
        limits = r.doc["results"][0]["response"]
        self.assertEqual(limits["per_client_connection_limit"], 1)
        self.assertEqual(limits["limit_exemptions"], ["192.0.2.0/24"])
        self.assertEqual(r.doc["drift"], [])

        code, text, seconds = greeting(fe.smtp_port, source=CLIENT)
        self.assertEqual(code, 421, text)
        self.assertIn("4.7.0", text)
        self.assertRegex(fe.log(), r"event=refused .*reason=per_client_limit")
        # Another client is not counted against this one.
        self.assertEqual(greeting(fe.smtp_port, source=OTHER_CLIENT)[0], 220)
        # The session that was open before the change goes on to delivery.
        self.assertEqual(held.cmd("DATA")[0], 354)
        held.send("Subject: held across the change\r\n\r\nbody\r\n.\r\n")
        code, text = held.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(held.cmd("QUIT")[0], 221)
        harness.wait_for(lambda: self.p.delivered("user@example.com"), 20, what="the held message delivered")
        # Its slot is free again: the limit counts live connections.
        harness.wait_for(lambda: greeting(fe.smtp_port, source=CLIENT)[0] == 220, 20, what="220 once the slot is free")
        # Nothing was restarted: the same processes, each started once.
        self.assertEqual([s.pid for s in self.p.stages], pids)
        for s in self.p.stages:
            self.assertTrue(s.alive(), s.name)
            self.assertEqual(s.log().count("event=started "), 1, s.name)
        # And the change is what the stage now reports.
        got = self.ctl("--admin=" + fe.admin, "--output=json", "limits", "get")
        self.assertEqual(got.doc["results"][0]["response"]["per_client_connection_limit"], 1)

    def test_limits_get_shows_drift_and_set_applies_to_every_replica(self):
        fe2 = Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % self.p.bridge.smtp_port], self.tmp, "frontend2")
        self.track(fe2)
        fronts = admin_flag(self.p.frontend, fe2)

        same = self.ctl(fronts, "--output=json", "limits", "get")
        self.assertEqual(same.doc["drift"], [])
        self.assertEqual(len(same.doc["results"]), 2)

        self.ctl("--admin=" + fe2.admin, "limits", "set", "max_sessions=40", "proxy_timeout_seconds=2m")
        drift = self.ctl(fronts, "--output=json", "limits", "get")
        self.assertEqual(sorted(drift.doc["drift"]), ["max_sessions", "proxy_timeout_seconds"])
        got = results_by_replica(drift.doc)
        self.assertEqual(got[self.p.frontend.admin]["max_sessions"], 100)
        self.assertEqual(got[fe2.admin]["max_sessions"], 40)
        self.assertEqual(got[fe2.admin]["proxy_timeout_seconds"], 120)
        table = self.ctl(fronts, "limits", "get")
        self.assertRegex(table.out, r"max_sessions.*drift")

        both = self.ctl(fronts, "--output=json", "limits", "set", "max_sessions=60", "proxy_timeout_seconds=100")
        for replica, limits in results_by_replica(both.doc).items():
            self.assertEqual(limits["max_sessions"], 60, replica)
        self.assertEqual(both.doc["drift"], [])
        after = self.ctl(fronts, "--output=json", "limits", "get")
        self.assertEqual(after.doc["drift"], [])
        self.assertEqual({l["max_sessions"] for l in results_by_replica(after.doc).values()}, {60})
        for stage in (self.p.frontend, fe2):
            status = self.ctl("--admin=" + stage.admin, "--output=json", "status")
            self.assertEqual(status.doc["results"][0]["response"]["sessions_max"], 60)

        # Refused values change nothing: by sluicectl before any call (exit 2, named) ...
        bad = sluicectl(fronts, "limits", "set", "max_sessions=0")
        self.assertEqual(bad.rc, 2, bad)
        self.assertIn("max_sessions", bad.err)
        # ... and by the stage itself (INVALID_ARGUMENT naming the field).
        m = harness.grpc_stubs()
        with grpc.insecure_channel(fe2.admin) as ch:
            req = m["admin_pb2"].UpdateLimitsRequest(limits=m["limits_pb2"].Limits(max_sessions=0))
            req.update_mask.paths.append("max_sessions")
            with self.assertRaises(grpc.RpcError) as e:
                m["admin_pb2_grpc"].AdminStub(ch).UpdateLimits(req, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("max_sessions", e.exception.details())
        final = self.ctl(fronts, "--output=json", "limits", "get")
        self.assertEqual({l["max_sessions"] for l in results_by_replica(final.doc).values()}, {60})


if __name__ == "__main__":
    unittest.main()
