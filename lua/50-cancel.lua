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

-- The state of the end of job `id` whose value is r (L.end_of), or nil
-- while the job has none.
local function end_state(base, id, r)
    local e = L.end_of(base, id, r)
    if not e then return nil end
    return END_STATE[string.sub(e, 1, 1)]
end

-- Cancels job `id`: its record becomes cancelled ('x'), its waiting tasks
-- end at once (its member, or its cursor, which stands for every task it
-- has not handed out, and its waiting task refs; a member in <base>:pl
-- stays there until a claim or a purge meets it and drops it), and its
-- running tasks stop at their next heartbeat (<base>:cx names it until
-- they have). Returns the number of tasks removed and the work done (refs
-- touched), or nil and the job's state when it had already ended ("gone"
-- when there is no record, "stopping" when it was cancelled and still has
-- tasks running: nothing is written then), and the record's state ('p'
-- or 'x'). `dropping` is a member of the job that the caller takes out
-- of <base>:pl (purge); the others the cancel ends there stay (L.stale).
local function job_cancel(base, id, now, why, dropping)
    local jd = base .. ':jd'
    local r = redis.call('HGET', jd, id)
    local s, _, _, o = L.rec(r)
    if s == nil then return nil, 'gone' end
    local ended = end_state(base, id, r)
    if ended then return nil, ended, s end
    if s == 'x' then return nil, 'stopping', s end
    local jk = job_key(base, id)
    local tasks = L.optn(o, 'n', 1)
    local j
    if tasks > 1 then
        -- a fan-out job whose hash is gone (deleted by hand) is junk:
        -- nothing is written, not even a hash brought back
        j = kcall('HMGET', jk, 'next', 'ahead', 'left')
        if j == nil or not j[3] then
            if j then junk() end
            return nil, 'gone'
        end
    end
    redis.call('HSET', jd, id, 'x' .. string.sub(r, 2))
    redis.call('HSET', jk, 'cancelled_ms', now)
    if why then redis.call('HSETNX', jk, 'error', why) end
    redis.call('ZREM', base .. ':deadlines', id)
    local pz, pd = base .. ':pz', base .. ':pd'
    local removed, work = 0, 1
    if tasks == 1 then
        if redis.call('HEXISTS', base .. ':run', id) == 1 then
            -- running: it stops at its worker's next heartbeat
            redis.call('SADD', base .. ':cx', id)
        else
            if redis.call('ZREM', pz, id) + redis.call('ZREM', pd, id) == 0
                and dropping ~= id then
                -- it waits in <base>:pl, and stays there
                redis.call('HSET', jk, 'stale', '1')
                L.stale(1)
            end
            redis.call('HDEL', base .. ':att', id)
            L.single_cancelled(base, id, now, nil, nil)
            removed = 1
        end
        emit(base, 'event', 'cancelled', 'job', id, 'removed', removed)
        return removed, work
    end
    redis.call('HSET', jk, 'state', 'cancelled')
    local behind = tasks - (tonumber(j[1]) or 0) - (tonumber(j[2]) or 0)
    if behind > 0 then
        -- the cursor waits in one of the three; it goes from the sorted
        -- sets, and stays in the list (L.stale)
        removed = behind
        if redis.call('ZREM', pd, id) > 0 then
            behind_add('delayed', 1 - behind)
        elseif redis.call('ZREM', pz, id) > 0 or dropping == id then
            behind_add('pending', 1 - behind)
        else
            behind_add('pending', 1 - behind)
            redis.call('HSET', jk, 'stale', '1')
            L.stale(1)
        end
    end
    local refs = kcall('SPOP', requeued_key(base, id), CANCEL_REFS_MAX) or {}
    -- the refs found waiting end cancelled (a ref running, which may
    -- still be listed, stays: it stops at its next heartbeat)
    for i = 1, #refs, CHUNK do
        local part = {unpack(refs, i, math.min(#refs, i + CHUNK - 1))}
        local run = redis.call('HMGET', base .. ':run', unpack(part))
        local gone, set = {}, {}
        for k, ref in ipairs(part) do
            local _, idx = L.member(ref)
            if idx and not run[k] then
                gone[#gone + 1] = ref
                set[#set + 1] = task_field(idx, 'state')
                set[#set + 1] = 'cancelled'
            end
        end
        if #gone > 0 then
            -- those not in the sorted sets wait in <base>:pl, and stay
            local listed = #gone - redis.call('ZREM', pz, unpack(gone))
                - redis.call('ZREM', pd, unpack(gone))
            for _, ref in ipairs(gone) do
                if ref == dropping then listed = listed - 1 end
            end
            if listed > 0 then L.stale_refs(base, id, listed) end
            redis.call('HDEL', base .. ':att', unpack(gone))
            redis.call('HSET', jk, unpack(set))
        end
        removed = removed + #gone
    end
    work = work + #refs
    local left = tonumber(j[3]) or tasks
    if left - removed > 0 then redis.call('SADD', base .. ':cx', id) end
    emit(base, 'event', 'cancelled', 'job', id, 'removed', removed)
    if removed > 0 then tasks_ended(base, id, 'cancelled', now, removed) end
    return removed, work
end

-- ARGV: job id. Reply: number of pending tasks removed.
local function cancel(keys, args)
    local base = keys[1]
    local id = args[1]
    if id == nil or redis.call('HEXISTS', base .. ':jd', id) == 0 then
        return not_found(base, id)
    end
    local removed, state = job_cancel(base, id, now_ms(), nil)
    if state == 'gone' then return not_found(base, id) end
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
    local jd = base .. ':jd'
    local r = id and redis.call('HGET', jd, id)
    local s, _, _, o = L.rec(r)
    if s == nil then
        -- An expired job leaves its id in the dead set: drop it there.
        if id ~= nil then redis.call('ZREM', base .. ':dead', id) end
        return not_found(base, id)
    end
    if L.optn(o, 'n', 1) > 1
        and redis.call('EXISTS', job_key(base, id)) == 0 then
        -- A fan-out job whose hash is gone (deleted by hand) has no tasks
        -- to run again, as a claim meeting its cursor finds: junk.
        redis.call('ZREM', base .. ':dead', id)
        junk()
        return not_found(base, id)
    end
    local state = end_state(base, id, r)
    if state == nil and s == 'x' then
        -- A cancelled job whose running tasks have not stopped yet:
        -- running them again now would run them twice. (Its tasks not
        -- ended are those: the cancel ended the waiting ones.)
        local left = 1
        if L.optn(o, 'n', 1) > 1 then
            left = tonumber(kcall('HGET', job_key(base, id), 'left')) or 1
        end
        return redis.error_reply(string.format('ERR job "%s" is cancelled '
            .. 'but %d of its tasks are still stopping; retry it once it '
            .. 'has ended', id, left))
    end
    if state ~= 'failed' and state ~= 'cancelled' then
        local now_state = state or (redis.call('HEXISTS', base .. ':run', id)
            == 1 and 'running' or 'pending')
        if state == nil and L.optn(o, 'n', 1) > 1 then
            now_state = kcall('HGET', job_key(base, id), 'state') or 'pending'
        end
        return redis.error_reply(string.format('ERR job "%s" is %s; only failed '
            .. 'or cancelled jobs can be retried', id, now_state))
    end
    -- its record as it was pushed: without its end, not cancelled (and
    -- its end of library version 30 gone, where it still is)
    redis.call('HSET', jd, id, 'p' .. string.sub(L.rec_inner(r), 2))
    if L.je_exists(base) then redis.call('HDEL', base .. ':je', id) end
    local jk = job_key(base, id)
    local tasks = L.optn(o, 'n', 1)
    local prio = L.optn(o, 'p', 0)
    local w = L.waits(base)
    local again = 1
    -- Library versions before 6 kept the task fields in <base>:t:<id>: a
    -- job that ended under one of them has them moved into its hash first,
    -- so its completed tasks keep their results and do not run again.
    local legacy = base .. ':t:' .. id
    if redis.call('EXISTS', legacy) == 1 then
        if tasks > 1 then
            local kv = kcall('HGETALL', legacy)
            if kv then chunked('HSET', jk, kv) end
        end
        redis.call('DEL', legacy)
    end
    -- A member the cancel left in <base>:pl (L.stale) waits again where
    -- it is: pushed again, the job would wait (and run) twice.
    local stale = s == 'x' and kcall('HGET', jk, 'stale') == '1'
    if stale then redis.call('HDEL', jk, 'stale') end
    if tasks == 1 then
        redis.call('HDEL', base .. ':att', id)
        if stale then
            L.stale(-1)
        else
            L.wait(w, id, prio, 'tail')
        end
    else
        local j = redis.call('HMGET', jk, 'failed', 'cancelled')
        local ok = tasks - (tonumber(j[1]) or 0) - (tonumber(j[2]) or 0)
        again = tasks - ok
        -- every task that did not complete waits again, in O(1): the
        -- cursor from index 0, which skips the `ahead` that completed,
        -- SWEEP_SCAN per claim
        if again > 0 then
            if stale then
                L.stale(-1)
            else
                L.wait(w, id, prio, 'tail')
            end
            behind_add('pending', again - 1)
            redis.call('HSET', jk, 'next', '0', 'ahead', istr(ok))
        end
        redis.call('HSET', jk, 'state', 'pending', 'left', istr(again))
    end
    L.waits_flush(w)
    redis.call('HDEL', jk, 'failed', 'cancelled', 'ok', 'error', 'aggregate',
        'aggregated_ms', 'finished_ms', 'cancelled_ms', 'expired')
    -- the version fences the aggregate of the earlier run (70-aggregate)
    redis.call('HINCRBY', jk, 'version', 1)
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

-- Cancels the jobs of up to `limit` members waiting at the head of
-- `where` ('pl', 'pz' or 'pd'), while the budget `b` (a table {left = n})
-- lasts; the members go. A member whose job has ended, is gone or is
-- cancelled, or that names no task, goes too (junk when it names none).
-- Returns the jobs cancelled.
local function purge_where(base, where, limit, now, b)
    local key = base .. ':' .. where
    local list = where == 'pl'
    local ms = list and redis.call('LRANGE', key, 0, limit - 1)
        or redis.call('ZRANGE', key, 0, limit - 1)
    local done, jobs = 0, 0
    -- (the members met: a cancel takes its job's members out of the
    -- sorted sets itself, so those met go by name, never by rank)
    local met = {}
    for _, m in ipairs(ms) do
        local id, idx = L.member(m)
        if id then
            if b.left <= 0 then break end
            -- (a task ref of the list that <base>:jr:<id> does not list is
            -- one a cancel left there: L.stale)
            local stale = list and idx
                and kcall('SISMEMBER', requeued_key(base, id), m) == 0
            local removed, work, s = job_cancel(base, id, now, 'purged',
                list and m or nil)
            if removed then
                jobs = jobs + 1
                b.left = b.left - work
                if stale then L.stale_refs(base, id, -1) end
                -- a task ref the cancel did not reach (past
                -- CANCEL_REFS_MAX) goes here all the same: it ends now
                if idx then
                    L.cancelled_member(base, m, where == 'pd' and 'delayed'
                        or 'pending', now, false)
                end
            elseif s == 'x' then
                L.cancelled_member(base, m, where == 'pd' and 'delayed'
                    or 'pending', now, list)
            elseif stale and work ~= 'gone' then
                -- (one of a job gone is junk: retention, deleting the
                -- job, counted it back)
                L.stale_refs(base, id, -1)
            end
        else
            junk()
        end
        done = done + 1
        met[done] = m
    end
    if done > 0 then
        if list then
            redis.call('LTRIM', key, done, -1)
        else
            chunked('ZREM', key, met)
        end
    end
    return jobs
end

-- ARGV: [limit 1..250, default 250]. Cancels the jobs of up to `limit`
-- waiting members of each of <base>:pz, <base>:pl and <base>:pd. Reply:
-- {jobs cancelled, members still waiting}; call again until nothing waits.
local function purge(keys, args)
    local base = keys[1]
    local limit, err = limit_arg('llmb_purge', args[1], CALL_MAX)
    if limit == nil then return err end
    local now = now_ms()
    local b = {left = CANCEL_TASK_BUDGET}
    local jobs = purge_where(base, 'pz', limit, now, b)
        + purge_where(base, 'pl', limit, now, b)
        + purge_where(base, 'pd', limit, now, b)
    return {jobs, redis.call('LLEN', base .. ':pl')
        + redis.call('ZCARD', base .. ':pz')
        + redis.call('ZCARD', base .. ':pd')}
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
        local r = redis.call('HGET', base .. ':jd', id)
        local s, _, _, o = L.rec(r)
        if s == 'p' and not end_state(base, id, r) then
            local jk = job_key(base, id)
            -- (a fan-out job whose hash was deleted by hand is not given
            -- one back: its cancel finds it gone, junk)
            if L.optn(o, 'n', 1) == 1 or redis.call('EXISTS', jk) == 1 then
                kcall('HSET', jk, 'expired', 1)
            end
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
