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

-- What is wrong with task result `res`, or nil: it must be one JSON
-- object (cjson parses it; the words cjson takes and JSON does not, such
-- as NaN or 0x10, and invalid UTF-8 are refused as at push) of at most
-- `max` bytes.
local function result_problem(res, max)
    if #res > max then
        return string.format('result is %d bytes; the limit is %d', #res, max)
    end
    if res == '{}' then return nil end
    local okj, v = pcall(cjson.decode, res)
    if not okj or type(v) ~= 'table' or not string.find(res, '^%s*{') then
        return 'result is not a JSON object: ' .. shown(res)
    end
    local at = utf8_invalid_at(res)
    if at then
        return string.format('result is not valid UTF-8 (byte %d)', at)
    end
    local bad_word = bad_number_problem(res)
    if bad_word then return 'result is not a JSON object: ' .. bad_word end
    return nil
end

-- ARGV: worker, lease_ms (100..86400000), then pairs of task ref and
-- token, at most TASKS_MAX pairs. Reply: flat pairs of task ref and reason
-- to stop: lost (the lease went elsewhere), cancelled (the job was
-- cancelled), gone (the job was deleted).
local function heartbeat(keys, args)
    local base = keys[1]
    local worker = args[1]
    local lease_ms = tonumber(args[2])
    if not lease_args_ok(worker, #args - 2, 2) or lease_ms == nil
        or lease_ms < 100 or lease_ms > 86400000 then
        return redis.error_reply('ERR usage: FCALL llmb_heartbeat 1 <queue key> '
            .. '<worker> <lease_ms 100..86400000> [<task ref> <token>]...')
    end
    if (#args - 2) / 2 > TASKS_MAX then
        return too_many('llmb_heartbeat', (#args - 2) / 2, 'leases', TASKS_MAX)
    end
    local out = {}
    if #args == 2 then return out end
    local now = now_ms()
    local refs = {}
    for i = 3, #args, 2 do refs[#refs + 1] = args[i] end
    local held = kcall('HMGET', leases_key(base, worker), unpack(refs)) or {}
    local states = {}
    local extend = zset_new(base .. ':running', 'XX')
    local deadline = istr(now + lease_ms)
    local seen = {}
    for i, ref in ipairs(refs) do
        local tok = args[2 + 2 * i]
        if seen[ref] then
            -- the same task twice in one call: answered once
        elseif not lease_opens(held[i], tok) then
            seen[ref] = true
            out[#out + 1] = ref
            out[#out + 1] = 'lost'
        else
            seen[ref] = true
            local id, idx = member_parse(ref)
            if states[id] == nil then
                states[id] = kcall('HGET', job_key(base, id), 'state') or false
            end
            if states[id] == 'cancelled' or states[id] == false then
                lease_drop(base, worker, ref)
                if states[id] == 'cancelled' then
                    task_cancelled(base, id, idx, 'running', now)
                end
                out[#out + 1] = ref
                out[#out + 1] = states[id] == 'cancelled' and 'cancelled' or 'gone'
            else
                zset_add(extend, deadline, ref)
            end
        end
    end
    zset_flush(extend)
    return out
end

-- Records the results of job `id`'s tasks completed in one call: `g`
-- holds task indexes and results. The job hash is read once and written
-- once (the task fields, `left`, and the end of the job when these were
-- its last tasks). A job hash deleted by hand leaves nothing to record.
local function job_tasks_completed(base, id, g, now)
    local jk = job_key(base, id)
    local f = kcall('HMGET', jk, 'state', 'tasks', 'failed', 'cancelled',
        'expired', 'left')
    -- (a key replaced by another type counts as gone too)
    if f == nil then return end
    if f[1] == false then
        junk(#g / 2)
        return
    end
    local set = {}
    for k = 1, #g, 2 do
        local m = #set
        set[m + 1] = task_field(g[k], 'state')
        set[m + 2] = 'completed'
        -- (the empty result is not stored: llmb_job answers it for a
        -- completed task without one)
        if g[k + 1] ~= EMPTY_RESULT then
            set[m + 3] = task_field(g[k], 'result')
            set[m + 4] = g[k + 1]
        end
    end
    local done = #g / 2
    CALL.counts.ok = (CALL.counts.ok or 0) + done
    -- (an absent `left` is `tasks`: none ended yet)
    local before = tonumber(f[6]) or tonumber(f[2] or JOB_DEFAULTS.tasks)
    local left = before - done
    set[#set + 1] = 'left'
    set[#set + 1] = istr(left)
    if left <= 0 then
        job_finish(base, id, now, f, set, jk)
        return
    end
    chunked('HSET', jk, set)
    progress(base, id, tonumber(f[2]) or 1, before, left)
end

-- ARGV: worker, then triples (at most CALL_MAX) of task ref, token and
-- result (a JSON object). Reply: per task 1 recorded, 0 refused (stale token), -1 the
-- result was not a JSON object or too large, so the task was failed.
local function complete(keys, args)
    local base = keys[1]
    local worker = args[1]
    if not lease_args_ok(worker, #args - 1, 3) then
        return redis.error_reply('ERR usage: FCALL llmb_complete 1 <queue key> '
            .. '<worker> [<task ref> <token> <result json>]...')
    end
    if (#args - 1) / 3 > CALL_MAX then
        return too_many('llmb_complete', (#args - 1) / 3, 'tasks')
    end
    local out = {}
    local now = now_ms()
    local max_result = conf_num(base, 'max_result')
    local refs, ok = leases_take(base, worker, args, 2, 3)
    local jobs, order = {}, {}
    for i, ref in ipairs(refs) do
        -- 0: stale token, or the same task twice in one call
        out[i] = ok[i] and 1 or 0
        if ok[i] then
            local res = args[3 * i + 1]
            local why = result_problem(res, max_result)
            local id, idx = member_parse(ref)
            if why then
                task_failed(base, ref, 'error', why, now)
                out[i] = -1
            elseif id == nil or idx == '*' then
                junk()
            else
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
    if (#args - 1) / 4 > CALL_MAX then
        return too_many('llmb_fail', (#args - 1) / 4, 'tasks')
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

-- ARGV: worker, [back], then pairs of task ref and token. The tasks go
-- back to the front of their priority (shutdown: they were under way), or
-- with `back` behind every task of their priority that waits (a worker
-- without their handler hands them on), with the attempt given back.
-- Reply: per task 1 released, 0 refused.
local function release(keys, args)
    local base = keys[1]
    local worker = args[1]
    local first = 2
    if args[2] == 'back' then first = 3 end
    if not lease_args_ok(worker, #args - first + 1, 2) then
        return redis.error_reply('ERR usage: FCALL llmb_release 1 <queue key> '
            .. '<worker> [back] [<task ref> <token>]...')
    end
    if (#args - first + 1) / 2 > CALL_MAX then
        return too_many('llmb_release', (#args - first + 1) / 2, 'tasks')
    end
    local out = {}
    local back = 0
    local now = now_ms()
    local refs, ok = leases_take(base, worker, args, first, 2)
    for k, ref in ipairs(refs) do
        out[k] = ok[k] and 1 or 0
        local id, idx = member_parse(ref)
        if ok[k] and id and idx ~= '*' then
            local jk = job_key(base, id)
            local j = kcall('HMGET', jk, 'state', 'priority', 'tasks')
            if j == nil then
                -- (not a hash: counted as junk)
            elseif j[1] == 'cancelled' then
                task_cancelled(base, id, idx, 'running', now)
            elseif j[1] ~= false then
                redis.call('HINCRBY', jk, task_field(idx, 'attempt'), -1)
                local seq = 0
                if first == 3 then seq = redis.call('INCR', base .. ':seq') end
                task_requeue(base, jk, id, idx, (tonumber(j[3]) or 1) > 1,
                    'running', 'pending',
                    pending_score(tonumber(j[2]) or 0, seq))
                back = back + 1
            end
        end
    end
    if back > 0 then wake(base, back) end
    return out
end

register('llmb_heartbeat', heartbeat)
register('llmb_complete', complete)
register('llmb_fail', fail)
register('llmb_release', release)
