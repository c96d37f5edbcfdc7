"""tests/deploy/deploy_testing.py

What the deploy/ checks share: where the tree and the binaries are, rendering a kustomization
with kubectl, the npm tools (installed on demand into a cache outside the tree), the stage
configs and their proto schema, and `main()`, which runs a unittest module and exits 77 (ctest
SKIP_RETURN_CODE) when every test in it was skipped.

Never: downloads anything but the pinned npm packages, into the cache dir; fails a test for
lack of network or of an optional tool (that is a skip, with the reason printed); writes into
the source tree.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SLUICE_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("SLUICE_BIN_DIR") or os.path.join(SRC, "build", "bin")
DEPLOY = os.path.join(SRC, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
STAGES = ("frontend", "filter-bridge", "reinject")

# npm packages for the offline checks, pinned; installed with `npm install --prefix` into
# SLUICE_DEPLOY_TOOLS (default /tmp/sluice-deploy-tools), never into the tree.
NPM_PACKAGES = (
    "kubernetes-models@5.1.0",
    "@kubernetes-models/prometheus-operator@6.0.0",
    "yaml@2",
    "dockerfilelint@1.8.0",
)
NPM_TOOLS = os.environ.get("SLUICE_DEPLOY_TOOLS", "/tmp/sluice-deploy-tools")


def stage_config_path(stage):
    return os.path.join(K8S, "base", "config", stage + ".yaml")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def kustomizations():
    """Every kustomization that is applied on its own: the base and each overlay."""
    out = {"base": os.path.join(K8S, "base")}
    overlays = os.path.join(K8S, "overlays")
    for name in sorted(os.listdir(overlays)):
        if os.path.exists(os.path.join(overlays, name, "kustomization.yaml")):
            out[name] = os.path.join(overlays, name)
    return out


_kubectl_checked = None


def require_kubectl():
    """kubectl with a built-in kustomize new enough for `labels`/components (>= 1.27), or skip."""
    global _kubectl_checked
    if _kubectl_checked is None:
        kubectl = shutil.which("kubectl")
        if not kubectl:
            _kubectl_checked = "kubectl is not installed (it ships with the machine image)"
        else:
            r = subprocess.run([kubectl, "version", "--client", "-o", "json"],
                               capture_output=True, text=True, timeout=30)
            try:
                v = json.loads(r.stdout)["clientVersion"]
                minor = int(re.match(r"\d+", v["minor"]).group(0))
                ok = int(v["major"]) > 1 or minor >= 27
                _kubectl_checked = "" if ok else (
                    "kubectl %s.%s is too old for this kustomize (need >= 1.27)" % (v["major"], v["minor"]))
            except (ValueError, KeyError, AttributeError):
                _kubectl_checked = "cannot read kubectl's version: " + (r.stderr or r.stdout)[:200]
    if _kubectl_checked:
        raise unittest.SkipTest(_kubectl_checked)


def kustomize(path):
    """Renders a kustomization; returns (objects, text)."""
    require_kubectl()
    r = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("kubectl kustomize %s failed:\n%s" % (path, r.stderr))
    return [d for d in yaml.safe_load_all(r.stdout) if d], r.stdout


_npm_failure = None


def npm_tools():
    """The node_modules dir holding NPM_PACKAGES, installing it once; skips without node/npm
    or without a reachable registry (and remembers that for the rest of the process)."""
    global _npm_failure
    if _npm_failure:
        raise unittest.SkipTest(_npm_failure)
    try:
        return _install_npm_tools()
    except unittest.SkipTest as e:
        _npm_failure = str(e)
        raise


def _install_npm_tools():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise unittest.SkipTest("node/npm not installed: offline schema and Dockerfile lint skipped")
    os.makedirs(NPM_TOOLS, exist_ok=True)
    stamp = os.path.join(NPM_TOOLS, ".installed")
    want = "\n".join(NPM_PACKAGES)
    with open(os.path.join(NPM_TOOLS, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # ctest -j runs two users of the cache at once
        if not (os.path.exists(stamp) and open(stamp).read() == want):
            cmd = [npm, "install", "--prefix", NPM_TOOLS, "--no-audit", "--no-fund",
                   "--loglevel=error", "--fetch-retries=0", "--fetch-timeout=20000"] + list(NPM_PACKAGES)
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            except subprocess.TimeoutExpired:
                raise unittest.SkipTest("npm install timed out (registry unreachable?): " + " ".join(NPM_PACKAGES))
            if r.returncode != 0:
                why = [l for l in r.stderr.splitlines() if "code" in l or "network" in l][:3] or r.stderr.splitlines()[:3]
                raise unittest.SkipTest("npm install of %s failed (offline?): %s"
                                        % (" ".join(NPM_PACKAGES), " / ".join(w.strip() for w in why)))
            with open(stamp, "w") as f:
                f.write(want)
    return os.path.join(NPM_TOOLS, "node_modules")


# ---- the config schema, read from the .proto files (field names and message types) ----

_SCALARS = {"string", "bool", "bytes", "double", "float", "int32", "int64", "uint32", "uint64",
            "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}


def proto_messages():
    """{message: {field: (type, repeated)}} for every message of proto/sluice/v1/*.proto;
    enums map to ('enum', False)."""
    messages, enums = {}, set()
    pdir = os.path.join(SRC, "proto", "sluice", "v1")
    for name in sorted(os.listdir(pdir)):
        if not name.endswith(".proto"):
            continue
        text = open(os.path.join(pdir, name), encoding="utf-8").read()
        text = re.sub(r"//[^\n]*", "", text)
        enums.update(re.findall(r"\benum\s+(\w+)\s*\{", text))
        for m in re.finditer(r"\bmessage\s+(\w+)\s*\{", text):
            # The body up to the matching brace (messages here do not nest).
            depth, i = 1, m.end()
            while depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            body = text[m.end():i - 1]
            fields = {}
            for f in re.finditer(r"(repeated\s+|optional\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+", body):
                fields[f.group(3)] = (f.group(2).split(".")[-1], (f.group(1) or "").strip() == "repeated")
            messages[m.group(1)] = fields
    for fields in messages.values():
        for k, (t, rep) in list(fields.items()):
            if t in enums:
                fields[k] = ("enum", rep)
    return messages


STAGE_CONFIG_MESSAGE = {"frontend": "FrontendConfig", "filter-bridge": "FilterBridgeConfig",
                        "reinject": "ReinjectConfig"}


def unknown_config_keys(value, message, messages, path=""):
    """Keys of a YAML config that are not fields of `message` (recursively), as paths."""
    bad = []
    if not isinstance(value, dict):
        return ["%s: expected a mapping for %s" % (path or "<top>", message)]
    fields = messages[message]
    for key, v in value.items():
        where = "%s.%s" % (path, key) if path else str(key)
        if key not in fields:
            bad.append(where)
            continue
        ftype, repeated = fields[key]
        if ftype in messages:
            items = v if repeated and isinstance(v, list) else [v]
            for n, item in enumerate(items):
                if item is not None:
                    bad += unknown_config_keys(item, ftype, messages,
                                               "%s[%d]" % (where, n) if repeated else where)
    return bad


def duration_seconds(v):
    """A config duration ("100s", "5m", "2d", 60) in seconds."""
    if isinstance(v, int):
        return v
    total = 0
    for num, unit in re.findall(r"(\d+)([smhdw]?)", str(v)):
        total += int(num) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return total


def main(argv=None):
    """`python3 FILE [unittest names...]`: runs the module's tests (or the named ones) and exits
    0 when all passed and at least one ran, 77 when every test was skipped, 1 on a failure
    (tests/unittest_exit.py)."""
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, os.path.dirname(HERE))
    import unittest_exit  # pylint: disable=import-outside-toplevel -- lives one folder up
    sys.exit(unittest_exit.run(sys.modules["__main__"], argv))
