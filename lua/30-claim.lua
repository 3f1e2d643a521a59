--[[
claim: hands up to n waiting tasks of one queue to a worker, under one
lease for the batch. It first promotes delayed members whose time has
come (bounded), then takes members in order of priority (<base>:pz above
0, <base>:pl, <base>:pz below 0): a job of one task is one task, a
fan-out cursor hands out the job's next indexes, as many as the batch has
room for, and stays at the head while it has more. A job is running
because its member holds the batch's lease (05-lifecycle.lua): nothing is
written per task but the lease. If tasks are left after a full batch, or
a batch cut at CALL_MAX jobs, it wakes one more idle worker, so a burst
spreads over every idle worker without polling.

ARGV: worker id (no spaces), n (1..1000 tasks), lease_ms
(100..86400000), [promote limit 0..250, default 250], [secret: 16..128
letters and digits; see lease tokens in 05-lifecycle.lua]. A claim
touches at most CALL_MAX (250) jobs: a batch of single-task jobs stops
there.
Reply: {now_ms, next_due_ms or -1, count, token (of the batch; "" for
none), then per task: ref (the job id for a job of one task,
"<id>:<index>" for a task of a fan-out job), type, payload, opts (the
record's, 05-lifecycle.lua OPTS, and "a<attempt>" past the first)}.
]]

-- Most task indexes one claim looks through behind a cursor after a
-- retry, where tasks that completed in the earlier run are skipped.
local SWEEP_SCAN = 1000

-- Moves delayed members that are due (at most `limit`, capped at
-- CALL_MAX) to wait by their priority. Returns how many moved.
local function promote(base, now, limit)
    limit = math.min(limit, CALL_MAX)
    if limit < 1 then return 0 end
    local dk = base .. ':pd'
    local due = redis.call('ZRANGEBYSCORE', dk, '-inf', now, 'LIMIT', 0, limit)
    if #due == 0 then return 0 end
    local ids = {}
    for i, m in ipairs(due) do ids[i] = L.member(m) or '' end
    local recs = L.recs(base, ids)
    local w = L.waits(base)
    local moved_n = 0
    for i, m in ipairs(due) do
        local id, idx = L.member(m)
        local s, _, _, o = L.rec(recs[i])
        if s == 'p' then
            local tasks = L.optn(o, 'n', 1)
            if tasks > 1 and idx == nil then
                -- a cursor moves its tasks from one count to the other
                local c = redis.call('HMGET', job_key(base, id), 'next', 'ahead')
                local behind = tasks - (tonumber(c[1]) or 0) - (tonumber(c[2]) or 0)
                behind_add('delayed', 1 - behind)
                behind_add('pending', behind - 1)
            elseif idx then
                kcall('HSET', job_key(base, id), task_field(idx, 'state'),
                    moved('delayed', 'pending'))
            end
            L.wait(w, m, L.optn(o, 'p', 0), 'tail')
            moved_n = moved_n + 1
        elseif s == nil then
            -- a member that names no task, or whose job is gone: dropped
            junk()
        end
        if s == 'x' then
            -- a cancelled job's member goes
            L.cancelled_member(base, m, 'delayed', now)
        end
    end
    chunked('ZREM', dk, due)
    L.waits_flush(w)
    return moved_n
end

-- Takes up to `cap` task indexes from the cursor of job `id` (fields `c`:
-- tasks, next, ahead). Returns the indexes (strings), the new next and
-- ahead, and whether the cursor has no task left.
local function cursor_take(jk, c, cap)
    local tasks = tonumber(c[1]) or 1
    local nxt = tonumber(c[2]) or 0
    local ahead = tonumber(c[3]) or 0
    local got = {}
    if ahead <= 0 then
        local k = math.min(cap, tasks - nxt)
        for x = nxt, nxt + k - 1 do got[#got + 1] = istr(x) end
        nxt = nxt + k
    else
        -- after a retry: `ahead` tasks at or past next completed in an
        -- earlier run; they are skipped, SWEEP_SCAN indexes at most
        local last = math.min(tasks, nxt + SWEEP_SCAN) - 1
        local names = {}
        for x = nxt, last do names[#names + 1] = task_field(istr(x), 'state') end
        local st = redis.call('HMGET', jk, unpack(names))
        local x = nxt
        while x <= last and #got < cap do
            if st[x - nxt + 1] == 'completed' then
                ahead = ahead - 1
            else
                got[#got + 1] = istr(x)
            end
            x = x + 1
        end
        nxt = x
    end
    return got, nxt, ahead, tasks - nxt - ahead <= 0
end

-- Takes up to n waiting members in order: higher priorities first
-- (<base>:pz below score 0), then priority 0 (<base>:pl), then lower ones.
-- Returns the members and a function that puts back those from index k
-- on (not handed out: behind a cursor that stays, or past CALL_MAX jobs).
local function members_take(base, n)
    local pz, pl = base .. ':pz', base .. ':pl'
    local got, from = {}, {}
    local hi = redis.call('ZRANGEBYSCORE', pz, '-inf', '(0', 'LIMIT', 0, n)
    for _, m in ipairs(hi) do got[#got + 1] = m; from[#got] = 'hi' end
    if #got < n then
        local l = redis.call('LPOP', pl, n - #got)
        if l then
            for _, m in ipairs(l) do got[#got + 1] = m; from[#got] = 'pl' end
        end
    end
    local lo = {}
    if #got < n then
        lo = redis.call('ZRANGE', pz, #hi, #hi + n - #got - 1)
        for _, m in ipairs(lo) do got[#got + 1] = m; from[#got] = 'lo' end
    end
    local put_back = function(k)
        -- the sorted set's members stay where they are unless taken; the
        -- list's go back to its head in order
        local back = {}
        for i = #got, k, -1 do
            if from[i] == 'pl' then back[#back + 1] = got[i] end
        end
        if #back > 0 then chunked('LPUSH', pl, back) end
        local taken_z = 0
        for i = 1, k - 1 do
            if from[i] ~= 'pl' then taken_z = taken_z + 1 end
        end
        if taken_z > 0 then
            redis.call('ZREMRANGEBYRANK', pz, 0, taken_z - 1)
        end
    end
    return got, put_back, from
end

local function claim(keys, args)
    local base = keys[1]
    local worker = args[1]
    local n = tonumber(args[2])
    local lease_ms = tonumber(args[3])
    local limit = tonumber(args[4] or CALL_MAX)
    local secret = args[5]
    if secret == '' then secret = nil end
    if worker == nil or worker == '' or string.find(worker, '%s')
        or n == nil or n < 1 or n > TASKS_MAX
        or lease_ms == nil or lease_ms < 100 or lease_ms > 86400000
        or limit == nil or limit < 0 or limit > CALL_MAX
        or (secret and (#secret < 16 or #secret > 128
            or string.find(secret, '[^%w]'))) then
        return redis.error_reply('ERR usage: FCALL llmb_claim 1 <queue key> '
            .. '<worker> <n 1..1000> <lease_ms 100..86400000> '
            .. '[promote limit 0..250] [secret: 16..128 letters and digits]')
    end
    n = math.floor(n)
    -- a paused queue hands out nothing (55-pause.lua)
    if redis.call('EXISTS', base .. ':paused') == 1 then
        return {now_ms(), -1, 0, ''}
    end
    -- the one per-worker key claim writes, checked before any write
    local lt = redis.call('TYPE', leases_key(base, worker))['ok']
    if lt ~= 'none' and lt ~= 'set' then
        return redis.error_reply('ERR key "' .. leases_key(base, worker)
            .. '" is a ' .. lt .. ', llmb expects a set: it was written by '
            .. 'something else than llmb; rename or delete it')
    end
    local now = now_ms()
    -- The head of the delayed set: promote only when it is due; otherwise
    -- it is also the next due time of the reply.
    local dk = base .. ':pd'
    local head = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES')
    if #head > 0 and tonumber(head[2]) <= now then
        promote(base, now, math.floor(limit))
        head = nil
    end
    local out = {now, -1, 0, ''}
    -- the tasks handed out: their members in ms, 4 values each in out
    local ms, nm, room, jobs = {}, 0, n, 0
    local function add(m, typ, p, o)
        nm = nm + 1
        ms[nm] = m
        local k = 4 * nm
        out[k + 1], out[k + 2], out[k + 3], out[k + 4] = m, typ, p, o
    end
    local seen_job = {}
    local fan = {} -- fan-out jobs of the batch: their hash's fields
    -- Members that hand out no task (a cancelled job's, junk, a task ref
    -- a cancel ended) leave room in the batch: another pass takes as many
    -- more, so that tasks waiting behind them are not left for a later
    -- claim; at most CALL_MAX of them per call.
    local took, skipped, left = false, 0, false
    while room > 0 and not left and skipped < CALL_MAX do
        -- (no more members than the jobs the batch may still take: a
        -- member is at least one job, and what a claim pops and does not
        -- hand out it must put back)
        local want = math.min(room, CALL_MAX - jobs) + skipped
        local got, put_back, from = members_take(base, want)
        if #got == 0 then break end
        took = true
        local ids = {}
        for i, m in ipairs(got) do ids[i] = L.member(m) or '' end
        local recs = L.recs(base, ids)
        local used = #got
        for i, m in ipairs(got) do
            if room == 0 then used = i - 1; break end
            local id, idx = ids[i], select(2, L.member(m))
            if not seen_job[id] and jobs >= CALL_MAX then
                used = i - 1
                break
            end
            local had = nm
            local s, _, typ, o, c = L.rec(recs[i])
            if s == nil then
                junk() -- names no task, or its record is gone
            elseif s == 'p' then
                local r = recs[i]
                local tasks = L.optn(o, 'n', 1)
                if not seen_job[id] then
                    seen_job[id] = true
                    jobs = jobs + 1
                end
                if tasks == 1 then
                    add(m, typ, string.sub(r, c + 1), o)
                    room = room - 1
                else
                    local jk = job_key(base, id)
                    local f = fan[id]
                    if f == nil then
                        local h = kcall('HMGET', jk, 'state', 'next', 'ahead')
                            or {}
                        f = {state = h[1], next = h[2], ahead = h[3], jk = jk}
                        fan[id] = f
                    end
                    if f.state == false or f.state == nil or TERMINAL[f.state] then
                        -- its hash is gone, or it has ended: nothing waits
                        if f.state == false then junk() end
                        if idx and TERMINAL[f.state] and from[i] == 'pl' and
                            kcall('SREM', requeued_key(base, id), m) == 0 then
                            L.stale_refs(base, id, -1)
                        end
                    elseif idx then
                        -- a task ref waits while <base>:jr:<id> lists it;
                        -- one that is not was ended by a cancel before
                        -- its job was retried (L.stale): it goes
                        if kcall('SREM', requeued_key(base, id), m) == 0 then
                            L.stale_refs(base, id, -1)
                        else
                            add(m, typ, string.sub(r, c + 1), o)
                            room = room - 1
                            f.handed = true
                        end
                    else
                        local tk, nxt, ahead, empty = cursor_take(jk,
                            {tasks, f.next, f.ahead}, room)
                        f.next, f.new_ahead = nxt, ahead
                        f.cursor = true
                        local p = string.sub(r, c + 1)
                        for _, x in ipairs(tk) do add(id .. ':' .. x, typ, p, o) end
                        room = room - #tk
                        if #tk > 0 then f.handed = true end
                        behind_add('pending', -#tk)
                        if not empty then
                            -- more behind it: it stays at the head; a
                            -- worker comes back for them even when this
                            -- batch took none
                            if #tk == 0 then wake(base, 1) end
                            used = i - 1
                            break
                        end
                        behind_add('pending', 1) -- the cursor goes
                    end
                end
            end
            if s == 'x' then
                -- a cancelled job's member: it goes
                L.cancelled_member(base, m, 'pending', now, from[i] == 'pl')
            end
            if nm == had then skipped = skipped + 1 end
        end
        put_back(used + 1)
        if used < #got then left = true end
        -- (another pass while room is left and this one found as many
        -- members as it asked for: members of one job, task refs, count
        -- once against CALL_MAX; none past CALL_MAX jobs)
        if #got < want or jobs >= CALL_MAX then break end
    end
    if took then
        -- fan-out jobs: running from their first claim, cursors moved
        for _, f in pairs(fan) do
            local set = {}
            -- (a job whose members met handed out nothing, a task ref a
            -- cancel ended or a cursor past completed tasks, still waits)
            if f.state == 'pending' and f.handed then
                set = {'state', 'running', 'started_ms', now_str(now)}
            end
            if f.cursor then
                set[#set + 1] = 'next'
                set[#set + 1] = istr(f.next)
                if f.ahead then
                    set[#set + 1] = 'ahead'
                    set[#set + 1] = istr(f.new_ahead)
                end
            end
            if #set > 0 then redis.call('HSET', f.jk, unpack(set)) end
        end
        if nm > 0 then
            local att = L.attempts(base, ms)
            for i, a in pairs(att) do
                -- (past the first attempt, its number in the opts)
                out[4 * i + 4] = out[4 * i + 4] .. 'a' .. istr(a + 1)
            end
            out[4] = L.lease_open(base, worker, ms, now, lease_ms, secret)
            out[3] = nm
        end
        -- A batch that is full, or cut at CALL_MAX jobs, may have left
        -- tasks behind: a worker is woken to come back for them (the one
        -- that claimed takes fewer than it asked for as an empty queue).
        if (room == 0 or left or skipped >= CALL_MAX or jobs >= CALL_MAX)
            and (redis.call('LLEN', base .. ':pl') > 0
                or redis.call('ZCARD', base .. ':pz') > 0) then
            wake(base, 1)
        end
    end
    if head == nil then head = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES') end
    if #head > 0 then out[2] = tonumber(head[2]) end
    return out
end

-- ARGV: [limit 0..250, default 250]. Promotes due delayed tasks without
-- claiming, for the coordinator when no worker claims, and wakes idle
-- workers for them. Reply: number of members promoted; a reply equal to
-- the limit means more may be due (call again).
local function promote_due(keys, args)
    local base = keys[1]
    local limit = tonumber(args[1] or CALL_MAX)
    if limit == nil or limit < 0 or limit > CALL_MAX then
        return redis.error_reply('ERR usage: FCALL llmb_promote 1 <queue key> '
            .. '[limit 0..250]')
    end
    local n = promote(base, now_ms(), math.floor(limit))
    if n > 0 then wake(base, n) end
    return n
end

register('llmb_claim', claim)
register('llmb_promote', promote_due)
