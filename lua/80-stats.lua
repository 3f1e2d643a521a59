--[[
stats: a read-only summary of one queue for the CLI, the coordinator's
metrics and anyone with redis-cli. Constant work: counts of sets, the
age and type of the job at the head of the queue and the queue's
cumulative task counters. Junk never makes it fail: a head member that names no task is
skipped (up to STATS_HEAD_LOOK of them), and a key of the wrong type counts
as empty and is named in `wrong_keys`.

Reply: flat field/value pairs.
]]

local STATS_HEAD_LOOK = 10

local function stats(keys)
    local base = keys[1]
    local now = now_ms()
    local wrong, named = {}, {}
    -- a command on a key of the wrong type answers `zero` and names it
    -- (once: <base>:pz is read up to three times)
    local function safe(zero, cmd, suffix, ...)
        local r = redis.pcall(cmd, base .. suffix, ...)
        if type(r) == 'table' and r.err then
            if not named[suffix] then
                named[suffix] = true
                wrong[#wrong + 1] = base .. suffix
            end
            return zero
        end
        return r
    end
    -- the head: what a claim would take first (a higher priority, else
    -- priority 0, else a lower one); STATS_HEAD_LOOK members looked at in
    -- all, in that order, so that junk at the head of one does not hide
    -- the real head in the next
    local head_age, head_type = 0, ''
    local head = safe({}, 'ZRANGEBYSCORE', ':pz', '-inf', '(0', 'LIMIT', 0,
        STATS_HEAD_LOOK)
    local hi = #head
    if #head < STATS_HEAD_LOOK then
        for _, m in ipairs(safe({}, 'LRANGE', ':pl', 0,
            STATS_HEAD_LOOK - #head - 1)) do head[#head + 1] = m end
    end
    if #head < STATS_HEAD_LOOK then
        for _, m in ipairs(safe({}, 'ZRANGE', ':pz', hi,
            hi + STATS_HEAD_LOOK - #head - 1)) do head[#head + 1] = m end
    end
    for _, m in ipairs(head) do
        local id = L.member(m)
        local r = id and redis.pcall('HGET', base .. ':jd', id)
        local st, created, typ = L.rec(type(r) == 'string' and r or nil)
        if st == 'p' then
            head_age = now - tonumber(created)
            head_type = typ
            break
        end
    end
    local c = safe({}, 'HMGET', ':counts', 'ok', 'failed', 'cancelled', 'junk',
        'wait_p', 'wait_d')
    -- tasks, not members: a fan-out cursor stands for many (behind_add)
    local np = safe(0, 'LLEN', ':pl') + safe(0, 'ZCARD', ':pz')
    local nd = safe(0, 'ZCARD', ':pd')
    -- (<base>:run holds one field that is no job: '~')
    local nrun = math.max(0, safe(0, 'HLEN', ':run') - 1)
    -- a `paused` of another type stops every claim (llmb_claim refuses it)
    local pt = redis.call('TYPE', base .. ':paused')['ok']
    local paused = pt ~= 'none' and 1 or 0
    if paused == 1 and pt ~= 'string' then
        wrong[#wrong + 1] = base .. ':paused'
    end
    return {
        -- (wait_p is negative while <base>:pl holds members a cancel
        -- ended: 05-lifecycle.lua L.stale)
        'pending', math.max(0, np + (tonumber(c[5]) or 0)),
        'delayed', math.max(nd, nd + (tonumber(c[6]) or 0)),
        'running', nrun,
        'jobs', safe(0, 'HLEN', ':jd'),
        'dead', safe(0, 'ZCARD', ':dead'),
        'to_aggregate', safe(0, 'LLEN', ':done') + safe(0, 'ZCARD', ':aggr'),
        'head_age_ms', head_age,
        'head_type', head_type,
        'now_ms', now,
        'tasks_ok', tonumber(c[1]) or 0,
        'tasks_failed', tonumber(c[2]) or 0,
        'tasks_cancelled', tonumber(c[3]) or 0,
        'junk', tonumber(c[4]) or 0,
        'paused', paused,
        'wrong_keys', table.concat(wrong, ' '),
    }
end

register('llmb_stats', stats, true)
