#!/usr/bin/env bash
# A private Redis Cluster for the tests: 3 primaries and 3 replicas on
# loopback, no persistence, everything in one directory.
#
#   redis-cluster.sh start DIR   start six redis-server processes
#                                (--cluster-enabled yes) on free ports in
#                                20000-31999 (never 6379), join them with
#                                redis-cli --cluster create --cluster-replicas 1,
#                                wait until every node says cluster_state:ok
#                                and agrees on the slots; write DIR/cluster.url
#                                (redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...),
#                                DIR/ports (one port a line, the three primaries
#                                first) and DIR/node-PORT/ for each node
#   redis-cluster.sh stop DIR    SHUTDOWN NOSAVE every node, kill by pidfile if
#                                need be, remove DIR
#   redis-cluster.sh wait DIR    wait until every live node says
#                                cluster_state:ok (after a failover)
#
# Environment: LLMB_REDIS_SERVER, LLMB_REDIS_CLI override the programs;
# LLMB_CLUSTER_NODE_TIMEOUT (ms, default 2000) is cluster-node-timeout,
# how long a primary may be silent before its replica takes over;
# LLMB_CLUSTER_REPLICAS=0 starts the 3 primaries alone (benchmarks).
set -euo pipefail

REDIS_SERVER=${LLMB_REDIS_SERVER:-redis-server}
REDIS_CLI=${LLMB_REDIS_CLI:-redis-cli}
NODE_TIMEOUT=${LLMB_CLUSTER_NODE_TIMEOUT:-2000}
REPLICAS=${LLMB_CLUSTER_REPLICAS:-1}
[[ $REPLICAS == 0 || $REPLICAS == 1 ]] || { echo "LLMB_CLUSTER_REPLICAS is 0 or 1" >&2; exit 64; }
NODES=$(( 3 * (1 + REPLICAS) ))

usage() {
    echo "usage: $0 start|stop|wait DIR" >&2
    exit 64
}

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
[[ -n $dir && $dir != / ]] || usage

. "$(dirname "${BASH_SOURCE[0]}")/redis-lib.sh"

# Stops the node in directory $1 and waits until it is gone.
stop_node() {
    stop_server_files "$1/redis.pid" "$1/port"
}

stop_all() {
    local nd
    [[ -d $dir ]] || return 0
    for nd in "$dir"/node-*; do
        [[ -d $nd ]] && stop_node "$nd"
    done
}

# Starts one node on a free port in directory $dir/node-PORT; prints the
# port. Tries other ports when one is taken.
start_node() {
    local try port nd pid i
    for try in $(seq 30); do
        port=$(( 20000 + RANDOM % 12000 ))
        [[ $port -eq 6379 ]] && continue
        # The cluster bus listens on port + 10000: keep it below 42000.
        port_in_use "$port" && continue
        port_in_use $(( port + 10000 )) && continue
        nd="$dir/node-$port"
        [[ -e $nd ]] && continue
        mkdir -p "$nd"
        echo "$port" >"$nd/port"
        "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 \
            --dir "$nd" --save '' --appendonly no \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout "$NODE_TIMEOUT" \
            --daemonize yes --pidfile "$nd/redis.pid" \
            --logfile "$nd/redis.log" --enable-debug-command local \
            >/dev/null 2>&1 || { rm -rf "$nd"; continue; }
        for i in $(seq 100); do
            if [[ -s $nd/redis.pid ]]; then
                pid=$(cat "$nd/redis.pid")
                if cli "$port" INFO server 2>/dev/null | tr -d '\r' |
                    grep -qx "process_id:$pid"; then
                    echo "$port"
                    return 0
                fi
                pid_alive "$pid" || break
            fi
            sleep 0.1
        done
        [[ -s $nd/redis.pid ]] && kill -KILL "$(cat "$nd/redis.pid")" 2>/dev/null || true
        rm -rf "$nd"
    done
    echo "could not start a cluster node in $dir" >&2
    return 1
}

# True when every live node of the cluster says cluster_state:ok and lists
# all 16384 slots as assigned.
all_ok() {
    local nd port info
    for nd in "$dir"/node-*; do
        port=$(cat "$nd/port")
        pid_alive "$(cat "$nd/redis.pid" 2>/dev/null || true)" || continue
        info=$(cli "$port" CLUSTER INFO 2>/dev/null | tr -d '\r') || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
    done
    return 0
}

wait_ok() {
    local i
    for i in $(seq 600); do
        all_ok && return 0
        sleep 0.1
    done
    echo "the cluster in $dir did not reach cluster_state:ok in 60 s" >&2
    return 1
}

start() {
    local -a ports=() addrs=() primaries=() replicas=()
    local i port role url

    if [[ -d $dir ]]; then
        stop_all
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    for i in $(seq $NODES); do
        port=$(start_node) || { stop_all; return 1; }
        ports+=("$port")
        addrs+=("127.0.0.1:$port")
    done
    if ! timeout 60 "$REDIS_CLI" --cluster create "${addrs[@]}" \
        --cluster-replicas "$REPLICAS" --cluster-yes >"$dir/create.log" 2>&1; then
        echo "redis-cli --cluster create failed:" >&2
        tail -n 20 "$dir/create.log" >&2
        stop_all
        return 1
    fi
    wait_ok || { stop_all; return 1; }
    # Every replica must have finished its first sync, so that a test that
    # kills a primary finds a replica ready to take over.
    for i in $(seq 600); do
        local synced=1
        for port in "${ports[@]}"; do
            role=$(cli "$port" ROLE 2>/dev/null | head -n 1)
            if [[ $role == slave ]]; then
                cli "$port" INFO replication | tr -d '\r' |
                    grep -qx 'master_link_status:up' || synced=0
            fi
        done
        (( synced )) && break
        sleep 0.1
    done
    for port in "${ports[@]}"; do
        role=$(cli "$port" ROLE | head -n 1)
        if [[ $role == master ]]; then
            primaries+=("$port")
        else
            replicas+=("$port")
        fi
    done
    printf '%s\n' "${primaries[@]}" "${replicas[@]}" >"$dir/ports"
    url="redis+cluster://"
    for i in "${!primaries[@]}"; do
        (( i > 0 )) && url+=","
        url+="127.0.0.1:${primaries[$i]}"
    done
    echo "$url" >"$dir/cluster.url"
    echo "redis cluster in $dir: primaries ${primaries[*]}, replicas ${replicas[*]}"
}

case $cmd in
start)
    start
    ;;
stop)
    stop_all
    rm -rf "$dir"
    echo "redis cluster in $dir stopped"
    ;;
wait)
    dir=$(cd "$dir" && pwd)
    wait_ok
    ;;
*)
    usage
    ;;
esac
