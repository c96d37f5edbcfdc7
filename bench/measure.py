"""bench/measure.py -- one measured turn of a pipeline, and the single-sender and large-message runs.

A turn (`load_turn`): the pipeline is idle; its tree's CPU ticks are read and its peak RSS
reset; a load client runs to completion (wall time = the client's run); then we wait until
the pipeline has delivered exactly the messages sent and its tree is idle again (<= 2 ticks
in 0.5 s), and read the ticks once more. CPU per message = tick difference / messages: the
pipeline's work from before the load until everything is delivered, not just while the load
ran. Besides: the client's own CPU (it must not be the bottleneck) and how much CPU the rest
of the machine used meanwhile (other work skews wall-clock figures, not CPU ones).

Never: asserts on time; starts anything it does not wait for.
"""
import os
import re
import resource
import smtplib
import statistics
import subprocess
import time

from process_tree import CLK_TCK, vm_field

FROM = "a@example.com"
TO = "b@example.com"
HELO = "client.example.test"


class MeasureError(Exception):
    """A turn could not be measured (a client failed, a message was lost or came twice)."""


def smtp_source_argv(sessions, msgs, size, port):
    return ["/usr/sbin/smtp-source", "-4", "-s", str(sessions), "-m", str(msgs), "-l", str(size),
            "-f", FROM, "-t", TO, "-M", HELO, "127.0.0.1:%d" % port]


def load_client_argv(bin_dir, sessions, msgs, size, port):
    return [os.path.join(bin_dir, "sluice-bench-load"), "-s", str(sessions), "-m", str(msgs), "-l", str(size),
            "-f", FROM, "-t", TO, "-M", HELO, "127.0.0.1:%d" % port]


def machine_busy_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def own_cpu_ticks():
    """This process and its reaped children (the load clients), in ticks."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime) * CLK_TCK


def wait_delivered(pipeline, expected, timeout_s):
    """Waits until pipeline.delivered() reaches `expected`; raises when it does not, or goes past."""
    deadline = time.monotonic() + timeout_s
    while True:
        n = pipeline.delivered()
        if n >= expected and pipeline.idle_queue():
            break
        if time.monotonic() > deadline:
            raise MeasureError("%s delivered %d of %d messages in %.0f s:\n%s" %
                               (pipeline.name, n, expected, timeout_s, pipeline.log_tail()))
        time.sleep(0.05)


def load_turn(pipeline, argv, msgs, delivered_check=True, timeout_s=300):
    """One run of `argv` (smtp-source or sluice-bench-load) against an idle pipeline."""
    tree = pipeline.tree
    tree.wait_idle(quiet_s=0.3)
    before_delivered = pipeline.delivered() if delivered_check else 0
    tree.start_peaks()
    ticks0 = tree.cpu_ticks()
    by_root0 = tree.cpu_ticks_by_root()
    client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, own0 = machine_busy_ticks(), own_cpu_ticks()
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    wall = time.monotonic() - t0
    client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        tree.stop_peaks()
        raise MeasureError("%s failed (%d) against %s: %s%s" % (os.path.basename(argv[0]), r.returncode,
                                                               pipeline.name, r.stdout[-1500:], r.stderr[-1500:]))
    if delivered_check:
        wait_delivered(pipeline, before_delivered + msgs, timeout_s)
    ticks1 = tree.wait_idle()
    by_root1 = tree.cpu_ticks_by_root()
    drained = time.monotonic() - t0
    busy1, own1 = machine_busy_ticks(), own_cpu_ticks()
    peaks = tree.stop_peaks()
    pss_peak_mb = tree.pss_peak_mb()
    if delivered_check:
        got = pipeline.delivered() - before_delivered
        if got != msgs:
            raise MeasureError("%s delivered %d messages for %d sent" % (pipeline.name, got, msgs))
    cpu_s = (ticks1 - ticks0) / CLK_TCK
    client_cpu = (client1.ru_utime + client1.ru_stime) - (client0.ru_utime + client0.ru_stime)
    other_s = ((busy1 - busy0) - (ticks1 - ticks0) - (own1 - own0)) / CLK_TCK
    out = {"msgs": msgs, "wall_s": round(wall, 3), "drained_s": round(drained, 3),
           "msgs_per_s": round(msgs / wall, 1), "cpu_s": round(cpu_s, 3),
           "cpu_ms_per_msg": round(cpu_s * 1000.0 / msgs, 3),
           "client_cpu_share": round(client_cpu / wall, 3),
           "other_cpu_share": round(max(other_s, 0.0) / drained, 3), "peak_rss": peaks,
           "peak_pss_total_mb": pss_peak_mb,
           "cpu_ms_per_msg_by_root": {role: round((by_root1[role] - by_root0.get(role, 0)) * 1000.0 / CLK_TCK / msgs, 3)
                                      for role in by_root1}}
    m = re.search(r"sent=(\d+) failed=(\d+).*p50_ms=([\d.]+) p99_ms=([\d.]+)", r.stdout)
    if m:  # sluice-bench-load's figures
        if int(m.group(1)) != msgs or int(m.group(2)) != 0:
            raise MeasureError("sluice-bench-load sent %s, failed %s of %d" % (m.group(1), m.group(2), msgs))
        out["p50_ms"] = float(m.group(3))
        out["p99_ms"] = float(m.group(4))
    return out


def single_sender_turn(pipeline, msgs, size=1024):
    """Python smtplib, one message per new connection, `msgs` in a row: the time from the
    connection's start to the 250 after the message (ms) for each; QUIT after the 250."""
    body = ("Subject: bench single sender\r\n\r\n" + ("x" * 78 + "\r\n") * (size // 80)).encode()
    pipeline.tree.wait_idle(quiet_s=0.3)
    before = pipeline.delivered()
    times = []
    for _ in range(msgs):
        t0 = time.monotonic()
        smtp = smtplib.SMTP("127.0.0.1", pipeline.port, local_hostname=HELO, timeout=60)
        smtp.sendmail(FROM, [TO], body)
        times.append((time.monotonic() - t0) * 1000.0)
        smtp.quit()
    wait_delivered(pipeline, before + msgs, 120)
    times.sort()
    return {"msgs": msgs, "p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 3)}


def large_message_turn(pipeline, size_bytes):
    """One message of `size_bytes` through the pipeline; per process, the peak RSS reached
    while it passed (VmHWM, reset before) minus the RSS before it (VmRSS)."""
    line = b"y" * 998 + b"\r\n"
    body = b"Subject: bench large message\r\n\r\n" + line * (size_bytes // len(line))
    tree = pipeline.tree
    tree.wait_idle(quiet_s=0.3)
    before = {pid: vm_field(pid, "VmRSS") or 0 for pid in tree.pids()}
    before_delivered = pipeline.delivered()
    tree.start_peaks()
    t0 = time.monotonic()
    smtp = smtplib.SMTP("127.0.0.1", pipeline.port, local_hostname=HELO, timeout=300)
    smtp.sendmail(FROM, [TO], body)
    smtp.quit()
    wait_delivered(pipeline, before_delivered + 1, 300)
    tree.wait_idle()
    seconds = time.monotonic() - t0
    growth = {}
    for pid in tree.pids():
        hwm = vm_field(pid, "VmHWM") or 0
        role = tree.role(pid, "")
        growth[role] = round(max(growth.get(role, 0.0), (hwm - before.get(pid, 0)) / 1048576.0), 2)
    tree.stop_peaks()
    return {"bytes": len(body), "seconds": round(seconds, 2), "rss_growth_mb": growth}


def profile_turn(pipeline, argv, msgs, out_path, top=20):
    """One more (unmeasured) load turn with `perf record` sampling the pipeline's processes;
    writes perf's report (self time by process, library and symbol) to `out_path` and returns
    its `top` lines. Needs Debian's linux-perf and root."""
    data = out_path + ".data"
    tree = pipeline.tree
    tree.wait_idle(quiet_s=0.3)
    before = pipeline.delivered()
    pids = ",".join(str(p) for p in tree.pids())
    perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-p", pids, "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # perf attaches
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise MeasureError("load under perf failed: %s" % r.stderr[-1000:])
        wait_delivered(pipeline, before + msgs, 300)
        tree.wait_idle()
    finally:
        perf.send_signal(2)  # SIGINT: perf writes its data and exits
        perf.wait(60)
    reports = []
    for sort in ("comm", "comm,dso,symbol"):
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", sort, "--percent-limit", "0.3"],
                             capture_output=True, text=True, timeout=300)
        if rep.returncode != 0:
            os.remove(data)
            raise MeasureError("perf report failed: %s" % rep.stderr[-1000:])
        # perf pads each line with empty columns ("-  -"): cut them.
        reports.append([re.sub(r"(\s+-)+\s*$", "", l).rstrip() for l in rep.stdout.splitlines()])
    os.remove(data)
    with open(out_path, "w") as f:
        f.write("# perf record -F 999 on %s during %s\n" % (pipeline.name, " ".join(argv)))
        for lines in reports:
            f.write("\n".join(lines) + "\n")
    by_stage = [l for l in reports[0] if l.strip() and not l.startswith("#")]
    by_symbol = [l for l in reports[1] if l.strip() and not l.startswith("#")]
    return by_stage + by_symbol[:top]
