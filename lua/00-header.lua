#!lua name=llmb
--[[
The llmb function library: every transition of queue state is one of the
functions registered in lua/, and nothing else writes queue state. This
file is the call plumbing they share: the library version, limits, time,
key names, settings, events, counters, retention and `register`, which
wraps every call. 05-lifecycle.lua holds the task and job lifecycle (its
states, the one table of transitions and the helpers that move tasks);
the other files add one transition each. The build concatenates them in
file-name order.

Keys. Every function is called with exactly one key, the queue's base key
`<prefix>:{<queue>}`. Every key it touches is that base plus a suffix, so
all of them share the queue's hash tag and live in one Cluster slot. See
docs/data-model.md for the full layout.

Bounded work. No call walks a set or a job whatever it is given: a call
handles at most CALL_MAX tasks or jobs (a caller with more calls again),
commands with many arguments go out CHUNK values at a time (Lua's unpack
stops near 8,000), and a fan-out job waits as one cursor, not N members.
docs/reliability.md lists every limit.
]]

local LLMB_LIB_VERSION = 38
-- The SHA-1 of the library's code, written here by the build
-- (cmake/EmbedLua.cmake); 'none' when loaded from lua/ by hand.
local LLMB_LIB_HASH = 'none'

local TWO32 = 4294967296
local MAX_ERROR_BYTES = 4096
-- The per-queue settings of <base>:conf (written by hand or by the
-- coordinator): {default, min, max}. A value that is not a whole number
-- within its range takes the default (docs/data-model.md).
local SETTINGS = {
    max_payload = {1048576, 1, 536870912},  -- bytes (Redis strings: 512 MB)
    max_tasks = {100000, 1, 1000000000},    -- tasks of one job
    max_result = {1048576, 1, 536870912},   -- bytes of one task result
    retention_s = {604800, 0, 3153600000},  -- 0 keeps ended jobs
    events_max = {10000, 1, 100000000},     -- entries of <base>:events
    dead_max = {10000, 0, 100000000},       -- ids in <base>:dead
    max_record_bytes = {67108864, 0, 536870912}, -- per-request records
                                            -- of one job (75-records.lua)
}
local BACKOFF_CAP_MS = 3600000
-- Most jobs or tasks one call handles where each costs a read and a write
-- of a job hash (about 10 us): jobs per push, tasks per complete, fail,
-- release, reap, reap_worker and promote, members per purge, jobs a claim
-- touches. More are refused, or left for the next call, as each function
-- says: a call stays within a few milliseconds.
local CALL_MAX = 250
-- Tasks one claim hands out and leases one heartbeat renews: a fan-out
-- cursor hands out many tasks of one job for one read and one write, and
-- a renewal is one sorted-set update.
local TASKS_MAX = 1000
-- Members per ZADD, ZREM, LPUSH, HSET pair list...: well below unpack's
-- limit.
local CHUNK = 1000

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function job_key(base, id) return base .. ':j:' .. id end
local function leases_key(base, worker) return base .. ':wl:' .. worker end
-- The waiting tasks of a fan-out job that are not behind its cursor
-- (retried, released, lost): what a cancel removes.
local function requeued_key(base, id) return base .. ':jr:' .. id end

-- The queue name is what stands between the braces of the base key.
local function queue_of(base)
    return string.match(base, '{([^}]*)}$')
end

-- A number as the decimal text of an integer. Lua hands a number to
-- redis.call as "%.14g", which costs several times more than "%d"; the
-- hot paths format the integers they send with this.
local function istr(n)
    return string.format('%d', n)
end

-- Runs `cmd` on `key` with the values of `list` from index `first` on,
-- CHUNK at a time (after `pre`, a fixed argument, when given). Returns the
-- sum of the integer replies.
local function chunked(cmd, key, list, pre)
    local sum, n = 0, #list
    for i = 1, n, CHUNK do
        local j = math.min(n, i + CHUNK - 1)
        local r
        if pre then
            r = redis.call(cmd, key, pre, unpack(list, i, j))
        else
            r = redis.call(cmd, key, unpack(list, i, j))
        end
        if type(r) == 'number' then sum = sum + r end
    end
    return sum
end

-- Members of one sorted set gathered over a call and added CHUNK at a
-- time: zset_add queues (score, member), zset_flush writes the rest.
local function zset_new(key, flag) return {key = key, n = 0, flag = flag} end

local function zset_flush(z)
    if z.n > 0 then
        if z.flag then
            redis.call('ZADD', z.key, z.flag, unpack(z, 1, z.n))
        else
            redis.call('ZADD', z.key, unpack(z, 1, z.n))
        end
    end
    z.n = 0
end

local function zset_add(z, score, member)
    local n = z.n
    z[n + 1] = score
    z[n + 2] = member
    z.n = n + 2
    if z.n >= 2 * CHUNK then zset_flush(z) end
end

-- State of the function call under way: settings read once per call, and
-- writes gathered to be made once at its end (see `register`). Redis runs
-- one call at a time, so one table serves every call in turn.
local function call_new()
    return {conf = {}, confs = {}, counts = {}, done = {}, states = {},
        ends = {}, agg = {}, sh = {}}
end
local CALL = call_new()

-- The job layout: records, members, waiting, leases and ends
-- (05-lifecycle.lua fills it). One table, so that the library's top level
-- stays below Lua's 200 locals.
local L = {}

-- Setting `field` of the queue (SETTINGS), read once per call: the whole
-- (small) hash <base>:conf at the first setting a call needs.
local function conf_num(base, field)
    local v = CALL.conf[field]
    if v == nil then
        local raw = CALL.conf_raw
        if raw == nil then
            raw = {}
            local kv = redis.call('HGETALL', base .. ':conf')
            for i = 1, #kv, 2 do raw[kv[i]] = kv[i + 1] end
            CALL.conf_raw = raw
        end
        local s = SETTINGS[field]
        v = tonumber(raw[field])
        if v == nil or v ~= v or v < s[2] or v > s[3] or v ~= math.floor(v) then
            v = s[1]
        end
        CALL.conf[field] = v
    end
    return v
end

-- conf_num as text, for commands.
local function conf_str(base, field)
    local v = CALL.confs[field]
    if v == nil then
        v = istr(conf_num(base, field))
        CALL.confs[field] = v
    end
    return v
end

-- `now` (from now_ms) as text, formatted once per call for the same value.
local function now_str(now)
    if CALL.now_v ~= now then
        CALL.now_v = now
        CALL.now_s = istr(now)
    end
    return CALL.now_s
end

-- Appends an event to the queue's stream. The stream is cut to its cap
-- (`events_max`, approximately: MAXLEN ~) once, when the call ends.
local function emit(base, ...)
    redis.call('XADD', base .. ':events', '*', ...)
    CALL.emitted = true
end


-- Counts one piece of junk met in a key of the queue: a member that names
-- no task, a task whose job hash is gone or is not a hash, a key of the
-- wrong type. Junk is dropped or left alone, never fatal; the count goes
-- to the field `junk` of <base>:counts, which llmb_stats reports.
local function junk(n)
    CALL.counts.junk = (CALL.counts.junk or 0) + (n or 1)
end

-- redis.call for a key of one job or one worker, which a person may have
-- replaced by a key of another type: then nil, counted as junk. Any other
-- error (an ACL that lacks the command, say) stops the call as
-- redis.call does: it is the operator's to fix, never silently skipped.
local function kcall(cmd, key, ...)
    local r = redis.pcall(cmd, key, ...)
    if type(r) == 'table' and r.err then
        if string.find(r.err, '^WRONGTYPE') then
            junk()
            return nil
        end
        error(r)
    end
    return r
end

-- HINCRBY of a counter field, as kcall: where the field holds no whole
-- number (written by hand), which would stop the call after its other
-- writes, the count replaces it (`floor` at least, when given). Returns
-- the field's new value, or nil for a key of another type (junk).
local function hincr(key, field, n, floor)
    local r = redis.pcall('HINCRBY', key, field, n)
    if type(r) ~= 'table' or not r.err then return r end
    if string.find(r.err, '^WRONGTYPE') then
        junk()
        return nil
    end
    if not string.find(r.err, 'not an integer', 1, true) then error(r) end
    r = floor and math.max(n, floor) or n
    redis.call('HSET', key, field, istr(r))
    return r
end

-- Tasks behind cursors. A fan-out cursor is one member of <base>:pending
-- or <base>:delayed standing for `behind` tasks (tasks - next - ahead of
-- its job); the fields wait_p and wait_d of <base>:counts hold the sum of
-- (behind - 1) over the cursors of each set, so ZCARD plus that field is
-- the number of tasks waiting there (llmb_stats). `where` is 'pending' or
-- 'delayed'; `d` the change.
local WAIT_FIELD = {pending = 'wait_p', delayed = 'wait_d'}
local function behind_add(where, d)
    local f = WAIT_FIELD[where]
    CALL.counts[f] = (CALL.counts[f] or 0) + d
end

-- Jobs per `finished` event: an event names at most ten jobs, so an entry
-- of the events stream stays a few hundred bytes and events_max still
-- bounds its memory.
local FINISHED_PER_EVENT = 10

-- Retention: deletes up to `limit` jobs that ended more than retention_s
-- ago, the oldest first, from the lines of <base>:fin ("<ms> <id>...",
-- one per call that ended jobs): each job's record and end, its hash, its
-- waiting refs, its records (<base>:rec:<id>, :rs:<id>), its rendezvous
-- and its dataset (<base>:ds:<id>), and its id in the dead set. An id
-- whose job has no end now (retried, so waiting or running again) or
-- ended later (its end is newer than the line) is only dropped from the
-- line. A line is taken off once every id of it is handled; a line cut
-- by the limit is written back with the ids it has left. Called at the
-- end of every call that ended jobs, and by llmb_reap (every coordinator
-- tick) for quiet queues. Returns the number deleted.
local function retention_trim(base, now, limit)
    local keep_s = conf_num(base, 'retention_s')
    if keep_s <= 0 then return 0 end
    local cut = now - keep_s * 1000
    local fk = base .. ':fin'
    local deleted, work = 0, 0
    -- task refs a cancel left waiting, in the whole queue (L.stale_refs):
    -- while there are any, the hash of every job deleted is read for
    -- them, as a job retried and ended since may have some; else only
    -- that of a job that ended cancelled or failed (for `stale`)
    local refs_left
    while work < limit do
        local line = redis.call('LINDEX', fk, 0)
        if not line then break end
        local at = tonumber(string.match(line, '^(%d+)'))
        if at == nil then
            redis.call('LPOP', fk) -- not a line of ours: junk
            junk()
        elseif at > cut then
            break
        else
            local ids = {}
            for id in string.gmatch(line, '%S+') do ids[#ids + 1] = id end
            table.remove(ids, 1)
            local take = math.min(#ids, limit - work)
            local part = {unpack(ids, 1, take)}
            local gone, keys = {}, {}
            if #part > 0 then
                -- (an ended job's record starts with its end, whose
                -- letter is upper case: 05-lifecycle.lua; while
                -- library version 30's <base>:je is still there, the
                -- end of a job whose record has none may be in it)
                local recs = redis.call('HMGET', base .. ':jd', unpack(part))
                local ends = {}
                for k = 1, #part do
                    local v = recs[k]
                    ends[k] = v and string.match(v, '^%u%d+') and v or false
                end
                if L.je_exists(base) then
                    local old = redis.call('HMGET', base .. ':je',
                        unpack(part))
                    for k = 1, #part do
                        if not ends[k] and recs[k] and old[k] then
                            ends[k] = string.upper(string.sub(old[k], 1, 1))
                                .. string.sub(old[k], 2)
                        end
                    end
                end
                for k, id in ipairs(part) do
                    local fin = ends[k] and tonumber(string.match(ends[k],
                        '^%u(%d+)'))
                    if fin and fin <= cut then
                        -- the members a cancel left in <base>:pl, out of
                        -- the pending count (05-lifecycle.lua L.stale,
                        -- L.stale_refs), are junk once their job is
                        -- gone: counted as such, until a claim drops them
                        if refs_left == nil then
                            refs_left = (tonumber(kcall('HGET', base
                                .. ':counts', 'stale_refs')) or 0)
                                + (CALL.counts.stale_refs or 0)
                        end
                        if refs_left > 0 or string.find(ends[k], '^[XF]') then
                            local h = kcall('HMGET', job_key(base, id),
                                'stale', 'stale_refs')
                            local refs = h and tonumber(h[2]) or 0
                            local n = (h and h[1] == '1' and 1 or 0) + refs
                            if n > 0 then behind_add('pending', n) end
                            if refs ~= 0 then
                                CALL.counts.stale_refs =
                                    (CALL.counts.stale_refs or 0) - refs
                                refs_left = refs_left - refs
                            end
                        end
                        gone[#gone + 1] = id
                        keys[#keys + 1] = job_key(base, id)
                        keys[#keys + 1] = requeued_key(base, id)
                        keys[#keys + 1] = base .. ':rv:' .. id -- (77-rendezvous.lua)
                        keys[#keys + 1] = base .. ':rec:' .. id -- (75-records.lua)
                        keys[#keys + 1] = base .. ':rs:' .. id
                        keys[#keys + 1] = base .. ':ds:' .. id -- (08-workload.lua)
                    end
                end
            end
            if #gone > 0 then
                chunked('HDEL', base .. ':jd', gone)
                if L.je_exists(base) then chunked('HDEL', base .. ':je', gone) end
                chunked('ZREM', base .. ':dead', gone)
                -- UNLINK: a job's records and dataset run to tens of MiB
                -- each, whose DEL would hold the server while it frees
                -- them; UNLINK frees large values on another thread.
                for i = 1, #keys, CHUNK do
                    redis.call('UNLINK', unpack(keys, i,
                        math.min(#keys, i + CHUNK - 1)))
                end
            end
            deleted = deleted + #gone
            work = work + take + 1
            if take < #ids then
                redis.call('LSET', fk, 0, istr(at) .. ' '
                    .. table.concat(ids, ' ', take + 1))
                break
            end
            redis.call('LPOP', fk)
        end
    end
    if deleted > 0 then
        -- the head of the job index, as far as its jobs are gone (a job
        -- still kept keeps those after it listed, without their jobs,
        -- until it goes: the readers skip them)
        local jl = base .. ':jl'
        local head = redis.call('LRANGE', jl, 0, CHUNK - 1)
        if #head > 0 then
            local have = redis.call('HMGET', base .. ':jd', unpack(head))
            local k = 0
            while k < #head and not have[k + 1] do k = k + 1 end
            if k > 0 then
                redis.call('LTRIM', jl, k, -1)
                -- the ids ever cut from the head, so that a reader
                -- walking the list by rank knows how far it moved
                -- (coordinator/retention.c; written in the same call)
                CALL.counts.jl_cut = (CALL.counts.jl_cut or 0) + k
            end
        end
    end
    return deleted
end

-- Makes the writes gathered during the call: for the jobs that ended,
-- the hand-off to the coordinators, their entries in <base>:ended, their
-- `finished` events and the retention they bring due; the cut of the
-- events stream; and the counters of <base>:counts.
local function call_flush(base)
    local ended = CALL.done
    local n = #ended
    local ends = CALL.ends
    if #ends > 0 then
        -- each end in front of its job's record (05-lifecycle.lua): one
        -- read of the records, one write, a chunk of ids at a time; a
        -- job whose record is gone (deleted by hand) keeps none
        local ids = {}
        for i = 1, #ends, 2 do ids[#ids + 1] = ends[i] end
        local recs = L.recs(base, ids)
        local set = {}
        for k = 1, #ids do
            local r = recs[k]
            if r then
                set[#set + 1] = ids[k]
                set[#set + 1] = L.rec_front(r, ends[2 * k])
            end
        end
        if #set > 0 then chunked('HSET', base .. ':jd', set) end
    end
    if n > 0 then
        local states, now = CALL.states, CALL.ended_now
        local at = now_str(now)
        if #CALL.agg > 0 then chunked('LPUSH', base .. ':done', CALL.agg) end
        -- one line per CHUNK ids: the order retention deletes in
        for i = 1, n, CHUNK do
            redis.call('RPUSH', base .. ':fin', at .. ' '
                .. table.concat(ended, ' ', i, math.min(n, i + CHUNK - 1)))
        end
        -- `finished` events: one naming the job when the call ended one,
        -- else one per ten jobs with their ids and states in the same order.
        if n == 1 then
            emit(base, 'event', 'finished', 'job', ended[1], 'state', states[1])
        else
            for i = 1, n, FINISHED_PER_EVENT do
                local j = math.min(n, i + FINISHED_PER_EVENT - 1)
                emit(base, 'event', 'finished', 'jobs', istr(j - i + 1),
                    'ids', table.concat(ended, ' ', i, j),
                    'states', table.concat(states, ' ', i, j))
            end
        end
        retention_trim(base, now, n + 100)
    end
    if CALL.emitted then
        redis.call('XTRIM', base .. ':events', 'MAXLEN', '~',
            conf_str(base, 'events_max'))
    end
    -- the counters last: retention above counts too (junk, members left
    -- waiting by a cancel, cuts of <base>:jl); <base>:counts is of the
    -- right type (checked before the call)
    local ck = base .. ':counts'
    for outcome, n in pairs(CALL.counts) do
        if n ~= 0 then hincr(ck, outcome, n) end
    end
end

-- The keys of a queue and their types. Redis does not undo the writes of
-- a function that stops on an error, so a key of the wrong type (set by
-- hand under the queue's prefix) would leave a half-done transition: a
-- job hash without its tasks, delayed tasks taken out but never put back.
-- Every function that writes checks, before it starts (one TYPE each),
-- the queue keys it may touch with a command that stops on a wrong type
-- (KEYS_OF, below; all of them for a function not listed there); per-job
-- keys are read with pcall and skipped as junk.
local QUEUE_KEYS = {jd = 'hash', je = 'hash', jl = 'list', pl = 'list', pz = 'zset',
    pd = 'zset', run = 'hash', lease = 'hash', running = 'zset',
    att = 'hash', cx = 'set', fin = 'list', deadlines = 'zset',
    dead = 'zset', aggr = 'zset', done = 'list', wake = 'list',
    events = 'stream', counts = 'hash', conf = 'hash', seq = 'string',
    idseq = 'string', tok = 'string', paused = 'string', jec = 'string'}
local ALL_KEYS = {'jd', 'je', 'jl', 'pl', 'pz', 'pd', 'run', 'lease', 'running',
    'att', 'cx', 'fin', 'deadlines', 'dead', 'aggr', 'done', 'wake',
    'events', 'counts', 'conf', 'seq', 'idseq', 'tok', 'paused', 'jec'}

-- The queue keys of the functions called once per job or per batch, whose
-- every TYPE counts (about 0.5 us each): the settings, counters and
-- events every call may touch (call_flush: conf, counts, events), what a
-- job's end touches (job_finish, retention_trim: done, ended, dead, jobs),
-- and each function's own. A function that comes to touch another queue
-- key must add it here: tests/integration/test_hardening.c puts a key of
-- the wrong type under each name and calls each of these functions on the
-- paths that touch the most keys.
-- What every call that ends jobs touches (call_flush, retention_trim).
-- ('je': library version 30's ends, read and deleted until llmb_upgrade
-- has moved them, 90-upgrade.lua)
local ENDING = {'conf', 'counts', 'events', 'je', 'jd', 'jl', 'fin', 'done',
    'dead', 'cx', 'att'}
-- (only `redis` and the basic functions are reachable while the library
-- loads: no unpack, no string)
local function keys_plus(list, ...)
    local out = {}
    for i = 1, #list do out[i] = list[i] end
    local more = {...}
    for i = 1, #more do out[#out + 1] = more[i] end
    return out
end
local KEYS_OF = {
    llmb_push = {'conf', 'counts', 'events', 'jd', 'jl', 'pl', 'pz', 'pd',
        'deadlines', 'seq', 'idseq', 'wake'},
    -- (a claim ends the jobs it meets that were cancelled; it reads
    -- `paused` with EXISTS, which answers for any type: a key of another
    -- type would stop every claim unseen)
    llmb_claim = keys_plus(ENDING, 'pl', 'pz', 'pd', 'run', 'lease',
        'running', 'seq', 'tok', 'wake', 'paused'),
    -- (a task whose result is refused fails, and may wait again)
    llmb_complete = keys_plus(ENDING, 'pl', 'pz', 'pd', 'run', 'lease',
        'running', 'seq', 'wake'),
    llmb_heartbeat = keys_plus(ENDING, 'run', 'lease', 'running'),
}
KEYS_OF.llmb_push_fields = KEYS_OF.llmb_push
KEYS_OF.llmb_pause = {'conf', 'counts', 'events', 'paused'}
KEYS_OF.llmb_resume = {'conf', 'counts', 'events', 'paused', 'pl', 'pz', 'pd',
    'wake'}
-- (polled by each task waiting, 20 ms to 500 ms apart: only the junk
-- counter)
KEYS_OF.llmb_rendezvous = {'counts'}
-- Returns nil, or an error reply naming the first key of the wrong type
-- among `suffixes`.
local function keys_wrong(base, suffixes)
    for _, suffix in ipairs(suffixes) do
        local key = base .. ':' .. suffix
        local got = redis.call('TYPE', key)['ok']
        local want = QUEUE_KEYS[suffix]
        if got ~= 'none' and got ~= want then
            return redis.error_reply(string.format('ERR key "%s" is a %s, '
                .. 'llmb expects a %s: it was written by something else than '
                .. 'llmb; rename or delete it (docs/data-model.md)', key, got,
                want))
        end
    end
    return nil
end

-- Registers function `name`: each call starts with a fresh CALL, checks
-- its queue key and the types of the queue's keys (writing functions), and
-- ends with call_flush. Read-only functions get the no-writes flag.
local function register(name, fn, read_only)
    local checked = KEYS_OF[name] or ALL_KEYS
    local wrapped = function(keys, args)
        CALL = call_new()
        local base = keys[1]
        if base == nil then
            return redis.error_reply('ERR ' .. name .. ' takes one key, the '
                .. 'queue key <prefix>:{<queue>}; got none')
        end
        if queue_of(base) == nil then
            return redis.error_reply('ERR key "' .. base .. '" is not a queue '
                .. 'key: expected <prefix>:{<queue>}')
        end
        if not read_only then
            local wrong = keys_wrong(base, checked)
            if wrong then return wrong end
        end
        local reply = fn(keys, args)
        if not read_only then call_flush(base) end
        return reply
    end
    if read_only then
        redis.register_function{function_name = name, callback = wrapped,
            flags = {'no-writes'}}
    else
        redis.register_function(name, wrapped)
    end
end

local function wake(base, n)
    local key = base .. ':wake'
    if redis.call('LLEN', key) < 64 then
        local args = {}
        for i = 1, math.min(n, 64) do args[i] = '1' end
        redis.call('LPUSH', key, unpack(args))
    end
end

-- Cuts an error text to n bytes, keeping its start (what failed) and its
-- end (the last lines a program wrote to stderr), joined by " [...] ".
local function clip(s, n)
    if #s > n then
        return string.sub(s, 1, 256) .. ' [...] ' .. string.sub(s, #s - n + 264)
    end
    return s
end

-- Refusal of a call that names more than CALL_MAX tasks or jobs.
local function too_many(name, n, what, max)
    return redis.error_reply(string.format('ERR %s takes at most %d %s per '
        .. 'call, got %d: split them over several calls', name,
        max or CALL_MAX, what, n))
end

-- The limit argument of purge, deadlines and reap: a whole number from 1
-- to CALL_MAX, `default` when absent. Returns it, or nil and an error.
local function limit_arg(name, arg, default)
    local v = tonumber(arg or default)
    if v == nil or v < 1 or v > CALL_MAX or v ~= math.floor(v) then
        return nil, redis.error_reply(string.format('ERR usage: FCALL %s 1 '
            .. '<queue key> [limit 1..%d], got "%s"', name, CALL_MAX,
            tostring(arg)))
    end
    return v
end

-- (takes no key) `FCALL_RO llmb_version 0`: the version;
-- `FCALL_RO llmb_version 0 hash`: {version, hash of the code}, what every
-- llmb program asks when it connects (lib/functions.c): a few bytes,
-- where the code itself is over 100 KB.
redis.register_function{function_name = 'llmb_version',
    callback = function(_, args)
        if #args == 0 then return LLMB_LIB_VERSION end
        if #args == 1 and args[1] == 'hash' then
            return {LLMB_LIB_VERSION, LLMB_LIB_HASH}
        end
        return redis.error_reply('ERR usage: FCALL_RO llmb_version 0 [hash]')
    end, flags = {'no-writes'}}
