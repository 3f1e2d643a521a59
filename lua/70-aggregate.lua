--[[
The reliable hand-off of finished jobs to coordinators. A job's last task
pushes its id on <base>:done; agg_take moves ids from there into
<base>:aggr, a sorted set scored by a lease deadline, so an id taken by a
coordinator that dies is taken again once the lease runs out. agg_finish
stores the aggregate only if the id is still leased and the job is still
the run it was computed from (its `version`, which llmb_retry bumps), so
each run of a job is aggregated exactly once however many coordinators
run, and a computation that a retry overtook is never stored.
]]

-- ARGV: lease_ms, n (1..1000: an id costs a pop and an add). Reply: up to n job ids to aggregate.
local function agg_take(keys, args)
    local base = keys[1]
    local lease_ms = tonumber(args[1]) or 60000
    local n = tonumber(args[2]) or 10
    if n < 1 or n > TASKS_MAX or lease_ms < 100 then
        return redis.error_reply('ERR usage: FCALL llmb_agg_take 1 <queue key> '
            .. '<lease_ms >= 100> <n 1..1000>')
    end
    n = math.floor(n)
    local now = now_ms()
    local ak = base .. ':aggr'
    local out = redis.call('ZRANGEBYSCORE', ak, '-inf', now, 'LIMIT', 0, n)
    while #out < n do
        local id = redis.call('RPOP', base .. ':done')
        if not id then break end
        out[#out + 1] = id
    end
    local z = zset_new(ak)
    for _, id in ipairs(out) do zset_add(z, now + lease_ms, id) end
    zset_flush(z)
    return out
end

-- ARGV: job id, aggregate JSON, [version: the job's `version` field as
-- read when the computation began; absent or "" for 0]. Reply: 1 stored,
-- 0 already done elsewhere (or the job is gone), -1 the job was retried
-- since (or has not ended): nothing stored; its new run is aggregated
-- when it ends.
local function agg_finish(keys, args)
    local base = keys[1]
    local id, agg = args[1], args[2]
    if id == nil or agg == nil then
        return redis.error_reply('ERR usage: FCALL llmb_agg_finish 1 <queue key> '
            .. '<job id> <aggregate json> [version]')
    end
    local jk = job_key(base, id)
    local rec = redis.call('HGET', base .. ':jd', id)
    local ver = kcall('HGET', jk, 'version')
    if not rec or ver == nil then
        -- its record is gone (retention, or by hand), or its hash is no
        -- hash: nothing to store
        redis.call('ZREM', base .. ':aggr', id)
        return 0
    end
    local e = L.end_of(base, id, rec)
    local state = e and END_STATE[string.sub(e, 1, 1)]
    local want = args[3]
    if want == nil or want == '' then want = '0' end
    if state == nil or (ver or '0') ~= want then
        return -1
    end
    if redis.call('ZREM', base .. ':aggr', id) == 0 then return 0 end
    redis.call('HSET', jk, 'aggregate', agg, 'aggregated_ms', now_ms())
    emit(base, 'event', 'aggregated', 'job', id, 'state', state)
    return 1
end

register('llmb_agg_take', agg_take)
register('llmb_agg_finish', agg_finish)
