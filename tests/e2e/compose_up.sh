#!/usr/bin/env bash
# compose.yaml runs: `podman-compose up` of redis, the coordinator and the
# three worker replicas, on the image that tests/e2e/image_build.sh built
# (ctest runs that first), then a job pushed from inside the coordinator's
# container completes on the workers, the workers are registered under
# their container hostnames, and the health checks of compose.yaml pass
# (`podman healthcheck run`: no systemd here to run them on a timer).
#
# What it takes, all Debian packages (scripts/deps installs them): podman,
# podman-compose, runc, netavark and aardvark-dns (service names resolve
# between containers), catatonit (init: true). The storage is
# image_build.sh's (build/image-test, with the driver it chose: overlay or
# vfs). Docker Hub cannot be reached, so redis:7 is a stand-in built from the same debootstrap base: Debian's
# redis-server, started without protected mode as the official image is.
# podman-compose 1.0.3 knows no profiles, so the services are named.
#
# In this sandbox crun refuses the hybrid cgroup hierarchy and setrlimit to
# the host's limits is refused, so podman runs runc with the cgroupfs
# manager and lower ulimits (a containers.conf of the test's own).
#
# Skips (77) when not root, when the packages are not installed, when
# image_build.sh has not built the image, when port 9464 is taken, or
# with LLMB_SKIP_IMAGE_TEST=1.
set -euo pipefail

NAME=compose_up
skip() { echo "SKIP ($NAME): $*" >&2; exit 77; }
fail() {
    echo "FAIL ($NAME): $*" >&2
    [[ -n ${project:-} ]] && for c in redis_1 coordinator_1 worker_1; do
        echo "--- $c" >&2
        timeout 20 podman logs --tail 20 "${project}_$c" >&2 2>&1 || true
    done
    exit 1
}
say() { echo "==> $NAME: $* ($(( SECONDS ))s)" >&2; }

src=${LLMB_SOURCE_DIR:?run under ctest}
work=${LLMB_IMAGE_TEST_DIR:-$src/build/image-test}
[[ ${LLMB_SKIP_IMAGE_TEST:-0} == 1 ]] && skip "LLMB_SKIP_IMAGE_TEST=1"
[[ $(id -u) -eq 0 ]] || skip "needs root (podman with runc)"
driver=$(cat "$work/storage-driver" 2>/dev/null) && [[ -d $work/storage-$driver ]] ||
    skip "no image storage in $work: run e2e_image_build first"
work=$(cd "$work" && pwd) # absolute: podman keeps the paths it is given

need=()
command -v podman >/dev/null || need+=(podman)
command -v podman-compose >/dev/null || need+=(podman-compose)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/podman/netavark ]] || need+=(netavark)
[[ -x /usr/lib/podman/aardvark-dns ]] || need+=(aardvark-dns)
[[ -x /usr/libexec/podman/catatonit ]] || need+=(catatonit)
(( ${#need[@]} == 0 )) ||
    skip "${need[*]} not installed (scripts/deps installs them, as root)"

exec 9>"$work.lock"
flock -w 600 9 || fail "$work is locked by another run"
conf=$work/podman
mkdir -p "$conf"
cat > "$conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
cat > "$conf/storage.conf" <<EOF
[storage]
driver = "$driver"
graphroot = "$work/storage-$driver"
runroot = "$work/run-$driver"
EOF
export CONTAINERS_CONF=$conf/containers.conf CONTAINERS_STORAGE_CONF=$conf/storage.conf
mkdir -p "$work/tmp"
export TMPDIR=$work/tmp # podman's temporary files, beside its storage
cd "$work"

podman image exists localhost/llmb:image-test ||
    skip "no image localhost/llmb:image-test: run e2e_image_build first"
podman tag localhost/llmb:image-test localhost/llmb:0.1
release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if ! podman image exists docker.io/library/redis:7; then
    podman image exists "localhost/llmb-test-base:$release" ||
        skip "no base image localhost/llmb-test-base:$release"
    say "building a redis:7 stand-in from the debootstrap base"
    ctx=$conf/redis
    mkdir -p "$ctx"
    cat > "$ctx/entry.sh" <<'EOF'
#!/bin/sh
# as the official image: no protected mode when started without a config
if [ "$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "$@"; fi
exec "$@"
EOF
    chmod +x "$ctx/entry.sh"
    cat > "$ctx/Dockerfile" <<EOF
FROM localhost/llmb-test-base:$release
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
COPY entry.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
    timeout 300 podman build --isolation chroot --pull-never -q \
        -t docker.io/library/redis:7 "$ctx" >"$conf/redis-build.log" 2>&1 ||
        skip "cannot build the redis stand-in (deb.debian.org? see $conf/redis-build.log)"
fi

# compose.yaml publishes the coordinator's 9464 on the host
if timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464' 2>/dev/null; then
    skip "port 9464, which compose.yaml publishes, is in use"
fi
project=llmbct$$
compose() {
    timeout 300 podman-compose -f "$src/compose.yaml" -p "$project" "$@"
}
cleanup() {
    compose down -v >"$conf/down.log" 2>&1 || true
    podman network rm "${project}_default" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "podman-compose up -d redis coordinator worker"
compose up -d redis coordinator worker >"$conf/up.log" 2>&1 ||
    { tail -n 30 "$conf/up.log" >&2; fail "podman-compose up failed"; }
for c in redis_1 coordinator_1 worker_1 worker_2 worker_3; do
    [[ $(podman inspect -f '{{.State.Running}}' "${project}_$c" 2>/dev/null) == true ]] ||
        { tail -n 30 "$conf/up.log" >&2; fail "${project}_$c is not running"; }
done

coord=${project}_coordinator_1
ok=0
for _ in $(seq 120); do
    if podman exec "$coord" llmb health --coordinator http://127.0.0.1:9464 \
            >/dev/null 2>&1; then
        ok=1
        break
    fi
    sleep 0.5
done
(( ok )) || fail "the coordinator never became healthy: $(podman exec "$coord" \
    llmb health --coordinator http://127.0.0.1:9464 2>&1 || true)"
for _ in $(seq 120); do
    n=$(podman exec "$coord" llmb workers --json 2>/dev/null |
        python3 -c 'import json,sys; print(sum(w["state"] != "dead" for w in json.load(sys.stdin)["workers"]))' \
        2>/dev/null || echo 0)
    [[ $n == 3 ]] && break
    sleep 0.5
done
[[ $n == 3 ]] || fail "$n live workers, not the 3 replicas"
hosts=$(for i in 1 2 3; do podman exec "${project}_worker_$i" hostname; done | sort)
ids=$(podman exec "$coord" llmb workers --json |
      python3 -c 'import json,sys; print("\n".join(sorted(w["id"] for w in json.load(sys.stdin)["workers"])))')
[[ $hosts == "$ids" ]] || fail "worker ids are not their hostnames: $ids vs $hosts"

say "a job pushed in the coordinator's container"
out=$(podman exec "$coord" llmb-push --wait --wait-timeout 60 --tasks 6 \
      --id compose-job echo '{"n":1}' 2>"$conf/push.err") ||
    fail "llmb-push --wait exited $?: $(cat "$conf/push.err")"
python3 - "$out" <<'EOF' || fail "the job: $out"
import json, sys
job = json.loads(sys.argv[1])
assert job["state"] == "completed", job["state"]
assert job["aggregate"]["ok"] == 6, job["aggregate"]
EOF

# compose.yaml's health checks pass, each within its retries (3; a busy
# machine can make one exceed its 5 s timeout)
for c in redis_1 coordinator_1 worker_1 worker_2 worker_3; do
    ok=0
    for _ in 1 2 3; do
        if podman healthcheck run "${project}_$c" >/dev/null 2>&1; then
            ok=1
            break
        fi
    done
    (( ok )) || fail "the health check of $c fails: $(podman inspect -f \
        '{{json .State.Health}}' "${project}_$c" 2>&1 || true)"
done
say "ok: compose.yaml runs under podman-compose"
