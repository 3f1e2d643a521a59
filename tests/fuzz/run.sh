#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a bounded time, starting
# from the seed corpus in tests/fuzz/corpus/<target>/ (never written to;
# new inputs go to a scratch directory that is removed afterwards).
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   default 20 s
#
# A crash leaves its input in BUILD_DIR/fuzz-artifacts/<target>/ and makes
# the script exit 1 after the other targets have run. To keep a crash as a
# regression seed, copy it into corpus/<target>/ with the fix.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-20}
targets=(fuzz_job fuzz_aggregate fuzz_url fuzz_config fuzz_exec_output fuzz_llm_chunk)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${targets[@]}"; do
    bin="$build/tests/fuzz/$t"
    if [[ ! -x $bin ]]; then
        echo "fuzz: $t: not built ($bin)" >&2
        status=1
        continue
    fi
    mkdir -p "$scratch/$t" "$build/fuzz-artifacts/$t"
    t0=$(date +%s)
    if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
        -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$t/" \
        "$scratch/$t" "$here/corpus/$t" > "$scratch/$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
        echo "fuzz: $t: ok, ${runs:-?} runs in $(( $(date +%s) - t0 ))s"
    else
        echo "fuzz: $t: FAILED, see below; input kept in $build/fuzz-artifacts/$t/" >&2
        tail -n 60 "$scratch/$t.log" >&2
        status=1
    fi
done
exit $status
