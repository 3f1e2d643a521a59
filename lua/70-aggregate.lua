--[[
The reliable hand-off of finished jobs to coordinators. A job's last task
pushes its id on <base>:done; agg_take moves ids from there into
<base>:aggr, a sorted set scored by a lease deadline, so an id taken by a
coordinator that dies is taken again once the lease runs out. agg_finish
stores the aggregate only if the id is still leased, so each job is
aggregated exactly once however many coordinators run.
]]

-- ARGV: lease_ms, n. Reply: up to n job ids to aggregate.
local function agg_take(keys, args)
    local base = keys[1]
    local lease_ms = tonumber(args[1]) or 60000
    local n = math.floor(tonumber(args[2]) or 10)
    local now = now_ms()
    local ak = base .. ':aggr'
    local out = redis.call('ZRANGEBYSCORE', ak, '-inf', now, 'LIMIT', 0, n)
    while #out < n do
        local id = redis.call('RPOP', base .. ':done')
        if not id then break end
        out[#out + 1] = id
    end
    for _, id in ipairs(out) do
        redis.call('ZADD', ak, now + lease_ms, id)
    end
    return out
end

-- ARGV: job id, aggregate JSON. Reply: 1 stored, 0 already done elsewhere
-- (or the job is gone).
local function agg_finish(keys, args)
    local base = keys[1]
    local id, agg = args[1], args[2]
    if id == nil or agg == nil then
        return redis.error_reply('ERR usage: FCALL llmb_agg_finish 1 <queue key> '
            .. '<job id> <aggregate json>')
    end
    if redis.call('ZREM', base .. ':aggr', id) == 0 then return 0 end
    local jk = job_key(base, id)
    local state = redis.call('HGET', jk, 'state')
    if state == false then return 0 end
    redis.call('HSET', jk, 'aggregate', agg, 'aggregated_ms', now_ms())
    emit(base, 'event', 'aggregated', 'job', id, 'state', state)
    return 1
end

register('llmb_agg_take', agg_take)
register('llmb_agg_finish', agg_finish)
