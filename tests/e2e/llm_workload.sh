#!/usr/bin/env bash
# Workloads of llm jobs (docs/llm.md "Workloads") through real llmb-push,
# llmb-worker and llmb-coordinator processes against the mock LLM server,
# whose --log-requests file says what each request asked for:
#   - a dataset (prompts, chat messages, ShareGPT) pushed with llmb-push
#     --dataset is stored under the job, each task sends exactly its part,
#     max_tokens from the reference output, and retention deletes it;
#   - the limits: bad files store nothing, sizes at both ends of the caps
#     and around the chunk of one call, the redis-cli path (llmb_dataset
#     then llmb_push);
#   - synthetic prompts follow their distributions, the same seed gives
#     the same prompts, bounds are checked at push on both paths;
#   - warm-up requests send prompts of their own: none of the measured
#     requests' (synthetic), the part's last entries (dataset).
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 1 --itl-ms 1 --log-requests "$tmp/requests.jsonl"
log=$tmp/requests.jsonl
common=(--redis "$url" --prefix "$prefix")
b="$prefix:{default}"
for i in 1 2; do
    "$bin/worker/llmb-worker" "${common[@]}" --log-level debug --id "w$i" \
        --capacity 2 --heartbeat-ms 200 \
        --llm-endpoint "mock=http://127.0.0.1:$port" 2>"$tmp/worker$i.log" &
    pids+=($!)
done
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    --retention-s 2 2>"$tmp/coordinator.log" &
pids+=($!)

push() { # llmb-push ARGS...; output in $tmp/push.out and push.err
    "$bin/tools/push/llmb-push" "${common[@]}" --no-journal --no-progress \
        "$@" > "$tmp/push.out" 2>"$tmp/push.log"
}
run() { # llmb-push --wait ARGS...: the job must complete
    : > "$log"
    push --wait --wait-timeout 60 "$@" || fail "llmb-push $* exited $?"
}
refused() { # MESSAGE ARGS...: llmb-push exits non-zero saying MESSAGE
    local want=$1
    shift
    if push "$@"; then fail "llmb-push $* was accepted"; fi
    grep -qF -- "$want" "$tmp/push.log" ||
        fail "llmb-push $*: wanted \"$want\", got: $(cat "$tmp/push.log")"
}
nothing_stored() { # job id: no job, no dataset, no upload
    local k
    [ "$(rcli HEXISTS "$b:jd" "$1")" = 0 ] || fail "job $1 has a record in $b:jd"
    for k in "j:$1" "ds:$1" "dsu:$1" "dsb:$1"; do
        [ "$(rcli EXISTS "$b:$k")" = 0 ] || fail "key $b:$k exists"
    done
}

# -- a dataset of the three line shapes, over 3 tasks ---------------------
python3 -S - "$tmp/ds.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(10):
        if i % 3 == 0:   # ShareGPT: the first human turn; gpt: 4*i+4 bytes
            d = {"id": "x", "conversations": [
                {"from": "system", "value": "be brief"},
                {"from": "human", "value": "entry %d sharegpt" % i},
                {"from": "gpt", "value": "y" * (4 * i + 4)}]}
        elif i % 3 == 1:
            d = {"prompt": "entry %d prompt" % i, "output_tokens": 3}
        else:
            d = {"messages": [{"role": "system", "content": "s"},
                              {"role": "user", "content": "entry %d chat" % i}]}
        f.write(json.dumps(d) + "\n")
    f.write("\n")   # a blank line is skipped
PY
# 3 tasks of 10 entries: parts 0-2, 3-5, 6-9; 4 requests each: a task
# of 3 entries sends its first entry again.
run --id ds1 --tasks 3 --dataset "$tmp/ds.jsonl" llm \
    '{"model":"m","dataset":{"max_tokens":"reference"},"requests":4,"concurrency":2}'
[ "$(rcli LLEN "$b:ds:ds1")" = 10 ] || fail "the dataset is not stored"
[ "$(rcli EXISTS "$b:dsu:ds1")" = 0 ] || fail "the upload key is left"
python3 -S - "$log" <<'PY' || fail "the requests of the dataset job"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert len(reqs) == 12, len(reqs)
seen = {}
for r in reqs:
    i = int(r["prompt"].split()[1])
    seen[i] = seen.get(i, 0) + 1
    if i % 3 == 0:
        assert r["max_tokens"] == i + 1, r   # (4i+4 bytes) / 4
    elif i % 3 == 1:
        assert r["max_tokens"] == 3, r
    else:
        assert r["max_tokens"] is None and r["messages"] == 2, r
    assert r["api"] == "chat", r
want = {i: 1 for i in range(10)}
want[0] = want[3] = 2   # the first entry of the parts of 3
assert seen == want, seen
print("dataset ok: each task sent its part")
PY
# The result's records carry the input tokens the server counted.
rcli FCALL_RO llmb_job 1 "$b" "ds1" 0:result > "$tmp/r0.json"
python3 -S - "$tmp/r0.json" <<'PY' || fail "input tokens in the records"
import json, sys
r = json.load(open(sys.argv[1]))
toks = sorted(x["input_tokens"] for x in r["_requests"])
# "entry N sharegpt|prompt" (3 words), "s" + "entry 2 chat" (4), entry 0
assert toks == [3, 3, 3, 4], toks
print("records ok: input tokens", toks)
PY

# "api": "completions" sends prompts: an entry of messages fails the task
# for good; without "requests", each entry is sent once.
if push --wait --wait-timeout 60 --id ds2 --tasks 2 --dataset "$tmp/ds.jsonl" \
    llm '{"model":"m","dataset":{"api":"completions"},"max_tokens":2}'; then
    fail "messages entries were sent to /completions"
fi
rcli FCALL_RO llmb_job 1 "$b" "ds2" error | grep -qF 'holds "messages"; "api": "completions" sends prompts only' ||
    fail "the error of messages under api completions: $(rcli FCALL_RO llmb_job 1 "$b" "ds2" error)"
grep -v '"messages"' "$tmp/ds.jsonl" | grep . > "$tmp/prompts.jsonl"
run --id ds3 --tasks 2 --dataset "$tmp/prompts.jsonl" llm \
    '{"model":"m","dataset":{"api":"completions"},"max_tokens":2}'
python3 -S - "$log" <<'PY' || fail "the completions dataset job"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
got = sorted(int(r["prompt"].split()[1]) for r in reqs)
assert got == [0, 1, 3, 4, 6, 7, 9], got
assert all(r["api"] == "completions" and r["max_tokens"] == 2 for r in reqs)
print("completions ok")
PY

# -- retention deletes the dataset with its job ---------------------------
for _ in $(seq 200); do
    [ "$(rcli EXISTS "$b:ds:ds1")" = 0 ] && break
    sleep 0.05
done
[ "$(rcli EXISTS "$b:ds:ds1")" = 0 ] || fail "retention left the dataset"
[ -z "$(rcli FCALL_RO llmb_job 1 "$b" ds1)" ] || fail "retention left the job"

# -- bad datasets: a clear error, nothing stored --------------------------
printf 'hello\n' > "$tmp/bad1"
refused 'line 1: not a JSON object' --id bad1 --dataset "$tmp/bad1" llm '{"model":"m"}'
nothing_stored bad1
: > "$tmp/bad2"
refused 'no entries' --id bad2 --dataset "$tmp/bad2" llm '{"model":"m"}'
nothing_stored bad2
printf '{"prompt":"a"}\n{"prompt":"b"}\n{"prompt":5}\n' > "$tmp/bad3"
refused 'line 3: "prompt" must be a non-empty string' --id bad3 \
    --dataset "$tmp/bad3" llm '{"model":"m"}'
nothing_stored bad3
printf '{"conversations":[{"from":"gpt","value":"x"}]}\n' > "$tmp/bad4"
refused 'has no "human" turn' --id bad4 --dataset "$tmp/bad4" llm '{"model":"m"}'
printf '{"prompt":"a","messages":[]}\n' > "$tmp/bad5"
refused 'needs exactly one of' --id bad5 --dataset "$tmp/bad5" llm '{"model":"m"}'
refused 'No such file' --id bad6 --dataset "$tmp/none" llm '{"model":"m"}'
refused 'is for jobs of type llm or benchmark' --id bad7 \
    --dataset "$tmp/ds.jsonl" echo '{}'
refused 'a dataset of 10 entries cannot feed 11 tasks' --id bad8 --tasks 11 \
    --dataset "$tmp/ds.jsonl" llm '{"model":"m"}'
nothing_stored bad8
refused 'give "synthetic" or "dataset"' --id bad9 --dataset "$tmp/ds.jsonl" \
    llm '{"model":"m","synthetic":{"input_tokens":4}}'
refused 'give it or "messages"/"prompt"' --id bad10 --dataset "$tmp/ds.jsonl" \
    llm '{"model":"m","prompt":"x"}'
nothing_stored bad10
if push --batch --dataset "$tmp/ds.jsonl" /dev/null; then
    fail "--dataset with --batch was accepted"
fi

# Sizes at both ends: an entry of exactly 262144 bytes is kept, one byte
# more is refused; 67108864 bytes in all are kept, more are refused.
python3 -S - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def entry(n):   # a line whose stored entry is n bytes: {"prompt":"x..."}
    return json.dumps({"prompt": "x" * (n - 13)}, separators=(",", ":"))
open(d + "/edge1", "w").write(entry(262144) + "\n")
open(d + "/edge2", "w").write(entry(262145) + "\n")
open(d + "/big1", "w").write((entry(262144) + "\n") * 256)
open(d + "/big2", "w").write((entry(262144) + "\n") * 256 + entry(14) + "\n")
PY
run --id edge1 --dataset "$tmp/edge1" llm '{"model":"m","max_tokens":1}'
[ "$(rcli --raw LINDEX "$b:ds:edge1" 0 | head -c -1 | wc -c)" = 262144 ] ||
    fail "the largest entry was not kept whole"
refused 'line 1: the entry is 262145 bytes; the limit is 262144' --id edge2 \
    --dataset "$tmp/edge2" llm '{"model":"m"}'
nothing_stored edge2
refused 'more than 67108864 bytes of entries (at line 257)' --id big2 \
    --dataset "$tmp/big2" llm '{"model":"m"}'
nothing_stored big2
run --id big1 --dataset "$tmp/big1" llm '{"model":"m","requests":1,"max_tokens":1}'
[ "$(rcli LLEN "$b:ds:big1")" = 256 ] || fail "the largest dataset"
rcli DEL "$b:ds:big1" > /dev/null

# Around the chunk of one call (1000 lines) and of one read (256).
for n in 1 999 1000 1001 2001; do
    python3 -S -c "
import sys
for i in range($n): print('{\"prompt\": \"p%d\"}' % i)" > "$tmp/n$n"
    run --id "n$n" --dataset "$tmp/n$n" llm '{"model":"m","requests":1,"max_tokens":1}'
    [ "$(rcli LLEN "$b:ds:n$n")" = "$n" ] || fail "$n entries: $(rcli LLEN "$b:ds:n$n")"
    [ "$(rcli --raw LINDEX "$b:ds:n$n" -1)" = "{\"prompt\":\"p$((n - 1))\"}" ] ||
        fail "$n entries: the last one"
done
# the last of 2001 entries in 2 tasks is sent by task 1 (1000-2000)
run --id n2001b --tasks 2 --dataset "$tmp/n2001" llm '{"model":"m","max_tokens":1,"concurrency":8}'
[ "$(wc -l < "$log")" = 2001 ] || fail "2001 entries: $(wc -l < "$log") requests"
[ "$(python3 -S -c "
import json
print(len({json.loads(l)['prompt'] for l in open('$log')}))")" = 2001 ] ||
    fail "2001 entries were not each sent once"

# -- redis-cli: llmb_dataset, then llmb_push with the id ------------------
[ "$(rcli FCALL llmb_dataset 1 "$b" rc1 0 '{"prompt":"rc a"}' \
    '{"conversations":[{"from":"human","value":"rc b"}]}')" = 2 ] ||
    fail "llmb_dataset"
# the same call again (its reply lost) stores nothing twice
[ "$(rcli FCALL llmb_dataset 1 "$b" rc1 0 '{"prompt":"rc a"}' \
    '{"conversations":[{"from":"human","value":"rc b"}]}')" = 2 ] ||
    fail "llmb_dataset sent again"
[ "$(rcli FCALL llmb_dataset 1 "$b" rc1 2 '{"prompt":"rc c"}')" = 3 ] ||
    fail "llmb_dataset, a second call"
rcli FCALL llmb_dataset 1 "$b" rc1 5 '{"prompt":"x"}' 2>&1 |
    grep -q 'starts at 3, got 5' || fail "llmb_dataset out of order"
rcli FCALL llmb_dataset 1 "$b" rcx 0 '{"prompt":"x"}' 'nope' 2>&1 |
    grep -q 'dataset line 2: not a JSON object' || fail "llmb_dataset bad line"
[ "$(rcli EXISTS "$b:dsu:rcx")" = 0 ] || fail "a refused first call stored"
rcli FCALL llmb_push 1 "$b" \
    '{"type":"llm","id":"rc1","payload":{"model":"m","dataset":{"entries":2}}}' 2>&1 |
    grep -q 'says 2 entries, but 3 are stored for job rc1' ||
    fail "llmb_push with the wrong count"
nothing_stored rc1 # (a refused push deletes the upload)
rcli FCALL llmb_dataset 1 "$b" rc1 0 '{"prompt":"rc a"}' \
    '{"conversations":[{"from":"human","value":"rc b"}]}' \
    '{"prompt":"rc c"}' > /dev/null
rcli FCALL llmb_dataset 1 "$b" rc2 0 '{"prompt":"a"}' '{"prompt":"b"}' > /dev/null
rcli FCALL llmb_push 1 "$b" \
    '{"type":"llm","id":"rc2","tasks":3,"payload":{"model":"m","dataset":{"entries":2}}}' 2>&1 |
    grep -q 'a dataset of 2 entries cannot feed 3 tasks' ||
    fail "llmb_push of more tasks than entries"
nothing_stored rc2
rcli FCALL llmb_push 1 "$b" \
    '{"type":"llm","payload":{"model":"m","dataset":{"entries":3}}}' 2>&1 |
    grep -q 'needs its own "id"' || fail "llmb_push without an id"
rcli FCALL llmb_push 1 "$b" \
    '{"type":"llm","id":"rc1","payload":{"model":"m","dataset":{"entries":3,"api":"x"}}}' 2>&1 |
    grep -qF 'llm payload field "dataset.api" must be "chat" (/chat/completions) or "completions" (/completions), got "x"' ||
    fail "llmb_push with a bad dataset.api"
: > "$log"
[ "$(rcli FCALL llmb_push 1 "$b" \
    '{"type":"llm","id":"rc1","payload":{"model":"m","max_tokens":1,"dataset":{"entries":3}}}')" = rc1 ] ||
    fail "llmb_push of a stored dataset"
[ "$(rcli FCALL llmb_dataset 1 "$b" rc1 0 '{"prompt":"late"}')" = -1 ] ||
    fail "llmb_dataset for a pushed job"
for _ in $(seq 400); do
    [ "$(rcli FCALL_RO llmb_job 1 "$b" "rc1" state)" = completed ] && break
    sleep 0.05
done
[ "$(rcli FCALL_RO llmb_job 1 "$b" "rc1" state)" = completed ] || fail "job rc1: $(rcli FCALL_RO llmb_job 1 "$b" "rc1" error)"
[ "$(python3 -S -c "
import json
print(sorted(json.loads(l)['prompt'] for l in open('$log')))")" = "['rc a', 'rc b', 'rc c']" ] ||
    fail "job rc1 sent $(cat "$log")"

# A job whose dataset is gone when it starts fails for good, saying so.
rcli FCALL llmb_dataset 1 "$b" gone 0 '{"prompt":"g"}' > /dev/null
[ "$(rcli FCALL llmb_push 1 "$b" \
    '{"type":"llm","id":"gone","delay_s":60,"payload":{"model":"m","dataset":{"entries":1}}}')" = gone ] ||
    fail "llmb_push of job gone"
rcli DEL "$b:ds:gone" > /dev/null
rcli ZADD "$b:pd" XX CH 0 gone | grep -qx 1 || fail "job gone is not delayed" # due now
for _ in $(seq 400); do
    [ "$(rcli FCALL_RO llmb_job 1 "$b" "gone" state)" = failed ] && break
    sleep 0.05
done
rcli FCALL_RO llmb_job 1 "$b" "gone" error | grep -q 'job gone has no dataset' ||
    fail "job gone: $(rcli FCALL_RO llmb_job 1 "$b" "gone" state) $(rcli FCALL_RO llmb_job 1 "$b" "gone" error)"
[ "$(rcli FCALL_RO llmb_job 1 "$b" "gone" 0:attempt)" = 1 ] || fail "job gone was retried"

# -- synthetic prompts ------------------------------------------------------
syn='{"model":"m","requests":100,"concurrency":8,"synthetic":{"input_tokens":{"dist":"normal","mean":60,"stddev":8},"output_tokens":{"dist":"uniform","min":5,"max":9},"seed":SEED}}'
run --id syn1 --tasks 2 llm "${syn/SEED/7}"
cp "$log" "$tmp/syn1.jsonl"
python3 -S - "$tmp/syn1.jsonl" <<'PY' || fail "the synthetic lengths"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert len(reqs) == 200, len(reqs)
n = [r["prompt_tokens"] for r in reqs]
mean = sum(n) / len(n)
sd = (sum((x - mean) ** 2 for x in n) / (len(n) - 1)) ** 0.5
assert 57 <= mean <= 63 and 5.5 <= sd <= 10.5, (mean, sd)
assert all(len(r["prompt"].split()) == r["prompt_tokens"] for r in reqs)
m = [r["max_tokens"] for r in reqs]
assert min(m) == 5 and max(m) == 9 and set(m) == {5, 6, 7, 8, 9}, sorted(set(m))
assert all(r["ignore_eos"] is True for r in reqs)
assert len({r["prompt"] for r in reqs}) == 200
print("synthetic ok: input mean %.1f sd %.1f, output 5..9" % (mean, sd))
PY
run --id syn2 --tasks 2 llm "${syn/SEED/7}"
cmp -s <(python3 -S -c "import json,sys; [print(json.dumps([json.loads(l)[k] for k in ('prompt','max_tokens')])) for l in open(sys.argv[1])]" "$tmp/syn1.jsonl" | sort) \
       <(python3 -S -c "import json,sys; [print(json.dumps([json.loads(l)[k] for k in ('prompt','max_tokens')])) for l in open(sys.argv[1])]" "$log" | sort) ||
    fail "the same seed gave other prompts"
run --id syn3 --tasks 2 llm "${syn/SEED/8}"
[ "$(cat "$tmp/syn1.jsonl" "$log" | python3 -S -c "
import json, sys
print(len({json.loads(l)['prompt'] for l in sys.stdin}))")" = 400 ] ||
    fail "another seed gave the same prompts"

# Bounds at both ends, accepted and refused on both push paths.
run --id syn4 llm '{"model":"m","synthetic":{"input_tokens":1,"output_tokens":{"dist":"fixed","value":1},"api":"completions"}}'
python3 -S -c "
import json; r = json.loads(open('$log').readline())
assert r['prompt_tokens'] == 1 and r['max_tokens'] == 1 and r['api'] == 'completions', r" ||
    fail "the smallest synthetic request"
run --id syn5 llm '{"model":"m","synthetic":{"input_tokens":100000,"output_tokens":1}}'
python3 -S -c "
import json; r = json.loads(open('$log').readline())
assert r['prompt_tokens'] == 100000, r['prompt_tokens']" ||
    fail "the largest synthetic request"
bad_syn() { # MESSAGE SYNTHETIC_JSON: refused by llmb-push and llmb_push
    refused "$1" --id bads llm "{\"model\":\"m\",\"synthetic\":$2}"
    rcli FCALL llmb_push 1 "$b" \
        "{\"type\":\"llm\",\"payload\":{\"model\":\"m\",\"synthetic\":$2}}" \
        > "$tmp/rcli.out" 2>&1 || true
    grep -qF -- "$1" "$tmp/rcli.out" ||
        fail "llmb_push of synthetic $2: wanted \"$1\", got $(cat "$tmp/rcli.out")"
}
bad_syn '"synthetic.input_tokens" must be a token count from 1 to 100000 or a distribution, got 0' '{"input_tokens":0}'
bad_syn '"synthetic.input_tokens" must be a token count from 1 to 100000 or a distribution, got 100001' '{"input_tokens":100001}'
bad_syn '"synthetic.input_tokens" is required' '{"seed":1}'
bad_syn '"synthetic.input_tokens.dist" must be one of "fixed", "uniform", "normal", got "gauss"' '{"input_tokens":{"dist":"gauss"}}'
bad_syn '"synthetic.output_tokens": min (9) is greater than max (5)' '{"input_tokens":4,"output_tokens":{"dist":"uniform","min":9,"max":5}}'
bad_syn '"synthetic.input_tokens.stddev" must be a number from 0 to 100000' '{"input_tokens":{"dist":"normal","mean":5,"stddev":-1}}'
bad_syn '"synthetic.input_tokens.mean" must be a number from 1 to 100000' '{"input_tokens":{"dist":"normal","mean":0.5,"stddev":1}}'
bad_syn '"synthetic.seed" must be an integer from 0 to 2147483647' '{"input_tokens":4,"seed":-1}'
bad_syn '"synthetic" has an unknown key "input"' '{"input":4}'
bad_syn '"synthetic.input_tokens" has an unknown key "value"' '{"input_tokens":{"dist":"uniform","min":1,"max":2,"value":3}}'
refused '"synthetic.output_tokens" sets each request'"'"'s max_tokens' --id bads \
    llm '{"model":"m","max_tokens":4,"synthetic":{"input_tokens":4,"output_tokens":4}}'
# -- warm-up requests send their own prompts --------------------------------
# One request at a time, so the log is in order: the warm-up's first.
wu='"requests":4,"concurrency":1,"max_tokens":2,"synthetic":{"input_tokens":{"dist":"uniform","min":5,"max":200},"seed":3}}'
run --id wu0 llm '{"model":"m",'"$wu"
cp "$log" "$tmp/wu0.jsonl"
run --id wu1 llm '{"model":"m","warmup_requests":3,'"$wu"
python3 -S - "$tmp/wu0.jsonl" "$log" <<'PY' || fail "the synthetic warm-up"
import json, sys
p0 = [json.loads(l)["prompt"] for l in open(sys.argv[1])]
p1 = [json.loads(l)["prompt"] for l in open(sys.argv[2])]
assert len(p0) == 4 and len(p1) == 7, (len(p0), len(p1))
warm, measured = p1[:3], p1[3:]
assert measured == p0, "the warm-up changed the measured prompts"
assert not set(warm) & set(measured), "a warm-up prompt is a measured one"
assert len(set(warm)) == 3, warm
PY
# A dataset: the warm-up takes the part's entries from its last one back.
run --id dswu --dataset "$tmp/ds.jsonl" llm \
    '{"model":"m","requests":3,"warmup_requests":2,"concurrency":1,"max_tokens":2}'
python3 -S - "$log" <<'PY' || fail "the dataset warm-up"
import json, sys
sent = [int(json.loads(l)["prompt"].split()[1]) for l in open(sys.argv[1])]
assert sent == [9, 8, 0, 1, 2], sent
PY
echo "workloads ok"
