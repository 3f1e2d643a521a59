#!/usr/bin/env bash
# The private redis-server of the test suite, run as the ctest fixture
# "redis" (tests redis_start and redis_stop).
#
#   redis-fixture.sh start DIR   start a server on a free loopback port
#                                (20000-31999, below the ephemeral range, never 6379), no persistence,
#                                data, pidfile and log in DIR; wait for PING;
#                                write DIR/redis.url (redis://127.0.0.1:PORT),
#                                DIR/redis.port and, when the path is short
#                                enough, DIR/redis.unix (unix:///DIR/redis.sock)
#   redis-fixture.sh stop DIR    SHUTDOWN NOSAVE, kill by pidfile if need be,
#                                remove DIR
#
# Environment: LLMB_REDIS_SERVER, LLMB_REDIS_CLI override the programs.
set -euo pipefail

REDIS_SERVER=${LLMB_REDIS_SERVER:-redis-server}
REDIS_CLI=${LLMB_REDIS_CLI:-redis-cli}

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 64
}

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
[[ -n $dir && $dir != / ]] || usage

. "$(dirname "${BASH_SOURCE[0]}")/redis-lib.sh"

# Stops the server described by $dir, if any, and waits until it is gone.
stop_server() {
    stop_server_files "$dir/redis.pid" "$dir/redis.port"
}

# Prints the pid the server on port $1 reports, or nothing.
server_pid() {
    timeout 2 "$REDIS_CLI" -p "$1" INFO server 2>/dev/null |
        tr -d '\r' | sed -n 's/^process_id://p'
}

start() {
    local try port sock pid i
    local -a unix_args=()

    if [[ -d $dir ]]; then
        stop_server
        rm -rf "$dir"
    fi
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    sock="$dir/redis.sock"
    # sun_path holds 108 bytes; skip the socket rather than fail.
    if (( ${#sock} < 100 )); then
        unix_args=(--unixsocket "$sock" --unixsocketperm 700)
    fi

    for try in $(seq 30); do
        port=$(( 20000 + RANDOM % 12000 ))
        [[ $port -eq 6379 ]] && continue
        port_in_use "$port" && continue

        rm -f "$dir/redis.pid"
        "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 -::1 \
            --dir "$dir/data" --save '' --appendonly no \
            --daemonize yes --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" --enable-debug-command local \
            "${unix_args[@]}" >/dev/null 2>&1 || continue

        for i in $(seq 100); do
            if [[ -s $dir/redis.pid ]]; then
                pid=$(cat "$dir/redis.pid")
                if [[ $(server_pid "$port") == "$pid" ]]; then
                    echo "redis://127.0.0.1:$port" >"$dir/redis.url"
                    echo "$port" >"$dir/redis.port"
                    if (( ${#unix_args[@]} )); then
                        echo "unix://$sock" >"$dir/redis.unix"
                    fi
                    echo "redis-server pid $pid listening on 127.0.0.1:$port"
                    return 0
                fi
                pid_alive "$pid" || break
            fi
            sleep 0.1
        done
        # Lost a race for the port, or the server did not come up: clean up
        # and try another port.
        [[ -s $dir/redis.pid ]] && kill -KILL "$(cat "$dir/redis.pid")" 2>/dev/null || true
    done
    echo "could not start redis-server in $dir; log:" >&2
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    return 1
}

case $cmd in
start)
    start
    ;;
stop)
    if [[ -d $dir ]]; then
        stop_server
        rm -rf "$dir"
    fi
    echo "redis-server in $dir stopped"
    ;;
*)
    usage
    ;;
esac
