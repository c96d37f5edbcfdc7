"""tests/integration/harness.py -- start real sluice processes and real peers for tests.

Every process is started on loopback with ephemeral ports (port 0; the bound ports are read
from the process's own log lines), its log kept in the test's temp dir, and stopped by PID
(SIGTERM, then SIGKILL after a deadline) when the test ends. Python stubs for the gRPC API
are generated from proto/ with Debian's protoc + grpc_python_plugin into a temp dir.

Never: uses a fixed port that another test could hold; leaves a process running.
"""
import hashlib
import hmac
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
        files = ["sluice/v1/%s.proto" % n for n in ("options", "session", "limits", "admin", "queue", "filter", "config",
                                                         "effective_limits", "verify")]
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
              "filter_pb2", "filter_pb2_grpc", "effective_limits_pb2", "verify_pb2", "verify_pb2_grpc"):
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
    """A test with its own temp dir, removed afterwards unless the test failed or
    SLUICE_KEEP_TMP is set (then its path is printed: every process log is in it)."""

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
        if os.environ.get("SLUICE_KEEP_TMP") or self._failed():
            print("kept %s (process logs inside)" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _failed(self):
        """True when this test has failed or errored so far (its logs are then kept)."""
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        return any(t is self for t, _ in list(result.errors) + list(result.failures))


# ---- next hops for reinject's relay delivery (used by tests/integration/test_reinject_*.py) ----

def queue_ids(stage, state):
    """Queue ids a sluice-reinject lists in `state` ("HOLD", "DEFERRED", ...), over gRPC."""
    import grpc  # pylint: disable=import-outside-toplevel -- only the reinject tests need it
    m = grpc_stubs()
    with grpc.insecure_channel(stage.admin) as ch:
        listed = m["queue_pb2_grpc"].QueueStub(ch).List(
            m["queue_pb2"].ListQueueRequest(state=m["queue_pb2"].QueueState.Value(state)), timeout=5)
    return sorted(r.queue_id for r in listed.records)


def queue_log_bytes(queue_dir):
    """Every byte of reinject's segment log (QUEUE_DIR/segments/*, oldest first): what is on
    disk, whatever the process says."""
    d = os.path.join(queue_dir, "segments")
    out = b""
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out += f.read()
    return out


def free_port():
    """A loopback port nothing listens on now (the kernel's choice; handed to a peer that
    takes a fixed port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _world_readable(path):
    """Lets peers that drop to nobody (smtp-sink, Dovecot) reach `path` (a test's temp dir)."""
    os.chmod(path, 0o755)


class SmtpSink(Process):
    """Postfix smtp-sink on 127.0.0.1:port, each transaction captured to dump_dir/msg.<hex>.
    `flags` are smtp-sink's own: -r CMD (4xx), -f CMD (5xx), -Q CMD (421), -q CMD (hang up),
    -L (LMTP)."""

    def __init__(self, workdir, flags=(), port=None, name=None):
        self.port = port or free_port()
        name = name or "smtp-sink-%d" % self.port
        _world_readable(workdir)
        self.dump_dir = os.path.join(workdir, name + ".dumps")
        os.makedirs(self.dump_dir, exist_ok=True)
        os.chmod(self.dump_dir, 0o777)
        argv = ["/usr/sbin/smtp-sink"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        argv += ["-h", "sink.test", "-d", os.path.join(self.dump_dir, "msg.")] + list(flags)
        argv += ["127.0.0.1:%d" % self.port, "64"]
        super().__init__(argv, os.path.join(workdir, name + ".log"), name=name)
        try:
            wait_for(lambda: port_open(self.port) or not self.alive() and self._died(), 20, what=name + " listening")
        except BaseException:
            self.stop()
            raise

    def _died(self):
        raise AssertionError("%s exited: %s" % (self.name, self.log()[-2000:]))

    def _open_files(self):
        fd_dir = "/proc/%d/fd" % self.pid
        out = set()
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return out
        for fd in fds:
            try:
                out.add(os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                pass
        return out

    def dumps(self):
        """The captured transactions (smtp-sink's headers, then the message with LF line ends),
        complete ones only: smtp-sink creates a capture at MAIL and fills it until the ".", so
        a file it still holds open is a transaction in progress (or one that never ends)."""
        names = sorted(os.listdir(self.dump_dir))
        busy = self._open_files() if self.alive() else set()
        out = []
        for n in names:
            path = os.path.join(self.dump_dir, n)
            if path in busy:
                continue
            try:
                with open(path, "rb") as f:
                    out.append(f.read())
            except FileNotFoundError:
                continue  # smtp-sink removed the capture of a transaction that was aborted
        return out


class DovecotLmtp(Process):
    """Dovecot's LMTP server on 127.0.0.1:port (in the foreground, stopped by PID) for the
    users given (others are refused at RCPT with 550 5.1.1); Maildirs under
    workdir/dovecot/mail/<user>/."""

    def __init__(self, workdir, users, port=None):
        self.port = port or free_port()
        self.root = os.path.join(workdir, "dovecot")
        _world_readable(workdir)
        os.makedirs(os.path.join(self.root, "run"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "mail"), exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(os.path.join(self.root, "mail"), 0o777)
        with open(os.path.join(self.root, "users"), "w") as f:
            for u in users:
                f.write(u + ":::::::\n")
        conf = os.path.join(self.root, "dovecot.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "base_dir = %s/run" % self.root,
                "state_dir = %s/run/state" % self.root,
                "log_path = %s/dovecot.log" % self.root,
                "instance_name = sluice-it-%d" % self.port,
                "protocols = lmtp",
                "listen = 127.0.0.1",
                "ssl = no",
                "default_login_user = nobody",
                "default_internal_user = nobody",
                "default_internal_group = nogroup",
                "mail_location = maildir:%s/mail/%%u" % self.root,
                "passdb {", "  driver = passwd-file", "  args = %s/users" % self.root, "}",
                "userdb {", "  driver = passwd-file", "  args = %s/users" % self.root,
                "  default_fields = uid=nobody gid=nogroup home=%s/mail/%%u" % self.root, "}",
                "service lmtp {", "  inet_listener lmtp {", "    address = 127.0.0.1",
                "    port = %d" % self.port, "  }", "  unix_listener lmtp {", "    mode = 0666", "  }", "}",
                "service anvil {", "  chroot =", "}", "service stats {", "  chroot =", "}", ""]))
        super().__init__(["/usr/sbin/dovecot", "-F", "-c", conf], os.path.join(workdir, "dovecot.stdout.log"),
                         name="dovecot")
        try:
            wait_for(lambda: port_open(self.port) or not self.alive() and self._died(), 20, what="dovecot listening")
        except BaseException:
            self.stop()
            raise

    def _died(self):
        raise AssertionError("dovecot exited: %s" % self.log()[-2000:])

    def mail(self, user):
        """The messages in user's Maildir new/, as bytes."""
        d = os.path.join(self.root, "mail", user, "new")
        if not os.path.isdir(d):
            return []
        out = []
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out.append(f.read())
        return out


# The per-deployment secret of hold marks in tests (lib/smtp/hold_mark.h): the filter-bridge
# signs X-Sluice-Hold with it, reinject verifies.
HOLD_MARK_SECRET = "test-hold-mark-secret-0123456789abcdef"


def write_hold_mark_key(workdir, secret=HOLD_MARK_SECRET):
    """A hold_mark_key_file for both stages; returns its path."""
    path = os.path.join(workdir, "hold-mark.key")
    with open(path, "w") as f:
        f.write(secret + "\n")
    return path


def hold_mark(sender, reason, secret=HOLD_MARK_SECRET):
    """The X-Sluice-Hold value the filter stage writes for `sender` with `secret`."""
    mac = hmac.new(secret.encode(), b"sluice-hold-v1\0" + sender.encode() + b"\0" + reason.encode(),
                   hashlib.sha256).hexdigest()
    return "%s; mac=%s" % (reason, mac)


def write_yaml(path, text):
    """Writes a stage config file (YAML) and returns its path."""
    with open(path, "w") as f:
        f.write(text)
    return path


class ClassTempDirTest(unittest.TestCase):
    """Tests sharing one temp dir and the processes started for the class (class_track):
    stopped by PID after the last test, the dir removed then unless a test failed or
    SLUICE_KEEP_TMP is set (then its path is printed)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-%s-" % cls.__name__)
        cls._class_procs = []
        cls._any_failed = False

    @classmethod
    def class_track(cls, p):
        cls._class_procs.append(p)
        return p

    def tearDown(self):
        if TempDirTest._failed(self):
            type(self)._any_failed = True

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls._class_procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 -- keep stopping the others
                pass
        if os.environ.get("SLUICE_KEEP_TMP") or cls._any_failed:
            print("kept %s (process logs inside)" % cls.tmp, file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)


# ---- Redis (the frontend's shared_limits; tests/integration/test_frontend_shared_limits.py) ----

class RedisServer(Process):
    """Debian's redis-server on 127.0.0.1:port, no persistence (no RDB, no AOF), its files in
    workdir/<name>/. `port` fixed: a restart on the same address (the test kills it and
    brings it back). command() speaks RESP for the test's own look at the keys."""

    def __init__(self, workdir, port=None, name="redis"):
        self.port = port or free_port()
        data = os.path.join(workdir, name)
        os.makedirs(data, exist_ok=True)
        argv = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", data, "--daemonize", "no", "--logfile", ""]
        super().__init__(argv, os.path.join(workdir, name + ".log"), name=name)
        try:
            wait_for(lambda: self._pong() or not self.alive() and self._died(), 20, what=name + " answering PING")
        except BaseException:
            self.stop()
            raise

    def _died(self):
        raise AssertionError("%s exited: %s" % (self.name, self.log()[-2000:]))

    def _pong(self):
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def command(self, *args, timeout=5):
        """Sends one command; returns its reply (str, int, None, or a list of those)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _RespReader(s).read()


class _RespReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise OSError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise AssertionError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                data = self.sock.recv(65536)
                if not data:
                    raise OSError("redis closed the connection")
                self.buf += data
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise AssertionError("bad RESP line %r" % line)
