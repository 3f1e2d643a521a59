# Shared pieces of the benchmarks: a private redis-server on a free port in
# a temp dir (never the default port), timing, and medians. Sourced by
# bench/run and the per-workload scripts.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${LLMB_BUILD_DIR:=$bench_root/build/release}"

bench_free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
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
  BENCH_REDIS_PORT=$(bench_free_port)
  redis-server --port "$BENCH_REDIS_PORT" --bind 127.0.0.1 --dir "$BENCH_TMP" \
    --save '' --appendonly no --daemonize yes \
    --pidfile "$BENCH_TMP/redis.pid" --logfile "$BENCH_TMP/redis.log" >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$BENCH_REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.05
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

# Seconds since the epoch with nanoseconds, as a decimal.
bench_now() { date +%s.%N; }

# Median, min and max of numbers on stdin: "median min max".
bench_stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan nan nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}
