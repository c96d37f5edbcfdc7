"""tests/integration/test_filter_bridge_rspamd.py -- Authentication-Results under our name (issue 15).

The whole pipeline -- sluice-frontend (authserv_id mx.example.net) -> sluice-filter-bridge
with Debian's rspamd as its milter (milter_macro_daemon_name mx.example.net) -> reinject ->
Maildir -- with rspamd configured privately here (a normal worker scanning behind its proxy
worker in milter mode, on loopback ports; the stock rules; the milter_headers
authentication-results routine; SPF/DKIM/DMARC also for loopback clients) and asking only a
dnsmasq on loopback that serves this test's zone: SPF for example.org allowing 127.0.0.2, its
DMARC policy, and the DKIM key the test signs with (openssl, rsa-sha256, relaxed/relaxed).
  * A message from 127.0.0.2, signed, carrying a forged "Authentication-Results:
    mx.example.net; dkim=pass ..." and another host's results: the forged field is gone,
    the other host's arrives unchanged, and exactly one field names mx.example.net -- rspamd's,
    with dkim=pass, spf=pass, dmarc=pass.
  * The same message from 127.0.0.3 with its body changed after signing: our field says
    dkim=fail, spf=fail, dmarc=fail -- the results are rspamd's own checks.

Never: asks a DNS server but the test's dnsmasq; leaves rspamd or dnsmasq running (stopped
by PID); uses a port or address beyond loopback.
"""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import test_filter_bridge_support as fbs
from test_restriction_support import Dnsmasq

AUTHSERV_ID = "mx.example.net"

RSPAMD_CONF = """\
# Written by tests/integration/test_filter_bridge_rspamd.py: the stock rules and modules
# ($CONFDIR/common.conf), a normal worker that scans and the proxy worker in milter mode in
# front of it, as Debian's rspamd.conf has them, on the test's own ports.
.include "$CONFDIR/common.conf"
options {{
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}}
logging {{
  type = "file";
  filename = "$LOGDIR/rspamd.log";
  level = "info";
}}
worker "normal" {{
  bind_socket = "127.0.0.1:{scan_port}";
  .include "$CONFDIR/worker-normal.inc"
}}
worker "rspamd_proxy" {{
  bind_socket = "127.0.0.1:{port}";
  milter = yes;
  timeout = 120s;
  upstream "local" {{
    default = yes;
    hosts = "127.0.0.1:{scan_port}";
  }}
  count = 1;
}}
"""

# local.d/: what docs/filters.md shows, plus the test's own resolver and loopback clients.
LOCAL_D = {
    "options.inc": "local_addrs = [];\ndns {{\n  nameserver = [\"{dns}\"];\n  timeout = 2s;\n  retransmits = 2;\n}}\n",
    "milter_headers.conf": ("use = [\"authentication-results\"];\nskip_local = false;\nskip_authenticated = false;\n"
                            "routines {{\n  authentication-results {{\n    remove = false;\n  }}\n}}\n"),
    "spf.conf": "check_local = true;\ncheck_authed = true;\n",
    "dkim.conf": "check_local = true;\ncheck_authed = true;\n",
    "dmarc.conf": "check_local = true;\ncheck_authed = true;\n",
}


class Rspamd(harness.Process):
    """Debian's rspamd, configured in `workdir` only, its milter on 127.0.0.1:port."""

    def __init__(self, workdir, dns_server):
        self.port = fbs.free_port()
        base = os.path.join(workdir, "rspamd")
        for d in ("local.d", "db", "run", "log"):
            os.makedirs(os.path.join(base, d))
        conf = os.path.join(base, "rspamd.conf")
        with open(conf, "w") as f:
            f.write(RSPAMD_CONF.format(port=self.port, scan_port=fbs.free_port()))
        for name, text in LOCAL_D.items():
            with open(os.path.join(base, "local.d", name), "w") as f:
                f.write(text.format(dns=dns_server))
        self.log_path_rspamd = os.path.join(base, "log", "rspamd.log")
        argv = ["/usr/bin/rspamd", "-f", "-i", "-c", conf] + ["--var=%s=%s" % (k, os.path.join(base, v)) for k, v in
                                                             (("LOCAL_CONFDIR", ""), ("DBDIR", "db"),
                                                              ("RUNDIR", "run"), ("LOGDIR", "log"))]
        super().__init__(argv, os.path.join(base, "stdout.log"), name="rspamd")
        try:
            harness.wait_for(lambda: harness.port_open(self.port) or (not self.alive() and self._died()),
                             timeout=90, what="rspamd's milter port")
        except BaseException:
            self.stop()
            raise

    def _died(self):
        raise AssertionError("rspamd exited: " + self.log())

    @property
    def address(self):
        return "inet:127.0.0.1:%d" % self.port


def relaxed_header(name, value):
    """RFC 6376 §3.4.2."""
    value = re.sub(r"\r\n(?=[ \t])", "", value)
    return name.strip().lower() + ":" + re.sub(r"[ \t]+", " ", value).strip()


def relaxed_body(body):
    """RFC 6376 §3.4.4."""
    lines = body.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [re.sub(r"[ \t]+", " ", line).rstrip(" \t") for line in lines]
    while lines and lines[-1] == "":
        lines.pop()
    return "".join(line + "\r\n" for line in lines)


def dkim_sign(message, key_pem, domain, selector, signed=("from", "to", "subject", "date", "message-id")):
    """`message` with a DKIM-Signature (rsa-sha256, relaxed/relaxed) on top, as the sender's MTA signs."""
    head, _, body = message.partition("\r\n\r\n")
    fields = {}
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            fields[last].append(line)
        else:
            last = line.split(":", 1)[0].strip().lower()
            fields[last] = [line]
    body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body).encode()).digest()).decode()
    tags = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%d; h=%s; bh=%s; b="
            % (domain, selector, int(time.time()), ":".join(signed), body_hash))
    data = ""
    for name in signed:
        field = "\r\n".join(fields[name])
        data += relaxed_header(*field.split(":", 1)) + "\r\n"
    data += relaxed_header("DKIM-Signature", " " + tags)
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem], input=data.encode(),
                               capture_output=True, check=True).stdout
    return "DKIM-Signature: " + tags + base64.b64encode(signature).decode() + "\r\n" + message


def authentication_results(raw):
    """The Authentication-Results fields of a delivered message, unfolded, in order."""
    head = raw.partition(b"\r\n\r\n")[0].decode()
    fields = re.findall(r"^Authentication-Results:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M | re.I)
    return [re.sub(r"\r\n[ \t]+", " ", f).strip() for f in fields]


MESSAGE = ("From: CEO <ceo@example.org>\r\n"
           "To: someone@example.com\r\n"
           "Subject: quarterly numbers\r\n"
           "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
           "Message-ID: <q4@example.org>\r\n"
           "Authentication-Results: " + AUTHSERV_ID + "; dkim=pass header.d=bank.example;\r\n"
           "\tspf=pass smtp.mailfrom=bank.example; dmarc=pass header.from=bank.example\r\n"
           "Authentication-Results: upstream.example; spf=none smtp.mailfrom=example.org\r\n"
           "\r\n"
           "The numbers are attached.\r\n")


class RspamdAuthenticationResultsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access("/usr/bin/rspamd", os.X_OK):
            raise unittest.SkipTest("rspamd is not installed (scripts/install-deps)")
        cls.tmp = tempfile.mkdtemp(prefix="sluice-it-rspamd-")
        cls.procs = []
        try:
            cls.key = os.path.join(cls.tmp, "dkim.pem")
            subprocess.run(["openssl", "genrsa", "-out", cls.key, "1024"], check=True, capture_output=True)
            public = subprocess.run(["openssl", "rsa", "-in", cls.key, "-pubout", "-outform", "DER"], check=True,
                                    capture_output=True).stdout
            # tcp_children: rspamd keeps a TCP connection to its nameserver open.
            cls.dns = cls.track(Dnsmasq(cls.tmp, local=("org", "com", "net", "example", "io"), tcp_children=True, txt={
                "example.org": "v=spf1 ip4:127.0.0.2 -all",
                "_dmarc.example.org": "v=DMARC1; p=reject",
                "sel._domainkey.example.org": "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()}))
            cls.rspamd = cls.track(Rspamd(cls.tmp, cls.dns.server))
            cls.reinject = cls.track(fbs.start_reinject(cls.tmp))
            cls.bridge = cls.track(fbs.start_bridge(
                cls.tmp, "127.0.0.1:%d" % cls.reinject.smtp_port,
                {"upstream_admin_port": 0, "milter_macro_daemon_name": AUTHSERV_ID,
                 "filters": [fbs.milter_filter("rspamd", cls.rspamd.address, timeout="60s")]}))
            fe_config = fbs.write_config(os.path.join(cls.tmp, "frontend.yaml"), {"authserv_id": AUTHSERV_ID})
            cls.frontend = cls.track(harness.Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % cls.bridge.smtp_port,
                                                                       "--config=" + fe_config], cls.tmp, "frontend"))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def track(cls, process):
        cls.procs.append(process)
        return process

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            p.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def deliver(self, rcpt, message, client):
        code, text = harness.send_mail(self.frontend.smtp_port, "ceo@example.org", [rcpt], message,
                                       source_address=client, ehlo="mail.example.org")
        self.assertEqual(code, 250, text)
        return harness.wait_for(lambda: fbs.maildir_messages(self.reinject.maildir, rcpt), 60,
                                what="delivery to " + rcpt)[0]

    def ours(self, fields):
        return [f for f in fields if re.match(re.escape(AUTHSERV_ID) + r"\s*;", f, re.I)]

    def test_rspamd_results_arrive_under_our_authserv_id_and_the_forged_one_is_gone(self):
        raw = self.deliver("ceo-report@example.com", dkim_sign(MESSAGE, self.key, "example.org", "sel"), "127.0.0.2")
        fields = authentication_results(raw)
        self.assertNotIn(b"bank.example", raw)  # the forged field, and only it, named bank.example
        self.assertIn("upstream.example; spf=none smtp.mailfrom=example.org", fields)
        ours = self.ours(fields)
        self.assertEqual(len(ours), 1, fields)
        self.assertRegex(ours[0], r"\bdkim=pass header\.d=example\.org header\.s=sel\b")
        self.assertRegex(ours[0], r"\bspf=pass\b.*smtp\.mailfrom=ceo@example\.org")
        self.assertRegex(ours[0], r"\bdmarc=pass\b.*header\.from=example\.org")
        metrics = fbs.scrape(self.frontend)
        self.assertGreaterEqual(metrics['sluice_frontend_header_fields_removed_total{header="authentication_results"}'], 1)

    def test_failing_checks_are_reported_as_failing(self):
        signed = dkim_sign(MESSAGE, self.key, "example.org", "sel").replace("numbers are attached", "numbers changed")
        raw = self.deliver("ceo-forged@example.com", signed, "127.0.0.3")
        ours = self.ours(authentication_results(raw))
        self.assertEqual(len(ours), 1, ours)
        self.assertRegex(ours[0], r"\bdkim=fail\b")
        self.assertRegex(ours[0], r"\bspf=fail\b")
        self.assertRegex(ours[0], r"\bdmarc=fail\b")
        self.assertNotIn(b"bank.example", raw)


if __name__ == "__main__":
    unittest.main()
