"""tests/integration/test_frontend_support.py -- peers and helpers for the frontend's tests.

ScriptedSmtp is a tiny SMTP server standing in for the filter stage behind sluice-frontend:
it records every connection (commands in order, the raw DATA bytes as they arrived) and
answers each step from a script, so a test can make the filter reject a RCPT, reject at the
end of DATA, sleep past the proxy timeout, drop the connection mid-DATA, or answer 2xx where
3xx is due. Also: starting sluice-frontend with a config file, reading a process's VmRSS,
and a raw SMTP client for dialogues smtplib will not send (bare LF, PROXY headers).

No tests here (the module name only keeps it beside the frontend's test files).
Never: binds anything but 127.0.0.1 on an ephemeral port; leaves a thread or socket open
after stop().
"""
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import BIN_DIR, Process, Stage, wait_for

DROP = object()  # a script action: close the connection instead of answering


class Conn:
    """What one filter connection saw."""

    def __init__(self, peer):
        self.peer = peer
        self.commands = []    # command lines without CRLF, in order
        self.messages = []    # raw DATA bytes (dot-stuffed, up to and excluding ".\r\n")
        self.pipelined = []   # commands that arrived before the reply to the one before them
        self.closed = False   # the client ended the connection (EOF)
        self.aborted_data = False  # the connection ended inside DATA


class ScriptedSmtp:
    """An SMTP server on 127.0.0.1:0; `script` maps a step to a reply or an action.

    Steps: "greeting", "ehlo", "xforward", "mail", "rcpt", "data", "dot" (end of data),
    "rset", "noop". A value is a reply string ("550 5.1.1 no"), a callable taking the
    command line (or the message bytes for "dot") and returning one, DROP, or a tuple
    ("sleep", seconds, reply). "data_drop_after": close the connection after that many
    content bytes.
    """

    def __init__(self, script=None, xforward=True, pipelining=False):
        self.script = dict(script or {})
        self.xforward = xforward
        self.pipelining = pipelining
        self.conns = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads = []
        self._clients = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def connection_count(self):
        with self._lock:
            return len(self.conns)

    def messages(self):
        with self._lock:
            return [m for c in self.conns for m in c.messages]

    def xforwards(self):
        """Every XFORWARD command received, in order, as a dict of its attributes."""
        with self._lock:
            return [dict(kv.split("=", 1) for kv in cmd.split()[1:])
                    for c in self.conns for cmd in c.commands if cmd.startswith("XFORWARD ")]

    def close_connections(self, reply=None):
        """Ends every open connection from our side, as a filter that restarts or times out
        its idle clients does (`reply` first, e.g. Postfix's "421 4.4.2 … timeout exceeded"):
        a frontend's pooled connections to us are then stale."""
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                if reply is not None:
                    c.sendall(reply.encode() + b"\r\n")
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        self._accepter.join(5)
        self._sock.close()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = Conn(peer)
            with self._lock:
                self.conns.append(conn)
                self._clients.append(s)
            t = threading.Thread(target=self._serve, args=(s, conn), daemon=True)
            self._threads.append(t)
            t.start()

    def _answer(self, step, default, arg, s):
        """Sends the scripted reply for `step`; returns it, or None when the connection was dropped."""
        action = self.script.get(step, default)
        if callable(action) and action is not DROP:
            action = action(arg)
        if isinstance(action, tuple) and action[0] == "sleep":
            if self._stop.wait(action[1]):
                return None
            action = action[2]
        if action is DROP:
            s.close()
            return None
        try:
            s.sendall(action.encode() + b"\r\n")
        except OSError:
            return None
        return action

    @staticmethod
    def _drain(s, buf):
        """Adds whatever the client has sent so far without waiting (EOF stays for later)."""
        s.setblocking(False)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            s.settimeout(60)
        return buf

    def _serve(self, s, conn):
        s.settimeout(60)
        buf = b""
        try:
            if not self._answer("greeting", "220 filter.test ESMTP scripted", None, s):
                return
            next_is_pipelined = False
            while not self._stop.is_set():
                while b"\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        conn.closed = True
                        return
                    buf += data
                line, buf = buf.split(b"\r\n", 1)
                text = line.decode("utf-8", "replace")
                with self._lock:
                    if next_is_pipelined:
                        conn.pipelined.append(text)
                    conn.commands.append(text)
                # A complete command already here before we answer this one was sent without
                # waiting for the answer: the client pipelines (RFC 2920).
                buf = self._drain(s, buf)
                next_is_pipelined = b"\r\n" in buf
                verb = text.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    lines = ["250-filter.test", "250-SIZE 0", "250-8BITMIME", "250-ENHANCEDSTATUSCODES"]
                    if self.pipelining:
                        lines.append("250-PIPELINING")
                    if self.xforward:
                        lines.append("250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")
                    lines.append("250 DSN")
                    if not self._answer("ehlo", "\r\n".join(lines), text, s):
                        return
                elif verb == "XFORWARD":
                    if not self._answer("xforward", "250 2.0.0 Ok", text, s):
                        return
                elif verb == "MAIL":
                    if not self._answer("mail", "250 2.1.0 Ok", text, s):
                        return
                elif verb == "RCPT":
                    if not self._answer("rcpt", "250 2.1.5 Ok", text, s):
                        return
                elif verb == "DATA":
                    sent = self._answer("data", "354 End data with <CR><LF>.<CR><LF>", text, s)
                    if not sent:
                        return
                    if sent.startswith("354"):
                        ok, buf = self._read_data(s, conn, buf)
                        if not ok:
                            return
                elif verb == "QUIT":
                    self._answer("quit", "221 2.0.0 Bye", text, s)
                    conn.closed = True
                    return
                elif verb == "RSET":
                    if not self._answer("rset", "250 2.0.0 Ok", text, s):
                        return
                elif verb == "NOOP":
                    if not self._answer("noop", "250 2.0.0 Ok", text, s):
                        return
                else:
                    if not self._answer("unknown", "502 5.5.2 Error: command not recognized", text, s):
                        return
        except OSError:
            return
        finally:
            try:
                s.close()
            except OSError:
                pass

    def _read_data(self, s, conn, buf):
        """Reads content up to CRLF.CRLF; returns (connection still open, rest of buffer)."""
        drop_after = self.script.get("data_drop_after")
        content = bytearray(buf)
        scanned = 0
        while True:
            if content.startswith(b".\r\n"):
                end = -2
                break
            end = content.find(b"\r\n.\r\n", max(0, scanned - 4))
            if end != -1:
                break
            scanned = len(content)
            if drop_after is not None and len(content) >= drop_after:
                conn.aborted_data = True
                s.close()
                return False, b""
            data = s.recv(1 << 20)
            if not data:
                conn.aborted_data = True
                conn.closed = True
                return False, b""
            content += data
        message = bytes(content[:end + 2])
        rest = bytes(content[end + 5:])
        with self._lock:
            conn.messages.append(message)
        if not self._answer("dot", "250 2.0.0 Ok: queued as SCRIPTED", message, s):
            return False, b""
        return True, rest


def metric(port, name):
    """The value of one sample line of /metrics ("name{labels}" exactly as exposed)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError("no metric " + name)


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def start_frontend(test, filter_address, flags=(), config=None, name="frontend"):
    """Starts sluice-frontend towards `filter_address`. It is stopped by a cleanup, so after
    the clients the test registers later (cleanups run last-in first-out): a drain that
    waited for a client still in a transaction would only make the test slow."""
    argv = ["--filter=" + filter_address]
    if config is not None:
        argv.append("--config=" + write_config(os.path.join(test.tmp, name + ".yaml"), config))
    stage = Stage("sluice-frontend", argv + list(flags), test.tmp, name)
    test.addCleanup(stage.stop)
    return stage


class SharedFrontendTest(unittest.TestCase):
    """One scripted filter and one sluice-frontend for a whole TestCase class (a start and a
    stop cost about 2 s); each test gets a fresh script, connection list and filter
    connections, and reads only the log lines written since it began (new_log)."""

    frontend_flags = ()
    frontend_config = None  # YAML text, or a function of the class's temp dir returning it

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.filter = ScriptedSmtp()
        try:
            argv = ["--filter=" + cls.filter.address]
            config = cls.frontend_config
            if callable(config):
                config = config(cls.tmp)
            if config is not None:
                argv.append("--config=" + write_config(os.path.join(cls.tmp, "frontend.yaml"), config))
            cls.fe = Stage("sluice-frontend", argv + list(cls.frontend_flags), cls.tmp, "frontend")
        except BaseException:
            cls.filter.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.fe.stop()
        cls.filter.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        # The frontend keeps filter connections between transactions: end them, so each test
        # starts on new ones made with its own script (the stale ones are replaced unseen).
        self.filter.close_connections()
        self.filter.script = {}
        self.filter.xforward = True
        self.filter.pipelining = False
        with self.filter._lock:
            self.filter.conns = []
        self._log_offset = len(self.fe.log())

    def new_log(self):
        return self.fe.log()[self._log_offset:]


def vm_rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


class RawClient:
    """A line-level SMTP client over a plain socket, for what smtplib will not send."""

    def __init__(self, port, source_address=None, timeout=20, prefix=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source_address, 0) if source_address else None)
        self.buf = b""
        if prefix:
            self.sock.sendall(prefix)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, full text) or (None, '') on EOF."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    return None, "\n".join(lines)
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def eof(self, timeout=5):
        """True when the server closes the connection within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def start_data(self, test, sender="alice@example.org", rcpt="bob@example.net"):
        """Greeting, EHLO, MAIL, RCPT and DATA, each asserted; the content is the caller's."""
        test.assertEqual(self.reply()[0], 220)
        test.assertEqual(self.cmd("EHLO client.test")[0], 250)
        test.assertEqual(self.cmd("MAIL FROM:<%s>" % sender)[0], 250)
        test.assertEqual(self.cmd("RCPT TO:<%s>" % rcpt)[0], 250)
        test.assertEqual(self.cmd("DATA")[0], 354)
        return self


def admin_stubs():
    """The Admin API stubs. harness.grpc_stubs() imports the sluice.v1 modules first and may
    then fail on grpc.health (the grpcio package shadows the generated grpc/ folder); the
    former are all the frontend's tests need."""
    from harness import grpc_stubs
    try:
        return grpc_stubs()
    except ModuleNotFoundError:
        import importlib
        return {n: importlib.import_module("sluice.v1." + n) for n in ("admin_pb2", "admin_pb2_grpc", "limits_pb2")}


def strip_received(message):
    """Splits our prepended Received: header (with its folded lines) off the raw message."""
    assert message.startswith(b"Received: "), message[:200]
    lines = message.split(b"\r\n")
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[:i]) + b"\r\n", b"\r\n".join(lines[i:])


__all__ = ["DROP", "ScriptedSmtp", "SharedFrontendTest", "admin_stubs", "metric", "start_frontend", "vm_rss_bytes", "RawClient", "strip_received",
           "write_config", "wait_for", "BIN_DIR", "Process"]
