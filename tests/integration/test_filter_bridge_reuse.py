"""tests/integration/test_filter_bridge_reuse.py -- an upstream connection that carries many
clients' transactions (the frontend keeps its filter connections), and the kept next hop.

sluice-filter-bridge (no filters) between a raw client playing the frontend and a scripted
next hop: each transaction's XFORWARD is its own and is forgotten at its end, in the next
hop's view and in the session record (listed under the client's session id while the
transaction runs, under the connection's own id after it, so KillSession by a client's id
reaches only the connection carrying that client's transaction); a transaction without
XFORWARD after one with does not inherit its facts; a kept next-hop connection the next hop
closed while idle is replaced unseen, the reuse count limit is counted; at max_sessions an
upstream connection resting between transactions makes room for a new one.

Never: leaves a process, thread or socket running.
"""
import unittest

import grpc

import harness
import test_filter_bridge_support as fbs
from test_frontend_support import RawClient, ScriptedSmtp

MESSAGE = b"From: a@example.org\r\nTo: b@example.com\r\nSubject: reuse\r\n\r\nbody\r\n"


class BridgeReuseTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.server = ScriptedSmtp(pipelining=True)
        self.addCleanup(self.server.stop)

    def bridge(self, config=None):
        cfg = {"upstream_admin_port": 0}
        cfg.update(config or {})
        b = fbs.start_bridge(self.tmp, self.server.address, cfg)
        self.addCleanup(b.stop)
        return b

    def upstream(self, bridge):
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO frontend.test")[0], 250)
        return c

    def try_upstream(self, bridge):
        """An upstream connection greeted with 220 (then EHLO'd), or None when refused."""
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        if c.reply()[0] != 220:
            c.close()
            return None
        self.assertEqual(c.cmd("EHLO frontend.test")[0], 250)
        return c

    def transaction(self, c, xforward=None, before_data=None):
        if xforward:
            self.assertEqual(c.cmd("XFORWARD " + xforward)[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.com>")[0], 250)
        if before_data:
            before_data()
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(MESSAGE + b".\r\n")
        self.assertEqual(c.reply()[0], 250)

    def sessions(self, bridge):
        stubs = harness.grpc_stubs()
        with grpc.insecure_channel(bridge.admin) as ch:
            stub = stubs["admin_pb2_grpc"].AdminStub(ch)
            return list(stub.ListSessions(stubs["admin_pb2"].ListSessionsRequest(), timeout=10).sessions)

    def test_the_session_record_follows_each_transactions_xforward(self):
        bridge = self.bridge()
        c = self.upstream(bridge)
        own = [s.session_id for s in self.sessions(bridge)]
        self.assertEqual(len(own), 1)
        seen = {}

        def look(ident):
            def check():
                listed = self.sessions(bridge)
                self.assertEqual([s.session_id for s in listed], [ident])
                seen[ident] = listed[0]
            return check
        self.transaction(c, "NAME=a.example ADDR=192.0.2.1 PORT=1111 HELO=a.example IDENT=AAAA", look("AAAA"))
        self.transaction(c, "NAME=b.example ADDR=192.0.2.2 PORT=2222 HELO=b.example IDENT=BBBB", look("BBBB"))
        self.assertEqual((seen["AAAA"].client_address, seen["AAAA"].helo), ("192.0.2.1", "a.example"))
        self.assertEqual((seen["BBBB"].client_address, seen["BBBB"].client_name), ("192.0.2.2", "b.example"))
        # Between transactions: the connection's own id and the peer, nothing of the clients.
        after = self.sessions(bridge)
        self.assertEqual([s.session_id for s in after], own)
        self.assertEqual((after[0].client_address, after[0].client_name), ("127.0.0.1", ""))
        self.assertEqual(after[0].transactions, 2)
        # The next hop got each transaction's own facts over one connection.
        xfs = self.server.xforwards()
        self.assertEqual([x["ADDR"] for x in xfs], ["192.0.2.1", "192.0.2.2"])
        self.assertEqual(self.server.connection_count(), 1)

    def test_kill_by_a_finished_clients_id_no_longer_reaches_the_connection(self):
        bridge = self.bridge()
        c = self.upstream(bridge)
        self.transaction(c, "ADDR=192.0.2.1 IDENT=GONE")
        stubs = harness.grpc_stubs()
        with grpc.insecure_channel(bridge.admin) as ch:
            stub = stubs["admin_pb2_grpc"].AdminStub(ch)
            r = stub.KillSession(stubs["admin_pb2"].KillSessionRequest(session_id="GONE"), timeout=10)
            self.assertFalse(r.killed)
        self.transaction(c, "ADDR=192.0.2.2 IDENT=NEXT")  # the connection still serves

    def test_a_transaction_without_xforward_does_not_inherit_the_last_ones_facts(self):
        bridge = self.bridge()
        c = self.upstream(bridge)
        self.transaction(c, "NAME=a.example ADDR=192.0.2.1 IDENT=AAAA")
        self.transaction(c)
        # The next hop had the last XFORWARD on its connection: the second transaction went
        # on a new one, which carries no XFORWARD at all.
        self.assertEqual(self.server.connection_count(), 2)
        self.assertFalse([x for x in self.server.conns[1].commands if x.startswith("XFORWARD")])
        self.assertEqual(self.sessions(bridge)[0].client_address, "127.0.0.1")

    def test_a_kept_next_hop_connection_closed_while_idle_is_replaced_unseen(self):
        bridge = self.bridge({"limits": {"hop_connection_idle_limit_seconds": "60s"}})
        c = self.upstream(bridge)
        self.transaction(c, "ADDR=192.0.2.1 IDENT=AAAA")
        first = self.server.conns[0]
        self.server.close_connections(reply="421 4.4.2 next.test Error: timeout exceeded")
        harness.wait_for(lambda: first.closed, timeout=10, what="the next hop to end its side")
        self.transaction(c, "ADDR=192.0.2.2 IDENT=BBBB")
        self.assertEqual(self.server.connection_count(), 2)
        self.assertEqual(len(self.server.conns[1].messages), 1)
        m = fbs.scrape(bridge)
        self.assertEqual(m['sluice_filter_bridge_downstream_connections_total{outcome="replaced"}'], 1)
        self.assertEqual(m['sluice_filter_bridge_downstream_connections_total{outcome="reused"}'], 1)
        self.assertNotRegex(bridge.log(), r"event=downstream_failed")

    def test_the_reuse_count_limit_is_counted(self):
        bridge = self.bridge({"limits": {"hop_connection_reuse_count_limit": 1}})
        c = self.upstream(bridge)
        for ident in ("AAAA", "BBBB", "CCCC"):
            self.transaction(c, "ADDR=192.0.2.1 IDENT=" + ident)
        self.assertEqual([len(x.messages) for x in self.server.conns], [1, 1, 1])
        m = fbs.scrape(bridge)
        self.assertEqual(m['sluice_filter_bridge_limit_hits_total{limit="hop_connection_reuse_count"}'], 2)

    def test_at_max_sessions_a_resting_upstream_connection_makes_room(self):
        bridge = self.bridge({"limits": {"max_sessions": 1}})
        resting = self.upstream(bridge)
        self.transaction(resting, "ADDR=192.0.2.1 IDENT=AAAA")
        # Admitted, not refused with 421, once the first is back to waiting for a command (a
        # moment after its final reply was written).
        newcomer = harness.wait_for(lambda: self.try_upstream(bridge), 10, what="the newcomer admitted")
        self.assertEqual(resting.reply()[0], 421, "the resting connection is ended at once")
        self.assertTrue(resting.eof())
        self.transaction(newcomer, "ADDR=192.0.2.2 IDENT=BBBB")
        m = fbs.scrape(bridge)
        self.assertEqual(m['sluice_filter_bridge_limit_hits_total{limit="max_sessions"}'], 1)

    def test_at_max_sessions_a_connection_that_never_finished_a_transaction_is_not_ended(self):
        bridge = self.bridge({"limits": {"max_sessions": 1}})
        busy = self.upstream(bridge)
        c = RawClient(bridge.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 421)
        self.assertEqual(busy.cmd("NOOP")[0], 250)


if __name__ == "__main__":
    unittest.main()
