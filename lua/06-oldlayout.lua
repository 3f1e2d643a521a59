--[[
The layout of library versions before 30 (a hash per job, task refs in
B:pending, B:delayed and B:running, a lease hash per worker), as far as
the record layout still meets it: llmb_upgrade (90-upgrade.lua) converts
a queue a chunk at a time, and llmb_reap converts a task the old library
leased when its lease runs out.
]]

-- The old job hash's fields a record and an end take over.
L.OLD_JOB = {'type', 'payload', 'state', 'created_ms', 'started_ms',
    'finished_ms', 'priority', 'tasks', 'timeout_s', 'max_retries',
    'backoff_ms', 'delay_s', 'deadline_ms'}
-- (the index in L.OLD_JOB of each option of OPTS)
local OLD_OPT_AT = {priority = 7, tasks = 8, timeout_s = 9, max_retries = 10,
    backoff_ms = 11, delay_s = 12, deadline_ms = 13}

-- Makes the record of old job `id` (its hash `jk`, whose OLD_JOB fields
-- are `f`) unless it has one. Returns its task count, or nil for a hash
-- that is no job (junk).
function L.old_record(base, id, jk, f)
    -- (a job met before, by another of its members, has its record)
    local _, _, _, had = L.rec(redis.call('HGET', base .. ':jd', id))
    if had then return L.optn(had, 'n', 1) end
    if not f[1] then return nil end
    local tasks = tonumber(f[8]) or 1
    local o = ''
    for k = 1, #OPTS do
        local letter, field, default = OPTS[k][1], OPTS[k][2], OPTS[k][3]
        local v = f[OLD_OPT_AT[field]]
        if v and v ~= default then o = o .. letter .. v end
    end
    local s = f[3] == 'cancelled' and 'x' or 'p'
    redis.call('HSETNX', base .. ':jd', id, s .. (f[4] or '0') .. '\t' .. f[1]
        .. '\t' .. o .. '\t' .. (f[2] or '{}'))
    if tasks == 1 then
        -- what the record holds, the hash of a job of one task no longer
        redis.call('HDEL', jk, 'type', 'payload', 'state', 'created_ms',
            'started_ms', 'finished_ms', 'priority', 'tasks', 'timeout_s',
            'max_retries', 'backoff_ms', 'delay_s', 'deadline_ms', 'left',
            'ok', 'failed', 'cancelled', 'id', 'queue', '0:state',
            '0:worker', '0:result', '0:attempt')
    else
        redis.call('HDEL', jk, 'type', 'payload', 'created_ms', 'priority',
            'timeout_s', 'max_retries', 'backoff_ms', 'delay_s',
            'deadline_ms', 'id', 'queue')
        redis.call('HSETNX', jk, 'tasks', istr(tasks))
        redis.call('HSETNX', jk, 'left', istr(tasks))
    end
    return tasks
end

-- Puts back to wait, at the front of its priority and with the attempt
-- given back, task ref `m` ("<id>:<index>") that the old library leased:
-- its worker (of the old library) cannot report it any more. `w` gathers
-- the members that wait again (L.waits).
function L.old_lease(base, m, w)
    redis.call('ZREM', base .. ':running', m)
    local id, idx = string.match(m, '^([^:]+):(%d+)$')
    if id == nil then
        junk()
        return
    end
    local jk = job_key(base, id)
    local f = kcall('HMGET', jk, unpack(L.OLD_JOB))
    local worker = kcall('HGET', jk, idx .. ':worker')
    local att = tonumber(kcall('HGET', jk, idx .. ':attempt')) or 1
    local tasks = f and L.old_record(base, id, jk, f)
    if worker then kcall('HDEL', leases_key(base, worker), m) end
    if not tasks then
        junk()
        return
    end
    local member = tasks == 1 and id or m
    if att > 1 then redis.call('HSET', base .. ':att', member, istr(att - 1)) end
    if tasks > 1 then
        kcall('SADD', requeued_key(base, id), m)
        kcall('HSET', jk, idx .. ':state', 'pending')
    end
    L.wait(w, member, tonumber(f[7]) or 0, 'front')
    redis.call('RPUSH', base .. ':jl', id)
end
