"""tests/integration/test_filter_bridge_support.py -- peers for the filter-bridge's tests.

  PostfixInstance  a private Postfix (its own config, queue and data dirs under /var/tmp) with
                   a before-filter smtpd whose smtpd_proxy_filter is the bridge, and an
                   after-filter smtpd (XFORWARD authorized) that delivers with Postfix's smtp
                   client to a given port -- the SMTPD_PROXY_README set-up, like
                   bench/ sets up for the benchmark.
  SinkSmtp         an aiosmtpd server in this process that keeps every message byte for byte
                   and can refuse chosen recipients or messages (the scripted downstream).
  MilterServer     a tiny real milter (libmilter protocol v6 over TCP): negotiates (with
                   chosen protocol flags), records every event with its arguments and macros,
                   answers "continue", and can reject/tempfail/accept/discard with a custom
                   reply or stop answering at a chosen event or recipient.
  ContentFilterServer  a sluice.v1.ContentFilter over gRPC answering from a Python function.
  BridgeStages     sluice-filter-bridge with a JSON/YAML config, and optionally reinject
                   downstream and the sluice frontend upstream.

No tests here (the module name only keeps it beside the filter-bridge's test files).
Never: binds anything but loopback; leaves a process, thread or socket running after stop().
"""
import asyncio
import json
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import Stage, wait_for


def free_port():
    """A loopback port that was free a moment ago (Postfix and aiosmtpd need one up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_log(process, offset):
    return process.log()[offset:]


# ---------------------------------------------------------------------------------------------
# The scripted downstream: aiosmtpd

class SinkSmtp:
    """aiosmtpd on 127.0.0.1 in a thread of this process. `refuse_rcpt` maps a recipient to
    the reply that refuses it; `refuse_content(raw)` may return a reply refusing the message.
    messages: (mail_from, rcpt_tos, raw bytes as received, dot-unstuffed)."""

    def __init__(self, refuse_rcpt=None, refuse_content=None):
        from aiosmtpd.controller import Controller
        self.refuse_rcpt = dict(refuse_rcpt or {})
        self.refuse_content = refuse_content
        self.messages = []
        self.rcpt_commands = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                with sink._lock:
                    sink.rcpt_commands.append(address)
                reply = sink.refuse_rcpt.get(address)
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 Ok"

            async def handle_DATA(self, server, session, envelope):
                raw = envelope.original_content
                if sink.refuse_content is not None:
                    reply = sink.refuse_content(raw)
                    if reply:
                        return reply
                with sink._lock:
                    sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), raw))
                return "250 2.0.0 Ok: queued as SINK%d" % len(sink.messages)

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                      server_hostname="sink.test", decode_data=False)
        self._controller.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def received(self):
        with self._lock:
            return list(self.messages)

    def stop(self):
        self._controller.stop()


# ---------------------------------------------------------------------------------------------
# A private Postfix instance

POSTFIX_MAIN_CF = """\
# private Postfix instance of a sluice filter-bridge test
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
maillog_file = {log}
myhostname = postfix.test
mydomain = test
myorigin = $myhostname
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = $myhostname ESMTP
default_transport = {transport}
relay_transport = {transport}
local_transport = {transport}
virtual_transport = {transport}
smtp_tls_security_level = none
smtpd_proxy_timeout = {proxy_timeout}s
# the test mail is small and loopback is quick: keep retries out of the picture
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

POSTFIX_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{before} inet n - n - 10 smtpd
  -o syslog_name=postfix/before-filter
  -o smtpd_proxy_filter={filter}
127.0.0.1:{after} inet n - n - 10 smtpd
  -o syslog_name=postfix/after-filter
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
  -o smtpd_client_restrictions=
  -o smtpd_helo_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_data_restrictions=
  -o mynetworks=127.0.0.0/8
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    """Postfix's before-queue proxy set-up around a filter at `filter_address`:
    client -> before_port (smtpd_proxy_filter=filter) ... filter -> after_port (XFORWARD
    authorized) -> queue -> smtp:[127.0.0.1]:deliver_port. Needs root (the queue directory
    must be root's). `extra_main_cf`: more main.cf lines. Stopped with `postfix -c DIR stop`,
    then its master PID is awaited."""

    def __init__(self, filter_address, deliver_port, after_port=None, proxy_timeout=100, extra_main_cf=""):
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root")
        # maillog_file must be under /var (maillog_file_prefixes).
        self.base = tempfile.mkdtemp(prefix="sluice-pf-", dir="/var/tmp")
        self.etc = os.path.join(self.base, "etc")
        self.spool = os.path.join(self.base, "spool")
        self.data = os.path.join(self.base, "data")
        self.log_path = os.path.join(self.base, "postfix.log")
        for d in (self.etc, self.spool, self.data):
            os.makedirs(d)
        os.chmod(self.base, 0o755)
        for d in (self.etc, self.spool):
            os.chown(d, 0, 0)
            os.chmod(d, 0o755)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)
        os.chmod(self.data, 0o700)
        self.before_port = free_port()
        self.after_port = after_port or free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN_CF.format(spool=self.spool, data=self.data, log=self.log_path,
                                           transport="smtp:[127.0.0.1]:%d" % deliver_port,
                                           proxy_timeout=proxy_timeout) + extra_main_cf)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(before=self.before_port, after=self.after_port,
                                             filter=filter_address))
        self.master_pid = None
        self._run("check")
        self._run("start")
        with open(os.path.join(self.spool, "pid", "master.pid")) as f:
            self.master_pid = int(f.read().strip())
        for port in (self.before_port, self.after_port):
            wait_for(lambda: harness.port_open(port), timeout=20, what="postfix port %d" % port)

    def _run(self, *args):
        r = subprocess.run(["postfix", "-c", self.etc] + list(args), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("postfix %s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=20):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout=timeout, what="postfix log %r" % pattern)

    def queue_files(self):
        n = []
        for q in ("incoming", "active", "deferred", "hold", "maildrop"):
            for root, _, files in os.walk(os.path.join(self.spool, q)):
                n += [os.path.join(root, f) for f in files]
        return n

    def stop(self):
        if self.master_pid is not None:
            subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    os.kill(self.master_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(self.master_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.master_pid = None
        shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A tiny real milter (Sendmail milter protocol, libmilter wire format)

SMFIR_CONTINUE = b"c"
SMFIR_ACCEPT = b"a"
SMFIR_DISCARD = b"d"
SMFIR_REJECT = b"r"
SMFIR_TEMPFAIL = b"t"
SMFIR_REPLYCODE = b"y"
SMFIC_NAMES = {b"C": "connect", b"H": "helo", b"M": "mail", b"R": "rcpt", b"T": "data", b"L": "header",
               b"N": "eoh", b"B": "body", b"E": "eom", b"U": "unknown"}
# Protocol flags a test milter may negotiate (SMFIP_*).
SMFIP_NORCPT = 1 << 3
SMFIP_NR_RCPT = 1 << 15


def _nul_strings(data):
    return [x.decode(errors="replace") for x in data.split(b"\0")[:-1]]


class MilterServer:
    """A milter on 127.0.0.1:PORT speaking the libmilter wire protocol (version 6).

    script maps an event ("connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body",
    "eom") -- or "rcpt:<address>" for one recipient -- to "reject", "tempfail", "accept",
    "discard", "hang" (no answer, ever: the MTA must time out), or a reply text like
    "550 5.7.1 no" (SMFIR_REPLYCODE). Every other event is answered "continue".
    protocol: the SMFIP_* flags it negotiates (events it does not want, replies it will not
    send: it then sends none). events: the event names received, in order; calls: one dict
    per event -- event, args (the NUL-separated strings), macros (those sent just before it),
    connection (a number per MTA connection), at (time.monotonic())."""

    def __init__(self, script=None, protocol=0):
        self.script = dict(script or {})
        self.protocol = protocol
        self.events = []
        self.calls = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._clients = []
        self._threads = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    @property
    def address(self):
        return "inet:127.0.0.1:%d" % self.port

    def seen(self):
        with self._lock:
            return list(self.events)

    def seen_calls(self, event=None):
        with self._lock:
            return [c for c in self.calls if event is None or c["event"] == event]

    def stop(self):
        self._stop.set()
        self._accepter.join(5)
        self._sock.close()
        for c in list(self._clients):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            self._clients.append(s)
            t = threading.Thread(target=self._serve, args=(s, number), daemon=True)
            self._threads.append(t)
            t.start()

    @staticmethod
    def _read_exact(s, n):
        buf = b""
        while len(buf) < n:
            data = s.recv(n - len(buf))
            if not data:
                raise EOFError
            buf += data
        return buf

    @staticmethod
    def _send(s, code, payload=b""):
        s.sendall(struct.pack(">I", 1 + len(payload)) + code + payload)

    def _action(self, event, args):
        if event == "rcpt" and args:
            rcpt = args[0].strip("<>").lower()
            if "rcpt:" + rcpt in self.script:
                return self.script["rcpt:" + rcpt]
        return self.script.get(event)

    # Replies to events the milter said (SMFIP_NR_*) it will not answer are not sent.
    _NO_REPLY = {"rcpt": SMFIP_NR_RCPT}

    def _serve(self, s, number):
        s.settimeout(1.0)
        hanging = False
        macros = {}
        try:
            while not self._stop.is_set():
                try:
                    header = self._read_exact(s, 4)
                except socket.timeout:
                    continue
                s.settimeout(30)
                (length,) = struct.unpack(">I", header)
                body = self._read_exact(s, length)
                s.settimeout(1.0)
                cmd, data = body[:1], body[1:]
                if cmd == b"O":
                    version, actions, _protocol = struct.unpack(">III", data[:12])
                    # Version 6, every action the MTA offers, the protocol flags asked for.
                    self._send(s, b"O", struct.pack(">III", min(version, 6), actions, self.protocol))
                    continue
                if cmd == b"D":   # macros: kept for the event they precede, not answered
                    strings = _nul_strings(data[1:])
                    macros = dict(zip(strings[0::2], strings[1::2]))
                    continue
                if cmd == b"A":   # abort is not answered
                    continue
                if cmd in (b"Q", b"K"):   # quit (K: quit, new connection follows)
                    if cmd == b"Q":
                        return
                    continue
                event = SMFIC_NAMES.get(cmd, "other")
                if event == "connect":   # hostname NUL, family, port (16 bits), address NUL
                    host, _, rest = data.partition(b"\0")
                    family = rest[:1].decode()
                    port = struct.unpack(">H", rest[1:3])[0] if family != "U" else 0
                    args = [host.decode(errors="replace"), family, port,
                            rest[3:].rstrip(b"\0").decode(errors="replace")]
                elif event in ("body",):
                    args = []
                else:
                    args = _nul_strings(data)
                with self._lock:
                    self.events.append(event)
                    self.calls.append({"event": event, "args": args, "macros": macros, "connection": number,
                                       "at": time.monotonic()})
                macros = {}
                if hanging:
                    continue
                action = self._action(event, args)
                if event in self._NO_REPLY and self.protocol & self._NO_REPLY[event]:
                    continue
                if action == "hang":
                    hanging = True
                elif action == "reject":
                    self._send(s, SMFIR_REJECT)
                elif action == "tempfail":
                    self._send(s, SMFIR_TEMPFAIL)
                elif action == "accept":
                    self._send(s, SMFIR_ACCEPT)
                elif action == "discard":
                    self._send(s, SMFIR_DISCARD)
                elif action:
                    self._send(s, SMFIR_REPLYCODE, action.encode() + b"\0")
                else:
                    self._send(s, SMFIR_CONTINUE)
        except (EOFError, OSError):
            return
        finally:
            try:
                s.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# A sluice.v1.ContentFilter over gRPC

class ContentFilterServer:
    """decide(start, headers, body) -> FilterVerdict. calls: (start, headers, body) seen."""

    def __init__(self, decide):
        import grpc
        from concurrent import futures
        stubs = harness.grpc_stubs()
        self.pb = stubs["filter_pb2"]
        pb_grpc = stubs["filter_pb2_grpc"]
        self.calls = []
        self._lock = threading.Lock()
        server_self = self

        class Servicer(pb_grpc.ContentFilterServicer):
            def Filter(self, request_iterator, context):
                start, headers, body = None, [], b""
                for req in request_iterator:
                    part = req.WhichOneof("part")
                    if part == "start":
                        start = req.start
                    elif part == "header":
                        headers.append((req.header.name, req.header.value))
                    elif part == "body_chunk":
                        body += req.body_chunk
                with server_self._lock:
                    server_self.calls.append((start, headers, body))
                return decide(start, headers, body)

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_ContentFilterServicer_to_server(Servicer(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def seen(self):
        with self._lock:
            return list(self.calls)

    def stop(self):
        self._server.stop(grace=None).wait(5)


# ---------------------------------------------------------------------------------------------
# The stages

def milter_filter(name, address, on_failure="tempfail", timeout="1s"):
    """A FilterConfig (dict) for the milter at `address`, every milter timeout `timeout`."""
    return {"name": name, "milter": {"address": address, "connect_timeout_seconds": timeout,
                                     "command_timeout_seconds": timeout, "content_timeout_seconds": timeout},
            "on_failure": on_failure}


def write_config(path, config):
    """Writes a stage config (a dict) as YAML: JSON is YAML's flow style."""
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    return path


def start_bridge(workdir, next_hop, config=None, flags=(), name="filter-bridge"):
    """sluice-filter-bridge towards next_hop (HOST:PORT) with `config` (a dict) as --config."""
    argv = ["--next_hop=" + next_hop]
    if config is not None:
        argv.append("--config=" + write_config(os.path.join(workdir, name + ".yaml"), config))
    return Stage("sluice-filter-bridge", argv + list(flags), workdir, name)


def start_reinject(workdir, flags=(), name="reinject", queue_dir=None):
    queue = queue_dir or os.path.join(workdir, name + "-queue")
    mail = os.path.join(workdir, name + "-mail")
    stage = Stage("sluice-reinject", ["--queue_dir=" + queue, "--deliver=maildir:" + mail] + list(flags),
                  workdir, name)
    stage.queue_dir = queue
    stage.maildir = mail
    return stage


def scrape(stage):
    """The stage's /metrics as {'name{labels}': value}."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % stage.metrics_port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def maildir_messages(maildir, recipient):
    d = os.path.join(maildir, recipient.lower(), "new")
    if not os.path.isdir(d):
        return []
    out = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f), "rb") as fh:
            out.append(fh.read())
    return out


def split_header(raw):
    """(header block with its final CRLF, body) of a raw message."""
    i = raw.find(b"\r\n\r\n")
    if i < 0:
        return raw, b""
    return raw[:i + 2], raw[i + 4:]


def header_fields(block):
    """The fields of a header block as raw byte strings (folded lines kept)."""
    fields = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def field_names(block):
    return [f.split(b":", 1)[0].decode() for f in header_fields(block)]


def assert_original_follows_added_headers(test, delivered, original, allowed_added):
    """The delivered message is `original` byte for byte with header fields prepended, each
    named in allowed_added. Returns the prepended fields."""
    test.assertTrue(delivered.endswith(original), "the original message is not intact at the end:\n%r" %
                    delivered[-400:])
    prefix = delivered[:len(delivered) - len(original)]
    added = header_fields(prefix)
    test.assertEqual(b"\r\n".join(added) + (b"\r\n" if added else b""), prefix, "prefix is not whole header fields")
    for f in added:
        name = f.split(b":", 1)[0].decode()
        test.assertIn(name, allowed_added, "unexpected header added: %r" % f)
    return added
