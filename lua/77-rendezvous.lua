--[[
The synchronized start of a job's tasks (the llm executor's "start":
"together", docs/llm.md "Run control"): a rendezvous in Redis, so that
tasks claimed at different times on different workers start sending at
one moment, and, after a warm-up, start measuring at one moment too.

Each task, once claimed and ready, registers under its lease token and
asks again until the start is set:

  FCALL llmb_rendezvous 1 <queue key> <worker> <task ref> <token>
        <timeout ms> [<phase>] [<poll ms>]   (<poll ms> after a <phase>)

<phase> is which meeting:
  start    (the default) the start of sending;
  measure  the start of the measured run, once the task's warm-up has
           ended: it waits for the tasks that registered at the start
           (late ones too), but those that said `none`;
  none     registers at the start a task with nothing to send (a
           benchmark task with no share of the iterations), so that the
           start does not wait for it and the measured start does not
           either.
<poll ms> (0..RV_POLL_MAX_MS, default 0) is how long the caller will wait
before it asks again: a waiter backs off instead of asking every few ms,
and the start is set RV_LEAD_MS plus the longest wait announced in that
meeting ahead, so that every waiter asks once more, and hears of it,
before it passes.

<base>:rv:<id> is a hash. For the start: per task index the time (ms,
Redis clock) the task first arrived, `n` the tasks arrived, `none` those
of them with nothing to send, `deadline` the first arrival + <timeout ms>
(set by the first caller), `poll` the longest wait announced, and, once
every task expected has arrived or a call comes after the deadline,
`start` (ms, Redis clock, RV_LEAD_MS + `poll` after that call) and
`missing`, the tasks that had not arrived then. The measured start has
the same fields prefixed `m:` (`m:<index>`, `m:n`, `m:deadline`,
`m:poll`, `m:start`, `m:missing`). A later task registers too and is told
the start that passed. `expect`, written by llmb_retry (50-cancel.lua),
is the number of tasks that run again: then the start waits for those,
not for every task of the job. The hash holds at most two fields per task
of the job plus twelve; retention deletes it with the job.

Reply: {1, now, start, arrived, tasks, missing, deadline}, integers in ms
of the Redis clock, of the meeting asked (`tasks` the tasks it waits
for), start and missing -1 while the start is not set (and deadline -1
too when <base>:rv:<id> is not a hash: no start is ever set then); or {0}
when the worker does not hold that lease or the job's hash is gone
(nothing is written). Time is Redis's: a worker waits start - now from
the reply, so its own clock does not matter.
]]

local RV_LEAD_MS = 100
-- the longest wait for the others: a day (a task's start_timeout_s is at
-- most that)
local RV_TIMEOUT_MAX_MS = 86400000
-- the longest a waiter may announce between two calls
local RV_POLL_MAX_MS = 10000
-- the field prefix of each meeting
local RV_PHASES = {start = '', none = '', measure = 'm:'}

local function rendezvous_key(base, id) return base .. ':rv:' .. id end

local function rendezvous(keys, args)
    local base = keys[1]
    local worker, ref, tok = args[1], args[2], args[3]
    local timeout = tonumber(args[4])
    local phase = args[5] or 'start'
    local pre = RV_PHASES[phase]
    local poll = tonumber(args[6] or '0')
    if #args < 4 or #args > 6 or worker == '' or timeout == nil
        or timeout < 0 or timeout > RV_TIMEOUT_MAX_MS
        or timeout ~= math.floor(timeout) or pre == nil or poll == nil
        or poll < 0 or poll > RV_POLL_MAX_MS or poll ~= math.floor(poll) then
        return redis.error_reply('ERR usage: FCALL llmb_rendezvous 1 '
            .. '<queue key> <worker> <task ref> <token> <timeout ms 0..'
            .. RV_TIMEOUT_MAX_MS .. '> [start|measure|none [<poll ms 0..'
            .. RV_POLL_MAX_MS .. '>]]')
    end
    local id, idx = L.member(ref)
    if id == nil or not L.holds(base, worker, ref, tok) then
        return {0}
    end
    idx = idx or '0'
    -- a lease of a job that is gone (deleted by hand): nothing to meet
    local _, _, _, o = L.rec(redis.call('HGET', base .. ':jd', id))
    if o == nil then return {0} end
    local k = rendezvous_key(base, id)
    local tasks = tonumber(kcall('HGET', k, 'expect')) or L.optn(o, 'n', 1)
    if phase == 'measure' then
        -- those that came to the start (after it too), but those with
        -- nothing to send
        local st = kcall('HMGET', k, 'n', 'none') or {}
        tasks = math.min(tasks, (tonumber(st[1]) or tasks)
            - (tonumber(st[2]) or 0))
    end
    local now = now_ms()
    local first = kcall('HSETNX', k, pre .. idx, istr(now))
    if first == nil then
        -- <base>:rv:<id> is not a hash (junk): no start, ever
        return {1, now, -1, 0, tasks, -1, -1}
    end
    if first == 1 then
        kcall('HINCRBY', k, pre .. 'n', 1)
        kcall('HSETNX', k, pre .. 'deadline', istr(now + timeout))
        if phase == 'none' then kcall('HINCRBY', k, 'none', 1) end
    end
    local st = kcall('HMGET', k, pre .. 'n', pre .. 'deadline',
        pre .. 'start', pre .. 'missing', pre .. 'poll') or {}
    local n, deadline = tonumber(st[1]) or 0, tonumber(st[2]) or now
    local start, missing = tonumber(st[3]), tonumber(st[4])
    local longest = tonumber(st[5]) or 0
    if start == nil and poll > longest then
        longest = poll
        kcall('HSET', k, pre .. 'poll', istr(poll))
    end
    if start == nil and (n >= tasks or now >= deadline) then
        start = now + RV_LEAD_MS + longest
        missing = math.max(tasks - n, 0)
        kcall('HSET', k, pre .. 'start', istr(start), pre .. 'missing',
            istr(missing))
    end
    return {1, now, start or -1, n, tasks, missing or -1, deadline}
end

register('llmb_rendezvous', rendezvous)
