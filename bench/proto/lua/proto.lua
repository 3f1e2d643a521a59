#!lua name=llmbproto
--[[
A prototype of another data model for single-task jobs, measured against
lua/ by bench/proto/costs.py (bench/proto/README.md). It keeps the calls
of llmb-push --batch and llmb-worker (llmb_push_fields, llmb_claim,
llmb_complete) with the same ARGV where it can, and changes what Redis
holds:

  <base>:jd       hash, job id -> one record: "p<created ms>\t<type>\t<opts>\t<payload>"
                  while it waits or runs; "f<ms>\t<error>" once failed for
                  good, "x<ms>" once cancelled; "c<finished ms>" once completed
                  with the result {} (no result stored), or
                  "c<finished ms>\t<result>"; defaulted options not stored
                  (<opts> is "" for every default)
  <base>:pl       list, ids waiting at priority 0, oldest first
  <base>:pz       sorted set, ids waiting at another priority, scored as
                  lua/ scores <base>:pending
  <base>:pd       sorted set, delayed ids, scored by due time
  <base>:seq      counter for FIFO order within a priority (<base>:pz)
  <base>:run      hash, job id -> lease of the batch that holds it: a task
                  is running because it holds a lease, no state field is
                  written at claim (and a field "~" that keeps it a hash
                  table)
  <base>:lease    hash, one record per claim batch: <lease> -> "<worker>
                  <ids...>" and <lease>#n -> tasks of it not ended
  <base>:running  sorted set, one member per batch (its lease), score = its
                  deadline: a heartbeat renews a batch with one ZADD
  <base>:fin      list, one completion record per call: "<ms> <ids...>",
                  oldest first: the hand-off to aggregation and the order
                  in which retention deletes
  <base>:idseq    counter of the short ids (base 36) minted for jobs pushed
                  without one
  <base>:tok      counter of the lease sequence numbers
  <base>:att      hash, job id -> attempts lost with a reaped batch or
                  failed and retried (only jobs that had one)

What it leaves out, and what landing it needs, is in bench/proto/README.md:
deadlines, fan-out, release, retry, retention, cancelling a running job
and the coordinator's side are not written here; priorities, delays,
heartbeat and reap (per batch), fail with backoff and cancelling a
waiting job are.
]]

local B36 = '0123456789abcdefghijklmnopqrstuvwxyz'
local CHUNK = 1000
local CALL_MAX = 250

local function b36(n)
    local s = ''
    repeat
        local d = n % 36
        s = string.sub(B36, d + 1, d + 1) .. s
        n = (n - d) / 36
    until n == 0
    return s
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function chunked(cmd, key, list)
    for i = 1, #list, CHUNK do
        redis.call(cmd, key, unpack(list, i, math.min(#list, i + CHUNK - 1)))
    end
end

-- The keys each function touches, checked before it writes anything (a
-- key of the wrong type is refused, as lua/ does).
local TYPES = {jd = 'hash', pl = 'list', run = 'hash', lease = 'hash',
    running = 'zset', fin = 'list', idseq = 'string', tok = 'string',
    counts = 'hash', events = 'stream', wake = 'list', att = 'hash',
    pz = 'zset', pd = 'zset', seq = 'string'}

local TWO32 = 4294967296

-- Where a waiting job goes: priority 0 at the tail of <base>:pl (or its
-- head, `front`, for a job that lost its worker); another priority into
-- <base>:pz, scored as lua/ scores <base>:pending (higher priority first,
-- FIFO within one by `seq`; seq 0 for the front of its priority).
local function enqueue(base, id, prio, seq, front)
    if prio == 0 then
        redis.call(front and 'LPUSH' or 'RPUSH', base .. ':pl', id)
    else
        redis.call('ZADD', base .. ':pz', -prio * TWO32 + seq % TWO32, id)
    end
end

-- The priority a record's opts hold ("p<n>"; 0 when absent).
local function opts_prio(r)
    local a = r and string.find(r, '\t', 2, true)
    local b = a and string.find(r, '\t', a + 1, true)
    local c = b and string.find(r, '\t', b + 1, true)
    return c and tonumber(string.match(string.sub(r, b + 1, c - 1), 'p(%-?%d+)')) or 0
end
local function keys_wrong(base, list)
    for _, s in ipairs(list) do
        local got = redis.call('TYPE', base .. ':' .. s)['ok']
        if got ~= 'none' and got ~= TYPES[s] then
            return redis.error_reply('ERR key "' .. base .. ':' .. s .. '" is a '
                .. got .. ', llmb expects a ' .. TYPES[s])
        end
    end
end

local function secret_hash(secret) return string.sub(redis.sha1hex(secret), 1, 20) end

-- ARGV as llmb_push_fields: 10 values per job (id, type, payload,
-- priority, tasks, timeout_s, max_retries, backoff_ms, delay_s,
-- deadline_s), already validated by llmb-push: only what the prototype
-- does not do (fan-out, deadlines) is refused. A job of another priority
-- than 0 waits in <base>:pz, a delayed one in <base>:pd (scored by due
-- time) until a claim moves it.
local PUSH_KEYS = {'jd', 'pl', 'pz', 'pd', 'seq', 'idseq', 'events', 'wake'}
local function push_fields(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, PUSH_KEYS)
    if wrong then return wrong end
    local n = #args / 10
    if n ~= math.floor(n) or n < 1 or n > CALL_MAX then
        return redis.error_reply('ERR usage: 10 values per job, 1..250 jobs')
    end
    local now = now_ms()
    local out, minted, given = {}, 0, {}
    for i = 1, n do
        local a = 10 * (i - 1)
        if args[a + 1] == '' then minted = minted + 1 else given[#given + 1] = i end
        if (args[a + 5] ~= '' and args[a + 5] ~= '1') or args[a + 10] ~= '' then
            out[i] = {err = 'ERR the prototype takes single-task jobs '
                .. 'without a deadline'}
        end
    end
    -- ids given by the caller: one that exists answers its id, unchanged
    if #given > 0 then
        local ids = {}
        for k, i in ipairs(given) do ids[k] = args[10 * (i - 1) + 1] end
        local have = redis.call('HMGET', base .. ':jd', unpack(ids))
        for k, i in ipairs(given) do
            if have[k] then out[i] = ids[k] end
        end
    end
    local seq = 0
    if minted > 0 then
        seq = redis.call('INCRBY', base .. ':idseq', minted) - minted
    end
    local head = 'p' .. string.format('%d', now) .. '\t'
    local hset, ids, pseq, pushed = {}, {}, nil, 0
    for i = 1, n do
        if out[i] == nil then
            local a = 10 * (i - 1)
            local id = args[a + 1]
            if id == '' then
                seq = seq + 1
                id = b36(seq)
            end
            -- options other than their defaults, in one short text
            local opts = ''
            if args[a + 6] ~= '' then opts = opts .. 't' .. args[a + 6] end
            if args[a + 7] ~= '' then opts = opts .. 'r' .. args[a + 7] end
            if args[a + 8] ~= '' then opts = opts .. 'b' .. args[a + 8] end
            local prio = tonumber(args[a + 4]) or 0
            if prio ~= 0 then opts = opts .. 'p' .. prio end
            local delay = tonumber(args[a + 9]) or 0
            if delay > 0 then
                redis.call('ZADD', base .. ':pd', now + math.floor(delay * 1000), id)
            elseif prio ~= 0 then
                if pseq == nil then pseq = redis.call('INCRBY', base .. ':seq', n) - n end
                pseq = pseq + 1
                enqueue(base, id, prio, pseq)
            else
                ids[#ids + 1] = id
            end
            hset[#hset + 1] = id
            hset[#hset + 1] = head .. args[a + 2] .. '\t' .. opts .. '\t'
                .. args[a + 3]
            out[i] = id
            pushed = pushed + 1
        end
    end
    if pushed > 0 then
        chunked('HSET', base .. ':jd', hset)
        if #ids > 0 then chunked('RPUSH', base .. ':pl', ids) end
        redis.call('XADD', base .. ':events', 'MAXLEN', '~', 10000, '*',
            'event', 'pushed', 'jobs', pushed)
        if redis.call('LLEN', base .. ':wake') < 64 then
            redis.call('LPUSH', base .. ':wake', '1')
        end
    end
    return out
end

-- ARGV as llmb_claim: worker, n, lease_ms, [promote limit], [secret].
-- Reply: {now, next due ms or -1, count, token, then per task: id, type,
-- payload, opts}:
-- one token for the batch; opts "" when every option is its default and
-- this is the first attempt (a<n> for attempt n > 1).
local CLAIM_KEYS = {'jd', 'pl', 'pz', 'pd', 'run', 'lease', 'running', 'tok',
    'counts', 'wake', 'att'}

-- Moves the delayed jobs that are due (at most CALL_MAX) to where they
-- wait by priority. Their records are read only here, off the path of a
-- job that was never delayed.
local function promote(base, now)
    local due = redis.call('ZRANGEBYSCORE', base .. ':pd', '-inf', now, 'LIMIT', 0, CALL_MAX)
    if #due == 0 then return end
    local recs = redis.call('HMGET', base .. ':jd', unpack(due))
    local seq = redis.call('INCRBY', base .. ':seq', #due) - #due
    for i, id in ipairs(due) do
        if recs[i] then enqueue(base, id, opts_prio(recs[i]), seq + i) end
    end
    chunked('ZREM', base .. ':pd', due)
end

-- Takes up to n waiting ids in order: higher priorities first (<base>:pz
-- below score 0), then priority 0 (<base>:pl), then lower ones.
local function take(base, n)
    local pz = base .. ':pz'
    local ids = {}
    local hi = redis.call('ZRANGEBYSCORE', pz, '-inf', '(0', 'LIMIT', 0, n)
    if #hi > 0 then
        redis.call('ZREMRANGEBYRANK', pz, 0, #hi - 1)
        ids = hi
    end
    if #ids < n then
        local l = redis.call('LPOP', base .. ':pl', n - #ids)
        if l then
            if #ids == 0 then ids = l else
                for _, id in ipairs(l) do ids[#ids + 1] = id end
            end
        end
    end
    if #ids < n then
        local lo = redis.call('ZRANGE', pz, 0, n - #ids - 1)
        if #lo > 0 then
            redis.call('ZREMRANGEBYRANK', pz, 0, #lo - 1)
            for _, id in ipairs(lo) do ids[#ids + 1] = id end
        end
    end
    return ids
end
local function claim(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, CLAIM_KEYS)
    if wrong then return wrong end
    local worker, n, lease_ms = args[1], tonumber(args[2]), tonumber(args[3])
    local secret = args[5] or ''
    if worker == nil or worker == '' or n == nil or n < 1 or n > 1000
        or lease_ms == nil or lease_ms < 100 then
        return redis.error_reply('ERR usage: worker n lease_ms [limit] [secret]')
    end
    n = math.min(math.floor(n), CALL_MAX)
    local now = now_ms()
    local head = redis.call('ZRANGE', base .. ':pd', 0, 0, 'WITHSCORES')
    if #head > 0 and tonumber(head[2]) <= now then
        promote(base, now)
        head = redis.call('ZRANGE', base .. ':pd', 0, 0, 'WITHSCORES')
    end
    local due = #head > 0 and tonumber(head[2]) or -1
    local ids = take(base, n)
    if #ids == 0 then return {now, due, 0, ''} end
    local recs = redis.call('HMGET', base .. ':jd', unpack(ids))
    local seq = redis.call('INCR', base .. ':tok')
    local held = string.format('%d', seq)
    local token = held
    if secret ~= '' then
        held = held .. '.' .. secret_hash(secret)
        token = token .. '.' .. secret
    end
    local out = {now, due, 0, token}
    local run, mine, junk = {}, {}, 0
    -- attempts lost before (rare): read only when some were
    local att = {}
    if redis.call('EXISTS', base .. ':att') == 1 then
        att = redis.call('HMGET', base .. ':att', unpack(ids))
    end
    for i, id in ipairs(ids) do
        local r = recs[i]
        local a = r and string.sub(r, 1, 1) == 'p' and string.find(r, '\t', 2, true)
        local b = a and string.find(r, '\t', a + 1, true)
        local c = b and string.find(r, '\t', b + 1, true)
        if c then
            local o = #out
            out[o + 1] = id
            out[o + 2] = string.sub(r, a + 1, b - 1)
            out[o + 3] = string.sub(r, c + 1)
            out[o + 4] = string.sub(r, b + 1, c - 1)
            if att[i] then
                out[o + 4] = out[o + 4] .. 'a' .. (tonumber(att[i]) + 1)
            end
            run[#run + 1] = id
            run[#run + 1] = held
            mine[#mine + 1] = id
        elseif not (r and string.sub(r, 1, 1) == 'x') then
            -- (a cancelled record is skipped: cancel left its id waiting)
            junk = junk + 1 -- an id whose record is gone or not waiting
        end
    end
    out[3] = #mine
    if #mine > 0 then
        -- <base>:run is kept a hash table: below hash-max-listpack-entries
        -- (512) Redis keeps it a listpack, where the HMGET and HDEL of a
        -- batch of 250 scan it for every field (a third more Redis CPU
        -- per job, measured). One field whose value is longer than
        -- hash-max-listpack-value makes it a hash table for good; no job
        -- id holds '~'.
        if redis.call('EXISTS', base .. ':run') == 0 then
            redis.call('HSET', base .. ':run', '~', string.rep('-', 100))
        end
        chunked('HSET', base .. ':run', run)
        redis.call('HSET', base .. ':lease', held, worker .. ' '
            .. table.concat(mine, ' '), held .. '#n', #mine)
        redis.call('ZADD', base .. ':running', now + lease_ms, held)
    end
    if junk > 0 then redis.call('HINCRBY', base .. ':counts', 'junk', junk) end
    if #ids == n and (redis.call('LLEN', base .. ':pl') > 0
        or redis.call('ZCARD', base .. ':pz') > 0) then
        redis.call('LPUSH', base .. ':wake', '1')
    end
    return out
end

-- ARGV: worker, token, then pairs of job id and result (a JSON object).
-- Reply: per task 1 recorded, 0 refused (not held under this token: stale,
-- or completed already), -1 result not a JSON object.
local COMPLETE_KEYS = {'jd', 'run', 'lease', 'running', 'fin', 'counts',
    'events', 'att'}
local function complete(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, COMPLETE_KEYS)
    if wrong then return wrong end
    local worker, token = args[1], args[2]
    if worker == nil or token == nil or (#args - 2) % 2 ~= 0 then
        return redis.error_reply('ERR usage: worker token [id result]...')
    end
    local seq, secret = string.match(token, '^(%d+)%.(.+)$')
    local held = seq and (seq .. '.' .. secret_hash(secret)) or token
    local out, ids = {}, {}
    for i = 3, #args, 2 do ids[#ids + 1] = args[i] end
    if #ids == 0 then return out end
    local lease = redis.call('HGET', base .. ':lease', held)
    local mine = lease and string.sub(lease, 1, #worker + 1) == worker .. ' '
    local cur = redis.call('HMGET', base .. ':run', unpack(ids))
    local now = now_ms()
    local ms = 'c' .. string.format('%d', now)
    local set, done, seen = {}, {}, {}
    for k, id in ipairs(ids) do
        local res = args[2 + 2 * k]
        if not mine or cur[k] ~= held or seen[id] then
            out[k] = 0
        elseif res ~= '{}' and not pcall(cjson.decode, res) then
            out[k] = -1 -- (failing the attempt is not written here)
        else
            seen[id] = true
            out[k] = 1
            set[#set + 1] = id
            set[#set + 1] = res == '{}' and ms or (ms .. '\t' .. res)
            done[#done + 1] = id
        end
    end
    if #done > 0 then
        chunked('HDEL', base .. ':run', done)
        chunked('HSET', base .. ':jd', set)
        if redis.call('EXISTS', base .. ':att') == 1 then
            chunked('HDEL', base .. ':att', done)
        end
        local left = redis.call('HINCRBY', base .. ':lease', held .. '#n', -#done)
        if left <= 0 then
            redis.call('HDEL', base .. ':lease', held, held .. '#n')
            redis.call('ZREM', base .. ':running', held)
        end
        local line = string.format('%d', now) .. ' ' .. table.concat(done, ' ')
        redis.call('RPUSH', base .. ':fin', line)
        redis.call('HINCRBY', base .. ':counts', 'ok', #done)
        redis.call('XADD', base .. ':events', 'MAXLEN', '~', 10000, '*',
            'event', 'finished', 'jobs', #done, 'at', line)
    end
    return out
end

-- ARGV: worker, lease_ms, token. Renews the lease of a whole batch: one
-- ZADD whatever its size. Reply 1 renewed, 0 not held (reaped, or
-- another worker's).
local HEARTBEAT_KEYS = {'lease', 'running'}
local function heartbeat(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, HEARTBEAT_KEYS)
    if wrong then return wrong end
    local worker, lease_ms, token = args[1], tonumber(args[2]), args[3]
    if worker == nil or lease_ms == nil or lease_ms < 100 or token == nil then
        return redis.error_reply('ERR usage: worker lease_ms token')
    end
    local seq, secret = string.match(token, '^(%d+)%.(.+)$')
    local held = seq and (seq .. '.' .. secret_hash(secret)) or token
    local lease = redis.call('HGET', base .. ':lease', held)
    if not lease or string.sub(lease, 1, #worker + 1) ~= worker .. ' ' then
        return 0
    end
    redis.call('ZADD', base .. ':running', 'XX', now_ms() + lease_ms, held)
    return 1
end

-- ARGV: [limit 1..250]. Takes back the batches whose lease ran out: their
-- tasks not ended go back to the head of the queue, each lost attempt
-- counted in <base>:att (id -> attempts lost), which claim reads only
-- when it is not empty. Reply: tasks taken back.
local REAP_KEYS = {'jd', 'lease', 'running', 'run', 'pl', 'pz', 'att'}
local function reap(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, REAP_KEYS)
    if wrong then return wrong end
    local limit = tonumber(args[1] or 10) or 10
    local due = redis.call('ZRANGEBYSCORE', base .. ':running', '-inf',
        now_ms(), 'LIMIT', 0, limit)
    local back = 0
    for _, held in ipairs(due) do
        local lease = redis.call('HGET', base .. ':lease', held) or ''
        local ids = {}
        for id in string.gmatch(lease, '%S+') do ids[#ids + 1] = id end
        table.remove(ids, 1) -- (the worker)
        local lost = {}
        if #ids > 0 then
            local cur = redis.call('HMGET', base .. ':run', unpack(ids))
            for k, id in ipairs(ids) do
                if cur[k] == held then lost[#lost + 1] = id end
            end
        end
        if #lost > 0 then
            chunked('HDEL', base .. ':run', lost)
            local recs = redis.call('HMGET', base .. ':jd', unpack(lost))
            -- back at the front of their priority, in their order
            for i = #lost, 1, -1 do
                redis.call('HINCRBY', base .. ':att', lost[i], 1)
                enqueue(base, lost[i], opts_prio(recs[i]), 0, true)
            end
            back = back + #lost
        end
        redis.call('HDEL', base .. ':lease', held, held .. '#n')
        redis.call('ZREM', base .. ':running', held)
    end
    return back
end

-- The batch record's count of tasks not ended goes down by n; the batch
-- goes with its last one.
local function batch_ended(base, held, n)
    local left = redis.call('HINCRBY', base .. ':lease', held .. '#n', -n)
    if left <= 0 then
        redis.call('HDEL', base .. ':lease', held, held .. '#n')
        redis.call('ZREM', base .. ':running', held)
    end
end

-- ARGV: worker, token, then triples of job id, kind (error, timeout,
-- fatal) and error text. Reply: per task 0 not held under this token, 1
-- retried (delayed by backoff, attempts counted in <base>:att), 2 failed
-- for good (the record becomes "f<ms>\t<error>"). Failures are rare: the
-- records are read here, off the path of jobs that succeed.
local FAIL_KEYS = {'jd', 'run', 'lease', 'running', 'pd', 'att', 'fin', 'counts'}
local function fail(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, FAIL_KEYS)
    if wrong then return wrong end
    local worker, token = args[1], args[2]
    if worker == nil or token == nil or (#args - 2) % 3 ~= 0 then
        return redis.error_reply('ERR usage: worker token [id kind error]...')
    end
    local seq, secret = string.match(token, '^(%d+)%.(.+)$')
    local held = seq and (seq .. '.' .. secret_hash(secret)) or token
    local ids = {}
    for i = 3, #args, 3 do ids[#ids + 1] = args[i] end
    local out = {}
    if #ids == 0 then return out end
    local lease = redis.call('HGET', base .. ':lease', held)
    local mine = lease and string.sub(lease, 1, #worker + 1) == worker .. ' '
    local cur = redis.call('HMGET', base .. ':run', unpack(ids))
    local recs = redis.call('HMGET', base .. ':jd', unpack(ids))
    local att = redis.call('HMGET', base .. ':att', unpack(ids))
    local now = now_ms()
    local ended, gone, seen = {}, 0, {}
    for k, id in ipairs(ids) do
        if not mine or cur[k] ~= held or seen[id] then
            out[k] = 0
        else
            seen[id] = true
            redis.call('HDEL', base .. ':run', id)
            gone = gone + 1
            local r = recs[k] or ''
            local a = string.find(r, '\t', 2, true)
            local b = a and string.find(r, '\t', a + 1, true)
            local c = b and string.find(r, '\t', b + 1, true)
            local opts = c and string.sub(r, b + 1, c - 1) or ''
            local attempt = (tonumber(att[k]) or 0) + 1
            local retries = tonumber(string.match(opts, 'r(%d+)')) or 3
            local backoff = tonumber(string.match(opts, 'b(%d+)')) or 1000
            local kind = args[3 * k + 1]
            if kind ~= 'fatal' and attempt <= retries then
                redis.call('HINCRBY', base .. ':att', id, 1)
                local d = math.min(backoff * 2 ^ (attempt - 1), 3600000)
                redis.call('ZADD', base .. ':pd', now + math.floor(d / 2
                    + math.random() * d / 2), id)
                out[k] = 1
            else
                redis.call('HSET', base .. ':jd', id, 'f' .. string.format('%d', now)
                    .. '\t' .. string.sub(args[3 * k + 2] or '', 1, 4096))
                redis.call('HDEL', base .. ':att', id)
                ended[#ended + 1] = '!' .. id
                out[k] = 2
            end
        end
    end
    if gone > 0 then batch_ended(base, held, gone) end
    if #ended > 0 then
        redis.call('RPUSH', base .. ':fin', string.format('%d', now) .. ' '
            .. table.concat(ended, ' '))
        redis.call('HINCRBY', base .. ':counts', 'failed', #ended)
    end
    return out
end

-- ARGV: job id. Cancels a job that waits: its record becomes
-- "x<ms>"; an id in <base>:pl stays there until a claim meets and skips
-- it (taking it out of a long list would be O(n)), in <base>:pz or
-- <base>:pd it is taken out. Reply: 1 cancelled, 0 not waiting (running,
-- ended or unknown; a running job's worker would learn it at its
-- heartbeat, which the prototype does not write).
local CANCEL_KEYS = {'jd', 'run', 'pz', 'pd', 'fin', 'counts'}
local function cancel(keys, args)
    local base = keys[1]
    local wrong = keys_wrong(base, CANCEL_KEYS)
    if wrong then return wrong end
    local id = args[1]
    local r = redis.call('HGET', base .. ':jd', id)
    if not r or string.sub(r, 1, 1) ~= 'p'
        or redis.call('HEXISTS', base .. ':run', id) == 1 then
        return 0
    end
    local now = string.format('%d', now_ms())
    redis.call('HSET', base .. ':jd', id, 'x' .. now)
    redis.call('ZREM', base .. ':pz', id)
    redis.call('ZREM', base .. ':pd', id)
    redis.call('RPUSH', base .. ':fin', now .. ' x' .. id)
    redis.call('HINCRBY', base .. ':counts', 'cancelled', 1)
    return 1
end

-- ARGV: job id. One command per job for its state: {state, the record}:
-- completed, failed, cancelled, running (with its batch's lease),
-- pending, or unknown.
local function state(keys, args)
    local base = keys[1]
    local r = redis.call('HGET', base .. ':jd', args[1])
    if not r then return {'unknown'} end
    local st = ({c = 'completed', f = 'failed', x = 'cancelled'})[string.sub(r, 1, 1)]
    if st then return {st, r} end
    local lease = redis.call('HGET', base .. ':run', args[1])
    if lease then return {'running', r, lease} end
    return {'pending', r}
end

redis.register_function('llmb_push_fields', push_fields)
redis.register_function('llmb_claim', claim)
redis.register_function('llmb_complete', complete)
redis.register_function('llmb_heartbeat', heartbeat)
redis.register_function('llmb_reap', reap)
redis.register_function('llmb_fail', fail)
redis.register_function('llmb_cancel', cancel)
redis.register_function{function_name = 'llmb_state', callback = state,
    flags = {'no-writes'}}
