"""tests/integration/test_pipeline.py -- the three stages working as one system (issue 6).

Starts sluice-reinject, sluice-filter-bridge and sluice-frontend on ephemeral loopback ports
and sends mail from a second loopback address (127.0.0.2), so the original client differs from
the stages' own address; checks delivery into the Maildir exactly once and byte-exact apart
from the added headers, the original client named by the frontend's Received:, and one
session findable under the same id at every stage while its message is in flight.

Never: leaves a process running (each is stopped by PID in tearDown).
"""
import concurrent.futures
import email
import os
import re
import socket
import time
import unittest

import grpc

import harness

CLIENT_ADDR = "127.0.0.2"


def body_for(i):
    # Lines that exercise dot-stuffing, an empty line, 8-bit-free long lines.
    lines = ["From: sender%d@example.org" % i, "To: user%d@example.com" % (i % 7),
             "Subject: pipeline message %d" % i, "X-Test-Serial: %d" % i, "",
             "Hello %d." % i, ".a line starting with a dot", "..two dots", "", "x" * 900, "."
             " trailing dot line", "end %d" % i]
    return "\r\n".join(lines) + "\r\n"


def split_headers(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


class PipelineTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.p = harness.Pipeline(self.tmp)
        self._procs.extend(self.p.stages)

    def test_hundred_messages_from_parallel_clients_delivered_exactly_once(self):
        n = 100

        def send(i):
            return harness.send_mail(self.p.frontend.smtp_port, "sender%d@example.org" % i,
                                     ["user%d@example.com" % (i % 7)], body_for(i), source_address=CLIENT_ADDR)

        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(send, range(n)))
        for i, (code, text) in enumerate(results):
            self.assertEqual(code, 250, "message %d: %r" % (i, text))
            self.assertRegex(text.decode(), r"queued as [0-9A-Z]+")

        def all_delivered():
            files = []
            for r in range(7):
                files += self.p.delivered("user%d@example.com" % r)
            return files if len(files) >= n else None
        files = harness.wait_for(all_delivered, timeout=60, what="100 deliveries")
        time.sleep(0.5)  # nothing more may arrive: exactly once
        files = []
        for r in range(7):
            files += self.p.delivered("user%d@example.com" % r)
        self.assertEqual(len(files), n)

        seen = {}
        for path in files:
            with open(path, "rb") as f:
                raw = f.read()
            msg = email.message_from_bytes(raw)
            serial = int(msg["X-Test-Serial"])
            self.assertNotIn(serial, seen, "message %d delivered twice" % serial)
            seen[serial] = raw
            # Byte-exact apart from added headers: the original header fields and body follow
            # the headers the stages added.
            original = body_for(serial).encode()
            ohead, obody = split_headers(original)
            head, body = split_headers(raw)
            self.assertEqual(body, obody, "body of message %d changed" % serial)
            self.assertIn(ohead, head, "original header of message %d changed" % serial)
            # The frontend's Received: names the original client, not a stage.
            received = msg.get_all("Received")
            self.assertGreaterEqual(len(received), 2)
            frontend_received = [r for r in received if "by frontend.test" in r]
            self.assertEqual(len(frontend_received), 1, received)
            self.assertIn("[%s]" % CLIENT_ADDR, frontend_received[0])
            self.assertTrue(any("by reinject.test" in r for r in received))
        self.assertEqual(sorted(seen), list(range(n)))

    def test_session_found_by_id_at_every_stage_while_message_in_flight(self):
        stubs = harness.grpc_stubs()
        admin_pb2, admin_grpc = stubs["admin_pb2"], stubs["admin_pb2_grpc"]
        # A slow client: stop in the middle of the content, so the transaction is open at
        # every stage (frontend -> filter-bridge -> reinject are all in DATA).
        s = socket.create_connection(("127.0.0.1", self.p.frontend.smtp_port), timeout=10,
                                     source_address=(CLIENT_ADDR, 0))
        f = s.makefile("rb")

        def reply():
            lines = []
            while True:
                line = f.readline()
                lines.append(line)
                if line[3:4] != b"-":
                    return b"".join(lines)
        self.assertTrue(reply().startswith(b"220"))
        for cmd in (b"EHLO slow.test", b"MAIL FROM:<slow@example.org>", b"RCPT TO:<user@example.com>", b"DATA"):
            s.sendall(cmd + b"\r\n")
            r = reply()
            self.assertIn(r[:3], (b"250", b"354"), r)
        s.sendall(b"Subject: slow\r\n\r\nfirst part\r\n")

        channel = grpc.insecure_channel(self.p.frontend.admin)
        front = admin_grpc.AdminStub(channel).ListSessions(admin_pb2.ListSessionsRequest(client_address=CLIENT_ADDR),
                                                           timeout=5)
        self.assertEqual(len(front.sessions), 1)
        sid = front.sessions[0].session_id
        self.assertTrue(sid)
        for stage in self.p.stages:
            stub = admin_grpc.AdminStub(grpc.insecure_channel(stage.admin))

            def found():
                try:
                    return stub.GetSession(admin_pb2.GetSessionRequest(session_id=sid), timeout=5)
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.NOT_FOUND:
                        return None
                    raise
            rec = harness.wait_for(found, timeout=10, what="session %s at %s" % (sid, stage.name))
            self.assertEqual(rec.session_id, sid)
            self.assertEqual(rec.client_address, CLIENT_ADDR, stage.name)
        s.sendall(b"second part\r\n.\r\n")
        self.assertTrue(reply().startswith(b"250"))
        s.sendall(b"QUIT\r\n")
        reply()
        s.close()


if __name__ == "__main__":
    unittest.main()
