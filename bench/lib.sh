# Shared pieces of the benchmarks: a private redis-server on a free port in
# a temp dir (never the default port), timing, and medians. Sourced by
# bench/run and the per-workload scripts.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${LLMB_BUILD_DIR:=$bench_root/build/release}"

bench_free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "bench: no free port found" >&2
  return 1
}

# Starts redis-server without persistence; sets BENCH_REDIS_PORT,
# BENCH_REDIS_URL and BENCH_TMP. bench_redis_stop undoes it.
bench_redis_start() {
  BENCH_TMP=$(mktemp -d /tmp/llmb-bench.XXXXXX)
  # A port found free can be taken before redis-server binds it: try
  # another one, and show redis's own words when it never comes up.
  local try
  for try in 1 2 3; do
    BENCH_REDIS_PORT=$(bench_free_port)
    redis-server --port "$BENCH_REDIS_PORT" --bind 127.0.0.1 --dir "$BENCH_TMP" \
      --save '' --appendonly no --daemonize yes \
      --pidfile "$BENCH_TMP/redis.pid" --logfile "$BENCH_TMP/redis.log" >/dev/null
    for _ in $(seq 1 200); do
      redis-cli -p "$BENCH_REDIS_PORT" ping >/dev/null 2>&1 && break 2
      sleep 0.05
    done
    echo "bench: redis-server did not start on port $BENCH_REDIS_PORT (try $try):" >&2
    tail -n 5 "$BENCH_TMP/redis.log" >&2 2>/dev/null || true
  done
  BENCH_REDIS_URL="redis://127.0.0.1:$BENCH_REDIS_PORT"
}

bench_redis_stop() {
  if [ -n "${BENCH_REDIS_PORT:-}" ]; then
    redis-cli -p "$BENCH_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    BENCH_REDIS_PORT=
  fi
  [ -n "${BENCH_TMP:-}" ] && rm -rf "$BENCH_TMP"
  BENCH_TMP=
}

bench_rcli() { redis-cli -p "$BENCH_REDIS_PORT" "$@"; }

# bench_lua_bundle SRC: the function library of SRC (a folder of *.lua, or
# git:REV for lua/ at that revision) bundled as the build does (files in
# name order, each ending in a newline), its version raised to 1000000 so
# that the programs keep it loaded instead of their own (lib/functions.c
# keeps a newer library).
bench_lua_bundle() {
  local f
  if [[ $1 == git:* ]]; then
    for f in $(git -C "$bench_root" ls-tree --name-only "${1#git:}" lua/ | grep '\.lua$' | sort); do
      git -C "$bench_root" show "${1#git:}:$f" | sed -e '$a\'
    done
  else
    for f in $(ls "$1"/*.lua | sort); do sed -e '$a\' "$f"; done
  fi | sed 's/^local LLMB_LIB_VERSION = [0-9]*/local LLMB_LIB_VERSION = 1000000/'
}

# Seconds since the epoch with nanoseconds, as a decimal.
bench_now() { date +%s.%N; }

# Median, min and max of numbers on stdin: "median min max".
bench_stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan nan nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}

# Sum of Redis's user and system CPU seconds (INFO cpu: main thread and
# background threads).
bench_redis_cpu() {
  bench_rcli info cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f\n", s }'
}

bench_used_memory() {
  bench_rcli info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'
}

# Reads INFO commandstats and prints "scripts total": the calls of
# FCALL/EVALSHA/EVAL (each one client command that runs a script) and the
# calls of every command, those run inside scripts included. INFO and
# CONFIG (the runner's own) are left out.
bench_cmdstats() {
  bench_rcli info commandstats | tr -d '\r' | awk -F'[:,=]' '
    /^cmdstat_/ {
      name = substr($1, 9); calls = $3
      if (name ~ /^(info|config)/) next
      if (name ~ /^(fcall|fcall_ro|evalsha|evalsha_ro|eval|eval_ro)$/) s += calls
      t += calls
    }
    END { printf "%d %d\n", s, t }'
}

# The top commands of INFO commandstats, "name calls" per line, most first.
bench_cmdtop() {
  bench_rcli info commandstats | tr -d '\r' | awk -F'[:,=]' '
    /^cmdstat_/ { name = substr($1, 9); if (name !~ /^(info|config)/) print name, $3 }' |
    sort -k2,2nr
}

# Resident set size of a process in KiB (0 when it is gone); a second
# argument names another field of /proc/PID/status (RssAnon: the private,
# non-file memory, without the pages of shared libraries).
bench_rss_kb() {
  awk -v f="${2:-VmRSS}:" '$1 == f { print $2; ok = 1 } END { if (!ok) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# Percentiles p50 p90 p99 max of the numbers on stdin (nearest rank).
bench_pcts() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan nan nan nan"; exit }
    n = split("50 90 99", p, " ")
    for (i = 1; i <= n; i++) { r = int((p[i] * NR + 99) / 100); if (r < 1) r = 1; printf "%s ", v[r] }
    printf "%s\n", v[NR] }'
}

# Stops the processes given by pid with SIGTERM, waits up to 15 s, then
# SIGKILL. Only the pids given.
bench_stop_pids() {
  local p
  [ $# -eq 0 ] && return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 150); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# CPU time (user + system) of the given processes, in clock ticks
# (getconf CLK_TCK per second); a process that is gone counts 0.
bench_cpu_ticks() {
  local p t=0 x
  for p in "$@"; do
    x=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || x=0
    t=$(( t + ${x:-0} ))
  done
  echo "$t"
}
