#!/usr/bin/env bash
# A private Sentinel deployment for the tests: one primary, one replica
# and three sentinels on loopback, no persistence, everything in one
# directory. A new replica syncs at once (repl-diskless-sync-delay 0, not
# Redis's 5 s).
#
#   redis-sentinel.sh start DIR   start the primary and the replica
#                                 (redis-server) and three sentinels
#                                 (redis-sentinel, quorum 2) on free ports in
#                                 20000-31999 (never 6379 or 26379); wait
#                                 until the replica is in sync and every
#                                 sentinel knows both; write DIR/sentinel.url
#                                 (redis+sentinel://127.0.0.1:S1,...,/llmbtest),
#                                 DIR/primary.port, DIR/replica.port and
#                                 DIR/sentinels (one port a line)
#   redis-sentinel.sh stop DIR    stop every process, remove DIR
#   redis-sentinel.sh primary DIR print the port the sentinels name now
#   redis-sentinel.sh promoted DIR OLDPORT [SECONDS]
#                                 wait (SECONDS, 60 by default, at most)
#                                 until the sentinels name a primary other
#                                 than OLDPORT and it says ROLE master;
#                                 print its port (on a timeout, the
#                                 sentinels' last failover lines go to
#                                 stderr)
#   redis-sentinel.sh rejoin DIR OLDPORT
#                                 start the server of OLDPORT again (after a
#                                 kill: it comes back empty) as a replica of
#                                 the primary the sentinels name, and wait
#                                 (60 s at most) until it is in sync
#
# Environment: LLMB_REDIS_SERVER, LLMB_REDIS_CLI, LLMB_REDIS_SENTINEL
# override the programs; LLMB_SENTINEL_DOWN_MS (default 1000) is
# down-after-milliseconds, how long the primary may be silent before the
# sentinels fail over; LLMB_SENTINEL_FAILOVER_MS (default 4000) is
# failover-timeout (another failover of the same primary may start twice
# that long after one). The primary's name is "llmbtest".
set -euo pipefail

REDIS_SERVER=${LLMB_REDIS_SERVER:-redis-server}
REDIS_CLI=${LLMB_REDIS_CLI:-redis-cli}
REDIS_SENTINEL=${LLMB_REDIS_SENTINEL:-redis-sentinel}
DOWN_MS=${LLMB_SENTINEL_DOWN_MS:-1000}
FAILOVER_MS=${LLMB_SENTINEL_FAILOVER_MS:-4000}
NAME=llmbtest

usage() {
    echo "usage: $0 start|stop|primary DIR | promoted DIR OLDPORT [SECONDS] | rejoin DIR OLDPORT" >&2
    exit 64
}

[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
[[ -n $dir && $dir != / ]] || usage

. "$(dirname "${BASH_SOURCE[0]}")/redis-lib.sh"

# Stops the process of directory $1 (pidfile, port) and waits until gone.
stop_proc() {
    stop_server_files "$1/pid" "$1/port"
}

stop_all() {
    local nd
    [[ -d $dir ]] || return 0
    for nd in "$dir"/sentinel-* "$dir"/redis-*; do
        if [[ -d $nd ]]; then stop_proc "$nd"; fi
    done
}

free_port() {
    local port try
    for try in $(seq 100); do
        port=$(( 20000 + RANDOM % 12000 ))
        [[ $port -eq 6379 || $port -eq 26379 ]] && continue
        port_in_use "$port" && continue
        [[ -e $dir/redis-$port || -e $dir/sentinel-$port ]] && continue
        echo "$port"
        return 0
    done
    echo "no free port found" >&2
    return 1
}

# Waits until the process of directory $1 answers PING as pid from pidfile.
wait_up() {
    local nd=$1 port i
    port=$(cat "$nd/port")
    for i in $(seq 100); do
        if [[ -s $nd/pid ]] && cli "$port" PING 2>/dev/null | grep -q PONG; then
            return 0
        fi
        sleep 0.1
    done
    echo "the process in $nd did not start; its log:" >&2
    tail -n 20 "$nd/log" >&2 || true
    return 1
}

# Starts a redis-server in $dir/redis-PORT (extra arguments follow);
# prints the port.
start_redis() {
    local port nd
    port=$(free_port) || return 1
    nd="$dir/redis-$port"
    mkdir -p "$nd"
    echo "$port" >"$nd/port"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$nd" \
        --save '' --appendonly no --daemonize yes --pidfile "$nd/pid" \
        --logfile "$nd/log" --repl-diskless-sync-delay 0 "$@" \
        >/dev/null 2>&1 || return 1
    wait_up "$nd" >&2 || return 1
    echo "$port"
}

# Starts a sentinel watching the primary on port $1; prints its port.
start_sentinel() {
    local primary=$1 port nd
    port=$(free_port) || return 1
    nd="$dir/sentinel-$port"
    mkdir -p "$nd"
    echo "$port" >"$nd/port"
    cat >"$nd/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $nd/pid
logfile $nd/log
dir $nd
sentinel monitor $NAME 127.0.0.1 $primary 2
sentinel down-after-milliseconds $NAME $DOWN_MS
sentinel failover-timeout $NAME $FAILOVER_MS
sentinel parallel-syncs $NAME 1
EOF
    "$REDIS_SENTINEL" "$nd/sentinel.conf" >/dev/null 2>&1 || return 1
    wait_up "$nd" >&2 || return 1
    echo "$port"
}

# The port the sentinels name for the primary now (asking each in turn).
named_primary() {
    local s addr
    while read -r s; do
        addr=$(cli "$s" SENTINEL get-master-addr-by-name "$NAME" 2>/dev/null |
               sed -n 2p) || continue
        if [[ -n $addr ]]; then
            echo "$addr"
            return 0
        fi
    done <"$dir/sentinels"
    return 1
}

start() {
    local primary replica s i url ok
    local -a sentinels=()

    if [[ -d $dir ]]; then
        stop_all
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    primary=$(start_redis) || { stop_all; return 1; }
    replica=$(start_redis --replicaof 127.0.0.1 "$primary") ||
        { stop_all; return 1; }
    echo "$primary" >"$dir/primary.port"
    echo "$replica" >"$dir/replica.port"
    for i in $(seq 100); do
        cli "$replica" INFO replication | tr -d '\r' |
            grep -qx 'master_link_status:up' && break
        sleep 0.1
    done
    for i in 1 2 3; do
        s=$(start_sentinel "$primary") || { stop_all; return 1; }
        sentinels+=("$s")
    done
    printf '%s\n' "${sentinels[@]}" >"$dir/sentinels"
    # Every sentinel must know the replica and the other sentinels before
    # a failover can elect a leader and promote.
    for i in $(seq 300); do
        ok=1
        for s in "${sentinels[@]}"; do
            local info
            info=$(cli "$s" SENTINEL master "$NAME" 2>/dev/null | tr -d '\r') || { ok=0; break; }
            grep -A1 -x 'num-slaves' <<<"$info" | tail -n 1 | grep -qx 1 || ok=0
            grep -A1 -x 'num-other-sentinels' <<<"$info" | tail -n 1 | grep -qx 2 || ok=0
        done
        (( ok )) && break
        sleep 0.1
    done
    if (( ! ok )); then
        echo "the sentinels in $dir did not find each other and the replica in 30 s" >&2
        stop_all
        return 1
    fi
    url="redis+sentinel://"
    for i in "${!sentinels[@]}"; do
        (( i > 0 )) && url+=","
        url+="127.0.0.1:${sentinels[$i]}"
    done
    url+="/$NAME"
    echo "$url" >"$dir/sentinel.url"
    echo "sentinel deployment in $dir: primary $primary, replica $replica, sentinels ${sentinels[*]}"
}

promoted() {
    local old=$1 secs=${2:-60} port i
    for i in $(seq $(( secs * 10 ))); do
        port=$(named_primary) || port=""
        if [[ -n $port && $port != "$old" ]] &&
            cli "$port" ROLE 2>/dev/null | head -n 1 | grep -qx master; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "the sentinels in $dir named no new primary in $secs s" >&2
    grep -h -e failover -e selected-slave -e promoted "$dir"/sentinel-*/log \
        2>/dev/null | tail -n 12 >&2 || true
    return 1
}

rejoin() {
    local old=$1 nd="$dir/redis-$1" primary i
    primary=$(named_primary) || { echo "the sentinels name no primary" >&2; return 1; }
    "$REDIS_SERVER" --port "$old" --bind 127.0.0.1 --dir "$nd" \
        --save '' --appendonly no --daemonize yes --pidfile "$nd/pid" \
        --logfile "$nd/log" --repl-diskless-sync-delay 0 \
        --replicaof 127.0.0.1 "$primary" >/dev/null 2>&1
    wait_up "$nd" || return 1
    for i in $(seq 600); do
        cli "$old" INFO replication | tr -d '\r' |
            grep -qx 'master_link_status:up' && return 0
        sleep 0.1
    done
    echo "the server of port $old did not get in sync with $primary in 60 s" >&2
    return 1
}

case $cmd in
start)
    start
    ;;
stop)
    stop_all
    rm -rf "$dir"
    echo "sentinel deployment in $dir stopped"
    ;;
primary)
    named_primary
    ;;
promoted)
    [[ $# -eq 3 || $# -eq 4 ]] || usage
    [[ $# -eq 3 || $4 =~ ^[1-9][0-9]{0,3}$ ]] || usage
    promoted "$3" "${4:-60}"
    ;;
rejoin)
    [[ $# -eq 3 ]] || usage
    dir=$(cd "$dir" && pwd)
    rejoin "$3"
    ;;
*)
    usage
    ;;
esac
