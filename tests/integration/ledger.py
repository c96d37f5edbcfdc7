"""tests/integration/ledger.py -- numbered messages sent by several client threads, what each
one was told, and how often each ended up delivered: the bookkeeping of the fault tests
(tests/integration/test_faults_under_load.py).

Every message carries "X-Ledger: TAG-N". What its sender was told sorts it:
- accepted: 250 at the end of DATA -- must be delivered exactly once;
- refused: a reply of 4xx/5xx (or no connection) before the content was sent, or 5xx at the
  end of DATA -- must never be delivered;
- in doubt: the content went out and then a 4xx or a lost connection -- the sender would try
  again; delivered at most once (the before-queue window Postfix has too: the next stage may
  have committed just before the one that talked to the client died or gave up).

Never: retries a message (a retry would hide a duplicate); counts a message as refused once
any of its content was sent; reads a Maildir file still in tmp/.
"""
import collections
import os
import re
import smtplib
import threading
import time

ACCEPTED, REFUSED, IN_DOUBT = "accepted", "refused", "in doubt"


class Ledger:
    """Clients sending numbered messages to 127.0.0.1:`port` from `source` until stop()."""

    def __init__(self, port, tag, recipient="ledger@example.com", source="127.0.0.2", timeout=30):
        self.port = port
        self.tag = tag
        self.recipient = recipient
        self.source = source
        self.timeout = timeout
        self.outcomes = {}  # n -> (ACCEPTED|REFUSED|IN_DOUBT, reply text, time.monotonic())
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = []

    def body(self, n):
        return ("From: sender@example.org\r\nTo: %s\r\nSubject: ledger %d\r\nX-Ledger: %s-%d\r\n\r\n"
                "message %d of the ledger\r\n" % (self.recipient, n, self.tag, n, n)).encode()

    def send_one(self, n):
        """Sends message n once; returns (outcome, reply text)."""
        content_sent = False
        s = None
        try:
            s = smtplib.SMTP(timeout=self.timeout, local_hostname="client.test",
                             source_address=(self.source, 0))
            code, text = s.connect("127.0.0.1", self.port)
            if code != 220:
                return REFUSED, "%d %s" % (code, text.decode(errors="replace"))
            for command in ("EHLO client.test", "MAIL FROM:<sender@example.org>", "RCPT TO:<%s>" % self.recipient):
                code, text = s.docmd(command)
                if code != 250:
                    return REFUSED, "%s: %d %s" % (command.split()[0], code, text.decode(errors="replace"))
            code, text = s.docmd("DATA")
            if code != 354:
                return REFUSED, "DATA: %d %s" % (code, text.decode(errors="replace"))
            content_sent = True
            s.send(self.body(n) + b".\r\n")
            code, text = s.getreply()
            reply = "%d %s" % (code, text.decode(errors="replace"))
            if code == 250:
                return ACCEPTED, reply
            return (REFUSED if code >= 500 else IN_DOUBT), reply
        except (OSError, smtplib.SMTPException) as e:
            return (IN_DOUBT if content_sent else REFUSED), "%s: %s" % (type(e).__name__, e)
        finally:
            if s is not None:
                try:
                    s.quit()
                except (OSError, smtplib.SMTPException):
                    s.close()

    def _client(self):
        while not self._stop.is_set():
            with self._lock:
                n = self._next
                self._next += 1
            outcome, reply = self.send_one(n)
            with self._lock:
                self.outcomes[n] = (outcome, reply, time.monotonic())
            if outcome != ACCEPTED:
                time.sleep(0.05)  # a refused client does not spin

    def start(self, clients):
        for _ in range(clients):
            t = threading.Thread(target=self._client, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 30)
        self._threads = []

    def numbers(self, outcome, since=None, until=None):
        with self._lock:
            return {n for n, (o, _, at) in self.outcomes.items()
                    if o == outcome and (since is None or at >= since) and (until is None or at < until)}

    def replies(self, outcome):
        with self._lock:
            return [r for o, r, _ in self.outcomes.values() if o == outcome]

    def deliveries(self, maildir):
        """Message number -> how many times it is in `maildir` (new/ and cur/)."""
        rx = re.compile(rb"^X-Ledger: %s-(\d+)\r?$" % re.escape(self.tag.encode()), re.M)
        counts = collections.Counter()
        for sub in ("new", "cur"):
            d = os.path.join(maildir, sub)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                try:
                    with open(os.path.join(d, name), "rb") as f:
                        m = rx.search(f.read(8192))
                except FileNotFoundError:
                    continue  # moved from new/ to cur/ meanwhile: counted there
                if m:
                    counts[int(m.group(1))] += 1
        return counts

    def check(self, delivered):
        """The ledger's rules against `delivered` (from deliveries()): a list of broken ones."""
        accepted, refused, doubt = self.numbers(ACCEPTED), self.numbers(REFUSED), self.numbers(IN_DOUBT)
        problems = []
        lost = sorted(accepted - set(delivered))
        if lost:
            problems.append("accepted but never delivered: %s" % lost[:20])
        twice = sorted(n for n, c in delivered.items() if c > 1)
        if twice:
            problems.append("delivered more than once: %s" % {n: delivered[n] for n in twice[:20]})
        wrongly = sorted(refused & set(delivered))
        if wrongly:
            problems.append("refused yet delivered: %s" % wrongly[:20])
        unknown = sorted(set(delivered) - accepted - refused - doubt)
        if unknown:
            problems.append("delivered but never sent: %s" % unknown[:20])
        return problems

    def summary(self, delivered):
        accepted, refused, doubt = self.numbers(ACCEPTED), self.numbers(REFUSED), self.numbers(IN_DOUBT)
        return ("sent %d: accepted %d, refused %d, in doubt %d (%d of them delivered); delivered %d, "
                "more than once %d" % (len(self.outcomes), len(accepted), len(refused), len(doubt),
                                       len(doubt & set(delivered)), len(delivered),
                                       sum(1 for c in delivered.values() if c > 1)))

