"""tests/integration/test_control_support.py -- helpers for the control-plane tests (issue 6).

Running sluicectl against the real stages (exit code, JSON document, stderr), asking a
stage's gRPC health, a three-stage pipeline whose frontend config may name the filter
stage's admin address (filter_admin, known only once the bridge runs), a raw SMTP client from
a chosen loopback source, and a throw-away certificate authority made with the openssl CLI
for the mutual-TLS tests.

No tests here (the module name only keeps it beside the control-plane test files).
Never: uses anything but loopback; leaves a process running (every stage is registered for
stopping by PID with the test that started it).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

import harness
from harness import BIN_DIR, Stage
from test_frontend_support import RawClient

SLUICECTL = os.path.join(BIN_DIR, "sluicectl")


class CtlResult:
    """One sluicectl run: exit code, stdout, stderr, and stdout as JSON when it is JSON."""

    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.doc = None
        if self.out.strip().startswith("{"):
            self.doc = json.loads(self.out)

    def __repr__(self):
        return "sluicectl %s -> %d\nstdout: %s\nstderr: %s" % (" ".join(self.argv), self.rc, self.out[:3000],
                                                              self.err[:3000])


def sluicectl(*args, timeout=60):
    """Runs sluicectl with `args`; returns a CtlResult."""
    argv = [SLUICECTL] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return CtlResult(list(args), proc)


def admin_flag(*stages):
    """--admin=A,B,... for the stages given."""
    return "--admin=" + ",".join(s.admin for s in stages)


def health(address, service=""):
    """The grpc.health.v1 status name ("SERVING", "NOT_SERVING", ...) of `service` at `address`."""
    m = harness.grpc_stubs()
    with grpc.insecure_channel(address) as ch:
        r = m["health_pb2_grpc"].HealthStub(ch).Check(m["health_pb2"].HealthCheckRequest(service=service), timeout=5)
        return m["health_pb2"].HealthCheckResponse.ServingStatus.Name(r.status)


def results_by_replica(doc):
    """{replica: response} of a sluicectl JSON document."""
    return {r["replica"]: r["response"] for r in doc["results"]}


def unused_port():
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class ControlPipeline:
    """The three stages of one test: reinject, bridge, frontend (and `stages` in start order)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.maildir = os.path.join(workdir, "mail")
        self.queue_dir = os.path.join(workdir, "queue")
        self.stages = []
        self.reinject = self.bridge = self.frontend = None

    def delivered(self, recipient):
        """Paths of the messages in the recipient's Maildir new/."""
        d = os.path.join(self.maildir, recipient.lower(), "new")
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, f) for f in os.listdir(d))


class ClassOwner:
    """Lets a TestCase class own processes for all its tests: a temp dir and class cleanups
    (run after the last test, last-in first-out, so the processes stop before the directory
    goes). See SharedStagesTest."""

    def __init__(self, cls):
        self.tmp = tempfile.mkdtemp(prefix="sluice-it-")
        cls.tmp = self.tmp
        cls.addClassCleanup(_remove_class_tmp, cls)  # first registered: runs last
        self.addCleanup = cls.addClassCleanup


def _remove_class_tmp(cls):
    if os.environ.get("SLUICE_KEEP_TMP") or not getattr(cls, "_started", False) or getattr(cls, "_any_failed", False):
        sys.stderr.write("kept %s (process logs inside)\n" % cls.tmp)
    else:
        shutil.rmtree(cls.tmp, ignore_errors=True)


class SharedStagesTest(unittest.TestCase):
    """Tests that share the processes start_stages(owner) starts once for the class. The
    class's temp dir is removed after the last test, unless the start or a test failed or
    SLUICE_KEEP_TMP is set (then its path is printed: every process log is in it)."""

    @classmethod
    def setUpClass(cls):
        cls._started = False
        cls._any_failed = False
        cls.start_stages(ClassOwner(cls))
        cls._started = True

    @classmethod
    def start_stages(cls, owner):
        raise NotImplementedError

    def tearDown(self):
        if harness.TempDirTest._failed(self):
            type(self)._any_failed = True


def start_pipeline(test, reinject_flags=(), bridge_flags=(), frontend_flags=(), frontend_config=None,
                   bridge_config=None, reinject_config=None, deliver=None):
    """reinject <- filter-bridge <- frontend on ephemeral loopback ports, each stopped by a
    cleanup of `test`. The *_config values are YAML text, or for the frontend a function of
    the running bridge returning it (so it can name the bridge's admin address). `deliver`:
    reinject's --deliver (default: a Maildir in the temp dir). `test` is a TestCase or a
    ClassOwner. Returns a ControlPipeline."""
    p = ControlPipeline(test.tmp)

    def config_flag(name, text):
        return ["--config=" + write(os.path.join(test.tmp, name + ".yaml"), text)] if text else []

    def add(stage):
        p.stages.append(stage)
        if hasattr(test, "track"):
            test.track(stage)  # harness.TempDirTest: stopped before its temp dir is removed
        else:
            test.addCleanup(stage.stop)
        return stage

    p.reinject = add(Stage("sluice-reinject",
                           ["--queue_dir=" + p.queue_dir, "--deliver=" + (deliver or "maildir:" + p.maildir)] +
                           config_flag("reinject", reinject_config) + list(reinject_flags), test.tmp, "reinject"))
    p.bridge = add(Stage("sluice-filter-bridge",
                         ["--next_hop=127.0.0.1:%d" % p.reinject.smtp_port] + config_flag("filter-bridge", bridge_config) +
                         list(bridge_flags), test.tmp, "filter-bridge"))
    text = frontend_config(p.bridge) if callable(frontend_config) else frontend_config
    p.frontend = add(Stage("sluice-frontend",
                           ["--filter=127.0.0.1:%d" % p.bridge.smtp_port] + config_flag("frontend", text) +
                           list(frontend_flags), test.tmp, "frontend"))
    return p


class Smtp(RawClient):
    """A line-level SMTP client from a chosen loopback source address, with the steps of a
    transaction left open at every stage."""

    def __init__(self, port, source="127.0.0.1", timeout=20):
        super().__init__(port, source_address=source, timeout=timeout)

    def start_transaction(self, test, sender="slow@example.org", rcpt="user@example.com"):
        """Greeting, EHLO, MAIL, RCPT, DATA (each asserted) and the first part of the content:
        the transaction is then open at every stage."""
        code, text = self.reply()
        test.assertEqual(code, 220, text)
        for line, want in (("EHLO slow.test", 250), ("MAIL FROM:<%s>" % sender, 250), ("RCPT TO:<%s>" % rcpt, 250),
                           ("DATA", 354)):
            code, text = self.cmd(line)
            test.assertEqual(code, want, "%s: %s" % (line, text))
        self.send("Subject: in flight\r\n\r\nfirst part\r\n")
        return self

    def finish(self):
        """Ends the content; the end-of-data reply."""
        self.send("second part\r\n.\r\n")
        return self.reply()


def greeting(port, source="127.0.0.1"):
    """(code, text, seconds) of a fresh connection's first reply."""
    started = time.monotonic()
    c = Smtp(port, source=source, timeout=30)
    try:
        code, text = c.reply()
        return code, text, time.monotonic() - started
    finally:
        c.close()


# ---- a throw-away certificate authority (openssl CLI) ----

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


class TestCa:
    """A CA (EC P-256) under dir/name/, issuing leaf certificates good for server and client
    auth (SAN localhost, 127.0.0.1)."""

    def __init__(self, directory, name):
        self.dir = os.path.join(directory, name)
        os.makedirs(self.dir, exist_ok=True)
        self.cnf = write(os.path.join(self.dir, "openssl.cnf"), _OPENSSL_CNF)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.crt")
        _openssl("req", "-x509", "-config", self.cnf, "-extensions", "ca_ext", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.key, "-out", self.cert,
                 "-days", "2", "-subj", "/CN=%s" % name)

    def issue(self, cn):
        """(cert_file, key_file) of a new leaf certificate for `cn`."""
        key = os.path.join(self.dir, cn + ".key")
        csr = os.path.join(self.dir, cn + ".csr")
        cert = os.path.join(self.dir, cn + ".crt")
        _openssl("req", "-new", "-config", self.cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", self.cnf, "-extensions", "leaf_ext")
        return cert, key


def tls_yaml(key, cert=None, keyfile=None, ca=None, require_client_cert=False, indent=""):
    """YAML of one TlsConfig field named `key`."""
    lines = ["%s%s:" % (indent, key)]
    if cert:
        lines.append("%s  cert_file: %s" % (indent, cert))
    if keyfile:
        lines.append("%s  key_file: %s" % (indent, keyfile))
    if ca:
        lines.append("%s  ca_file: %s" % (indent, ca))
    if require_client_cert:
        lines.append("%s  require_client_cert: true" % indent)
    return "\n".join(lines) + "\n"
