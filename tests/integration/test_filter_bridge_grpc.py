"""tests/integration/test_filter_bridge_grpc.py -- a gRPC ContentFilter round trip through the
sluice pipeline (issue 4): sluice-frontend -> sluice-filter-bridge (a grpc filter) ->
sluice-reinject, with a sluice.v1.ContentFilter written here in Python (grpcio, stubs from
proto/ by harness.grpc_stubs()).

The filter answers REJECT with its own code and text for one subject, which the sender gets
verbatim, and ACCEPT with header edits otherwise, which the delivered message carries; it
sees the complete session record (the frontend's, fetched by the bridge), the envelope, every
header field and the body byte for byte. A filter that is down fails by its policy (4xx).

Never: leaves a process or the gRPC server running.
"""
import email
import shutil
import tempfile
import unittest

import harness
import test_filter_bridge_support as fbs

BODY = b"First line.\r\n.a dotted line\r\n\r\n" + b"y" * 5000 + b"\r\nlast line\r\n"


def message(subject, serial):
    return (b"From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: " + subject.encode() +
            b"\r\nDate: Tue, 01 Jan 2030 00:00:00 +0000\r\nMessage-ID: <grpc-%d@example.org>\r\n"
            b"X-Drop-Me: please\r\n\r\n" % serial + BODY)


class GrpcFilterTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.stages = []
        cls.filter = fbs.ContentFilterServer(cls.decide)
        try:
            cls.reinject = fbs.start_reinject(cls.tmp)
            cls.stages.append(cls.reinject)
            frontend_admin = fbs.free_port()
            # A second gRPC filter that is down, allowed to fail: proves the policy path and
            # that the chain goes on to the next filter.
            config = {"upstream_admin_port": frontend_admin,
                      "filters": [{"name": "scanner", "grpc": {"address": cls.filter.address},
                                   "timeout_seconds": "20s"},
                                  {"name": "down", "grpc": {"address": "127.0.0.1:%d" % fbs.free_port()},
                                   "timeout_seconds": "2s", "on_failure": "accept"}]}
            cls.bridge = fbs.start_bridge(cls.tmp, "127.0.0.1:%d" % cls.reinject.smtp_port, config)
            cls.stages.append(cls.bridge)
            cls.frontend = harness.Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % cls.bridge.smtp_port],
                                         cls.tmp, "frontend", admin_listen="127.0.0.1:%d" % frontend_admin)
            cls.stages.append(cls.frontend)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in reversed(cls.stages):
            s.stop()
        cls.filter.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def decide(start, headers, body):
        pb = harness.grpc_stubs()["filter_pb2"]
        subject = dict(headers).get("Subject", "")
        if "grpc-reject" in subject:
            return pb.FilterVerdict(action=pb.FilterVerdict.REJECT, smtp_code=554, enhanced_code="5.7.0",
                                    text="Refused by the gRPC filter: custom words", reason="subject")
        edits = [pb.HeaderEdit(op=pb.HeaderEdit.ADD, name="X-Scanned", value="clean, body %d bytes" % len(body)),
                 pb.HeaderEdit(op=pb.HeaderEdit.REPLACE, name="Subject", value="[scanned] " + subject),
                 pb.HeaderEdit(op=pb.HeaderEdit.REMOVE, name="X-Drop-Me")]
        return pb.FilterVerdict(action=pb.FilterVerdict.ACCEPT, header_edits=edits)

    def test_reject_with_custom_text_reaches_the_sender(self):
        before = len(self.filter.seen())
        code, text = harness.send_mail(self.frontend.smtp_port, "sender@example.org", ["reject@example.com"],
                                       message("please grpc-reject this", 1))
        self.assertEqual(code, 554)
        self.assertEqual(text.decode(), "5.7.0 Refused by the gRPC filter: custom words")
        self.assertEqual(len(self.filter.seen()), before + 1)
        self.assertEqual(fbs.maildir_messages(self.reinject.maildir, "reject@example.com"), [])

    def test_accept_with_header_edits_and_what_the_filter_saw(self):
        raw = message("hello", 2)
        code, text = harness.send_mail(self.frontend.smtp_port, "sender@example.org", ["accept@example.com"], raw)
        self.assertEqual(code, 250, text)
        got = harness.wait_for(lambda: fbs.maildir_messages(self.reinject.maildir, "accept@example.com"),
                               timeout=30, what="delivery")[0]
        msg = email.message_from_bytes(got)
        self.assertEqual(msg.get_all("X-Scanned"), ["clean, body %d bytes" % len(BODY)])
        self.assertEqual(msg.get_all("Subject"), ["[scanned] hello"])
        self.assertIsNone(msg.get_all("X-Drop-Me"))
        self.assertTrue(got.endswith(b"\r\n\r\n" + BODY))
        self.assertRegex(msg["X-Sluice-Filter"], r"^filter-bridge\.test; scanner=accept \([^)]*\);\s+down=error \(")

        start, headers, body = [c for c in self.filter.seen() if dict(c[1]).get("Subject") == "hello"][-1]
        self.assertTrue(start.session.complete, start.session)
        self.assertEqual(start.session.client_address, "127.0.0.1")
        self.assertEqual(start.session.helo, "client.test")
        self.assertTrue(start.session.session_id)
        self.assertEqual(start.envelope.mail_from, "sender@example.org")
        self.assertEqual([r.address for r in start.envelope.recipients], ["accept@example.com"])
        self.assertEqual(body, BODY)
        names = [h[0] for h in headers]
        # The frontend's Received: first, then the sender's fields in order.
        self.assertEqual(names, ["Received", "From", "To", "Subject", "Date", "Message-ID", "X-Drop-Me"])
        # The whole message as the bridge got it: the sender's plus the frontend's Received:.
        self.assertGreater(start.size_bytes, len(raw))
        self.assertLess(start.size_bytes, len(raw) + 1000)


if __name__ == "__main__":
    unittest.main()
