#!/usr/bin/env bash
# `llmb stats` and `llmb queues` when the stats of one queue cannot be
# read: a queue key of the wrong type (llmb_stats names it in wrong_keys)
# and an llmb_stats that Redis refuses (an ACL user that may not touch the
# queue's keys). The error goes to stderr with the queue's name, the other
# queues are shown as usual, the broken one with "-" (unknown, not 0), and
# the exit status is 1. The JUNK column shows only when a queue has junk.
# A queue with tasks pending that no live worker serves gets a note.
#
# usage: cli_stats_errors.sh PATH_TO_LLMB   (run by ctest with the redis fixture)
source "$(dirname "$0")/cli_lib.sh"

run queues # loads the function library
expect_rc 0
push good '{"type":"echo","id":"g1","tasks":2}' >/dev/null
run stats
expect_rc 0
grep -q JUNK <<<"$OUT" && fail "a JUNK column without junk"

# A key llmb did not write: the queue's numbers cannot be trusted.
rcli SADD "$PREFIX:queues" bad >/dev/null
rcli SET "$PREFIX:{bad}:pz" x >/dev/null
run stats
expect_rc 1
expect_err "llmb: queue bad: keys of the wrong type, counted as empty: $PREFIX:{bad}:pz (written by something else than llmb: rename or delete them; docs/data-model.md)"
expect_err "llmb: the stats of 1 queue could not be read: bad"
# every number of the row unknown: 8 counts and the head age
grep -Eq '^bad( +-){9}$' <<<"$OUT" || fail "no row of dashes for queue bad"
grep -Eq '^good +2 +0 +0 ' <<<"$OUT" || fail "queue good is not shown"
grep -Eq '^\(total\) +2 ' <<<"$OUT" || fail "the total is not that of good"
expect_out "workers   0"
run stats --json
expect_rc 1
check '[q["name"] for q in d["queues"]] == ["bad", "good"]'
check '"keys of the wrong type" in d["queues"][0]["error"] and "pending" not in d["queues"][0]'
check 'd["queues"][1]["pending"] == 2 and d["totals"]["pending"] == 2'
run queues
expect_rc 1
expect_err "llmb: queue bad: keys of the wrong type"
grep -Eq '^bad( +-){6}$' <<<"$OUT" || fail "no row of dashes for queue bad"
grep -Eq '^good +2 ' <<<"$OUT" || fail "queue good is not shown"
run stats --queue good
expect_rc 0
rcli DEL "$PREFIX:{bad}:pz" >/dev/null
run stats
expect_rc 0

# Redis refuses llmb_stats for queue bad: its error, the rest shown.
user="$PREFIX-reader"
trap 'rcli ACL DELUSER "$user" >/dev/null 2>&1 || true; cleanup' EXIT
rcli ACL SETUSER "$user" on '>pw' resetkeys "~$PREFIX:queues" \
    "~$PREFIX:workers" "~$PREFIX:worker:*" "~$PREFIX:metrics" \
    "~$PREFIX:{good}*" +@all >/dev/null
LLMB_REDIS_URL=${URL/:\/\//://$user:pw@} run stats
expect_rc 1
expect_err "llmb: queue bad: llmb_stats failed: NOPERM"
grep -Eq '^good +2 ' <<<"$OUT" || fail "queue good is not shown"
grep -Eq '^bad +- ' <<<"$OUT" || fail "no row of dashes for queue bad"

# Junk: a JUNK column, for the queue that has some and in the total.
rcli HINCRBY "$PREFIX:{good}:counts" junk 4 >/dev/null
run stats
expect_rc 0
grep -Eq '^QUEUE .* JUNK +HEAD AGE$' <<<"$OUT" || fail "no JUNK column"
grep -Eq '^good( +[0-9]+){8} +4 ' <<<"$OUT" || fail "queue good shows no junk 4"
run stats --json
check 'd["queues"][1]["junk"] == 4 and d["totals"]["junk"] == 4'

# Work no live worker serves: a note under the table, "unserved" in --json;
# gone once a live worker advertises types in the queue's <base>:types.
push orphan '{"type":"echo","id":"o1"}' >/dev/null
run stats
grep -q '^note: queue orphan: 1 tasks pending and no live worker serves the queue$' <<<"$OUT" ||
  fail "no note for queue orphan: $OUT"
run stats --json
check '"orphan" in d["unserved"] and "good" in d["unserved"]'
rcli HSET "$PREFIX:{orphan}:types" echo 99999999999999 >/dev/null
run stats --json
check '"orphan" not in d["unserved"]'
echo "ok: llmb stats and queues show what they can read and say what they cannot"
