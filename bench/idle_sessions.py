#!/usr/bin/python3
"""bench/idle_sessions.py -- memory of idle SMTP sessions in sluice-frontend.

Raises the open-files limit, starts sluice-frontend (max_sessions 20000) on loopback with
ephemeral ports, opens N connections (default 10,000, spread over source addresses
127.0.0.1..127.0.0.8) that each read the greeting, send EHLO, read the reply and then sit
idle, and reads the frontend's VmRSS before and after. Prints

    idle_sessions=10000 rss_per_session_bytes=N

(the issue's target: at most 6 KB per idle session after EHLO). A benchmark, not a test:
it asserts nothing. Everything it starts is stopped by PID.

    SLUICE_BIN_DIR=build/bin bench/idle_sessions.py [--sessions 10000]

Never: uses a non-loopback address; leaves the frontend running.
"""
import argparse
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.environ.get("SLUICE_BIN_DIR", os.path.join(HERE, "..", "build", "bin"))


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # root may raise the hard limit
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))


def start_frontend(workdir, threads):
    config = os.path.join(workdir, "frontend.yaml")
    with open(config, "w") as f:
        f.write("resolve_client_names: false\n"
                "server:\n  threads: %d\n"
                "limits:\n  max_sessions: 20000\n  per_client_connection_limit: 0\n"
                "  smtpd_timeout_seconds: 600\n  session_deadline_seconds: 0\n" % threads)
    log_path = os.path.join(workdir, "frontend.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([os.path.join(BIN_DIR, "sluice-frontend"), "--config=" + config,
                             "--smtp_listen=127.0.0.1:0", "--admin_listen=127.0.0.1:0",
                             "--metrics_listen=127.0.0.1:0", "--hostname=bench.test",
                             "--filter=127.0.0.1:9"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            m = re.search(r"event=listening smtp=[^ ]*:(\d+)", f.read())
        if m:
            return proc, int(m.group(1)), log_path
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("sluice-frontend did not start; see " + log_path)


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def open_idle_sessions(port, count, batch=500):
    """Opens `count` sessions that have had their EHLO answered; returns the sockets."""
    held = []
    sel = selectors.DefaultSelector()
    sources = ["127.0.0.%d" % i for i in range(1, 9)]
    while len(held) < count:
        n = min(batch, count - len(held))
        pending = {}
        for i in range(n):
            s = socket.socket()
            s.bind((sources[(len(held) + i) % len(sources)], 0))
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            pending[s] = [b"", "greeting"]
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError("sessions did not answer in time (%d pending)" % len(pending))
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(4096)
                if not data:
                    raise RuntimeError("the frontend closed a session: " + repr(pending[s][0][-200:]))
                st = pending[s]
                st[0] += data
                if st[1] == "greeting" and st[0].endswith(b"\r\n"):
                    if not st[0].startswith(b"220"):
                        raise RuntimeError("refused: %r" % st[0])
                    st[0], st[1] = b"", "ehlo"
                    s.setblocking(True)
                    s.sendall(b"EHLO idle.bench.test\r\n")
                    s.setblocking(False)
                elif st[1] == "ehlo" and re.search(rb"(^|\r\n)250 [^\r\n]*\r\n$", st[0]):
                    sel.unregister(s)
                    del pending[s]
                    held.append(s)
    sel.close()
    return held


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2, help="frontend io threads (server.threads)")
    args = ap.parse_args()
    raise_fd_limit(args.sessions + 20000)
    workdir = tempfile.mkdtemp(prefix="sluice-bench-idle-")
    proc, port, log_path = start_frontend(workdir, args.threads)
    held = []
    try:
        # Warm up: every io thread has served sessions, the allocator has its arenas.
        for s in open_idle_sessions(port, 200):
            s.close()
        time.sleep(1.0)
        before = vm_rss(proc.pid)
        t0 = time.monotonic()
        held = open_idle_sessions(port, args.sessions)
        opened = time.monotonic() - t0
        time.sleep(1.0)
        after = vm_rss(proc.pid)
        per = (after - before) // args.sessions
        print("idle_sessions=%d rss_per_session_bytes=%d" % (args.sessions, per))
        print("rss_before_bytes=%d rss_after_bytes=%d open_seconds=%.1f log=%s" % (before, after, opened, log_path),
              file=sys.stderr)
    finally:
        for s in held:
            s.close()
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
