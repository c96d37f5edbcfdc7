"""tests/integration/test_control_sluicectl.py -- sluicectl against the running pipeline (issue 6).

The real sluicectl binary against the three real stages, its --output=json document checked
field by field: status of every stage; sessions (--client, --stage) and `session ID` found at
all three stages while a slow message is in flight; `kill ID` (the client gets 421 4.7.0 and
nothing is queued); drain and resume (every stage's health flips to NOT_SERVING and back);
the queue commands at reinject (list, show, hold, release, delete, flush); and the exit codes
scripts rely on: 0, 1 (one replica failed), 2 (usage), 3 (unknown id), 5 (nothing
reachable). Exit code 4 (no token) is in test_control_auth.py.

Reinject delivers into a "Maildir" path that is a plain file until the queue test removes
it, so queued messages stay deferred until then.

Never: leaves a session, a drained stage or a process behind; uses anything but loopback.
"""
import os
import unittest

import harness
from test_control_support import (SharedStagesTest, Smtp, admin_flag, greeting, health, results_by_replica,
                                  sluicectl, start_pipeline, unused_port, write)


class SluicectlTest(SharedStagesTest):

    @classmethod
    def start_stages(cls, owner):
        cls.blocker = write(os.path.join(cls.tmp, "maildir"), "")  # a file: deliveries defer
        cls.p = start_pipeline(owner, deliver="maildir:" + cls.blocker)
        cls.all = admin_flag(*cls.p.stages)
        cls.by_stage = {s.admin: s for s in cls.p.stages}

    def ctl(self, *args, want=0):
        r = sluicectl(*args)
        self.assertEqual(r.rc, want, r)
        return r

    def slow_session(self, source):
        """A transaction open at every stage from `source`; returns (client, session id)."""
        c = Smtp(self.p.frontend.smtp_port, source=source)
        self.addCleanup(c.close)
        c.start_transaction(self, sender="slow-%s@example.org" % source)
        r = self.ctl("--admin=" + self.p.frontend.admin, "--output=json", "sessions", "--client=" + source)
        sessions = r.doc["results"][0]["response"]["sessions"]
        self.assertEqual(len(sessions), 1, r)
        return c, sessions[0]["session_id"]

    def test_status_shows_every_stage_serving(self):
        r = self.ctl(self.all, "--output=json", "status")
        self.assertEqual(r.doc["command"], "status")
        self.assertEqual(r.doc["errors"], [])
        got = results_by_replica(r.doc)
        self.assertEqual(set(got), set(self.by_stage))
        for replica, s in got.items():
            stage = self.by_stage[replica]
            self.assertEqual(s["stage"], {"frontend": "frontend", "filter-bridge": "filter-bridge",
                                          "reinject": "reinject"}[stage.name])
            self.assertEqual(s["state"], "SERVING")
            self.assertIs(s["accepting"], True)
            self.assertEqual(s["instance"], stage.name + ".test")
            self.assertEqual(s["sessions_max"], 100)
        reinject = got[self.p.reinject.admin]
        self.assertIsInstance(reinject["disk_free_bytes"], str)  # proto3 JSON: 64-bit as a string
        self.assertGreater(int(reinject["disk_free_bytes"]), 0)
        self.assertGreater(got[self.p.bridge.admin]["filter_capacity"], 0)
        table = self.ctl(self.all, "status")
        for name in ("frontend", "filter-bridge", "reinject"):
            self.assertIn(name, table.out)

    def test_sessions_and_session_id_find_an_in_flight_message_at_all_three_stages(self):
        c, sid = self.slow_session("127.0.0.2")

        def everywhere():
            r = self.ctl(self.all, "--output=json", "sessions", "--client=127.0.0.2")
            found = [(x["replica"], s) for x in r.doc["results"] for s in x["response"]["sessions"]]
            return found if len(found) == 3 else None
        found = harness.wait_for(everywhere, 20, what="the session at all three stages")
        self.assertEqual({s["session_id"] for _, s in found}, {sid})
        self.assertEqual({s["stage"] for _, s in found}, {"frontend", "filter-bridge", "reinject"})
        for replica, s in found:
            self.assertEqual(s["stage"], {"frontend": "frontend", "filter-bridge": "filter-bridge",
                                          "reinject": "reinject"}[self.by_stage[replica].name])
            self.assertEqual(s["client_address"], "127.0.0.2")
            self.assertEqual(s["current"]["mail_from"], "slow-127.0.0.2@example.org")
            self.assertEqual([r["address"] for r in s["current"]["recipients"]], ["user@example.com"])
        # Every stage names the original client alike (not a stage's own peer's name).
        self.assertEqual(len({s["client_name"] for _, s in found}), 1, found)

        only = self.ctl(self.all, "--stage=filter-bridge", "--output=json", "sessions", "--client=127.0.0.2")
        stages = [s["stage"] for x in only.doc["results"] for s in x["response"]["sessions"]]
        self.assertEqual(stages, ["filter-bridge"])

        r = self.ctl(self.all, "--output=json", "session", sid)
        self.assertEqual(r.doc["session_id"], sid)
        self.assertEqual(r.doc["not_found"], [])
        self.assertEqual(r.doc["errors"], [])
        got = results_by_replica(r.doc)
        self.assertEqual(set(got), set(self.by_stage))
        for replica, s in got.items():
            self.assertEqual(s["session_id"], sid)
            self.assertEqual(s["client_address"], "127.0.0.2")
            self.assertEqual(s["helo"], "slow.test", replica)
            # Every stage stamps the session's last command (issue 11: it used to be unset).
            self.assertIn("last_command_at", s, replica)
        table = self.ctl(self.all, "session", sid)
        for name in ("frontend", "filter-bridge", "reinject"):
            self.assertIn(name, table.out)
        rows = [line for line in table.out.splitlines() if " ago" in line]
        self.assertEqual(len(rows), 3, table.out)  # LAST_COMMAND "Ns ago" at every stage, not "-"

        code, text = c.finish()
        self.assertEqual(code, 250, text)
        c.cmd("QUIT")
        gone = harness.wait_for(lambda: (lambda r: r if r.rc == 3 else None)(sluicectl(self.all, "--output=json",
                                                                                          "session", sid)),
                                20, what="the session gone everywhere")
        self.assertEqual(sorted(gone.doc["not_found"]), sorted(self.by_stage))
        self.assertEqual(gone.doc["results"], [])

    def test_kill_ends_the_session_with_421_and_queues_nothing(self):
        c, sid = self.slow_session("127.0.0.3")
        r = self.ctl(self.all, "--output=json", "kill", sid)
        self.assertEqual(r.doc["session_id"], sid)
        self.assertEqual(r.doc["errors"], [])
        killed = {x["replica"]: x["response"]["killed"] for x in r.doc["results"]}
        self.assertIs(killed[self.p.frontend.admin], True, r)
        code, text = c.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.7.0", text)
        self.assertIsNone(c.reply()[0])  # and the connection is closed
        harness.wait_for(lambda: sluicectl(self.all, "session", sid).rc == 3, 20, what="the session gone")
        self.ctl(self.all, "kill", sid, want=3)
        q = self.ctl("--admin=" + self.p.reinject.admin, "--output=json", "queue", "list",
                     "--sender=slow-127.0.0.3@example.org")
        self.assertEqual(q.doc["results"][0]["response"]["records"], [])

    def test_drain_and_resume_flip_every_stage_health(self):
        self.addCleanup(sluicectl, self.all, "resume")
        r = self.ctl(self.all, "--output=json", "drain", "--timeout=60s")
        for replica, s in results_by_replica(r.doc).items():
            self.assertEqual(s["state"], "DRAINING", replica)
            self.assertIs(s["accepting"], False)
        for stage in self.p.stages:
            self.assertEqual(health(stage.admin, ""), "NOT_SERVING", stage.name)
            self.assertEqual(health(stage.admin, "sluice.v1.Admin"), "NOT_SERVING", stage.name)
        try:
            code, text, _ = greeting(self.p.frontend.smtp_port)
            self.assertEqual(code, 421, text)
        except ConnectionRefusedError:
            pass  # not listening while drained is a refusal too
        status = self.ctl(self.all, "--output=json", "status")
        self.assertEqual({s["state"] for s in results_by_replica(status.doc).values()}, {"DRAINING"})

        r = self.ctl(self.all, "--output=json", "resume")
        for replica, s in results_by_replica(r.doc).items():
            self.assertEqual(s["state"], "SERVING", replica)
        for stage in self.p.stages:
            self.assertEqual(health(stage.admin, ""), "SERVING", stage.name)
            self.assertEqual(health(stage.admin, "sluice.v1.Admin"), "SERVING", stage.name)
        harness.wait_for(lambda: greeting(self.p.frontend.smtp_port)[0] == 220, 20, what="220 after resume")

    def queue(self, *args, want=0):
        return self.ctl("--admin=" + self.p.reinject.admin, "--output=json", "queue", *args, want=want)

    def records(self, *args):
        return self.queue("list", *args).doc["results"][0]["response"]["records"]

    def test_queue_list_show_hold_release_delete_flush(self):
        for n in (1, 2):
            code, text = harness.send_mail(self.p.frontend.smtp_port, "q%d@example.org" % n, ["user@example.com"],
                                           "Subject: queued %d\r\n\r\nbody %d\r\n" % (n, n))
            self.assertEqual(code, 250, text)

        def deferred(sender):
            return lambda: (lambda r: r[0] if r else None)(self.records("--state=deferred", "--sender=" + sender))
        q1 = harness.wait_for(deferred("q1@example.org"), 30, what="q1 deferred")
        q2 = harness.wait_for(deferred("q2@example.org"), 30, what="q2 deferred")
        id1, id2 = q1["queue_id"], q2["queue_id"]
        self.assertEqual(q1["recipients"][0]["address"], "user@example.com")
        self.assertIn("maildir", q1["last_error"])
        self.assertGreaterEqual(int(q1["size_bytes"]), len("Subject: queued 1\r\n\r\nbody 1\r\n"))

        show = self.queue("show", id1)
        self.assertEqual(show.doc["queue_id"], id1)
        entry = show.doc["results"][0]["response"]
        self.assertEqual(entry["record"]["queue_id"], id1)
        self.assertEqual(entry["record"]["sender"], "q1@example.org")
        self.assertIn("Subject: queued 1", entry["headers"])
        self.assertNotIn("body 1", entry["headers"])
        self.queue("show", "NOSUCHID", want=3)

        hold = self.queue("hold", id1, "--reason=inspection")
        self.assertEqual(hold.doc["results"][0]["response"]["affected"], [id1])
        self.assertEqual(hold.doc["not_found"], [])
        held = self.records("--state=hold")
        self.assertEqual([r["queue_id"] for r in held], [id1])
        self.assertEqual(held[0]["hold_reason"], "inspection")

        release = self.queue("release", id1)
        self.assertEqual(release.doc["results"][0]["response"]["affected"], [id1])
        self.assertEqual(self.records("--state=hold"), [])
        again = self.queue("release", id1)  # not on hold any more: left as it is, not "missing"
        self.assertEqual(again.doc["skipped"], [id1])
        self.assertEqual(again.doc["not_found"], [])

        delete = self.queue("delete", id2)
        self.assertEqual(delete.doc["results"][0]["response"]["affected"], [id2])
        self.queue("show", id2, want=3)
        gone = self.queue("delete", id2, want=3)
        self.assertEqual(gone.doc["not_found"], [id2])

        # The next hop is back: flush retries the deferred now, instead of after the backoff.
        harness.wait_for(deferred("q1@example.org"), 30, what="q1 deferred again after release")
        os.unlink(self.blocker)
        flush = self.queue("flush")
        self.assertIn(id1, flush.doc["results"][0]["response"]["affected"])
        mailbox = os.path.join(self.blocker, "user@example.com", "new")

        def delivered():
            if not os.path.isdir(mailbox):
                return []
            out = []
            for f in os.listdir(mailbox):
                with open(os.path.join(mailbox, f)) as fh:
                    out.append(fh.read())
            return out
        harness.wait_for(lambda: any("Subject: queued 1" in m for m in delivered()), 30,
                         what="q1 delivered after the flush")
        harness.wait_for(lambda: not self.records("--sender=q1@example.org"), 30, what="q1 out of the queue")
        self.assertFalse(any("queued 2" in m for m in delivered()))  # deleted, never delivered

    def test_exit_codes(self):
        dead = "127.0.0.1:%d" % unused_port()
        nothing = sluicectl("--admin=" + dead, "--output=json", "status")
        self.assertEqual(nothing.rc, 5, nothing)
        self.assertEqual(nothing.doc["results"], [])
        self.assertEqual(nothing.doc["errors"][0]["code"], "UNAVAILABLE")
        self.assertIn(dead, nothing.err)
        one_down = sluicectl("--admin=%s,%s" % (self.p.frontend.admin, dead), "--output=json", "status")
        self.assertEqual(one_down.rc, 1, one_down)
        self.assertEqual([x["replica"] for x in one_down.doc["results"]], [self.p.frontend.admin])
        self.assertEqual([x["replica"] for x in one_down.doc["errors"]], [dead])
        self.assertEqual(sluicectl(self.all, "limits", "set", "no_such_limit=1").rc, 2)
        self.assertEqual(sluicectl(self.all, "limits", "set", "max_sessions=0").rc, 2)  # below its minimum
        self.assertEqual(sluicectl(self.all, "no-such-command").rc, 2)
        self.assertEqual(sluicectl(self.all, "session", "no-such-session").rc, 3)
        self.assertEqual(sluicectl(self.all, "kill", "no-such-session").rc, 3)
        self.assertEqual(sluicectl("--help").rc, 0)


if __name__ == "__main__":
    unittest.main()
