--[[
The lease transitions a worker calls for the tasks it holds, all fenced by
the lease token that claim handed out: a call carrying a token the worker
no longer holds (its lease expired and the task went elsewhere, or it
released it) is refused and changes nothing.

  heartbeat  extends leases; answers which tasks the worker must stop
  complete   records results; ends the task
  fail       records an error; retries with backoff or fails for good
  release    hands tasks back without spending an attempt (shutdown)
]]

local function lease_args_ok(worker, rest, stride)
    return worker ~= nil and worker ~= '' and rest >= 0 and rest % stride == 0
end

-- ARGV: worker, lease_ms, then pairs of task ref and token.
-- Reply: flat pairs of task ref and reason to stop: lost (the lease went
-- elsewhere), cancelled (the job was cancelled), gone (the job was deleted).
local function heartbeat(keys, args)
    local base = keys[1]
    local worker = args[1]
    local lease_ms = tonumber(args[2])
    if not lease_args_ok(worker, #args - 2, 2) or lease_ms == nil or lease_ms < 100 then
        return redis.error_reply('ERR usage: FCALL llmb_heartbeat 1 <queue key> '
            .. '<worker> <lease_ms> [<task ref> <token>]...')
    end
    local out = {}
    if #args == 2 then return out end
    local now = now_ms()
    local refs = {}
    for i = 3, #args, 2 do refs[#refs + 1] = args[i] end
    local held = redis.call('HMGET', leases_key(base, worker), unpack(refs))
    local states = {}
    local extend = {}
    local seen = {}
    for i, ref in ipairs(refs) do
        local tok = args[2 + 2 * i]
        if seen[ref] then
            -- the same task twice in one call: answered once
        elseif held[i] ~= tok then
            seen[ref] = true
            out[#out + 1] = ref
            out[#out + 1] = 'lost'
        else
            seen[ref] = true
            local id, idx = ref_split(ref)
            if states[id] == nil then
                states[id] = redis.call('HGET', job_key(base, id), 'state')
            end
            if states[id] == 'cancelled' or states[id] == false then
                lease_drop(base, worker, ref)
                if states[id] == 'cancelled' then
                    task_cancelled(base, id, idx, now)
                end
                out[#out + 1] = ref
                out[#out + 1] = states[id] == 'cancelled' and 'cancelled' or 'gone'
            else
                extend[#extend + 1] = now + lease_ms
                extend[#extend + 1] = ref
            end
        end
    end
    if #extend > 0 then
        redis.call('ZADD', base .. ':running', 'XX', unpack(extend))
    end
    return out
end

-- Records the results of job `id`'s tasks completed in one call: `g`
-- holds task indexes and results. The job hash is read once and written
-- once (the task fields, `left`, and the end of the job when these were
-- its last tasks). A job hash deleted by hand leaves nothing to record.
local function job_tasks_completed(base, id, g, now)
    local jk = job_key(base, id)
    local f = redis.pcall('HMGET', jk, 'state', 'tasks', 'failed', 'cancelled',
        'expired', 'left')
    -- (a key replaced by another type counts as gone too)
    if f.err or f[1] == false then return end
    local set = {}
    for k = 1, #g, 2 do
        if #set >= 4000 then
            redis.call('HSET', jk, unpack(set))
            set = {}
        end
        local m = #set
        set[m + 1] = task_field(g[k], 'state')
        set[m + 2] = 'completed'
        set[m + 3] = task_field(g[k], 'result')
        set[m + 4] = g[k + 1]
    end
    local done = #g / 2
    CALL.counts.ok = (CALL.counts.ok or 0) + done
    local before = tonumber(f[6]) or 0
    local left = before - done
    set[#set + 1] = 'left'
    set[#set + 1] = istr(left)
    if left <= 0 then
        job_finish(base, id, now, f, set, jk)
        return
    end
    redis.call('HSET', jk, unpack(set))
    -- about every hundredth of a fan-out job
    local tasks = tonumber(f[2]) or 1
    local step = math.max(1, math.floor(tasks / 100))
    if math.floor((tasks - left) / step) > math.floor((tasks - before) / step) then
        emit(base, 'event', 'progress', 'job', id, 'done', tasks - left,
            'tasks', tasks)
    end
end

-- ARGV: worker, then triples of task ref, token and result (a JSON
-- object). Reply: per task 1 recorded, 0 refused (stale token), -1 the
-- result was not a JSON object or too large, so the task was failed.
local function complete(keys, args)
    local base = keys[1]
    local worker = args[1]
    if not lease_args_ok(worker, #args - 1, 3) then
        return redis.error_reply('ERR usage: FCALL llmb_complete 1 <queue key> '
            .. '<worker> [<task ref> <token> <result json>]...')
    end
    local out = {}
    local now = now_ms()
    local max_result = conf_num(base, 'max_result', MAX_RESULT_BYTES_DEFAULT)
    local refs, ok = leases_take(base, worker, args, 2, 3)
    local jobs, order = {}, {}
    for i, ref in ipairs(refs) do
        -- 0: stale token, or the same task twice in one call
        out[i] = ok[i] and 1 or 0
        if ok[i] then
            local res = args[3 * i + 1]
            if #res > max_result
                or (string.byte(res) ~= 123 and not string.find(res, '^%s*{')) then
                local why = #res > max_result
                    and string.format('result is %d bytes; the limit is %d', #res, max_result)
                    or 'result is not a JSON object'
                task_failed(base, ref, 'error', why, now)
                out[i] = -1
            else
                local id, idx = ref_split(ref)
                group_add(jobs, order, id, idx, res)
            end
        end
    end
    for _, id in ipairs(order) do
        job_tasks_completed(base, id, jobs[id], now)
    end
    return out
end

-- ARGV: worker, then quadruples of task ref, token, kind (error, timeout,
-- fatal) and error text. Reply: per task 0 refused (stale token), 1 retry
-- scheduled, 2 failed for good.
local function fail(keys, args)
    local base = keys[1]
    local worker = args[1]
    if not lease_args_ok(worker, #args - 1, 4) then
        return redis.error_reply('ERR usage: FCALL llmb_fail 1 <queue key> '
            .. '<worker> [<task ref> <token> <error|timeout|fatal> <error text>]...')
    end
    local now = now_ms()
    local out = {}
    local refs, ok = leases_take(base, worker, args, 2, 4)
    for k, ref in ipairs(refs) do
        local kind, err = args[4 * k], args[4 * k + 1]
        if kind ~= 'timeout' and kind ~= 'fatal' then kind = 'error' end
        out[k] = ok[k] and task_failed(base, ref, kind, err, now) or 0
    end
    return out
end

-- ARGV: worker, then pairs of task ref and token. The tasks go back to the
-- front of their priority with the attempt given back. Reply: per task 1
-- released, 0 refused.
local function release(keys, args)
    local base = keys[1]
    local worker = args[1]
    if not lease_args_ok(worker, #args - 1, 2) then
        return redis.error_reply('ERR usage: FCALL llmb_release 1 <queue key> '
            .. '<worker> [<task ref> <token>]...')
    end
    local out = {}
    local back = 0
    local refs, ok = leases_take(base, worker, args, 2, 2)
    for k, ref in ipairs(refs) do
        if not ok[k] then
            out[k] = 0
        else
            local id, idx = ref_split(ref)
            local j = redis.call('HMGET', job_key(base, id), 'state', 'priority')
            local tk = job_key(base, id)
            if j[1] == 'cancelled' then
                task_cancelled(base, id, idx, now_ms())
            elseif j[1] ~= false then
                redis.call('HINCRBY', tk, idx .. ':attempt', -1)
                redis.call('HSET', tk, idx .. ':state', 'pending')
                redis.call('ZADD', base .. ':pending',
                    pending_score(tonumber(j[2]) or 0, 0), ref)
                back = back + 1
            end
            out[k] = 1
        end
    end
    if back > 0 then wake(base, back) end
    return out
end

register('llmb_heartbeat', heartbeat)
register('llmb_complete', complete)
register('llmb_fail', fail)
register('llmb_release', release)
