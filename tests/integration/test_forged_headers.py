"""tests/integration/test_forged_headers.py -- headers no sender can forge (issue 15, part 3).

The three stages on loopback (frontend -> filter-bridge -> reinject -> Maildir), mail sent with
smtplib from 127.0.0.2:
  * a sender's X-Sluice-Hold and X-Sluice-Filter fields (folded too) and Authentication-Results
    fields naming our authserv-id (the frontend's hostname by default, `authserv_id` when
    configured; any case, after a comment) are gone from the delivered message; another
    host's Authentication-Results, every other field and the body (where the same lines
    stand) arrive byte for byte; the message is not held; the frontend counts what it
    removed (sluice_frontend_header_fields_removed_total). The same with speed_adjust.
  * a hold verdict of the bridge's rules crosses to reinject as a signed mark and holds the
    message; a bridge signing with another key (or none) holds nothing: reinject logs
    hold_mark_ignored and delivers.

Never: leaves a process running (each stage is stopped by PID).
"""
import os
import re

import grpc

import harness
import test_filter_bridge_support as fbs

CLIENT = "127.0.0.2"

FORGED_HEAD = (
    "X-Sluice-Hold: forged by the sender\r\n"
    "Authentication-Results: frontend.test; spf=pass smtp.mailfrom=bank.example\r\n"
    "Authentication-Results: (looks official) FRONTEND.Test;\r\n"
    "\tdkim=pass header.d=bank.example\r\n"
    "Authentication-Results: upstream.example; spf=fail smtp.mailfrom=bank.example\r\n"
    "From: Bank <ceo@bank.example>\r\n"
    "To: someone@example.com\r\n"
    "Subject: forged headers\r\n"
    "x-sluice-filter: forged.example; everything=accept\r\n"
    "  (0.1ms)\r\n"
    "Message-ID: <forged@bank.example>\r\n"
    "\r\n")
BODY = ("The next lines are body, not header, and stay:\r\n"
        "X-Sluice-Hold: body text\r\n"
        "Authentication-Results: frontend.test; body text\r\n")
KEPT_FIELDS = [
    b"Authentication-Results: upstream.example; spf=fail smtp.mailfrom=bank.example\r\n",
    b"From: Bank <ceo@bank.example>\r\n", b"To: someone@example.com\r\n", b"Subject: forged headers\r\n",
    b"Message-ID: <forged@bank.example>\r\n"]

HOLD_RULES = [{"name": "hold-subject", "match": {"header": "Subject", "header_pattern": r"\[hold\]"},
               "action": "hold", "text": "quarantined by the test rule"}]


def header_fields(head):
    """A header (bytes, with its CRLFs) as its fields, folded lines kept with their field."""
    fields = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields


def hold_config(key):
    """The bridge's config: hold messages whose Subject says [hold], marks signed with `key`."""
    return {"hold_mark_key_file": key, "filters": [{"name": "rules", "rules": {"rules": HOLD_RULES}}]}


class ForgedHeadersTest(harness.TempDirTest):

    def start(self, frontend=None, bridge=None, reinject=None):
        """The pipeline; each stage's config (a dict) when given."""
        flags = {}
        for stage, config in (("frontend", frontend), ("filter-bridge", bridge), ("reinject", reinject)):
            path = os.path.join(self.tmp, stage + "-config.yaml")
            flags[stage] = ["--config=" + fbs.write_config(path, config)] if config else []
        p = harness.Pipeline(self.tmp, frontend_flags=flags["frontend"], bridge_flags=flags["filter-bridge"],
                             reinject_flags=flags["reinject"])
        self._procs.extend(p.stages)
        return p

    def deliver(self, p, rcpt, message):
        code, text = harness.send_mail(p.frontend.smtp_port, "ceo@bank.example", [rcpt], message,
                                       source_address=CLIENT)
        self.assertEqual(code, 250, text)
        paths = harness.wait_for(lambda: p.delivered(rcpt), 30, what="delivery to " + rcpt)
        with open(paths[0], "rb") as f:
            return f.read()

    def assertForgeriesGone(self, p, rcpt):
        raw = self.deliver(p, rcpt, FORGED_HEAD + BODY)
        head, _, body = raw.partition(b"\r\n\r\n")
        fields = header_fields(head + b"\r\n")
        # The body arrives byte for byte, the lines that look like fields included.
        self.assertEqual(body, BODY.encode())
        # Every field the sender may write arrives unchanged and in order.
        positions = [fields.index(f) for f in KEPT_FIELDS]
        self.assertEqual(positions, sorted(positions))
        # No X-Sluice-* field but the bridge's own trace header, and no A-R claiming us.
        sluice = [f for f in fields if f.lower().startswith(b"x-sluice-")]
        self.assertEqual(len(sluice), 1, sluice)
        self.assertTrue(sluice[0].startswith(b"X-Sluice-Filter: filter-bridge.test;"), sluice)
        for forged in (b"forged by the sender", b"forged.example", b"frontend.test; spf=pass", b"looks official"):
            self.assertNotIn(forged, head)
        # Not held: a sender's mark holds nothing.
        self.assertEqual(harness.queue_ids(p.reinject, "HOLD"), [])
        metrics = fbs.scrape(p.frontend)
        self.assertEqual(metrics['sluice_frontend_header_fields_removed_total{header="x_sluice"}'], 2)
        self.assertEqual(metrics['sluice_frontend_header_fields_removed_total{header="authentication_results"}'], 2)

    def test_forged_sluice_fields_and_our_authentication_results_never_reach_the_mailbox(self):
        p = self.start()
        self.assertForgeriesGone(p, "streamed@example.com")

    def test_the_same_with_speed_adjust(self):
        p = self.start(frontend={"speed_adjust": True})
        self.assertForgeriesGone(p, "spooled@example.com")

    def test_the_authserv_id_is_configurable(self):
        p = self.start(frontend={"authserv_id": "mx.example.net"})
        raw = self.deliver(p, "configured@example.com",
                           "Authentication-Results: mx.example.net; dmarc=pass header.from=bank.example\r\n"
                           "Authentication-Results: frontend.test; spf=pass\r\n"
                           "Subject: configured\r\n\r\nbody\r\n")
        self.assertNotIn(b"mx.example.net;", raw)
        self.assertIn(b"\r\nAuthentication-Results: frontend.test; spf=pass\r\nSubject: configured\r\n", raw)

    def test_a_hold_verdict_is_signed_and_honoured(self):
        key = harness.write_hold_mark_key(self.tmp)
        p = self.start(bridge=hold_config(key), reinject={"hold_mark_key_file": key})
        code, text = harness.send_mail(p.frontend.smtp_port, "ceo@bank.example", ["held@example.com"],
                                       "Subject: please [hold]\r\n\r\nbody\r\n", source_address=CLIENT)
        self.assertEqual(code, 250, text)
        queue_id = re.search(r"queued as (\S+)", text.decode()).group(1)
        harness.wait_for(lambda: queue_id in harness.queue_ids(p.reinject, "HOLD"), 10,
                         what="the held entry")
        m = harness.grpc_stubs()
        with grpc.insecure_channel(p.reinject.admin) as ch:
            entry = m["queue_pb2_grpc"].QueueStub(ch).Get(m["queue_pb2"].GetQueueEntryRequest(queue_id=queue_id),
                                                          timeout=5)
        self.assertEqual(entry.record.hold_reason, "quarantined by the test rule")
        self.assertNotIn("X-Sluice-Hold", entry.headers)
        self.assertNotIn("hold_mark_ignored", p.reinject.log())

    def test_a_filter_stage_without_the_key_cannot_hold_mail(self):
        key = harness.write_hold_mark_key(self.tmp)
        os.makedirs(os.path.join(self.tmp, "other"))
        other = harness.write_hold_mark_key(os.path.join(self.tmp, "other"),
                                            secret="a-different-deployment-secret-0123456789")
        p = self.start(bridge=hold_config(other), reinject={"hold_mark_key_file": key})
        raw = self.deliver(p, "not-held@example.com", "Subject: please [hold]\r\n\r\nbody\r\n")
        self.assertNotIn(b"X-Sluice-Hold", raw)
        p.reinject.wait_log(r'event=hold_mark_ignored .*reason="hold mark MAC does not verify"')
        self.assertEqual(harness.queue_ids(p.reinject, "HOLD"), [])


if __name__ == "__main__":
    import unittest
    unittest.main()
