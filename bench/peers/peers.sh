# The peers of bench/run: BullMQ, bee-queue (Node.js, npm packages installed
# on demand into bench/.peers/), RQ, Celery (Debian python3-rq,
# python3-celery) and Sidekiq (Debian ruby-sidekiq). Each has a harness
# bench/peers/<system>/driver.* with the same subcommands (enqueue, fill,
# work, pace) and a README giving its settings. Workers report progress in
# files under BENCH_STATDIR, never through Redis. Sourced by bench/run.

PEERS_ALL="bullmq bee-queue rq celery sidekiq"
PEERS_NODE_DIR="$bench_root/bench/.peers"
PEERS_PY=/usr/bin/python3
export NODE_PATH="$PEERS_NODE_DIR/node_modules"

peer_cmd() {
  local d="$bench_root/bench/peers/$1"
  case "$1" in
    bullmq|bee-queue) echo "node $d/driver.js" ;;
    rq|celery) echo "$PEERS_PY $d/driver.py" ;;
    sidekiq) echo "ruby $d/driver.rb" ;;
  esac
}

peer_apt() {
  [ "$(id -u)" -eq 0 ] || return 1
  command -v apt-get >/dev/null || return 1
  echo "bench/run: installing $* (Debian)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; }
}

# Makes the peer runnable if it can (installing on demand); otherwise prints
# why not and fails.
peer_setup() {
  case "$1" in
    bullmq|bee-queue)
      command -v node >/dev/null && command -v npm >/dev/null ||
        peer_apt nodejs npm || { echo "node/npm not installed"; return 1; }
      if [ ! -d "$PEERS_NODE_DIR/node_modules/$1" ] ||
         { [ "$1" = bullmq ] && [ ! -d "$PEERS_NODE_DIR/node_modules/ioredis" ]; }; then
        mkdir -p "$PEERS_NODE_DIR"
        echo "bench/run: npm install bullmq ioredis bee-queue into bench/.peers" >&2
        (cd "$PEERS_NODE_DIR" && npm install --no-audit --no-fund --prefix . \
           bullmq ioredis bee-queue >/dev/null 2>&1) ||
          { echo "npm install failed"; return 1; }
      fi ;;
    rq) "$PEERS_PY" -c 'import rq' 2>/dev/null || peer_apt python3-rq ||
          { echo "python3-rq not installed"; return 1; } ;;
    celery) "$PEERS_PY" -c 'import celery' 2>/dev/null || peer_apt python3-celery ||
          { echo "python3-celery not installed"; return 1; } ;;
    sidekiq) command -v sidekiq >/dev/null || peer_apt ruby-sidekiq ||
          { echo "ruby-sidekiq not installed"; return 1; } ;;
  esac
  # A smoke test: push one job. A peer that cannot is reported, not run.
  local out
  if ! out=$($(peer_cmd "$1") enqueue 1 single 2>&1); then
    echo "harness failed: $(echo "$out" | tail -1 | cut -c1-120)"
    return 1
  fi
}

peer_enqueue() { local s=$1; shift; $(peer_cmd "$s") enqueue "$@"; }
peer_fill() { local s=$1; shift; $(peer_cmd "$s") fill "$1" bulk > /dev/null; }
peer_pace() { local s=$1; shift; $(peer_cmd "$s") pace "$@"; }

# worker SYSTEM MODE: one worker process; its pid in LAST_PID. MODE keep
# runs it with the peer's default retention of finished jobs.
peer_worker() {
  local retain=none
  [ "$2" = keep ] && retain=default
  BENCH_RETAIN=$retain $(peer_cmd "$1") work > /dev/null 2>> "$BENCH_TMP/$1-worker.log" &
  LAST_PID=$!
}

# Ready once the worker wrote its first progress file.
peer_ready() {
  local n
  n=$(ls "$BENCH_STATDIR"/*.stat 2>/dev/null | wc -l)
  [ "$n" -ge "${1:-1}" ]
}

peer_progress() {
  cat "$BENCH_STATDIR"/*.stat 2>/dev/null | awk '
    { c += $1; if ($2 > 0 && (f == 0 || $2 < f)) f = $2; if ($3 > l) l = $3 }
    END { printf "%.0f %.0f %.0f\n", c, f, l }'
}
