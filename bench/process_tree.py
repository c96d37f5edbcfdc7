"""bench/process_tree.py -- CPU time and peak RSS of a pipeline's processes, read from /proc.

A pipeline is a set of root PIDs (sluice: its three stages; Postfix: its master) and every
process descending from them. Its CPU time is, over the roots and every live descendant,
utime + stime + cutime + cstime (/proc/PID/stat fields 14-17): a process that has exited and
been reaped is then counted once, in its parent's cutime/cstime, and a live one in its own
fields, so the sum only grows and the difference of two readings is what the whole tree
spent between them -- however many Postfix smtpd processes came and went.

Peak RSS is VmHWM (/proc/PID/status), reset at the start of a measurement by writing 5 to
/proc/PID/clear_refs; a sampler thread reads it every SAMPLE_S so that short-lived processes
(a Postfix smtpd ends after max_use connections) are seen before they go. RSS counts shared
pages (libraries) in every process that maps them, so a sum of RSS over Postfix's hundred
processes says little; the same sampler also sums PSS (/proc/PID/smaps_rollup: shared pages
split among their users) over the tree, and keeps the largest sum seen: the memory the whole
pipeline held at its peak (to within a sampling interval).

Never: signals or otherwise touches a process it reads; counts a process outside the tree.
"""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.5  # a sample of 200 processes costs ~20 ms of the bench's own CPU


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (index 0 is the state)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def _all_parents():
    """{pid: ppid} for every process on the machine."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            out[int(name)] = int(_stat_fields(int(name))[1])
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile
    return out


def start_time_of(pid):
    """The process's start time in ticks since boot (None when it is gone): with the PID, it
    names one process even if the PID is reused later."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def command_of(pid):
    """The process's argv joined with spaces ('' when it is gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class ProcessTree:
    """The processes under `roots`. `role(pid, command)` names a process for the RSS report
    (several processes may share a role: Postfix's smtpd)."""

    def __init__(self, roots, role):
        self.roots = list(roots)
        self.role = role
        self._peaks = {}   # pid -> (role, peak bytes)
        self._pss_peak = 0
        self._lock = threading.Lock()
        self._sampler = None
        self._stop = threading.Event()

    def pids(self):
        return self._descendants(_all_parents())

    def _descendants(self, parents):
        tree = set(p for p in self.roots if p in parents)
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        return sorted(tree)

    def cpu_ticks(self):
        """CPU clock ticks the tree has used, children that were reaped included."""
        return self._ticks_of(self.pids())

    @staticmethod
    def _ticks_of(pids):
        total = 0
        for pid in pids:
            try:
                f = _stat_fields(pid)
            except OSError:
                continue
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        return total

    def cpu_ticks_by_root(self):
        """{role of a root: ticks of it and its descendants} -- sluice's CPU per stage."""
        parents = _all_parents()
        out = {}
        for root in self.roots:
            sub = ProcessTree([root], self.role)
            out[self.role(root, command_of(root))] = sub._ticks_of(sub._descendants(parents))
        return out

    def cpu_seconds(self):
        return self.cpu_ticks() / CLK_TCK

    def wait_idle(self, quiet_s=0.5, slack_ticks=2, timeout_s=30.0):
        """Waits until the tree has used at most `slack_ticks` in `quiet_s`; returns the tick
        count at that moment (the end of a measurement window)."""
        deadline = time.monotonic() + timeout_s
        last = self.cpu_ticks()
        while True:
            time.sleep(quiet_s)
            now = self.cpu_ticks()
            if now - last <= slack_ticks or time.monotonic() > deadline:
                return now
            last = now

    # ---- peak RSS ----

    def start_peaks(self):
        """Resets every process's VmHWM and samples them until stop_peaks()."""
        with self._lock:
            self._peaks = {}
            self._pss_peak = 0
        for pid in self.pids():
            try:
                with open("/proc/%d/clear_refs" % pid, "w") as f:
                    f.write("5")
            except OSError:
                pass  # not ours to reset (not root): VmHWM then covers the process's life
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample_loop, daemon=True)
        self._sampler.start()

    def pss_peak_mb(self):
        """The largest PSS sum over the tree seen since start_peaks() (after stop_peaks())."""
        return round(self._pss_peak / 1048576.0, 2)

    def stop_peaks(self):
        """Stops sampling; returns {role: {"max_mb", "sum_mb", "processes"}}."""
        self._stop.set()
        if self._sampler:
            self._sampler.join()
            self._sampler = None
        self._sample_once()
        report = {}
        with self._lock:
            for role, peak in self._peaks.values():
                r = report.setdefault(role, {"max_mb": 0.0, "sum_mb": 0.0, "processes": 0})
                r["max_mb"] = max(r["max_mb"], peak / 1048576.0)
                r["sum_mb"] += peak / 1048576.0
                r["processes"] += 1
        for r in report.values():
            r["max_mb"] = round(r["max_mb"], 2)
            r["sum_mb"] = round(r["sum_mb"], 2)
        return report

    def _sample_loop(self):
        while not self._stop.wait(SAMPLE_S):
            self._sample_once()

    def _sample_once(self):
        pss_total = 0
        for pid in self.pids():
            hwm = vm_field(pid, "VmHWM")
            if hwm is None:
                continue
            pss_total += pss_of(pid)
            with self._lock:
                known = self._peaks.get(pid)
            if known is None:
                command = command_of(pid)
                if not command:
                    continue  # gone (or a zombie) between two reads: nothing to name it by
                known = (self.role(pid, command), 0)
            with self._lock:
                self._peaks[pid] = (known[0], max(known[1], hwm))
        with self._lock:
            self._pss_peak = max(self._pss_peak, pss_total)


def vm_field(pid, name):
    """A Vm* field of /proc/PID/status in bytes, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pss_of(pid):
    """The process's proportional set size in bytes (0 when unreadable)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
