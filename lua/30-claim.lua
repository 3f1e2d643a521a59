--[[
claim: hands up to n waiting tasks of one queue to a worker. It first
promotes delayed members whose time has come (bounded), then takes the
highest-priority members of the pending set: a task ref is one task, a
fan-out cursor hands out the job's next indexes, as many as the batch has
room for, and stays at the head while it has more. Each task handed out
gets a lease (deadline in the running set, token in the worker's lease
hash); a job is marked running on its first claim. If tasks are left after
a full batch, or a batch cut at CALL_MAX jobs, it wakes one more idle
worker, so a burst spreads over every idle worker without polling.

ARGV: worker id, n (1..1000 tasks), lease_ms (100..86400000), [promote
limit 0..250, default 250], [secret: 16..128 letters and digits; see lease
tokens in 05-lifecycle.lua]. A claim touches at most CALL_MAX (250) jobs:
a batch of single-task jobs stops there.
Reply: {now_ms, next_due_ms or -1, count, then per task: job id, task
index, token, attempt, type, payload, timeout_s, task count}.
]]

-- Most task indexes one claim looks through behind a cursor after a
-- retry, where tasks that completed in the earlier run are skipped.
local SWEEP_SCAN = 1000

-- Moves delayed members that are due into the pending set, at most
-- `limit` (capped at CALL_MAX). Returns the tasks they stand for, as far
-- as known: one per member.
local function promote(base, now, limit)
    limit = math.min(limit, CALL_MAX)
    if limit < 1 then return 0 end
    local dk = base .. ':delayed'
    local due = redis.call('ZRANGEBYSCORE', dk, '-inf', now, 'LIMIT', 0, limit)
    if #due == 0 then return 0 end
    local prio, behind = {}, {}
    local seq = redis.call('INCRBY', base .. ':seq', #due) - #due
    local pending = zset_new(base .. ':pending')
    local moved_n = 0
    for i, m in ipairs(due) do
        local id, idx = member_parse(m)
        if id and prio[id] == nil then
            local p = kcall('HMGET', job_key(base, id), 'priority',
                'tasks', 'next', 'ahead', 'state') or {}
            -- (a job without a state is gone; its priority may be absent:
            -- the default)
            prio[id] = p[5] and (tonumber(p[1]) or 0) or false
            behind[id] = (tonumber(p[2]) or 1) - (tonumber(p[3]) or 0)
                - (tonumber(p[4]) or 0)
        end
        if id and prio[id] and idx == '*' then
            -- a cursor moves its tasks from one count to the other
            behind_add('delayed', 1 - behind[id])
            behind_add('pending', behind[id] - 1)
        end
        if id and prio[id] then
            zset_add(pending, pending_score(prio[id], seq + i), m)
            if idx ~= '*' then
                redis.call('HSET', job_key(base, id), task_field(idx, 'state'),
                    moved('delayed', 'pending'))
            end
            moved_n = moved_n + 1
        else
            -- a member that names no task, or whose job is gone: dropped
            junk()
        end
    end
    chunked('ZREM', dk, due)
    zset_flush(pending)
    return moved_n
end

-- Takes up to `cap` task indexes from the cursor of job `id` (fields `c`:
-- tasks, next, ahead). Returns the indexes (strings), the new next and
-- ahead, and whether the cursor has no task left.
local function cursor_take(jk, c, cap)
    local tasks = tonumber(c[1]) or 1
    local nxt = tonumber(c[2]) or 0
    local ahead = tonumber(c[3]) or 0
    local got = {}
    if ahead <= 0 then
        local k = math.min(cap, tasks - nxt)
        for x = nxt, nxt + k - 1 do got[#got + 1] = istr(x) end
        nxt = nxt + k
    else
        -- after a retry: `ahead` tasks at or past next completed in an
        -- earlier run; they are skipped, SWEEP_SCAN indexes at most
        local last = math.min(tasks, nxt + SWEEP_SCAN) - 1
        local names = {}
        for x = nxt, last do names[#names + 1] = task_field(istr(x), 'state') end
        local st = redis.call('HMGET', jk, unpack(names))
        local x = nxt
        while x <= last and #got < cap do
            if st[x - nxt + 1] == 'completed' then
                ahead = ahead - 1
            else
                got[#got + 1] = istr(x)
            end
            x = x + 1
        end
        nxt = x
    end
    return got, nxt, ahead, tasks - nxt - ahead <= 0
end

-- The job fields a claim reads for the tasks it hands out, in HMGET
-- order; the attempts of task refs follow them.
local CLAIM_JOB = {'state', 'type', 'payload', 'timeout_s', 'tasks'}

local function claim(keys, args)
    local base = keys[1]
    local worker = args[1]
    local n = tonumber(args[2])
    local lease_ms = tonumber(args[3])
    local limit = tonumber(args[4] or CALL_MAX)
    local secret = args[5]
    if secret == '' then secret = nil end
    if worker == nil or worker == '' or n == nil or n < 1 or n > TASKS_MAX
        or lease_ms == nil or lease_ms < 100 or lease_ms > 86400000
        or limit == nil or limit < 0 or limit > CALL_MAX
        or (secret and (#secret < 16 or #secret > 128
            or string.find(secret, '[^%w]'))) then
        return redis.error_reply('ERR usage: FCALL llmb_claim 1 <queue key> '
            .. '<worker> <n 1..1000> <lease_ms 100..86400000> '
            .. '[promote limit 0..250] [secret: 16..128 letters and digits]')
    end
    n = math.floor(n)
    -- a paused queue hands out nothing (55-pause.lua)
    if redis.call('EXISTS', base .. ':paused') == 1 then
        return {now_ms(), -1, 0}
    end
    -- the one per-worker key claim writes, checked before any write
    local lt = redis.call('TYPE', leases_key(base, worker))['ok']
    if lt ~= 'none' and lt ~= 'hash' then
        return redis.error_reply('ERR key "' .. leases_key(base, worker)
            .. '" is a ' .. lt .. ', llmb expects a hash: it was written by '
            .. 'something else than llmb; rename or delete it')
    end
    local now = now_ms()
    -- The head of the delayed set: promote only when it is due; otherwise
    -- it is also the next due time of the reply.
    local dk = base .. ':delayed'
    local head = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES')
    if #head > 0 and tonumber(head[2]) <= now then
        promote(base, now, math.floor(limit))
        head = nil
    end
    -- (ZRANGE and ZREMRANGEBYRANK rather than ZPOPMIN: no scores to format
    -- and parse)
    local pk = base .. ':pending'
    local popped = redis.call('ZRANGE', pk, 0, n - 1)
    local out = {now, -1, 0}
    local count = 0
    if #popped > 0 then
        -- Pass 1: which tasks, grouped by job (group_add): task refs are
        -- one each; a cursor gives up to the room left, and a cursor with
        -- tasks left stays at the head and ends the batch.
        local jobs, order, cursors = {}, {}, {}
        local room, used, capped = n, 0, false
        for i = 1, #popped do
            if room == 0 then break end
            local m = popped[i]
            local id, idx = member_parse(m)
            -- at most CALL_MAX jobs: the batch ends before another one
            if id and jobs[id] == nil and #order >= CALL_MAX then
                capped = true
                break
            end
            if id == nil then
                junk()
                used = i
            elseif idx ~= '*' then
                group_add(jobs, order, id, idx)
                room = room - 1
                used = i
            else
                local jk = job_key(base, id)
                local c = kcall('HMGET', jk, 'tasks', 'next', 'ahead',
                    'state') or {}
                if c[4] == nil or c[4] == false or TERMINAL[c[4]] then
                    -- its job is gone, not a hash, or has ended: nothing
                    -- behind this cursor waits any longer
                    if c[4] == false then junk() end
                    used = i
                else
                    local got, nxt, ahead, empty = cursor_take(jk, c, room)
                    if jobs[id] == nil then group_add(jobs, order, id, nil) end
                    cursors[id] = {got = got, next = nxt, ahead = ahead,
                        had_ahead = c[3] ~= false}
                    room = room - #got
                    behind_add('pending', -#got)
                    if not empty then
                        -- more behind it: it stays; a worker comes back
                        -- for them even when this batch took none
                        if #got == 0 then wake(base, 1) end
                        break
                    end
                    behind_add('pending', 1) -- the cursor goes
                    used = i
                end
            end
        end
        if used > 0 then redis.call('ZREMRANGEBYRANK', pk, 0, used - 1) end
        -- Pass 2: each job read once and written once.
        local deadline = istr(now + lease_ms)
        local handed = n - room
        local tok = redis.call('INCRBY', base .. ':tok', handed) - handed
        local held_sfx = secret and ('.' .. secret_hash(secret)) or ''
        local tok_sfx = secret and ('.' .. secret) or ''
        local running = zset_new(base .. ':running')
        local leases = {}
        for _, id in ipairs(order) do
            local g = jobs[id]
            local jk = job_key(base, id)
            local cur = cursors[id]
            local nref = #g
            local hm = {unpack(CLAIM_JOB)}
            for k = 1, nref do hm[5 + k] = task_field(g[k], 'attempt') end
            local j = kcall('HMGET', jk, unpack(hm))
            if j == nil or j[1] == false or j[1] == 'completed'
                or j[1] == 'failed' then
                -- a task ref whose job is gone (deleted by hand, or its
                -- key replaced by another type) or has ended is dropped
                if j then junk(nref) end
            elseif j[1] == 'cancelled' then
                -- (only task refs: a cancelled job has no cursor)
                for k = 1, nref do
                    task_cancelled(base, id, g[k], 'pending', now)
                end
                if nref > 0 and (tonumber(j[5]) or 1) > 1 then
                    local r = {}
                    for k = 1, nref do r[k] = id .. ':' .. g[k] end
                    kcall('SREM', requeued_key(base, id), unpack(r))
                end
            else
                local set = {}
                if j[1] == 'pending' then
                    set[1], set[2], set[3], set[4] = 'state', 'running',
                        'started_ms', now_str(now)
                end
                if cur then
                    set[#set + 1] = 'next'
                    set[#set + 1] = istr(cur.next)
                    if cur.had_ahead then
                        set[#set + 1] = 'ahead'
                        set[#set + 1] = istr(cur.ahead)
                    end
                    -- the cursor's tasks start their first attempt
                    for _, idx in ipairs(cur.got) do g[#g + 1] = idx end
                end
                local ntask = tonumber(j[5]) or 1
                for k, idx in ipairs(g) do
                    local a = k <= nref and (tonumber(j[5 + k]) or 0) + 1 or 1
                    local m = #set
                    set[m + 1] = task_field(idx, 'attempt')
                    set[m + 2] = istr(a)
                    set[m + 3] = task_field(idx, 'state')
                    set[m + 4] = 'running'
                    set[m + 5] = task_field(idx, 'worker')
                    set[m + 6] = worker
                    local ref = id .. ':' .. idx
                    tok = tok + 1
                    zset_add(running, deadline, ref)
                    leases[#leases + 1] = ref
                    leases[#leases + 1] = istr(tok) .. held_sfx
                    local o = #out
                    out[o + 1] = id
                    out[o + 2] = tonumber(idx)
                    out[o + 3] = istr(tok) .. tok_sfx
                    out[o + 4] = a
                    out[o + 5] = j[2]
                    out[o + 6] = j[3]
                    out[o + 7] = j[4] or JOB_DEFAULTS.timeout_s
                    out[o + 8] = j[5] or JOB_DEFAULTS.tasks
                    count = count + 1
                end
                chunked('HSET', jk, set)
                if nref > 0 and ntask > 1 then
                    local r = {}
                    for k = 1, nref do r[k] = id .. ':' .. g[k] end
                    kcall('SREM', requeued_key(base, id), unpack(r))
                end
            end
        end
        if count > 0 then
            zset_flush(running)
            chunked('HSET', leases_key(base, worker), leases)
        end
        -- A batch that is full, or cut at CALL_MAX jobs, may have left
        -- tasks behind: a worker is woken to come back for them (the one
        -- that claimed takes fewer than it asked for as an empty queue).
        if (room == 0 or capped) and redis.call('ZCARD', pk) > 0 then
            wake(base, 1)
        end
    end
    out[3] = count
    if head == nil then head = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES') end
    if #head > 0 then out[2] = tonumber(head[2]) end
    return out
end

-- ARGV: [limit 0..250, default 250]. Promotes due delayed tasks without
-- claiming, for the coordinator when no worker claims, and wakes idle
-- workers for them. Reply: number of members promoted; a reply equal to
-- the limit means more may be due (call again).
local function promote_due(keys, args)
    local base = keys[1]
    local limit = tonumber(args[1] or CALL_MAX)
    if limit == nil or limit < 0 or limit > CALL_MAX then
        return redis.error_reply('ERR usage: FCALL llmb_promote 1 <queue key> '
            .. '[limit 0..250]')
    end
    local n = promote(base, now_ms(), math.floor(limit))
    if n > 0 then wake(base, n) end
    return n
end

register('llmb_claim', claim)
register('llmb_promote', promote_due)
