"""tests/integration/test_ipv6.py -- sluice over IPv6, on the loopback ::1.

The whole pipeline (sluice-frontend -> sluice-filter-bridge -> sluice-reinject, Maildir) with
every stage listening on [::1] and every hop addressed as [::1]:port: the client's address is
named in the Received: header as Postfix does ([IPv6:::1]), passed on by XFORWARD and logged
at every stage. A listener given no host ("":port) takes IPv4 and IPv6 clients alike, and an
IPv4 client on it is named by its IPv4 address (not ::ffff:127.0.0.1). Per-client limits
count an IPv6 client by its network of ipv6_client_prefix_length bits: two clients of one
/84 (named by a PROXY v2 header from a balancer on ::1) share one message rate, a client of
the next /84 has its own.

Never: binds anything but loopback; leaves a process running (every stage is stopped by PID).
"""
import os
import smtplib
import socket
import struct
import unittest

import harness
from harness import Stage

MESSAGE = (b"From: alice@example.org\r\nTo: bob@example.com\r\nSubject: over IPv6\r\n"
           b"Message-ID: <v6-1@example.org>\r\n\r\nHello over IPv6.\r\n")


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def proxy_v2_ipv6(src, dst, sport, dport):
    """A PROXY protocol v2 header (PROXY command, TCP over IPv6)."""
    block = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + struct.pack(
        "!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21]) + struct.pack("!H", len(block)) + block


def reply(sock, buf):
    """One (possibly multi-line) SMTP reply: (code, rest of the buffer)."""
    while True:
        while b"\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return None, buf
            buf += data
        line, buf = buf.split(b"\r\n", 1)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), buf


@unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback on this host")
class Ipv6PipelineTest(harness.TempDirTest):

    def test_a_message_crosses_every_stage_over_ipv6(self):
        maildir = os.path.join(self.tmp, "mail")
        reinject = self.track(Stage("sluice-reinject", ["--queue_dir=" + os.path.join(self.tmp, "queue"),
                                                        "--deliver=maildir:" + maildir],
                                    self.tmp, "reinject", smtp_listen="[::1]:0"))
        bridge = self.track(Stage("sluice-filter-bridge", ["--next_hop=[::1]:%d" % reinject.smtp_port],
                                  self.tmp, "filter-bridge", smtp_listen="[::1]:0"))
        config = harness.write_yaml(os.path.join(self.tmp, "frontend.yaml"),
                                    "mynetworks: [\"::1/128\"]\naccepted_domains: [example.com]\n"
                                    "resolve_client_names: false\n")
        frontend = self.track(Stage("sluice-frontend", ["--filter=[::1]:%d" % bridge.smtp_port, "--config=" + config],
                                    self.tmp, "frontend", smtp_listen="[::1]:0"))

        with smtplib.SMTP("::1", frontend.smtp_port, local_hostname="client.test", timeout=30) as s:
            s.ehlo("client.test")
            s.mail("alice@example.org")
            self.assertEqual(s.rcpt("bob@example.com")[0], 250)
            code, text = s.data(MESSAGE)
        self.assertEqual(code, 250, text)

        def delivered():
            d = os.path.join(maildir, "bob@example.com", "new")
            return sorted(os.listdir(d)) if os.path.isdir(d) else []
        harness.wait_for(lambda: delivered(), 30, what="delivery to bob@example.com")
        with open(os.path.join(maildir, "bob@example.com", "new", delivered()[0]), "rb") as f:
            raw = f.read()
        # The frontend's Received: names the IPv6 client as Postfix does.
        self.assertIn(b"(unknown [IPv6:::1])", raw)
        self.assertIn(b"Hello over IPv6.", raw)
        # Every stage logs the client's IPv6 address (the ones behind from XFORWARD).
        frontend.wait_log(r"event=accept .*client=unknown\[::1\] .*to=<bob@example\.com>")
        bridge.wait_log(r"event=accept .*client=unknown\[::1\] .*to=<bob@example\.com>")
        reinject.wait_log(r"event=delivery .*to=bob@example\.com")

    def test_a_listener_without_host_takes_both_families(self):
        port = harness.free_port()
        config = harness.write_yaml(os.path.join(self.tmp, "frontend.yaml"),
                                    "mynetworks: [\"127.0.0.0/8\", \"::1/128\"]\nresolve_client_names: false\n")
        frontend = self.track(Stage("sluice-frontend", ["--filter=127.0.0.1:%d" % harness.free_port(),
                                                        "--config=" + config],
                                    self.tmp, "frontend", smtp_listen=":%d" % port))
        for host in ("127.0.0.1", "::1"):
            with smtplib.SMTP(host, port, local_hostname="client.test", timeout=30) as s:
                self.assertEqual(s.ehlo("client.test")[0], 250)
                self.assertEqual(s.mail("x@example.org")[0], 250)
                # Refused at RCPT (no such domain accepted, not relayed): a line naming the client.
                s.rcpt("y@example.net")
        frontend.wait_log(r"event=(reject|accept) .*client=unknown\[127\.0\.0\.1\] ")
        frontend.wait_log(r"event=(reject|accept) .*client=unknown\[::1\] ")
        self.assertNotIn("::ffff:", frontend.log())

    def test_per_client_limits_group_ipv6_clients_by_prefix(self):
        config = harness.write_yaml(os.path.join(self.tmp, "frontend.yaml"),
                                    "proxy_protocol_trusted: [\"::1/128\"]\nresolve_client_names: false\n"
                                    "limits:\n  per_client_message_rate_limit: 1\n  ipv6_client_prefix_length: 84\n")
        frontend = self.track(Stage("sluice-frontend", ["--filter=[::1]:%d" % harness.free_port(),
                                                        "--config=" + config],
                                    self.tmp, "frontend", smtp_listen="[::1]:0"))

        def mail_from(client):
            with socket.create_connection(("::1", frontend.smtp_port), timeout=20) as sock:
                sock.sendall(proxy_v2_ipv6(client, "::1", 40000, 25))
                code, buf = reply(sock, b"")
                self.assertEqual(code, 220)
                sock.sendall(b"EHLO client.test\r\n")
                code, buf = reply(sock, buf)
                self.assertEqual(code, 250)
                sock.sendall(b"MAIL FROM:<a@example.org>\r\n")
                code, buf = reply(sock, buf)
                sock.sendall(b"QUIT\r\n")
                return code

        self.assertEqual(mail_from("2001:db8:1:2::1"), 250)
        # The same /84 (only the last 44 bits differ): over the rate of one message.
        self.assertEqual(mail_from("2001:db8:1:2:0:fff:ffff:9"), 450)
        frontend.wait_log(r"event=reject .*client=unknown\[2001:db8:1:2:0:fff:ffff:9\] "
                          r"reply=\"450 4\.7\.1 Error: too much mail from 2001:db8:1:2:0:fff:ffff:9\" .*check=message_rate")
        # The next /84 is another client.
        self.assertEqual(mail_from("2001:db8:1:2:0:1000::1"), 250)


if __name__ == "__main__":
    unittest.main()
