# llmb as a system of bench/run: the built binaries against the private
# redis-server, queue "bench" under prefix "bench" (base key bench:{bench}).
# Sourced by bench/run after lib.sh; every function takes the same
# arguments as its peer counterpart in peers/peers.sh.

LLMB_BASE='bench:{bench}'
LLMB_CAPACITY=${LLMB_CAPACITY:-1000}

llmb_bin() { echo "$LLMB_BUILD_DIR/$1"; }

# Writes N job documents of ~100-byte payloads to FILE.
llmb_docs() {
  awk -v n="$1" -v type="${3:-noop}" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"type\":\"%s\",\"payload\":{\"prompt\":\"benchmark request %08d\",\"max_tokens\":128,\"temperature\":0.5,\"seed\":%d}}\n", type, i, i }' > "$2"
}

llmb_push() {
  "$(llmb_bin tools/push/llmb-push)" --redis "$BENCH_REDIS_URL" --prefix bench \
    --queue bench --log-level warn "$@"
}

# enqueue N bulk|single: prints the seconds taken.
llmb_enqueue() {
  local docs="$BENCH_TMP/llmb-docs.$1" t0 t1
  llmb_docs "$1" "$docs"
  local args=(--batch)
  [ "$2" = single ] && args=(--batch --batch-size 1 --pipeline 1)
  t0=$(bench_now)
  llmb_push "${args[@]}" "$docs" > "$BENCH_TMP/ids"
  t1=$(bench_now)
  [ "$(wc -l < "$BENCH_TMP/ids")" -eq "$1" ] || { echo "llmb: pushed $(wc -l < "$BENCH_TMP/ids") of $1" >&2; return 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

# fill N [TYPE]: N pending single-task jobs.
llmb_fill() {
  local docs="$BENCH_TMP/llmb-fill"
  llmb_docs "$1" "$docs" "${2:-noop}"
  llmb_push --batch --batch-size 250 "$docs" > /dev/null
  rm -f "$docs"
}

# Marks where a drain starts: the tasks done so far and the job at the
# head of the queue (its started_ms is the drain's first start). Given K,
# it marks instead the jobs K/10 and K places from the head: with one
# worker the queue is claimed in order (up to one claim batch), and the
# rate between their finished_ms leaves out the head, where tasks a
# stopped worker released (claimed, so started, earlier) go back.
llmb_mark() {
  LLMB_OK0=$(bench_rcli hget "$LLMB_BASE:counts" ok); LLMB_OK0=${LLMB_OK0:-0}
  local ref
  ref=$(bench_rcli lindex "$LLMB_BASE:pl" 0)
  LLMB_HEAD=${ref%:*}
  LLMB_K=${1:-0} LLMB_K1ST="" LLMB_KTH=""
  if [ "$LLMB_K" -gt 0 ]; then
    ref=$(bench_rcli lindex "$LLMB_BASE:pl" $(( LLMB_K / 10 - 1 )))
    LLMB_K1ST=${ref%:*}
    ref=$(bench_rcli lindex "$LLMB_BASE:pl" $(( LLMB_K - 1 )))
    LLMB_KTH=${ref%:*}
  fi
}

# worker MODE: starts one llmb-worker; its pid in LAST_PID.
llmb_worker() {
  local args=(--capacity "$LLMB_CAPACITY")
  case "$1" in
    stamp) args+=(--handler "stamp=plugin:$BENCH_TMP/stamp.so $BENCH_STATDIR/llmb.lat") ;;
    exec) args=(--capacity "${LLMB_EXEC_CAPACITY:-8}" --handler 'true=exec:/bin/true') ;;
    idle) args=(--capacity 1) ;;
  esac
  "$(llmb_bin worker/llmb-worker)" --redis "$BENCH_REDIS_URL" --prefix bench \
    --queues bench --log-level warn "${args[@]}" > /dev/null 2>> "$BENCH_TMP/llmb-worker.log" &
  LAST_PID=$!
}

llmb_coordinator() {
  "$(llmb_bin coordinator/llmb-coordinator)" --redis "$BENCH_REDIS_URL" --prefix bench \
    --log-level warn > /dev/null 2>> "$BENCH_TMP/llmb-coordinator.log" &
  LAST_PID=$!
}

# Ready once its registry hash exists.
llmb_ready() {
  [ "$(bench_rcli zcard bench:workers)" -ge "${1:-1}" ]
}

# progress: "count first_us last_us" since llmb_mark. The runner polls the
# count alone (one HGET, subtracted from the command counts); with "full",
# first and last come too: the head job's started_ms and the newest event
# of the queue's stream (every call that ends jobs adds one), or with K the
# finished_ms of the jobs K/10 and K places from the head (count then the
# 9K/10 jobs between them). Times are Redis TIME, in ms.
llmb_progress() {
  local ok first=0 last=0 s
  ok=$(bench_rcli hget "$LLMB_BASE:counts" ok); ok=${ok:-0}
  ok=$(( ok - LLMB_OK0 ))
  if [ "${1:-}" = full ]; then
    if [ -n "$LLMB_KTH" ]; then
      s=$(bench_rcli fcall_ro llmb_job 1 "$LLMB_BASE" "$LLMB_K1ST" finished_ms)
      [ -n "$s" ] && first=$(( s * 1000 ))
      s=$(bench_rcli fcall_ro llmb_job 1 "$LLMB_BASE" "$LLMB_KTH" finished_ms)
      [ -n "$s" ] && { last=$(( s * 1000 )); ok=$(( LLMB_K - LLMB_K / 10 )); }
    else
      s=$(bench_rcli fcall_ro llmb_job 1 "$LLMB_BASE" "$LLMB_HEAD" started_ms)
      [ -n "$s" ] && first=$(( s * 1000 ))
      last=$(bench_rcli xrevrange "$LLMB_BASE:events" + - count 1 | head -1 | cut -d- -f1)
      last=$(( ${last:-0} * 1000 ))
    fi
  fi
  echo "$ok $first $last"
}

llmb_pace() {
  "$BENCH_TMP/pace" 127.0.0.1 "$BENCH_REDIS_PORT" "$LLMB_BASE" stamp "$1" "$2"
}

# Builds the W3 probe (stamp.so) and pusher (pace) into BENCH_TMP.
llmb_build_probes() {
  cc -O2 -shared -fPIC -I"$bench_root/include" -o "$BENCH_TMP/stamp.so" \
    "$bench_root/bench/llmb/stamp.c" &&
  cc -O2 -o "$BENCH_TMP/pace" "$bench_root/bench/llmb/pace.c" -lhiredis
}
