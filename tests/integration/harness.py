"""tests/integration/harness.py -- start real sluice processes and real peers for tests.

Every process is started on loopback with ephemeral ports (port 0; the bound ports are read
from the process's own log lines), its log kept in the test's temp dir, and stopped by PID
(SIGTERM, then SIGKILL after a deadline) when the test ends. Python stubs for the gRPC API
are generated from proto/ with Debian's protoc + grpc_python_plugin into a temp dir.

Never: uses a fixed port that another test could hold; leaves a process running.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("SLUICE_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Polls predicate until it returns a truthy value; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process with its output in a log file; stop() by PID."""

    def __init__(self, argv, log_path, env=None, name=None):
        self.argv = argv
        self.name = name or os.path.basename(argv[0])
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.pid = self.proc.pid

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def wait_log(self, pattern, timeout=20.0):
        """Waits for a regex in the log; returns the match."""
        rx = re.compile(pattern)

        def find():
            m = rx.search(self.log())
            if m:
                return m
            if not self.alive():
                raise AssertionError("%s exited (%s) before logging %r:\n%s" %
                                     (self.name, self.proc.returncode, pattern, self.log()[-3000:]))
            return None
        return wait_for(find, timeout, what="%s log %r" % (self.name, pattern))

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=15.0):
        """SIGTERM and wait; SIGKILL if it does not end in time. Returns the exit code."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL now (a crash), and reap."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


class Stage(Process):
    """A sluice stage started with ephemeral ports; smtp_port/admin_port/metrics_port."""

    def __init__(self, binary, flags, workdir, name, smtp_listen="127.0.0.1:0", admin_listen="127.0.0.1:0"):
        # smtp_listen/admin_listen: a fixed HOST:PORT when a peer must know it before this
        # stage starts (e.g. a port from a free-port probe); ephemeral by default.
        argv = [os.path.join(BIN_DIR, binary),
                "--smtp_listen=" + smtp_listen, "--admin_listen=" + admin_listen,
                "--metrics_listen=127.0.0.1:0", "--hostname=%s.test" % name] + list(flags)
        super().__init__(argv, os.path.join(workdir, name + ".log"), name=name)
        m = self.wait_log(r"event=listening smtp=[^ ]*:(\d+)")
        self.smtp_port = int(m.group(1))
        self.admin_port = int(self.wait_log(r"event=started .*admin=[^ ]*:(\d+)").group(1))
        self.metrics_port = int(self.wait_log(r"event=started .*metrics_port=(\d+)").group(1))
        self.admin = "127.0.0.1:%d" % self.admin_port


class Pipeline:
    """reinject <- filter-bridge <- frontend, all on loopback with ephemeral ports."""

    def __init__(self, workdir, frontend_flags=(), bridge_flags=(), reinject_flags=(), with_bridge=True):
        self.workdir = workdir
        self.maildir = os.path.join(workdir, "mail")
        self.queue_dir = os.path.join(workdir, "queue")
        self.stages = []
        try:
            self.reinject = Stage("sluice-reinject",
                                  ["--queue_dir=" + self.queue_dir, "--deliver=maildir:" + self.maildir] +
                                  list(reinject_flags), workdir, "reinject")
            self.stages.append(self.reinject)
            target = self.reinject.smtp_port
            self.bridge = None
            if with_bridge:
                self.bridge = Stage("sluice-filter-bridge",
                                    ["--next_hop=127.0.0.1:%d" % self.reinject.smtp_port] + list(bridge_flags),
                                    workdir, "filter-bridge")
                self.stages.append(self.bridge)
                target = self.bridge.smtp_port
            self.frontend = Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % target] + list(frontend_flags),
                                  workdir, "frontend")
            self.stages.append(self.frontend)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for s in reversed(self.stages):
            s.stop()

    def delivered(self, recipient):
        """Paths of the messages in the recipient's Maildir new/."""
        d = os.path.join(self.maildir, recipient.lower(), "new")
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, f) for f in os.listdir(d))


_stubs_dir = None


def grpc_stubs():
    """Imports and returns (admin_pb2, admin_pb2_grpc, queue_pb2, queue_pb2_grpc, limits_pb2, ...)."""
    global _stubs_dir
    if _stubs_dir is None:
        _stubs_dir = tempfile.mkdtemp(prefix="sluice-pystubs-")
        proto_root = os.path.join(SOURCE_DIR, "proto")
        files = ["sluice/v1/%s.proto" % n for n in ("options", "session", "limits", "admin", "queue", "filter", "config")]
        subprocess.run(["protoc", "-I" + proto_root, "-I/usr/include", "--python_out=" + _stubs_dir,
                        "--grpc_out=" + _stubs_dir, "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + files,
                       check=True)
        # The health proto's Python package would be "grpc.health.v1", which the grpcio
        # package shadows: generate it under another module path (the gRPC service name,
        # from the proto package, stays grpc.health.v1.Health).
        hdir = os.path.join(_stubs_dir, "src", "sluice_health")
        os.makedirs(hdir)
        shutil.copy("/usr/share/grpc-proto/grpc/health/v1/health.proto", os.path.join(hdir, "health.proto"))
        subprocess.run(["protoc", "-I" + os.path.join(_stubs_dir, "src"), "--python_out=" + _stubs_dir,
                        "--grpc_out=" + _stubs_dir, "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        "sluice_health/health.proto"], check=True)
        sys.path.insert(0, _stubs_dir)
    import importlib
    mods = {}
    for n in ("admin_pb2", "admin_pb2_grpc", "queue_pb2", "queue_pb2_grpc", "limits_pb2", "session_pb2",
              "filter_pb2", "filter_pb2_grpc"):
        mods[n] = importlib.import_module("sluice.v1." + n)
    mods["health_pb2"] = importlib.import_module("sluice_health.health_pb2")
    mods["health_pb2_grpc"] = importlib.import_module("sluice_health.health_pb2_grpc")
    return mods


def send_mail(port, sender, recipients, body, host="127.0.0.1", source_address=None, ehlo="client.test"):
    """Sends one message with smtplib; returns (code, text) of the end-of-data reply, or raises."""
    smtp = smtplib.SMTP(host, port, local_hostname=ehlo, timeout=30,
                        source_address=(source_address, 0) if source_address else None)
    try:
        smtp.ehlo(ehlo)
        code, text = smtp.mail(sender)
        if code != 250:
            return code, text
        for r in recipients:
            code, text = smtp.rcpt(r)
            if code not in (250, 251):
                return code, text
        code, text = smtp.data(body)
        return code, text
    finally:
        try:
            smtp.quit()
        except smtplib.SMTPException:
            smtp.close()


class TempDirTest(unittest.TestCase):
    """A test with its own temp dir (kept on failure for the logs)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        self._procs = []

    def track(self, p):
        self._procs.append(p)
        return p

    def tearDown(self):
        for p in reversed(self._procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 -- keep stopping the others
                pass
