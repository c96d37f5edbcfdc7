"""tests/integration/test_make_run.py -- `make run` as a new user meets it (issue 6).

Runs scripts/run-local (what `make run` runs after building) from a copy of the tree's
scripts/ and deploy/ in a temp dir, with this build's binaries; waits for its banner, sends a
message with swaks to 127.0.0.1:2525, finds it in var/mail/<rcpt>/new/ under the copy, asks
`sluicectl status` (exit 0, three stages SERVING), then stops it with SIGTERM (as Ctrl-C
would) and checks that all three stages are gone and the script exited 0.

Uses the fixed ports of the CLI contract (2525, 10025, 10026, 9101-9103, 9201-9203): ctest
runs it alone (RUN_SERIAL), and it skips when one of them is taken (someone's `make run`).

Never: leaves a stage running (the script stops them; the test kills any survivor by PID).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

import harness

PORTS = (2525, 10025, 10026, 9101, 9102, 9103, 9201, 9202, 9203)


class MakeRunTest(unittest.TestCase):

    def setUp(self):
        busy = [p for p in PORTS if harness.port_open(p)]
        if busy:
            self.skipTest("ports in use (another make run?): %s" % busy)
        self.tree = tempfile.mkdtemp(prefix="sluice-makerun-")
        for d in ("scripts", "deploy"):
            shutil.copytree(os.path.join(harness.SOURCE_DIR, d), os.path.join(self.tree, d))
        env = dict(os.environ, SLUICE_BIN_DIR=harness.BIN_DIR)
        self.log = os.path.join(self.tree, "run.out")
        self.run_proc = harness.Process(["bash", os.path.join(self.tree, "scripts", "run-local")], self.log, env=env,
                                        name="run-local")

    def tearDown(self):
        # Whatever happened, no stage may survive the test.
        for name in ("sluice-frontend", "sluice-filter-bridge", "sluice-reinject"):
            for pid in self.stage_pids(name):
                os.kill(pid, signal.SIGKILL)
        self.run_proc.kill()

    def stage_pids(self, binary):
        out = subprocess.run(["pgrep", "-f", "%s --config=deploy/k8s" % binary], capture_output=True, text=True)
        pids = []
        for pid in out.stdout.split():
            try:
                with open("/proc/%s/cwd" % pid, "rb"):
                    pass
                if os.path.realpath("/proc/%s/cwd" % pid) == os.path.realpath(self.tree):
                    pids.append(int(pid))
            except OSError:
                pass
        return pids

    def test_make_run_delivers_a_swaks_message_and_stops_on_sigterm(self):
        self.run_proc.wait_log(r"Ctrl-C stops all three", timeout=60)
        out = subprocess.run(["swaks", "--server", "127.0.0.1:2525", "--from", "you@example.com",
                              "--to", "user@example.com", "--header", "Subject: first mail"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"250 2\.0\.0 Ok: queued as [0-9A-Z]+")
        newdir = os.path.join(self.tree, "var", "mail", "user@example.com", "new")
        files = harness.wait_for(lambda: os.path.isdir(newdir) and os.listdir(newdir), timeout=30,
                                 what="the message in var/mail/user@example.com/new/")
        self.assertEqual(len(files), 1)
        with open(os.path.join(newdir, files[0]), "rb") as f:
            self.assertIn(b"Subject: first mail", f.read())

        status = subprocess.run([os.path.join(harness.BIN_DIR, "sluicectl"), "status", "--output=json"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(status.returncode, 0, status.stdout + status.stderr)
        doc = json.loads(status.stdout)
        states = sorted((r["response"]["stage"], r["response"]["state"]) for r in doc["results"])
        self.assertEqual(states, [("filter-bridge", "SERVING"), ("frontend", "SERVING"), ("reinject", "SERVING")])

        self.run_proc.signal(signal.SIGTERM)
        self.run_proc.proc.wait(60)
        self.assertEqual(self.run_proc.proc.returncode, 0, self.run_proc.log())
        for name in ("sluice-frontend", "sluice-filter-bridge", "sluice-reinject"):
            self.assertEqual(self.stage_pids(name), [], name + " still running")
        for p in PORTS:
            self.assertFalse(harness.port_open(p), "port %d still open" % p)


if __name__ == "__main__":
    unittest.main()
