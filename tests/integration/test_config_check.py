"""tests/integration/test_config_check.py -- `--check` of the three stage binaries.

For sluice-frontend, sluice-filter-bridge and sluice-reinject: --check with no config prints
nothing but its comment line (nothing differs from the defaults) and exits 0; with a config
and flags it prints exactly the keys that differ; --check=all printed, loaded back with
--config, prints the same again (the YAML is a valid config); a misspelt key, a value out of
bounds, and each stage's own start-up checks (filter_tls files, a rules pattern, the queue
directory, the deliver spec, an access table, the hold mark key, enable_chunking set while
CHUNKING does not exist) exit 1 with one line naming
the key; --check starts nothing
(reinject's queue directory is not created); --help says what --check prints.

Never: leaves a process running (each --check run ends by itself, under a timeout).
"""
import os
import subprocess
import unittest

import harness

BINARIES = ("sluice-frontend", "sluice-filter-bridge", "sluice-reinject")


def run(binary, *args):
    return subprocess.run([os.path.join(harness.BIN_DIR, binary)] + list(args),
                          capture_output=True, text=True, timeout=60)


def body(out):
    """The YAML after the comment line."""
    lines = out.splitlines(keepends=True)
    assert lines and lines[0].startswith("# sluice-"), out
    return "".join(lines[1:])


class ConfigCheckTest(harness.TempDirTest):

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_with_nothing_set_nothing_differs_from_the_defaults(self):
        for binary in BINARIES:
            r = run(binary, "--check", "--queue_dir=" + self.path("q")) if binary == "sluice-reinject" \
                else run(binary, "--check")
            self.assertEqual(r.returncode, 0, (binary, r.stderr))
            self.assertIn("--check: the config is valid", r.stdout)
            expected = "queue_dir: %s\n" % self.path("q") if binary == "sluice-reinject" else ""
            self.assertEqual(body(r.stdout), expected, binary)

    def test_only_what_the_files_and_flags_change_is_printed(self):
        config = harness.write_yaml(self.path("frontend.yaml"),
                                    "limits:\n  max_sessions: 250\naccepted_domains: [example.com]\n")
        r = run("sluice-frontend", "--check", "--config=" + config, "--message_size_limit=20000000",
                "--verify_recipients=true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(body(r.stdout), "limits:\n  max_sessions: 250\n  message_size_limit_bytes: 20000000\n"
                                         "accepted_domains: [example.com]\nverify_recipients: true\n")

    def test_check_all_loads_back_to_the_same_config_for_every_stage(self):
        rules = harness.write_yaml(self.path("rules.yaml"),
                                   "rules:\n  - name: no-viagra\n    match:\n      header: Subject\n"
                                   "      header_pattern: \"(?i)viagra\"\n    action: reject\n")
        extra = {
            "sluice-frontend": ["--accepted_domains=example.com,.example.org", "--mynetworks=192.0.2.0/24,::1/128",
                                "--hostname=mx.example.com"],
            "sluice-filter-bridge": ["--milter=inet:127.0.0.1:11332", "--rules=" + rules, "--next_hop=rj:10026"],
            "sluice-reinject": ["--queue_dir=" + self.path("queue"), "--deliver=lmtp:127.0.0.1:24",
                                "--xforward_hosts=10.0.0.0/8"],
        }
        for binary in BINARIES:
            first = run(binary, "--check=all", *extra[binary])
            self.assertEqual(first.returncode, 0, (binary, first.stderr))
            self.assertIn("limits:\n  max_sessions: 100\n", first.stdout)  # every field, defaults too
            saved = harness.write_yaml(self.path(binary + ".yaml"), first.stdout)
            again = run(binary, "--check=all", "--config=" + saved)
            self.assertEqual(again.returncode, 0, (binary, again.stderr))
            self.assertEqual(body(again.stdout), body(first.stdout), binary)

    def test_a_bad_key_or_value_exits_1_naming_it(self):
        bad = harness.write_yaml(self.path("bad.yaml"), "limits:\n  max_sesions: 5\n")
        for binary in BINARIES:
            r = run(binary, "--check", "--config=" + bad)
            self.assertEqual(r.returncode, 1, binary)
            self.assertEqual(r.stdout, "", binary)
            self.assertIn("bad.yaml:2", r.stderr, binary)
            self.assertIn("max_sesions", r.stderr, binary)
            r = run(binary, "--check", "--max_sessions=0") if binary != "sluice-reinject" else \
                run(binary, "--check", "--config=" + harness.write_yaml(self.path("zero.yaml"),
                                                                       "limits:\n  max_sessions: 0\n"))
            self.assertEqual(r.returncode, 1, binary)
            self.assertIn("max_sessions", r.stderr, binary)

    def test_the_stages_own_start_up_checks_exit_1_naming_the_key(self):
        r = run("sluice-frontend", "--check", "--config=" + harness.write_yaml(
            self.path("fe.yaml"), "filter_tls:\n  cert_file: %s\n  key_file: %s\n" % (self.path("no.pem"),
                                                                                      self.path("no.key"))))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertTrue(r.stderr.startswith("sluice-frontend: filter_tls: "), r.stderr)

        # A setting that would do nothing is an error, not silence (CHUNKING is not there yet);
        # and main refuses to start on it, as --check does.
        chunking = harness.write_yaml(self.path("chunking.yaml"), "enable_chunking: true\n")
        for args in (["--check"], ["--smtp_listen=127.0.0.1:0", "--admin_listen=127.0.0.1:0",
                                   "--metrics_listen=127.0.0.1:0"]):
            r = run("sluice-frontend", "--config=" + chunking, *args)
            self.assertEqual(r.returncode, 1 if args == ["--check"] else 2, r.stdout)
            self.assertIn("enable_chunking: CHUNKING (BDAT) is not implemented yet", r.stderr)

        r = run("sluice-frontend", "--check", "--verify_recipients=true", "--verify_service=no-port")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("verify_service", r.stderr)

        r = run("sluice-frontend", "--check", "--config=" + harness.write_yaml(
            self.path("access.yaml"), "client_access: [%s]\n" % self.path("no-such-table")))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertTrue(r.stderr.startswith("sluice-frontend: client_access: "), r.stderr)

        rules = harness.write_yaml(self.path("bad-rules.yaml"),
                                   "rules:\n  - name: broken\n    match:\n      body_pattern: \"(unclosed\"\n"
                                   "    action: reject\n")
        r = run("sluice-filter-bridge", "--check", "--rules=" + rules)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("filters[0]", r.stderr)
        self.assertIn("body_pattern", r.stderr)

        not_a_dir = harness.write_yaml(self.path("file"), "")
        r = run("sluice-reinject", "--check", "--queue_dir=" + os.path.join(not_a_dir, "queue"))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("queue_dir: %s is not a directory" % not_a_dir, r.stderr)

        r = run("sluice-reinject", "--check", "--queue_dir=" + self.path("q"), "--config=" + harness.write_yaml(
            self.path("key.yaml"), "hold_mark_key_file: %s\n" % self.path("no-key")))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertTrue(r.stderr.startswith("sluice-reinject: hold_mark_key_file"), r.stderr)

        r = run("sluice-reinject", "--check", "--queue_dir=" + self.path("q"), "--config=" + harness.write_yaml(
            self.path("rj.yaml"), "deliver: \"lmtp:\"\n"))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertTrue(r.stderr.startswith("sluice-reinject: deliver: "), r.stderr)

    def test_check_starts_nothing(self):
        queue = self.path("never-made")
        port = harness.free_port()
        r = run("sluice-reinject", "--check", "--queue_dir=" + queue, "--smtp_listen=127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(queue))
        self.assertFalse(harness.port_open(port))
        self.assertNotIn("event=listening", r.stderr)

    def test_help_says_what_check_prints(self):
        for binary in BINARIES:
            r = run(binary, "--help")
            self.assertEqual(r.returncode, 0, binary)
            self.assertIn("--check, --check=all", r.stdout, binary)
            self.assertIn("differ from the defaults", r.stdout.replace("\n      ", " "), binary)


if __name__ == "__main__":
    unittest.main()
