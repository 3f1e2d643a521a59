--[[
Operator transitions on whole jobs: cancel, retry, purge of a queue, and
job deadlines. Each touches a job's tasks a thousand at a time, so its
work is bounded by the job's task count, never by the queue's size.
]]

local function not_found(base, id)
    return redis.error_reply(string.format('ERR job "%s" not found in queue "%s"',
        tostring(id), tostring(queue_of(base))))
end

-- Most waiting task refs of a fan-out job (listed in <base>:jr:<id>) that
-- one cancel removes; any left are ended as cancelled when a claim, a
-- purge or a promote meets them.
local CANCEL_REFS_MAX = 1000

-- Most tasks that one call of purge or deadlines cancels by reference
-- (cursors count as one); the rest waits for the next call, so no call
-- blocks Redis for long.
local CANCEL_TASK_BUDGET = 1000

-- Cancels job `id`: removes its waiting tasks at once (its cursor, which
-- stands for every task it has not handed out, and its waiting task refs)
-- and marks it cancelled, so running tasks stop at their next heartbeat.
-- Returns the number of tasks removed and the work done (refs touched),
-- or nil and the job's state when it had already ended ("gone" when there
-- is no job hash, "stopping" when it was cancelled and still has tasks
-- running: nothing is written then).
local function job_cancel(base, id, now, why)
    local jk = job_key(base, id)
    local j = kcall('HMGET', jk, 'state', 'tasks', 'next', 'ahead', 'left')
    if j == nil then return nil, 'gone' end
    if j[1] == false then return nil, 'gone' end
    if TERMINAL[j[1]] then
        -- (a cancelled job whose running tasks have not all stopped yet
        -- answers 'stopping')
        -- (an absent `left` is `tasks`: none ended yet)
        local left = tonumber(j[5]) or tonumber(j[2] or JOB_DEFAULTS.tasks)
        if j[1] == 'cancelled' and left > 0 then
            return nil, 'stopping'
        end
        return nil, j[1]
    end
    redis.call('HSET', jk, 'state', 'cancelled', 'cancelled_ms', now)
    if why then redis.call('HSETNX', jk, 'error', why) end
    local n = tonumber(j[2]) or 1
    local pk, dk = base .. ':pending', base .. ':delayed'
    local removed, work = 0, 1
    local refs
    if n == 1 then
        refs = {id .. ':0'}
    else
        local cur = cursor_of(id)
        local behind = n - (tonumber(j[3]) or 0) - (tonumber(j[4]) or 0)
        if redis.call('ZREM', pk, cur) > 0 then
            removed = behind
            behind_add('pending', 1 - behind)
        elseif redis.call('ZREM', dk, cur) > 0 then
            removed = behind
            behind_add('delayed', 1 - behind)
        end
        refs = kcall('SPOP', requeued_key(base, id), CANCEL_REFS_MAX) or {}
    end
    -- the refs found waiting go, and their tasks are cancelled (a ref no
    -- longer waiting, such as a single task that is running, stays: it
    -- stops at its next heartbeat)
    for i = 1, #refs, CHUNK do
        local part = {unpack(refs, i, math.min(#refs, i + CHUNK - 1))}
        local sp = redis.call('ZMSCORE', pk, unpack(part))
        local sd = redis.call('ZMSCORE', dk, unpack(part))
        local inp, ind, set = {}, {}, {}
        for k, ref in ipairs(part) do
            local _, idx = member_parse(ref)
            if idx and (sp[k] or sd[k]) then
                if sp[k] then inp[#inp + 1] = ref else ind[#ind + 1] = ref end
                set[#set + 1] = task_field(idx, 'state')
                set[#set + 1] = 'cancelled'
            end
        end
        if #inp > 0 then redis.call('ZREM', pk, unpack(inp)) end
        if #ind > 0 then redis.call('ZREM', dk, unpack(ind)) end
        if #set > 0 then redis.call('HSET', jk, unpack(set)) end
        removed = removed + #inp + #ind
    end
    work = work + #refs
    redis.call('ZREM', base .. ':deadlines', id)
    emit(base, 'event', 'cancelled', 'job', id, 'removed', removed)
    if removed > 0 then tasks_ended(base, id, 'cancelled', now, removed) end
    return removed, work
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
            id, (state == 'cancelled' or state == 'stopping')
                and 'been cancelled' or state))
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
    local j = redis.call('HMGET', jk, 'state', 'tasks', 'priority', 'left',
        'failed', 'cancelled')
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
    -- (an absent `left` is `tasks`: none ended yet)
    local left = tonumber(j[4]) or tonumber(j[2] or JOB_DEFAULTS.tasks)
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
        chunked('HSET', jk, kv)
        redis.call('DEL', legacy)
    end
    -- Every task that did not complete waits again, in O(1): a single
    -- task as its ref; a fan-out job as its cursor from index 0, which
    -- skips the tasks that completed (`ahead` of them), SWEEP_SCAN per
    -- claim.
    local n = tonumber(j[2]) or 1
    local prio = tonumber(j[3]) or 0
    local score = pending_score(prio, redis.call('INCR', base .. ':seq'))
    local again, set = 0, {}
    if n == 1 then
        if redis.call('HGET', jk, '0:state') ~= 'completed' then
            again = 1
            redis.call('ZADD', base .. ':pending', score, id .. ':0')
            set = {'0:state', 'pending', '0:attempt', '0'}
        end
    else
        local ok = n - (tonumber(j[5]) or 0) - (tonumber(j[6]) or 0)
        again = n - ok
        if again > 0 then
            redis.call('ZADD', base .. ':pending', score, cursor_of(id))
            behind_add('pending', again - 1)
            set = {'next', '0', 'ahead', istr(ok)}
        end
    end
    redis.call('HDEL', jk, 'failed', 'cancelled', 'ok', 'error', 'aggregate',
        'aggregated_ms', 'finished_ms', 'cancelled_ms', 'expired')
    set[#set + 1] = 'state'
    set[#set + 1] = 'pending'
    set[#set + 1] = 'left'
    set[#set + 1] = istr(again)
    redis.call('HSET', jk, unpack(set))
    -- the version fences the aggregate of the earlier run (70-aggregate)
    redis.call('HINCRBY', jk, 'version', 1)
    -- (jobs that ended under library versions before 7 have a TTL)
    redis.call('PERSIST', jk)
    redis.call('ZREM', base .. ':ended', id)
    redis.call('ZREM', base .. ':dead', id)
    -- Not aggregated yet from its first run: it will be when it ends again.
    redis.call('ZREM', base .. ':aggr', id)
    redis.call('LREM', base .. ':done', 0, id)
    -- A synchronized start of its first run (77-rendezvous.lua) is over:
    -- the tasks that run again meet anew, `expect` of them. (UNLINK: the
    -- hash has a field per task, as many as max_tasks.)
    local rv = base .. ':rv:' .. id
    if redis.call('UNLINK', rv) == 1 and again > 0 then
        redis.call('HSET', rv, 'expect', istr(again))
    end
    emit(base, 'event', 'retried', 'job', id, 'tasks', again)
    if again > 0 then
        wake(base, again)
    else
        -- nothing to run again (a job that failed by its deadline after
        -- its tasks completed): it ends at once, completed
        job_finish(base, id, now_ms())
    end
    return again
end

-- Cancels the jobs of up to `limit` members waiting in `set`
-- (':pending' or ':delayed'), while the budget `b` (a table {left = n})
-- lasts. A member still waiting once its job is cancelled (a ref beyond
-- what its cancel removed, or one pushed under an older library) ends as
-- cancelled; one whose job has ended or is gone, or that names no task,
-- is junk and goes. Returns the jobs cancelled.
local function purge_set(base, set, limit, now, b)
    local key = base .. set
    local refs = redis.call('ZRANGE', key, 0, limit - 1)
    local state, jobs, drop = {}, 0, {}
    local from = set == ':pending' and 'pending' or 'delayed'
    for _, ref in ipairs(refs) do
        local id, idx = member_parse(ref)
        if id and state[id] == nil then
            if b.left <= 0 then break end
            local removed, work = job_cancel(base, id, now, 'purged')
            if removed then
                jobs = jobs + 1
                b.left = b.left - work
                state[id] = 'stopping'
            else
                state[id] = work -- gone, stopping, or how it ended
            end
        end
        if id and state[id] == 'stopping' then
            if redis.call('ZREM', key, ref) == 1 then
                if idx == '*' then
                    -- (a cancel removes the cursor: only by hand)
                    junk()
                else
                    kcall('SREM', requeued_key(base, id), ref)
                    task_cancelled(base, id, idx, from, now)
                end
            end
        else
            drop[#drop + 1] = ref
        end
    end
    if #drop > 0 then
        junk(#drop)
        chunked('ZREM', key, drop)
    end
    return jobs
end

-- ARGV: [limit 1..250, default 250]. Cancels the jobs of up to `limit`
-- waiting members (a task ref, or a fan-out job's cursor). Reply: {jobs
-- cancelled, members still waiting}; call again until nothing waits.
local function purge(keys, args)
    local base = keys[1]
    local limit, err = limit_arg('llmb_purge', args[1], CALL_MAX)
    if limit == nil then return err end
    local now = now_ms()
    local b = {left = CANCEL_TASK_BUDGET}
    local jobs = purge_set(base, ':pending', limit, now, b)
        + purge_set(base, ':delayed', limit, now, b)
    return {jobs, redis.call('ZCARD', base .. ':pending')
        + redis.call('ZCARD', base .. ':delayed')}
end

-- ARGV: [limit 1..250, default 100]. Ends jobs whose deadline_s has
-- passed: what is waiting is removed, running tasks stop at their next
-- heartbeat, and the job ends failed with the error "deadline exceeded".
-- Reply: count.
local function deadlines(keys, args)
    local base = keys[1]
    local limit, err = limit_arg('llmb_deadlines', args[1], 100)
    if limit == nil then return err end
    local now = now_ms()
    local ids = redis.call('ZRANGEBYSCORE', base .. ':deadlines', '-inf', now,
        'LIMIT', 0, limit)
    local n, budget = 0, CANCEL_TASK_BUDGET
    for _, id in ipairs(ids) do
        if budget <= 0 then break end
        redis.call('ZREM', base .. ':deadlines', id)
        local jk = job_key(base, id)
        local state = kcall('HGET', jk, 'state')
        if state and not TERMINAL[state] then
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
