--[[
upgrade: converts what a queue holds in the layout of library versions
before 30 (a hash per job, B:pending, B:delayed, B:running of task refs
with a lease hash per worker, B:jobs, B:ended) into the record layout
(05-lifecycle.lua), a bounded chunk per call. The coordinator calls it for
every queue until it answers 0 (docs/operations.md, Upgrade).

  - ended jobs (B:ended, oldest first): a record and an end each, their
    line in B:fin (at its head: they ended before what ends now) and
    their id in B:jl; a job of one task keeps in its hash only what the
    new layout keeps there (counts, error, aggregate, version);
  - waiting members (B:pending, B:delayed): the job's record, its member
    in B:pl, B:pz or B:pd with the same score, its attempts in B:att;
  - tasks running under the old library (refs in B:running): their
    leases are lost with the old library (its workers cannot report to
    this one), so they wait again at the front of their priority, the
    attempt given back, and run again;
  - B:jobs goes once nothing else is left of the old layout.

It also converts what versions 30 kept apart: the ends of jobs, in the
hash B:je, go in front of their records (05-lifecycle.lua).

ARGV: [limit 1..250, default 250]. Reply: old members and jobs converted;
0 when nothing of the old layouts is left.
]]

-- Puts up to about `limit` ends of B:je (library version 30) in front of
-- their jobs' records, and deletes them there; an end whose record is
-- gone, or that has one already (the job ended again since: until then
-- every function read the end in B:je, 05-lifecycle.lua L.end_of), goes.
-- The HSCAN cursor is kept between calls in B:jec, so that each call goes
-- on where the last stopped rather than over the buckets it emptied.
-- Returns how many, at least 1 while B:je is left.
local function upgrade_ends(base, limit)
    local ek, ck = base .. ':je', base .. ':jec'
    if redis.call('EXISTS', ek) == 0 then
        redis.call('DEL', ck)
        return 0
    end
    local jd = base .. ':jd'
    local n, scans = 0, 0
    local cursor = redis.call('GET', ck) or '0'
    if not string.find(cursor, '^%d+$') then cursor = '0' end
    -- at most 10 HSCAN steps (each visits about `limit` buckets): bounded
    -- work when the hash is sparse
    repeat
        local r = redis.call('HSCAN', ek, cursor, 'COUNT', limit - n)
        cursor = r[2] and r[1] or '0'
        local kv = r[2] or {}
        local ids, set = {}, {}
        for i = 1, #kv, 2 do ids[#ids + 1] = kv[i] end
        local recs = L.recs(base, ids)
        for k = 1, #ids do
            local rec = recs[k]
            if rec and not L.rec_end(rec) then
                set[#set + 1] = ids[k]
                set[#set + 1] = L.rec_ended(rec, kv[2 * k])
            elseif not rec then
                junk()
            end
        end
        if #set > 0 then chunked('HSET', jd, set) end
        if #ids > 0 then chunked('HDEL', ek, ids) end
        n = n + #ids
        scans = scans + 1
    until n >= limit or cursor == '0' or scans >= 10
    if redis.call('EXISTS', ek) == 0 then
        redis.call('DEL', ck)
        return math.max(n, 1)
    end
    redis.call('SET', ck, cursor)
    return math.max(n, 1)
end

-- Converts up to `limit` ended jobs, newest first (each line goes to the
-- head of B:fin, so the oldest ends first there). Returns how many.
local function upgrade_ended(base, limit)
    local ek = base .. ':ended'
    local ids = redis.call('ZREVRANGE', ek, 0, limit - 1, 'WITHSCORES')
    local n = 0
    for i = 1, #ids, 2 do
        local id, fin = ids[i], ids[i + 1]
        local jk = job_key(base, id)
        local f = kcall('HMGET', jk, unpack(L.OLD_JOB))
        local t = f and kcall('HMGET', jk, '0:worker', '0:attempt',
            '0:result', '0:error', 'error')
        local tasks = f and L.old_record(base, id, jk, f)
        if tasks then
            local state = TERMINAL[f[3]] and f[3] or 'failed'
            local e = END_LETTER[state] .. (f[6] or istr(tonumber(fin)))
            if tasks == 1 then
                e = e .. ' ' .. (f[5] or '0') .. ' ' .. (t[1] or '')
                if (tonumber(t[2]) or 1) > 1 then e = e .. ' ' .. t[2] end
                if state == 'completed' and t[3] and t[3] ~= EMPTY_RESULT then
                    e = e .. '\t' .. t[3]
                elseif state == 'failed' then
                    e = e .. '\t' .. (t[4] or t[5] or '')
                end
            end
            local r = redis.call('HGET', base .. ':jd', id)
            if r and not L.rec_end(r) then
                redis.call('HSET', base .. ':jd', id, L.rec_ended(r, e))
            end
            redis.call('LPUSH', base .. ':fin', string.format('%d',
                tonumber(f[6]) or tonumber(fin)) .. ' ' .. id)
            redis.call('LPUSH', base .. ':jl', id)
        else
            junk()
        end
        redis.call('ZREM', ek, id)
        redis.call('ZREM', base .. ':jobs', id)
        n = n + 1
    end
    return n
end

-- Converts up to `limit` members of old waiting set `old` ('pending' or
-- 'delayed'). Returns how many.
local function upgrade_waiting(base, old, limit)
    local ok = base .. ':' .. old
    local ms = redis.call('ZRANGE', ok, 0, limit - 1, 'WITHSCORES')
    local n = 0
    for i = 1, #ms, 2 do
        local m, score = ms[i], tonumber(ms[i + 1])
        local id, idx = string.match(m, '^([^:]+):([%d%*]+)$')
        local jk = id and job_key(base, id)
        local f = jk and kcall('HMGET', jk, unpack(L.OLD_JOB))
        local att = jk and idx ~= '*' and kcall('HGET', jk, idx .. ':attempt')
        local tasks = f and L.old_record(base, id, jk, f)
        if tasks then
            local member = (tasks == 1 or idx == '*') and id or m
            if old == 'delayed' then
                redis.call('ZADD', base .. ':pd', score, member)
            elseif score >= 0 and score < TWO32 then
                redis.call('RPUSH', base .. ':pl', member)
            else
                redis.call('ZADD', base .. ':pz', score, member)
            end
            if idx ~= '*' and tonumber(att) and tonumber(att) > 0 then
                redis.call('HSET', base .. ':att', member, att)
            end
            redis.call('RPUSH', base .. ':jl', id)
            redis.call('ZREM', base .. ':jobs', id)
        else
            junk()
        end
        redis.call('ZREM', ok, m)
        n = n + 1
    end
    return n
end

-- Tasks the old library leased (refs in B:running, which sort before
-- the held tokens of this layout: their leases were taken before): up to
-- `limit` of the first wait again. Returns how many.
local function upgrade_running(base, limit)
    local ms = redis.call('ZRANGE', base .. ':running', 0, limit - 1)
    local w = L.waits(base)
    local n = 0
    for _, m in ipairs(ms) do
        if string.find(m, ':', 1, true) then
            L.old_lease(base, m, w)
            n = n + 1
        end
    end
    L.waits_flush(w)
    if w.n > 0 then wake(base, w.n) end
    return n
end

local function upgrade(keys, args)
    local base = keys[1]
    local limit, err = limit_arg('llmb_upgrade', args[1], CALL_MAX)
    if limit == nil then return err end
    for _, k in ipairs({'ended', 'pending', 'delayed', 'jobs', 'je', 'jec'}) do
        local want = k == 'je' and 'hash' or k == 'jec' and 'string'
            or 'zset'
        local t = redis.call('TYPE', base .. ':' .. k)['ok']
        if t ~= 'none' and t ~= want then
            return redis.error_reply('ERR key "' .. base .. ':' .. k
                .. '" is a ' .. t .. ', llmb expects a ' .. want .. ' of the '
                .. 'layout before library version '
                .. ((k == 'je' or k == 'jec') and '31' or '30')
                .. '; rename or delete it')
        end
    end
    local n = upgrade_running(base, limit)
    if n < limit then n = n + upgrade_waiting(base, 'pending', limit - n) end
    if n < limit then n = n + upgrade_waiting(base, 'delayed', limit - n) end
    if n < limit then n = n + upgrade_ended(base, limit - n) end
    if n < limit then n = n + upgrade_ends(base, limit - n) end
    if n == 0 and redis.call('EXISTS', base .. ':jobs') == 1 then
        -- what is left in it names jobs that are gone (by hand, or by a
        -- TTL of a library before version 7)
        redis.call('UNLINK', base .. ':jobs')
        n = 1
    end
    return n
end

register('llmb_upgrade', upgrade)
