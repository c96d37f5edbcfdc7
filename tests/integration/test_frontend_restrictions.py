"""tests/integration/test_frontend_restrictions.py -- the frontend's table checks before DATA.

sluice-frontend in front of Postfix's smtp-sink (the filter stage), clients speaking smtplib
from loopback addresses that stand in for the Internet (mynetworks is 127.0.0.1 only):
- relay_recipients: an unlisted user of a covered accepted domain gets Postfix's
  "550 5.1.1 <addr>: Recipient address rejected: User unknown in relay recipient table" at
  RCPT, from outsiders and mynetworks alike; catch-alls, uncovered accepted domains and the
  relay check behave as documented; the refusal is one NOQUEUE line and one count; the
  message goes on to the filter for the accepted recipients only;
- a ConfigMap-style swap of the table's `..data` symlink is picked up without a restart;
- client_access / helo_access / sender_access with Postfix's actions and replies, judged at
  RCPT (smtpd_delay_reject = yes), or at their own command with delay_reject off;
- docs/restrictions.md and the README's config block name only real config keys and limits,
  every field of the restrictions is documented, and every metric the doc names is scraped.

Never: uses any address but loopback; leaves a process behind (stopped by PID).
"""
import os
import re
import smtplib
import time
import urllib.request

from harness import SOURCE_DIR, SmtpSink, TempDirTest, wait_for
from test_frontend_support import RawClient, start_frontend

BODY = b"Subject: restrictions\r\n\r\nhello\r\n"


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return None


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


class FrontendRestrictionsTest(TempDirTest):

    def setUp(self):
        super().setUp()
        self.sink = self.track(SmtpSink(self.tmp))

    def configmap(self, name, files):
        """A kubelet-style ConfigMap volume: NAME -> ..data/NAME, ..data -> a version dir.
        A new version holds every file: those given, the others as they were."""
        current = getattr(self, "_cm_files", {}).get(name, {})
        files = dict(current, **files)
        self.__dict__.setdefault("_cm_files", {})[name] = files
        root = os.path.join(self.tmp, name)
        version = os.path.join(root, "..v%d" % time.monotonic_ns())
        for f, text in files.items():
            write(os.path.join(version, f), text)
        tmp_link = os.path.join(root, "..data_tmp")
        os.symlink(os.path.basename(version), tmp_link)
        os.replace(tmp_link, os.path.join(root, "..data"))
        for f in files:
            link = os.path.join(root, f)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", f), link)
        return root

    def frontend(self, extra_config="", delay_reject=True):
        cm = self.configmap("tables", {
            "recipients": "# the valid users of example.com\nalice@example.com OK\nbob@example.com\n@catch.example\n",
            "client_access": "127.0.0.3 REJECT\n127.0.0.4 550 5.7.1 You are listed here\n127.0.0.5 OK\n"
                             "127.0.0.6 DEFER_IF_PERMIT Try again soon\n",
            "helo_access": "bad.helo.test REJECT Go away\n.dyn.test 450 4.7.1 Dynamic hosts wait\n",
            "sender_access": "spammer@evil.test 550 5.7.1 No spam please\nevil.test DEFER\n<> REJECT\n"
                             "friend@evil.test OK\n",
        })
        self.tables = cm
        config = "\n".join([
            "mynetworks: [127.0.0.1/32]",
            "accepted_domains: [example.com, catch.example, open.example]",
            "resolve_client_names: false",
            "delay_reject: %s" % ("true" if delay_reject else "false"),
            "relay_recipients: [%s]" % os.path.join(cm, "recipients"),
            "client_access: [%s]" % os.path.join(cm, "client_access"),
            "helo_access: [%s]" % os.path.join(cm, "helo_access"),
            "sender_access: [%s]" % os.path.join(cm, "sender_access"),
            "limits:",
            "  restriction_table_check_seconds: 1",
            extra_config, ""])
        return start_frontend(self, "127.0.0.1:%d" % self.sink.port, config=config)

    def session(self, fe, source="127.0.0.2", helo="client.test"):
        s = smtplib.SMTP("127.0.0.1", fe.smtp_port, local_hostname=helo, timeout=30, source_address=(source, 0))
        self.addCleanup(s.close)
        s.ehlo(helo)
        return s

    def test_unknown_users_of_covered_domains_are_refused_at_rcpt(self):
        fe = self.frontend()
        s = self.session(fe)
        self.assertEqual(s.mail("sender@example.org")[0], 250)
        self.assertEqual(s.rcpt("alice@example.com")[0], 250)
        code, text = s.rcpt("mallory@example.com")
        self.assertEqual((code, text), (550, b"5.1.1 <mallory@example.com>: Recipient address rejected: "
                                             b"User unknown in relay recipient table"))
        self.assertEqual(s.rcpt("BOB@Example.com")[0], 250, "keys are case-insensitive")
        self.assertEqual(s.rcpt("anyone@catch.example")[0], 250, "@domain is a catch-all")
        self.assertEqual(s.rcpt("anyone@open.example")[0], 250, "an accepted domain no table covers")
        self.assertEqual(s.rcpt("victim@elsewhere.test")[0], 554, "relay access is still denied")
        self.assertEqual(s.data(BODY)[0], 250)
        wait_for(lambda: len(self.sink.dumps()) == 1, what="the message at the sink")
        dump = self.sink.dumps()[0].decode()
        self.assertIn("alice@example.com", dump)
        self.assertNotIn("mallory", dump)
        self.assertRegex(fe.log(), r"event=reject queue_id=NOQUEUE command=RCPT client=unknown\[127\.0\.0\.2\] "
                                   r"reply=\"550 5\.1\.1 <mallory@example\.com>: Recipient address rejected: User "
                                   r"unknown in relay recipient table\" from=<sender@example\.org> "
                                   r"to=<mallory@example\.com> proto=ESMTP helo=<client\.test> check=relay_recipients")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_restriction_refusals_total'
                                                 '{action="reject",check="relay_recipients"}'), 1)
        # mynetworks may relay anywhere, but not to unknown users of our own domains.
        s2 = self.session(fe, source="127.0.0.1")
        s2.mail("internal@example.com")
        self.assertEqual(s2.rcpt("mallory@example.com")[0], 550)
        self.assertEqual(s2.rcpt("someone@elsewhere.test")[0], 250)

    def test_a_configmap_update_is_picked_up_without_restart(self):
        fe = self.frontend()
        s = self.session(fe)
        s.mail("sender@example.org")
        self.assertEqual(s.rcpt("carol@example.com")[0], 550)
        s.rset()
        self.configmap("tables", {"recipients": "alice@example.com\ncarol@example.com\n"})
        fe.wait_log(r"event=table_reloaded table=relay_recipients")

        def carol_accepted():
            s.rset()
            s.mail("sender@example.org")
            return s.rcpt("carol@example.com")[0] == 250
        wait_for(carol_accepted, what="carol accepted after the reload")
        self.assertEqual(s.rcpt("bob@example.com")[0], 550, "bob left the table")
        # A broken version is refused; the table in use stays.
        self.configmap("tables", {"recipients": "not-an-address\n"})
        fe.wait_log(r"event=table_reload_failed table=relay_recipients .*expected user@domain")
        self.assertEqual(s.rcpt("carol@example.com")[0], 250)
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_table_reloads_total{outcome="error"}'), 1)

    def rcpt_reply(self, fe, source="127.0.0.2", helo="client.test", sender="sender@example.org"):
        s = self.session(fe, source=source, helo=helo)
        code, text = s.mail(sender)
        self.assertEqual(code, 250, "delay_reject: nothing is refused before RCPT")
        return s.rcpt("alice@example.com")

    def test_access_tables_refuse_at_rcpt_as_postfix(self):
        fe = self.frontend()
        self.assertEqual(self.rcpt_reply(fe, source="127.0.0.3"),
                         (554, b"5.7.1 <unknown[127.0.0.3]>: Client host rejected: Access denied"))
        self.assertEqual(self.rcpt_reply(fe, source="127.0.0.4"),
                         (550, b"5.7.1 <unknown[127.0.0.4]>: Client host rejected: You are listed here"))
        self.assertEqual(self.rcpt_reply(fe, helo="bad.helo.test"),
                         (554, b"5.7.1 <bad.helo.test>: Helo command rejected: Go away"))
        self.assertEqual(self.rcpt_reply(fe, helo="host7.dyn.test"),
                         (450, b"4.7.1 <host7.dyn.test>: Helo command rejected: Dynamic hosts wait"))
        self.assertEqual(self.rcpt_reply(fe, sender="spammer@evil.test"),
                         (550, b"5.7.1 <spammer@evil.test>: Sender address rejected: No spam please"))
        self.assertEqual(self.rcpt_reply(fe, sender="other@mail.evil.test"),
                         (450, b"4.7.1 <other@mail.evil.test>: Sender address rejected: Access denied"))
        self.assertEqual(self.rcpt_reply(fe, sender="friend@evil.test")[0], 250, "an address before its domain")
        self.assertEqual(self.rcpt_reply(fe, sender="")[0], 554, "<> is the null sender's key")
        # OK in client_access ends the client list only: the sender is still judged.
        self.assertEqual(self.rcpt_reply(fe, source="127.0.0.5", sender="spammer@evil.test")[0], 550)
        # DEFER_IF_PERMIT: 450 because everything after it permits.
        self.assertEqual(self.rcpt_reply(fe, source="127.0.0.6"),
                         (450, b"4.7.1 <unknown[127.0.0.6]>: Client host rejected: Try again soon"))
        log = fe.log()
        self.assertRegex(log, r"event=reject queue_id=NOQUEUE command=RCPT client=unknown\[127\.0\.0\.3\] .*"
                              r"from=<sender@example\.org> to=<alice@example\.com> proto=ESMTP "
                              r"helo=<client\.test> check=client_access")
        self.assertRegex(log, r"event=reject .*check=helo_access")
        self.assertRegex(log, r"event=reject .*from=<> to=<alice@example\.com> .*check=sender_access")
        self.assertEqual(metric(fe.metrics_port, 'sluice_frontend_restriction_refusals_total'
                                                 '{action="defer",check="sender_access"}'), 1)
        self.assertEqual(self.sink.dumps(), [], "nothing reached the filter")

    def test_without_delay_reject_each_check_answers_its_own_command(self):
        fe = self.frontend(delay_reject=False)
        c = RawClient(fe.smtp_port, source_address="127.0.0.3")
        self.addCleanup(c.close)
        self.assertEqual(c.reply(), (554, "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: Access denied"))
        self.assertTrue(c.eof())
        c = RawClient(fe.smtp_port, source_address="127.0.0.2")
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO bad.helo.test"), (554, "554 5.7.1 <bad.helo.test>: Helo command rejected: Go away"))
        self.assertEqual(c.cmd("EHLO good.test")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<spammer@evil.test>"),
                         (550, "550 5.7.1 <spammer@evil.test>: Sender address rejected: No spam please"))
        self.assertEqual(c.cmd("MAIL FROM:<sender@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.com>")[0], 250)
        self.assertRegex(fe.log(), r"event=reject queue_id=NOQUEUE command=MAIL client=unknown\[127\.0\.0\.2\] "
                                   r"reply=\"550 5\.7\.1 .*from=<spammer@evil\.test> proto=ESMTP helo=<good\.test> "
                                   r"check=sender_access")

    def test_the_docs_name_real_keys_limits_and_metrics(self):
        def fields(proto, message):
            with open(os.path.join(SOURCE_DIR, "proto", "sluice", "v1", proto)) as f:
                text = f.read()
            body = text[text.index("message %s {" % message):]
            body = body[:body.index("\n}\n")]
            return {m.group(2): int(m.group(3)) for m in
                    re.finditer(r"^\s+(optional |repeated )?\w+ (\w+) = (\d+)", body, re.M)}
        config = fields("config.proto", "FrontendConfig")
        limits = fields("limits.proto", "Limits")
        with open(os.path.join(SOURCE_DIR, "docs", "restrictions.md")) as f:
            doc = f.read()
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            readme = f.read()
        # Every key of the YAML examples is a field (top level: FrontendConfig; indented: Limits).
        examples = re.findall(r"^    ([a-z_]+):", doc, re.M)
        readme_block = readme[readme.index("## Inbound MX"):]
        readme_block = readme_block[readme_block.index("```yaml"):readme_block.index("```\n", 10)]
        examples += re.findall(r"^([a-z_]+):", readme_block, re.M)
        self.assertTrue(examples)
        for key in examples:
            self.assertIn(key, config, "docs name a config key that does not exist: " + key)
        for key in re.findall(r"^  ([a-z_]+):", readme_block, re.M):
            self.assertIn(key, limits, "the README names a limit that does not exist: " + key)
        # Every field of the restrictions (FrontendConfig 40-59, Limits 80-89) is documented.
        for name, number in config.items():
            if 40 <= number <= 59:
                self.assertTrue("`%s`" % name in doc, "config key not documented: " + name)
        for name, number in limits.items():
            if 80 <= number <= 89:
                self.assertTrue("`%s`" % name in doc, "limit not documented: " + name)
        # Every metric the doc names is exposed by a frontend with tables.
        fe = self.frontend()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % fe.metrics_port, timeout=10) as r:
            scraped = r.read().decode()
        for metric in set(re.findall(r"sluice_frontend_[a-z_]+", doc)):
            self.assertTrue(metric in scraped, "a metric the doc names is not exposed: " + metric)


if __name__ == "__main__":
    import unittest
    unittest.main()
