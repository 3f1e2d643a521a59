#!/usr/bin/env bash
# The container files must say what docs/operations.md says they do.
#   compose.yaml: a valid Compose file (`docker-compose config -q`, as no
#     Docker engine runs here), with the services and profiles the docs
#     name; every llmb service under an init, stopped with more grace than
#     a worker's 30 s, and probed with `llmb health` (no curl in the image).
#   deploy/k8s/llmb.yaml: parses (PyYAML), pinned image tags, /healthz in
#     readiness and only --live in liveness, the securityContext, and
#     Prometheus annotations.
# Skips when neither docker-compose nor PyYAML is there.
set -euo pipefail
cd "$LLMB_SOURCE_DIR"
have_yaml=0
python3 -c 'import yaml' 2>/dev/null && have_yaml=1
if ! command -v docker-compose >/dev/null && (( ! have_yaml )); then
    echo "SKIP: neither docker-compose nor python3-yaml is installed (scripts/deps installs them when it can)" >&2
    exit 77
fi

if command -v docker-compose >/dev/null; then
    docker-compose -f compose.yaml config -q
    services=$(docker-compose -f compose.yaml --profile sample --profile llm config --services | sort | tr '\n' ' ')
    want="coordinator llm-sample llm-worker mock-llm redis sample web worker "
    [ "$services" = "$want" ] || { echo "FAIL: services: $services" >&2; exit 1; }
    # (docker-compose 1.29 lists every service whatever --profile says;
    # the profiles are checked below.)
    config=$(docker-compose -f compose.yaml --profile sample --profile llm config)
    grep -q 'replicas: 3' <<<"$config" || { echo "FAIL: 3 worker replicas" >&2; exit 1; }
    echo "compose.yaml is valid: $services"
else
    echo "docker-compose is not installed: compose.yaml is only parsed" >&2
    config=$(cat compose.yaml)
fi

if (( ! have_yaml )); then
    echo "python3-yaml is not installed: the structure checks are skipped" >&2
    exit 0
fi
python3 - "$config" <<'PY'
import re, sys, yaml

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(v))
    if not m or not any(m.groups()):
        fail("cannot read duration %r" % v)
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)

# --- compose.yaml ---------------------------------------------------------
c = yaml.safe_load(sys.argv[1])
svcs = c["services"]
llmb = [n for n, s in svcs.items() if str(s.get("image", "")).startswith("llmb:")]
if sorted(llmb) != ["coordinator", "llm-sample", "llm-worker", "sample", "web", "worker"]:
    fail("llmb services: %s" % llmb)
for n in llmb:
    s = svcs[n]
    if s["image"].endswith(":latest"):
        fail("%s: image %s" % (n, s["image"]))
    if s.get("init") is not True:
        fail("%s: no init: true" % n)
    if seconds(s.get("stop_grace_period", "10s")) <= 30:
        fail("%s: stop_grace_period %s is not longer than the worker's 30 s" % (n, s.get("stop_grace_period")))
for n in ["coordinator", "worker", "llm-worker", "mock-llm", "redis"]:
    test = svcs[n].get("healthcheck", {}).get("test", [])
    # a string is CMD-SHELL; the worker's is one, for podman-compose 1.0.3
    test = test if isinstance(test, str) else " ".join(test)
    if not test:
        fail("%s: no healthcheck" % n)
    if "curl" in test or "wget" in test:
        fail("%s: the healthcheck needs %s" % (n, test))
    if n in ("coordinator", "worker", "llm-worker") and "llmb health" not in test:
        fail("%s: healthcheck is not llmb health: %s" % (n, test))
if "--coordinator" not in " ".join(svcs["coordinator"]["healthcheck"]["test"]):
    fail("coordinator healthcheck does not read /healthz")
# the web UI: published on the host's loopback only, actions behind a token
web = svcs["web"]
ports = web.get("ports") or []
if not ports or not all(p.get("host_ip") == "127.0.0.1" if isinstance(p, dict)
                        else str(p).startswith("127.0.0.1:") for p in ports):
    fail("web: ports %r are not the host's 127.0.0.1 only" % ports)
if "--token-env LLMB_WEB_TOKEN" not in " ".join(web["command"]) or \
        "LLMB_WEB_TOKEN" not in web.get("environment", {}):
    fail("web: no --token-env LLMB_WEB_TOKEN")
if "llmb health" not in " ".join(web.get("healthcheck", {}).get("test", [])):
    fail("web: healthcheck is not llmb health")
for n in ["mock-llm", "llm-worker", "llm-sample"]:
    if svcs[n].get("profiles") != ["llm"]:
        fail("%s: not in the llm profile" % n)
env = svcs["llm-worker"]["environment"]
if "llm=llm" not in str(env.get("LLMB_HANDLERS")) or "mock-llm" not in str(env.get("LLMB_LLM_ENDPOINTS")):
    fail("llm-worker: no llm handler on the mock: %s" % env)

# --- deploy/k8s/llmb.yaml -------------------------------------------------
docs = [d for d in yaml.safe_load_all(open("deploy/k8s/llmb.yaml")) if d]
kinds = sorted("%s/%s" % (d["kind"], d["metadata"]["name"]) for d in docs)
if kinds != ["Deployment/llmb-coordinator", "Deployment/llmb-worker", "Service/llmb-metrics"]:
    fail("k8s objects: %s" % kinds)
deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
for name, d in deps.items():
    pod = d["spec"]["template"]["spec"]
    if pod["securityContext"].get("runAsNonRoot") is not True:
        fail("%s: runAsNonRoot" % name)
    mounts = set()
    for ctr in pod["containers"]:
        img = ctr["image"]
        if ":" not in img or img.endswith(":latest"):
            fail("%s: image %s is not pinned" % (name, img))
        if ctr.get("imagePullPolicy") != "IfNotPresent":
            fail("%s: imagePullPolicy %s" % (name, ctr.get("imagePullPolicy")))
        sc = ctr.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False or \
           sc.get("readOnlyRootFilesystem") is not True or \
           sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail("%s: container securityContext %s" % (name, sc))
        ready = " ".join(ctr["readinessProbe"]["exec"]["command"])
        live = " ".join(ctr["livenessProbe"]["exec"]["command"])
        if "llmb health" not in ready or "--live" in ready:
            fail("%s: readiness %s" % (name, ready))
        if "llmb health" not in live or "--live" not in live:
            fail("%s: liveness must be llmb health --live: %s" % (name, live))
        for p in (ctr["readinessProbe"], ctr["livenessProbe"]):
            if p.get("timeoutSeconds", 1) < 3:
                fail("%s: probe timeout %s < llmb health's 3 s" % (name, p.get("timeoutSeconds")))
        mounts |= {m["name"] for m in ctr.get("volumeMounts", [])}
    vols = {v["name"] for v in pod.get("volumes", [])}
    if mounts - vols:
        fail("%s: mounts without volumes: %s" % (name, mounts - vols))
co = deps["llmb-coordinator"]["spec"]["template"]
if co["metadata"].get("annotations", {}).get("prometheus.io/scrape") != "true":
    fail("coordinator: no prometheus.io/scrape annotation")
ctr = co["spec"]["containers"][0]
if "--coordinator" not in ctr["readinessProbe"]["exec"]["command"]:
    fail("coordinator: readiness does not read /healthz")
w = deps["llmb-worker"]["spec"]["template"]["spec"]
if "--worker" not in " ".join(w["containers"][0]["readinessProbe"]["exec"]["command"]):
    fail("worker: readiness does not check its record")
if w.get("terminationGracePeriodSeconds", 30) <= 30:
    fail("worker: terminationGracePeriodSeconds not above LLMB_GRACE 30")
if {"HOME", "TMPDIR"} - {e["name"] for e in w["containers"][0]["env"]}:
    fail("worker: HOME and TMPDIR must point at writable volumes")
print("compose.yaml and deploy/k8s/llmb.yaml hold what the docs say")
PY
