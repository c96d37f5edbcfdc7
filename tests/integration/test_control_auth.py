"""tests/integration/test_control_auth.py -- mutating admin calls need the token (issue 6).

The three real stages, each with server.admin_token_file in its config file. Without the
bearer token every mutating call (Admin KillSession, UpdateLimits, Drain, Resume; Queue Hold,
Release, Delete, Flush) is refused -- UNAUTHENTICATED without a token, PERMISSION_DENIED
with a wrong one -- and changes nothing, while the read-only calls (status, sessions,
limits, health, Queue.List) stay open. With the token the same calls work. sluicectl exits 4
without the token (or with a wrong one) and 0 with --token_file.

Never: prints the token; leaves a stage drained or a process running.
"""
import os
import unittest

import grpc

import harness
from test_control_support import (SharedStagesTest, admin_flag, health, results_by_replica, sluicectl, start_pipeline,
                                  write)

TOKEN = "t0ken-for-the-control-tests"


class AdminTokenTest(SharedStagesTest):

    @classmethod
    def start_stages(cls, owner):
        cls.token_file = write(os.path.join(cls.tmp, "admin-token"), TOKEN + "\n")
        os.chmod(cls.token_file, 0o600)
        config = "server:\n  admin_token_file: %s\n" % cls.token_file
        cls.p = start_pipeline(owner, frontend_config=config, bridge_config=config, reinject_config=config)
        cls.all = admin_flag(*cls.p.stages)
        cls.m = harness.grpc_stubs()

    def stubs(self, stage):
        ch = grpc.insecure_channel(stage.admin)
        self.addCleanup(ch.close)
        return self.m["admin_pb2_grpc"].AdminStub(ch), self.m["queue_pb2_grpc"].QueueStub(ch)

    def assertRefused(self, call, code, token=None):
        md = (("authorization", "Bearer " + token),) if token else None
        with self.assertRaises(grpc.RpcError) as e:
            call(md)
        self.assertEqual(e.exception.code(), code)
        self.assertNotIn(TOKEN, e.exception.details() or "")

    def test_mutating_calls_are_refused_without_the_token_and_reads_stay_open(self):
        a = self.m["admin_pb2"]
        q = self.m["queue_pb2"]
        limits_pb2 = self.m["limits_pb2"]
        for stage in self.p.stages:
            admin, queue = self.stubs(stage)
            update = a.UpdateLimitsRequest(limits=limits_pb2.Limits(max_sessions=7))
            update.update_mask.paths.append("max_sessions")
            mutating = {
                "UpdateLimits": lambda md: admin.UpdateLimits(update, metadata=md, timeout=5),
                "Drain": lambda md: admin.Drain(a.DrainRequest(), metadata=md, timeout=5),
                "Resume": lambda md: admin.Resume(a.ResumeRequest(), metadata=md, timeout=5),
                "KillSession": lambda md: admin.KillSession(a.KillSessionRequest(session_id="x"), metadata=md,
                                                            timeout=5),
            }
            if stage is self.p.reinject:
                ids = q.QueueIdsRequest(queue_ids=["NOSUCH"])
                mutating.update({
                    "Hold": lambda md: queue.Hold(ids, metadata=md, timeout=5),
                    "Release": lambda md: queue.Release(ids, metadata=md, timeout=5),
                    "Delete": lambda md: queue.Delete(ids, metadata=md, timeout=5),
                    "Flush": lambda md: queue.Flush(q.QueueIdsRequest(all=True), metadata=md, timeout=5),
                })
            for name, call in mutating.items():
                with self.subTest(stage=stage.name, method=name):
                    self.assertRefused(call, grpc.StatusCode.UNAUTHENTICATED)
                    self.assertRefused(call, grpc.StatusCode.PERMISSION_DENIED, token="wrong-token")
            # Nothing changed.
            status = admin.GetStatus(a.GetStatusRequest(), timeout=5)
            self.assertEqual(a.ServingState.Name(status.state), "SERVING")
            self.assertEqual(admin.GetLimits(a.GetLimitsRequest(), timeout=5).max_sessions, 100)
            # Reads are open.
            admin.ListSessions(a.ListSessionsRequest(), timeout=5)
            with self.assertRaises(grpc.RpcError) as e:
                admin.GetSession(a.GetSessionRequest(session_id="nope"), timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
            self.assertEqual(health(stage.admin, "sluice.v1.Admin"), "SERVING")
            if stage is self.p.reinject:
                queue.List(q.ListQueueRequest(), timeout=5)
            # With the token the same call goes through.
            md = (("authorization", "Bearer " + TOKEN),)
            self.assertEqual(mutating["UpdateLimits"](md).max_sessions, 7)
            restore = a.UpdateLimitsRequest(limits=limits_pb2.Limits(max_sessions=100))
            restore.update_mask.paths.append("max_sessions")
            admin.UpdateLimits(restore, metadata=md, timeout=5)
        self.assertRegex(self.p.frontend.log(), r"event=admin_update_limits ")

    def test_sluicectl_exits_4_without_the_token_and_0_with_it(self):
        for args in (("limits", "set", "max_sessions=50"), ("drain",), ("resume",), ("kill", "x")):
            r = sluicectl(self.all, *args)
            self.assertEqual(r.rc, 4, r)
            self.assertIn("UNAUTHENTICATED", r.err)
        wrong = sluicectl(self.all, "--token=wrong", "limits", "set", "max_sessions=50")
        self.assertEqual(wrong.rc, 4, wrong)
        self.assertIn("PERMISSION_DENIED", wrong.err)
        flush = sluicectl("--admin=" + self.p.reinject.admin, "queue", "flush")
        self.assertEqual(flush.rc, 4, flush)
        for stage in self.p.stages:
            self.assertEqual(health(stage.admin, ""), "SERVING", stage.name)  # the drain was refused
        reads = sluicectl(self.all, "--output=json", "limits", "get")
        self.assertEqual(reads.rc, 0, reads)
        self.assertEqual({l["max_sessions"] for l in results_by_replica(reads.doc).values()}, {100})
        self.assertEqual(sluicectl(self.all, "status").rc, 0)
        self.assertEqual(sluicectl(self.all, "sessions").rc, 0)

        ok = sluicectl(self.all, "--token_file=" + self.token_file, "--output=json", "limits", "set", "max_sessions=50")
        self.assertEqual(ok.rc, 0, ok)
        self.assertEqual({l["max_sessions"] for l in results_by_replica(ok.doc).values()}, {50})
        self.assertEqual(sluicectl(self.all, "--token_file=" + self.token_file, "limits", "set",
                                   "max_sessions=100").rc, 0)
        self.assertNotIn(TOKEN, ok.out + ok.err)


if __name__ == "__main__":
    unittest.main()
