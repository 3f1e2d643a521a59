#!/usr/bin/env bash
# The Dockerfile builds an image that runs. Docker Hub is not reachable in
# CI, so the base image (the Dockerfile's BASE) is made from Debian's
# archive: `debootstrap --variant=minbase` of this machine's release,
# imported with `FROM scratch` + ADD, then the Dockerfile is built with
# `buildah bud --isolation chroot` and the image is run with `buildah run`:
# llmb-worker --version, the user, HOME, the HEALTHCHECK and EXPOSE, and
# `llmb health` failing cleanly on an unreachable Redis (the runtime
# libraries load).
#
# Skips (77) when not root, without buildah and debootstrap (scripts/deps
# installs them), or when deb.debian.org cannot be reached.
# Everything lives in build/image-test of the source tree (shared by the
# presets' build dirs; LLMB_IMAGE_TEST_DIR moves it): the debootstrap
# tarball and buildah's storage are kept, so a rerun reuses the base.
# The storage driver is overlay where this kernel mounts it (a layer holds
# only its changes), else vfs (a full copy of the tree per layer);
# LLMB_IMAGE_STORAGE_DRIVER=overlay|vfs chooses, and each driver has its
# own storage (storage-overlay, storage-vfs). After a build only the base
# and the tagged images are kept (dangling images are removed), so the
# storage does not grow with reruns. The test skips when the disk has less
# free than a cold build takes (LLMB_IMAGE_TEST_MIN_FREE_MB; 2,500 MB with
# overlay, 4,000 MB with vfs; the peaks measured were 1.4 and 2.3 GB).
# buildah's temporary files go to build/image-test/tmp. LLMB_IMAGE_TEST_FRESH=1 starts from
# nothing; LLMB_SKIP_IMAGE_TEST=1 skips the test. Cold, it takes about
# 1.5 minutes on 2 cores with overlay (debootstrap 35 s, the build 40 s).
set -euo pipefail

NAME=image_build
skip() { echo "SKIP ($NAME): $*" >&2; exit 77; }
fail() { echo "FAIL ($NAME): $*" >&2; exit 1; }
say() { echo "==> $NAME: $* ($(( SECONDS ))s)" >&2; }

src=${LLMB_SOURCE_DIR:?run under ctest}
work=${LLMB_IMAGE_TEST_DIR:-$src/build/image-test}
[[ ${LLMB_SKIP_IMAGE_TEST:-0} == 1 ]] && skip "LLMB_SKIP_IMAGE_TEST=1"
[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, buildah with chroot isolation)"
os=$(. /etc/os-release && echo "${ID:-unknown} ${VERSION_CODENAME:-}")
release=${os#* }
[[ ${os%% *} == debian && -n $release ]] || skip "needs a Debian host (found $os)"
mirror=http://deb.debian.org/debian
timeout 10 bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' 2>/dev/null ||
    skip "deb.debian.org:80 cannot be reached (no network)"

need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
(( ${#need[@]} == 0 )) ||
    skip "${need[*]} not installed (scripts/deps installs them, as root)"

[[ ${LLMB_IMAGE_TEST_FRESH:-0} == 1 ]] && rm -rf "$work"
mkdir -p "$work"
# One run at a time per storage (the ci and asan suites may overlap).
exec 9>"$work.lock"
flock -w 600 9 || fail "$work is locked by another run"

# The storage driver: overlay if a test mount of it works here.
overlay_mounts() {
    local p=$work/overlay-probe rc=1
    rm -rf "$p" && mkdir -p "$p"/{l,u,w,m} || return 1
    if mount -t overlay overlay \
            -o "lowerdir=$p/l,upperdir=$p/u,workdir=$p/w" "$p/m" 2>/dev/null; then
        umount "$p/m" && rc=0
    fi
    rm -rf "$p"
    return $rc
}
driver=${LLMB_IMAGE_STORAGE_DRIVER:-}
if [[ -z $driver ]]; then
    driver=vfs
    overlay_mounts && driver=overlay
fi
[[ $driver == overlay || $driver == vfs ]] ||
    fail "LLMB_IMAGE_STORAGE_DRIVER=$driver: overlay or vfs"
# The one storage of earlier versions (vfs, build/image-test/storage) goes.
rm -rf "$work/storage" "$work/run"
# compose_up.sh reads which storage holds the image.
echo "$driver" > "$work/storage-driver"
min_mb=${LLMB_IMAGE_TEST_MIN_FREE_MB:-}
[[ -n $min_mb ]] || { [[ $driver == overlay ]] && min_mb=2500 || min_mb=4000; }
free_mb=$(( $(df -Pk "$work" | awk 'NR == 2 { print $4 }') / 1024 ))
(( free_mb >= min_mb )) ||
    skip "$free_mb MB free in $work; a build with the $driver driver takes about $min_mb MB"
say "storage driver $driver ($free_mb MB free)"
rm -rf "$work/tmp" && mkdir -p "$work/tmp"
export TMPDIR=$work/tmp
bah() {
    buildah --root "$work/storage-$driver" --runroot "$work/run-$driver" \
        --storage-driver "$driver" "$@"
}
ctr=""
trap '[[ -n $ctr ]] && bah rm "$ctr" >/dev/null 2>&1 || true' EXIT

# 1. The base: debootstrap once, kept as a tarball.
tarball=$work/base-$release-minbase.tar
if [[ ! -s $tarball ]]; then
    say "debootstrap --variant=minbase $release (once; kept in $tarball)"
    rm -rf "$work/rootfs"
    timeout 600 debootstrap --variant=minbase "$release" "$work/rootfs" \
        "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
    tar -C "$work/rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work/rootfs"
fi
base=localhost/llmb-test-base:$release
if ! bah inspect --type image "$base" >/dev/null 2>&1; then
    say "importing the base image $base"
    mkdir -p "$work/base-ctx"
    ln -f "$tarball" "$work/base-ctx/rootfs.tar"
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' > "$work/base-ctx/Dockerfile"
    bah bud --isolation chroot -q -t "$base" "$work/base-ctx" >/dev/null ||
        fail "importing the base image"
fi

# 2. The image, from the repository's Dockerfile.
say "buildah bud --isolation chroot (the Dockerfile, BASE=$base)"
image=localhost/llmb:image-test
# Docker format: OCI image configs have no HEALTHCHECK.
if ! bah bud --isolation chroot --format docker --layers --pull-never \
        --build-arg "BASE=$base" -t "$image" -f "$src/Dockerfile" "$src" \
        >"$work/bud.log" 2>&1; then
    tail -n 30 "$work/bud.log" >&2
    fail "buildah bud failed (log: $work/bud.log)"
fi

# Only the base and the tagged images stay: the build stage and the
# images that earlier builds left untagged go.
bah rmi --prune >/dev/null 2>&1 || true

# 3. Its configuration.
config=$(bah inspect --type image "$image")
python3 - "$config" <<'EOF' || fail "image configuration (buildah inspect)"
import json, sys
c = json.loads(sys.argv[1])["Docker"]["config"]
assert c.get("User") == "llmb", c.get("User")
assert "9464/tcp" in (c.get("ExposedPorts") or {}), c.get("ExposedPorts")
hc = (c.get("Healthcheck") or {}).get("Test") or []
assert hc[:3] == ["CMD", "llmb", "health"], hc
assert "HOME=/home/llmb" in c.get("Env", []), c.get("Env")
assert c.get("Cmd") == ["llmb-worker"], c.get("Cmd")
EOF

# 4. It runs.
say "buildah run: llmb-worker --version"
ctr=$(bah from --pull-never "$image")
out=$(bah run --isolation chroot "$ctr" -- llmb-worker --version 2>&1) ||
    fail "llmb-worker --version in the image: $out"
grep -q "llmb-worker" <<<"$out" || fail "llmb-worker --version printed: $out"
echo "$out"
out=$(bah run --isolation chroot "$ctr" -- sh -c \
    'id -un; echo "$HOME"; test -d "$HOME" && test -w "$HOME" && echo writable') ||
    fail "user and HOME in the image: $out"
[[ $out == $'llmb\n/home/llmb\nwritable' ]] || fail "user, HOME: $out"
rc=0
out=$(bah run --isolation chroot "$ctr" -- llmb health \
    --redis redis://127.0.0.1:1 --timeout-ms 500 2>&1) || rc=$?
[[ $rc -eq 1 ]] && grep -q "unhealthy: redis: cannot connect" <<<"$out" ||
    fail "llmb health in the image exited $rc: $out"
for b in llmb-coordinator llmb-push llmb; do
    bah run --isolation chroot "$ctr" -- "$b" --version >/dev/null ||
        fail "$b --version in the image"
done
say "ok: the image builds and runs"
