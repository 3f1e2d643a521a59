--[[
push: validates job documents and enqueues their tasks. One call takes one
or more documents (ARGV) for the queue of KEYS[1]; a fan-out job enqueues
all its tasks in the same call, a thousand per ZADD. Pushing a document
whose id already exists returns that id and changes nothing.

Reply: with one document, its job id or an error; with several, an array
holding for each document its id or an error.
]]

-- A UUID-shaped id: the time and a per-queue counter make it unique in
-- the queue (where job keys live); random bits make it unlikely to repeat
-- across queues. `seq` is a fresh value of <base>:idseq.
local function new_job_id(now, seq)
    local r1 = math.random(0, 65535)
    local r3 = math.random(0, 4095)
    local r4 = math.random(0, 16383)
    return string.format('%08x-%04x-4%03x-%04x-%012x', now % 4294967296, r1,
        r3, 0x8000 + r4, seq % 281474976710656)
end

-- Enqueues the tasks of job `id`; returns how many are ready now (to wake
-- that many idle workers).
local function enqueue(base, id, j, now)
    local n = j.tasks
    if j.delay_s > 0 then
        local due = now + math.floor(j.delay_s * 1000)
        local i = 0
        while i < n do
            local args = {}
            local last = math.min(n, i + 1000) - 1
            for k = i, last do
                args[#args + 1] = due
                args[#args + 1] = id .. ':' .. k
            end
            redis.call('ZADD', base .. ':delayed', unpack(args))
            i = last + 1
        end
        -- An idle worker sleeps until the earliest due time it knows of;
        -- wake one so it learns of this one.
        return 1
    end
    local seq = redis.call('INCRBY', base .. ':seq', n) - n + 1
    local i = 0
    while i < n do
        local args = {}
        local last = math.min(n, i + 1000) - 1
        for k = i, last do
            args[#args + 1] = pending_score(j.priority, seq + k)
            args[#args + 1] = id .. ':' .. k
        end
        redis.call('ZADD', base .. ':pending', unpack(args))
        i = last + 1
    end
    return n
end

-- Pushes one document with the call's settings `c`; returns its id, or
-- nil and the message.
local function push_one(base, c, doc)
    local j, err = doc_parse(doc, c.queue, c.max_payload, c.max_tasks)
    if j == nil then return nil, err end
    local id = j.id
    if id ~= nil then
        if redis.call('EXISTS', job_key(base, id)) == 1 then return id end
    else
        if c.idseq == nil then
            c.idseq = redis.call('INCRBY', base .. ':idseq', c.ndocs) - c.ndocs
        end
        c.idseq = c.idseq + 1
        id = new_job_id(c.now, c.idseq)
        -- A caller may have chosen this very id for a job of its own.
        while redis.call('EXISTS', job_key(base, id)) == 1 do
            id = new_job_id(c.now, redis.call('INCR', base .. ':idseq'))
        end
    end
    local now = c.now
    local fields = {
        'id', id, 'queue', c.queue, 'type', j.type, 'payload', j.payload,
        'priority', j.priority, 'tasks', j.tasks,
        'timeout_s', fmt_num(j.timeout_s), 'max_retries', j.max_retries,
        'backoff_ms', j.backoff_ms, 'state', 'pending', 'created_ms', now,
        'left', j.tasks,
    }
    if j.delay_s > 0 then
        fields[#fields + 1] = 'delay_s'
        fields[#fields + 1] = fmt_num(j.delay_s)
    end
    if j.deadline_s > 0 then
        fields[#fields + 1] = 'deadline_ms'
        fields[#fields + 1] = now + math.floor(j.deadline_s * 1000)
        redis.call('ZADD', base .. ':deadlines', fields[#fields], id)
    end
    redis.call('HSET', job_key(base, id), unpack(fields))
    redis.call('ZADD', base .. ':jobs', now, id)
    c.ready = c.ready + enqueue(base, id, j, now)
    emit_capped(base, c.events_max, 'event', 'pushed', 'job', id, 'tasks', j.tasks)
    return id
end

local PUSH_KEYS = {pending = 'zset', delayed = 'zset', jobs = 'zset',
    deadlines = 'zset', events = 'stream', wake = 'list', seq = 'string',
    idseq = 'string'}

local function push(keys, args)
    local base = keys[1]
    local queue = queue_of(base)
    if queue == nil or not string.find(queue, '^[%w_.%-]+$') or #queue > 64 then
        return redis.error_reply('ERR key "' .. tostring(base) .. '" is not a '
            .. 'queue key: expected <prefix>:{<queue>}, queue names from '
            .. '[A-Za-z0-9_.-], at most 64 characters')
    end
    if #args == 0 then
        return redis.error_reply('ERR llmb_push needs at least one job document')
    end
    local wrong = keys_wrong(base, PUSH_KEYS)
    if wrong then return wrong end
    local c = {
        queue = queue, now = now_ms(), ndocs = #args, ready = 0,
        max_payload = conf_num(base, 'max_payload', MAX_PAYLOAD_DEFAULT),
        max_tasks = conf_num(base, 'max_tasks', MAX_TASKS_DEFAULT),
        events_max = conf_num(base, 'events_max', EVENTS_MAXLEN_DEFAULT),
    }
    local out
    if #args == 1 then
        local id, err = push_one(base, c, args[1])
        if id == nil then
            out = redis.error_reply('ERR ' .. err)
        else
            out = id
        end
    else
        out = {}
        for i = 1, #args do
            local id, err = push_one(base, c, args[i])
            if id == nil then out[i] = {err = 'ERR ' .. err} else out[i] = id end
        end
    end
    if c.ready > 0 then wake(base, c.ready) end
    return out
end

register('llmb_push', push)
