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

-- The jobs of `ids` cancelled while they ran (<base>:cx), as a set; empty
-- without a look when none is.
local function cancelled_of(base, members, ids)
    local out = {}
    local ck = base .. ':cx'
    if #members == 0 or redis.call('EXISTS', ck) == 0 then return out end
    CALL.cx_may = true
    if ids == nil then
        ids = {}
        for i, m in ipairs(members) do ids[i] = L.member(m) or '' end
    end
    for i = 1, #ids, CHUNK do
        local j = math.min(#ids, i + CHUNK - 1)
        local r = redis.call('SMISMEMBER', ck, unpack(ids, i, j))
        for x = i, j do
            if r[x - i + 1] == 1 then out[ids[x]] = true end
        end
    end
    return out
end

-- The job ids of members.
local function ids_of(members)
    local ids = {}
    for i, m in ipairs(members) do ids[i] = L.member(m) or '' end
    return ids
end

-- Ends, as cancelled, task `member` (job `id`, task `idx` or nil for a
-- job of one task) that ran since `claimed` on `worker`.
local function running_cancelled(base, member, id, idx, now, claimed, worker)
    if idx == nil then
        L.single_cancelled(base, id, now, claimed or now, worker)
    else
        task_cancelled(base, id, idx, 'running', now)
    end
    redis.call('HDEL', base .. ':att', member)
end

-- ARGV: worker, lease_ms (100..86400000), then pairs of task ref and
-- token, at most TASKS_MAX pairs. Renews each batch named once (one ZADD
-- however many tasks it holds). Reply: flat pairs of task ref and reason
-- to stop: lost (the lease went elsewhere), cancelled (the job was
-- cancelled, or passed its deadline).
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
    local refs, ok, claimed, c = L.leases_check(base, worker, args, 3, 2)
    -- every batch named under a lease of this worker is renewed
    local e = {}
    for held, b in pairs(c.batch) do
        e[#e + 1] = now + lease_ms
        e[#e + 1] = held
        b.n = 0
    end
    for i = 1, #e, 2 * CHUNK do
        redis.call('ZADD', base .. ':running', 'XX',
            unpack(e, i, math.min(#e, i + 2 * CHUNK - 1)))
    end
    local seen, mine = {}, {}
    for k, ref in ipairs(refs) do
        if ok[k] then
            mine[#mine + 1] = ref
        elseif not seen[ref] then
            out[#out + 1] = ref
            out[#out + 1] = 'lost'
        end
        seen[ref] = true
    end
    -- the tasks of jobs cancelled while they ran stop now
    local stop = cancelled_of(base, mine)
    local ended = {}
    for k, ref in ipairs(refs) do
        local id, idx = L.member(ref)
        if ok[k] and stop[id] then
            local b = c.batch[L.held_of(args[2 + 2 * k])]
            b.n = b.n + 1
            ended[#ended + 1] = ref
            running_cancelled(base, ref, id, idx, now, claimed[k], worker)
            out[#out + 1] = ref
            out[#out + 1] = 'cancelled'
        end
    end
    L.leases_end(base, c, ended)
    return out
end

-- Records the results of fan-out job `id`'s tasks completed in one call:
-- `g` holds task indexes, results, attempts and workers. The job hash is
-- read once and written once (the task fields, `left`, and the end of the
-- job when these were its last tasks). A job hash deleted by hand leaves
-- nothing to record.
local function job_tasks_completed(base, id, g, now, worker)
    local jk = job_key(base, id)
    local f = kcall('HMGET', jk, 'state', 'tasks', 'failed', 'cancelled',
        'expired', 'left', 'version')
    -- (a key replaced by another type counts as gone too)
    if f == nil then return end
    if f[1] == false then
        junk(#g / 3)
        return
    end
    local set = {}
    -- a retried job's tasks may hold the attempt of an earlier run: one
    -- that completes on its first attempt drops it
    local stale = f[7] and {} or nil
    for k = 1, #g, 3 do
        local m = #set
        local idx = g[k]
        set[m + 1] = task_field(idx, 'state')
        set[m + 2] = 'completed'
        set[m + 3] = task_field(idx, 'worker')
        set[m + 4] = worker
        -- (the empty result is not stored: llmb_job answers it for a
        -- completed task without one; nor the first attempt)
        if g[k + 1] ~= EMPTY_RESULT then
            set[#set + 1] = task_field(idx, 'result')
            set[#set + 1] = g[k + 1]
        end
        if g[k + 2] > 1 then
            set[#set + 1] = task_field(idx, 'attempt')
            set[#set + 1] = istr(g[k + 2])
        elseif stale then
            stale[#stale + 1] = task_field(idx, 'attempt')
        end
    end
    if stale and #stale > 0 then chunked('HDEL', jk, stale) end
    local done = #g / 3
    CALL.counts.ok = (CALL.counts.ok or 0) + done
    local tasks = tonumber(f[2]) or 1
    local before = tonumber(f[6]) or tasks
    local left = before - done
    set[#set + 1] = 'left'
    set[#set + 1] = istr(left)
    if left <= 0 then
        job_finish(base, id, now, f, set, jk)
        return
    end
    chunked('HSET', jk, set)
    progress(base, id, tasks, before, left)
end

-- ARGV: worker, then triples (at most CALL_MAX) of task ref, token and
-- result (a JSON object). Reply: per task 1 recorded, 0 refused (stale
-- token), -1 the result was not a JSON object or too large, so the task
-- was failed.
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
    local refs, ok, claimed, c = L.leases_check(base, worker, args, 2, 3)
    local mine = c.mine
    local stop = cancelled_of(base, mine)
    local att = L.attempts(base, mine)
    local w = L.waits(base)
    local jobs, order = {}, {}
    local k, ok_n = 0, 0
    local had, tails, fronts = {}, {}, {}
    for i, ref in ipairs(refs) do
        -- 0: stale token, or the same task twice in one call
        out[i] = ok[i] and 1 or 0
        if ok[i] then
            k = k + 1
            local a = (att[k] or 0) + 1
            local res = args[3 * i + 1]
            local why = result_problem(res, max_result)
            -- (the attempts of a task that ends here go; those of one
            -- whose result is refused count on in task_failed)
            if att[k] and not why then had[#had + 1] = ref end
            local id, idx = L.member(ref)
            if why then
                task_failed(base, ref, 'error', why, now, claimed[i], worker, w)
                out[i] = -1
            elseif stop[id] then
                running_cancelled(base, ref, id, idx, now, claimed[i], worker)
            elseif idx == nil then
                ok_n = ok_n + 1
                -- (" <claimed> <worker>": the same for the tasks of a batch)
                local t = tails[claimed[i]]
                if t == nil then
                    t = ' ' .. istr(claimed[i]) .. ' ' .. worker
                    tails[claimed[i]] = t
                end
                if a == 1 and res == EMPTY_RESULT then
                    -- (the common end: made once per batch)
                    local f = fronts[claimed[i]]
                    if f == nil then
                        f = L.end_front('completed', now, t)
                        fronts[claimed[i]] = f
                    end
                    L.job_end_front(base, id, 'completed', now, f, true)
                else
                    if a > 1 then t = t .. ' ' .. istr(a) end
                    local trivial = res == EMPTY_RESULT
                    L.job_end(base, id, 'completed', now, t, trivial,
                        not trivial and res or nil)
                end
            else
                group_add(jobs, order, id, idx, res)
                local g = jobs[id]
                g[#g + 1] = a
            end
        end
    end
    CALL.counts.ok = (CALL.counts.ok or 0) + ok_n
    for _, id in ipairs(order) do
        job_tasks_completed(base, id, jobs[id], now, worker)
    end
    if #had > 0 then chunked('HDEL', base .. ':att', had) end
    L.leases_end(base, c, mine)
    L.waits_flush(w)
    if w.n > 0 then wake(base, w.n) end
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
    local refs, ok, claimed, c = L.leases_check(base, worker, args, 2, 4)
    local mine = c.mine
    local stop = cancelled_of(base, mine)
    local w = L.waits(base)
    for k, ref in ipairs(refs) do
        local kind, err = args[4 * k], args[4 * k + 1]
        if kind ~= 'timeout' and kind ~= 'fatal' then kind = 'error' end
        if not ok[k] then
            out[k] = 0
        elseif stop[L.member(ref)] then
            local id, idx = L.member(ref)
            running_cancelled(base, ref, id, idx, now, claimed[k], worker)
            out[k] = 2
        else
            out[k] = task_failed(base, ref, kind, err, now, claimed[k],
                worker, w)
        end
    end
    L.leases_end(base, c, mine)
    L.waits_flush(w)
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
    local now = now_ms()
    local refs, ok, claimed, c = L.leases_check(base, worker, args, first, 2)
    local mine = c.mine
    local ids = ids_of(mine)
    local stop = cancelled_of(base, mine, ids)
    local recs = L.recs(base, ids)
    local w = L.waits(base)
    local k = 0
    for i, ref in ipairs(refs) do
        out[i] = ok[i] and 1 or 0
        if ok[i] then
            k = k + 1
            local id, idx = L.member(ref)
            local s, _, _, o = L.rec(recs[k])
            if s == nil then
                junk() -- its record is gone (deleted by hand)
            elseif stop[id] then
                running_cancelled(base, ref, id, idx, now, claimed[i], worker)
            else
                if idx then
                    kcall('HSET', job_key(base, id), task_field(idx, 'state'),
                        moved('running', 'pending'))
                    kcall('SADD', requeued_key(base, id), ref)
                end
                L.wait(w, ref, L.optn(o, 'p', 0),
                    first == 3 and 'back' or 'front')
            end
        end
    end
    L.leases_end(base, c, mine)
    L.waits_flush(w)
    if w.n > 0 then wake(base, w.n) end
    return out
end

register('llmb_heartbeat', heartbeat)
register('llmb_complete', complete)
register('llmb_fail', fail)
register('llmb_release', release)
