"""tests/integration/test_frontend_backpressure.py -- capacity flows upstream to sluice-frontend.

The frontend watches a real sluice-filter-bridge's Admin.WatchStatus (config filter_admin):
while the bridge has no room (max_sessions reached) or drains, a new client gets
"421 4.3.2" at once instead of waiting into a timeout; when the bridge takes sessions again
so does the frontend; when the watch is lost (the bridge is gone) the frontend admits again
and the connect error speaks (451 4.3.0 at RCPT).

Never: waits on a fixed sleep where a condition can be polled; leaves a process running.
"""
import os
import unittest

import grpc

from harness import Stage, TempDirTest
from test_frontend_support import RawClient, ScriptedSmtp, admin_stubs, start_frontend, wait_for, write_config


def greeting(port):
    c = RawClient(port, timeout=10)
    try:
        return c.reply()
    finally:
        c.close()


class FrontendBackpressureTest(TempDirTest):

    def setUp(self):
        super().setUp()
        bin_dir = os.environ.get("SLUICE_BIN_DIR", "")
        if bin_dir and not os.path.exists(os.path.join(bin_dir, "sluice-filter-bridge")):
            self.skipTest("sluice-filter-bridge not built")
        self.next_hop = ScriptedSmtp()
        self.addCleanup(self.next_hop.stop)
        bridge_config = write_config(os.path.join(self.tmp, "filter-bridge.yaml"), "limits:\n  max_sessions: 1\n")
        self.bridge = Stage("sluice-filter-bridge", ["--next_hop=" + self.next_hop.address,
                                                     "--config=" + bridge_config], self.tmp, "filter-bridge")
        self.addCleanup(self.bridge.stop)
        config = "filter_admin: [\"%s\"]\n" % self.bridge.admin
        self.fe = start_frontend(self, "127.0.0.1:%d" % self.bridge.smtp_port, config=config)
        self.fe.wait_log(r"event=filter_state state=accepting", timeout=20)

    def open_transaction(self):
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        c.cmd("EHLO client.test")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 250)
        code, text = c.cmd("RCPT TO:<bob@example.net>")
        self.assertEqual(code, 250, text)
        return c

    def test_a_full_filter_stage_means_421_at_once_and_room_again_means_220(self):
        busy = self.open_transaction()  # holds the bridge's only session
        code, text = wait_for(lambda: (lambda r: r if r[0] == 421 else None)(greeting(self.fe.smtp_port)), 20,
                              what="421 while the filter stage is full")
        self.assertIn("4.3.2", text)
        self.assertRegex(self.fe.log(), r"event=refused .*reason=backpressure")
        self.assertEqual(busy.cmd("QUIT")[0], 221)
        wait_for(lambda: greeting(self.fe.smtp_port)[0] == 220, 20, what="220 once the filter stage has room")

    def test_a_draining_filter_stage_means_421_and_a_lost_watch_means_connect_errors(self):
        m = admin_stubs()
        with grpc.insecure_channel(self.bridge.admin) as ch:
            admin = m["admin_pb2_grpc"].AdminStub(ch)
            admin.Drain(m["admin_pb2"].DrainRequest(timeout_seconds=30), timeout=10)
            code, text = wait_for(lambda: (lambda r: r if r[0] == 421 else None)(greeting(self.fe.smtp_port)), 20,
                                  what="421 while the filter stage drains")
            self.assertIn("4.3.2", text)
            admin.Resume(m["admin_pb2"].ResumeRequest(), timeout=10)
            wait_for(lambda: greeting(self.fe.smtp_port)[0] == 220, 20, what="220 after the filter stage resumed")
        # The watch is lost with the bridge: no refusal on our word, the connect error speaks.
        self.bridge.kill()
        wait_for(lambda: greeting(self.fe.smtp_port)[0] == 220, 20, what="admission without a watch")
        c = RawClient(self.fe.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<alice@example.org>")
        code, text = c.cmd("RCPT TO:<bob@example.net>")
        self.assertEqual(code, 451, text)
        self.assertIn("4.3.0", text)


if __name__ == "__main__":
    unittest.main()
