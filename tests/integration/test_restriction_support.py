"""tests/integration/test_restriction_support.py -- the real peers of the restriction tests.

- Dnsmasq: Debian's dnsmasq on a loopback address, serving only the records a test writes
  (TXT for SPF, A for blocklists), authoritative for .test (NXDOMAIN for the rest), with a
  chosen TTL; never forwarding anywhere.
- PolicySpawn: what Postfix's spawn(8) does for a policy daemon that speaks on stdin/stdout
  (policyd-spf): a TCP listener on 127.0.0.1 that starts the daemon for each connection with
  the socket as its stdin and stdout. With `resolver`, each daemon runs in a private mount
  namespace whose /etc/resolv.conf names that address (root only), so it asks our dnsmasq.
- Postgrey: Debian's postgrey on 127.0.0.1:PORT with a private database and a short delay.

No tests here. Never: binds anything but loopback; changes the machine's resolv.conf (the
bind mount lives in the daemon's own namespace); leaves a process behind (stopped by PID).
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import threading

from harness import Process, port_open, wait_for


def have_root_namespaces():
    return os.geteuid() == 0 and shutil.which("unshare") is not None


class Dnsmasq(Process):
    """dnsmasq on ADDRESS:PORT; records: txt {name: text}, a {name: address}. Authoritative
    (NXDOMAIN for what it does not hold) for the domains in `local`: .test by default.
    tcp_children: serve each TCP connection in a child process, as dnsmasq normally does --
    for a client that keeps a TCP connection open (rspamd's resolver), which would otherwise
    stall the whole server (--no-daemon serves TCP in the main process)."""

    def __init__(self, workdir, txt=None, a=None, ttl=30, port=None, address=None, local=("test",),
                 tcp_children=False):
        # Port 53 (resolv.conf cannot name another) on an address of our own in 127/8 when
        # asked for; any free port otherwise.
        self.address = address or "127.0.0.1"
        self.port = port
        if self.port is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((self.address, 0))
                self.port = s.getsockname()[1]
        foreground = ["--keep-in-foreground", "--log-facility=-"] if tcp_children else ["--no-daemon"]
        argv = ["/usr/sbin/dnsmasq"] + foreground + ["--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--bind-interfaces", "--listen-address=" + self.address, "--port=%d" % self.port,
                "--pid-file=", "--local-ttl=%d" % ttl, "--log-queries"]
        argv += ["--local=/%s/" % domain for domain in local]
        if os.geteuid() == 0:
            argv += ["--user=nobody", "--group=nogroup"]
        for name, text in (txt or {}).items():
            argv.append("--txt-record=%s,%s" % (name, text))  # no shell: no quotes
        for name, addr in (a or {}).items():
            argv.append("--host-record=%s,%s" % (name, addr))
        super().__init__(argv, os.path.join(workdir, "dnsmasq-%d.log" % self.port), name="dnsmasq")
        try:
            self.wait_log(r"dnsmasq(\[\d+\])?: started")
        except BaseException:
            self.stop()
            raise

    @property
    def server(self):
        return "%s:%d" % (self.address, self.port)

    def queries(self, name):
        """How many times `name` was asked for (dnsmasq's query log)."""
        return self.log().count("query[A] %s from" % name)


def private_dns_address():
    """An address in 127/8 for a port-53 dnsmasq, unlikely to be anyone else's."""
    return "127.53.%d.%d" % (random.randint(1, 254), random.randint(1, 254))


class PolicySpawn:
    """A TCP listener on 127.0.0.1 starting `argv` per connection, Postfix spawn(8) style."""

    def __init__(self, workdir, argv, resolver=None, name="policy"):
        self.argv = list(argv)
        self.workdir = workdir
        self.name = name
        self.children = []
        self._lock = threading.Lock()
        self.resolv_conf = None
        if resolver is not None:
            self.resolv_conf = os.path.join(workdir, name + ".resolv.conf")
            with open(self.resolv_conf, "w") as f:
                f.write("nameserver %s\n" % resolver)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._log = open(os.path.join(workdir, name + ".log"), "ab")
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def address(self):
        return "inet:127.0.0.1:%d" % self.port

    def connections(self):
        with self._lock:
            return len(self.children)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            argv = self.argv
            if self.resolv_conf:
                argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv_conf] + self.argv
            child = subprocess.Popen(argv, stdin=conn.fileno(), stdout=conn.fileno(), stderr=self._log,
                                     start_new_session=True)
            conn.close()
            with self._lock:
                self.children.append(child)

    def stop(self):
        self._stop.set()
        self._sock.close()
        self._thread.join(5)
        with self._lock:
            children = list(self.children)
        for c in children:
            if c.poll() is None:
                os.kill(c.pid, signal.SIGTERM)
                try:
                    c.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(c.pid, signal.SIGKILL)
                    c.wait(5)
        self._log.close()


class Postgrey(Process):
    """postgrey on 127.0.0.1:PORT, greylisting for `delay` seconds, database under workdir."""

    def __init__(self, workdir, delay=2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dbdir = os.path.join(workdir, "postgrey-db")
        os.makedirs(self.dbdir, exist_ok=True)
        os.chmod(self.dbdir, 0o777)
        os.chmod(workdir, 0o755)
        empty = os.path.join(workdir, "postgrey-empty-whitelist")
        open(empty, "w").close()
        argv = ["/usr/sbin/postgrey", "--inet=127.0.0.1:%d" % self.port, "--dbdir=" + self.dbdir,
                "--delay=%d" % delay, "--whitelist-clients=" + empty, "--whitelist-recipients=" + empty]
        if os.geteuid() == 0:
            argv += ["--user=nobody", "--group=nogroup"]
        super().__init__(argv, os.path.join(workdir, "postgrey.log"), name="postgrey")
        try:
            wait_for(lambda: port_open(self.port) or (not self.alive() and self._died()), 30, what="postgrey listening")
        except BaseException:
            self.stop()
            raise

    def _died(self):
        raise AssertionError("postgrey exited: %s" % self.log()[-2000:])

    @property
    def address(self):
        return "inet:127.0.0.1:%d" % self.port
