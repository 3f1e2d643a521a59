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
        local id, idx = ref_split(ref)
        if prio[id] == nil then
            prio[id] = tonumber(redis.call('HGET', job_key(base, id), 'priority')) or false
        end
        if prio[id] then
            zargs[#zargs + 1] = pending_score(prio[id], seq + i)
            zargs[#zargs + 1] = ref
            redis.call('HSET', tasks_key(base, id), idx .. ':state', 'pending')
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
    promote(base, now, limit)
    local popped = redis.call('ZPOPMIN', base .. ':pending', n)
    local out = {now, -1, 0}
    local count = 0
    if #popped > 0 then
        local deadline = now + lease_ms
        local tok = redis.call('INCRBY', base .. ':tok', #popped / 2) - #popped / 2
        local jobs = {}
        local running, leases = {}, {}
        for i = 1, #popped, 2 do
            local ref = popped[i]
            local id, idx = ref_split(ref)
            local j = jobs[id]
            if j == nil then
                local jk = job_key(base, id)
                j = redis.call('HMGET', jk, 'state', 'type', 'payload',
                    'timeout_s', 'tasks')
                if j[1] == 'pending' then
                    redis.call('HSET', jk, 'state', 'running', 'started_ms', now)
                    j[1] = 'running'
                end
                jobs[id] = j
            end
            -- A task whose job is gone (deleted by hand) is dropped; one of a
            -- cancelled job is counted as cancelled.
            if j[1] == 'cancelled' then
                task_cancelled(base, id, idx, now)
            elseif j[1] ~= false then
                tok = tok + 1
                local tk = tasks_key(base, id)
                local attempt = redis.call('HINCRBY', tk, idx .. ':attempt', 1)
                redis.call('HSET', tk, idx .. ':state', 'running',
                    idx .. ':worker', worker)
                running[#running + 1] = deadline
                running[#running + 1] = ref
                leases[#leases + 1] = ref
                leases[#leases + 1] = tok
                local o = #out
                out[o + 1] = id
                out[o + 2] = tonumber(idx)
                out[o + 3] = tok
                out[o + 4] = attempt
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
        if #popped / 2 == n and redis.call('ZCARD', base .. ':pending') > 0 then
            wake(base, 1)
        end
    end
    out[3] = count
    local nd = redis.call('ZRANGE', base .. ':delayed', 0, 0, 'WITHSCORES')
    if #nd > 0 then out[2] = tonumber(nd[2]) end
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
