--[[
Operator transitions on whole jobs: cancel, retry, purge of a queue, and
job deadlines. Each touches a job's tasks a thousand at a time, so its
work is bounded by the job's task count, never by the queue's size.
]]

local TERMINAL = {completed = true, failed = true, cancelled = true}

local function not_found(base, id)
    return redis.error_reply(string.format('ERR job "%s" not found in queue "%s"',
        tostring(id), tostring(queue_of(base))))
end

-- Most task indexes that one call of purge or deadlines walks through
-- (a cancel touches every index of its job); the rest waits for the next
-- call, so no call blocks Redis for long.
local CANCEL_TASK_BUDGET = 100000

-- Cancels job `id`: removes its pending and delayed tasks at once and
-- marks it cancelled, so running tasks stop at their next heartbeat.
-- Returns the number of tasks removed and the job's task count, or nil
-- and the job's state when it had already ended ("gone" when there is no
-- job hash: nothing is written then).
local function job_cancel(base, id, now, why)
    local jk = job_key(base, id)
    local j = redis.call('HMGET', jk, 'state', 'tasks')
    if j[1] == false then return nil, 'gone' end
    if TERMINAL[j[1]] then return nil, j[1] end
    redis.call('HSET', jk, 'state', 'cancelled', 'cancelled_ms', now)
    if why then redis.call('HSETNX', jk, 'error', why) end
    local n = tonumber(j[2]) or 1
    local removed = 0
    local i = 0
    while i < n do
        local refs = {}
        local last = math.min(n, i + 1000) - 1
        for k = i, last do refs[#refs + 1] = id .. ':' .. k end
        removed = removed + redis.call('ZREM', base .. ':pending', unpack(refs))
            + redis.call('ZREM', base .. ':delayed', unpack(refs))
        i = last + 1
    end
    redis.call('ZREM', base .. ':deadlines', id)
    emit(base, 'event', 'cancelled', 'job', id, 'removed', removed)
    if removed > 0 then
        redis.call('HINCRBY', jk, 'cancelled', removed)
        if redis.call('HINCRBY', jk, 'left', -removed) <= 0 then
            job_finish(base, id, now)
        end
    end
    return removed, n
end

-- ARGV: job id. Reply: number of pending tasks removed.
local function cancel(keys, args)
    local base = keys[1]
    local id = args[1]
    if id == nil or redis.call('EXISTS', job_key(base, id)) == 0 then
        return not_found(base, id)
    end
    local removed, state = job_cancel(base, id, now_ms(), nil)
    if removed == nil then
        return redis.error_reply(string.format('ERR job "%s" has already %s',
            id, state == 'cancelled' and 'been cancelled' or state))
    end
    return removed
end

-- ARGV: job id. Runs again every task of a failed or cancelled job that
-- did not complete, with fresh attempts; completed tasks keep their
-- results. Reply: number of tasks enqueued.
local function retry(keys, args)
    local base = keys[1]
    local id = args[1]
    local jk = job_key(base, id or '')
    local j = redis.call('HMGET', jk, 'state', 'tasks', 'priority', 'left')
    if id == nil or j[1] == false then
        -- An expired job leaves its id in the dead set: drop it there.
        if id ~= nil then redis.call('ZREM', base .. ':dead', id) end
        return not_found(base, id)
    end
    if j[1] ~= 'failed' and j[1] ~= 'cancelled' then
        return redis.error_reply(string.format('ERR job "%s" is %s; only failed '
            .. 'or cancelled jobs can be retried', id, j[1]))
    end
    -- A cancelled job whose running tasks have not stopped yet: running
    -- them again now would run them twice.
    local left = tonumber(j[4]) or 0
    if left > 0 then
        return redis.error_reply(string.format('ERR job "%s" is cancelled but '
            .. '%d of its tasks are still stopping; retry it once it has ended',
            id, left))
    end
    -- Library versions before 6 kept the task fields in <base>:t:<id>: a
    -- job that ended under one of them has them moved into its hash first,
    -- so its completed tasks keep their results and do not run again.
    local legacy = base .. ':t:' .. id
    if redis.call('EXISTS', legacy) == 1 then
        local kv = redis.call('HGETALL', legacy)
        for i = 1, #kv, 4000 do
            redis.call('HSET', jk, unpack(kv, i, math.min(#kv, i + 3999)))
        end
        redis.call('DEL', legacy)
    end
    local n = tonumber(j[2]) or 1
    local prio = tonumber(j[3]) or 0
    local again = 0
    local i = 0
    while i < n do
        local fields = {}
        local last = math.min(n, i + 1000) - 1
        for k = i, last do fields[#fields + 1] = k .. ':state' end
        local st = redis.call('HMGET', jk, unpack(fields))
        local zargs, targs = {}, {}
        for k = i, last do
            if st[k - i + 1] ~= 'completed' then
                again = again + 1
                zargs[#zargs + 1] = pending_score(prio, redis.call('INCR', base .. ':seq'))
                zargs[#zargs + 1] = id .. ':' .. k
                targs[#targs + 1] = k .. ':state'
                targs[#targs + 1] = 'pending'
                targs[#targs + 1] = k .. ':attempt'
                targs[#targs + 1] = 0
            end
        end
        if #zargs > 0 then
            redis.call('HSET', jk, unpack(targs))
            redis.call('ZADD', base .. ':pending', unpack(zargs))
        end
        i = last + 1
    end
    redis.call('HDEL', jk, 'failed', 'cancelled', 'ok', 'error', 'aggregate',
        'aggregated_ms', 'finished_ms', 'cancelled_ms', 'expired')
    redis.call('HSET', jk, 'state', 'pending', 'left', again)
    -- (jobs that ended under library versions before 7 have a TTL)
    redis.call('PERSIST', jk)
    redis.call('ZREM', base .. ':ended', id)
    redis.call('ZREM', base .. ':dead', id)
    -- Not aggregated yet from its first run: it will be when it ends again.
    redis.call('ZREM', base .. ':aggr', id)
    redis.call('LREM', base .. ':done', 0, id)
    emit(base, 'event', 'retried', 'job', id, 'tasks', again)
    if again > 0 then wake(base, again) end
    return again
end

-- Cancels the jobs of up to `limit` tasks waiting in `set`, while the
-- task budget `b` (a table {left = n}) lasts. Returns the jobs cancelled.
local function purge_set(base, set, limit, now, b)
    local refs = redis.call('ZRANGE', base .. set, 0, limit - 1)
    local done, jobs, junk = {}, 0, {}
    for _, ref in ipairs(refs) do
        local id = ref_split(ref)
        if id and done[id] == nil then
            if b.left <= 0 then break end
            local removed, n = job_cancel(base, id, now, 'purged')
            done[id] = removed ~= nil
            if removed then
                jobs = jobs + 1
                b.left = b.left - n
            end
        end
        -- A waiting task whose job is gone (deleted by hand) or has already
        -- ended belongs to nothing: it goes too.
        if id == nil or done[id] == false then junk[#junk + 1] = ref end
    end
    if #junk > 0 then redis.call('ZREM', base .. set, unpack(junk)) end
    return jobs
end

-- ARGV: [limit, default 1000]. Cancels the jobs of up to `limit` waiting
-- tasks. Reply: {jobs cancelled, tasks still waiting}; call again until
-- nothing waits.
local function purge(keys, args)
    local base = keys[1]
    local limit = math.floor(tonumber(args[1]) or 1000)
    if limit < 1 then limit = 1 end
    local now = now_ms()
    local b = {left = CANCEL_TASK_BUDGET}
    local jobs = purge_set(base, ':pending', limit, now, b)
        + purge_set(base, ':delayed', limit, now, b)
    return {jobs, redis.call('ZCARD', base .. ':pending')
        + redis.call('ZCARD', base .. ':delayed')}
end

-- ARGV: [limit, default 100]. Ends jobs whose deadline_s has passed: what
-- is waiting is removed, running tasks stop at their next heartbeat, and
-- the job ends failed with the error "deadline exceeded". Reply: count.
local function deadlines(keys, args)
    local base = keys[1]
    local limit = math.floor(tonumber(args[1]) or 100)
    local now = now_ms()
    local ids = redis.call('ZRANGEBYSCORE', base .. ':deadlines', '-inf', now,
        'LIMIT', 0, limit)
    local n, budget = 0, CANCEL_TASK_BUDGET
    for _, id in ipairs(ids) do
        if budget <= 0 then break end
        redis.call('ZREM', base .. ':deadlines', id)
        local jk = job_key(base, id)
        local state = redis.call('HGET', jk, 'state')
        if state ~= false and not TERMINAL[state] then
            redis.call('HSET', jk, 'expired', 1)
            local _, tasks = job_cancel(base, id, now, 'deadline exceeded')
            budget = budget - (tonumber(tasks) or 1)
            n = n + 1
        end
    end
    return n
end

register('llmb_cancel', cancel)
register('llmb_retry', retry)
register('llmb_purge', purge)
register('llmb_deadlines', deadlines)
