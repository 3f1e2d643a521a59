--[[
The synchronized start of a job's tasks (the llm executor's "start":
"together", docs/llm.md "Run control"): a rendezvous in Redis, so that
tasks claimed at different times on different workers start sending at
one moment.

Each task, once claimed and ready, registers under its lease token and
asks again until the start is set:

  FCALL llmb_rendezvous 1 <queue key> <worker> <task ref> <token> <timeout ms>

<base>:rv:<id> is a hash: per task index the time (ms, Redis clock) the
task first arrived, `n` the tasks arrived, `deadline` the first arrival +
<timeout ms> (set by the first caller), and, once every task of the job
has arrived or a call comes after the deadline, `start` (ms, Redis clock,
RV_LEAD_MS after that call, so that every task polling hears of it in
time) and `missing`, the tasks that had not arrived then. A later task
registers too and is told the start that passed. `expect`, written by
llmb_retry (50-cancel.lua), is the number of tasks that run again: then
the start waits for those, not for every task of the job. The hash holds
at most one field per task of the job plus five; retention deletes it
with the job.

Reply: {1, now, start, arrived, tasks, missing, deadline}, integers in ms
of the Redis clock, start and missing -1 while the start is not set
(and deadline -1 too when <base>:rv:<id> is not a hash: no start is ever
set then); or {0} when the worker does not hold that lease or the job's
hash is gone (nothing is written). Time
is Redis's: a worker waits start - now from the reply, so its own clock
does not matter.
]]

local RV_LEAD_MS = 100
-- the longest wait for the others: a day (a task's start_timeout_s is at
-- most that)
local RV_TIMEOUT_MAX_MS = 86400000

local function rendezvous_key(base, id) return base .. ':rv:' .. id end

local function rendezvous(keys, args)
    local base = keys[1]
    local worker, ref, tok = args[1], args[2], args[3]
    local timeout = tonumber(args[4])
    if #args ~= 4 or worker == '' or timeout == nil
        or timeout < 0 or timeout > RV_TIMEOUT_MAX_MS
        or timeout ~= math.floor(timeout) then
        return redis.error_reply('ERR usage: FCALL llmb_rendezvous 1 '
            .. '<queue key> <worker> <task ref> <token> <timeout ms 0..'
            .. RV_TIMEOUT_MAX_MS .. '>')
    end
    local id, idx = member_parse(ref)
    local held = kcall('HGET', leases_key(base, worker), ref)
    if not lease_opens(held, tok) or id == nil or idx == '*' then
        return {0}
    end
    -- a lease of a job that is gone (deleted by hand): nothing to meet
    local jk = job_key(base, id)
    if redis.call('EXISTS', jk) == 0 then return {0} end
    local k = rendezvous_key(base, id)
    local tasks = tonumber(kcall('HGET', k, 'expect'))
        or tonumber(kcall('HGET', jk, 'tasks')) or 1
    local now = now_ms()
    local first = kcall('HSETNX', k, idx, istr(now))
    if first == nil then
        -- <base>:rv:<id> is not a hash (junk): no start, ever
        return {1, now, -1, 0, tasks, -1, -1}
    end
    if first == 1 then
        kcall('HINCRBY', k, 'n', 1)
        kcall('HSETNX', k, 'deadline', istr(now + timeout))
    end
    local st = kcall('HMGET', k, 'n', 'deadline', 'start', 'missing') or {}
    local n, deadline = tonumber(st[1]) or 0, tonumber(st[2]) or now
    local start, missing = tonumber(st[3]), tonumber(st[4])
    if start == nil and (n >= tasks or now >= deadline) then
        start = now + RV_LEAD_MS
        missing = math.max(tasks - n, 0)
        kcall('HSET', k, 'start', istr(start), 'missing', istr(missing))
    end
    return {1, now, start or -1, n, tasks, missing or -1, deadline}
end

register('llmb_rendezvous', rendezvous)
