--[[
reap: takes tasks back from workers that stopped holding them. Expired
leases (the worker died or hangs past its lease) and every lease of a
worker known to be dead go back to pending at once; the attempt counts as
lost, apart from handler failures, and a task that keeps losing its
worker fails for good when its attempts run out.
]]

-- Takes back batch `held` of `worker` (nil: read from its record): each
-- member it still holds is lost (05-lifecycle.lua task_failed), the batch
-- and its deadline go. `why` says how, for the task's error. Returns the
-- members taken back.
local function batch_reap(base, held, why, now, w)
    local worker, claimed, members = L.lease_read(base, held)
    local lost = {}
    if members and #members > 0 then
        local cur = L.hmget(base .. ':run', members)
        for k, m in ipairs(members) do
            if cur[k] == held then lost[#lost + 1] = m end
        end
    end
    if #lost > 0 then chunked('HDEL', base .. ':run', lost) end
    redis.call('HDEL', base .. ':lease', held, held .. '#n')
    redis.call('ZREM', base .. ':running', held)
    if worker then
        kcall('SREM', leases_key(base, worker), held)
    else
        junk() -- a deadline without its batch record (written by hand)
    end
    local ids = {}
    for i, m in ipairs(lost) do ids[i] = L.member(m) or '' end
    local stop = {}
    if redis.call('EXISTS', base .. ':cx') == 1 and #ids > 0 then
        CALL.cx_may = true
        local r = redis.call('SMISMEMBER', base .. ':cx', unpack(ids))
        for i, id in ipairs(ids) do
            if r[i] == 1 then stop[id] = true end
        end
    end
    for i, m in ipairs(lost) do
        local id, idx = L.member(m)
        if stop[ids[i]] then
            if idx == nil then
                L.single_cancelled(base, id, now, claimed or now, worker or '')
            else
                task_cancelled(base, id, idx, 'running', now)
            end
            redis.call('HDEL', base .. ':att', m)
        else
            task_failed(base, m, 'lost', why(worker), now, claimed, worker, w)
        end
    end
    return #lost
end

-- ARGV: [limit 1..250, default 250]. Reply: number of expired batches
-- reaped; a reply equal to the limit means more may have expired (call
-- again). Also deletes up to `limit` jobs past their retention, for queues
-- where no job has ended lately (retention_trim).
local function reap(keys, args)
    local base = keys[1]
    local limit, err = limit_arg('llmb_reap', args[1], CALL_MAX)
    if limit == nil then return err end
    local now = now_ms()
    local helds = redis.call('ZRANGEBYSCORE', base .. ':running', '-inf', now,
        'LIMIT', 0, limit)
    local w = L.waits(base)
    local why = function(worker)
        return worker and ('lease expired: worker ' .. worker
            .. ' stopped heartbeating')
            or 'lease expired (no worker recorded for this task)'
    end
    for _, held in ipairs(helds) do
        if string.find(held, ':', 1, true) then
            -- a task the library before version 30 leased (06-oldlayout.lua)
            L.old_lease(base, held, w)
        else
            batch_reap(base, held, why, now, w)
        end
    end
    L.waits_flush(w)
    if w.n > 0 then wake(base, w.n) end
    retention_trim(base, now, limit)
    return #helds
end

-- ARGV: worker id, [reason]. Takes back the batches the worker holds in
-- this queue, up to CALL_MAX tasks (a batch is taken whole: at most
-- TASKS_MAX tasks past it). Reply: number of tasks taken back; a reply of
-- 250 or more means more may be held (call again).
local function reap_worker(keys, args)
    local base = keys[1]
    local worker = args[1]
    if worker == nil or worker == '' then
        return redis.error_reply('ERR usage: FCALL llmb_reap_worker 1 <queue key> '
            .. '<worker> [reason]')
    end
    local reason = args[2] or 'worker is dead'
    local helds = kcall('SRANDMEMBER', leases_key(base, worker), CALL_MAX)
    if helds == nil then return 0 end
    local now = now_ms()
    local w = L.waits(base)
    local why = function() return 'worker ' .. worker .. ': ' .. reason end
    local n = 0
    for _, held in ipairs(helds) do
        if n >= CALL_MAX then break end
        n = n + batch_reap(base, held, why, now, w)
        -- (a held token of the set whose batch is gone leaves the set)
        kcall('SREM', leases_key(base, worker), held)
    end
    L.waits_flush(w)
    if w.n > 0 then wake(base, w.n) end
    return n
end

register('llmb_reap', reap)
register('llmb_reap_worker', reap_worker)
