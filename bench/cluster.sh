#!/usr/bin/env bash
# W2 on a Redis Cluster: the drain rate of N noop jobs queued in 6 queues
# whose slots lie on 1, 2 or 3 primaries of a 3-primary cluster (no
# replicas), with one llmb-worker process and with two serving the 6
# queues, against the same on a single server (redis://). Rate as in
# bench/run W2: N / (newest event of the queues - first job started),
# both Redis TIME. Redis CPU per job: used_cpu_user + used_cpu_sys of
# every server over the drain, divided by N. Prints a markdown table of
# medians (min-max) and writes it to bench/results/cluster-<time>.md.
#
#   bench/cluster.sh [--jobs N] [--reps N] [--quick]
#
# LLMB_BUILD_DIR picks the build whose binaries run (default
# build/release). docs/performance.md, Redis Cluster, has the figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
jobs=50000 reps=3 quick=0
while [ $# -gt 0 ]; do
    case "$1" in
    --jobs) jobs=$2; shift ;;
    --reps) reps=$2; shift ;;
    --quick) quick=1; jobs=3000; reps=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/cluster.sh: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done
build=${LLMB_BUILD_DIR:-$root/build/release}
push="$build/tools/push/llmb-push"
worker="$build/worker/llmb-worker"
[ -x "$worker" ] || { echo "bench/cluster.sh: no llmb-worker in $build" >&2; exit 1; }
log() { echo "bench/cluster: $*" >&2; }

tmp=$(mktemp -d)
wpids=()
cleanup() {
    for p in "${wpids[@]}"; do kill "$p" 2>/dev/null || true; done
    LLMB_CLUSTER_REPLICAS=0 "$root/tests/support/redis-cluster.sh" stop \
        "$tmp/cluster" >/dev/null 2>&1 || true
    "$root/tests/support/redis-fixture.sh" stop "$tmp/single" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

LLMB_CLUSTER_REPLICAS=0 "$root/tests/support/redis-cluster.sh" start "$tmp/cluster" >/dev/null
"$root/tests/support/redis-fixture.sh" start "$tmp/single" >/dev/null
cluster_url=$(cat "$tmp/cluster/cluster.url")
mapfile -t cports <"$tmp/cluster/ports"
sport=$(cat "$tmp/single/redis.port")
single_url="redis://127.0.0.1:$sport"

# The primary (port) that owns queue $1's slot.
owner() {
    local s
    s=$(redis-cli -p "${cports[0]}" CLUSTER KEYSLOT "{$1}")
    redis-cli -p "${cports[0]}" CLUSTER SHARDS | awk -v s="$s" '
        /^slots$/ {getline a; getline b; lo=a; hi=b}
        /^port$/ {getline p}
        /^role$/ {getline r; if (r == "master" && s >= lo && s <= hi) {print p; exit}}'
}
# Queue names: 6 per layout, round robin over the first $1 primaries.
declare -A byport
for i in $(seq 0 400); do
    p=$(owner "c$i")
    byport[$p]="${byport[$p]:-} c$i"
done
layout() { # n primaries -> 6 queue names, comma separated
    local n=$1 k out=() p
    for k in 0 1 2 3 4 5; do
        p=${cports[$((k % n))]}
        read -r -a names <<<"${byport[$p]}"
        out+=("${names[$((k / n))]}")
    done
    (IFS=,; echo "${out[*]}")
}

# Sum of used CPU seconds of the servers on ports $@.
cpu_of() {
    local p t=0
    for p in "$@"; do
        t=$(redis-cli -p "$p" INFO cpu | awk -F: -v t="$t" \
            '/^used_cpu_(user|sys):/ {t += $2} END {printf "%.6f", t}')
    done
    echo "$t"
}

# One drain: url, ports of its servers (comma list), queues, workers.
# Prints "rate cpu_us_per_job".
drain() {
    local url=$1 ports=${2//,/ } queues=$3 nw=$4 prefix="bc$RANDOM$RANDOM"
    local -a qs
    IFS=, read -r -a qs <<<"$queues"
    local per=$(( jobs / ${#qs[@]} )) q k c0 c1 i start=0 end=0 ms left
    for q in "${qs[@]}"; do
        for k in $(seq 0 $((per - 1))); do
            printf '{"type":"noop","queue":"%s","id":"j%d"}\n' "$q" "$k"
        done
    done >"$tmp/jobs.ndjson"
    LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_LOG_LEVEL=error \
        "$push" --batch --no-journal --batch-size 250 --pipeline 64 \
        "$tmp/jobs.ndjson" >/dev/null
    c0=$(cpu_of $ports)
    wpids=()
    for k in $(seq "$nw"); do
        LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_LOG_LEVEL=error \
            "$worker" --queues "$queues" --handler noop=noop \
            --capacity 64 --id "bc-$prefix-$k" 2>/dev/null &
        wpids+=($!)
    done
    for i in $(seq 6000); do
        left=0
        for q in "${qs[@]}"; do
            n=$(redis-cli -c -p "${ports%% *}" HGET "$prefix:{$q}:counts" ok)
            left=$((left + per - ${n:-0}))
        done
        [ "$left" -le 0 ] && break
        sleep 0.05
    done
    c1=$(cpu_of $ports)
    for p in "${wpids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${wpids[@]}"; do wait "$p" 2>/dev/null || true; done
    wpids=()
    for q in "${qs[@]}"; do
        ms=$(redis-cli -c -p "${ports%% *}" FCALL_RO llmb_job 1 "$prefix:{$q}" j0 started_ms)
        if [ "$start" = 0 ] || [ "$ms" -lt "$start" ]; then start=$ms; fi
        ms=$(redis-cli -c -p "${ports%% *}" XREVRANGE "$prefix:{$q}:events" + - COUNT 1 |
             head -n 1 | cut -d- -f1)
        [ "$ms" -gt "$end" ] && end=$ms
    done
    for p in $ports; do
        redis-cli -p "$p" --scan --pattern "$prefix:*" |
            xargs -r -n 500 redis-cli -p "$p" unlink >/dev/null
    done
    awk -v n="$jobs" -v per="$per" -v q="${#qs[@]}" -v s="$start" -v e="$end" \
        -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" \
        'BEGIN {t = per * q; printf "%.0f %.1f\n", t / ((e - s) / 1000), c * 1e6 / t}'
}

median() { sort -n | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s (%s-%s)", m, v[1], v[NR]}'; }

out="$tmp/table.md"
{
    echo "| layout | workers | jobs/s | Redis CPU per job (µs, all servers) |"
    echo "| --- | --- | --- | --- |"
} >"$out"
cluster_ports=$(IFS=,; echo "${cports[*]:0:3}")
for nw in 1 2; do
    for layout_n in single 1 2 3; do
        rates=() cpus=()
        for r in $(seq "$reps"); do
            if [ "$layout_n" = single ]; then
                res=$(drain "$single_url" "$sport" "$(layout 1)" "$nw")
            else
                res=$(drain "$cluster_url" "$cluster_ports" "$(layout "$layout_n")" "$nw")
            fi
            log "$layout_n nw=$nw rep $r: $res"
            rates+=("${res% *}")
            cpus+=("${res#* }")
        done
        name=$([ "$layout_n" = single ] && echo "one server (redis://)" ||
               echo "cluster, queues on $layout_n primar$([ "$layout_n" = 1 ] && echo y || echo ies)")
        echo "| $name | $nw | $(printf '%s\n' "${rates[@]}" | median) | $(printf '%s\n' "${cpus[@]}" | median) |" >>"$out"
    done
done
cat "$out"
if [ "$quick" = 0 ]; then
    mkdir -p "$here/results"
    f="$here/results/cluster-$(date -u +%Y%m%dT%H%M%SZ).md"
    {
        echo "# bench/cluster.sh --jobs $jobs --reps $reps"
        echo
        echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(git -C "$root" rev-parse --short HEAD)"
        echo
        cat "$out"
    } >"$f"
    log "written to $f"
fi
