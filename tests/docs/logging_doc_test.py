"""tests/docs/logging_doc_test.py

docs/logging.md names every log event the code writes and no other: each event name of an
`observe::Info/Warn/Error/Debug("...")` call (a ternary's names, or the literals assigned to
the variable the call is given), of a `LogLine(Level, "...")`, and the dialogue lines'
`reject`/`accept`, is in the page's tables as `event` in backquotes; every backquoted name in
the first column of those tables is written by the code. The `check=` names of the page's
table are the ones the code gives (NoteRefusal, Refuse, the refusal notes, the restriction
checks' names).

Never: runs a binary; reads anything outside the source tree.
"""
import glob
import os
import re
import unittest

SRC = os.environ.get("SLUICE_SOURCE_DIR") or os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(SRC, "docs", "logging.md")


def sources():
    for root in ("lib", "services", "tools"):
        for path in glob.glob(os.path.join(SRC, root, "**", "*.cc"), recursive=True):
            with open(path) as f:
                yield path, f.read()


def literals(text):
    return re.findall(r'"([a-z][a-z0-9_]*)"', text)


def code_events():
    events = set()
    for path, text in sources():
        for m in re.finditer(r'observe::(?:Info|Warn|Error|Debug)\(([^;]*?)\)(?:\s*\.|;)', text):
            arg = m.group(1)
            names = literals(arg)
            if not names and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", arg):
                # A variable: the literals it is set from.
                d = re.search(r"\b%s\s*=\s*([^;]*);" % re.escape(arg.strip()), text)
                names = literals(d.group(1)) if d else []
            assert names, "%s: no event name found in observe call (%s)" % (path, arg)
            events.update(names)
        for m in re.finditer(r"LogLine\s+\w+\(observe::Level::k\w+,\s*\"([a-z_]+)\"", text):
            events.add(m.group(1))
        for m in re.finditer(r'line\.event\s*=\s*([^;]*);', text):
            events.update(literals(m.group(1)))
        if path.endswith("dialogue_log.h"):
            events.update(re.findall(r'event = "([a-z]+)"', text))
    return events


def doc_tables(text):
    """First-column cells of every table row of the page."""
    cells = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells.append(line.split("|")[1])
    return cells


class LoggingDocTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(DOC) as f:
            cls.doc = f.read()
        cls.events = code_events()
        sections = cls.doc.split("## Every line, by stage", 1)
        cls.every_line = sections[1].split("\n## ", 1)[0]

    def test_every_event_the_code_writes_is_documented(self):
        documented = set()
        for cell in doc_tables(self.every_line):
            documented.update(re.findall(r"`([a-z_]+)`", cell))
        self.assertTrue(self.events, "no events found in the code")
        missing = sorted(self.events - documented)
        self.assertEqual(missing, [], "events the code writes that docs/logging.md does not list")
        stale = sorted(documented - self.events)
        self.assertEqual(stale, [], "events docs/logging.md lists that the code never writes")

    def test_every_check_name_is_one_the_code_gives(self):
        table = self.doc.split("`check=` names who refused:", 1)[1].lstrip("\n").split("\n\n", 1)[0]
        documented = set()
        for cell in doc_tables(table):
            documented.update(re.findall(r"`([a-z_]+)`", cell))
        self.assertIn("relay_access", documented)
        given = set()
        paths = glob.glob(os.path.join(SRC, "lib", "**", "*.*"), recursive=True) + \
            glob.glob(os.path.join(SRC, "services", "**", "*.*"), recursive=True)
        body = r"\s*\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}"
        for path in paths:
            if not path.endswith((".cc", ".h")):
                continue
            with open(path) as f:
                text = f.read()
            # Who refused, as the stages note it (lib/smtp/dialogue_log.h RefusalNote).
            given.update(re.findall(r'(?<!::)\b(?:NoteRefusal|Refuse)\([^;]*?"([a-z_]+)"', text))
            given.update(re.findall(r'note\.check\s*=\s*"([a-z_]+)"', text))
            # The session's own names for a command's error, and the restriction checks'
            # names (each check's name()).
            functions = [r"CheckOfCommandError\([^)]*\)"]
            if os.sep + "restrictions" + os.sep in path:
                functions.append(r"name\(\) const(?: override)?")
            for fn in functions:
                for m in re.finditer(fn + body, text):
                    # A switch names its cases; what follows it is a fallback never reached.
                    returns = r'case [^\n]*?: return "([a-z_]+)";' if "case " in m.group(1) else r'return "([a-z_]+)";'
                    given.update(re.findall(returns, m.group(1)))
        self.assertIn("relay_access", given)
        self.assertEqual(sorted(documented - given), [], "check names docs/logging.md lists that the code never gives")
        self.assertEqual(sorted(given - documented), [], "check names the code gives that docs/logging.md does not list")


if __name__ == "__main__":
    unittest.main()
