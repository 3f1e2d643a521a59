--[[
stats: a read-only summary of one queue for the CLI, the coordinator's
metrics and anyone with redis-cli. Constant work: counts of sets, the
age of the task at the head of the queue and the queue's cumulative task
counters.

Reply: flat field/value pairs.
]]

local function stats(keys)
    local base = keys[1]
    local now = now_ms()
    local head_age = 0
    local head = redis.call('ZRANGE', base .. ':pending', 0, 0)
    if #head > 0 then
        local id = ref_split(head[1])
        local created = tonumber(redis.call('HGET', job_key(base, id), 'created_ms'))
        if created then head_age = now - created end
    end
    local c = redis.call('HMGET', base .. ':counts', 'ok', 'failed', 'cancelled')
    return {
        'pending', redis.call('ZCARD', base .. ':pending'),
        'delayed', redis.call('ZCARD', base .. ':delayed'),
        'running', redis.call('ZCARD', base .. ':running'),
        'jobs', redis.call('ZCARD', base .. ':jobs'),
        'dead', redis.call('ZCARD', base .. ':dead'),
        'to_aggregate', redis.call('LLEN', base .. ':done')
            + redis.call('ZCARD', base .. ':aggr'),
        'head_age_ms', head_age,
        'now_ms', now,
        'tasks_ok', tonumber(c[1]) or 0,
        'tasks_failed', tonumber(c[2]) or 0,
        'tasks_cancelled', tonumber(c[3]) or 0,
    }
end

register('llmb_stats', stats, true)
