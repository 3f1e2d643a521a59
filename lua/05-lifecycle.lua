--[[
The task and job lifecycle: where a job and its tasks are kept, the states
they go through, and the helpers every transition uses to move them.
docs/data-model.md has the keys; this is how the functions use them.

A job is a record, one field of the hash <base>:jd written at push:
"<s><created ms>\t<type>\t<opts>\t<payload>", s = 'p', or 'x' once the job
is cancelled; opts holds the options that are not their default as a
letter and a number each (OPTS below). Once the job has ended, its end
stands in front of that record in the same field (L.rec_ended). What
changes over a job's life is kept elsewhere, small:

  waiting   its member in <base>:pl (priority 0, a list, oldest first),
            <base>:pz (other priorities, scored as `wait_score` says) or
            <base>:pd (delayed, scored by due time). A member is "<id>"
            (a job of one task, or the cursor of a fan-out job, which
            stands for every task of it at or past its `next` that has not
            completed) or "<id>:<index>" (a task of a fan-out job waiting
            on its own: retried, released, lost; also listed in
            <base>:jr:<id>, so that a cancel finds it).
  running   its member in <base>:run, mapped to the held token of the
            claim batch that runs it; the batch's record in <base>:lease
            ("<worker> <claimed ms> <member>...", and "<held>#n", its
            members not ended), its deadline in <base>:running, its held
            token in the worker's set <base>:wl:<worker>.
  ended     a job of one task: its end, "<c|f|x><finished ms> <started
            ms> <worker>[ <attempt>]" and a tab and the result (not `{}`)
            or the error; a task of a fan-out job: its "<index>:state"
            in the job's hash <base>:j:<id> (completed, failed,
            cancelled), the job's end once the last one has ended
            ("<c|f|x><finished ms>"). An end is kept in the job's record:
            "<C|F|X><the rest of its first line>\t<n>\t<result><record>",
            n the length of what followed the tab (empty when nothing
            did), the letter upper case so that it differs from a
            record's s.

The hash <base>:j:<id> holds what a job of one task rarely has and a
fan-out job always has: counts (left, ok, failed, cancelled, retried,
timeouts, lost), the cursor (next, ahead), the job's state while it runs,
its first error, its aggregate, its version (runs retried) and the task
fields of a fan-out job's tasks. A job of one task that ran once and
completed never has one, until the coordinator stores its aggregate.

Attempts started before the present one are in <base>:att (member ->
count), only for members that had one.

Task states of a fan-out task's "<index>:state" and their transitions:
TASK_NEXT below; `moved` checks every change a helper makes against it.
]]

-- The record's options: letter -> {job field, default as text}. A
-- record's opts hold, in this order, those that are not their default.
local OPTS = {
    {'p', 'priority', '0'}, {'n', 'tasks', '1'}, {'t', 'timeout_s', '600'},
    {'r', 'max_retries', '3'}, {'b', 'backoff_ms', '1000'},
    {'d', 'deadline_ms', false}, {'y', 'delay_s', false},
}
-- The result a completed task stores no field for (most tasks of a
-- benchmark answer it): llmb_job answers it for a completed task.
local EMPTY_RESULT = '{}'

-- (L, the job layout's table, is declared in 00-header.lua, whose
-- retention and call_flush read records too.)

-- Option `letter` of opts text `o` as text, or nil when at its default.
function L.opt(o, letter)
    if o == '' then return nil end
    return string.match(o, letter .. '([%-%d%.e]+)')
end

-- Option `letter` as a number, `default` when absent.
function L.optn(o, letter, default)
    local v = L.opt(o, letter)
    return v and tonumber(v) or default
end

-- Where the record starts in value r of <base>:jd: 1, or past the end
-- an ended job's value holds in front (05-lifecycle.lua, top); also the
-- end's two tabs. nil for an end that does not parse (junk).
function L.rec_start(r)
    local b = string.byte(r, 1)
    if b == nil or b < 65 or b > 90 then return 1 end -- no end: not A-Z
    local t = string.find(r, '\t', 2, true)
    local u = t and string.find(r, '\t', t + 1, true)
    if u == nil then return nil end
    local n = 0
    if u > t + 1 then
        local d = string.sub(r, t + 1, u - 1)
        if not string.find(d, '^%d+$') then return nil end
        n = tonumber(d)
        if n > #r - u then return nil end
    end
    return u + n + 1, t, u
end

-- The parts of the record in value r: s ('p' or 'x'), created ms (text),
-- type, opts and the index in r of the tab before the payload (which runs
-- to the end of r); nil for a value that is no record (junk written by
-- hand). An ended job's end in front is skipped (L.rec_end reads it).
function L.rec(r)
    if type(r) ~= 'string' then return nil end
    local at = L.rec_start(r)
    if at == nil then return nil end
    local a = string.find(r, '\t', at + 1, true)
    local b = a and string.find(r, '\t', a + 1, true)
    local c = b and string.find(r, '\t', b + 1, true)
    if c == nil then return nil end
    return string.sub(r, at, at), string.sub(r, at + 1, a - 1),
        string.sub(r, a + 1, b - 1), string.sub(r, b + 1, c - 1), c
end

-- The end of the job whose value is r, as L.job_end made it ("<c|f|x>
-- <finished ms>..." and, for a job of one task, a tab and the result or
-- error when it has one); nil while the job has not ended.
function L.rec_end(r)
    if type(r) ~= 'string' then return nil end
    local at, t, u = L.rec_start(r)
    if at == nil or t == nil then return nil end
    local head = string.lower(string.sub(r, 1, 1)) .. string.sub(r, 2, t - 1)
    if u == t + 1 then return head end
    return head .. '\t' .. string.sub(r, u + 1, at - 1)
end

-- The end of job `id` whose value of <base>:jd is r: L.rec_end(r), or,
-- while the queue still has ends that library version 30 kept apart in
-- <base>:je (llmb_upgrade moves them, 90-upgrade.lua), the one there.
function L.end_of(base, id, r)
    local e = L.rec_end(r)
    if e then return e end
    if L.je_exists(base) then
        return redis.call('HGET', base .. ':je', id) or nil
    end
    return nil
end

-- Whether <base>:je (library version 30's ends) is still there; asked
-- once per call.
function L.je_exists(base)
    local v = CALL.je
    if v == nil then
        v = redis.call('EXISTS', base .. ':je') == 1
        CALL.je = v
    end
    return v
end

-- Value r without the end in front: the record the job had before it
-- ended (a retry takes it back); r when it has none.
function L.rec_inner(r)
    local at = L.rec_start(r)
    if at == nil or at == 1 then return r end
    return string.sub(r, at)
end

-- Value r (a record, with or without an end) with `front` (an end in
-- the form it takes in front: L.job_end) in front instead.
function L.rec_front(r, front)
    local b = string.byte(r, 1)
    if b and b >= 65 and b <= 90 then r = L.rec_inner(r) end
    return front .. r
end

-- Value r (a record, with or without an end) with end e (in the form
-- L.rec_end gives) in front instead.
function L.rec_ended(r, e)
    local inner = L.rec_inner(r)
    local head, tail = e, nil
    local t = string.find(e, '\t', 1, true)
    if t then head, tail = string.sub(e, 1, t - 1), string.sub(e, t + 1) end
    head = string.upper(string.sub(head, 1, 1)) .. string.sub(head, 2)
    if tail == nil then return head .. '\t\t' .. inner end
    return head .. '\t' .. #tail .. '\t' .. tail .. inner
end

-- HMGET of `fields` of hash `key`, CHUNK fields a command: their values,
-- false for those absent.
function L.hmget(key, fields)
    local out = {}
    for i = 1, #fields, CHUNK do
        local j = math.min(#fields, i + CHUNK - 1)
        local r = redis.call('HMGET', key, unpack(fields, i, j))
        for x = i, j do out[x] = r[x - i + 1] end
    end
    return out
end

-- The records of `ids`, false for the ids that have none.
function L.recs(base, ids)
    return L.hmget(base .. ':jd', ids)
end

-- A member is "<id>" or "<id>:<index>"; job ids never hold ':'. Returns
-- the id and the index as text (nil for "<id>"), or nil for a member
-- that names no task (junk).
function L.member(m)
    if not string.find(m, ':', 1, true) then return m, nil end
    local id, idx = string.match(m, '^([^:]+):(%d+)$')
    if id then return id, idx end
    return nil
end

-- The member of task idx (text) of job id of `tasks` tasks.
function L.member_of(id, idx, tasks)
    if tasks == 1 then return id end
    return id .. ':' .. idx
end

-- Score in <base>:pz: higher priority first, FIFO within one by the
-- queue's sequence number (0: the front of its priority).
local function wait_score(priority, seq)
    return -priority * TWO32 + (seq % TWO32)
end

-- Members put to wait over a call, written at once by L.waits_flush:
-- priority 0 to the tail or the front of <base>:pl, others into
-- <base>:pz. `how` is 'tail' (in order after what waits), 'front' (before
-- what waits, as a task that was under way: lost or released) or 'back'
-- (tail, for a task handed on).
function L.waits(base)
    return {base = base, tail = {}, front = {}, pz = zset_new(base .. ':pz'),
        n = 0}
end

function L.wait(w, member, prio, how)
    w.n = w.n + 1
    if prio == 0 then
        if how == 'front' then
            w.front[#w.front + 1] = member
        else
            w.tail[#w.tail + 1] = member
        end
        return
    end
    local seq = 0
    if how ~= 'front' then seq = redis.call('INCR', w.base .. ':seq') end
    zset_add(w.pz, wait_score(prio, seq), member)
end

function L.waits_flush(w)
    local pl = w.base .. ':pl'
    if #w.front > 0 then
        -- (LPUSH puts its last value first: the members go in reverse,
        -- so the first put to wait is the first to run)
        local rev = {}
        for i = #w.front, 1, -1 do rev[#rev + 1] = w.front[i] end
        chunked('LPUSH', pl, rev)
        w.front = {}
    end
    if #w.tail > 0 then
        chunked('RPUSH', pl, w.tail)
        w.tail = {}
    end
    zset_flush(w.pz)
end

-- Puts member to wait until `due` (ms).
function L.delay(base, member, due)
    redis.call('ZADD', base .. ':pd', due, member)
end

--[[
Lease tokens. claim takes the worker's secret (128 random bits it draws at
start, as hex) and hands out the token "<seq>.<secret>" for the whole
batch; Redis keeps only "<seq>.<h>", h being the first 20 hex digits of
SHA-1(secret) (the held token). So a token cannot be made from what Redis
stores: a worker can end only the tasks it was handed. A claim without a
secret (redis-cli by hand) gets the plain token "<seq>", held as is.
]]
local function secret_hash(secret)
    local h = CALL.sh[secret]
    if h == nil then
        h = string.sub(redis.sha1hex(secret), 1, 20)
        CALL.sh[secret] = h
    end
    return h
end

-- The held form of token tok, or nil for a value that is no token.
function L.held_of(tok)
    if type(tok) ~= 'string' or tok == '' then return nil end
    local seq, secret = string.match(tok, '^(%d+)%.(.+)$')
    if seq == nil then
        if string.find(tok, '^%d+$') then return tok end
        return nil
    end
    return seq .. '.' .. secret_hash(secret)
end

-- Opens a lease for `members` (a claim batch) held by `worker` until
-- now + lease_ms. Returns the token to hand out.
function L.lease_open(base, worker, members, now, lease_ms, secret)
    local seq = istr(redis.call('INCR', base .. ':tok'))
    local held, tok = seq, seq
    if secret then
        held = seq .. '.' .. secret_hash(secret)
        tok = seq .. '.' .. secret
    end
    local run = {}
    for i, m in ipairs(members) do
        run[2 * i - 1] = m
        run[2 * i] = held
    end
    local rk = base .. ':run'
    -- <base>:run is kept a hash table: below hash-max-listpack-entries
    -- Redis keeps it a listpack, where the HMGET and HDEL of a batch scan
    -- it once per field (a third more Redis CPU per job, measured:
    -- bench/proto/README.md). One field whose value is longer than
    -- hash-max-listpack-value makes it a hash table for good; no member
    -- is '~'.
    if redis.call('EXISTS', rk) == 0 then
        redis.call('HSET', rk, '~', string.rep('-', 100))
    end
    chunked('HSET', rk, run)
    redis.call('HSET', base .. ':lease', held, worker .. ' ' .. istr(now)
        .. ' ' .. table.concat(members, ' '), held .. '#n', #members)
    redis.call('ZADD', base .. ':running', now + lease_ms, held)
    redis.call('SADD', leases_key(base, worker), held)
    return tok
end

-- The batch record of held token `held`: its worker, claimed ms and
-- members; nil when there is none.
function L.lease_read(base, held)
    local r = redis.call('HGET', base .. ':lease', held)
    if not r then return nil end
    local ms = {}
    for m in string.gmatch(r, '%S+') do ms[#ms + 1] = m end
    local worker = table.remove(ms, 1)
    local claimed = table.remove(ms, 1)
    return worker, tonumber(claimed), ms
end

-- Checks the leases a report names: `args` holds, from index `first`,
-- groups of `stride` values that start with a member and its token.
-- Returns the members, per group true when `worker` holds that member
-- under that token (the same member twice counts once), and per group the
-- claimed ms of its batch, and `c`: the batches found and, in c.mine,
-- the members held, in order. The leases found are not dropped yet: the
-- caller ends them with L.leases_end(base, c, members).
function L.leases_check(base, worker, args, first, stride)
    local refs, ok, claimed = {}, {}, {}
    for i = first, #args, stride do refs[#refs + 1] = args[i] end
    local c = {batch = {}, worker = worker, mine = {}}
    if #refs == 0 then return refs, ok, claimed, c end
    -- each distinct token's batch read once: its worker must be `worker`
    local batches = {}
    local cur = L.hmget(base .. ':run', refs)
    local seen = {}
    local last_tok, last_held
    for k, ref in ipairs(refs) do
        -- (the tasks of a batch carry one token: made held once)
        local tok = args[first + (k - 1) * stride + 1]
        local held = last_held
        if tok ~= last_tok then
            held = L.held_of(tok)
            last_tok, last_held = tok, held
        end
        local b = held and batches[held]
        if held and b == nil then
            local w, at = nil, nil
            local r = redis.call('HGET', base .. ':lease', held)
            if r then
                w, at = string.match(r, '^(%S+) (%d+)')
            end
            b = {mine = w == worker, at = tonumber(at), n = 0}
            batches[held] = b
        end
        ok[k] = b and b.mine and cur[k] == held and not seen[ref] and ref ~= '~'
            or false
        if ok[k] then
            seen[ref] = true
            claimed[k] = b.at
            b.n = b.n + 1
            c.batch[held] = b
            c.mine[#c.mine + 1] = ref
        end
    end
    return refs, ok, claimed, c
end

-- Ends the leases of `members` found by L.leases_check (`c`): out of
-- <base>:run, and each batch counted down, its record, deadline and
-- worker entry gone with its last member.
function L.leases_end(base, c, members)
    if #members > 0 then chunked('HDEL', base .. ':run', members) end
    for held, b in pairs(c.batch) do
        if b.n > 0 then L.batch_down(base, c.worker, held, b.n) end
    end
end

-- Counts n members of batch `held` of worker as ended; the batch goes
-- with its last one.
function L.batch_down(base, worker, held, n)
    local lk = base .. ':lease'
    local left = redis.call('HINCRBY', lk, held .. '#n', -n)
    if left <= 0 then
        redis.call('HDEL', lk, held, held .. '#n')
        redis.call('ZREM', base .. ':running', held)
        redis.call('SREM', leases_key(base, worker), held)
    end
end

-- state -> the states a fan-out task may go to from it.
local TASK_NEXT = {
    pending = {running = true, cancelled = true},
    delayed = {pending = true, cancelled = true},
    running = {completed = true, failed = true, cancelled = true,
        pending = true, -- lost (its worker went away) or released
        delayed = true}, -- failed with retries left: backoff
    completed = {},
    failed = {pending = true}, -- llmb_retry of its job
    cancelled = {pending = true}, -- llmb_retry of its job
}

-- Returns `to` when a task may go from `from` to it; otherwise stops the
-- call with an error, before the helper writes (a bug, never input).
local function moved(from, to)
    if not TASK_NEXT[from][to] then
        error('llmb: task state ' .. from .. ' -> ' .. to .. ' is not a '
            .. 'transition (lua/05-lifecycle.lua TASK_NEXT)')
    end
    return to
end

local TERMINAL = {completed = true, failed = true, cancelled = true}
-- The letter of a job's end (L.job_end), and back.
local END_LETTER = {completed = 'c', failed = 'f', cancelled = 'x'}
local END_UPPER = {completed = 'C', failed = 'F', cancelled = 'X'}
local END_STATE = {c = 'completed', f = 'failed', x = 'cancelled'}

-- Name of field `name` (attempt, state, worker, result, error) of task
-- `idx` in its job hash: "<idx>:<name>". Names of the first thousand
-- indexes are made once and kept.
local TASK_FIELDS = {attempt = {}, state = {}, worker = {}, result = {},
    error = {}}
local function task_field(idx, name)
    local cache = TASK_FIELDS[name]
    local f = cache[idx]
    if f == nil then
        f = idx .. ':' .. name
        if #idx <= 3 then cache[idx] = f end
    end
    return f
end

-- Adds `a` (and `b` when given) to the group of job `id` in `groups`;
-- `order` lists the jobs in the order they first came.
local function group_add(groups, order, id, a, b)
    local g = groups[id]
    if g == nil then
        g = {}
        groups[id] = g
        order[#order + 1] = id
    end
    g[#g + 1] = a
    if b ~= nil then g[#g + 1] = b end
end

-- Retry delay with "equal jitter": half the exponential step plus a random
-- share of the other half, capped. The same formula as llmb_backoff_ms.
local function backoff_ms(attempt, base_ms)
    local d = base_ms * (2 ^ math.min(attempt - 1, 40))
    if d > BACKOFF_CAP_MS then d = BACKOFF_CAP_MS end
    return math.floor(d / 2 + math.random() * d / 2)
end

-- The `progress` event of a fan-out job, about every hundredth of it:
-- emitted when `left` (tasks not ended) went from `before` to `left`
-- across a step.
local function progress(base, id, tasks, before, left)
    local step = math.max(1, math.floor(tasks / 100))
    if math.floor((tasks - left) / step) > math.floor((tasks - before) / step) then
        emit(base, 'event', 'progress', 'job', id, 'done', tasks - left,
            'tasks', tasks)
    end
end

-- Records that job `id` ended in `state` now: its end in front of its
-- record (`text` after the letter and the time, " <started> <worker>
-- [<attempt>]" for a job of one task, nothing for a fan-out job; `tail`
-- the result or error that follows, or nil) written when the call ends
-- (call_flush, in the form L.rec_ended makes), with its `finished`
-- event, its line in <base>:fin and, unless `trivial`, its hand-off to
-- the coordinators; the dead set now. A job of one task that ended
-- without a result other than {} is `trivial`: its aggregate holds
-- nothing the coordinator would compute, and llmb_job answers it
-- (15-job.lua).
function L.job_end(base, id, state, now, text, trivial, tail)
    L.job_end_front(base, id, state, now, L.end_front(state, now, text, tail),
        trivial)
end

-- The end of L.job_end in the form it takes in front of the record: the
-- letter upper case, and the length of the tail.
function L.end_front(state, now, text, tail)
    return END_UPPER[state] .. now_str(now) .. (text or '')
        .. (tail and '\t' .. #tail .. '\t' .. tail or '\t\t')
end

-- L.job_end with its end made already (L.end_front): the jobs of a batch
-- that complete alike share one.
function L.job_end_front(base, id, state, now, front, trivial)
    local e = CALL.ends
    e[#e + 1] = id
    e[#e + 1] = front
    local done = CALL.done
    done[#done + 1] = id
    CALL.states[#done] = state
    CALL.ended_now = now
    if not trivial then
        local agg = CALL.agg
        agg[#agg + 1] = id
    end
    if state == 'failed' then
        local dk = base .. ':dead'
        redis.call('ZADD', dk, now, id)
        local cap = conf_num(base, 'dead_max')
        if redis.call('ZCARD', dk) > cap then
            redis.call('ZREMRANGEBYRANK', dk, 0, -cap - 1)
        end
    end
    if CALL.cx_may then redis.call('SREM', base .. ':cx', id) end
end

-- Ends fan-out job `id` (key jk) whose last task just ended; `f` is its
-- {state, tasks, failed, cancelled, expired} (nil to read them here);
-- `extra` more field/value pairs to write in the same HSET.
local function job_finish(base, id, now, f, extra, jk)
    jk = jk or job_key(base, id)
    if f == nil then
        f = redis.call('HMGET', jk, 'state', 'tasks', 'failed', 'cancelled',
            'expired')
    end
    local tasks = tonumber(f[2]) or 1
    local failed = tonumber(f[3]) or 0
    local cancelled = tonumber(f[4]) or 0
    local state = 'completed'
    if f[5] == '1' then
        state = 'failed'
    elseif f[1] == 'cancelled' then
        state = 'cancelled'
    elseif failed > 0 then
        state = 'failed'
    end
    local fields = extra or {}
    local n = #fields
    fields[n + 1] = 'state'
    fields[n + 2] = state
    fields[n + 3] = 'finished_ms'
    fields[n + 4] = now_str(now)
    fields[n + 5] = 'ok'
    fields[n + 6] = istr(tasks - failed - cancelled)
    chunked('HSET', jk, fields)
    L.job_end(base, id, state, now, nil)
end

-- Counts `n` tasks of fan-out job `id` as ended with `outcome` (ok,
-- failed or cancelled), in the job and in <base>:counts; finishes the job
-- when they were its last ones. Returns the tasks left.
local function tasks_ended(base, id, outcome, now, n)
    local jk = job_key(base, id)
    CALL.counts[outcome] = (CALL.counts[outcome] or 0) + n
    if outcome == 'failed' then
        redis.call('HINCRBY', jk, 'failed', n)
    elseif outcome == 'cancelled' then
        redis.call('HINCRBY', jk, 'cancelled', n)
    end
    local left = redis.call('HINCRBY', jk, 'left', -n)
    if left <= 0 then
        job_finish(base, id, now)
        return left
    end
    local tasks = tonumber(redis.call('HGET', jk, 'tasks')) or 1
    progress(base, id, tasks, left + n, left)
    return left
end

-- Ends task `idx` of fan-out job `id`, now in state `from`, as cancelled.
local function task_cancelled(base, id, idx, from, now)
    redis.call('HSET', job_key(base, id), task_field(idx, 'state'),
        moved(from, 'cancelled'))
    tasks_ended(base, id, 'cancelled', now, 1)
end

-- Ends job `id` of one task as cancelled: it was waiting (started nil),
-- or it ran since `started` on `worker`.
-- A job past its deadline (field `expired` of its hash) ends failed with
-- the error "deadline exceeded" instead.
function L.single_cancelled(base, id, now, started, worker)
    local tail = started and (' ' .. istr(started) .. ' ' .. worker) or ''
    if kcall('HGET', job_key(base, id), 'expired') == '1' then
        CALL.counts.failed = (CALL.counts.failed or 0) + 1
        L.job_end(base, id, 'failed', now, started and tail or ' 0 ', true,
            'deadline exceeded')
        return
    end
    CALL.counts.cancelled = (CALL.counts.cancelled or 0) + 1
    L.job_end(base, id, 'cancelled', now, started and tail or nil, true)
end

-- Attempts started of `members` before the present ones (0 for most:
-- <base>:att holds only members that lost or failed one).
function L.attempts(base, members)
    local out = {}
    local ak = base .. ':att'
    if #members == 0 or redis.call('EXISTS', ak) == 0 then return out end
    local r = L.hmget(ak, members)
    for x = 1, #members do out[x] = tonumber(r[x]) end
    return out
end

-- A task that ran and did not succeed: schedule the next attempt, or fail
-- it for good when its attempts are used up, the failure is fatal or the
-- job was cancelled. `member` was running since `started` under
-- `worker`; `kind` is error, timeout, fatal or lost. `w` gathers the
-- members that wait again (L.waits). Returns 1 when retried, 2 when failed
-- for good (or nothing was left to update).
local function task_failed(base, member, kind, err, now, started, worker, w)
    local id, idx = L.member(member)
    if id == nil then
        junk()
        return 2
    end
    local r = redis.call('HGET', base .. ':jd', id)
    local s, _, _, o = L.rec(r)
    if s == nil then
        junk() -- the record is gone (deleted by hand)
        return 2
    end
    local tasks = L.optn(o, 'n', 1)
    local fanout = tasks > 1
    if fanout and idx == nil then
        junk() -- a cursor never runs
        return 2
    end
    idx = idx or '0'
    local jk = job_key(base, id)
    local attempt = redis.call('HINCRBY', base .. ':att', member, 1)
    err = clip(err, MAX_ERROR_BYTES)
    if kind == 'timeout' then
        redis.call('HINCRBY', jk, 'timeouts', 1)
    elseif kind == 'lost' then
        redis.call('HINCRBY', jk, 'lost', 1)
    end
    local cancelled = s == 'x'
    if kind ~= 'fatal' and not cancelled
        and attempt <= L.optn(o, 'r', 3) then
        redis.call('HINCRBY', jk, 'retried', 1)
        if fanout then
            redis.call('HSET', jk, task_field(idx, 'error'), err,
                task_field(idx, 'state'), moved('running',
                    kind == 'lost' and 'pending' or 'delayed'))
            kcall('SADD', requeued_key(base, id), member)
        else
            redis.call('HSET', jk, '0:error', err)
        end
        if kind == 'lost' then
            -- The task did not fail: its worker went away. Run it again
            -- now, at the front of its priority.
            L.wait(w, member, L.optn(o, 'p', 0), 'front')
        else
            L.delay(base, member, now + backoff_ms(attempt, L.optn(o, 'b', 1000)))
            CALL.delayed = true
        end
        return 1
    end
    redis.call('HDEL', base .. ':att', member)
    local tail = ' ' .. istr(started or now) .. ' ' .. (worker or '')
    if not fanout then
        if cancelled then
            L.single_cancelled(base, id, now, started or now, worker or '')
            return 2
        end
        CALL.counts.failed = (CALL.counts.failed or 0) + 1
        redis.call('HSETNX', jk, 'error', clip('task 0: ' .. err,
            MAX_ERROR_BYTES))
        -- (the attempt it failed on, past the first, as a completed
        -- task's end has it: llmb_job answers it)
        if attempt > 1 then tail = tail .. ' ' .. istr(attempt) end
        L.job_end(base, id, 'failed', now, tail, true, err)
        return 2
    end
    redis.call('HSET', jk, task_field(idx, 'error'), err,
        task_field(idx, 'attempt'), istr(attempt),
        task_field(idx, 'worker'), worker or '')
    if cancelled then
        task_cancelled(base, id, idx, 'running', now)
        return 2
    end
    redis.call('HSET', jk, task_field(idx, 'state'), moved('running', 'failed'))
    redis.call('HSETNX', jk, 'error',
        clip('task ' .. idx .. ': ' .. err, MAX_ERROR_BYTES))
    tasks_ended(base, id, 'failed', now, 1)
    return 2
end

-- A member met waiting (in state `from`: pending or delayed) whose job was
-- cancelled: a task ref the cancel did not reach (it ends at most
-- CANCEL_REFS_MAX of them; the rest are still listed in <base>:jr:<id>)
-- ends cancelled now; anything else the cancel counted already. `listed`
-- when it was taken from <base>:pl, where a cancel leaves the members it
-- ended (L.stale): one of those goes, counted back.
function L.cancelled_member(base, m, from, now, listed)
    local id, idx = L.member(m)
    if idx and kcall('SREM', requeued_key(base, id), m) == 1 then
        -- its attempts go with it, and its job leaves <base>:cx if this
        -- was its last task (L.job_end)
        redis.call('HDEL', base .. ':att', m)
        CALL.cx_may = true
        task_cancelled(base, id, idx, from, now)
    elseif id and listed then
        if idx == nil then
            kcall('HDEL', job_key(base, id), 'stale')
            L.stale(-1)
        else
            L.stale_refs(base, id, -1)
        end
    end
end

-- Members a cancel ended but left in <base>:pl (taking one out of a long
-- list is O(n)): `n` more of them (negative: fewer). They are no tasks:
-- the pending count of llmb_stats (LLEN plus the field wait_p of
-- <base>:counts) leaves them out. A claim or a purge that meets one drops
-- it (L.cancelled_member; a task ref is one when it is not listed in
-- <base>:jr:<id>), and a retry of its job puts its job's member back to
-- wait where it is (the job hash's field `stale`, 50-cancel.lua).
function L.stale(n)
    behind_add('pending', -n)
end

-- Task refs of job `id` that a cancel ended but left in <base>:pl: `n`
-- more of them (negative: fewer, as a claim or a purge drops them). Out
-- of the pending count as L.stale, and counted in the job hash's field
-- `stale_refs` and in the queue's (<base>:counts): retention, deleting
-- the job, counts those still listed back (00-header.lua), as a claim
-- then drops them as junk, which has no job left to tell it they were
-- stale. Fewer are counted only in a hash that counts some (a hash
-- deleted by hand is not made again).
function L.stale_refs(base, id, n)
    L.stale(n)
    local jk = job_key(base, id)
    if n < 0 and kcall('HEXISTS', jk, 'stale_refs') ~= 1 then return end
    local left = hincr(jk, 'stale_refs', n, 0)
    if left == nil then return end -- a job key of another type: junk
    if left == 0 then redis.call('HDEL', jk, 'stale_refs') end
    CALL.counts.stale_refs = (CALL.counts.stale_refs or 0) + n
end

-- Whether `worker` holds member `ref` under token `tok`.
function L.holds(base, worker, ref, tok)
    local held = L.held_of(tok)
    if not held or ref == '~'
        or redis.call('HGET', base .. ':run', ref) ~= held then
        return false
    end
    local r = redis.call('HGET', base .. ':lease', held)
    return r ~= false and string.sub(r, 1, #worker + 1) == worker .. ' '
end
