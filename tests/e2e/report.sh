#!/usr/bin/env bash
# `llmb report` (docs/web.md, "Reports"), without a browser: a real
# llmb-worker and llmb-coordinator run an llm job against the mock and a
# job whose payload tries to end the data block. The report file must
# carry each job's `llmb show --json` (less the samples of records and the
# tasks' histogram buckets) and
# the comparison in its JSON block, with no raw '<' in it; its CSP must
# allow exactly its two inline scripts and its style by their SHA-256 and
# nothing from the network; and a job that does not exist is exit 1 with
# no file. tests/browser opens such a file in chromium.
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 10 --itl-ms 2

common=(--redis "$url" --prefix "$prefix")
"$bin/worker/llmb-worker" "${common[@]}" --id w1 --capacity 2 \
    --heartbeat-ms 200 --llm-endpoint "mock=http://127.0.0.1:$port" \
    2>"$tmp/worker.log" &
pids+=($!)
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)
llmb() { "$bin/tools/admin/llmb" "${common[@]}" "$@"; }
push() { "$bin/tools/push/llmb-push" "${common[@]}" "$@"; }

payload='{"endpoint":"mock","model":"m","prompt":"go","max_tokens":16,"requests":6,"concurrency":2}'
push --wait --wait-timeout 60 --no-progress --json --tasks 2 --id r1 llm "$payload" \
    > "$tmp/push1.out" 2>&1 || fail "llm job r1"
push --wait --wait-timeout 60 --no-progress --json --tasks 2 --id r2 llm "$payload" \
    > "$tmp/push2.out" 2>&1 || fail "llm job r2"
push --wait --wait-timeout 60 --no-progress --json --id evil echo \
    '{"x":"</script><script>alert(1)</script><!--","y":"&amp;"}' \
    > "$tmp/push3.out" 2>&1 || fail "job evil"
for j in r1 r2 evil; do
    for _ in $(seq 200); do
        [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{default}" "$j" aggregate)" ] && break
        sleep 0.05
    done
done
for j in r1 r2 evil; do llmb show "$j" --json --tasks 1000 > "$tmp/$j.show"; done

llmb report r1 r2 evil -o "$tmp/report.html" 2>"$tmp/report.log" ||
    fail "llmb report exited $?"
grep -q "report of 3 jobs written to $tmp/report.html" "$tmp/report.log" ||
    fail "the report's line on stderr"

python3 -S - "$tmp" <<'PY' || fail "the report's content"
import base64, hashlib, json, re, sys
tmp = sys.argv[1]
html = open(tmp + "/report.html", encoding="utf-8").read()
# the data block: JSON with no raw '<', the show documents and the comparison
m = re.search(r'<script type="application/json" id="llmb-report-data">(.*?)</script>', html, re.S)
assert m, "no data block"
block = m.group(1)
assert "<" not in block and ">" not in block and "&" not in block, "raw <, > or & in the data"
data = json.loads(block)
assert data["llmb_report"] == 1 and data["generated_ms"] > 0, data.keys()
ids = [d["job"]["id"] for d in data["jobs"]]
assert ids == ["r1", "r2", "evil"], ids
for d in data["jobs"]:
    show = json.load(open("%s/%s.show" % (tmp, d["job"]["id"])))
    for t in show["tasks"]:
        r = t["result"]
        if isinstance(r, dict) and "_requests" in r:
            r["_requests_omitted"] = len(r.pop("_requests"))
        if isinstance(r, dict) and "_timeline" in r:
            assert r.pop("_timeline")["output_tokens"], r  # the task's
        for h in (r.get("metrics") or {}).values() if isinstance(r, dict) else ():
            if isinstance(h, dict) and "hist" in h:
                assert h.pop("b"), h
    show.pop("now_ms"); d.pop("now_ms")
    assert d == show, (d["job"]["id"], "differs from llmb show --json")
evil = data["jobs"][2]["job"]["payload"]
assert evil["x"] == "</script><script>alert(1)</script><!--" and evil["y"] == "&amp;", evil
assert data["jobs"][0]["tasks"][0]["result"]["_requests_omitted"] == 6
# the job's series over time, merged from its tasks' (left out above)
agg = data["jobs"][0]["job"]["aggregate"]
tl = agg["timeline"]
assert tl["tasks"] == 2 and sum(tl["output_tokens"]) == \
    agg["fields"]["summary.output_tokens"]["sum"] > 0, tl
cmp = data["compare"]
assert [j["job"] for j in cmp["jobs"]] == ["r1", "r2", "evil"], cmp
assert cmp["jobs"][1]["metrics"]["requests"] == 12, cmp["jobs"][1]
# the CSP: exactly the inline scripts and style, by digest; no network
csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html).group(1)
scripts = re.findall(r'<script>(.*?)</script>', html, re.S)
styles = re.findall(r'<style>(.*?)</style>', html, re.S)
assert len(scripts) == 2 and len(styles) == 1, (len(scripts), len(styles))
def src(t):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(t.encode("utf-8")).digest()).decode()
want = ("default-src 'none'; script-src %s %s; style-src %s; img-src data:; "
        "base-uri 'none'; form-action 'none'" % (src(scripts[0]), src(scripts[1]), src(styles[0])))
assert csp == want, (csp, want)
assert "unsafe" not in csp
# nothing loaded from elsewhere: no src= or href= but data: and hashes
assert not re.search(r'\b(src|href)="(?!data:|#)', html.split("<script>")[0]), "a resource is loaded"
assert "Chart.js v" in scripts[0] and "llmb-report-data" in scripts[1]
print("report: %d bytes, %d jobs, csp %s..." % (len(html), len(ids), csp[:60]))
PY

# Each job is read once (one llmb_job call naming its fields): the
# comparison takes the aggregate from the show document just read. MONITOR sees
# every command; the ECHO after the report marks the end of its commands.
rcli MONITOR >"$tmp/monitor.log" 2>&1 &
mon=$!
pids+=($mon)
for _ in $(seq 200); do grep -q '^OK' "$tmp/monitor.log" && break; sleep 0.05; done
grep -q '^OK' "$tmp/monitor.log" || fail "MONITOR did not start"
llmb report r1 r2 -o "$tmp/two.html" 2>"$tmp/two.log" || fail "report of r1 r2"
rcli ECHO "end-of-report-$prefix" >/dev/null
for _ in $(seq 200); do
    grep -q "end-of-report-$prefix" "$tmp/monitor.log" && break
    sleep 0.05
done
kill "$mon" 2>/dev/null || true
for j in r1 r2; do
    n=$(grep -cF "\"FCALL_RO\" \"llmb_job\" \"1\" \"$prefix:{default}\" \"$j\" \"id\"" "$tmp/monitor.log" || true)
    [ "$n" = 1 ] || fail "llmb report read job $j $n times, not once"
done

# The file is written through a name no one can foresee: a link planted
# at the target's name .tmp.PID is not followed, and the report is a
# plain file of mode 644.
: >"$tmp/victim"
sh -c 'ln -s "$1" "$2.tmp.$$" && shift 2 && exec "$@"' sh \
    "$tmp/victim" "$tmp/safe.html" "$bin/tools/admin/llmb" "${common[@]}" \
    report r1 -o "$tmp/safe.html" 2>"$tmp/safe.log" ||
    fail "report beside a planted link: $(cat "$tmp/safe.log")"
[ ! -s "$tmp/victim" ] || fail "the report was written through a planted link"
[ -f "$tmp/safe.html" ] && [ ! -L "$tmp/safe.html" ] ||
    fail "the report is not a plain file"
[ "$(stat -c %a "$tmp/safe.html")" = 644 ] ||
    fail "the report's mode is $(stat -c %a "$tmp/safe.html"), not 644"
n=$(find "$tmp" -maxdepth 1 -name 'safe.html.tmp.*' | wc -l)
[ "$n" = 1 ] || fail "$n temporary files beside the report (the planted link only)"

# one job: no comparison; a job not aggregated: shown, and the report says
# why nothing is compared; a job that does not exist: exit 1, no file
llmb report r1 -o "$tmp/one.html" 2>"$tmp/one.log" || fail "report of one job"
push --queue nobody --id waiting echo '{}' > "$tmp/push4.out" 2>&1 || fail "job waiting"
llmb report r1 waiting -o "$tmp/wait.html" 2>"$tmp/wait.log" || fail "report with a waiting job"
grep -q 'the report compares nothing: job "waiting" has no aggregate yet (state pending)' "$tmp/wait.log" ||
    fail "the line saying why nothing is compared"
python3 -S - "$tmp" <<'PY' || fail "the reports of one job and of a waiting job"
import json, re, sys
tmp = sys.argv[1]
def data(name):
    html = open("%s/%s.html" % (tmp, name), encoding="utf-8").read()
    return json.loads(re.search(r'id="llmb-report-data">(.*?)</script>', html, re.S).group(1))
one = data("one")
assert "compare" not in one and "compare_error" not in one and len(one["jobs"]) == 1, one.keys()
w = data("wait")
assert w["jobs"][1]["job"]["state"] == "pending" and "compare" not in w, w.keys()
assert "has no aggregate yet" in w["compare_error"], w["compare_error"]
PY
set +e
llmb report r1 nope -o "$tmp/none.html" 2>"$tmp/none.log"
rc=$?
set -e
[ "$rc" = 1 ] || fail "a missing job exited $rc"
grep -q 'job "nope" not found' "$tmp/none.log" || fail "the missing job's message"
[ ! -e "$tmp/none.html" ] || fail "a report was written for a missing job"
