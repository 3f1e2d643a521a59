--[[
claim: hands up to n pending tasks of one queue to a worker. It first
promotes delayed tasks whose time has come (bounded), then pops the
highest-priority tasks, records a lease for each (deadline in the running
set, token in the worker's lease hash) and marks a job running on its
first claim. If tasks are left after a full batch it wakes one more idle
worker, so a burst spreads over every idle worker without polling.

ARGV: worker id, n (1..1000), lease_ms, [promote limit, default 1000].
Reply: {now_ms, next_due_ms or -1, count, then per task: job id, task
index, token, attempt, type, payload, timeout_s, task count}.
]]

local CLAIM_FIELDS = 8
local CLAIM_KEYS = {pending = 'zset', delayed = 'zset', running = 'zset',
    wake = 'list', seq = 'string', tok = 'string'}

-- Moves delayed tasks that are due into the pending set, at most `limit`.
local function promote(base, now, limit)
    local due = redis.call('ZRANGEBYSCORE', base .. ':delayed', '-inf', now,
        'LIMIT', 0, limit)
    if #due == 0 then return 0 end
    local prio = {}
    local seq = redis.call('INCRBY', base .. ':seq', #due) - #due
    local zargs = {}
    for i, ref in ipairs(due) do
        -- (a ref that names no task, added by hand, is dropped)
        local id, idx = ref_split(ref)
        if id and prio[id] == nil then
            local p = redis.pcall('HGET', job_key(base, id), 'priority')
            prio[id] = type(p) == 'string' and tonumber(p) or false
        end
        if id and prio[id] then
            zargs[#zargs + 1] = pending_score(prio[id], seq + i)
            zargs[#zargs + 1] = ref
            redis.call('HSET', job_key(base, id), idx .. ':state', 'pending')
        end
    end
    redis.call('ZREM', base .. ':delayed', unpack(due))
    if #zargs > 0 then
        redis.call('ZADD', base .. ':pending', unpack(zargs))
    end
    return #zargs / 2
end

local function claim(keys, args)
    local base = keys[1]
    local worker = args[1]
    local n = tonumber(args[2])
    local lease_ms = tonumber(args[3])
    local limit = tonumber(args[4]) or 1000
    if worker == nil or worker == '' or n == nil or n < 1 or n > 1000
        or lease_ms == nil or lease_ms < 100 then
        return redis.error_reply('ERR usage: FCALL llmb_claim 1 <queue key> '
            .. '<worker> <n 1..1000> <lease_ms >= 100> [promote_limit]')
    end
    local wrong = keys_wrong(base, CLAIM_KEYS)
    if wrong then return wrong end
    n = math.floor(n)
    local now = now_ms()
    -- The head of the delayed set: promote only when it is due; otherwise
    -- it is also the next due time of the reply.
    local dk = base .. ':delayed'
    local head = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES')
    if #head > 0 and tonumber(head[2]) <= now then
        promote(base, now, limit)
        head = nil
    end
    -- (ZRANGE and ZREMRANGEBYRANK rather than ZPOPMIN: no scores to format
    -- and parse)
    local pk = base .. ':pending'
    local popped = redis.call('ZRANGE', pk, 0, n - 1)
    local out = {now, -1, 0}
    local count = 0
    if #popped > 0 then
        redis.call('ZREMRANGEBYRANK', pk, 0, #popped - 1)
        local deadline = istr(now + lease_ms)
        local tok = redis.call('INCRBY', base .. ':tok', #popped) - #popped
        -- The popped tasks grouped by job (group_add).
        local jobs, order = {}, {}
        local ids, idxs = {}, {}
        for i = 1, #popped do
            -- (a ref that names no task, added by hand, is dropped)
            local id, idx = ref_split(popped[i])
            ids[i], idxs[i] = id or false, idx or false
            if id then group_add(jobs, order, id, idx) end
        end
        local attempts = {}
        for _, id in ipairs(order) do
            local g = jobs[id]
            local jk = job_key(base, id)
            local j
            if #g == 1 then
                j = redis.pcall('HMGET', jk, 'state', 'type', 'payload',
                    'timeout_s', 'tasks', task_field(g[1], 'attempt'))
            else
                local hm = {'state', 'type', 'payload', 'timeout_s', 'tasks'}
                for k, idx in ipairs(g) do hm[5 + k] = task_field(idx, 'attempt') end
                j = redis.pcall('HMGET', jk, unpack(hm))
            end
            -- A task whose job is gone (deleted by hand, or its key replaced
            -- by another type) is dropped; one of a cancelled job is counted
            -- as cancelled.
            if j.err then
                jobs[id] = false
            elseif j[1] == 'cancelled' then
                for _, idx in ipairs(g) do task_cancelled(base, id, idx, now) end
                jobs[id] = false
            elseif j[1] == false then
                jobs[id] = false
            else
                local set = {}
                if j[1] == 'pending' then
                    set[1], set[2], set[3], set[4] = 'state', 'running',
                        'started_ms', now_str(now)
                end
                local a = {}
                for k, idx in ipairs(g) do
                    a[idx] = (tonumber(j[5 + k]) or 0) + 1
                    local m = #set
                    set[m + 1] = task_field(idx, 'attempt')
                    set[m + 2] = istr(a[idx])
                    set[m + 3] = task_field(idx, 'state')
                    set[m + 4] = 'running'
                    set[m + 5] = task_field(idx, 'worker')
                    set[m + 6] = worker
                end
                attempts[id] = a
                redis.call('HSET', jk, unpack(set))
                jobs[id] = j
            end
        end
        local running, leases = {}, {}
        for i, id in ipairs(ids) do
            local j = id and jobs[id]
            if j then
                local ref = popped[i]
                tok = tok + 1
                running[#running + 1] = deadline
                running[#running + 1] = ref
                leases[#leases + 1] = ref
                leases[#leases + 1] = istr(tok)
                local o = #out
                out[o + 1] = id
                out[o + 2] = tonumber(idxs[i])
                out[o + 3] = tok
                out[o + 4] = attempts[id][idxs[i]]
                out[o + 5] = j[2]
                out[o + 6] = j[3]
                out[o + 7] = j[4]
                out[o + 8] = j[5]
                count = count + 1
            end
        end
        if count > 0 then
            redis.call('ZADD', base .. ':running', unpack(running))
            redis.call('HSET', leases_key(base, worker), unpack(leases))
        end
        if #popped == n and redis.call('ZCARD', pk) > 0 then
            wake(base, 1)
        end
    end
    out[3] = count
    if head == nil then head = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES') end
    if #head > 0 then out[2] = tonumber(head[2]) end
    return out
end

-- ARGV: [limit, default 1000]. Promotes due delayed tasks without
-- claiming, for the coordinator when no worker claims, and wakes idle
-- workers for them. Reply: number of tasks promoted.
local function promote_due(keys, args)
    local base = keys[1]
    local limit = math.floor(tonumber(args[1]) or 1000)
    local wrong = keys_wrong(base, CLAIM_KEYS)
    if wrong then return wrong end
    local n = promote(base, now_ms(), limit)
    if n > 0 then wake(base, n) end
    return n
end

register('llmb_claim', claim)
register('llmb_promote', promote_due)
