#!/usr/bin/env python3
"""Invariants of the rendered Kubernetes manifests, and the Helm chart's values against them.

    check_manifests.py VALUES RULES BASE.yaml [OVERLAY.yaml ...]

BASE.yaml is `kubectl kustomize deploy/k8s/base`; each OVERLAY.yaml an overlay's rendering.
Every Deployment has probes, limits, non-root, a read-only root filesystem, dropped
capabilities and an HPA; every Service selects pods and its ports are theirs; every workload is
covered by a NetworkPolicy, only the gateway is reachable from outside; no `latest` image; no
Secret or secret value inlined; the PrometheusRule is deploy/prometheus/rules. For BASE.yaml,
the objects also say what the chart's values say (services, ports, probes, resources,
autoscaling, callers, each service's own settings and secrets, clamd's Deployment and who may
reach it). Prints one line per failure; exits 1 if any.
"""

import re
import sys

import yaml

failures = []


def fail(msg):
    failures.append(msg)
    print(f"  FAIL {msg}")


def load(path):
    return [o for o in yaml.safe_load_all(open(path)) if o]


def name(o):
    return f"{o['kind']}/{o['metadata']['name']}"


def pod_spec(o):
    k = o["kind"]
    if k in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return o["spec"]["template"]
    if k == "CronJob":
        return o["spec"]["jobTemplate"]["spec"]["template"]
    return None


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


SECRETISH = re.compile(r"(TOKEN|PASSWORD|SECRET|API_KEY|CREDENTIALS|DATABASE_URL|REDIS_URL)$")


def check_objects(label, objs):
    # The all-in-one overlay: one process named confab, public itself, no split Jobs.
    aio = "all-in-one" in label
    public = "confab" if aio else "confab-gateway"
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    pods = [(o, pod_spec(o)) for o in objs if pod_spec(o)]
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    policies = by_kind.get("NetworkPolicy", [])

    if by_kind.get("Secret"):
        fail(f"{label}: Secrets are rendered ({[name(s) for s in by_kind['Secret']]}); they are created outside")
    for o, tmpl in pods:
        spec = tmpl["spec"]
        psc = spec.get("securityContext", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            where = f"{label}: {name(o)} container {c['name']}"
            img = c.get("image", "")
            if img.endswith(":latest") or (":" not in img.rsplit("/", 1)[-1] and "@" not in img):
                fail(f"{where}: image {img!r} is latest or untagged")
            csc = c.get("securityContext", {})
            if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                fail(f"{where}: runAsNonRoot is not set")
            if not csc.get("readOnlyRootFilesystem"):
                fail(f"{where}: the root filesystem is writable")
            if csc.get("allowPrivilegeEscalation") is not False:
                fail(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in csc.get("capabilities", {}).get("drop", []):
                fail(f"{where}: capabilities are not all dropped")
            limits = c.get("resources", {}).get("limits", {})
            requests = c.get("resources", {}).get("requests", {})
            if not ({"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests)):
                fail(f"{where}: cpu and memory requests and limits are not all set")
            for e in c.get("env", []):
                if "value" in e and SECRETISH.search(e["name"]):
                    fail(f"{where}: secret-like variable {e['name']} has an inline value")
            # Init containers run to completion before the others: they take no probes.
            if o["kind"] in ("Deployment", "StatefulSet") and c in spec.get("containers", []):
                probes = ("livenessProbe", "readinessProbe") + (
                    ("startupProbe",) if o["kind"] == "Deployment" else ()
                )
                for p in probes:
                    if p not in c:
                        fail(f"{where}: no {p}")
        for cm in by_kind.get("ConfigMap", []):
            for k, v in (cm.get("data") or {}).items():
                if SECRETISH.search(k) or re.search(r"://[^/@\s]+:[^/@\s]+@", str(v)):
                    fail(f"{label}: {name(cm)} key {k} looks like a secret")

    for d in by_kind.get("Deployment", []):
        targets = [
            h
            for h in hpas
            if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            and h["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]
        ]
        if not targets:
            fail(f"{label}: {name(d)} has no HorizontalPodAutoscaler")
        for h in targets:
            s = h["spec"]
            cpu = [
                m["resource"]["target"].get("averageUtilization")
                for m in s.get("metrics", [])
                if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
            ]
            if h["apiVersion"] != "autoscaling/v2" or cpu != [70] or s["minReplicas"] < 2 or s["maxReplicas"] < s["minReplicas"]:
                fail(f"{label}: {name(h)} is not autoscaling/v2 on CPU 70 % with at least 2 replicas")
        if not any(matches(p["spec"]["selector"].get("matchLabels"), d["spec"]["template"]["metadata"]["labels"]) for p in by_kind.get("PodDisruptionBudget", [])):
            fail(f"{label}: {name(d)} has no PodDisruptionBudget")

    for s in by_kind.get("Service", []):
        if s["spec"].get("type") == "ExternalName":
            continue
        sel = s["spec"].get("selector")
        chosen = [(o, t) for o, t in pods if matches(sel, t["metadata"].get("labels", {}))]
        chosen = [(o, t) for o, t in chosen if o["kind"] not in ("Job", "CronJob")]
        if not chosen:
            fail(f"{label}: {name(s)} selects no pod")
            continue
        for port in s["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            for o, t in chosen:
                cports = [p for c in t["spec"]["containers"] for p in c.get("ports", [])]
                if not any(tp in (p.get("name"), p["containerPort"]) for p in cports):
                    fail(f"{label}: {name(s)} port {tp} is not a container port of {name(o)}")

    specific = [p for p in policies if p["spec"]["podSelector"].get("matchLabels")]
    if not any(p["spec"]["podSelector"] == {} and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress") for p in policies):
        fail(f"{label}: no default-deny ingress NetworkPolicy")
    for o, t in pods:
        if o["kind"] in ("Job", "CronJob"):
            continue
        if not any(matches(p["spec"]["podSelector"]["matchLabels"], t["metadata"]["labels"]) for p in specific):
            fail(f"{label}: {name(o)} is covered by no NetworkPolicy of its own")
    ingress_ns = set()
    for p in specific:
        for rule in p["spec"].get("ingress", []):
            for src in rule.get("from", []):
                ns = src.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                if ns and ns != "monitoring":
                    ingress_ns.add(p["metadata"]["name"])
    if ingress_ns - {public}:
        fail(f"{label}: reachable from outside the namespace besides the gateway: {sorted(ingress_ns)}")
    for ing in by_kind.get("Ingress", []):
        for r in ing["spec"]["rules"]:
            for path in r["http"]["paths"]:
                if path["backend"]["service"]["name"] != public:
                    fail(f"{label}: {name(ing)} routes to {path['backend']['service']['name']}")
        if not ing["spec"].get("tls"):
            fail(f"{label}: {name(ing)} has no TLS")
    required = ("ServiceMonitor", "PrometheusRule", "Ingress") + (("StatefulSet",) if aio else ("Job", "CronJob"))
    for kind in required:
        if not by_kind.get(kind):
            fail(f"{label}: no {kind}")
    return by_kind


def check_values(values, rules, by_kind):
    """The base rendering says what the chart's values say."""
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    hpas = {h["metadata"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", [])}
    policies = {p["metadata"]["name"]: p for p in by_kind.get("NetworkPolicy", [])}
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    expected = {f"confab-{n}" for n in values["services"]}
    if values["clamav"]["enabled"]:
        expected.add("confab-clamav")
    if set(deployments) != expected:
        fail(f"values: services {sorted(expected)} but Deployments {sorted(deployments)}")
    for n, svc in values["services"].items():
        d = deployments.get(f"confab-{n}")
        if not d:
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        if [p["containerPort"] for p in c["ports"]] != [values["port"]]:
            fail(f"values: confab-{n} ports {c['ports']} are not [{values['port']}]")
        if c["args"][:3] != ["serve", "--services", n]:
            fail(f"values: confab-{n} runs {c['args']}")
        for kind, key in (("startup", "startupProbe"), ("liveness", "livenessProbe"), ("readiness", "readinessProbe")):
            want, got = values["probes"][kind], c[key]
            if got["httpGet"]["path"] != want["path"] or any(got[k] != want[k] for k in ("periodSeconds", "failureThreshold", "timeoutSeconds")):
                fail(f"values: confab-{n} {key} {got} differs from {want}")
        if c["resources"] != svc["resources"]:
            fail(f"values: confab-{n} resources {c['resources']} differ from {svc['resources']}")
        h = hpas.get(f"confab-{n}", {}).get("spec", {})
        a = svc["autoscaling"]
        if (h.get("minReplicas"), h.get("maxReplicas")) != (a["minReplicas"], a["maxReplicas"]):
            fail(f"values: confab-{n} HPA {h.get('minReplicas')}..{h.get('maxReplicas')} differs")
        pods_metrics = [m["pods"]["metric"]["name"] for m in h.get("metrics", []) if m["type"] == "Pods"]
        if pods_metrics != ([a["podsMetric"]["name"]] if "podsMetric" in a else []):
            fail(f"values: confab-{n} HPA custom metrics {pods_metrics} differ")
        p = policies.get(f"confab-{n}")
        callers = set()
        for rule in (p or {}).get("spec", {}).get("ingress", []):
            for src in rule.get("from", []):
                comp = src.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                if comp:
                    callers.add(comp)
        if callers != set(svc["callers"]):
            fail(f"values: confab-{n} NetworkPolicy admits {sorted(callers)}, values say {sorted(svc['callers'])}")
        # The service's own settings (its ConfigMap, after the shared one) and secrets.
        sources = [e["configMapRef"]["name"] for e in c.get("envFrom", [])]
        want_sources = ["confab-config"] + ([f"confab-{n}-config"] if svc.get("env") else [])
        if sources != want_sources:
            fail(f"values: confab-{n} takes its environment from {sources}, not {want_sources}")
        if svc.get("env") and (configmaps.get(f"confab-{n}-config") or {}).get("data") != {
            k: str(val) for k, val in svc["env"].items()
        }:
            fail(f"values: ConfigMap confab-{n}-config differs from services.{n}.env")
        files = {e["name"]: e.get("value") for e in c.get("env", [])}
        for var, key in dict(values["secretFiles"], **(svc.get("secretFiles") or {})).items():
            if files.get(f"{var}_FILE") != f"/run/secrets/confab/{key}":
                fail(f"values: confab-{n} does not read {var} from the Secret's key {key}")
    clamav = values["clamav"]
    if clamav["enabled"] and "confab-clamav" in deployments:
        d = deployments["confab-clamav"]
        c = d["spec"]["template"]["spec"]["containers"][0]
        if [p["containerPort"] for p in c["ports"]] != [clamav["port"]]:
            fail(f"values: confab-clamav ports {c['ports']} are not [{clamav['port']}]")
        if c["resources"] != clamav["resources"]:
            fail(f"values: confab-clamav resources {c['resources']} differ from {clamav['resources']}")
        if "startupProbe" in c and c["startupProbe"].get("failureThreshold") != clamav["startupProbe"]["failureThreshold"]:
            fail("values: confab-clamav's startup probe differs from clamav.startupProbe")
        admitted = set()
        for rule in policies.get("confab-clamav", {}).get("spec", {}).get("ingress", []):
            if [p.get("port") for p in rule.get("ports", [])] != [clamav["port"]]:
                fail(f"values: confab-clamav NetworkPolicy opens {rule.get('ports')}, not {clamav['port']}")
            for src in rule.get("from", []):
                comp = src.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                admitted.add(comp)
        if admitted != set(clamav["callers"]):
            fail(f"values: confab-clamav NetworkPolicy admits {sorted(admitted)}, values say {sorted(clamav['callers'])}")
    pr = by_kind.get("PrometheusRule", [{}])[0]
    if pr.get("spec", {}).get("groups") != rules["groups"]:
        fail("values: the PrometheusRule differs from deploy/prometheus/rules/confab.rules.yml")


def main():
    values = yaml.safe_load(open(sys.argv[1]))
    rules = yaml.safe_load(open(sys.argv[2]))
    base = sys.argv[3]
    by_kind = check_objects("base", load(base))
    check_values(values, rules, by_kind)
    for path in sys.argv[4:]:
        check_objects(path.rsplit("/", 1)[-1], load(path))
    print(f"manifest invariants: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
