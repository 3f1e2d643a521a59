--[[
push: enqueues jobs on the queue of KEYS[1]. Two functions take them in
two forms and share everything after the validation:

- llmb_push: one or more job documents (JSON), checked by doc_parse. The
  form for redis-cli and any client.
- llmb_push_fields: the same jobs as vectors of PUSH_NFIELDS values, in
  the order of PUSH_FIELDS, for clients that validated their documents
  already (llmb-push --batch): no JSON is parsed here. Every value is
  still checked, with the rules and the messages of the documents; only
  the payload is trusted to be well-formed JSON (its size and its first
  byte are checked), so people typing jobs by hand use llmb_push.

A call validates all its jobs first, then writes what the good ones need,
gathered over the call: one INCRBY of the sequence, the job index, the
pending, delayed and deadline sets a thousand members per ZADD, an HSET per
job, and one `pushed` event per call. A refused job writes nothing and does not
stop the others. Pushing a job whose id already exists (in Redis, or
earlier in the same call) returns that id and changes nothing.

Reply of llmb_push: with one document, its job id or an error; with
several, an array holding for each its id or an error. llmb_push_fields
always answers that array.
]]

-- The values of one job in an llmb_push_fields call, in this order. An
-- empty string leaves a field to its default (for `id`: mint one).
local PUSH_FIELDS = {'id', 'type', 'payload', 'priority', 'tasks',
    'timeout_s', 'max_retries', 'backoff_ms', 'delay_s', 'deadline_s'}
local PUSH_NFIELDS = #PUSH_FIELDS

-- Ids minted for jobs pushed without one: a tag of the queue and a
-- per-queue counter, both in base 36 ("k3f1", "k3f2", ..., "k3fa7"). The
-- counter makes them unique in the queue (where records live); the tag,
-- three characters of the SHA-1 of the queue key, makes them unlikely to
-- repeat across queues, so `llmb show <id>` finds one job.
local B36 = '0123456789abcdefghijklmnopqrstuvwxyz'
local function b36(n)
    local out = {}
    repeat
        local d = n % 36
        out[#out + 1] = string.sub(B36, d + 1, d + 1)
        n = (n - d) / 36
    until n == 0
    return string.reverse(table.concat(out))
end

-- The 36 digits, and the 1296 pairs of digits "00".."zz", indexed by
-- value + 1: made by the first mint (only `redis` is reachable while the
-- library loads, not `string`).
local B36D, B36P = {}, {}
local function b36_tables()
    for d = 1, 36 do B36D[d] = string.sub(B36, d, d) end
    for hi = 1, 36 do
        for lo = 1, 36 do B36P[#B36P + 1] = B36D[hi] .. B36D[lo] end
    end
end

-- The id of sequence number seq: b36(seq) after the tag, made of the
-- text of seq's digits but its last two, kept in c between ids (they
-- change once every 1296 ids), and a pair of B36P.
local function mint_id(c, seq)
    local lo = seq % 1296
    local hi = (seq - lo) / 1296
    if hi ~= c.idhi then
        c.idhi = hi
        c.idhead = c.idpre .. (hi > 0 and b36(hi) or '')
    end
    if hi == 0 and lo < 36 then return c.idpre .. B36D[lo + 1] end
    return c.idhead .. B36P[lo + 1]
end

local function mint(base, c)
    if c.idseq == nil then
        c.idseq = redis.call('INCRBY', base .. ':idseq', c.njobs) - c.njobs
        c.idseq_top = c.idseq + c.njobs
        if B36P[1] == nil then b36_tables() end
        local h = redis.sha1hex(base)
        c.idpre = ''
        for i = 1, 3 do
            local v = tonumber(string.sub(h, 2 * i - 1, 2 * i), 16) % 36
            c.idpre = c.idpre .. string.sub(B36, v + 1, v + 1)
        end
    end
    local seq
    if c.idseq < c.idseq_top then
        c.idseq = c.idseq + 1
        seq = c.idseq
    else
        seq = redis.call('INCR', base .. ':idseq')
    end
    return mint_id(c, seq)
end

-- Gives every job of `jobs` (validated: `jobs[i]` is a job table, or false
-- when out[i] holds its error already) its id. A job whose id exists, in
-- Redis or earlier in the call, is answered with that id and dropped from
-- `jobs`; c.dups lists those earlier in the call, {index, index of the
-- first}, which push_all answers as it answers the first. Minted ids are
-- checked too: a caller may have chosen one of them for a job of its own.
-- One HMGET of the records per thousand jobs.
local function ids_resolve(base, c, jobs, out)
    local seen, ids, at = {}, {}, {}
    c.dups = {}
    for i = 1, #jobs do
        local j = jobs[i]
        if j then
            local id = j.id
            if id == nil then
                id = mint(base, c)
                while seen[id] do id = mint(base, c) end
                j.id = id
                j.minted = true
            end
            if seen[id] then
                out[i] = id
                jobs[i] = false
                c.dups[#c.dups + 1] = {i, seen[id]}
            else
                seen[id] = i
                ids[#ids + 1] = id
                at[#at + 1] = i
            end
        end
    end
    local have = L.recs(base, ids)
    local jd = base .. ':jd'
    for k = 1, #ids do
        if have[k] then
            local i = at[k]
            local j = jobs[i]
            if j.minted then
                local id = mint(base, c)
                while seen[id] or redis.call('HEXISTS', jd, id) == 1 do
                    id = mint(base, c)
                end
                seen[id] = true
                j.id = id
            else
                out[i] = j.id
                jobs[i] = false
            end
        end
    end
end

-- The defaults of OPTS as numbers, as a validated job holds them.
local OPT_DEFAULT_NUM = {priority = 0, tasks = 1, timeout_s = 600,
    max_retries = 3, backoff_ms = 1000}

-- The opts text of a record (05-lifecycle.lua OPTS): the options of job
-- j that are not their default, a letter and a number each, in the order
-- of OPTS; `deadline` is its deadline ms, or nil.
local function opts_text(j, deadline)
    -- (most jobs keep every default: nothing to format)
    if j.priority == 0 and j.tasks == 1 and j.timeout_s == 600
        and j.max_retries == 3 and j.backoff_ms == 1000 and not deadline
        and not (j.delay_s > 0) then
        return ''
    end
    local o = ''
    for k = 1, #OPTS do
        local letter, field, default = OPTS[k][1], OPTS[k][2], OPTS[k][3]
        local v
        if field == 'deadline_ms' then
            v = deadline and istr(deadline)
        elseif field == 'delay_s' then
            v = j.delay_s > 0 and fmt_num(j.delay_s)
        elseif j[field] ~= OPT_DEFAULT_NUM[field] then
            v = fmt_num(j[field])
        end
        if v and v ~= default then o = o .. letter .. v end
    end
    return o
end

-- Writes the jobs left in `jobs` and puts their ids in `out`: each job's
-- record, its member where it waits (a fan-out job waits as one member,
-- its cursor: pushing it is O(1) whatever its size, and it gets its hash
-- of counts), its deadline. Members wait in argument order, so a call
-- keeps FIFO order within a priority; ready tasks are counted in c.ready
-- to wake that many workers.
local function jobs_store(base, c, jobs, out)
    local now = c.now
    local head = 'p' .. string.format('%d', now) .. '\t'
    local pushed = false
    local recs, ids = {}, {}
    local w = L.waits(base)
    local delayed = zset_new(base .. ':pd')
    local deadlines = zset_new(base .. ':deadlines')
    for i = 1, #jobs do
        local j = jobs[i]
        if j then
            local id, n = j.id, j.tasks
            local delay, deadline = j.delay_s, nil
            if j.deadline_s > 0 then
                deadline = now + math.floor(j.deadline_s * 1000)
                zset_add(deadlines, deadline, id)
            end
            local k = #ids + 1
            ids[k] = id
            recs[2 * k - 1] = id
            recs[2 * k] = head .. j.type .. '\t' .. opts_text(j, deadline)
                .. '\t' .. j.payload
            if n > 1 then
                redis.call('HSET', job_key(base, id), 'state', 'pending',
                    'tasks', n, 'left', n)
                behind_add(delay > 0 and 'delayed' or 'pending', n - 1)
            end
            if delay > 0 then
                zset_add(delayed, now + math.floor(delay * 1000), id)
                -- An idle worker sleeps until the earliest due time it knows
                -- of; wake one so it learns of this one.
                c.ready = c.ready + 1
            else
                L.wait(w, id, j.priority, 'tail')
                c.ready = c.ready + n
            end
            out[i] = id
            if pushed then
                pushed.n = pushed.n + 1
                pushed.tasks = pushed.tasks + n
                pushed.last = id
            else
                pushed = {n = 1, tasks = n, first = id, last = id,
                    n_t = fmt_num(n)}
            end
        end
    end
    if #recs > 0 then
        chunked('HSET', base .. ':jd', recs)
        -- the index of the queue's jobs in push order (llmb jobs, the web
        -- UI): retention trims it from the head
        chunked('RPUSH', base .. ':jl', ids)
    end
    L.waits_flush(w)
    zset_flush(delayed)
    zset_flush(deadlines)
    -- One `pushed` event per call: naming the job when the call pushed
    -- one, else the count and the first and last ids (a bulk push would
    -- otherwise fill the capped stream with its own events).
    if pushed then
        if pushed.n == 1 then
            emit(base, 'event', 'pushed', 'job', pushed.first, 'tasks',
                pushed.n_t)
        else
            emit(base, 'event', 'pushed', 'jobs', istr(pushed.n), 'first',
                pushed.first, 'last', pushed.last, 'tasks', istr(pushed.tasks))
        end
    end
end

-- What both functions check before any job: the queue key, the types of
-- the keys they write. Returns the call's settings, or nil and an error
-- reply.
local function push_begin(base, njobs, name)
    local queue = queue_of(base)
    if queue == nil or not string.find(queue, '^[%w_.%-]+$') or #queue > 64 then
        return nil, redis.error_reply('ERR key "' .. tostring(base) .. '" is '
            .. 'not a queue key: expected <prefix>:{<queue>}, queue names from '
            .. '[A-Za-z0-9_.-], at most 64 characters')
    end
    if njobs > CALL_MAX then
        return nil, too_many(name, njobs, 'jobs')
    end
    return {
        queue = queue, now = now_ms(), njobs = njobs, ready = 0,
        max_payload = conf_num(base, 'max_payload'),
        max_tasks = conf_num(base, 'max_tasks'),
        types_ok = {},
    }
end

-- Validates with `parse(i)` (a job table, or nil and a message) each of
-- the call's jobs, then stores the good ones. Returns the reply array.
local function push_all(base, c, parse)
    local jobs, out = {}, {}
    for i = 1, c.njobs do
        local j, err = parse(i)
        if j == nil then
            jobs[i] = false
            out[i] = {err = 'ERR ' .. err}
        else
            jobs[i] = j
        end
    end
    ids_resolve(base, c, jobs, out)
    for i = 1, c.njobs do
        local j = jobs[i]
        local err = j and dataset_attach(base, j) -- (08-workload.lua)
        if err then
            jobs[i] = false
            out[i] = {err = 'ERR ' .. err}
        end
    end
    jobs_store(base, c, jobs, out)
    -- a job pushed twice in the call: the second gets the first's answer
    -- (its refusal when its dataset was refused)
    for _, d in ipairs(c.dups) do out[d[1]] = out[d[2]] end
    if c.ready > 0 then wake(base, c.ready) end
    return out
end

local function push(keys, args)
    local base = keys[1]
    local c, err = push_begin(base, #args, 'llmb_push')
    if c == nil then return err end
    if #args == 0 then
        return redis.error_reply('ERR llmb_push needs at least one job document')
    end
    local out = push_all(base, c, function(i)
        return doc_parse(args[i], c.queue, c.max_payload, c.max_tasks)
    end)
    if #args == 1 then
        if type(out[1]) == 'table' then return redis.error_reply(out[1].err) end
        return out[1]
    end
    return out
end

register('llmb_push', push)

-- First bytes a JSON value can start with: { [ " - t f n and the digits.
-- (Only `redis` is reachable while the library loads, not `string`.)
local JSON_FIRST = {[123] = true, [91] = true, [34] = true, [45] = true,
    [116] = true, [102] = true, [110] = true}
for b = 48, 57 do JSON_FIRST[b] = true end

-- Field `name` of a fields vector: `s` (not empty) as a decimal number
-- within [min, max], whole when `whole`. Returns the value, or nil and the
-- message doc_parse gives for the same value.
local function field_number(s, name, whole, min, max)
    local v = tonumber(s)
    if v == nil or v ~= v or (whole and v ~= math.floor(v)) or v < min
        or v > max or string.find(s, '[^%d.eE+-]') then
        return nil, bad_number(name, whole, min, max, s)
    end
    return v
end

-- Validates the job whose PUSH_NFIELDS values start at args[at]: the
-- rules of doc_parse, checked in its order. Returns the same job table,
-- or nil and a message. An empty value takes the default.
local function fields_parse(args, at, c)
    local id, typ, payload = args[at], args[at + 1], args[at + 2]
    -- Names are shown quoted, as a document holds them.
    if typ == '' then return nil, 'job field "type" is required' end
    if not c.types_ok[typ] then
        -- (a call's jobs are mostly of one type: checked once)
        if #typ > 128 or not string.find(typ, '^[%w_.:/%-]+$') then
            return nil, bad_name('type', 128, '"' .. typ .. '"')
        end
        c.types_ok[typ] = true
    end
    if id == '' then
        id = nil
    elseif #id > 128 or not string.find(id, '^[%w_.%-]+$') then
        return nil, bad_name('id', 128, '"' .. id .. '"')
    end
    local pri, tasks, timeout, retries, backoff, delay, deadline, err =
        0, 1, 600, 3, 1000, 0, 0, nil
    local s = args[at + 3]
    if s ~= '' then
        pri, err = field_number(s, 'priority', true, -MAX_PRIORITY,
            MAX_PRIORITY)
        if err then return nil, err end
    end
    s = args[at + 4]
    if s ~= '' then
        tasks, err = field_number(s, 'tasks', true, 1, c.max_tasks)
        if err then return nil, err end
    end
    s = args[at + 5]
    if s ~= '' then
        timeout, err = field_number(s, 'timeout_s', false, 0.001, 604800)
        if err then return nil, err end
    end
    s = args[at + 6]
    if s ~= '' then
        retries, err = field_number(s, 'max_retries', true, 0, 100)
        if err then return nil, err end
    end
    s = args[at + 8]
    if s ~= '' then
        delay, err = field_number(s, 'delay_s', false, 0, 31536000)
        if err then return nil, err end
    end
    s = args[at + 7]
    if s ~= '' then
        backoff, err = field_number(s, 'backoff_ms', true, 1, 3600000)
        if err then return nil, err end
    end
    s = args[at + 9]
    if s ~= '' then
        deadline, err = field_number(s, 'deadline_s', false, 0, 31536000)
        if err then return nil, err end
    end
    if payload == '' then
        payload = '{}'
    elseif #payload > c.max_payload then
        return nil, string.format('job field "payload" is %d bytes; the limit '
            .. 'is %d', #payload, c.max_payload)
    elseif not JSON_FIRST[string.byte(payload)] then
        return nil, 'job field "payload" must be JSON text, got '
            .. shown(payload)
    end
    return {id = id, type = typ, payload = payload, priority = pri,
        tasks = tasks, timeout_s = timeout, max_retries = retries,
        backoff_ms = backoff, delay_s = delay, deadline_s = deadline,
        key = false, minted = false}
end

local function push_fields(keys, args)
    local base = keys[1]
    local c, err = push_begin(base, math.floor(#args / PUSH_NFIELDS),
        'llmb_push_fields')
    if c == nil then return err end
    if #args == 0 or #args % PUSH_NFIELDS ~= 0 then
        return redis.error_reply(string.format('ERR llmb_push_fields takes %d '
            .. 'values per job (%s), got %d values', PUSH_NFIELDS,
            table.concat(PUSH_FIELDS, ', '), #args))
    end
    return push_all(base, c, function(i)
        return fields_parse(args, (i - 1) * PUSH_NFIELDS + 1, c)
    end)
end

register('llmb_push_fields', push_fields)
