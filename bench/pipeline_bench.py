"""bench/pipeline_bench.py -- sluice's pipeline measured beside Postfix's, in one run.

  throughput      Postfix's smtp-source drives the Postfix proxy pipeline (the anchor script
                  ../shared/anchors/postfix-pipeline) and then the three sluice stages with the
                  same sessions/messages/size; prints msgs/s, machine CPU seconds used while
                  the load ran and until every message was delivered, and the ratios.
  relay-overhead  one session sending messages back to back, frontend -> reinject directly and
                  frontend -> filter-bridge -> reinject (no filters), in alternating rounds
                  (RELAY_ROUNDS x RELAY_MSGS); the median of the rounds' differences in time
                  per message is what the relay half of the filter-bridge adds. Queue and
                  Maildir on tmpfs.

Throughput: both deliver cheaply (Postfix: discard(8); sluice: a Maildir on tmpfs), both queue
on disk with fsync. Figures are printed, never asserted.

Never: leaves a process running; binds anything but loopback.
"""
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402

SESSIONS = int(os.environ.get("SESSIONS", "20"))
MSGS = int(os.environ.get("MSGS", "2000"))
SIZE = int(os.environ.get("SIZE", "10240"))
ANCHOR = os.path.join(harness.SOURCE_DIR, "..", "shared", "anchors", "postfix-pipeline")


def cpu_busy_jiffies():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields)
    idle = fields[3] + fields[4]
    return total - idle


def jiffies_to_s(j):
    return j / os.sysconf("SC_CLK_TCK")


def run_postfix():
    env = dict(os.environ, SESSIONS=str(SESSIONS), MSGS=str(MSGS), SIZE=str(SIZE), TARGET="proxy",
               PFA_PROXY_PORT="12525", PFA_AFTER_PORT="12526", PFA_PLAIN_PORT="12527",
               PFA_SINK_PORT="12600", PFA_DSINK_PORT="12601")
    r = subprocess.run(["bash", ANCHOR, "all"], env=env, capture_output=True, text=True, timeout=1800)
    line = [l for l in r.stdout.splitlines() if l.startswith("postfix-proxy")]
    if r.returncode != 0 or not line:
        print("postfix anchor failed:\n" + r.stderr[-2000:], file=sys.stderr)
        return None
    kv = dict(p.split("=", 1) for p in line[0].split()[1:])
    wall = float(kv["wall_s"])
    cpu_s = float(kv["cpu_pct"]) / 100.0 * wall
    return {"msgs_per_s": float(kv["msgs_per_s"]), "cpu_s": cpu_s, "wall_s": wall,
            "drain_s": float(kv["drain_s"]), "raw": line[0]}


def count_delivered(maildir):
    n = 0
    for root, dirs, files in os.walk(maildir):
        if os.path.basename(root) == "new":
            n += len(files)
    return n


def run_sluice(with_bridge=True):
    work = tempfile.mkdtemp(prefix="sluice-bench-", dir="/var/tmp")
    shm = tempfile.mkdtemp(prefix="sluice-bench-mail-", dir="/dev/shm")
    p = None
    try:
        os.symlink(shm, os.path.join(work, "mail"))  # the Pipeline's Maildir, on tmpfs
        p = harness.Pipeline(work, with_bridge=with_bridge,
                             frontend_flags=["--max_sessions=200"])
        b0 = cpu_busy_jiffies()
        s0 = time.monotonic()
        subprocess.run(["smtp-source", "-4", "-s", str(SESSIONS), "-m", str(MSGS), "-l", str(SIZE),
                        "-f", "a@example.com", "-t", "b@example.com", "-M", "client.example.test",
                        "127.0.0.1:%d" % p.frontend.smtp_port], check=True, timeout=1800)
        s1 = time.monotonic()
        b1 = cpu_busy_jiffies()
        harness.wait_for(lambda: count_delivered(shm) >= MSGS, timeout=600, interval=0.05, what="deliveries")
        s2 = time.monotonic()
        b2 = cpu_busy_jiffies()
        return {"msgs_per_s": MSGS / (s1 - s0), "cpu_s": jiffies_to_s(b1 - b0), "wall_s": s1 - s0,
                "drain_s": s2 - s1, "cpu_total_s": jiffies_to_s(b2 - b0)}
    finally:
        if p:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def throughput():
    print("load: smtp-source -s %d -m %d -l %d" % (SESSIONS, MSGS, SIZE))
    pf = run_postfix()
    if pf:
        print("postfix-proxy msgs_per_s=%.0f wall_s=%.2f drain_s=%.2f cpu_s=%.2f msgs_per_cpu_s=%.0f" %
              (pf["msgs_per_s"], pf["wall_s"], pf["drain_s"], pf["cpu_s"], MSGS / pf["cpu_s"]))
    sl = run_sluice()
    print("sluice        msgs_per_s=%.0f wall_s=%.2f drain_s=%.2f cpu_s=%.2f msgs_per_cpu_s=%.0f "
          "cpu_until_delivered_s=%.2f" % (sl["msgs_per_s"], sl["wall_s"], sl["drain_s"], sl["cpu_s"],
                                          MSGS / sl["cpu_s"], sl["cpu_total_s"]))
    if pf:
        print("ratio throughput_sluice_over_postfix=%.2f msgs_per_cpu_s_sluice_over_postfix=%.2f" %
              (sl["msgs_per_s"] / pf["msgs_per_s"], (MSGS / sl["cpu_s"]) / (MSGS / pf["cpu_s"])))


def process_cpu_s(pid):
    """User + system CPU seconds a process has used (/proc/PID/stat utime + stime)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sequential_ms(port, n, body):
    """Mean milliseconds per message over n messages sent back to back in one session."""
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=30)
    smtp.ehlo("bench.test")
    t0 = time.monotonic()
    for _ in range(n):
        smtp.sendmail("a@example.com", ["b@example.com"], body)
    t1 = time.monotonic()
    smtp.quit()
    return (t1 - t0) * 1000.0 / n


def relay_overhead():
    """Both pipelines run side by side (one with the bridge, one without) and are measured in
    alternating rounds, so load from other processes hits both alike; min and median of the
    rounds' means are printed. The queue and the Maildir are on tmpfs: the question is what
    the relay adds, not how fast the disk syncs."""
    n = int(os.environ.get("RELAY_MSGS", "300"))
    rounds = int(os.environ.get("RELAY_ROUNDS", "7"))
    body = "Subject: bench\r\n\r\n" + ("x" * 70 + "\r\n") * 20
    pipelines = {}
    dirs = []
    try:
        for with_bridge in (False, True):
            work = tempfile.mkdtemp(prefix="sluice-bench-", dir="/dev/shm")
            dirs.append(work)
            # Default log level (info, as in production): the harness reads the ports from it.
            pipelines[with_bridge] = harness.Pipeline(work, with_bridge=with_bridge)
        times = {False: [], True: []}
        for p in pipelines.values():
            sequential_ms(p.frontend.smtp_port, 20, body)  # warm-up: connections, caches, allocators
        bridge_cpu0 = process_cpu_s(pipelines[True].bridge.pid)
        for _ in range(rounds):
            for with_bridge in (False, True):
                times[with_bridge].append(sequential_ms(pipelines[with_bridge].frontend.smtp_port, n, body))
        # CPU is not moved by other load the way wall time is: what the bridge itself spent.
        bridge_cpu_us = (process_cpu_s(pipelines[True].bridge.pid) - bridge_cpu0) * 1e6 / (rounds * n)
    finally:
        for p in pipelines.values():
            p.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    print("frontend->reinject                ms_per_msg min=%.3f median=%.3f rounds=%s" %
          (low[False], med[False], " ".join("%.3f" % t for t in times[False])))
    print("frontend->filter-bridge->reinject ms_per_msg min=%.3f median=%.3f rounds=%s" %
          (low[True], med[True], " ".join("%.3f" % t for t in times[True])))
    # Each round measures both back to back: the median of those paired differences is the
    # figure least moved by other load on the machine.
    paired = statistics.median(b - a for a, b in zip(times[False], times[True]))
    print("result relay_overhead_ms_per_msg=%.3f (median of paired rounds; medians %.3f, min-to-min %.3f; "
          "%d rounds x %d messages, one session, no filters) filter_bridge_cpu_us_per_msg=%.0f" %
          (paired, med[True] - med[False], low[True] - low[False], rounds, n, bridge_cpu_us))


if __name__ == "__main__":
    {"throughput": throughput, "relay-overhead": relay_overhead}[sys.argv[1]]()
