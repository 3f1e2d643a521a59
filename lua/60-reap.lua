--[[
reap: takes tasks back from workers that stopped holding them. Expired
leases (the worker died or hangs past its lease) and every lease of a
worker known to be dead go back to pending at once; the attempt counts as
lost, apart from handler failures, and a task that keeps losing its
worker fails for good when its attempts run out.
]]

-- ARGV: [limit, default 1000]. Reply: number of expired leases reaped.
-- Also deletes up to `limit` jobs past their retention, for queues where
-- no job has ended lately (retention_trim).
local function reap(keys, args)
    local base = keys[1]
    local limit = math.floor(tonumber(args[1]) or 1000)
    if limit < 1 then limit = 1 end
    local now = now_ms()
    local refs = redis.call('ZRANGEBYSCORE', base .. ':running', '-inf', now,
        'LIMIT', 0, limit)
    for _, ref in ipairs(refs) do
        local id, idx = ref_split(ref)
        if id == nil then
            -- a ref that names no task (added by hand): dropped
            redis.call('ZREM', base .. ':running', ref)
        else
            local worker = redis.call('HGET', job_key(base, id), idx .. ':worker')
            if worker then
                lease_drop(base, worker, ref)
            else
                redis.call('ZREM', base .. ':running', ref)
            end
            task_failed(base, ref, 'lost', worker
                and ('lease expired: worker ' .. worker .. ' stopped heartbeating')
                or 'lease expired (no worker recorded for this task)', now)
        end
    end
    retention_trim(base, now, limit)
    return #refs
end

-- ARGV: worker id, reason. Every lease the worker holds in this queue
-- goes back at once. Reply: number of tasks taken back.
local function reap_worker(keys, args)
    local base = keys[1]
    local worker = args[1]
    if worker == nil or worker == '' then
        return redis.error_reply('ERR usage: FCALL llmb_reap_worker 1 <queue key> '
            .. '<worker> [reason]')
    end
    local why = args[2] or 'worker is dead'
    local lk = leases_key(base, worker)
    local refs = redis.call('HKEYS', lk)
    local now = now_ms()
    for _, ref in ipairs(refs) do
        redis.call('ZREM', base .. ':running', ref)
        task_failed(base, ref, 'lost', 'worker ' .. worker .. ': ' .. why, now)
    end
    redis.call('DEL', lk)
    return #refs
end

register('llmb_reap', reap)
register('llmb_reap_worker', reap_worker)
