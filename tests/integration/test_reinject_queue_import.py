"""tests/integration/test_reinject_queue_import.py -- a queue directory of the earlier layout
(one record file per message: data/<ID>, the record "SQR1"-framed in incoming/ active/
deferred/ hold/, written here as the earlier sluice-reinject wrote it) is taken over by today's
sluice-reinject at start instead of refused: the waiting messages are delivered into the
Maildir, the held one stays held (and is delivered once released), a broken one is listed as
corrupt with the reason, one log line per entry, and the old directories are gone.

Never: leaves a process running (every process is stopped by PID in tearDown).
"""
import os
import struct
import unittest
import zlib

import grpc

import harness


def old_record_file(record):
    payload = record.SerializeToString()
    return b"SQR1" + struct.pack("<II", len(payload), zlib.crc32(payload) & 0xffffffff) + payload


class QueueImportTest(harness.TempDirTest):

    def test_earlier_layout_is_imported_delivered_and_removed(self):
        m = harness.grpc_stubs()
        q = m["queue_pb2"]
        queue_dir = os.path.join(self.tmp, "queue")
        maildir = os.path.join(self.tmp, "mail")
        for d in ("tmp", "data", "incoming", "active", "deferred", "hold", "corrupt"):
            os.makedirs(os.path.join(queue_dir, d))
        entries = {"incoming": "0OLDQUEUE0000001", "active": "0OLDQUEUE0000002", "deferred": "0OLDQUEUE0000003",
                   "hold": "0OLDQUEUE0000004"}
        for state_dir, qid in entries.items():
            content = ("Subject: from the old queue (%s)\r\nMessage-ID: <%s@old>\r\n\r\nbody\r\n" % (state_dir, qid)).encode()
            r = q.QueueRecord(queue_id=qid, sender="alice@example.org", size_bytes=len(content), session_id="OLD" + qid[-1],
                              attempts=2 if state_dir == "deferred" else 0)
            r.recipients.add(address="bob@example.com", status=q.RECIPIENT_STATUS_PENDING)
            r.arrived_at.seconds = 1765000000
            if state_dir == "deferred":
                r.next_attempt_at.seconds = 1765000000  # long due
            if state_dir == "hold":
                r.hold_reason = "quarantine"
            with open(os.path.join(queue_dir, "data", qid), "wb") as f:
                f.write(content)
            with open(os.path.join(queue_dir, state_dir, qid), "wb") as f:
                f.write(old_record_file(r))
        broken = "0OLDQUEUE0000009"
        with open(os.path.join(queue_dir, "incoming", broken), "wb") as f:
            f.write(b"SQR1 not a record at all")

        rj = self.track(harness.Stage("sluice-reinject", ["--queue_dir=" + queue_dir, "--deliver=maildir:" + maildir],
                                      self.tmp, "reinject"))
        log = rj.wait_log(r"event=queue_import_done .*imported=(\d+)")
        self.assertEqual(log.group(1), "4")
        for qid in entries.values():
            self.assertIn("event=queue_imported queue_id=%s" % qid, rj.log())
        self.assertRegex(rj.log(), r"event=queue_corrupt queue_id=%s .*earlier queue layout" % broken)
        for d in ("tmp", "data", "incoming", "active", "deferred", "hold"):
            self.assertFalse(os.path.exists(os.path.join(queue_dir, d)), d)

        inbox = os.path.join(maildir, "bob@example.com", "new")
        harness.wait_for(lambda: os.path.isdir(inbox) and len(os.listdir(inbox)) == 3, 20, what="3 deliveries")
        self.assertEqual(harness.queue_ids(rj, "HOLD"), [entries["hold"]])
        self.assertEqual(harness.queue_ids(rj, "CORRUPT"), [broken])
        with grpc.insecure_channel(rj.admin) as ch:
            stub = m["queue_pb2_grpc"].QueueStub(ch)
            held = stub.Get(q.GetQueueEntryRequest(queue_id=entries["hold"]), timeout=5)
            self.assertEqual(held.record.hold_reason, "quarantine")
            self.assertEqual(held.record.session_id, "OLD4")
            self.assertIn("from the old queue (hold)", held.headers)
            bad = stub.Get(q.GetQueueEntryRequest(queue_id=broken), timeout=5)
            self.assertIn("earlier queue layout", bad.record.last_error)
            stub.Release(q.QueueIdsRequest(queue_ids=[entries["hold"]]), timeout=5)
        harness.wait_for(lambda: len(os.listdir(inbox)) == 4, 20, what="the released message")
        subjects = sorted(open(os.path.join(inbox, n), "rb").read().split(b"Subject: ")[1].split(b"\r\n")[0]
                          for n in os.listdir(inbox))
        self.assertEqual(subjects, [b"from the old queue (%s)" % s.encode()
                                    for s in ("active", "deferred", "hold", "incoming")])
        self.assertEqual(rj.stop(), 0)


if __name__ == "__main__":
    unittest.main()
