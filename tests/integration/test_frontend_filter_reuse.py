"""tests/integration/test_frontend_filter_reuse.py -- sluice-frontend's kept filter connections.

A real sluice-frontend (one io thread, so every session shares one pool) in front of a
scripted filter: with filter_connection_reuse (the default) the filter sees fewer
connections than transactions, and each transaction's XFORWARD names its own client even
when two clients alternate over one connection; without it, one connection per transaction
ended with QUIT, as Postfix does. A kept connection the filter closed while it was idle
(with or without a 421 first) is replaced without the client seeing a 4xx; the idle, reuse
count and reuse time limits close connections and are counted; a drain QUITs the idle ones.

Never: waits on a fixed sleep for something it can poll; leaves a process or thread running.
"""
import smtplib
import time
import unittest

import grpc

from harness import TempDirTest, send_mail
from test_frontend_support import DROP, ScriptedSmtp, admin_stubs, metric, start_frontend, strip_received, wait_for

BODY = b"Subject: reuse\r\n\r\nhello\r\n"
ONE_THREAD = "server:\n  threads: 1\n"


def connections(fe, outcome):
    return metric(fe.metrics_port, 'sluice_frontend_filter_connections_total{outcome="%s"}' % outcome)


def limit_hits(fe, limit):
    return metric(fe.metrics_port, 'sluice_frontend_limit_hits_total{limit="%s"}' % limit)


class FilterReuseTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)

    def frontend(self, limits="", extra=""):
        config = ONE_THREAD + extra + ("limits:\n" + limits if limits else "")
        return start_frontend(self, self.filter.address, config=config)

    def send(self, fe, **kw):
        code, text = send_mail(fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY, **kw)
        self.assertEqual(code, 250, text)

    def test_the_filter_sees_fewer_connections_than_transactions(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n")
        for _ in range(6):
            self.send(fe)  # a new client session each time
        self.assertEqual(len(self.filter.messages()), 6)
        self.assertEqual(self.filter.connection_count(), 1)
        conn = self.filter.conns[0]
        self.assertEqual(len([c for c in conn.commands if c == "EHLO frontend.test"]), 1)
        self.assertEqual(len([c for c in conn.commands if c.startswith("XFORWARD ")]), 6, "XFORWARD before every MAIL")
        self.assertNotIn("QUIT", conn.commands)
        self.assertEqual((connections(fe, "opened"), connections(fe, "reused")), (1, 5))

    def test_without_reuse_each_transaction_has_its_own_connection_ended_with_quit(self):
        fe = self.frontend(extra="filter_connection_reuse: false\n")
        self.send(fe)
        self.send(fe)
        self.assertEqual(self.filter.connection_count(), 2)
        wait_for(lambda: all(c.closed for c in self.filter.conns), 10, what="both filter connections ended")
        for conn in self.filter.conns:
            self.assertEqual(len(conn.messages), 1)
            self.assertEqual(conn.commands[-1], "QUIT")
        self.assertEqual((connections(fe, "opened"), connections(fe, "reused")), (2, 0))

    def test_each_transaction_carries_its_own_clients_xforward(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n")
        a = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="a.test", timeout=20)
        self.addCleanup(a.close)
        b = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="b.test", timeout=20,
                         source_address=("127.0.0.2", 0))
        self.addCleanup(b.close)
        a.ehlo("a.test")
        b.ehlo("b.test")
        for client in (a, b, a, b):  # alternating over the one kept connection
            self.assertEqual(client.sendmail("alice@example.org", ["bob@example.net"], BODY), {})
        self.assertEqual(self.filter.connection_count(), 1)
        xfs = self.filter.xforwards()
        self.assertEqual([(x["ADDR"], x["HELO"]) for x in xfs],
                         [("127.0.0.1", "a.test"), ("127.0.0.2", "b.test")] * 2)
        self.assertEqual(xfs[0]["IDENT"], xfs[2]["IDENT"])
        self.assertEqual(xfs[1]["IDENT"], xfs[3]["IDENT"])
        self.assertNotEqual(xfs[0]["IDENT"], xfs[1]["IDENT"])
        self.assertEqual(xfs[0]["PORT"], str(a.sock.getsockname()[1]))
        self.assertEqual(xfs[1]["PORT"], str(b.sock.getsockname()[1]))
        # The Received: of each message names the same session id as its XFORWARD.
        for xf, message in zip(xfs, self.filter.messages()):
            received, _ = strip_received(message)
            self.assertIn(("id " + xf["IDENT"]).encode(), received)

    def test_a_connection_the_filter_closed_while_idle_is_replaced_without_a_4xx(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n")
        self.send(fe)
        first = self.filter.conns[0]
        self.filter.close_connections()
        wait_for(lambda: first.closed, 10, what="the filter to end its side")
        self.send(fe)
        # And a filter that says 421 as it ends an idle connection (Postfix's smtpd timeout).
        self.filter.close_connections(reply="421 4.4.2 filter.test Error: timeout exceeded")
        wait_for(lambda: self.filter.conns[1].closed, 10, what="the filter to end its side")
        self.send(fe)
        self.assertEqual([len(c.messages) for c in self.filter.conns], [1, 1, 1])
        self.assertEqual(connections(fe, "replaced"), 2)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_proxy_failures_total{reason="lost"}'), 0)
        self.assertRegex(fe.log(), r"event=filter_connection_replaced")
        self.assertNotRegex(fe.log(), r"event=proxy_failed")

    def test_a_connection_lost_after_its_transaction_began_is_a_451(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n")
        self.send(fe)
        self.filter.script["rcpt"] = DROP
        code, text = send_mail(fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual(code, 451, text)
        self.assertEqual(connections(fe, "replaced"), 0, "XFORWARD and MAIL were answered: no second try")

    def test_idle_connections_are_closed_at_the_idle_limit_and_counted(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 1s\n")
        self.send(fe)
        conn = self.filter.conns[0]
        wait_for(lambda: conn.closed, 20, what="the idle filter connection to be closed")
        self.assertEqual(conn.commands[-1], "QUIT")
        self.assertEqual(limit_hits(fe, "hop_connection_idle"), 1)

    def test_the_reuse_count_limit_closes_a_connection_after_that_many_transactions(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n  hop_connection_reuse_count_limit: 2\n")
        for _ in range(5):
            self.send(fe)
        self.assertEqual([len(c.messages) for c in self.filter.conns], [2, 2, 1])
        wait_for(lambda: self.filter.conns[0].closed and self.filter.conns[1].closed, 10, what="the used-up connections closed")
        self.assertEqual(self.filter.conns[0].commands[-1], "QUIT")
        self.assertFalse(self.filter.conns[2].closed)
        self.assertEqual(limit_hits(fe, "hop_connection_reuse_count"), 2)

    def test_the_reuse_time_limit_stops_reuse_of_an_old_connection(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n  hop_connection_reuse_time_limit_seconds: 1s\n")
        self.send(fe)
        time.sleep(1.2)  # the connection's age has to pass the limit; nothing to poll
        self.send(fe)
        self.assertEqual(self.filter.connection_count(), 2)
        self.assertEqual(limit_hits(fe, "hop_connection_reuse_time"), 1)

    def test_a_drain_quits_the_idle_connections(self):
        fe = self.frontend(limits="  hop_connection_idle_limit_seconds: 60s\n")
        self.send(fe)
        conn = self.filter.conns[0]
        mods = admin_stubs()
        with grpc.insecure_channel(fe.admin) as ch:
            stub = mods["admin_pb2_grpc"].AdminStub(ch)
            stub.Drain(mods["admin_pb2"].DrainRequest(), timeout=10)
            wait_for(lambda: conn.closed, 10, what="the idle filter connection to be closed")
            self.assertEqual(conn.commands[-1], "QUIT")
            stub.Resume(mods["admin_pb2"].ResumeRequest(), timeout=10)


if __name__ == "__main__":
    unittest.main()
