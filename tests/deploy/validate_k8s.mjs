// tests/deploy/validate_k8s.mjs
//
// Validates rendered Kubernetes manifests offline against the OpenAPI schemas shipped in the
// npm packages kubernetes-models (core groups) and @kubernetes-models/prometheus-operator
// (PodMonitor): `node validate_k8s.mjs FILE.yaml...`, each file a multi-document YAML as
// `kubectl kustomize` prints it. Exit 0 when every object validates, 1 otherwise (each
// failure printed with its kind/name); run by validate_k8s_test.py, which installs the
// packages (NODE_PATH) or skips.
//
// Never: passes an object whose kind it has no model for; reaches the network.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const CRD_PACKAGES = { "monitoring.coreos.com": "@kubernetes-models/prometheus-operator" };

async function modelFor(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  const pkg = CRD_PACKAGES[group] ?? "kubernetes-models";
  const mod = await import(`${pkg}/${apiVersion}`);
  if (!mod[kind]) throw new Error(`no model for ${apiVersion} ${kind}`);
  return mod[kind];
}

let failures = 0;
let count = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.log(`${file}: YAML error: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const where = `${file}: ${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
    try {
      const Model = await modelFor(obj.apiVersion, obj.kind);
      new Model(obj).validate();
      count++;
    } catch (e) {
      failures++;
      console.log(`${where}: ${e.message}`);
    }
  }
}
console.log(`validated ${count} objects, ${failures} failed`);
process.exit(failures ? 1 : 0);
