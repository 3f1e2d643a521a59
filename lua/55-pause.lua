--[[
Pausing a queue: while <base>:paused exists, llmb_claim hands out nothing
from the queue (30-claim.lua); pushes are accepted, promotions, leases,
results, cancels and reaping go on as usual. The key holds the time the
queue was paused (ms). Resuming deletes it and wakes idle workers when
tasks wait, pending or delayed, which then claim what waited.

ARGV: none. Reply of both: 1 when the call changed the queue's state, 0
when it was already so. Each call that changes it adds an event
(`paused` or `resumed`, without `job`) to the queue's stream.
]]

local function pause(keys)
    local base = keys[1]
    local now = now_ms()
    if redis.call('SET', base .. ':paused', now_str(now), 'NX') then
        emit(base, 'event', 'paused')
        return 1
    end
    return 0
end

local function resume(keys)
    local base = keys[1]
    if redis.call('DEL', base .. ':paused') == 1 then
        emit(base, 'event', 'resumed')
        -- idle workers block on the wake list: tell them work may wait.
        -- Delayed tasks too: a claim while paused told them of no due
        -- time, and those due since wait for a claim to promote them.
        if redis.call('LLEN', base .. ':pl') > 0
            or redis.call('ZCARD', base .. ':pz') > 0
            or redis.call('ZCARD', base .. ':pd') > 0 then
            wake(base, 64)
        end
        return 1
    end
    return 0
end

register('llmb_pause', pause)
register('llmb_resume', resume)
