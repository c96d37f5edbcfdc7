"""tests/integration/test_frontend_proxy.py -- sluice-frontend's smtpd_proxy_filter dialogue.

A real sluice-frontend in front of a scripted SMTP server (the "filter"): the message goes
through byte-exact apart from our Received:, the transaction starts at the filter at the
first RCPT with XFORWARD and the saved MAIL, the filter's replies reach the client, every
filter failure (unreachable, timeout, lost connection, unexpected reply) is 451 4.3.0 with
nothing delivered, RSET/NOOP/HELP/VRFY/QUIT behave, later transactions reuse the filter
connection (RSET first after one that ended early), and bare LF / smuggling attempts are
refused with nothing passed on. Connection reuse itself: test_frontend_filter_reuse.py.

Never: waits on a fixed sleep for something it can poll; leaves a process or thread running.
"""
import os
import re
import smtplib
import socket
import subprocess
import unittest

from harness import TempDirTest, send_mail
from test_frontend_support import (DROP, RawClient, ScriptedSmtp, SharedFrontendTest, start_frontend, strip_received,
                                   wait_for)


def stuffed(body):
    """What a message looks like dot-stuffed on the wire (RFC 5321 §4.5.2)."""
    return b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in body.split(b"\r\n"))


BODY = (b"From: Alice <alice@example.org>\r\n"
        b"To: Bob <bob@example.net>\r\n"
        b"Subject: byte exact\r\n"
        b"Message-ID: <m1@example.org>\r\n"
        b"\r\n"
        b"first line\r\n"
        b".a line starting with a dot\r\n"
        b"..two dots\r\n"
        b"trailing spaces   \r\n"
        b"\t tab and 8bit: \xc3\xa9t\xc3\xa9\r\n"
        b"\r\n"
        b"last line\r\n")


class FrontendProxyTest(SharedFrontendTest):
    """One frontend and one scripted filter for all tests (each test sets its own script)."""

    frontend_flags = ("--proxy_timeout=2s",)
    # Kept filter connections stay for the whole of a test however slow the machine is.
    frontend_config = "limits:\n  hop_connection_idle_limit_seconds: 60s\n"

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.fe.smtp_port, local_hostname="client.test", timeout=20)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        return s

    # ---- the happy path ----

    def test_message_via_smtplib_arrives_byte_exact_with_received_first(self):
        s = self.smtp()
        code, _ = s.mail("alice@example.org", ["BODY=8BITMIME", "SIZE=%d" % len(BODY)])
        self.assertEqual(code, 250)
        self.assertEqual(self.filter.connection_count(), 0, "no filter connection before the first RCPT")
        code, _ = s.rcpt("bob@example.net")
        self.assertEqual(code, 250)
        code, text = s.data(BODY)
        self.assertEqual(code, 250, text)
        self.assertIn(b"queued as SCRIPTED", text)
        s.quit()

        self.assertEqual(self.filter.connection_count(), 1)
        conn = self.filter.conns[0]
        received, rest = strip_received(conn.messages[0])
        self.assertEqual(rest, stuffed(BODY))
        self.assertRegex(received, rb"^Received: from client\.test \(\S+ \[127\.0\.0\.1\]\)\r\n"
                                   rb"\tby frontend\.test \(sluice\) with ESMTP id \S+\r\n"
                                   rb"\tfor <bob@example\.net>; \w{3}, [ \d]\d \w{3} \d{4} [\d:]{8} \+0000 \(UTC\)\r\n$")
        cmds = conn.commands
        self.assertEqual(cmds[0], "EHLO frontend.test")
        self.assertTrue(cmds[1].startswith("XFORWARD "), cmds)
        xf = dict(kv.split("=", 1) for c in cmds if c.startswith("XFORWARD ") for kv in c.split()[1:])
        self.assertEqual(xf["ADDR"], "127.0.0.1")
        self.assertEqual(xf["HELO"], "client.test")
        self.assertEqual(xf["PROTO"], "ESMTP")
        self.assertEqual(xf["SOURCE"], "REMOTE")
        self.assertRegex(xf["PORT"], r"^\d+$")
        session_id = xf["IDENT"]
        self.assertIn(session_id.encode(), received)
        mail = [c for c in cmds if c.startswith("MAIL")]
        self.assertEqual(len(mail), 1)
        self.assertTrue(mail[0].startswith("MAIL FROM:<alice@example.org>"), mail)
        self.assertIn("BODY=8BITMIME", mail[0])
        self.assertIn("SIZE=%d" % len(BODY), mail[0])
        self.assertEqual([c for c in cmds if c.startswith("RCPT")], ["RCPT TO:<bob@example.net>"])
        self.assertEqual(cmds[-1], "DATA")
        self.assertFalse(conn.closed, "the filter connection is kept for the next transaction")
        self.assertEqual(conn.pipelined, [], "no pipelining to a filter that does not announce it")

    def test_xforward_mail_and_the_first_rcpt_are_pipelined_to_a_pipelining_filter(self):
        self.filter.pipelining = True
        code, _ = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net", "carol@example.net"], BODY)
        self.assertEqual(code, 250)
        conn = self.filter.conns[0]
        self.assertTrue(conn.commands[1].startswith("XFORWARD "), conn.commands)
        self.assertEqual([c.split(":")[0] for c in conn.pipelined], ["MAIL FROM", "RCPT TO"],
                         "MAIL after XFORWARD and the first RCPT after MAIL, in one write; DATA never")
        self.assertEqual(conn.pipelined[-1], "RCPT TO:<bob@example.net>")
        self.assertEqual([c for c in conn.commands if c.startswith("RCPT")],
                         ["RCPT TO:<bob@example.net>", "RCPT TO:<carol@example.net>"])

    def test_pipelined_mail_refused_by_the_filter_is_the_rcpt_reply(self):
        self.filter.pipelining = True
        self.filter.script["mail"] = "550 5.7.1 sender refused"
        s = self.smtp()
        self.assertEqual(s.mail("alice@example.org")[0], 250)
        self.assertEqual(s.rcpt("bob@example.net"), (550, b"5.7.1 sender refused"))

    def test_message_via_swaks_arrives_byte_exact(self):
        data = os.path.join(self.tmp, "swaks.eml")
        body = BODY.replace(b"\r\n", b"\n")
        with open(data, "wb") as f:
            f.write(body)
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.fe.smtp_port, "--helo", "swaks.test",
                            "--from", "alice@example.org", "--to", "bob@example.net,carol@example.net",
                            "--data", data, "--timeout", "20"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        self.assertEqual(len(self.filter.messages()), 1)
        received, rest = strip_received(self.filter.messages()[0])
        # swaks ends the data it sends with one more CRLF of its own.
        self.assertEqual(rest, stuffed(BODY) + b"\r\n")
        self.assertNotIn(b"\tfor <", received, "two recipients: no 'for' clause")
        self.assertIn(b"from swaks.test (", received)

    def test_filter_rejects_one_recipient_and_the_client_sees_it(self):
        self.filter.script["rcpt"] = lambda line: ("550 5.1.1 <nobody@example.net>: Recipient address rejected"
                                                   if "nobody@" in line else "250 2.1.5 Ok")
        s = self.smtp()
        self.assertEqual(s.mail("alice@example.org")[0], 250)
        code, text = s.rcpt("nobody@example.net")
        self.assertEqual((code, text), (550, b"5.1.1 <nobody@example.net>: Recipient address rejected"))
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        code, _ = s.data(BODY)
        self.assertEqual(code, 250)
        received, _ = strip_received(self.filter.messages()[0])
        self.assertIn(b"for <bob@example.net>", received, "only the accepted recipient counts")

    def test_filter_rejects_the_message_and_the_client_sees_it(self):
        self.filter.script["dot"] = "554 5.7.1 Message content rejected: spam"
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual((code, text), (554, b"5.7.1 Message content rejected: spam"))

    def test_filter_refusing_the_sender_is_the_rcpt_reply_and_the_next_transaction_starts_with_rset(self):
        self.filter.script["mail"] = "553 5.7.1 <alice@example.org>: Sender address rejected"
        s = self.smtp()
        self.assertEqual(s.mail("alice@example.org")[0], 250, "MAIL is only checked locally")
        code, text = s.rcpt("bob@example.net")
        self.assertEqual(code, 553, text)
        del self.filter.script["mail"]
        self.assertEqual(s.rset()[0], 250)
        self.assertEqual(s.mail("alice@example.org")[0], 250)
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        self.assertEqual(self.filter.connection_count(), 1, "the connection was kept")
        cmds = self.filter.conns[0].commands
        self.assertEqual([c.split()[0] for c in cmds], ["EHLO", "XFORWARD", "MAIL", "RSET", "XFORWARD", "MAIL", "RCPT"])

    def test_filter_without_xforward_gets_no_xforward(self):
        self.filter.xforward = False
        code, _ = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual(code, 250)
        self.assertFalse([c for c in self.filter.conns[0].commands if c.startswith("XFORWARD")])

    # ---- failures: always 451 4.3.0, never a delivery ----

    def assertProxyError(self, code, text):
        self.assertEqual(code, 451, text)
        self.assertTrue(text.startswith(b"4.3.0"), text)

    def test_filter_timeout_at_end_of_data_is_451_and_nothing_delivered(self):
        self.filter.script["dot"] = ("sleep", 5, "250 2.0.0 too late")
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertProxyError(code, text)
        self.assertRegex(self.new_log(), r"event=proxy_failed .*step=end_of_data reason=timeout")

    def test_filter_timeout_at_rcpt_is_451(self):
        self.filter.script["rcpt"] = ("sleep", 5, "250 2.1.5 too late")
        s = self.smtp()
        s.mail("alice@example.org")
        code, text = s.rcpt("bob@example.net")
        self.assertProxyError(code, text)
        code, _ = s.docmd("DATA")
        self.assertEqual(code, 503, "no recipient was accepted")

    def test_filter_dropping_the_connection_mid_data_is_451_and_nothing_delivered(self):
        self.filter.script["data_drop_after"] = 100000
        body = BODY + b"x" * 998 + b"\r\n"
        body = body * 1000  # ~1 MB: the drop happens while content still flows
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], body)
        self.assertProxyError(code, text)
        self.assertEqual(self.filter.messages(), [])
        self.assertTrue(self.filter.conns[0].aborted_data)

    def test_filter_dropping_the_connection_at_rcpt_is_451(self):
        self.filter.script["rcpt"] = DROP
        s = self.smtp()
        s.mail("alice@example.org")
        self.assertProxyError(*s.rcpt("bob@example.net"))


    def test_filter_answering_250_to_data_is_451_and_nothing_delivered(self):
        self.filter.script["data"] = "250 2.0.0 Ok"
        s = self.smtp()
        s.mail("alice@example.org")
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        self.assertProxyError(*s.docmd("DATA"))
        self.assertEqual(self.filter.messages(), [])
        self.assertRegex(self.new_log(), r"step=data reason=unexpected_reply")

    def test_filter_answering_354_to_rcpt_is_451(self):
        self.filter.script["rcpt"] = "354 go ahead"
        s = self.smtp()
        s.mail("alice@example.org")
        self.assertProxyError(*s.rcpt("bob@example.net"))

    def test_filter_greeting_with_554_is_451(self):
        self.filter.script["greeting"] = "554 5.3.2 go away"
        s = self.smtp()
        s.mail("alice@example.org")
        self.assertProxyError(*s.rcpt("bob@example.net"))

    def test_filter_temporary_failure_at_end_of_data_is_passed_on(self):
        self.filter.script["dot"] = "452 4.3.1 Insufficient system storage"
        code, text = send_mail(self.fe.smtp_port, "alice@example.org", ["bob@example.net"], BODY)
        self.assertEqual((code, text), (452, b"4.3.1 Insufficient system storage"))

    # ---- the session around the transactions ----

    def test_rset_keeps_the_filter_connection_and_the_next_transactions_reuse_it(self):
        s = self.smtp()
        s.mail("alice@example.org")
        s.rcpt("bob@example.net")
        self.assertEqual(s.rset()[0], 250)
        s.mail("alice@example.org")
        s.rcpt("bob@example.net")
        self.assertEqual(s.data(BODY)[0], 250)
        s.mail("alice@example.org")
        s.rcpt("carol@example.net")
        self.assertEqual(s.data(BODY)[0], 250)
        self.assertEqual(self.filter.connection_count(), 1, "one filter connection for the session")
        conn = self.filter.conns[0]
        self.assertEqual(len(conn.messages), 2)
        verbs = [c.split()[0] for c in conn.commands]
        # The transaction reset mid-envelope is reset at the filter before the next one; a
        # transaction ended by the final reply needs none.
        self.assertEqual(verbs, ["EHLO", "XFORWARD", "MAIL", "RCPT", "RSET", "XFORWARD", "MAIL", "RCPT", "DATA",
                                 "XFORWARD", "MAIL", "RCPT", "DATA"])

    def test_noop_help_vrfy_quit(self):
        s = self.smtp()
        self.assertEqual(s.noop()[0], 250)
        code, _ = s.docmd("HELP")
        self.assertEqual(code, 214)
        code, text = s.docmd("VRFY", "bob@example.net")
        self.assertEqual((code, text[:5]), (502, b"5.5.1"))
        code, _ = s.docmd("EXPN", "staff")
        self.assertEqual(code, 502)
        code, _ = s.docmd("BOGUS")
        self.assertEqual(code, 502)
        s.mail("alice@example.org")
        self.assertEqual(s.noop()[0], 250, "NOOP inside a transaction")
        self.assertEqual(s.rcpt("bob@example.net")[0], 250)
        code, _ = s.quit()
        self.assertEqual(code, 221)
        self.assertEqual(self.filter.messages(), [])

    def test_client_vanishing_mid_data_delivers_nothing(self):
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.start_data(self)
        c.send(b"Subject: half\r\n\r\n" + b"y" * 200000 + b"\r\n")
        c.close()
        wait_for(lambda: self.filter.conns[0].closed or self.filter.conns[0].aborted_data, 10,
                 what="the filter connection to be dropped")
        self.assertEqual(self.filter.messages(), [])

    # ---- hostile input ----

    def smuggle(self, content):
        """Sends one message with raw content (must end the DATA itself); returns the final reply
        and the client for further commands."""
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.start_data(self)
        c.send(content)
        return c.reply(), c

    def test_bare_lf_dot_smuggling_is_rejected_and_nothing_passed_on(self):
        content = (b"Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\r\n"
                   b"RCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
        (code, text), c = self.smuggle(content)
        self.assertEqual(code, 550, text)
        self.assertIn("5.5.2", text)
        self.assertEqual(self.filter.messages(), [])
        self.assertEqual(c.cmd("QUIT")[0], 221)
        self.assertFalse([cmd for conn in self.filter.conns for cmd in conn.commands if "evil" in cmd])

    def test_bare_cr_dot_smuggling_is_rejected(self):
        (code, text), _ = self.smuggle(b"Subject: smuggle\r\n\r\nhello\r.\rmore\r\n.\r\n")
        self.assertEqual(code, 550, text)
        self.assertEqual(self.filter.messages(), [])

    def test_lf_dot_crlf_smuggling_is_rejected(self):
        (code, text), _ = self.smuggle(b"Subject: smuggle\r\n\r\nhello\n.\r\nmore\r\n.\r\n")
        self.assertEqual(code, 550, text)
        self.assertEqual(self.filter.messages(), [])

    def test_bare_lf_in_a_command_is_refused(self):
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.send(b"EHLO client.test\nMAIL FROM:<a@example.org>\r\n")
        code, _ = c.reply()
        self.assertEqual(code, 500)
        self.assertEqual(self.filter.connection_count(), 0)


class FrontendThroughPostfixTest(TempDirTest):
    """The frontend in front of a real Postfix SMTP server (smtp-sink), or of nothing at all."""

    def test_filter_unreachable_is_451(self):
        fe = start_frontend(self, "127.0.0.1:%d" % _free_port())  # nothing listens there
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname="client.test", timeout=20)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        s.mail("alice@example.org")
        code, text = s.rcpt("bob@example.net")
        self.assertEqual(code, 451, text)
        self.assertTrue(text.startswith(b"4.3.0"), text)
        self.assertRegex(fe.log(), r"event=proxy_failed .*step=connect reason=connect")

    def test_swaks_through_postfix_smtp_sink_arrives_byte_exact(self):
        sink_port = _free_port()
        dump = os.path.join(self.tmp, "dump")
        os.makedirs(dump)
        os.chmod(dump, 0o777)
        os.chmod(self.tmp, 0o755)
        from harness import Process
        argv = ["/usr/sbin/smtp-sink", "-d", dump + "/%M.", "127.0.0.1:%d" % sink_port, "10"]
        if os.geteuid() == 0:
            argv[1:1] = ["-u", "nobody"]
        self.track(Process(argv, os.path.join(self.tmp, "sink.log"), name="smtp-sink"))
        wait_for(lambda: _port_open(sink_port), 10, what="smtp-sink")
        fe = start_frontend(self, "127.0.0.1:%d" % sink_port)
        data = os.path.join(self.tmp, "m.eml")
        with open(data, "wb") as f:
            f.write(BODY.replace(b"\r\n", b"\n"))
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % fe.smtp_port, "--from", "alice@example.org",
                            "--to", "bob@example.net", "--data", data, "--timeout", "20"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        files = wait_for(lambda: os.listdir(dump), 10, what="smtp-sink's dump file")
        with open(os.path.join(dump, files[0]), "rb") as f:
            dumped = f.read()
        # smtp-sink writes its envelope as X-* lines and its own Received: (3 lines), then the
        # content as it arrived, with LF line ends and a blank line at the end.
        lines = dumped.split(b"\n")
        self.assertIn(b"X-Rcpt-Args: <bob@example.net>", lines)
        start = [i for i, l in enumerate(lines) if l.startswith(b"Received: from ")]
        self.assertEqual(len(start), 2, dumped)
        self.assertTrue(lines[start[0] + 1].startswith(b"\tby smtp-sink"), dumped)
        ours = b"\r\n".join(lines[start[1]:]).rstrip(b"\r\n") + b"\r\n"
        received, rest = strip_received(ours)
        self.assertIn(b"by frontend.test (sluice) with ESMTP", received)
        self.assertEqual(rest, BODY)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
