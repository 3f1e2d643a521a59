#!/usr/bin/env bash
# How the llmb CLI is called: --help of llmb and of each command, global
# options before or after the command, LLMB_REDIS_URL and LLMB_PREFIX
# against the flags, and the exit statuses of usage errors (64), an
# unreachable Redis (69) and an unknown job (1).
#
# usage: cli_options.sh PATH_TO_LLMB   (run by ctest with the redis fixture)
source "$(dirname "$0")/cli_lib.sh"

# A port nothing listens on: bind one, note it, let it go.
DOWN_URL="redis://127.0.0.1:$(free_port)"

# --- help ----------------------------------------------------------------
run --help
expect_rc 0
expect_out "Usage: llmb [OPTIONS] COMMAND [ARGS]"
expect_out "Commands:"
for c in stats workers queues jobs show cancel retry purge; do
    grep -Eq "^  $c " <<<"$OUT" || fail "llmb --help does not list $c"
done
run jobs --help
expect_rc 0
expect_out "Usage: llmb jobs [OPTIONS]"
expect_out "--state STATE"
expect_out "--limit N"
expect_out "--[no-]json"
run help show
expect_rc 0
expect_out "Usage: llmb show [OPTIONS] JOB"
expect_out "--tasks N"
run purge -h
expect_rc 0
expect_out "--[no-]yes"
run --version
expect_rc 0
expect_out "llmb "

# --- usage errors: 64, without touching Redis ------------------------------
run
expect_rc 64
expect_err "no command given"
run frobnicate
expect_rc 64
expect_err_is 'llmb: unknown command "frobnicate"; see llmb --help'
run stast
expect_rc 64
expect_err_is 'llmb: unknown command "stast"; did you mean stats? See llmb --help'
run help exprot
expect_rc 64
expect_err_is 'llmb: unknown command "exprot"; did you mean export? See llmb --help'
run show
expect_rc 64
expect_err "missing argument"
run show a b
expect_rc 64
expect_err 'unexpected argument "b"'
run show x --dead
expect_rc 64
expect_err 'unknown option "--dead"; see llmb show --help'
run jobs --limit 0 --redis "$DOWN_URL"
expect_rc 64
expect_err "--limit must be an integer from 1 to 10000"
run jobs --state lost --redis "$DOWN_URL"
expect_rc 64
expect_err_is 'llmb: --state must be pending, running, completed, failed or cancelled, got "lost"'
run queues --queue 'a b' --redis "$DOWN_URL"
expect_rc 64
expect_err "--queue must be a queue name"
run retry --redis "$DOWN_URL"
expect_rc 64
expect_err "retry needs a JOB"
run retry x --dead --redis "$DOWN_URL"
expect_rc 64
expect_err "not both"
run purge --queue q --redis "$DOWN_URL"
expect_rc 64
expect_err "add --yes"
run show 'bad:id'
expect_rc 64
expect_err 'job id "bad:id" must be'

# --- Redis unreachable: 69 ---------------------------------------------------
run stats --redis "$DOWN_URL"
expect_rc 69
expect_err "llmb: cannot connect to redis 127.0.0.1:"
[[ -z $OUT ]] || fail "stdout is not empty"
LLMB_REDIS_URL=$DOWN_URL run queues
expect_rc 69
# A flag beats the environment, before or after the command.
LLMB_REDIS_URL=$DOWN_URL run queues --redis "$URL"
expect_rc 0
LLMB_REDIS_URL=$DOWN_URL run --redis "$URL" queues
expect_rc 0
run --redis 'http://x' stats
expect_rc 64
expect_err "must start with redis://"

# --- global options before or after the command ----------------------------
push default '{"type":"echo","id":"g1"}' >/dev/null
other="$PREFIX:other"   # under $PREFIX, so the cleanup removes it
fcall llmb_push 1 "$other:{default}" '{"type":"echo","id":"g2"}' >/dev/null
rcli SADD "$other:queues" default >/dev/null

run --json show g1
expect_rc 0
check 'd["job"]["id"] == "g1"'
run show --json g1
expect_rc 0
check 'd["job"]["id"] == "g1"'
run show g1 --json
expect_rc 0
check 'd["job"]["id"] == "g1"'
run --prefix "$other" --json show g2
expect_rc 0
check 'd["job"]["id"] == "g2"'
run show g2 --json --prefix "$other"
expect_rc 0
check 'd["job"]["id"] == "g2"'
LLMB_PREFIX=$other run jobs --json
expect_rc 0
check '[j["id"] for j in d["jobs"]] == ["g2"]'
run show g2
expect_rc 1
expect_err_is 'llmb: job "g2" not found'
# "--" ends the options: an id that looks like an option.
run show -- -x
expect_rc 1
expect_err_is 'llmb: job "-x" not found'

echo "$NAME: ok"
