--[[
push: validates job documents and enqueues their tasks. One call takes one
or more documents (ARGV) for the queue of KEYS[1]; a fan-out job enqueues
all its tasks in the same call, a thousand per ZADD. Pushing a document
whose id already exists returns that id and changes nothing.

Reply: with one document, its job id or an error; with several, an array
holding for each document its id or an error.
]]

local function new_job_id(base, now)
    for _ = 1, 8 do
        local r1 = math.random(0, 65535)
        local r2 = math.random(0, 65535)
        local r3 = math.random(0, 4095)
        local r4 = math.random(0, 16383)
        local seq = redis.call('INCR', base .. ':idseq') % 281474976710656
        local t = now % 4294967296
        local id = string.format('%08x-%04x-4%03x-%04x-%012x', t, r1, r3,
            0x8000 + r4, (seq * 65536 + r2) % 281474976710656)
        if redis.call('EXISTS', job_key(base, id)) == 0 then return id end
    end
    return nil
end

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
        wake(base, 1)
        return
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
    wake(base, n)
end

local function push_one(base, queue, doc, now, max_payload, max_tasks)
    local j, err = doc_parse(doc, queue, max_payload, max_tasks)
    if j == nil then return nil, err end
    local id = j.id
    if id ~= nil then
        if redis.call('EXISTS', job_key(base, id)) == 1 then return id end
    else
        id = new_job_id(base, now)
        if id == nil then return nil, 'could not mint a unique job id' end
    end
    local fields = {
        'id', id, 'queue', queue, 'type', j.type, 'payload', j.payload,
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
    enqueue(base, id, j, now)
    emit(base, 'event', 'pushed', 'job', id, 'tasks', j.tasks)
    return id
end

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
    local now = now_ms()
    local max_payload = conf_num(base, 'max_payload', MAX_PAYLOAD_DEFAULT)
    local max_tasks = conf_num(base, 'max_tasks', MAX_TASKS_DEFAULT)
    if #args == 1 then
        local id, err = push_one(base, queue, args[1], now, max_payload, max_tasks)
        if id == nil then return redis.error_reply('ERR ' .. err) end
        return id
    end
    local out = {}
    for i = 1, #args do
        local id, err = push_one(base, queue, args[i], now, max_payload, max_tasks)
        if id == nil then out[i] = {err = 'ERR ' .. err} else out[i] = id end
    end
    return out
end

redis.register_function('llmb_push', push)
