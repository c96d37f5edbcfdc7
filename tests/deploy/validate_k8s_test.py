"""tests/deploy/validate_k8s_test.py

Every object that `kubectl kustomize` renders from the base and each overlay, validated
offline against the Kubernetes OpenAPI schemas of the npm package kubernetes-models (and
@kubernetes-models/prometheus-operator for the PodMonitor) by validate_k8s.mjs. The packages
are installed on first use into SLUICE_DEPLOY_TOOLS (default /tmp/sluice-deploy-tools); without
node/npm or a reachable registry the test is skipped (exit 77), never failed. The schemas catch
wrong types, missing required fields and bad enum values, not unknown fields.

Never: commits or vendors the npm packages; needs a cluster.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import deploy_testing as dt


class SchemaTest(unittest.TestCase):
    def test_rendered_objects_validate_against_the_kubernetes_schemas(self):
        renders = {name: dt.kustomize(path)[1] for name, path in dt.kustomizations().items()}
        modules = dt.npm_tools()
        # ESM resolves packages from the script's own folder, not NODE_PATH: run a copy there.
        script = os.path.join(os.path.dirname(modules), "validate_k8s.mjs")
        shutil.copy(os.path.join(dt.HERE, "validate_k8s.mjs"), script)
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for name, text in renders.items():
                files.append(os.path.join(tmp, name + ".yaml"))
                with open(files[-1], "w") as f:
                    f.write(text)
            r = subprocess.run(["node", script] + files, capture_output=True, text=True, timeout=120)
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"validated [1-9]\d* objects, 0 failed")

    def test_validator_rejects_a_broken_object(self):
        modules = dt.npm_tools()
        script = os.path.join(os.path.dirname(modules), "validate_k8s.mjs")
        shutil.copy(os.path.join(dt.HERE, "validate_k8s.mjs"), script)
        bad = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec: {containers: [{name: c, image: i}]}\n")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(bad)
            f.flush()
            r = subprocess.run(["node", script, f.name], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("replicas must be integer", r.stdout)


if __name__ == "__main__":
    dt.main()
