"""tests/integration/test_hostile_input.py -- the Internet-facing frontend (and the stages
behind it) under hostile input: random bytes, random bytes cut into lines, valid commands
mixed with junk, an endless line, an endless DATA, bare-newline and NUL smuggling, commands
pipelined where the client must wait, commands with control characters, and abrupt
disconnects at every step. Afterwards every process is alive, a normal message
still arrives, and nothing the junk sessions sent was delivered.

Replayable: every random choice -- the kind of each session, its bytes, its lengths, whether
it reads the answers -- comes from one seed (SLUICE_HOSTILE_SEED, printed at the start and in
every failure message), session i drawing from Random(seed + i); rerun with the printed seed
to get the same sessions.

Never: leaves a process running; connects anywhere but loopback.
"""
import concurrent.futures
import os
import random
import socket
import unittest

import harness

SEED = int(os.environ.get("SLUICE_HOSTILE_SEED", "20261125"))


def session(port, rng):
    """One hostile session; returns quietly whatever the server does."""
    kind = rng.randrange(9)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(1.5)
            try:
                s.recv(4096)  # the greeting (or a refusal)
            except OSError:
                return
            if kind == 0:  # raw random bytes
                s.sendall(rng.randbytes(rng.randrange(1, 20000)))
            elif kind == 1:  # random bytes cut into CRLF lines
                for _ in range(rng.randrange(1, 60)):
                    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) + b"\r\n")
            elif kind == 2:  # valid commands mixed with junk, pipelined
                cmds = [b"EHLO x", b"MAIL FROM:<a@b.example>", b"RCPT TO:<user@example.com>", b"DATA",
                        b"RSET", b"NOOP", b"XFORWARD ADDR=1.2.3.4", b"STARTTLS", b"BDAT 10 LAST",
                        b"MAIL FROM:<<<>>>", b"RCPT TO:<\x00@x>", b"HELO", b"VRFY root", b"AUTH PLAIN x"]
                s.sendall(b"\r\n".join(rng.choice(cmds) for _ in range(rng.randrange(1, 80))) + b"\r\n")
            elif kind == 3:  # an endless line
                for _ in range(rng.randrange(1, 64)):
                    s.sendall(b"A" * 16384)
            elif kind == 4:  # an endless DATA, then gone
                s.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n")
                for _ in range(rng.randrange(1, 40)):
                    s.sendall(b"Subject: junk\r\n" + b"x" * 8000 + b"\r\n")
            elif kind == 5:  # smuggling attempts inside DATA, then a proper end
                s.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n")
                s.sendall(b"Subject: junk\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\r\n\r.\r\nmore\r\n.\r\nQUIT\r\n")
            elif kind == 7:  # NUL smuggling ("nullbefore", "nullafter") inside DATA
                s.sendall(b"EHLO x\r\n")
                s.recv(4096)
                s.sendall(b"MAIL FROM:<a@b.example>\r\n")
                s.recv(4096)
                s.sendall(b"RCPT TO:<user@example.com>\r\n")
                s.recv(4096)
                s.sendall(b"DATA\r\n")
                s.recv(4096)
                end = rng.choice([b"\r\n\x00.\r\n", b"\r\n.\x00\r\n"])
                s.sendall(b"Subject: junk\r\n\r\nbody" + end + b"MAIL FROM:<evil@x>\r\n\r\n.\r\nQUIT\r\n")
            elif kind == 8:  # commands pipelined where the client must wait (HELO, DATA, the final dot)
                s.sendall(rng.choice([b"HELO x\r\nMAIL FROM:<a@b.example>\r\n",
                                      b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<user@example.com>\r\n"
                                      b"DATA\r\nSubject: junk\r\n\r\nno wait\r\n.\r\n",
                                      b"EHLO x\r\n"]))
                if rng.random() < 0.5:
                    s.sendall(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n")
                    s.sendall(b"Subject: junk\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@x>\r\n")
            else:  # control characters and over-long parameters in commands
                s.sendall(b"EHLO " + b"\x01\x02\x7f" * 100 + b"\r\nMAIL FROM:<" + b"a" * 5000 + b"@b>\r\n")
            if rng.random() < 0.5:
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
    except OSError:
        pass


class HostileInputTest(harness.TempDirTest):

    def test_junk_never_crashes_a_stage_and_never_delivers(self):
        p = harness.Pipeline(self.tmp, frontend_flags=["--max_sessions=500"])
        self._procs.extend(p.stages)
        replay = "replay with SLUICE_HOSTILE_SEED=%d" % SEED
        print("seed %d (%s)" % (SEED, replay))
        rngs = [random.Random(SEED + i) for i in range(240)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
            list(pool.map(lambda r: session(p.frontend.smtp_port, r), rngs))
        for stage in p.stages:
            self.assertTrue(stage.alive(), "%s died (%s):\n%s" % (stage.name, replay, stage.log()[-3000:]))
            self.assertNotIn("session_exception", stage.log(), "%s (%s)" % (stage.name, replay))
        # A real message still goes through, and is the only one delivered: the smuggling
        # attempts were refused and the endless DATA sessions ended without an end.
        code, text = harness.send_mail(p.frontend.smtp_port, "a@b.example", ["user@example.com"],
                                       "Subject: after the storm\r\n\r\nstill here\r\n")
        self.assertEqual(code, 250, "%s (%s)" % (text, replay))
        files = harness.wait_for(lambda: p.delivered("user@example.com"), timeout=30, what="the real message")
        bodies = []
        for path in files:
            with open(path, "rb") as f:
                bodies.append(f.read())
        self.assertEqual(len(bodies), 1, "%s: %r" % (replay, [b[:200] for b in bodies]))
        self.assertIn(b"still here", bodies[0])


if __name__ == "__main__":
    unittest.main()
