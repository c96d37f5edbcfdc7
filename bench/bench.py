#!/usr/bin/python3
"""bench/bench.py -- `make bench`: sluice's pipeline beside Postfix's before-queue proxy pipeline.

Both pipelines run side by side for the whole bench, each on its own loopback ports, their
queues in one directory under /var/tmp (a real disk; refused if it is tmpfs):
  sluice   frontend -> filter-bridge (no filters) -> reinject -> queue -> discard
  postfix  before-filter smtpd (smtpd_proxy_filter) -> after-filter smtpd -> cleanup
           -> queue -> qmgr -> discard                      (bench/postfix_pipeline.py)
After a warm-up turn each, every cell of the grid (sessions x message size) is measured in
ROUNDS rounds; in each round both pipelines get, one after the other (which one goes first
alternates), the same two loads:
  1. Postfix's smtp-source (-s SESSIONS -m MSGS -l SIZE): msgs/s = MSGS / its run time; CPU
     per message = the pipeline's whole process tree from before the load until every message
     is delivered and the tree is idle (bench/measure.py, bench/process_tree.py); peak RSS of
     each process; delivered count checked equal to MSGS.
  2. sluice-bench-load (bench/smtp_load.cc), smtp-source's dialogue and content with the
     same arguments, which times every message from connect() to the final 250: p50/p99.
The median over the rounds is reported, with the sluice/Postfix ratios. Then: Postfix's
smtp-sink alone (one hop, no queue), a single sender (Python smtplib, a new connection per
1 KB message, alternating rounds) and 10,000 idle frontend sessions (bench/idle_sessions.py);
before the grid, while sluice is fresh, one 50 MB message (peak RSS growth per stage).

Output: the table and summary on stdout, RESULTS/latest.json, RESULTS/latest.png.
Exits 2 (loudly) when the Postfix pipeline cannot run here or a binary is missing, 1 when a
measurement failed (a message lost, a client error), 0 otherwise -- missed targets included:
this is a benchmark, never a test.

Never: leaves a process running (every pipeline is stopped by PID, also on SIGTERM/Ctrl-C);
binds anything but loopback; writes outside its temp directory and RESULTS.
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import measure  # noqa: E402
import report  # noqa: E402
from postfix_pipeline import PostfixPipeline, PostfixUnavailable, SmtpSink, why_postfix_cannot_run  # noqa: E402
from process_tree import start_time_of  # noqa: E402
from sluice_pipeline import SluicePipeline  # noqa: E402

SESSIONS = (1, 20, 100)
SIZES = (1024, 10240, 102400)
MAX_SESSIONS = 200          # sluice max_sessions = Postfix before/after-filter maxproc
LARGE_MESSAGE_BYTES = 50 * 1048576


def cell_messages(sessions, size, scale):
    """Messages per turn: a few seconds of load per turn at today's rates, hundreds of samples."""
    if sessions == 1:
        n = {1024: 300, 10240: 300, 102400: 150}.get(size, 200)
    else:
        n = {1024: 1500, 10240: 1500, 102400: 800}.get(size, 800)
    return max(4, int(n * scale))


def progress(text):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def filesystem_of(path):
    """(mount source, fstype) of the file system holding `path`."""
    best = ("?", "?", "")
    with open("/proc/self/mounts") as f:
        for line in f:
            source, mount, fstype = line.split()[:3]
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[2]):
                best = (source, fstype, mount)
    return best[0], best[1]


def fail_loudly(text, code=2):
    bar = "!" * 78
    print("%s\nBENCH CANNOT RUN: %s\n%s" % (bar, text, bar), file=sys.stderr)
    print("BENCH CANNOT RUN: %s" % text)
    sys.exit(code)


def remember(result, pids):
    """Notes (pid, start time) of what the bench started, so a check can prove it all ended."""
    result["started_processes"] += [[pid, start_time_of(pid)] for pid in pids]


def measure_cell(pipelines, cell, rounds, bin_dir, first_offset):
    sessions, size, msgs = cell["sessions"], cell["size"], cell["msgs"]
    cell["rounds"] = {p.name: [] for p in pipelines}
    for r in range(rounds):
        order = pipelines if (r + first_offset) % 2 == 0 else list(reversed(pipelines))
        for p in order:
            load = measure.load_turn(p, measure.smtp_source_argv(sessions, msgs, size, p.port), msgs)
            latency = measure.load_turn(p, measure.load_client_argv(bin_dir, sessions, msgs, size, p.port), msgs)
            cell["rounds"][p.name].append({"first": p is order[0], "load": load, "latency": latency})
            progress("%s round %d %-7s %6.0f msgs/s %6.3f ms CPU/msg  p50 %6.2f p99 %7.2f ms  "
                     "(client %.0f%% CPU, others %.0f%%)" % (
                         report.cell_label(cell), r + 1, p.name, load["msgs_per_s"], load["cpu_ms_per_msg"],
                         latency["p50_ms"], latency["p99_ms"], 100 * latency["client_cpu_share"],
                         100 * load["other_cpu_share"]))
    report.summarize_cell(cell)


def measure_smtp_sink(workdir, sessions, size, msgs, rounds, result):
    sink = SmtpSink(workdir)
    remember(result, sink.tree.roots)
    try:
        measure.load_turn(sink, measure.smtp_source_argv(sessions, msgs, size, sink.port), msgs,
                          delivered_check=False)  # warm-up
        turns = [measure.load_turn(sink, measure.smtp_source_argv(sessions, msgs, size, sink.port), msgs,
                                   delivered_check=False) for _ in range(rounds)]
    finally:
        sink.stop()
    return {"sessions": sessions, "size": size, "msgs": msgs, "rounds": turns,
            "msgs_per_s": report.median_of(turns, "msgs_per_s"),
            "cpu_ms_per_msg": report.median_of(turns, "cpu_ms_per_msg")}


def measure_single_sender(pipelines, msgs, rounds):
    out = {"msgs": msgs, "size": 1024, "rounds": {p.name: [] for p in pipelines}}
    for r in range(rounds):
        order = pipelines if r % 2 == 0 else list(reversed(pipelines))
        for p in order:
            out["rounds"][p.name].append(measure.single_sender_turn(p, msgs))
    out["median"] = {name: {"p50_ms": report.median_of(turns, "p50_ms"), "p99_ms": report.median_of(turns, "p99_ms")}
                     for name, turns in out["rounds"].items()}
    out["ratio_p50"] = round(out["median"]["sluice"]["p50_ms"] / out["median"]["postfix"]["p50_ms"], 3)
    progress("single sender p50: sluice %.2f ms, postfix %.2f ms" % (
        out["median"]["sluice"]["p50_ms"], out["median"]["postfix"]["p50_ms"]))
    return out


def measure_idle_sessions(bin_dir, sessions):
    env = dict(os.environ, SLUICE_BIN_DIR=bin_dir)
    r = subprocess.run([sys.executable, os.path.join(HERE, "idle_sessions.py"), "--sessions", str(sessions)],
                       capture_output=True, text=True, env=env, timeout=600)
    m = re.search(r"idle_sessions=(\d+) rss_per_session_bytes=(-?\d+)", r.stdout)
    if r.returncode != 0 or not m:
        raise measure.MeasureError("idle_sessions.py failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr[-2000:]))
    progress("idle sessions: %s" % m.group(0))
    return {"sessions": int(m.group(1)), "rss_per_session_bytes": int(m.group(2)), "detail": r.stderr.strip()}


def measure_all(args, bin_dir, cells, workdir, result):
    """Every measurement, into `result`; both pipelines stopped before the idle sessions."""
    pipelines = []
    try:
        size_limit = max(10240000, args.large_message_bytes + 1048576)
        progress("starting sluice and Postfix in %s" % workdir)
        os.makedirs(os.path.join(workdir, "sluice"))
        sluice = SluicePipeline(os.path.join(workdir, "sluice"), bin_dir, MAX_SESSIONS, size_limit)
        pipelines.append(sluice)
        remember(result, sluice.tree.roots)
        postfix = PostfixPipeline(workdir, MAX_SESSIONS, size_limit)
        pipelines.append(postfix)
        remember(result, postfix.tree.roots)
        # The large message first, while sluice's heap is fresh: later, memory freed by the
        # grid's loads would hide what the message needs.
        result["large_message"] = measure.large_message_turn(sluice, args.large_message_bytes)
        progress("large message: %s" % result["large_message"])
        for p in pipelines:  # every process forked, every cache warm
            warm = max(20, int(200 * args.scale))
            measure.load_turn(p, measure.smtp_source_argv(min(100, warm), warm, 1024, p.port), warm)

        for i, (sessions, size) in enumerate(cells):
            cell = {"sessions": sessions, "size": size, "msgs": cell_messages(sessions, size, args.scale)}
            measure_cell(pipelines, cell, args.rounds, bin_dir, i)
            result["cells"].append(cell)

        sink_msgs = cell_messages(20, 10240, args.scale)
        result["smtp_sink"] = measure_smtp_sink(workdir, 20, 10240, sink_msgs, args.rounds, result)
        progress("smtp-sink alone: %.0f msgs/s, %.3f ms CPU/msg" % (
            result["smtp_sink"]["msgs_per_s"], result["smtp_sink"]["cpu_ms_per_msg"]))
        result["single_sender"] = measure_single_sender(pipelines, args.single_sender_msgs, args.rounds)
        if args.profile:
            msgs = cell_messages(20, 10240, args.scale)
            out = os.path.join(args.results, "profile-sluice.txt")
            result["profile_top"] = measure.profile_turn(
                sluice, measure.smtp_source_argv(20, msgs, 10240, sluice.port), msgs, out)
            result["profile_file"] = out
    finally:
        for p in reversed(pipelines):
            p.stop()
    result["idle_sessions"] = measure_idle_sessions(bin_dir, args.idle_sessions)


def shown(path):
    """`path` relative to the current directory when it is below it, else absolute."""
    rel = os.path.relpath(path)
    return os.path.abspath(path) if rel.startswith("..") else rel


def interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    ap = argparse.ArgumentParser(description="sluice vs Postfix's before-queue proxy pipeline (make bench)")
    ap.add_argument("--bin-dir", default=os.environ.get("SLUICE_BIN_DIR", os.path.join(HERE, "..", "build", "bin")))
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="where latest.json/.png go")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")),
                    help="multiplies every message count")
    ap.add_argument("--cells", default="", help="e.g. 20x10240,1x1024 (default: the full 3x3 grid)")
    ap.add_argument("--single-sender-msgs", type=int, default=300)
    ap.add_argument("--large-message-bytes", type=int, default=LARGE_MESSAGE_BYTES)
    ap.add_argument("--idle-sessions", type=int, default=10000)
    ap.add_argument("--profile", action="store_true",
                    help="after the grid, one more sluice turn at 20 x 10 KB under perf record: "
                         "RESULTS/profile-sluice.txt and its top 20 on stdout")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny run of every part (make test's check that the bench still works)")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.scale, args.cells = 2, 0.02, args.cells or "2x10240"
        args.single_sender_msgs, args.large_message_bytes, args.idle_sessions = 5, 2 * 1048576, 200

    reason = why_postfix_cannot_run()
    if reason:
        fail_loudly(reason + ": no ratio can be measured without Postfix's pipeline beside sluice")
    bin_dir = os.path.abspath(args.bin_dir)
    for b in ("sluice-frontend", "sluice-filter-bridge", "sluice-reinject", "sluice-bench-load"):
        if not os.access(os.path.join(bin_dir, b), os.X_OK):
            fail_loudly("%s/%s is missing: build first (make build)" % (bin_dir, b))
    if args.profile and not shutil.which("perf"):
        fail_loudly("--profile needs perf (Debian's linux-perf)")
    if args.cells:
        cells = [tuple(int(x) for x in c.split("x")) for c in args.cells.split(",")]
    else:
        cells = [(s, z) for z in SIZES for s in SESSIONS]

    # SIGTERM ends the run like Ctrl-C: through the finally that stops every pipeline.
    signal.signal(signal.SIGTERM, interrupted)
    workdir = tempfile.mkdtemp(prefix="sluice-bench-", dir="/var/tmp")
    device, fstype = filesystem_of(workdir)
    if fstype in ("tmpfs", "ramfs"):
        shutil.rmtree(workdir)
        fail_loudly("%s is on %s: the queues must be on a real disk" % (workdir, fstype))
    os.makedirs(args.results, exist_ok=True)
    started = time.monotonic()
    result = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
              "config": {"rounds": args.rounds, "scale": args.scale, "max_sessions": MAX_SESSIONS,
                         "smoke": args.smoke},
              "machine": {"cpus": os.cpu_count(), "sluice_deliver": "--deliver=discard",
                          "queue_device": device, "queue_fstype": fstype,
                          "loadavg_at_start": open("/proc/loadavg").read().split()[:3]},
              "cells": [], "started_processes": []}
    failed = None
    try:
        measure_all(args, bin_dir, cells, workdir, result)
    except (measure.MeasureError, RuntimeError, AssertionError) as e:  # a stage or Postfix failed too
        failed = "%s: %s" % (type(e).__name__, e)
    except PostfixUnavailable as e:
        fail_loudly(str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if failed is not None:
        print("BENCH FAILED: %s" % failed)
        print("BENCH FAILED: %s" % failed, file=sys.stderr)
        return 1

    turns = [t for c in result["cells"] for rounds in c["rounds"].values() for r in rounds
             for t in (r["load"], r["latency"])]
    result["machine"]["other_cpu_share"] = round(sum(t["other_cpu_share"] for t in turns) / len(turns), 3)
    result["duration_s"] = round(time.monotonic() - started, 1)
    print(report.table(result["cells"]))
    print()
    print("== summary ==")
    result["summary"] = report.summary_lines(result)
    for line in result["summary"]:
        print(line)
    json_path = os.path.join(args.results, "latest.json")
    png_path = os.path.join(args.results, "latest.png")
    report.write_json(result, json_path)
    report.write_chart(result, png_path)
    if result.get("profile_top"):
        print()
        print("== sluice profile at 20 x 10 KB: share of samples by stage, then by stage, library and symbol "
              "(top 20; all in %s) ==" % shown(result["profile_file"]))
        for line in result["profile_top"]:
            print(line)
    print("wrote %s and %s" % (shown(json_path), shown(png_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
