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
    local n = (#args - 1) / 3
    if n == 0 then return out end
    local now = now_ms()
    local max_result = conf_num(base, 'max_result', MAX_RESULT_BYTES_DEFAULT)
    local refs = {}
    for i = 1, n do refs[i] = args[3 * i - 1] end
    -- One read of the worker's leases and one drop for the whole batch.
    local held = redis.call('HMGET', leases_key(base, worker), unpack(refs))
    local mine = {}
    for i = 1, n do
        local ref = refs[i]
        if held[i] == args[3 * i] and not mine[ref] then
            mine[ref] = true
            mine[#mine + 1] = ref
            out[i] = 1
        else
            out[i] = 0 -- stale token, or the same task twice in one call
        end
    end
    if #mine == 0 then return out end
    redis.call('ZREM', base .. ':running', unpack(mine))
    redis.call('HDEL', leases_key(base, worker), unpack(mine))
    for i = 1, n do
        if out[i] == 1 then
            local ref, res = refs[i], args[3 * i + 1]
            local id, idx = ref_split(ref)
            if #res > max_result or not string.find(res, '^%s*{') then
                local why = #res > max_result
                    and string.format('result is %d bytes; the limit is %d', #res, max_result)
                    or 'result is not a JSON object'
                task_failed(base, ref, 'error', why, now)
                out[i] = -1
            elseif redis.call('EXISTS', job_key(base, id)) == 1 then
                -- (a job hash deleted by hand leaves nothing to record)
                redis.call('HSET', tasks_key(base, id), idx .. ':state',
                    'completed', idx .. ':result', res)
                task_ended(base, id, 'ok', now)
            end
        end
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
    for i = 2, #args, 4 do
        local ref, tok, kind, err = args[i], args[i + 1], args[i + 2], args[i + 3]
        if kind ~= 'timeout' and kind ~= 'fatal' then kind = 'error' end
        if not lease_held(base, worker, ref, tok) then
            out[#out + 1] = 0
        else
            lease_drop(base, worker, ref)
            out[#out + 1] = task_failed(base, ref, kind, err, now)
        end
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
    for i = 2, #args, 2 do
        local ref, tok = args[i], args[i + 1]
        if not lease_held(base, worker, ref, tok) then
            out[#out + 1] = 0
        else
            lease_drop(base, worker, ref)
            local id, idx = ref_split(ref)
            local j = redis.call('HMGET', job_key(base, id), 'state', 'priority')
            local tk = tasks_key(base, id)
            if j[1] == 'cancelled' then
                task_cancelled(base, id, idx, now_ms())
            elseif j[1] ~= false then
                redis.call('HINCRBY', tk, idx .. ':attempt', -1)
                redis.call('HSET', tk, idx .. ':state', 'pending')
                redis.call('ZADD', base .. ':pending',
                    pending_score(tonumber(j[2]) or 0, 0), ref)
                back = back + 1
            end
            out[#out + 1] = 1
        end
    end
    if back > 0 then wake(base, back) end
    return out
end

register('llmb_heartbeat', heartbeat)
register('llmb_complete', complete)
register('llmb_fail', fail)
register('llmb_release', release)
