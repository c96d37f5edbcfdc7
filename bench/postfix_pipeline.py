"""bench/postfix_pipeline.py -- the Postfix pipeline sluice is measured against, set up privately.

Postfix's before-queue content filter as its SMTPD_PROXY_README describes it, on loopback:

    client -> before-filter smtpd (smtpd_proxy_filter) -> [null filter]
           -> after-filter smtpd (XFORWARD from loopback, no repeated checks)
           -> cleanup -> incoming queue (fsynced) -> qmgr -> discard(8)

The "null filter" is no filter at all: the before-filter smtpd's proxy connection goes straight
to the after-filter smtpd, so the figures are Postfix's own cost for two SMTP hops and a queue,
which is what sluice's three stages with no filter configured do. Every accepted message is
thrown away by discard(8) (it logs "status=sent"), as sluice's `--deliver=discard` does.

The instance is Postfix's own (`postfix -c DIR start`) with its own main.cf, a master.cf made
from Postfix's default one with postconf (the two smtpd entries added), and its own queue,
data directory and log file in a directory of its own under /var/tmp (maillog_file must be
under /var), on free loopback ports chosen now. It needs root (the queue directory must be root's and
the daemons drop to the postfix user) and Debian's postfix package; PostfixUnavailable says why
when either is missing. Also here: `SmtpSink`, Postfix's smtp-sink alone (one hop, no queue).

Never: touches the system's Postfix (/etc/postfix, its queue or service); binds anything but
127.0.0.1; leaves a process running after stop() (postfix stop, then the master's PID).
"""
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from process_tree import ProcessTree


class PostfixUnavailable(Exception):
    """Postfix cannot run here (not root, or not installed)."""


def why_postfix_cannot_run():
    """None when a private Postfix instance can run here, else the reason."""
    if os.geteuid() != 0:
        return "the Postfix pipeline needs root (its queue must be root's; its daemons run as postfix)"
    for tool in ("/usr/sbin/postfix", "/usr/sbin/smtp-source", "/usr/sbin/smtp-sink", "/usr/sbin/postconf",
                 MASTER_CF_DIST):
        if not os.access(tool, os.R_OK if tool.endswith(".dist") else os.X_OK):
            return "%s is missing: install Debian's postfix (scripts/install-deps)" % tool
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or postdrop group is missing (a broken postfix install)"
    return None


def free_port():
    """A loopback port free a moment ago (Postfix takes its ports from its configuration)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


class LogCounter:
    """Counts lines matching `pattern` appended to a log file, reading only what is new."""

    def __init__(self, path, pattern):
        self.path = path
        self.rx = re.compile(pattern)
        self.offset = 0
        self.count = 0
        self._partial = b""

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if self.rx.search(line.decode(errors="replace")):
                self.count += 1
        return self.count


# No local domains (mydestination empty): every recipient is relayed, and every relayed message
# goes to discard(8), the match of sluice's --deliver=discard.
MAIN_CF = """\
# A private Postfix instance of sluice's benchmark (bench/postfix_pipeline.py).
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
maillog_file = {log}
myhostname = postfix.bench.test
mydestination =
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
default_transport = discard:bench
relay_transport = discard:bench
message_size_limit = {message_size_limit}
"""

# Postfix's own default master.cf (Debian ships it with the package) gives the internal
# services (cleanup, qmgr, trivial-rewrite, bounce, discard, postlogd...). Dropped from it:
# the public smtp listener on port 25 and the pipe(8) transports; chroot is turned off (the
# private queue has no chroot set-up).
MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist"
DROPPED_SERVICES = ("smtp/inet", "maildrop/unix", "uucp/unix", "ifmail/unix", "bsmtp/unix",
                    "scalemail-backend/unix", "mailman/unix")

# The two smtpd entries of SMTPD_PROXY_README, on our ports. The before-filter smtpd's maxproc
# is raised to at least the benchmark's session count (the README's 20 would make clients
# queue for a process); its smtpd_client_connection_count_limit=10 does not bite here:
# loopback is in mynetworks, which smtpd_client_event_limit_exceptions exempts by default.
BEFORE_FILTER_OPTIONS = (
    "syslog_name=postfix/before-filter",
    "smtpd_proxy_filter=127.0.0.1:{after}",
    "smtpd_client_connection_count_limit=10",
)
AFTER_FILTER_OPTIONS = (
    "syslog_name=postfix/after-filter",
    "content_filter=",
    "receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters",
    "smtpd_authorized_xforward_hosts=127.0.0.0/8",
    "smtpd_client_restrictions=",
    "smtpd_helo_restrictions=",
    "smtpd_sender_restrictions=",
    "smtpd_relay_restrictions=",
    "smtpd_recipient_restrictions=permit_mynetworks,reject",
    "smtpd_data_restrictions=",
    "mynetworks=127.0.0.0/8",
)


class PostfixPipeline:
    """The private before-queue proxy pipeline. `port` is the before-filter smtpd's (where the
    load goes); tree is its ProcessTree (the master and every daemon it forks)."""

    name = "postfix"

    def __init__(self, parent_dir, maxproc=200, message_size_limit=10240000):
        reason = why_postfix_cannot_run()
        if reason:
            raise PostfixUnavailable(reason)
        # The daemons (user postfix) must reach their data directory through every parent.
        os.chmod(parent_dir, 0o755)
        self.base = tempfile.mkdtemp(prefix="postfix-", dir=parent_dir)
        self.etc = os.path.join(self.base, "etc")
        self.spool = os.path.join(self.base, "spool")
        self.data = os.path.join(self.base, "data")
        self.log_path = os.path.join(self.base, "postfix.log")
        for d in (self.etc, self.spool, self.data):
            os.makedirs(d)
        for d in (self.base, self.etc, self.spool):
            os.chown(d, 0, 0)
            os.chmod(d, 0o755)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)
        os.chmod(self.data, 0o700)
        self.port = free_port()
        self.after_port = free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(spool=self.spool, data=self.data, log=self.log_path,
                                   message_size_limit=message_size_limit))
        self.master_pid = None
        self.queue_dir = self.spool
        self._sent = LogCounter(self.log_path, r"postfix/discard\[\d+\]: .* status=sent ")
        try:
            self._write_master_cf(maxproc)
            self._postfix("check")
            self._postfix("start")
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                self.master_pid = int(f.read().strip())
            for port in (self.port, self.after_port):
                wait_until(lambda: port_open(port), 30, "Postfix on port %d" % port)
        except BaseException:
            self.stop()
            raise
        self.tree = ProcessTree([self.master_pid], self._role)

    def _write_master_cf(self, maxproc):
        shutil.copy(MASTER_CF_DIST, os.path.join(self.etc, "master.cf"))
        self._postconf("-MX", *DROPPED_SERVICES)
        self._postconf("-F", "*/*/chroot = n")
        for port, options in ((self.port, BEFORE_FILTER_OPTIONS), (self.after_port, AFTER_FILTER_OPTIONS)):
            service = "127.0.0.1:%d" % port
            self._postconf("-M", "%s/inet = %s inet n - n - %d smtpd" % (service, service, maxproc))
            self._postconf("-P", *["%s/inet/%s" % (service, o.format(after=self.after_port)) for o in options])

    def _postconf(self, *args):
        r = subprocess.run(["/usr/sbin/postconf", "-c", self.etc] + list(args), capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postconf %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))

    def _postfix(self, *args):
        r = subprocess.run(["/usr/sbin/postfix", "-c", self.etc] + list(args), capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix %s failed (%d): %s%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                                  r.stderr, self.log_tail(1000)))

    def _role(self, pid, command):
        if pid == self.master_pid:
            return "master"
        words = command.split()
        if not words:
            return "?"
        prog = os.path.basename(words[0])
        if prog == "smtpd" and "-n" in words:
            service = words[words.index("-n") + 1]
            return "smtpd (before-filter)" if service.endswith(":%d" % self.port) else "smtpd (after-filter)"
        return prog

    def delivered(self):
        """Messages discard(8) has logged as sent since the start."""
        return self._sent.update()

    def queue_files(self):
        n = 0
        for q in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.spool, q)):
                n += len(files)
        return n

    def idle_queue(self):
        return self.queue_files() == 0

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.master_pid is not None:
            subprocess.run(["/usr/sbin/postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    os.kill(self.master_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(self.master_pid, signal.SIGKILL)
            self.master_pid = None
        shutil.rmtree(self.base, ignore_errors=True)


class SmtpSink:
    """Postfix's smtp-sink alone on a free loopback port: accepts and forgets every message
    (no queue, one hop) -- the upper bound of what one SMTP hop costs. Run as nobody."""

    name = "smtp-sink"

    def __init__(self, parent_dir, backlog=256):
        self.port = free_port()
        self.log_path = os.path.join(parent_dir, "smtp-sink.log")
        argv = ["/usr/sbin/smtp-sink"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]
        argv += ["-h", "sink.bench.test", "127.0.0.1:%d" % self.port, str(backlog)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, 20, "smtp-sink")
            if self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited: see " + self.log_path)
        except BaseException:
            self.stop()
            raise
        self.tree = ProcessTree([self.proc.pid], lambda pid, cmd: "smtp-sink")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
