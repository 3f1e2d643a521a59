# Shell functions shared by the scripts that start and stop the test
# servers (redis-fixture.sh, redis-cluster.sh, redis-sentinel.sh), which
# source this file after setting REDIS_CLI.

# True when something listens on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when $1 is the pid of a live process.
pid_alive() {
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null
}

# redis-cli on 127.0.0.1:$1 with the rest of the arguments, for at most 5 s.
cli() {
    local port=$1
    shift
    timeout 5 "$REDIS_CLI" -p "$port" "$@"
}

# Stops the server whose pid is in the file $1 and port in the file $2,
# and waits until it is gone: SHUTDOWN NOSAVE (NOW where the server knows
# it), then SIGTERM after 2 s, SIGKILL after 5 s. SHUTDOWN is sent only
# while the pid is alive: the port may belong to another server by now.
stop_server_files() {
    local pid="" port="" i
    [[ -f $1 ]] && pid=$(cat "$1" 2>/dev/null || true)
    [[ -f $2 ]] && port=$(cat "$2" 2>/dev/null || true)
    if pid_alive "$pid" && [[ -n $port ]]; then
        cli "$port" SHUTDOWN NOSAVE NOW >/dev/null 2>&1 ||
            cli "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    fi
    if pid_alive "$pid"; then
        for i in $(seq 50); do
            pid_alive "$pid" || break
            sleep 0.1
            [[ $i -eq 20 ]] && kill -TERM "$pid" 2>/dev/null || true
        done
        if pid_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.1
        fi
    fi
}
