"""tests/integration/test_frontend_transport.py -- what sluice-frontend does below the dialogue.

STARTTLS with a certificate made at test time (swaks -tls; plaintext pipelined after
STARTTLS ends the session with 554 5.5.0, or is discarded with forbid_unauth_pipelining
off, CVE-2011-0411), PROXY protocol v1 and v2 from a trusted balancer
(the real client address is the one XFORWARD, Received: and the relay check use; an
untrusted peer's header is just a bad command; a trusted peer without one is dropped), a
50 MB message passing with flat frontend memory, and pipelined batches from Postfix's
smtp-source all delivered.

Never: asserts on timing; leaves a process running.
"""
import os
import socket
import ssl
import struct
import subprocess
import threading
import unittest
import urllib.request

import grpc

from harness import TempDirTest, send_mail
from test_frontend_support import (RawClient, ScriptedSmtp, SharedFrontendTest, admin_stubs, start_frontend,
                                   strip_received, vm_rss_bytes, wait_for)

BODY = b"Subject: transport\r\n\r\nhello\r\n"


def list_sessions(stage):
    m = admin_stubs()
    with grpc.insecure_channel(stage.admin) as ch:
        return m["admin_pb2_grpc"].AdminStub(ch).ListSessions(m["admin_pb2"].ListSessionsRequest(), timeout=10).sessions


def metrics_text(stage):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % stage.metrics_port, timeout=10) as r:
        return r.read().decode()


def make_certificate(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=frontend.test"], check=True, capture_output=True, timeout=60)
    return cert, key


class FrontendStartTlsTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)
        self.cert, self.key = make_certificate(self.tmp)
        self.fe = start_frontend(self, self.filter.address, config=self.tls_config())

    def tls_config(self, more=""):
        return "server:\n  smtp_tls:\n    cert_file: %s\n    key_file: %s\n%s" % (self.cert, self.key, more)

    def test_swaks_starttls_delivers_and_received_names_the_cipher(self):
        r = subprocess.run(["swaks", "-tls", "--server", "127.0.0.1:%d" % self.fe.smtp_port,
                            "--from", "alice@example.org", "--to", "bob@example.net", "--timeout", "20"],
                           capture_output=True, timeout=60)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("250-STARTTLS", out)
        self.assertIn("TLS started", out)
        received, _ = strip_received(self.filter.messages()[0])
        self.assertRegex(received, rb"\(using TLSv1\.[23] with cipher \S+\)")
        self.assertIn(b"with ESMTPS id", received)

    def test_plaintext_pipelined_after_starttls_ends_the_session(self):
        # RFC 3207 §4: STARTTLS ends a pipelined group; what follows it in the clear is an
        # injection attempt (CVE-2011-0411), refused as unauthorized pipelining.
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.test")[0], 250)
        c.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        self.assertEqual(c.reply(), (554, "554 5.5.0 Error: SMTP protocol synchronization"))
        self.assertTrue(c.eof(10))
        self.assertRegex(self.fe.log(), r"event=improper_pipelining .*after=STARTTLS input=\"MAIL FROM:<injected")
        self.assertEqual(self.filter.connection_count(), 0)

    def test_plaintext_pipelined_after_starttls_is_discarded_with_the_check_off(self):
        fe = start_frontend(self, self.filter.address, name="frontend-lax",
                            config=self.tls_config("  forbid_unauth_pipelining: false\n"))
        raw = socket.create_connection(("127.0.0.1", fe.smtp_port), timeout=20)
        self.addCleanup(raw.close)
        f = raw.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220"))
        raw.sendall(b"EHLO client.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        # The injected MAIL travels in the clear right behind STARTTLS.
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        self.assertTrue(f.readline().startswith(b"220"))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx.wrap_socket(raw, server_hostname="frontend.test")
        self.addCleanup(tls.close)
        tf = tls.makefile("rb")
        tls.sendall(b"EHLO client.test\r\n")
        lines = []
        while True:
            line = tf.readline()
            lines.append(line)
            if line[3:4] == b" ":
                break
        self.assertTrue(lines[0].startswith(b"250-"), lines)
        self.assertNotIn(b"STARTTLS", b"".join(lines), "no STARTTLS inside TLS")
        tls.sendall(b"RCPT TO:<bob@example.net>\r\n")
        self.assertTrue(tf.readline().startswith(b"503"), "the injected MAIL was not executed")
        # The session record shows the TLS facts (Admin.ListSessions).
        sessions = [x for x in list_sessions(fe) if x.helo == "client.test"]
        self.assertEqual(len(sessions), 1, sessions)
        self.assertRegex(sessions[0].tls_version, r"^TLSv1\.[23]$")
        self.assertTrue(sessions[0].tls_cipher)
        self.assertEqual(sessions[0].protocol, "ESMTPS")
        tls.sendall(b"QUIT\r\n")
        self.assertTrue(tf.readline().startswith(b"221"))

    def test_a_failed_handshake_is_counted_and_ends_the_session(self):
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("STARTTLS")[0], 220)
        c.send(b"this is not a TLS ClientHello\r\n" * 4)
        self.assertTrue(c.eof(10))
        wait_for(lambda: 'sluice_frontend_tls_sessions_total{outcome="failed"} 1' in metrics_text(self.fe), 10,
                 what="the failed handshake counted")


def proxy_v2(src, dst, sport, dport, family=socket.AF_INET, command=0x1):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if command == 0x0:
        return sig + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    if family == socket.AF_INET:
        block = socket.inet_pton(family, src) + socket.inet_pton(family, dst) + struct.pack("!HH", sport, dport)
        fam = 0x11
    else:
        block = socket.inet_pton(family, src) + socket.inet_pton(family, dst) + struct.pack("!HH", sport, dport)
        fam = 0x21
    tlv = b"\x04\x00\x01\x00"  # a NOOP TLV (PP2_TYPE_NOOP) the parser must skip
    return sig + bytes([0x20 | command, fam]) + struct.pack("!H", len(block) + len(tlv)) + block + tlv


class FrontendProxyProtocolTest(SharedFrontendTest):

    frontend_config = ("proxy_protocol_trusted: [\"127.0.0.1/32\"]\n"
                       "resolve_client_names: false\n"
                       "mynetworks: [\"127.0.0.0/8\"]\n"
                       "accepted_domains: [\"example.net\"]\n")

    def mail_through(self, header, rcpt="bob@example.net"):
        c = RawClient(self.fe.smtp_port, prefix=header)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO balanced.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
        code, text = c.cmd("RCPT TO:<%s>" % rcpt)
        if code != 250:
            return code, text
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(BODY + b".\r\n")
        return c.reply()

    def xforward_of(self, conn):
        return dict(kv.split("=", 1) for cmd in conn.commands if cmd.startswith("XFORWARD ")
                    for kv in cmd.split()[1:])

    def test_v1_header_gives_the_real_client_address(self):
        code, _ = self.mail_through(b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 25\r\n")
        self.assertEqual(code, 250)
        xf = self.xforward_of(self.filter.conns[0])
        self.assertEqual((xf["ADDR"], xf["PORT"]), ("198.51.100.7", "40001"))
        received, _ = strip_received(self.filter.messages()[0])
        self.assertIn(b"[198.51.100.7]", received)

    def test_the_session_record_names_the_real_client_and_the_balancer(self):
        c = RawClient(self.fe.smtp_port, prefix=b"PROXY TCP4 198.51.100.8 127.0.0.1 40009 25\r\n")
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO balanced.test")[0], 250)
        sessions = [x for x in list_sessions(self.fe) if x.client_address == "198.51.100.8"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual((sessions[0].client_port, sessions[0].proxy_source_address), (40009, "127.0.0.1"))
        self.assertEqual(sessions[0].helo, "balanced.test")

    def test_v1_client_outside_mynetworks_cannot_relay(self):
        code, text = self.mail_through(b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 25\r\n", rcpt="x@example.com")
        self.assertEqual(code, 554, text)
        self.assertEqual(self.filter.connection_count(), 0)

    def test_v2_ipv4_and_ipv6_headers(self):
        code, _ = self.mail_through(proxy_v2("203.0.113.9", "127.0.0.1", 50002, 25))
        self.assertEqual(code, 250)
        code, _ = self.mail_through(proxy_v2("2001:db8::5", "2001:db8::1", 50003, 25, socket.AF_INET6))
        self.assertEqual(code, 250)
        addrs = [(xf["ADDR"], xf["PORT"]) for xf in self.filter.xforwards()]
        self.assertEqual(addrs, [("203.0.113.9", "50002"), ("IPV6:2001:db8::5", "50003")])

    def test_v2_local_keeps_the_peer_address(self):
        code, _ = self.mail_through(proxy_v2(None, None, 0, 0, command=0x0))
        self.assertEqual(code, 250)
        self.assertEqual(self.xforward_of(self.filter.conns[0])["ADDR"], "127.0.0.1")

    def test_v2_header_split_over_many_writes(self):
        header = proxy_v2("203.0.113.10", "127.0.0.1", 50004, 25)
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in header:
            c.send(bytes([b]))
        self.assertEqual(c.reply()[0], 220)

    def test_trusted_peer_without_header_is_dropped(self):
        c = RawClient(self.fe.smtp_port, prefix=b"EHLO sneaky.test\r\n")
        self.addCleanup(c.close)
        code, _ = c.reply()
        self.assertIsNone(code, "no greeting for a balancer connection without its PROXY header")
        self.assertRegex(self.new_log(), r"event=proxy_protocol_error")

    def test_malformed_v1_header_is_dropped(self):
        c = RawClient(self.fe.smtp_port, prefix=b"PROXY TCP4 999.1.1.1 127.0.0.1 1 25\r\n")
        self.addCleanup(c.close)
        self.assertIsNone(c.reply()[0])

    def test_untrusted_peer_header_is_only_a_bad_command(self):
        # (Sent before the greeting it would be a pregreet: test_input_rules.py.)
        c = RawClient(self.fe.smtp_port, source_address="127.0.0.2")
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("PROXY TCP4 198.51.100.7 127.0.0.1 40001 25")[0], 502)
        self.assertEqual(c.cmd("EHLO x.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.net>")[0], 250)
        self.assertEqual(self.xforward_of(self.filter.conns[0])["ADDR"], "127.0.0.2")


class FrontendLargeAndPipelinedTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.filter = ScriptedSmtp()
        self.addCleanup(self.filter.stop)

    def test_50_mb_message_passes_with_flat_memory(self):
        fe = start_frontend(self, self.filter.address, ["--message_size_limit=60000000"])
        # Warm up: the first transaction allocates what every later one reuses.
        self.assertEqual(send_mail(fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)[0], 250)
        start = vm_rss_bytes(fe.pid)
        line = b"0123456789" * 9 + b"abcdefg\r\n"  # 99 bytes
        body = b"Subject: big\r\n\r\n" + line * (50 * 1024 * 1024 // len(line))
        peak = [start]
        done = threading.Event()

        def sample():
            while not done.wait(0.02):
                try:
                    peak[0] = max(peak[0], vm_rss_bytes(fe.pid))
                except (OSError, AssertionError):
                    return
        t = threading.Thread(target=sample)
        t.start()
        try:
            code, text = send_mail(fe.smtp_port, "alice@example.org", ["bob@example.net"], body)
        finally:
            done.set()
            t.join()
        self.assertEqual(code, 250, text)
        _, rest = strip_received(self.filter.messages()[1])
        self.assertEqual(len(rest), len(body))
        self.assertEqual(rest, body)
        growth = peak[0] - start
        self.assertLess(growth, 40 * 1024 * 1024, "frontend RSS grew by %d bytes for a 50 MB message" % growth)

    def test_smtp_source_pipelined_batches_are_all_delivered(self):
        self.filter.pipelining = True
        fe = start_frontend(self, self.filter.address)
        r = subprocess.run(["/usr/sbin/smtp-source", "-s", "4", "-m", "40", "-c", "-d", "-l", "4000",
                            "-f", "alice@example.org", "-t", "bob@example.net", "-r", "3",
                            "127.0.0.1:%d" % fe.smtp_port], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(len(self.filter.messages()), 40)
        self.assertLess(self.filter.connection_count(), 40, "filter connections are reused")
        for conn in self.filter.conns:
            self.assertEqual(len([c for c in conn.commands if c.startswith("RCPT")]), 3 * len(conn.messages))


if __name__ == "__main__":
    unittest.main()
