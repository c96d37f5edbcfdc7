"""tests/deploy/image_test.py

The image, built and run: scripts/build-image --fast packages build/bin into the `local`
target of deploy/Dockerfile (the same runtime stage as a release; a Debian 12 base is built
with debootstrap when no registry answers, and cached), then the three stages run from it as
containers with podman, as Kubernetes runs them: each stage's config from
deploy/k8s/base/config/ mounted read-only at /etc/sluice/config the way its ConfigMap is,
with a site file of loopback overrides beside it (as overlays/production layers site.yaml),
the image's non-root user, a read-only root file system with a /tmp tmpfs, host networking
on free loopback ports, reinject's queue on a volume at /var/spool/sluice and its Maildir on
another. A message sent to the frontend container arrives in the Maildir volume; each
container stops on SIGTERM (podman stop) with exit code 0. Skipped (77) only where podman is
not installed; podman reads scripts/containers.conf (CONTAINERS_CONF), as make image does.

SLUICE_TEST_IMAGE=IMAGE runs a given image (the release build of `make image`) instead.

Never: leaves a container or its test image behind (removed by name at the end); listens
beyond 127.0.0.1; writes into the source tree (the build's image context is under build/).
"""

import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import deploy_testing as dt

PODMAN = shutil.which("podman")
BUILD_DIR = os.environ.get("SLUICE_BUILD_DIR") or os.path.dirname(dt.BIN)
CONTAINERS_CONF = os.path.join(dt.SRC, "scripts", "containers.conf")
UID = 10001  # the image's user (deploy/Dockerfile)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def podman(*args, check=True, timeout=120):
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    r = subprocess.run([PODMAN] + list(args), capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError("podman %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


@unittest.skipUnless(PODMAN, "podman is not installed (apt-get install podman): the image is not built")
class ImageTest(unittest.TestCase):

    def setUp(self):
        for b in ("sluice-frontend", "sluice-filter-bridge", "sluice-reinject", "sluicectl"):
            self.assertTrue(os.access(os.path.join(dt.BIN, b), os.X_OK), "build the binaries first: " + b)
        self.tmp = tempfile.mkdtemp(prefix="sluice-image-")
        os.chmod(self.tmp, 0o755)
        # SLUICE_TEST_IMAGE: run an image built elsewhere (e.g. `make image`'s release build)
        # through the same checks instead of building the fast one; it is left in place.
        self.given = os.environ.get("SLUICE_TEST_IMAGE")
        self.tag = self.given or "localhost/sluice:test-%d" % os.getpid()
        self.containers = []
        self.addCleanup(self.cleanup)

    def cleanup(self):
        for name in self.containers:
            podman("rm", "-f", "-t", "0", name, check=False)
        if not self.given:
            podman("rmi", "-f", self.tag, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def build(self):
        if self.given:
            print("image %s given by SLUICE_TEST_IMAGE: not built" % self.given)
            return
        env = dict(os.environ, BUILD=BUILD_DIR, CONTAINERS_CONF=CONTAINERS_CONF)
        started = time.monotonic()
        r = subprocess.run([os.path.join(dt.SRC, "scripts", "build-image"), "--fast", self.tag],
                           capture_output=True, text=True, timeout=900, env=env)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        for line in r.stderr.splitlines():
            if line.startswith("build-image:"):
                print(line)
        print("image %s built in %.0f s" % (self.tag, time.monotonic() - started))

    def volume(self, name, owner=UID):
        path = os.path.join(self.tmp, name)
        os.makedirs(path)
        os.chown(path, owner, owner)
        return path

    def config_map(self, stage, site):
        """A folder as the stage's ConfigMap is mounted: its base config and a site file."""
        d = os.path.join(self.tmp, stage + "-config")
        os.makedirs(d)
        shutil.copy(dt.stage_config_path(stage), os.path.join(d, stage + ".yaml"))
        with open(os.path.join(d, "site.yaml"), "w") as f:
            f.write(site)
        for n in os.listdir(d):
            os.chmod(os.path.join(d, n), 0o644)
        os.chmod(d, 0o755)
        return d

    def run_stage(self, stage, site, volumes=()):
        name = "sluice-test-%d-%s" % (os.getpid(), stage)
        args = ["run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
                "-v", "%s:/etc/sluice/config:ro" % self.config_map(stage, site)]
        for host, path in volumes:
            args += ["-v", "%s:%s" % (host, path)]
        args += [self.tag, "/usr/local/bin/sluice-" + stage,
                 "--config=/etc/sluice/config/%s.yaml,/etc/sluice/config/site.yaml" % stage]
        podman(*args)
        self.containers.append(name)
        return name

    def logs(self, name):
        r = podman("logs", name, check=False)
        return r.stdout + r.stderr

    def wait_listening(self, name, port):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if port_open(port) and "event=listening" in self.logs(name):
                return
            state = podman("inspect", "--format", "{{.State.Status}}", name, check=False).stdout.strip()
            if state not in ("running", "created"):
                self.fail("%s is %s:\n%s" % (name, state, self.logs(name)[-3000:]))
            time.sleep(0.2)
        self.fail("%s not listening on %d:\n%s" % (name, port, self.logs(name)[-3000:]))

    def stop_with_sigterm(self, name):
        podman("stop", "-t", "90", name, timeout=150)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        self.assertEqual(code, "0", "%s exited %s on SIGTERM:\n%s" % (name, code, self.logs(name)[-3000:]))
        self.assertIn("event=stopped", self.logs(name))

    def test_the_three_stages_run_from_the_image_and_deliver(self):
        self.build()
        user = podman("image", "inspect", "--format", "{{.Config.User}}", self.tag).stdout.strip()
        self.assertEqual(user, "%d:%d" % (UID, UID), "the image runs as its non-root user")
        p = {k: free_port() for k in ("fe", "fe_admin", "fe_metrics", "fb", "fb_admin", "fb_metrics",
                                      "ri", "ri_admin", "ri_metrics")}

        def server(smtp, admin, metrics):
            return ("server:\n  hostname: %%s\n  smtp_listen: 127.0.0.1:%d\n  admin_listen: 127.0.0.1:%d\n"
                    "  metrics_listen: 127.0.0.1:%d\n" % (p[smtp], p[admin], p[metrics]))

        queue = self.volume("queue")
        mail = self.volume("mail")
        reinject = self.run_stage(
            "reinject",
            server("ri", "ri_admin", "ri_metrics") % "reinject.image.test" +
            "mynetworks: [127.0.0.0/8]\nxforward_hosts: [127.0.0.0/8]\n",
            volumes=[(queue, "/var/spool/sluice"), (mail, "/var/spool/sluice/mail")])
        self.wait_listening(reinject, p["ri"])
        bridge = self.run_stage(
            "filter-bridge",
            server("fb", "fb_admin", "fb_metrics") % "filter-bridge.image.test" +
            "next_hop: 127.0.0.1:%d\nnext_hop_admin: [\"127.0.0.1:%d\"]\nupstream_admin_port: %d\n"
            "mynetworks: [127.0.0.0/8]\nxforward_hosts: [127.0.0.0/8]\n" % (p["ri"], p["ri_admin"], p["fe_admin"]))
        self.wait_listening(bridge, p["fb"])
        frontend = self.run_stage(
            "frontend",
            server("fe", "fe_admin", "fe_metrics") % "mx.image.test" +
            "filter: 127.0.0.1:%d\nfilter_admin: [\"127.0.0.1:%d\"]\n" % (p["fb"], p["fb_admin"]))
        self.wait_listening(frontend, p["fe"])

        with smtplib.SMTP("127.0.0.1", p["fe"], local_hostname="client.test", timeout=60) as s:
            s.sendmail("alice@example.org", ["user@example.com"],
                       b"Subject: from the image\r\nMessage-ID: <image-test@client.test>\r\n\r\nhello\r\n")
        new = os.path.join(mail, "user@example.com", "new")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (os.path.isdir(new) and os.listdir(new)):
            time.sleep(0.2)
        self.assertTrue(os.path.isdir(new) and os.listdir(new), "no message in the Maildir volume:\n" +
                        self.logs(reinject)[-3000:])
        path = os.path.join(new, os.listdir(new)[0])
        with open(path, "rb") as f:
            message = f.read()
        self.assertIn(b"Message-ID: <image-test@client.test>", message)
        self.assertIn(b"by mx.image.test", message)
        self.assertEqual(os.stat(path).st_uid, UID, "delivered by the image's user")
        self.assertTrue(os.listdir(os.path.join(queue, "queue")), "the queue lives on its volume")
        print("delivered into the Maildir volume: %s" % os.path.relpath(path, self.tmp))

        for name in (frontend, bridge, reinject):
            self.stop_with_sigterm(name)
        print("frontend, filter-bridge, reinject: exit 0 on SIGTERM")


if __name__ == "__main__":
    dt.main()
