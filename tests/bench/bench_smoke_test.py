"""tests/bench/bench_smoke_test.py -- `make bench` still works: a tiny run of all its parts.

bench/run --smoke starts the same two pipelines as the full bench (sluice's three stages and a
private Postfix before-queue proxy pipeline) and runs one small cell in two alternating rounds,
smtp-sink alone, the single sender, a 2 MB message and 200 idle sessions; the test checks that
it exits 0, prints the table and every summary line, writes a JSON and a PNG that hold what
the full run would, and that every process it started (by PID and start time) has ended. Without root it checks instead that the bench refuses loudly.

Never: asserts on a timing or a ratio (a benchmark's figures are not a test's); leaves a
process running (bench/bench.py stops everything it starts by PID).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("SLUICE_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "bench"))
from postfix_pipeline import why_postfix_cannot_run  # noqa: E402
from process_tree import start_time_of  # noqa: E402

RUN = os.path.join(SOURCE_DIR, "bench", "run")


class BenchSmokeTest(unittest.TestCase):

    def setUp(self):
        self.results = tempfile.mkdtemp(prefix="sluice-bench-smoke-")
        os.chmod(self.results, 0o777)

    def tearDown(self):
        shutil.rmtree(self.results, ignore_errors=True)

    def run_bench(self, *prefix):
        env = dict(os.environ, SLUICE_BIN_DIR=BIN_DIR)
        return subprocess.run(list(prefix) + [RUN, "--smoke", "--results", self.results], capture_output=True,
                              text=True, env=env, timeout=220)

    def test_smoke_run_prints_every_figure_and_writes_json_and_chart(self):
        reason = why_postfix_cannot_run()
        if reason:
            self.skipTest(reason)
        r = self.run_bench()
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        for text in ("msgs/s", "CPU ms/msg", "p50 ms", "p99 ms", "== summary ==", "ratio msgs_per_s sluice/postfix",
                     "result sluice cpu_ms_per_msg", "ratio single_sender_p50", "result idle_rss_per_session",
                     "result large_message_rss_growth", "result smtp_sink alone", "note sluice delivers with"):
            self.assertIn(text, r.stdout)
        with open(os.path.join(self.results, "latest.json")) as f:
            result = json.load(f)
        (cell,) = result["cells"]
        for name in ("sluice", "postfix"):
            rounds = cell["rounds"][name]
            self.assertEqual(len(rounds), 2)
            self.assertEqual(sorted(r["first"] for r in rounds), [False, True], "who goes first must alternate")
            for r in rounds:
                self.assertEqual(r["load"]["msgs"], cell["msgs"])
                self.assertGreater(r["load"]["cpu_s"], 0)
                self.assertGreater(r["latency"]["p99_ms"], 0)
            self.assertTrue(cell["median"][name]["peak_rss_mb"])
        self.assertIn("smtpd (before-filter)", cell["median"]["postfix"]["peak_rss_mb"])
        self.assertEqual(set(cell["median"]["sluice"]["peak_rss_mb"]), {"frontend", "filter-bridge", "reinject"})
        self.assertEqual(set(result["large_message"]["rss_growth_mb"]), {"frontend", "filter-bridge", "reinject"})
        self.assertEqual(result["idle_sessions"]["sessions"], 200)
        self.assertNotEqual(result["machine"]["queue_fstype"], "tmpfs")
        self.assertEqual(len(result["started_processes"]), 5, "three stages, Postfix's master, smtp-sink")
        for pid, start_time in result["started_processes"]:
            self.assertNotEqual(start_time_of(pid), start_time, "process %d was left running" % pid)
        with open(os.path.join(self.results, "latest.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_without_root_the_bench_refuses_loudly_and_fails(self):
        if os.geteuid() != 0:
            r = self.run_bench()
        else:  # run it as nobody: the Postfix side cannot run then
            as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            if subprocess.run(as_nobody + ["/usr/bin/test", "-x", RUN]).returncode != 0:
                # e.g. a clone under a 0700 `mktemp -d` directory: nobody cannot even start it
                self.skipTest("nobody cannot execute %s (a directory above it is not searchable)" % RUN)
            r = self.run_bench(*as_nobody)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("BENCH CANNOT RUN", r.stdout, r.stderr[-2000:])
        self.assertIn("root", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.results, "latest.json")))


if __name__ == "__main__":
    unittest.main()
