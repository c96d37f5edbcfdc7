"""tests/integration/test_reinject_maildir_once.py -- issue 11, "local delivery exactly once",
with the real binary: sluice-reinject delivering into Maildirs is killed with SIGKILL again and
again while it delivers, and restarted; Dovecot (a real mail store, started privately by the
test) reads the mailboxes between the kills and marks what it finds seen, which renames the
files (":2,S", and into cur/). At the end every (message, recipient) is in its mailbox exactly
once, Dovecot lists each under a name of ours (time.Q<id>R<hash>.host: valid for Dovecot), and
the kills that fell between a Maildir write and the end of its queue entry are counted from
reinject's own log (maildir_already_delivered).

Never: leaves a process running (every process is stopped by PID in tearDown).
"""
import os
import random
import re
import subprocess
import time
import unittest

import grpc

import harness

RECIPIENTS = ["ann@example.com", "bob@example.com", "cy@example.com"]
MESSAGES = 200  # enough that the first rounds are always killed mid-delivery


def maildir_keys(maildir, rcpt):
    """{key: [file names]} of our files in new/ and cur/ of rcpt's mailbox."""
    keys = {}
    for sub in ("new", "cur"):
        d = os.path.join(maildir, rcpt, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            m = re.match(r"^\d+\.(Q[0-9A-Z]+R[0-9a-f]{16})\.", name)
            keys.setdefault(m.group(1) if m else "foreign:" + name, []).append(sub + "/" + name)
    return keys


class DovecotReader(harness.Process):
    """Dovecot with no protocol listening: doveadm reads and flags the Maildirs under root
    (mail_location maildir:ROOT/%u), as a mail client would, as the user nobody."""

    def __init__(self, workdir, maildir):
        self.root = os.path.join(workdir, "dovecot-reader")
        self.maildir = maildir
        os.makedirs(os.path.join(self.root, "run"), exist_ok=True)
        os.chmod(workdir, 0o755)
        self.conf = os.path.join(self.root, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "base_dir = %s/run" % self.root,
                "state_dir = %s/run/state" % self.root,
                "log_path = %s/dovecot.log" % self.root,
                "instance_name = sluice-it-reader-%d" % os.getpid(),
                "protocols =",
                "default_login_user = nobody",
                "default_internal_user = nobody",
                "default_internal_group = nogroup",
                "mail_location = maildir:%s/%%u" % maildir,
                "userdb {", "  driver = static", "  args = uid=nobody gid=nogroup home=%s/%%u" % maildir, "}",
                "passdb {", "  driver = static", "  args = nopassword=y", "}",
                "service anvil {", "  chroot =", "}", "service stats {", "  chroot =", "}", ""]))
        super().__init__(["/usr/sbin/dovecot", "-F", "-c", self.conf], os.path.join(workdir, "dovecot-reader.log"),
                         name="dovecot-reader")
        harness.wait_for(lambda: os.path.exists(os.path.join(self.root, "run", "auth-userdb")) or
                         (not self.alive() and self._died()), 20, what="dovecot's auth socket")

    def _died(self):
        raise AssertionError("dovecot exited: %s" % self.log()[-2000:])

    def doveadm(self, *args):
        # Dovecot refuses uid 0: the mail it reads belongs to nobody (reinject, root, writes anyway).
        subprocess.run(["chown", "-R", "nobody:nogroup", self.maildir], check=True)
        return subprocess.run(["/usr/bin/doveadm", "-c", self.conf] + list(args), check=True,
                              capture_output=True, text=True).stdout

    def guids(self, user):
        """The messages Dovecot sees in user's INBOX: their Maildir base names."""
        out = self.doveadm("fetch", "-u", user, "guid", "mailbox", "INBOX", "all")
        return re.findall(r"^guid: (\S+)$", out, re.M)

    def mark_seen(self, user):
        self.doveadm("flags", "add", "-u", user, "\\Seen", "mailbox", "INBOX", "all")


class MaildirExactlyOnceTest(harness.TempDirTest):

    def setUp(self):
        super().setUp()
        self.queue_dir = os.path.join(self.tmp, "queue")
        self.maildir = os.path.join(self.tmp, "mail")
        self.stubs = harness.grpc_stubs()

    def start(self, deliver, name):
        return self.track(harness.Stage("sluice-reinject", ["--queue_dir=" + self.queue_dir, "--deliver=" + deliver],
                                        self.tmp, name))

    def queued(self, stage):
        with grpc.insecure_channel(stage.admin) as ch:
            stub = self.stubs["queue_pb2_grpc"].QueueStub(ch)
            return stub.List(self.stubs["queue_pb2"].ListQueueRequest(), timeout=5).total_messages

    def flush_all(self, stage):
        with grpc.insecure_channel(stage.admin) as ch:
            stub = self.stubs["queue_pb2_grpc"].QueueStub(ch)
            stub.Flush(self.stubs["queue_pb2"].QueueIdsRequest(all=True), timeout=5)

    def test_sigkill_during_maildir_delivery_never_delivers_twice(self):
        seed = int(os.environ.get("SLUICE_TEST_SEED", random.randrange(1 << 30)))
        rnd = random.Random(seed)
        print("seed %d (SLUICE_TEST_SEED replays it)" % seed)
        # 1. The messages wait in the queue: the first reinject's next hop is not listening.
        rj = self.start("smtp:127.0.0.1:%d" % harness.free_port(), "reinject-fill")
        expected = {r: 0 for r in RECIPIENTS}
        for i in range(MESSAGES):
            rcpts = [RECIPIENTS[i % 3]] if i % 5 else RECIPIENTS
            body = "Subject: once %d\r\nX-Serial: %d\r\n\r\nmessage %d\r\n" % (i, i, i)
            code, text = harness.send_mail(rj.smtp_port, "s@example.org", rcpts, body)
            self.assertEqual(code, 250, text)
            for r in rcpts:
                expected[r] += 1
        harness.wait_for(lambda: "status=deferred" in rj.log(), 20, what="a first deferral")
        self.assertEqual(rj.stop(), 0)

        # 2. Deliver into Maildirs, killed at random moments, until the queue is empty.
        dovecot = self.track(DovecotReader(self.tmp, self.maildir))
        kills = 0
        found_again = 0
        for round_no in range(40):
            rj = self.start("maildir:" + self.maildir, "reinject-%d" % round_no)
            if self.queued(rj) == 0:
                found_again += rj.log().count("event=maildir_already_delivered")
                self.assertEqual(rj.stop(), 0)
                break
            self.flush_all(rj)  # the deferred entries are due now
            # Somewhere in the middle of the deliveries (each takes a few ms: write, fsync, rename).
            harness.wait_for(lambda: "event=delivery" in rj.log(), 20, what="a delivery")
            time.sleep(rnd.random() * 0.01)
            if round_no < 3 or rnd.random() < 0.8:
                rj.kill()
                kills += 1
            else:
                self.assertEqual(rj.stop(), 0)
            found_again += rj.log().count("event=maildir_already_delivered")
            if round_no % 2 == 0:
                for r in RECIPIENTS:
                    if os.path.isdir(os.path.join(self.maildir, r)):
                        dovecot.mark_seen(r)  # a mail client reads: new/NAME -> NAME:2,S (new/ or cur/)
        else:
            self.fail("the queue never emptied in 40 rounds")

        # At least one SIGKILL cut the deliveries short (the next round still found entries);
        # on a quiet machine the 200 deliveries can all end within two rounds.
        self.assertGreaterEqual(round_no, 2, "no SIGKILL interrupted the deliveries")
        for r in RECIPIENTS:
            keys = maildir_keys(self.maildir, r)
            self.assertEqual(sorted(n for n, files in keys.items() if len(files) > 1), [],
                             "delivered more than once to %s: %s" % (r, keys))
            self.assertEqual(len(keys), expected[r], r)
            self.assertFalse([k for k in keys if k.startswith("foreign:")], keys)
            self.assertEqual(sorted(dovecot.guids(r)), sorted(f.split("/", 1)[1].split(":")[0]
                                                              for files in keys.values() for f in files))
        print("rounds %d, SIGKILLs %d, deliveries found done after a restart %d, messages %d" %
              (round_no + 1, kills, found_again, MESSAGES))


if __name__ == "__main__":
    unittest.main()
