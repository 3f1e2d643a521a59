--[[
reap: takes tasks back from workers that stopped holding them. Expired
leases (the worker died or hangs past its lease) and every lease of a
worker known to be dead go back to pending at once; the attempt counts as
lost, apart from handler failures, and a task that keeps losing its
worker fails for good when its attempts run out.
]]

-- ARGV: [limit 1..250, default 250]. Reply: number of expired leases
-- reaped; a reply equal to the limit means more may have expired (call
-- again). Also deletes up to `limit` jobs past their retention, for queues
-- where no job has ended lately (retention_trim).
local function reap(keys, args)
    local base = keys[1]
    local limit, err = limit_arg('llmb_reap', args[1], CALL_MAX)
    if limit == nil then return err end
    local now = now_ms()
    local refs = redis.call('ZRANGEBYSCORE', base .. ':running', '-inf', now,
        'LIMIT', 0, limit)
    for _, ref in ipairs(refs) do
        local id, idx = member_parse(ref)
        local worker = false
        if id and idx ~= '*' then
            worker = kcall('HGET', job_key(base, id),
                task_field(idx, 'worker')) or false
        end
        if worker then
            lease_drop(base, worker, ref)
        else
            redis.call('ZREM', base .. ':running', ref)
        end
        if id == nil or idx == '*' then
            junk() -- a member that names no task (added by hand): dropped
        else
            task_failed(base, ref, 'lost', worker
                and ('lease expired: worker ' .. worker .. ' stopped heartbeating')
                or 'lease expired (no worker recorded for this task)', now)
        end
    end
    retention_trim(base, now, limit)
    return #refs
end

-- ARGV: worker id, [reason]. Takes back up to CALL_MAX leases the worker
-- holds in this queue. Reply: number of tasks taken back; a reply of 250
-- means more may be held (call again).
local function reap_worker(keys, args)
    local base = keys[1]
    local worker = args[1]
    if worker == nil or worker == '' then
        return redis.error_reply('ERR usage: FCALL llmb_reap_worker 1 <queue key> '
            .. '<worker> [reason]')
    end
    local why = args[2] or 'worker is dead'
    local lk = leases_key(base, worker)
    local refs = kcall('HRANDFIELD', lk, CALL_MAX)
    if refs == nil then return 0 end
    local now = now_ms()
    for _, ref in ipairs(refs) do
        redis.call('ZREM', base .. ':running', ref)
        task_failed(base, ref, 'lost', 'worker ' .. worker .. ': ' .. why, now)
    end
    chunked('HDEL', lk, refs)
    return #refs
end

register('llmb_reap', reap)
register('llmb_reap_worker', reap_worker)
