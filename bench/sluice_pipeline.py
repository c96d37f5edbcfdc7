"""bench/sluice_pipeline.py -- sluice's three stages as `make run` starts them, for the bench.

    client -> sluice-frontend -> sluice-filter-bridge (no filters) -> sluice-reinject
           -> its queue (fsynced before 250) -> discard (or a Maildir, see below)

Each stage runs with the configs `make run` uses (deploy/k8s/base/config/STAGE.yaml, then
deploy/local/STAGE.yaml) and a third, written here, that moves every port to loopback ports
chosen now, points each stage at its neighbours (data and admin ports, so backpressure and
session records work as deployed), raises max_sessions to the same number the Postfix
before-filter gets as maxproc, and puts the queue in the bench's directory on disk.

Delivery: `--deliver=discard`, reinject's discard(8), the match of Postfix's discard transport
(every recipient logged as sent, nothing written). Delivered messages are counted from
reinject's log ("event=delivery ... status=sent").

Never: binds anything but 127.0.0.1; leaves a stage running after stop() (SIGTERM by PID,
then SIGKILL).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402  (Stage: start a binary on loopback, read its ports from its log)

from postfix_pipeline import LogCounter, free_port  # noqa: E402
from process_tree import ProcessTree  # noqa: E402

SOURCE_DIR = os.path.abspath(os.path.join(HERE, ".."))
BASE_CONFIG = os.path.join(SOURCE_DIR, "deploy", "k8s", "base", "config")
LOCAL_CONFIG = os.path.join(SOURCE_DIR, "deploy", "local")


class SluicePipeline:
    """frontend -> filter-bridge -> reinject. `port` is the frontend's SMTP port; tree is the
    ProcessTree of the three stages."""

    name = "sluice"

    def __init__(self, workdir, bin_dir, max_sessions=200, message_size_limit=10240000):
        harness.BIN_DIR = bin_dir
        self.workdir = workdir
        self.queue_dir = os.path.join(workdir, "queue")
        self.stages = []
        admin = {name: free_port() for name in ("frontend", "filter-bridge", "reinject")}
        limits = ("limits:\n  max_sessions: %d\n  message_size_limit_bytes: %d\n" %
                  (max_sessions, message_size_limit))
        # deploy/local names var/hold-mark.key (made by scripts/run-local): one for this run.
        hold_key = "hold_mark_key_file: %s\n" % harness.write_hold_mark_key(workdir)
        try:
            self.reinject = self._start("reinject", "sluice-reinject", admin, limits +
                                        "queue_dir: %s\ndeliver: discard\n" % self.queue_dir + hold_key)
            self.bridge = self._start("filter-bridge", "sluice-filter-bridge", admin, limits +
                                      "next_hop: 127.0.0.1:%d\nnext_hop_admin: [\"127.0.0.1:%d\"]\n"
                                      "upstream_admin_port: %d\n" %
                                      (self.reinject.smtp_port, admin["reinject"], admin["frontend"]) + hold_key)
            self.frontend = self._start("frontend", "sluice-frontend", admin, limits +
                                        "filter: 127.0.0.1:%d\nfilter_admin: [\"127.0.0.1:%d\"]\n" %
                                        (self.bridge.smtp_port, admin["filter-bridge"]))
        except BaseException:
            self.stop()
            raise
        self.port = self.frontend.smtp_port
        roles = {s.pid: s.name for s in self.stages}
        self.tree = ProcessTree([s.pid for s in reversed(self.stages)], lambda pid, cmd: roles.get(pid, "?"))
        self._sent = LogCounter(self.reinject.log_path, r"event=delivery .*status=sent")

    def _start(self, name, binary, admin, bench_yaml):
        override = os.path.join(self.workdir, name + ".bench.yaml")
        with open(override, "w") as f:
            f.write("# bench/sluice_pipeline.py: loopback ports of this run, limits, queue.\n" + bench_yaml)
        configs = [os.path.join(BASE_CONFIG, name + ".yaml"), os.path.join(LOCAL_CONFIG, name + ".yaml"), override]
        stage = harness.Stage(binary, ["--config=" + ",".join(configs)], self.workdir, name,
                              admin_listen="127.0.0.1:%d" % admin[name])
        self.stages.append(stage)
        return stage

    def delivered(self):
        """Messages reinject has logged as delivered since the start."""
        return self._sent.update()

    def idle_queue(self):
        return True  # delivered() reaching the count sent is the proof

    def log_tail(self, n=3000):
        return "".join("== %s\n%s\n" % (s.name, s.log()[-n:]) for s in self.stages)

    def stop(self):
        for s in reversed(self.stages):
            s.stop()
        self.stages = []
