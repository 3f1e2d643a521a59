--[[
job: a read-only view of one job, the one way llmb's readers (llmb show,
jobs, export, the web UI, llmb-push --wait, the coordinator) and people
with redis-cli read a job, whatever the layout that stores it:

  FCALL_RO llmb_job 1 <base> <id>
      the job as field/value pairs: its own fields (JOB_VIEW.fields, those
      it has), then the task fields of its first JOB_VIEW.page tasks
      ("<i>:state", "<i>:attempt", "<i>:worker", "<i>:result",
      "<i>:error", those they have); empty when there is no such job
  FCALL_RO llmb_job 1 <base> <id> page <from>
      the task fields of tasks <from> .. <from> + JOB_VIEW.page - 1 only
  FCALL_RO llmb_job 1 <base> <id> <field> [<field> ...]
      the values of the named fields, in order, nil for the absent ones
      (what HMGET of a hash answers), at most JOB_VIEW.max of them

The fields are those of docs/data-model.md "Job view" and "Task fields",
made from the job's record, its end, its lease and its hash
(05-lifecycle.lua): the options at their default, and the result of a
completed task that stored none (EMPTY_RESULT), filled in. An id that no
job can have answers as no job. A job hash of another type (set by hand)
is refused as a hash command refuses it (WRONGTYPE).
]]

local JOB_VIEW = {
    -- the job's own fields, in the order of the view
    fields = {'id', 'queue', 'type', 'state', 'payload', 'priority',
        'tasks', 'timeout_s', 'max_retries', 'backoff_ms', 'delay_s',
        'deadline_ms', 'created_ms', 'started_ms', 'finished_ms',
        'cancelled_ms', 'left', 'ok', 'failed', 'cancelled', 'retried',
        'timeouts', 'lost', 'error', 'expired', 'aggregate',
        'aggregated_ms', 'next', 'ahead', 'version'},
    -- the fields of each task, in the order of the view
    task = {'state', 'attempt', 'worker', 'result', 'error'},
    page = 100,  -- tasks per page of the view
    max = 1000,  -- fields one call names
}

-- The version of the aggregate's form (LLMB_AGG_VERSION of
-- include/llmb/aggregate.h).
local AGG_VERSION = 2

-- The fields of a job's hash the view reads (what a push does not put
-- in the record and a claim does not hold in a lease).
local HASH_FIELDS = {'state', 'started_ms', 'finished_ms', 'cancelled_ms',
    'left', 'ok', 'failed', 'cancelled', 'retried', 'timeouts', 'lost',
    'error', 'expired', 'aggregate', 'aggregated_ms', 'next', 'ahead',
    'version', '0:error'}

-- The parts of a job's end (L.rec_end): state, finished ms, started ms,
-- worker, attempt (nil for the first) and what follows the tab (the
-- result, or the error).
local function end_parse(e)
    if not e then return nil end
    local head, tail = e, nil
    local t = string.find(e, '\t', 1, true)
    if t then head, tail = string.sub(e, 1, t - 1), string.sub(e, t + 1) end
    local l, fin, rest = string.match(head, '^(%a)(%d+)(.*)$')
    if l == nil then return nil end
    local started, worker, attempt = string.match(rest, '^ (%d+) (%S*) ?(%d*)$')
    return END_STATE[l], fin, started, worker, attempt ~= '' and attempt or nil,
        tail
end

-- The batch that runs member m, or nil: its worker and claimed ms.
local function running_of(base, m)
    local held = redis.call('HGET', base .. ':run', m)
    if not held then return nil end
    local r = redis.call('HGET', base .. ':lease', held)
    if not r then return nil end
    local w, at = string.match(r, '^(%S+) (%d+)')
    return w, at
end

-- The view of job `id`: a table field -> value of its own fields, and a
-- function that fills the task fields of task indexes in, or nil when
-- there is no such job; or an error reply (its hash is of another type).
local function job_read(base, id)
    local r = redis.call('HGET', base .. ':jd', id)
    local s, created, typ, o, c = L.rec(r)
    if s == nil then return nil end
    local jk = job_key(base, id)
    local h = redis.pcall('HMGET', jk, unpack(HASH_FIELDS))
    if type(h) == 'table' and h.err then return nil, h end
    local v = {id = id, queue = queue_of(base), type = typ,
        payload = string.sub(r, c + 1), created_ms = created}
    for _, f in ipairs(OPTS) do
        v[f[2]] = L.opt(o, f[1]) or f[3] or nil
    end
    for i, f in ipairs(HASH_FIELDS) do
        if h[i] and v[f] == nil then v[f] = h[i] end
    end
    local tasks = tonumber(v.tasks) or 1
    local state, fin, started, worker, attempt, tail =
        end_parse(L.end_of(base, id, r))
    local task
    if tasks == 1 then
        local t = {}
        v['0:error'] = nil
        local att = tonumber(redis.call('HGET', base .. ':att', id)) or 0
        if state then
            v.state = state
            v.finished_ms = fin
            v.left = '0'
            v.ok = state == 'completed' and '1' or '0'
            if state == 'failed' then v.failed = '1' end
            if state == 'cancelled' then v.cancelled = '1' end
            if started and started ~= '0' then
                v.started_ms = started
                t.state = state
                t.worker = worker
                t.attempt = attempt or '1'
                if state == 'completed' then t.result = tail or EMPTY_RESULT end
                if state == 'failed' then t.error = tail end
            elseif state == 'cancelled' then
                t.state = 'cancelled'
            elseif state == 'failed' then
                t.state = 'failed'
                t.error = tail
            end
        else
            v.left = '1'
            local w, at = running_of(base, id)
            if s == 'x' then
                v.state = 'cancelled'
            elseif w then
                v.state = 'running'
            else
                v.state = 'pending'
            end
            if w then
                v.started_ms = at
                t.state = 'running'
                t.worker = w
                t.attempt = istr(att + 1)
            elseif att > 0 then
                t.state = redis.call('ZSCORE', base .. ':pd', id)
                    and 'delayed' or 'pending'
                t.attempt = istr(att)
            end
        end
        if h[#HASH_FIELDS] then t.error = t.error or h[#HASH_FIELDS] end
        if state and not v.aggregate and not (state == 'completed' and tail) then
            -- the aggregate the coordinator would store for it
            -- (coordinator/aggregator.c build()), of no result but {}:
            -- such a job is never handed to it (05-lifecycle.lua job_end)
            local f = tonumber(fin)
            local st = tonumber(v.started_ms)
            v.aggregate = string.format('{"version":%d,"state":"%s","tasks":1,'
                .. '"ok":%s,"failed":%d,"cancelled":%d,"wall_ms":%d,'
                .. '"run_ms":%d,"retried":%d,"timeouts":%d,"lost":%d,'
                .. '"results":%s,"fields":{}}', AGG_VERSION, state, v.ok,
                tonumber(v.failed) or 0, tonumber(v.cancelled) or 0,
                f - tonumber(created), st and f - st or 0,
                tonumber(v.retried) or 0, tonumber(v.timeouts) or 0,
                tonumber(v.lost) or 0, v.ok)
            v.aggregated_ms = fin
        end
        task = function(idx, name)
            if idx ~= '0' then return false end
            return t[name] or false
        end
    else
        v.left = v.left or istr(tasks)
        local cache = {}
        -- the task fields of index idx: those of the hash, and those a
        -- running task holds in its lease
        task = function(idx, name)
            local t = cache[idx]
            if t == nil then
                t = {}
                local f = redis.call('HMGET', jk, task_field(idx, 'state'),
                    task_field(idx, 'attempt'), task_field(idx, 'worker'),
                    task_field(idx, 'result'), task_field(idx, 'error'))
                t.state, t.attempt, t.worker, t.result, t.error =
                    f[1], f[2], f[3], f[4], f[5]
                local m = id .. ':' .. idx
                local w = running_of(base, m)
                if w then
                    t.state = 'running'
                    t.worker = w
                    t.attempt = istr((tonumber(redis.call('HGET',
                        base .. ':att', m)) or 0) + 1)
                end
                if not w and (t.state == 'pending' or t.state == 'delayed')
                    then
                    -- a task waiting again: the attempts it had (a field
                    -- of its own is of an earlier run of a retried job)
                    t.attempt = redis.call('HGET', base .. ':att', m)
                elseif not w and t.state and not t.attempt then
                    t.attempt = redis.call('HGET', base .. ':att', m)
                end
                if t.state == 'completed' then
                    t.result = t.result or EMPTY_RESULT
                    t.attempt = t.attempt or '1'
                end
                cache[idx] = t
            end
            return t[name] or false
        end
    end
    v['0:error'] = nil
    return v, nil, task
end

-- Appends to `out` the pairs of `names` whose value in `vals` exists.
local function pairs_present(out, names, vals)
    for i = 1, #names do
        if vals[i] then
            out[#out + 1] = names[i]
            out[#out + 1] = vals[i]
        end
    end
end

-- The task fields of tasks from .. from + page - 1 (below `tasks`) as
-- pairs appended to `out`.
local function job_task_page(task, tasks, from, out)
    local last = math.min(tasks, from + JOB_VIEW.page) - 1
    for i = from, last do
        local idx = istr(i)
        for _, f in ipairs(JOB_VIEW.task) do
            local val = task(idx, f)
            if val then
                out[#out + 1] = task_field(idx, f)
                out[#out + 1] = val
            end
        end
    end
end

local function job_view(keys, args)
    local base, id = keys[1], args[1]
    local usage = 'ERR usage: FCALL_RO llmb_job 1 <queue key> <id> '
        .. '[page <from> | <field> ...]'
    if id == nil then return redis.error_reply(usage) end
    -- an id no job can have (docs/data-model.md) names no job
    local known = #id <= 128 and string.match(id, '^[A-Za-z0-9_.-]+$')
    local n = #args - 1
    local named = n >= 1 and not (n == 2 and args[2] == 'page')
    if named and n > JOB_VIEW.max then
        return too_many('llmb_job', n, 'fields', JOB_VIEW.max)
    end
    local from = 0
    if n == 2 and not named then
        from = tonumber(args[3])
        if from == nil or from < 0 or from ~= math.floor(from)
            or from > 1e15 then
            return redis.error_reply(usage .. ': page takes a task index, '
                .. 'got "' .. args[3] .. '"')
        end
    end
    local v, err, task
    if known then
        v, err, task = job_read(base, id)
        if err then return err end
    end
    if named then
        local vals = {}
        for i = 1, n do
            local f = args[i + 1]
            local idx, name = string.match(f, '^(%d+):(%a+)$')
            if v == nil then
                vals[i] = false
            elseif idx then
                vals[i] = task(idx, name)
            else
                vals[i] = v[f] or false
            end
        end
        return vals
    end
    local out = {}
    if v == nil then return out end
    if n == 0 then
        local vals = {}
        for i, f in ipairs(JOB_VIEW.fields) do vals[i] = v[f] or false end
        pairs_present(out, JOB_VIEW.fields, vals)
    end
    job_task_page(task, tonumber(v.tasks) or 1, from, out)
    return out
end

register('llmb_job', job_view, true)
