--[[
Per-request records of a job (the llm executor's, docs/llm.md "Records"):
every request a task made, kept in the list <base>:rec:<id> until the
job's retention deletes it. A worker appends them while it holds the
task's lease, fenced by the lease token like complete: a token the worker
no longer holds appends nothing.

A chunk is text: a header line "<attempt>\t<chunk seq>\t<endpoint>\t
<model>\t<measured start, unix ms>" and then one line per record (columns in
docs/llm.md). Each list element is "<index>\t<claim>\t<worker>\t" and the
chunk, where <claim> is the sequence number of the lease token: it tells
the claims of one task apart across attempts and retries of the job.

<base>:rs:<id> is the hash that keeps the key bounded and the appends
idempotent: `bytes` appended, `dropped` chunks refused by the cap
(max_record_bytes), and per task index "<claim>:<next chunk seq>" of the
last claim that appended. A chunk sent again (the reply was lost) has a
seq below that and is not appended twice; a new claim of the task starts
over. Export keeps, per task, the chunks of the claim in that field: the
last claim that sent records, which for a completed task is the attempt
that completed.
]]

local RECORD_CHUNKS_MAX = 16       -- chunks per call
local RECORD_CHUNK_BYTES = 65536   -- bytes per chunk

local function records_key(base, id) return base .. ':rec:' .. id end
local function records_state_key(base, id) return base .. ':rs:' .. id end

-- ARGV: worker, then triples of task ref, token and chunk, at most
-- RECORD_CHUNKS_MAX. Reply: per chunk 1 appended, 2 already appended (a
-- resend), 3 dropped (the job's records are at max_record_bytes), 0
-- refused (stale token), -1 refused (not a chunk: no header line, or over
-- RECORD_CHUNK_BYTES).
local function records(keys, args)
    local base = keys[1]
    local worker = args[1]
    if not lease_args_ok(worker, #args - 1, 3) or #args == 1 then
        return redis.error_reply('ERR usage: FCALL llmb_records 1 <queue key> '
            .. '<worker> <task ref> <token> <chunk> [<task ref> <token> '
            .. '<chunk>]...')
    end
    if (#args - 1) / 3 > RECORD_CHUNKS_MAX then
        return too_many('llmb_records', (#args - 1) / 3, 'chunks',
            RECORD_CHUNKS_MAX)
    end
    local refs = {}
    for i = 2, #args, 3 do refs[#refs + 1] = args[i] end
    local cap = conf_num(base, 'max_record_bytes')
    local out = {}
    for i, ref in ipairs(refs) do
        local tok, chunk = args[3 * i], args[3 * i + 1]
        local id, idx = L.member(ref)
        idx = idx or '0'
        local seq = string.match(chunk, '^%d+\t(%d+)\t[^\n]*\n')
        if id == nil or not L.holds(base, worker, ref, tok) then
            out[i] = 0
        elseif seq == nil or #chunk > RECORD_CHUNK_BYTES then
            out[i] = -1
        else
            local claim = string.match(tok, '^(%d+)') or '0'
            local sk = records_state_key(base, id)
            local st = kcall('HMGET', sk, idx, 'bytes') or {}
            local c, nxt = string.match(st[1] or '', '^(%d+):(%d+)$')
            seq = tonumber(seq)
            if c == claim and seq < tonumber(nxt) then
                out[i] = 2
            elseif (tonumber(st[2]) or 0) + #chunk > cap then
                kcall('HINCRBY', sk, 'dropped', 1)
                out[i] = 3
            else
                kcall('RPUSH', records_key(base, id),
                    idx .. '\t' .. claim .. '\t' .. worker .. '\t' .. chunk)
                kcall('HSET', sk, idx, claim .. ':' .. istr(seq + 1))
                kcall('HINCRBY', sk, 'bytes', #chunk)
                out[i] = 1
            end
        end
    end
    return out
end

register('llmb_records', records)
