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

The fields are those of docs/data-model.md "Job hash" and "Task fields",
the options a push does not store (JOB_DEFAULTS, and the job's `id` and
`queue`) filled in, and the result of a completed task that stored none
(EMPTY_RESULT). An id that no job can have answers as no job. A job key of another type
(set by hand) is refused as a hash command refuses it (WRONGTYPE).
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

-- HMGET of `fields` from the job hash `jk`: the values, or an error
-- reply (a key of another type) to answer as it is.
local function job_hmget(jk, fields)
    local r = redis.pcall('HMGET', jk, unpack(fields))
    if type(r) == 'table' and r.err then return nil, r end
    return r
end

-- Fills in, in `vals` (the values of `names` of job `id` of queue
-- `base`, whose `tasks` field holds `tasks`), the fields a push does not
-- store: the id, the queue, the options at their default and `left`
-- while no task has ended (JOB_DEFAULTS). Only for a job that exists.
local function job_fill(names, vals, n, base, id, tasks)
    for i = 1, n do
        if not vals[i] then
            local f = names[i]
            if f == 'id' then
                vals[i] = id
            elseif f == 'queue' then
                vals[i] = queue_of(base)
            elseif f == 'left' then
                vals[i] = tasks or JOB_DEFAULTS.tasks
            else
                vals[i] = JOB_DEFAULTS[f] or false
            end
        end
    end
end

-- Whether field `f` is one job_fill fills in.
local function job_filled(f)
    return f == 'id' or f == 'queue' or f == 'left' or JOB_DEFAULTS[f] ~= nil
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
-- pairs appended to `out`. Returns nil or an error reply.
local function job_task_page(jk, tasks, from, out)
    local last = math.min(tasks, from + JOB_VIEW.page) - 1
    if last < from then return nil end
    local names = {}
    for i = from, last do
        local idx = istr(i)
        for _, f in ipairs(JOB_VIEW.task) do
            names[#names + 1] = task_field(idx, f)
        end
    end
    local vals, err = job_hmget(jk, names)
    if err then return err end
    local nf = #JOB_VIEW.task  -- (state first, result fourth)
    for k = 1, #names, nf do
        if vals[k] == 'completed' and not vals[k + 3] then
            vals[k + 3] = EMPTY_RESULT
        end
    end
    pairs_present(out, names, vals)
    return nil
end

local function job_view(keys, args)
    local base, id = keys[1], args[1]
    local usage = 'ERR usage: FCALL_RO llmb_job 1 <queue key> <id> '
        .. '[page <from> | <field> ...]'
    if id == nil then return redis.error_reply(usage) end
    -- an id no job can have (docs/data-model.md) names no job
    local known = #id <= 128 and string.match(id, '^[A-Za-z0-9_.-]+$')
    local jk = job_key(base, id)
    local n = #args - 1
    if n >= 1 and not (n == 2 and args[2] == 'page') then
        if n > JOB_VIEW.max then
            return too_many('llmb_job', n, 'fields', JOB_VIEW.max)
        end
        if not known then
            local none = {}
            for i = 1, n do none[i] = false end
            return none
        end
        -- Fields read only to fill others in, after the names asked: the
        -- job's state (filled in only for a job that exists) and tasks
        -- (what an absent `left` is), and the state of each task whose
        -- result is asked.
        local names = {unpack(args, 2)}
        local m, state_at, task_at = n, nil, {}
        for i = 1, n do
            local f = names[i]
            if state_at == nil and job_filled(f) then
                names[m + 1], names[m + 2] = 'state', 'tasks'
                m = m + 2
                state_at = m - 1
            end
            local idx = string.match(f, '^(%d+):result$')
            if idx then
                m = m + 1
                names[m] = task_field(idx, 'state')
                task_at[i] = m
            end
        end
        local vals, err = job_hmget(jk, names)
        if err then return err end
        for i, at in pairs(task_at) do
            if not vals[i] and vals[at] == 'completed' then
                vals[i] = EMPTY_RESULT
            end
        end
        if state_at and vals[state_at] then
            job_fill(names, vals, n, base, id, vals[state_at + 1])
        end
        for k = m, n + 1, -1 do vals[k] = nil end
        return vals
    end
    local from = 0
    if n == 2 then
        from = tonumber(args[3])
        if from == nil or from < 0 or from ~= math.floor(from)
            or from > 1e15 then
            return redis.error_reply(usage .. ': page takes a task index, '
                .. 'got "' .. args[3] .. '"')
        end
    end
    local out = {}
    if not known then return out end
    local vals, err = job_hmget(jk, JOB_VIEW.fields)
    if err then return err end
    if vals[4] then -- (its state: the job exists)
        job_fill(JOB_VIEW.fields, vals, #JOB_VIEW.fields, base, id,
            vals[7]) -- (JOB_VIEW.fields[7]: tasks)
    end
    if n == 0 then pairs_present(out, JOB_VIEW.fields, vals) end
    local tasks = tonumber(vals[7]) or 0  -- (JOB_VIEW.fields[7]: tasks)
    return job_task_page(jk, tasks, from, out) or out
end

register('llmb_job', job_view, true)
