--[[
The task and job lifecycle: where a task is, the states it goes through,
and the helpers every transition uses to move it.

Where a task is. At any moment a task is in exactly one of these places:

  waiting   a member of <base>:pending (ready; ordered by priority, then
            FIFO) or <base>:delayed (scored by due time). A member is
            either a task ref "<job id>:<index>" or the cursor "<job id>:*"
            of a fan-out job, which stands for every task of that job with
            an index >= the job's `next` that has not completed: a fan-out
            job of N tasks waits as one member, pushed and cancelled in
            O(1), and claim hands its indexes out in order. A task ref of
            a fan-out job that waits outside its cursor (retried, released,
            lost) is also listed in <base>:jr:<id>, so a cancel finds it.
  running   a member of <base>:running (scored by lease deadline), its
            token in the worker's lease hash <base>:wl:<worker>.
  ended     the field "<index>:state" of the job hash says completed,
            failed or cancelled.

A task that never left its cursor has no fields in the job hash.

Task states and their transitions: TASK_NEXT below is the one table of
them; `moved` checks every change a helper makes against it.

Job states: pending (nothing claimed yet) -> running (a task claimed) ->
completed, failed or cancelled (every task ended: `left` is 0). A
cancelled job is cancelled at once but ends when its running tasks have
stopped; llmb_retry takes a failed or cancelled job back to pending and
bumps its `version`, which fences the aggregate of the earlier run.
]]

-- The options of a job a push stores only when they are not their default
-- (the job contract's, 10-document.lua), as their text: an absent field
-- means this. llmb_job fills them in, and so do the functions that read
-- them. A job's `id` and `queue` are not stored either: its key and the
-- queue key name them.
local JOB_DEFAULTS = {priority = '0', timeout_s = '600', max_retries = '3',
    backoff_ms = '1000', tasks = '1'}
-- (`left`, the tasks not ended, is not stored either until one ends: an
-- absent `left` is `tasks`.)
-- The result a completed task stores no field for (most tasks of a
-- benchmark answer it): llmb_job answers it for a completed task without
-- a result field.
local EMPTY_RESULT = '{}'

-- state -> the states a task may go to from it.
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

-- A waiting member is "<id>:<index>" or a fan-out cursor "<id>:*"; job
-- ids never hold ':'. Returns the id and the index (a string), the id and
-- '*', or nil for a member that names no task (junk).
local function member_parse(m)
    local id, idx = string.match(m, '^([^:]+):(%d+)$')
    if id then return id, idx end
    id = string.match(m, '^([^:]+):%*$')
    if id then return id, '*' end
    return nil
end

local function cursor_of(id) return id .. ':*' end

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
-- `order` lists the jobs in the order they first came. Claim and complete
-- group a batch's tasks so each job is read and written once.
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

-- Score in the pending set: higher priority first, FIFO within one by the
-- queue's sequence number.
local function pending_score(priority, seq)
    return -priority * TWO32 + (seq % TWO32)
end

-- Retry delay with "equal jitter": half the exponential step plus a random
-- share of the other half, capped. The same formula as llmb_backoff_ms.
local function backoff_ms(attempt, base_ms)
    local d = base_ms * (2 ^ math.min(attempt - 1, 40))
    if d > BACKOFF_CAP_MS then d = BACKOFF_CAP_MS end
    return math.floor(d / 2 + math.random() * d / 2)
end

-- The one way a task goes back to wait: task `idx` of job `id` (key jk;
-- `fanout` when the job has more than one task), now in state `from`,
-- into `set` ('pending' at score `score`, or 'delayed' due at `score`).
local function task_requeue(base, jk, id, idx, fanout, from, set, score)
    local ref = id .. ':' .. idx
    redis.call('ZADD', base .. ':' .. set, score, ref)
    redis.call('HSET', jk, task_field(idx, 'state'), moved(from, set))
    if fanout then kcall('SADD', requeued_key(base, id), ref) end
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

-- Ends a job whose last task just ended: its final state and the dead
-- set now; its hand-off to the coordinators, its `finished` event and its
-- entry in <base>:ended (from which retention deletes it) when the call
-- ends (call_flush). `f` is the job's {state, tasks, failed, cancelled,
-- expired} when the caller has read them (nil to read them here); `extra`
-- holds more field/value pairs to write in the same HSET (nil for none);
-- `jk` the job's key, or nil.
local function job_finish(base, id, now, f, extra, jk)
    jk = jk or job_key(base, id)
    if f == nil then
        f = redis.call('HMGET', jk, 'state', 'tasks', 'failed', 'cancelled',
            'expired')
    end
    local tasks = tonumber(f[2] or JOB_DEFAULTS.tasks)
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
    local done = CALL.done
    done[#done + 1] = id
    CALL.states[#done] = state
    CALL.ended_now = now
    if state == 'failed' then
        local dk = base .. ':dead'
        redis.call('ZADD', dk, now, id)
        local cap = conf_num(base, 'dead_max')
        if redis.call('ZCARD', dk) > cap then
            redis.call('ZREMRANGEBYRANK', dk, 0, -cap - 1)
        end
    end
end

-- Counts `n` tasks of job `id` as ended with `outcome` (ok, failed or
-- cancelled), in the job and in the queue's <base>:counts; finishes the
-- job when they were its last ones. Returns the tasks left.
local function tasks_ended(base, id, outcome, now, n)
    local jk = job_key(base, id)
    CALL.counts[outcome] = (CALL.counts[outcome] or 0) + n
    if outcome == 'failed' then
        redis.call('HINCRBY', jk, 'failed', n)
    elseif outcome == 'cancelled' then
        redis.call('HINCRBY', jk, 'cancelled', n)
    end
    local f = redis.call('HMGET', jk, 'left', 'tasks')
    local tasks = tonumber(f[2] or JOB_DEFAULTS.tasks)
    local left = (tonumber(f[1]) or tasks) - n -- (absent: none ended yet)
    redis.call('HSET', jk, 'left', istr(left))
    if left <= 0 then
        job_finish(base, id, now)
        return left
    end
    progress(base, id, tasks, left + n, left)
    return left
end

-- Ends task `idx` of job `id`, now in state `from`, as cancelled.
local function task_cancelled(base, id, idx, from, now)
    redis.call('HSET', job_key(base, id), task_field(idx, 'state'),
        moved(from, 'cancelled'))
    tasks_ended(base, id, 'cancelled', now, 1)
end

-- Drops the lease of task `ref` held by `worker`: out of the running set
-- and the worker's lease hash. The caller decides what happens next.
local function lease_drop(base, worker, ref)
    redis.call('ZREM', base .. ':running', ref)
    kcall('HDEL', leases_key(base, worker), ref)
end

--[[
Lease tokens. claim takes the worker's secret (128 random bits it draws at
start, as hex) and hands out the token "<seq>.<secret>"; the lease hash,
which every worker credential may read, holds only "<seq>.<h>", h being
the first 20 hex digits of SHA-1(secret). So a token cannot be made from
what Redis stores: a worker can end only the tasks it was handed. A claim
without a secret (redis-cli by hand) gets the plain token "<seq>", stored
as is.
]]
local function secret_hash(secret)
    local h = CALL.sh[secret]
    if h == nil then
        h = string.sub(redis.sha1hex(secret), 1, 20)
        CALL.sh[secret] = h
    end
    return h
end

-- True when token `tok` opens the lease stored as `held`.
local function lease_opens(held, tok)
    if not held or type(tok) ~= 'string' then return false end
    local seq, secret = string.match(tok, '^(%d+)%.(.+)$')
    if seq == nil then return held == tok end
    return held == seq .. '.' .. secret_hash(secret)
end

-- Takes back the leases a report names: `args` holds, from index
-- `first`, groups of `stride` values that start with a task ref and its
-- token. Returns the refs and, per group, true when `worker` held that
-- task under that token; those leases are dropped, with one read and one
-- drop per CHUNK tasks. The same task twice counts once.
local function leases_take(base, worker, args, first, stride)
    local refs, ok, mine = {}, {}, {}
    for i = first, #args, stride do refs[#refs + 1] = args[i] end
    if #refs == 0 then return refs, ok end
    local lk = leases_key(base, worker)
    for i = 1, #refs, CHUNK do
        local j = math.min(#refs, i + CHUNK - 1)
        local held = kcall('HMGET', lk, unpack(refs, i, j)) or {}
        for k = i, j do
            local ref = refs[k]
            ok[k] = lease_opens(held[k - i + 1],
                args[first + (k - 1) * stride + 1]) and not mine[ref]
            if ok[k] then
                mine[ref] = true
                mine[#mine + 1] = ref
            end
        end
    end
    if #mine > 0 then
        chunked('ZREM', base .. ':running', mine)
        chunked('HDEL', lk, mine)
    end
    return refs, ok
end

-- A task that ran and did not succeed: schedule the next attempt, or fail
-- it for good when its attempts are used up, the failure is fatal or the
-- job was cancelled. `kind` is error, timeout, fatal or lost. Returns 1 when
-- retried, 2 when failed for good (or nothing was left to update).
local function task_failed(base, ref, kind, err, now)
    local id, idx = member_parse(ref)
    if id == nil or idx == '*' then
        junk()
        return 2
    end
    local jk = job_key(base, id)
    local j = kcall('HMGET', jk, 'max_retries', 'backoff_ms', 'state',
        'priority', task_field(idx, 'attempt'), 'tasks')
    if j == nil then return 2 end -- not a hash (junk)
    if j[3] == false then
        junk() -- the job hash is gone (deleted by hand)
        return 2
    end
    local attempt = tonumber(j[5]) or 1
    redis.call('HSET', jk, task_field(idx, 'error'), clip(err, MAX_ERROR_BYTES))
    if kind == 'timeout' then
        redis.call('HINCRBY', jk, 'timeouts', 1)
    elseif kind == 'lost' then
        redis.call('HINCRBY', jk, 'lost', 1)
    end
    local max_retries = tonumber(j[1] or JOB_DEFAULTS.max_retries)
    if kind ~= 'fatal' and j[3] ~= 'cancelled' and attempt <= max_retries then
        redis.call('HINCRBY', jk, 'retried', 1)
        local fanout = (tonumber(j[6]) or 1) > 1
        if kind == 'lost' then
            -- The task did not fail: its worker went away. Run it again now.
            local seq = redis.call('INCR', base .. ':seq')
            task_requeue(base, jk, id, idx, fanout, 'running', 'pending',
                pending_score(tonumber(j[4]) or 0, seq))
            wake(base, 1)
        else
            task_requeue(base, jk, id, idx, fanout, 'running', 'delayed',
                now + backoff_ms(attempt,
                    tonumber(j[2] or JOB_DEFAULTS.backoff_ms)))
        end
        return 1
    end
    if j[3] == 'cancelled' then
        task_cancelled(base, id, idx, 'running', now)
        return 2
    end
    redis.call('HSET', jk, task_field(idx, 'state'), moved('running', 'failed'))
    redis.call('HSETNX', jk, 'error',
        clip('task ' .. idx .. ': ' .. err, MAX_ERROR_BYTES))
    tasks_ended(base, id, 'failed', now, 1)
    return 2
end
