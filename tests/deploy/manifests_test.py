"""tests/deploy/manifests_test.py

The Kubernetes manifests of deploy/k8s/, rendered with `kubectl kustomize` (base and every
overlay) and held to what DESIGN.md and deploy/README.md promise: a workload per stage with
gRPC probes, a preStop drain and a grace period longer than drain + proxy timeout, resources,
a locked-down securityContext; Services whose ports match the stage configs; a PDB and an HPA
per stage; NetworkPolicies that let only the filter-bridge reach reinject:10026 and only the
frontend reach filter-bridge:10025; a shared_limits Redis (components/redis) that only the
frontends reach and that persists nothing; ConfigMaps whose content is byte for byte the files of
deploy/k8s/base/config/; overlay site configs that use only keys of the config schema.

Never: talks to a cluster; passes when kubectl is missing (that is a skip, exit 77).
"""

import os
import re
import unittest

import deploy_testing as dt

STAGE_KIND = {"frontend": "Deployment", "filter-bridge": "Deployment", "reinject": "StatefulSet"}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def host_port(s):
    host, _, port = str(s).rpartition(":")
    return host, int(port)


def stage_labels(stage):
    return {"app.kubernetes.io/name": "sluice", "app.kubernetes.io/component": stage}


def selects(selector, labels):
    """A LabelSelector (matchLabels only, as ours are) matches the pod labels."""
    if selector.get("matchExpressions"):
        raise AssertionError("matchExpressions are not expected in sluice's selectors")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


class Rendered:
    """One kustomization, rendered, with lookups."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.objects, self.text = dt.kustomize(path)

    def of_kind(self, kind):
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind, name):
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return found[0] if found else None

    def configmap(self, generated_name):
        """The ConfigMap generated as `generated_name` (kustomize appends a hash)."""
        found = [o for o in self.of_kind("ConfigMap")
                 if re.fullmatch(re.escape(generated_name) + r"(-[a-z0-9]{10})?", o["metadata"]["name"])]
        return found[0] if len(found) == 1 else None

    def workload(self, stage):
        return self.get(STAGE_KIND[stage], stage)


def container(workload):
    return workload["spec"]["template"]["spec"]["containers"][0]


def container_port(c, name):
    for p in c.get("ports", []):
        if p["name"] == name:
            return p["containerPort"]
    raise AssertionError("container %s has no port named %s" % (c["name"], name))


def flag(c, name):
    """The value of --name=VALUE in the container's args (last one wins), or None."""
    value = None
    for a in c.get("args", []):
        if a.startswith("--%s=" % name):
            value = a.split("=", 1)[1]
    return value


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.renders = {name: Rendered(name, path) for name, path in dt.kustomizations().items()}
        cls.configs = {s: dt.load_yaml(dt.stage_config_path(s)) for s in dt.STAGES}

    def effective_config(self, r, stage):
        """The stage's config as the pod loads it: every --config file of its args, merged the
        way lib/control does (sections merge, scalars and lists replace)."""
        c = container(r.workload(stage))
        files = (flag(c, "config") or "").split(",")
        self.assertTrue(files[0], "%s: no --config" % stage)
        cm_name = r.workload(stage)["spec"]["template"]["spec"]["volumes"]
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in cm_name}
        merged = {}
        for f in files:
            directory, key = os.path.split(f)
            vol = [n for n, p in mounts.items() if p == directory]
            self.assertEqual(len(vol), 1, "%s: %s is not on one mounted volume" % (stage, f))
            cm = r.get("ConfigMap", volumes[vol[0]]["configMap"]["name"])
            self.assertIsNotNone(cm, "%s: ConfigMap for %s not in the render" % (stage, f))
            self.assertIn(key, cm["data"], "%s: ConfigMap %s has no key %s" % (stage, cm["metadata"]["name"], key))
            merge(merged, dt.yaml.safe_load(cm["data"][key]) or {})
        # Flags override the file.
        for name, path in (("smtp_listen", ("server", "smtp_listen")),
                           ("admin_listen", ("server", "admin_listen")),
                           ("metrics_listen", ("server", "metrics_listen"))):
            v = flag(c, name)
            if v:
                merged.setdefault(path[0], {})[path[1]] = v
        return merged

    # ---- rendering ----

    def test_every_kustomization_renders_with_unique_objects(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in r.objects]
                self.assertEqual(len(keys), len(set(keys)), "duplicate objects in %s" % r.name)
                self.assertGreater(len(keys), 15)

    def test_overlays_set_a_namespace_and_create_it(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                if r.name == "base":
                    continue
                namespaces = {o["metadata"].get("namespace") for o in r.objects if o["kind"] != "Namespace"}
                self.assertEqual(len(namespaces), 1, namespaces)
                ns = namespaces.pop()
                self.assertTrue(ns)
                nsobj = r.get("Namespace", ns)
                self.assertIsNotNone(nsobj, "overlay %s does not create namespace %s" % (r.name, ns))
                self.assertEqual(nsobj["metadata"]["labels"].get("pod-security.kubernetes.io/enforce"), "restricted")

    # ---- workloads ----

    def test_one_workload_per_stage_of_the_right_kind(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    w = r.workload(stage)
                    self.assertIsNotNone(w, "%s %s missing" % (STAGE_KIND[stage], stage))
                    self.assertTrue(selects(w["spec"]["selector"], stage_labels(stage)))
                    self.assertEqual(w["spec"]["selector"]["matchLabels"], stage_labels(stage))
                    self.assertTrue(selects(w["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"]))
                    cmd = container(w)["command"][0]
                    self.assertEqual(cmd, "/usr/local/bin/sluice-" + stage)
                    # The HPA owns the replica count.
                    self.assertNotIn("replicas", w["spec"], "%s sets replicas; the HPA owns them" % stage)

    def test_every_container_has_probes_resources_and_a_locked_down_security_context(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for w in [o for o in r.objects if o["kind"] in WORKLOAD_KINDS]:
                    pod = w["spec"]["template"]["spec"]
                    where = "%s/%s" % (w["kind"], w["metadata"]["name"])
                    psc = pod.get("securityContext", {})
                    self.assertTrue(psc.get("runAsNonRoot"), where)
                    self.assertNotEqual(psc.get("runAsUser", 0), 0, where)
                    self.assertEqual(psc.get("seccompProfile", {}).get("type"), "RuntimeDefault", where)
                    self.assertFalse(pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"), where)
                    self.assertIs(pod.get("automountServiceAccountToken"), False, where)
                    self.assertFalse([v for v in pod.get("volumes", []) if "hostPath" in v], where)
                    for c in pod["containers"] + pod.get("initContainers", []):
                        cwhere = "%s container %s" % (where, c["name"])
                        # Every container that serves (the stages; the sluicectl toolbox serves nothing).
                        if c.get("ports") or w["metadata"]["labels"].get("app.kubernetes.io/name") == "sluice":
                            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                                self.assertIn(probe, c, cwhere)
                        res = c.get("resources", {})
                        for k in ("cpu", "memory"):
                            self.assertIn(k, res.get("requests", {}), cwhere)
                            self.assertIn(k, res.get("limits", {}), cwhere)
                        sc = c.get("securityContext", {})
                        self.assertTrue(sc.get("runAsNonRoot"), cwhere)
                        self.assertIs(sc.get("allowPrivilegeEscalation"), False, cwhere)
                        self.assertIs(sc.get("readOnlyRootFilesystem"), True, cwhere)
                        self.assertEqual(sc.get("capabilities", {}).get("drop"), ["ALL"], cwhere)
                        self.assertFalse(sc.get("capabilities", {}).get("add"), cwhere + ": adds a capability")
                        self.assertFalse(sc.get("privileged"), cwhere)
                        image = c["image"]
                        self.assertRegex(image, r"[:@]", cwhere + ": image without a tag")
                        self.assertFalse(image.endswith(":latest"), cwhere)

    def test_probes_are_grpc_health_on_the_admin_port(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    c = container(r.workload(stage))
                    admin = host_port(self.effective_config(r, stage)["server"]["admin_listen"])[1]
                    self.assertEqual(container_port(c, "admin"), admin)
                    for probe in ("readinessProbe", "startupProbe"):
                        self.assertEqual(c[probe].get("grpc", {}).get("port"), admin,
                                         "%s %s is not a grpc.health.v1 probe on %d" % (stage, probe, admin))
                        self.assertNotIn("service", c[probe]["grpc"])  # "": the whole server's health
                    # Liveness must not fail while drained (health NOT_SERVING): the admin port itself.
                    live = c["livenessProbe"]
                    self.assertEqual((live.get("tcpSocket") or live.get("grpc") or {}).get("port"), admin)

    def test_prestop_drains_and_the_grace_period_outlasts_drain_plus_proxy_timeout(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    w = r.workload(stage)
                    c = container(w)
                    cfg = self.effective_config(r, stage)
                    limits = cfg.get("limits", {})
                    drain = dt.duration_seconds(limits.get("drain_timeout_seconds", 60))
                    proxy = dt.duration_seconds(limits.get("proxy_timeout_seconds", 100))
                    grace = w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                    self.assertGreater(grace, drain + proxy, stage)
                    pre = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
                    admin = host_port(cfg["server"]["admin_listen"])[1]
                    self.assertIn("sluicectl --admin=127.0.0.1:%d" % admin, pre)
                    self.assertRegex(pre, r"\bdrain\s*$")

    def test_reinject_hands_its_queue_to_the_other_replicas_within_the_grace_period(self):
        """issue 10: a replica stopped by a scale-down or a node drain hands its queue to the
        others (handoff_peers = the StatefulSet's headless Service), and the grace period
        covers preStop + drain + the deliveries' stop (10 s) + handoff_timeout_seconds."""
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                w = r.workload("reinject")
                cfg = self.effective_config(r, "reinject")
                admin = host_port(cfg["server"]["admin_listen"])[1]
                peers = cfg.get("handoff_peers", [])
                self.assertEqual(peers, ["%s:%d" % (w["spec"]["serviceName"], admin)])
                svc = r.get("Service", w["spec"]["serviceName"])
                self.assertEqual(svc["spec"].get("clusterIP"), "None", "handoff_peers must name a headless Service")
                self.assertTrue(svc["spec"].get("publishNotReadyAddresses"), "a draining peer must still resolve")
                self.assertIn(admin, [p["port"] for p in svc["spec"]["ports"]])
                limits = cfg.get("limits", {})
                drain = dt.duration_seconds(limits.get("drain_timeout_seconds", 60))
                handoff = dt.duration_seconds(limits.get("handoff_timeout_seconds", 120))
                grace = w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                self.assertGreater(grace, 10 + drain + 10 + handoff)
                peers_in = self.ingress_peers(r, stage_labels("reinject"), admin)
                self.assertIn({"podSelector": {"matchLabels": stage_labels("reinject")}}, peers_in,
                              "reinject replicas cannot reach each other's Queue.Transfer")

    def test_listen_ports_match_container_ports(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    c = container(r.workload(stage))
                    cfg = self.effective_config(r, stage)
                    for port, key in (("smtp", "smtp_listen"), ("admin", "admin_listen"), ("metrics", "metrics_listen")):
                        host, p = host_port(cfg["server"][key])
                        # No host: every address of both families (IPv4-only, dual-stack and
                        # IPv6-only clusters). Metrics stay IPv4: Debian's civetweb has no IPv6.
                        want = "0.0.0.0" if port == "metrics" else ""
                        self.assertEqual(host, want, "%s %s must listen on the pod's addresses" % (stage, key))
                        self.assertEqual(container_port(c, port), p, "%s %s" % (stage, key))
                    pod = r.workload(stage)["spec"]["template"]
                    ann = pod["metadata"].get("annotations", {})
                    self.assertEqual(ann.get("prometheus.io/port"), str(container_port(c, "metrics")))

    def test_frontend_listens_unprivileged_and_the_service_publishes_25(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                c = container(r.workload("frontend"))
                self.assertEqual(flag(c, "smtp_listen"), ":2525")
                svc = r.get("Service", "frontend")
                self.assertEqual(svc["spec"]["type"], "LoadBalancer")
                self.assertEqual(svc["spec"]["externalTrafficPolicy"], "Local")
                self.assertEqual([(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]], [(25, "smtp")])
                self.assertTrue(selects({"matchLabels": svc["spec"]["selector"]}, stage_labels("frontend")))

    def test_reinject_keeps_its_queue_on_a_retained_volume(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                sts = r.workload("reinject")
                cfg = self.effective_config(r, "reinject")
                (claim,) = sts["spec"]["volumeClaimTemplates"]
                mount = [m for m in container(sts)["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
                self.assertEqual(len(mount), 1)
                root = mount[0]["mountPath"].rstrip("/") + "/"
                self.assertTrue(cfg["queue_dir"].startswith(root), "queue_dir %s not on the volume" % cfg["queue_dir"])
                if cfg["deliver"].startswith("maildir:"):
                    self.assertTrue(cfg["deliver"][len("maildir:"):].startswith(root))
                self.assertEqual(sts["spec"]["persistentVolumeClaimRetentionPolicy"],
                                 {"whenDeleted": "Retain", "whenScaled": "Retain"})
                gov = r.get("Service", sts["spec"]["serviceName"])
                self.assertIsNotNone(gov)
                self.assertEqual(gov["spec"].get("clusterIP"), "None")

    def test_pods_run_as_the_image_user(self):
        users = re.findall(r"^USER\s+(\S+)", open(os.path.join(dt.DEPLOY, "Dockerfile")).read(), re.M)
        uid, _, gid = users[-1].partition(":")
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    psc = r.workload(stage)["spec"]["template"]["spec"]["securityContext"]
                    self.assertEqual(str(psc["runAsUser"]), uid)
                    self.assertEqual(str(psc.get("runAsGroup")), gid or uid)

    # ---- wiring: Services named by the stage configs ----

    def test_services_wire_the_stages_as_the_configs_name_them(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                fe = self.effective_config(r, "frontend")
                fb = self.effective_config(r, "filter-bridge")
                # frontend -> filter-bridge:10025 -> reinject:10026
                for stage, target in (("filter-bridge", fe["filter"]), ("reinject", fb["next_hop"])):
                    name, port = host_port(target)
                    svc = r.get("Service", name)
                    self.assertIsNotNone(svc, "no Service %s for %s" % (name, target))
                    self.assertEqual(svc["spec"].get("type", "ClusterIP"), "ClusterIP")
                    self.assertNotEqual(svc["spec"].get("clusterIP"), "None")
                    self.assertTrue(selects({"matchLabels": svc["spec"]["selector"]}, stage_labels(stage)))
                    (sp,) = [p for p in svc["spec"]["ports"] if p["port"] == port]
                    self.assertEqual(sp["targetPort"], "smtp")
                    self.assertEqual(container_port(container(r.workload(stage)), "smtp"),
                                     host_port(self.effective_config(r, stage)["server"]["smtp_listen"])[1])
                # The capacity watches go to headless Services of the next stage's admin port.
                for stage, targets in (("filter-bridge", fe.get("filter_admin")), ("reinject", fb.get("next_hop_admin"))):
                    self.assertTrue(targets, "no capacity watch of %s configured" % stage)
                    for t in targets:
                        name, port = host_port(t)
                        svc = r.get("Service", name)
                        self.assertIsNotNone(svc, "no Service %s for %s" % (name, t))
                        self.assertEqual(svc["spec"].get("clusterIP"), "None", "%s must be headless" % name)
                        self.assertTrue(svc["spec"].get("publishNotReadyAddresses"))
                        self.assertTrue(selects({"matchLabels": svc["spec"]["selector"]}, stage_labels(stage)))
                        self.assertIn(port, [p["port"] for p in svc["spec"]["ports"]])
                        self.assertEqual(port, host_port(self.effective_config(r, stage)["server"]["admin_listen"])[1])
                # Every stage's admin port is reachable for sluicectl through a headless Service.
                for stage in dt.STAGES:
                    admin = host_port(self.effective_config(r, stage)["server"]["admin_listen"])[1]
                    headless = [s for s in r.of_kind("Service") if s["spec"].get("clusterIP") == "None"
                                and selects({"matchLabels": s["spec"]["selector"]}, stage_labels(stage))
                                and admin in [p["port"] for p in s["spec"]["ports"]]]
                    self.assertTrue(headless, "no headless admin Service for %s" % stage)
                # Nothing but the frontend leaves the cluster.
                for s in r.of_kind("Service"):
                    if s["spec"].get("type") in ("LoadBalancer", "NodePort"):
                        self.assertEqual(s["metadata"]["name"], "frontend")

    # ---- PDB and HPA ----

    def test_a_pdb_and_an_hpa_per_stage(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    w = r.workload(stage)
                    pdbs = [p for p in r.of_kind("PodDisruptionBudget")
                            if selects(p["spec"]["selector"], stage_labels(stage))]
                    self.assertEqual(len(pdbs), 1, "PDB for %s" % stage)
                    self.assertTrue("maxUnavailable" in pdbs[0]["spec"] or "minAvailable" in pdbs[0]["spec"])
                    hpas = [h for h in r.of_kind("HorizontalPodAutoscaler")
                            if h["spec"]["scaleTargetRef"]["name"] == stage]
                    self.assertEqual(len(hpas), 1, "HPA for %s" % stage)
                    spec = hpas[0]["spec"]
                    self.assertEqual(spec["scaleTargetRef"]["kind"], w["kind"])
                    self.assertEqual(spec["scaleTargetRef"]["apiVersion"], "apps/v1")
                    self.assertLessEqual(spec.get("minReplicas", 1), spec["maxReplicas"])
                    self.assertTrue(any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
                                        for m in spec["metrics"]))
                    # A CPU target needs a CPU request to mean anything.
                    self.assertIn("cpu", container(w)["resources"]["requests"])
                # Removing a reinject replica strands its queue: scale-down is an operator's step.
                (hpa,) = [h for h in r.of_kind("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "reinject"]
                self.assertEqual(hpa["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Disabled")

    # ---- NetworkPolicy ----

    def ingress_peers(self, r, labels, port):
        """For pods with `labels`: None if no policy selects them (all allowed), else the list
        of `from` peers allowed on `port` ('ANY' for a rule without `from`)."""
        policies = [p for p in r.of_kind("NetworkPolicy")
                    if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
                    and selects(p["spec"]["podSelector"], labels)]
        if not policies:
            return None
        peers = []
        for p in policies:
            for rule in p["spec"].get("ingress", []):
                ports = rule.get("ports")
                if ports and not any(pp.get("port") == port for pp in ports):
                    continue
                peers += rule["from"] if rule.get("from") else ["ANY"]
        return peers

    def stage_port(self, r, stage, key):
        return host_port(self.effective_config(r, stage)["server"][key])[1]

    def test_only_the_filter_stage_reaches_reinject_smtp(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                port = self.stage_port(r, "reinject", "smtp_listen")
                peers = self.ingress_peers(r, stage_labels("reinject"), port)
                self.assertIsNotNone(peers, "no NetworkPolicy selects reinject")
                self.assertEqual(peers, [{"podSelector": {"matchLabels": stage_labels("filter-bridge")}}])

    def test_only_the_frontend_reaches_filter_bridge_smtp(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                port = self.stage_port(r, "filter-bridge", "smtp_listen")
                peers = self.ingress_peers(r, stage_labels("filter-bridge"), port)
                self.assertIsNotNone(peers, "no NetworkPolicy selects filter-bridge")
                self.assertEqual(peers, [{"podSelector": {"matchLabels": stage_labels("frontend")}}])

    def test_frontend_smtp_is_open_to_everyone(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                port = container_port(container(r.workload("frontend")), "smtp")
                self.assertIn("ANY", self.ingress_peers(r, stage_labels("frontend"), port))

    def test_admin_and_metrics_only_from_sluice_pods_sluicectl_and_monitoring(self):
        sluicectl = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "sluicectl"}}}
        monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        stage_peer = [{"podSelector": {"matchLabels": stage_labels(s)}} for s in dt.STAGES]
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    admin = self.stage_port(r, stage, "admin_listen")
                    peers = self.ingress_peers(r, stage_labels(stage), admin)
                    self.assertIn(sluicectl, peers)
                    for p in peers:
                        self.assertTrue(p == sluicectl or p in stage_peer, "%s admin open to %s" % (stage, p))
                    metrics = self.stage_port(r, stage, "metrics_listen")
                    self.assertEqual(self.ingress_peers(r, stage_labels(stage), metrics), [monitoring])
                # Who must reach whose admin port for the pipeline to work.
                fb = self.ingress_peers(r, stage_labels("filter-bridge"), self.stage_port(r, "filter-bridge", "admin_listen"))
                self.assertIn(stage_peer[0], fb, "frontend cannot watch filter-bridge capacity")
                re_ = self.ingress_peers(r, stage_labels("reinject"), self.stage_port(r, "reinject", "admin_listen"))
                self.assertIn(stage_peer[1], re_, "filter-bridge cannot watch reinject capacity")
                self.assertIn(stage_peer[0], re_, "frontend cannot ask reinject's Verify (verify_recipients)")
                fe = self.ingress_peers(r, stage_labels("frontend"), self.stage_port(r, "frontend", "admin_listen"))
                self.assertIn(stage_peer[1], fe, "filter-bridge cannot fetch session records (GetSession)")

    def test_every_sluice_pod_is_default_deny(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    # A port nobody listens on is refused: some policy selects the pods.
                    self.assertEqual(self.ingress_peers(r, stage_labels(stage), 1), [], stage)

    # ---- shared_limits: the frontends' Redis (components/redis) ----

    def test_shared_limits_names_a_redis_only_the_frontends_reach(self):
        self.assertIn("shared_limits", self.effective_config(self.renders["production"], "frontend"),
                      "overlays/production counts per-client limits across its frontend replicas")
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                shared = self.effective_config(r, "frontend").get("shared_limits")
                redis = r.get("StatefulSet", "sluice-redis")
                if not shared:
                    self.assertIsNone(redis, "a Redis no frontend uses")
                    continue
                m = re.fullmatch(r"redis://([^:/]+):(\d+)(/\d*)?", shared)
                self.assertTrue(m, "shared_limits: " + shared)
                svc = r.get("Service", m.group(1))
                self.assertIsNotNone(svc, "shared_limits names %s, which is not in the render" % m.group(1))
                self.assertIsNotNone(redis, "the Redis of components/redis")
                pod = redis["spec"]["template"]
                self.assertTrue(selects({"matchLabels": svc["spec"]["selector"]}, pod["metadata"]["labels"]))
                (port,) = [p for p in svc["spec"]["ports"] if p["port"] == int(m.group(2))]
                target = container_port(container(redis), port["targetPort"]) if isinstance(port["targetPort"], str) \
                    else port["targetPort"]
                # Only frontend pods reach it; nothing on any other port.
                self.assertEqual(self.ingress_peers(r, pod["metadata"]["labels"], target),
                                 [{"podSelector": {"matchLabels": stage_labels("frontend")}}])
                self.assertEqual(self.ingress_peers(r, pod["metadata"]["labels"], 1), [])
                # One Redis, nothing persisted: the frontends rebuild what it holds.
                self.assertEqual(redis["spec"]["replicas"], 1)
                self.assertNotIn("volumeClaimTemplates", redis["spec"])
                self.assertFalse([v for v in pod["spec"].get("volumes", []) if "persistentVolumeClaim" in v])
                args = container(redis)["args"]
                self.assertEqual(args[args.index("--save") + 1], "")
                self.assertEqual(args[args.index("--appendonly") + 1], "no")

    # ---- ConfigMaps and configs ----

    def test_configmaps_hold_exactly_the_stage_config_files(self):
        kust = dt.load_yaml(os.path.join(dt.K8S, "base", "kustomization.yaml"))
        gens = {g["name"]: g for g in kust["configMapGenerator"]}
        for stage in dt.STAGES:
            self.assertEqual(gens[stage + "-config"]["files"], ["%s.yaml=config/%s.yaml" % (stage, stage)])
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    cm = r.configmap(stage + "-config")
                    self.assertIsNotNone(cm, "%s: ConfigMap %s-config" % (r.name, stage))
                    with open(dt.stage_config_path(stage), encoding="utf-8") as f:
                        self.assertEqual(cm["data"][stage + ".yaml"], f.read(),
                                         "%s: %s-config differs from deploy/k8s/base/config/%s.yaml" % (r.name, stage, stage))
                    vols = r.workload(stage)["spec"]["template"]["spec"]["volumes"]
                    self.assertIn(cm["metadata"]["name"], [v.get("configMap", {}).get("name") for v in vols])

    def test_stage_and_site_configs_use_only_schema_keys(self):
        messages = dt.proto_messages()
        paths = {s: [dt.stage_config_path(s)] for s in dt.STAGES}
        for overlay, path in dt.kustomizations().items():
            cdir = os.path.join(path, "config")
            if overlay != "base" and os.path.isdir(cdir):
                for name in sorted(os.listdir(cdir)):
                    stage = name.replace("-site.yaml", "")
                    self.assertIn(stage, dt.STAGES, "%s/config/%s names no stage" % (overlay, name))
                    paths[stage].append(os.path.join(cdir, name))
        for stage, files in paths.items():
            for f in files:
                with self.subTest(config=os.path.relpath(f, dt.SRC)):
                    self.assertEqual(dt.unknown_config_keys(dt.load_yaml(f) or {}, dt.STAGE_CONFIG_MESSAGE[stage],
                                                            messages), [])

    def test_schema_check_catches_an_unknown_key(self):
        messages = dt.proto_messages()
        self.assertEqual(dt.unknown_config_keys({"server": {"hostnme": "x"}, "limits": {"max_sessions": 1}},
                                                "FrontendConfig", messages), ["server.hostnme"])
        self.assertEqual(dt.unknown_config_keys({"filters": [{"name": "a", "rules": {"file": "f", "x": 1}}]},
                                                "FilterBridgeConfig", messages), ["filters[0].rules.x"])

    def test_files_the_configs_name_are_mounted_from_secrets(self):
        for r in self.renders.values():
            with self.subTest(kustomization=r.name):
                for stage in dt.STAGES:
                    cfg = self.effective_config(r, stage)
                    pod = r.workload(stage)["spec"]["template"]["spec"]
                    c = pod["containers"][0]
                    volumes = {v["name"]: v for v in pod["volumes"]}
                    server = cfg.get("server", {})
                    files = [server.get("admin_token_file")]
                    for tls in ("admin_tls", "smtp_tls"):
                        files += [server.get(tls, {}).get(k) for k in ("cert_file", "key_file", "ca_file")]
                    for f in [f for f in files if f]:
                        mount = [m for m in c["volumeMounts"] if f.startswith(m["mountPath"].rstrip("/") + "/")]
                        self.assertEqual(len(mount), 1, "%s/%s: %s is not on a mounted volume" % (r.name, stage, f))
                        vol = volumes[mount[0]["name"]]
                        self.assertIn("secret", vol, "%s: %s must come from a Secret" % (stage, f))
                        # The config needs it: wait for the Secret rather than start without.
                        self.assertFalse(vol["secret"].get("optional", False),
                                         "%s/%s: Secret %s is used by the config but optional"
                                         % (r.name, stage, vol["secret"]["secretName"]))
                    # And nothing secret is inline.
                    self.assertNotIn("BEGIN", r.text)
                self.assertFalse(r.of_kind("Secret"), "%s ships a Secret" % r.name)


def merge(into, layer):
    """lib/control's layering: mappings merge key by key; scalars and lists replace."""
    for k, v in layer.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v
    return into


if __name__ == "__main__":
    dt.main()
