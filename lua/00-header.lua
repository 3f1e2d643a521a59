#!lua name=llmb
--[[
The llmb function library: every transition of queue state is one of the
functions registered below, and nothing else writes queue state. This file
holds what they share: the library version, time, key names, events,
counters, retention and the end-of-task bookkeeping. The other files in lua/ add one
transition each; the build concatenates them in file-name order.

Keys. Every function is called with exactly one key, the queue's base key
`<prefix>:{<queue>}`. Every key it touches is that base plus a suffix, so
all of them share the queue's hash tag and live in one Cluster slot. See
docs/data-model.md for the full layout.
]]

local LLMB_LIB_VERSION = 7

local TWO32 = 4294967296
local MAX_ERROR_BYTES = 4096
local MAX_RESULT_BYTES_DEFAULT = 1048576
local EVENTS_MAXLEN_DEFAULT = 10000
local RETENTION_S_DEFAULT = 604800
local DEAD_MAX_DEFAULT = 10000
local BACKOFF_CAP_MS = 3600000

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function job_key(base, id) return base .. ':j:' .. id end
local function leases_key(base, worker) return base .. ':wl:' .. worker end

-- The queue name is what stands between the braces of the base key.
local function queue_of(base)
    return string.match(base, '{([^}]*)}$')
end

-- A task reference is "<job id>:<task index>"; job ids never hold ':'.
local function ref_split(ref)
    local id, idx = string.match(ref, '^(.*):(%d+)$')
    return id, idx
end

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

-- A number as the decimal text of an integer. Lua hands a number to
-- redis.call as "%.14g", which costs several times more than "%d"; the
-- hot paths format the integers they send with this.
local function istr(n)
    return string.format('%d', n)
end

-- State of the function call under way: settings read once per call, and
-- writes gathered to be made once at its end (see `register`). Redis runs
-- one call at a time, so one table serves every call in turn.
local CALL = {conf = {}, confs = {}, counts = {}, done = {}, states = {}}

-- Per-queue settings written by the coordinator or by hand (HSET
-- <base>:conf retention_s 86400); each has a built-in default. Read once
-- per call.
local function conf_num(base, field, default)
    local v = CALL.conf[field]
    if v == nil then
        local raw = CALL.conf_raw
        if raw == nil then
            -- the whole (small) hash at the first setting a call needs
            raw = {}
            local kv = redis.call('HGETALL', base .. ':conf')
            for i = 1, #kv, 2 do raw[kv[i]] = kv[i + 1] end
            CALL.conf_raw = raw
        end
        -- every setting is a count or a size: a value that is not a
        -- whole number from 0 to 2^53 takes the default
        v = tonumber(raw[field])
        if v == nil or v ~= v or v < 0 or v > 9007199254740992 then
            v = default
        else
            v = math.floor(v)
        end
        CALL.conf[field] = v
    end
    return v
end

-- conf_num as text, for commands.
local function conf_str(base, field, default)
    local v = CALL.confs[field]
    if v == nil then
        v = istr(conf_num(base, field, default))
        CALL.confs[field] = v
    end
    return v
end

-- `now` (from now_ms) as text, formatted once per call for the same value.
local function now_str(now)
    if CALL.now_v ~= now then
        CALL.now_v = now
        CALL.now_s = istr(now)
    end
    return CALL.now_s
end

-- Appends an event to the queue's stream. The stream is cut to its cap
-- (`events_max`, approximately: MAXLEN ~) once, when the call ends.
local function emit(base, ...)
    redis.call('XADD', base .. ':events', '*', ...)
    CALL.emitted = true
end

-- Jobs per command when a call ends or deletes many (LPUSH, ZADD, DEL,
-- ZREM), and per `finished` event: an event names at most ten jobs, so
-- an entry of the events stream stays a few hundred bytes and events_max
-- still bounds its memory.
local ENDED_CHUNK = 1000
local FINISHED_PER_EVENT = 10

-- Retention: deletes up to `limit` jobs that ended more than retention_s
-- ago (the oldest first, from <base>:ended), with their ids in the job
-- index and the dead set. An entry whose job is no longer that ended job
-- (deleted by hand and pushed again, so pending or running now, or ended
-- later) is only taken out of <base>:ended. Called at the end of every
-- call that ended jobs, and by llmb_reap (every coordinator tick) for
-- quiet queues. Returns the number deleted.
local function retention_trim(base, now, limit)
    local keep_s = conf_num(base, 'retention_s', RETENTION_S_DEFAULT)
    if keep_s <= 0 then return 0 end
    local cut = now - keep_s * 1000
    local old = redis.call('ZRANGEBYSCORE', base .. ':ended', '-inf',
        istr(cut), 'LIMIT', 0, limit)
    if #old == 0 then return 0 end
    local ids, keys = {}, {}
    for _, id in ipairs(old) do
        local jk = job_key(base, id)
        local f = redis.pcall('HMGET', jk, 'state', 'finished_ms')
        -- (a key of another type, set by hand, is left alone; a job hash
        -- already gone has its ids removed)
        local fin = not f.err and tonumber(f[2])
        if not f.err and (f[1] == false or (fin and fin <= cut)) then
            ids[#ids + 1] = id
            keys[#keys + 1] = jk
        end
    end
    for i = 1, #old, ENDED_CHUNK do
        redis.call('ZREM', base .. ':ended',
            unpack(old, i, math.min(#old, i + ENDED_CHUNK - 1)))
    end
    for i = 1, #ids, ENDED_CHUNK do
        local j = math.min(#ids, i + ENDED_CHUNK - 1)
        redis.call('DEL', unpack(keys, i, j))
        redis.call('ZREM', base .. ':jobs', unpack(ids, i, j))
        redis.call('ZREM', base .. ':dead', unpack(ids, i, j))
    end
    return #ids
end

-- Makes the writes gathered during the call: task counters; for the jobs
-- that ended, the hand-off to the coordinators, their entries in
-- <base>:ended, their `finished` events and the retention they bring due;
-- and the cut of the events stream.
local function call_flush(base)
    for outcome, n in pairs(CALL.counts) do
        redis.call('HINCRBY', base .. ':counts', outcome, n)
    end
    local ended = CALL.done
    local n = #ended
    if n > 0 then
        local states, now = CALL.states, CALL.ended_now
        local at = now_str(now)
        for i = 1, n, ENDED_CHUNK do
            local j = math.min(n, i + ENDED_CHUNK - 1)
            redis.call('LPUSH', base .. ':done', unpack(ended, i, j))
            local z = {}
            for k = i, j do
                z[#z + 1] = at
                z[#z + 1] = ended[k]
            end
            redis.call('ZADD', base .. ':ended', unpack(z))
        end
        -- `finished` events: one naming the job when the call ended one,
        -- else one per ten jobs with their ids and states in the same order.
        if n == 1 then
            emit(base, 'event', 'finished', 'job', ended[1], 'state', states[1])
        else
            for i = 1, n, FINISHED_PER_EVENT do
                local j = math.min(n, i + FINISHED_PER_EVENT - 1)
                emit(base, 'event', 'finished', 'jobs', istr(j - i + 1),
                    'ids', table.concat(ended, ' ', i, j),
                    'states', table.concat(states, ' ', i, j))
            end
        end
        retention_trim(base, now, n + 100)
    end
    if CALL.emitted then
        redis.call('XTRIM', base .. ':events', 'MAXLEN', '~',
            conf_str(base, 'events_max', EVENTS_MAXLEN_DEFAULT))
    end
end

-- Registers function `name`: each call starts with a fresh CALL and ends
-- with call_flush. Read-only functions get the no-writes flag.
local function register(name, fn, read_only)
    local wrapped = function(keys, args)
        CALL = {conf = {}, confs = {}, counts = {}, done = {}, states = {}}
        local reply = fn(keys, args)
        if keys[1] ~= nil then call_flush(keys[1]) end
        return reply
    end
    if read_only then
        redis.register_function{function_name = name, callback = wrapped,
            flags = {'no-writes'}}
    else
        redis.register_function(name, wrapped)
    end
end

local function wake(base, n)
    local key = base .. ':wake'
    if redis.call('LLEN', key) < 64 then
        local args = {}
        for i = 1, math.min(n, 64) do args[i] = '1' end
        redis.call('LPUSH', key, unpack(args))
    end
end

-- Cuts an error text to n bytes, keeping its start (what failed) and its
-- end (the last lines a program wrote to stderr), joined by " [...] ".
local function clip(s, n)
    if #s > n then
        return string.sub(s, 1, 256) .. ' [...] ' .. string.sub(s, #s - n + 264)
    end
    return s
end

-- Redis does not undo the writes of a function that stops on an error, so
-- a key of the wrong type (set by hand under the queue's prefix) would
-- leave a half-done transition: a job hash without its tasks, delayed tasks
-- taken out but never put back. Functions that move tasks check first.
-- `kinds` maps key suffixes to their type. Returns nil, or an error reply
-- naming the key.
local function keys_wrong(base, kinds)
    for suffix, want in pairs(kinds) do
        local key = base .. ':' .. suffix
        local got = redis.call('TYPE', key)['ok']
        if got ~= 'none' and got ~= want then
            return redis.error_reply(string.format('ERR key "%s" is a %s, '
                .. 'llmb expects a %s: it was written by something else than '
                .. 'llmb; rename or delete it (docs/data-model.md)', key, got,
                want))
        end
    end
    return nil
end

-- Retry delay with "equal jitter": half the exponential step plus a random
-- share of the other half, capped. The same formula as llmb_backoff_ms.
local function backoff_ms(attempt, base_ms)
    local d = base_ms * (2 ^ math.min(attempt - 1, 40))
    if d > BACKOFF_CAP_MS then d = BACKOFF_CAP_MS end
    return math.floor(d / 2 + math.random() * d / 2)
end

-- Ends a job whose last task just ended: its final state and the dead
-- set now; its hand-off to the coordinators, its `finished` event and its
-- entry in <base>:ended (from which retention deletes it) when the call
-- ends (call_flush). `f` is
-- the job's {state, tasks, failed, cancelled, expired} when the caller has
-- read them (nil to read them here); `extra` holds more field/value pairs
-- to write in the same HSET (nil for none); `jk` the job's key, or nil.
local function job_finish(base, id, now, f, extra, jk)
    jk = jk or job_key(base, id)
    if f == nil then
        f = redis.call('HMGET', jk, 'state', 'tasks', 'failed', 'cancelled',
            'expired')
    end
    local tasks = tonumber(f[2]) or 0
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
    redis.call('HSET', jk, unpack(fields))
    local done = CALL.done
    done[#done + 1] = id
    CALL.states[#done] = state
    CALL.ended_now = now
    if state == 'failed' then
        local dk = base .. ':dead'
        redis.call('ZADD', dk, now, id)
        local cap = conf_num(base, 'dead_max', DEAD_MAX_DEFAULT)
        if redis.call('ZCARD', dk) > cap then
            redis.call('ZREMRANGEBYRANK', dk, 0, -cap - 1)
        end
    end
end

-- Counts one task of job `id` as ended with `outcome` (ok, failed or
-- cancelled), in the job and in the queue's <base>:counts; finishes the
-- job when it was the last one. Emits a progress
-- event about every hundredth of a fan-out job.
local function task_ended(base, id, outcome, now)
    local jk = job_key(base, id)
    CALL.counts[outcome] = (CALL.counts[outcome] or 0) + 1
    if outcome == 'failed' then
        redis.call('HINCRBY', jk, 'failed', 1)
    elseif outcome == 'cancelled' then
        redis.call('HINCRBY', jk, 'cancelled', 1)
    end
    local left = redis.call('HINCRBY', jk, 'left', -1)
    if left <= 0 then
        job_finish(base, id, now)
        return
    end
    local tasks = tonumber(redis.call('HGET', jk, 'tasks')) or 1
    local step = math.max(1, math.floor(tasks / 100))
    if (tasks - left) % step == 0 then
        emit(base, 'event', 'progress', 'job', id, 'done', tasks - left,
            'tasks', tasks)
    end
end

-- Ends task `idx` of job `id` as cancelled: its state, then the count.
local function task_cancelled(base, id, idx, now)
    redis.call('HSET', job_key(base, id), idx .. ':state', 'cancelled')
    task_ended(base, id, 'cancelled', now)
end

-- Drops the lease of task `ref` held by `worker`: out of the running set
-- and the worker's lease hash. The caller decides what happens next.
local function lease_drop(base, worker, ref)
    redis.call('ZREM', base .. ':running', ref)
    redis.call('HDEL', leases_key(base, worker), ref)
end

-- Takes back the leases a report names: `args` holds, from index
-- `first`, groups of `stride` values that start with a task ref and its
-- token. Returns the refs and, per group, true when `worker` held that
-- task under that token; those leases are dropped, with one read and one
-- drop for the whole call. The same task twice counts once.
local function leases_take(base, worker, args, first, stride)
    local refs, ok, mine = {}, {}, {}
    for i = first, #args, stride do refs[#refs + 1] = args[i] end
    if #refs == 0 then return refs, ok end
    local lk = leases_key(base, worker)
    local held = redis.call('HMGET', lk, unpack(refs))
    for k, ref in ipairs(refs) do
        ok[k] = held[k] == args[first + (k - 1) * stride + 1] and not mine[ref]
        if ok[k] then
            mine[ref] = true
            mine[#mine + 1] = ref
        end
    end
    if #mine > 0 then
        redis.call('ZREM', base .. ':running', unpack(mine))
        redis.call('HDEL', lk, unpack(mine))
    end
    return refs, ok
end

-- A task that ran and did not succeed: schedule the next attempt, or fail
-- it for good when its attempts are used up, the failure is fatal or the
-- job was cancelled. `kind` is error, timeout, fatal or lost. Returns 1 when
-- retried, 2 when failed for good.
local function task_failed(base, ref, kind, err, now)
    local id, idx = ref_split(ref)
    local jk = job_key(base, id)
    local j = redis.call('HMGET', jk, 'max_retries', 'backoff_ms', 'state',
        'priority', idx .. ':attempt')
    if j[3] == false then
        return 2 -- the job hash is gone (deleted by hand): nothing to update
    end
    local attempt = tonumber(j[5]) or 1
    redis.call('HSET', jk, idx .. ':error', clip(err, MAX_ERROR_BYTES))
    if kind == 'timeout' then
        redis.call('HINCRBY', jk, 'timeouts', 1)
    elseif kind == 'lost' then
        redis.call('HINCRBY', jk, 'lost', 1)
    end
    local max_retries = tonumber(j[1]) or 0
    if kind ~= 'fatal' and j[3] ~= 'cancelled' and attempt <= max_retries then
        redis.call('HINCRBY', jk, 'retried', 1)
        if kind == 'lost' then
            -- The task did not fail: its worker went away. Run it again now.
            local seq = redis.call('INCR', base .. ':seq')
            redis.call('ZADD', base .. ':pending',
                pending_score(tonumber(j[4]) or 0, seq), ref)
            redis.call('HSET', jk, idx .. ':state', 'pending')
            wake(base, 1)
        else
            local due = now + backoff_ms(attempt, tonumber(j[2]) or 1000)
            redis.call('ZADD', base .. ':delayed', due, ref)
            redis.call('HSET', jk, idx .. ':state', 'delayed')
        end
        return 1
    end
    if j[3] == 'cancelled' then
        task_cancelled(base, id, idx, now)
        return 2
    end
    redis.call('HSET', jk, idx .. ':state', 'failed')
    redis.call('HSETNX', jk, 'error',
        clip('task ' .. idx .. ': ' .. err, MAX_ERROR_BYTES))
    task_ended(base, id, 'failed', now)
    return 2
end

register('llmb_version', function() return LLMB_LIB_VERSION end, true)
