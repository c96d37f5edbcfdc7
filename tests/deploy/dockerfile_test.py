"""tests/deploy/dockerfile_test.py

deploy/Dockerfile and .dockerignore without Docker: base images pinned by tag, no ADD, the
build stage installs scripts/install-deps' build list, the runtime stage runs as a numeric
non-root user, copies the four binaries and exposes the ports the manifests use, and its
apt package list covers every shared library the built binaries load (ldd + dpkg, so each
name is a real Debian 12 package). DockerfileLintTest runs npm dockerfilelint (installed on
demand; skipped, exit 77, without node/npm or the registry).

Never: builds the image; passes a runtime package list that leaves a library unresolved.
"""

import json
import os
import re
import shutil
import subprocess
import unittest

import deploy_testing as dt

DOCKERFILE = os.path.join(dt.DEPLOY, "Dockerfile")
BINARIES = ("sluice-frontend", "sluice-filter-bridge", "sluice-reinject", "sluicectl")
# In debian:12-slim already (Essential/apt's own dependencies).
SLIM_BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def instructions():
    """[(stage index, INSTRUCTION, argument text)] with continuation lines joined."""
    text = open(DOCKERFILE, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    out, stage = [], -1
    for line in text.splitlines():
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "FROM":
            stage += 1
        out.append((stage, word.upper(), rest.strip()))
    return out


def runtime_packages(insts):
    """The apt packages of the runtime stages (every stage after the build stage)."""
    pkgs = []
    for s, word, rest in insts:
        if s > 0 and word == "RUN" and "apt-get install" in rest:
            args = rest.split("apt-get install", 1)[1].split("&&")[0].split()
            pkgs += [a for a in args if not a.startswith("-")]
    return pkgs


def dpkg_depends(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    deps = set()
    for alt in r.stdout.split(","):
        alt = alt.strip()
        if alt:
            deps.add(re.split(r"[\s:(|]", alt.split("|")[0].strip())[0])
    return deps


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.insts = instructions()

    def test_base_images_are_pinned_by_tag(self):
        stages = []
        for _, word, rest in self.insts:
            if word != "FROM":
                continue
            parts = rest.split()
            image = parts[0]
            if image in stages:  # a stage built on an earlier one
                stages.append(parts[2])
                continue
            self.assertNotIn("$", image, "FROM with a variable cannot be checked: " + image)
            self.assertRegex(image, r"^[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$")
            self.assertTrue(":" in image.split("/")[-1] or "@sha256:" in image, "untagged base image " + image)
            self.assertFalse(image.endswith(":latest"), image)
            self.assertTrue(image.startswith("debian:12"), "a Debian 12 base is what the package names assume: " + image)
            if len(parts) >= 3 and parts[1].upper() == "AS":
                stages.append(parts[2])
        # runtime-base: the libraries and the user; local (make image-fast) and runtime (the
        # default, last) put binaries into it.
        self.assertEqual(stages, ["build", "runtime-base", "local", "runtime"])

    def test_no_add_and_no_downloads(self):
        for _, word, rest in self.insts:
            self.assertNotEqual(word, "ADD", "use COPY; ADD fetches URLs and unpacks archives")
            if word == "RUN":
                self.assertNotRegex(rest, r"\b(curl|wget)\b|https?://", "the image fetches only Debian packages")

    def test_build_stage_uses_the_install_deps_build_list(self):
        runs = [rest for s, w, rest in self.insts if s == 0 and w == "RUN"]
        self.assertTrue(any("scripts/install-deps --build-only" in r for r in runs))
        self.assertTrue(any("-DSLUICE_TESTS=OFF" in r and "cmake --build" in r for r in runs))
        self.assertTrue(all("-j" not in r or re.search(r"-j\"?\$\{?JOBS", r) for r in runs if "cmake --build" in r))

    def test_runtime_runs_as_numeric_non_root_user(self):
        for last in (2, 3):  # local and runtime
            self.assert_runs_as_numeric_non_root_user(last)

    def test_the_local_target_packages_the_binaries_context_only(self):
        copies = [rest for s, w, rest in self.insts if s == 2 and w == "COPY"]
        self.assertEqual(copies, ["--from=binaries . /usr/local/bin/"])
        self.assertEqual([rest for s, w, rest in self.insts if w == "FROM"][-2:],
                         ["runtime-base AS local", "runtime-base AS runtime"])

    def assert_runs_as_numeric_non_root_user(self, last):
        users = [rest for s, w, rest in self.insts if s == last and w == "USER"]
        self.assertTrue(users, "no USER in the runtime stage")
        uid = users[-1].split(":")[0]
        self.assertRegex(uid, r"^\d+$", "numeric uid, so runAsNonRoot can verify it")
        self.assertNotEqual(int(uid), 0)
        # USER comes after the last RUN (nothing runs as root after it, nothing resets it).
        tail = [w for s, w, _ in self.insts if s == last]
        self.assertGreater(len(tail) - 1 - tail[::-1].index("USER"), len(tail) - 1 - tail[::-1].index("RUN"))

    def test_runtime_has_the_binaries_and_the_ports(self):
        last = max(s for s, _, _ in self.insts)
        copies = " ".join(rest for s, w, rest in self.insts if s == last and w == "COPY")
        self.assertIn("--from=build", copies)
        build_runs = " ".join(rest for s, w, rest in self.insts if s == 0 and w == "RUN")
        for b in BINARIES:
            self.assertIn("/build/bin/" + b, build_runs)
        exposed = {int(p.split("/")[0]) for s, w, rest in self.insts if w == "EXPOSE" for p in rest.split()}
        self.assertLessEqual({2525, 10025, 10026, 9101, 9102, 9103, 9201, 9202, 9203}, exposed)
        self.assertNotIn(25, exposed, "the container listens on 2525; the Service publishes 25")
        self.assertFalse([p for p in runtime_packages(self.insts) if p.endswith("-dev")], "no -dev packages at run time")

    def test_the_build_stage_copies_every_directory_cmake_builds(self):
        # An add_subdirectory the build stage lacks breaks only the release build: the tests
        # use the tree, not the image. Each must be COPYed, or sit under an option that is
        # off by default or that the build stage turns off (-DSLUICE_BENCH=OFF).
        copied = [rest.split()[0].rstrip("/") for s, w, rest in self.insts if s == 0 and w == "COPY"
                  and "--from" not in rest]
        cmake_args = " ".join(rest for s, w, rest in self.insts if s == 0 and w == "RUN" and "cmake -S" in rest)
        lists = open(os.path.join(dt.SRC, "CMakeLists.txt"), encoding="utf-8").read()
        off_by_default = set(re.findall(r'option\((\w+)\s+"[^"]*"\s+OFF\)', lists))
        turned_off = set(re.findall(r"-D(\w+)=OFF", cmake_args))
        conditions = []
        found = 0
        for line in lists.splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.match(r"if\s*\((.*)\)$", line)
            if m:
                conditions.append(m.group(1).strip())
            elif line.startswith("endif("):
                conditions.pop()
            m = re.match(r"add_subdirectory\(([\w/.-]+)", line)
            if not m:
                continue
            found += 1
            d = m.group(1)
            if any(c in off_by_default or c in turned_off for c in conditions):
                continue
            self.assertTrue(any(d == c or d.startswith(c + "/") for c in copied),
                            "CMakeLists.txt builds %s, which the build stage does not COPY" % d)
        self.assertGreater(found, 5)

    def test_dockerignore_sends_only_what_the_build_copies(self):
        lines = [l.strip() for l in open(os.path.join(dt.SRC, ".dockerignore")) if l.strip() and not l.startswith("#")]
        self.assertEqual(lines[0], "*", ".dockerignore should be an allow-list starting with *")
        allowed = [l[1:].rstrip("/") for l in lines if l.startswith("!")]
        for _, word, rest in self.insts:
            if word == "COPY" and "--from" not in rest:
                for src in rest.split()[:-1]:
                    src = src.rstrip("/")
                    self.assertTrue(any(src == a or src.startswith(a + "/") for a in allowed),
                                    "%s is COPYed but excluded by .dockerignore" % src)
                    self.assertTrue(os.path.exists(os.path.join(dt.SRC, src)), src)
        for a in allowed:
            self.assertFalse(a.startswith(("build", "var", ".git")), a)

    def test_runtime_packages_cover_every_shared_library(self):
        pkgs = runtime_packages(self.insts)
        self.assertIn("libgrpc++1.51", pkgs)
        if not shutil.which("dpkg-query") or not shutil.which("ldd"):
            self.skipTest("no dpkg-query/ldd: not a Debian machine")
        # Each name is a Debian 12 package (installed here: the -dev packages depend on it)...
        closure, todo = set(), list(pkgs)
        for p in pkgs:
            self.assertIsNotNone(dpkg_depends(p), "%s is not an installed Debian package here" % p)
        while todo:
            p = todo.pop()
            if p in closure:
                continue
            closure.add(p)
            todo += sorted(dpkg_depends(p) or ())
        # ...and together with debian:12-slim they provide every library the binaries load.
        built = [os.path.join(dt.BIN, b) for b in BINARIES if os.access(os.path.join(dt.BIN, b), os.X_OK)
                 and os.path.getsize(os.path.join(dt.BIN, b)) > 0]
        if not built:
            self.skipTest("no binaries in %s: build them to check their libraries" % dt.BIN)
        needed = {}  # library path -> the binaries loading it
        for b in built:
            out = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
            self.assertNotIn("not found", out, b)
            for lib in re.findall(r"=> (/\S+)", out):
                needed.setdefault(lib, set()).add(os.path.basename(b))

        def spellings(lib):  # dpkg knows a file by its packaged path: real or not, /usr-merged or not
            out = []
            for p in (lib, os.path.realpath(lib)):
                out += [p, p[4:] if p.startswith("/usr/") else "/usr" + p]
            return out

        # One dpkg-query for all of them (it reads every file list: slow per call).
        paths = sorted({p for lib in needed for p in spellings(lib)})
        r = subprocess.run(["dpkg-query", "-S"] + paths, capture_output=True, text=True)
        owners = {}
        for line in r.stdout.splitlines():
            pkg, _, path = line.partition(": ")
            owners[path.strip()] = pkg.split(":")[0].strip()
        for lib, users in sorted(needed.items()):
            owner = next((owners[p] for p in spellings(lib) if p in owners), None)
            self.assertTrue(owner, "%s: %s belongs to no package" % (sorted(users), lib))
            self.assertTrue(owner in closure or owner in SLIM_BASE,
                            "%s need %s from %s, which the runtime stage does not install"
                            % (sorted(users), lib, owner))


class DockerfileLintTest(unittest.TestCase):
    def test_dockerfilelint_finds_no_issue(self):
        modules = dt.npm_tools()
        lint = os.path.join(modules, ".bin", "dockerfilelint")
        r = subprocess.run([lint, "-j", DOCKERFILE], capture_output=True, text=True, timeout=60)
        try:
            report = json.loads(r.stdout)
        except ValueError:
            self.fail("dockerfilelint: " + r.stdout + r.stderr)
        issues = [i for f in report["files"] for i in f["issues"]]
        # dockerfilelint 1.8 predates multi-stage builds: "FROM runtime-base AS local" names an
        # earlier stage, not an image, and has no tag to give (images are pinned: DockerfileTest).
        stage_names = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", open(DOCKERFILE).read()))
        issues = [i for i in issues if not (i["title"] == "Base Image Missing Tag" and
                                            i["content"].split()[1] in stage_names)]
        print("dockerfilelint: %d issues" % len(issues))
        self.assertEqual(issues, [], json.dumps(issues, indent=1))
        self.assertIn(r.returncode, (0, 2), "dockerfilelint failed to run: " + r.stderr)  # 2: it found issues


if __name__ == "__main__":
    dt.main()
