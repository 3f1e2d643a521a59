--[[
Workloads of llm jobs (docs/llm.md, "Workloads"): the checks of the
payload fields "synthetic" and "dataset" that llmb_push makes (the same
rules and words as lib/llmworkload.c, which llmb-push and the executor
use), and the dataset of a job: prompts stored in Redis under the job.

A dataset goes in before its job, in two steps:

  FCALL llmb_dataset 1 <queue key> <job id> <first> <line> [<line>...]

appends up to DATASET_CALL_MAX lines (JSONL lines: {"prompt": ...},
{"messages": [...]} or ShareGPT {"conversations": [...]}) to the upload
<base>:dsu:<id>: a prompt or messages line as it is, a ShareGPT line as
{"prompt": ..., "output_tokens": N} (N of its reference output). <first>
is the number of lines sent before (0 starts the upload over; a call sent
again, its reply lost, appends nothing twice). Reply: the entries stored,
or -1 when job <id> exists already (nothing is stored; pushing it again
returns it). The upload expires an hour after its last call.

Then the job is pushed with that id and "dataset": {"entries": N} in its
payload: the push checks that the upload holds N entries and renames it
to <base>:ds:<id>, where it stays until retention deletes it with the
job. The workers read their task's part with llmb_dataset_read.
]]

local DATASET_MAX_ENTRIES = 1000000
local DATASET_MAX_BYTES = 67108864
local DATASET_ENTRY_MAX = 262144
local DATASET_CALL_MAX = 1000
local DATASET_READ_MAX = 256
local DATASET_UPLOAD_TTL_S = 3600
local SYNTH_MAX = 100000

local function dataset_key(base, id) return base .. ':ds:' .. id end
local function dataset_upload_key(base, id) return base .. ':dsu:' .. id end
local function dataset_bytes_key(base, id) return base .. ':dsb:' .. id end

local function wl_shown(v)
    local ok, s = pcall(cjson.encode, v)
    if not ok then s = tostring(v) end
    if #s > 60 then s = string.sub(s, 1, 60) .. '...' end
    return s
end

local function wl_bad(kind, path, what, v)
    if v == nil then
        return string.format('%s payload field "%s" is required: %s', kind,
            path, what)
    end
    return string.format('%s payload field "%s" must be %s, got %s', kind,
        path, what, wl_shown(v))
end

local function wl_is_int(v)
    return type(v) == 'number' and v == math.floor(v)
end

-- nil, or a message naming the first key of o not in `known`.
local function wl_keys(o, kind, path, known)
    local set = {}
    for _, k in ipairs(known) do set[k] = true end
    for k in pairs(o) do
        if not set[k] then
            return string.format('%s payload field "%s" has an unknown key '
                .. '"%.40s" (known: %s)', kind, path, tostring(k),
                table.concat(known, ', '))
        end
    end
    return nil
end

local function wl_int(o, name, kind, path, min, max, required)
    local v = o[name]
    if v == nil and not required then return nil end
    if v == nil or not wl_is_int(v) or v < min or v > max then
        return wl_bad(kind, path .. '.' .. name, string.format(
            'an integer from %d to %d', min, max), v)
    end
    return nil
end

local function wl_num(o, name, kind, path, min, max)
    local v = o[name]
    if type(v) ~= 'number' or not (v >= min) or not (v <= max) then
        return wl_bad(kind, path .. '.' .. name, string.format(
            'a number from %g to %g', min, max), v)
    end
    return nil
end

local function wl_dist(v, kind, path)
    if type(v) == 'number' then
        if not wl_is_int(v) or v < 1 or v > SYNTH_MAX then
            return wl_bad(kind, path, 'a token count from 1 to 100000 or a '
                .. 'distribution', v)
        end
        return nil
    end
    if type(v) ~= 'table' or v[1] ~= nil then
        return wl_bad(kind, path, 'a token count or an object {"dist": '
            .. '"fixed"|"uniform"|"normal", ...}', v)
    end
    local d = v.dist
    if d ~= 'fixed' and d ~= 'uniform' and d ~= 'normal' then
        return wl_bad(kind, path .. '.dist', 'one of "fixed", "uniform", '
            .. '"normal"', d)
    end
    if d == 'fixed' then
        return wl_keys(v, kind, path, {'dist', 'value'})
            or wl_int(v, 'value', kind, path, 1, SYNTH_MAX, true)
    end
    if d == 'uniform' then
        local err = wl_keys(v, kind, path, {'dist', 'min', 'max'})
            or wl_int(v, 'min', kind, path, 1, SYNTH_MAX, true)
            or wl_int(v, 'max', kind, path, 1, SYNTH_MAX, true)
        if err then return err end
        if v.min > v.max then
            return string.format('%s payload field "%s": min (%d) is greater '
                .. 'than max (%d)', kind, path, v.min, v.max)
        end
        return nil
    end
    return wl_keys(v, kind, path, {'dist', 'mean', 'stddev'})
        or wl_num(v, 'mean', kind, path, 1, SYNTH_MAX)
        or wl_num(v, 'stddev', kind, path, 0, SYNTH_MAX)
end

local function wl_api(o, kind, path)
    local v = o.api
    if v ~= nil and v ~= 'chat' and v ~= 'completions' then
        return wl_bad(kind, path .. '.api', '"chat" (/chat/completions) or '
            .. '"completions" (/completions)', v)
    end
    return nil
end

local function wl_synthetic(v, kind)
    if type(v) ~= 'table' or v[1] ~= nil then
        return wl_bad(kind, 'synthetic', 'an object {"input_tokens": ..., '
            .. '"output_tokens": ..., "seed": N}', v)
    end
    local err = wl_keys(v, kind, 'synthetic', {'input_tokens',
        'output_tokens', 'seed', 'api'})
    if err then return err end
    if v.input_tokens == nil then
        return wl_bad(kind, 'synthetic.input_tokens', 'a token count or a '
            .. 'distribution', nil)
    end
    err = wl_dist(v.input_tokens, kind, 'synthetic.input_tokens')
    if err then return err end
    if v.output_tokens ~= nil then
        err = wl_dist(v.output_tokens, kind, 'synthetic.output_tokens')
        if err then return err end
    end
    return wl_int(v, 'seed', kind, 'synthetic', 0, 2147483647, false)
        or wl_api(v, kind, 'synthetic')
end

local function wl_dataset(v, kind)
    if type(v) ~= 'table' or v[1] ~= nil then
        return wl_bad(kind, 'dataset', 'an object {"entries": N} (llmb-push '
            .. '--dataset FILE writes it)', v)
    end
    local err = wl_keys(v, kind, 'dataset', {'entries', 'api', 'max_tokens'})
        or wl_int(v, 'entries', kind, 'dataset', 1, DATASET_MAX_ENTRIES, true)
        or wl_api(v, kind, 'dataset')
    if err then return err end
    local mt = v.max_tokens
    if mt ~= nil and mt ~= 'reference' and mt ~= 'payload' then
        return wl_bad(kind, 'dataset.max_tokens', '"reference" (each entry\'s '
            .. 'reference output length) or "payload"', mt)
    end
    return nil
end

-- Checks the workload fields of decoded payload p of a job of type `typ`
-- (llm or benchmark), as llmb_llm_workload_check does: nil or a message.
local function llm_workload_check(p, typ)
    local syn, ds = p.synthetic, p.dataset
    -- (null means none, as for "slo")
    if syn == cjson.null then syn = nil end
    if ds == cjson.null then ds = nil end
    if syn == nil and ds == nil then return nil end
    if syn ~= nil and ds ~= nil then
        return typ .. ' payload: give "synthetic" or "dataset", not both'
    end
    local which = syn ~= nil and 'synthetic' or 'dataset'
    if p.messages ~= nil or p.prompt ~= nil then
        return string.format('%s payload: "%s" makes each request\'s prompt; '
            .. 'give it or "messages"/"prompt", not both', typ, which)
    end
    local max_given = p.max_tokens ~= nil or p.max_completion_tokens ~= nil
    if syn ~= nil then
        local err = wl_synthetic(syn, typ)
        if err then return err end
        if syn.output_tokens ~= nil and syn.output_tokens ~= cjson.null
            and max_given then
            return typ .. ' payload: "synthetic.output_tokens" sets each '
                .. 'request\'s max_tokens; give it or "max_tokens", not both'
        end
        return nil
    end
    local err = wl_dataset(ds, typ)
    if err then return err end
    if ds.max_tokens == 'reference' and max_given then
        return typ .. ' payload: "dataset.max_tokens": "reference" sets each '
            .. 'request\'s max_tokens; give it or "max_tokens", not both'
    end
    return nil
end

-- Tokens of a text of n bytes, 4 bytes a token (llmb_llm_text_tokens).
local function text_tokens(n)
    if n < 4 then return 1 end
    return math.floor((n + 3) / 4)
end

local TURN_HUMAN = {human = 1, user = 1}
local TURN_GPT = {gpt = 2, assistant = 2, chatgpt = 2}

-- One dataset line as the stored entry (llmb_llm_dataset_entry): the
-- entry's text, or nil and a message. A "prompt" or "messages" line is
-- kept as it came (cjson would turn an empty array into an object and
-- round long numbers); a ShareGPT line becomes {"prompt", "output_tokens"}.
local function dataset_entry(line)
    -- what cjson takes and JSON does not (07-json.lua): the workers could
    -- not read it
    local bad = utf8_invalid_at(line)
    if bad then
        return nil, string.format('not a JSON object: not valid UTF-8 (byte '
            .. '%d)', bad)
    end
    local ok, o = pcall(cjson.decode, line)
    if not ok or type(o) ~= 'table' or (next(o) ~= nil and o[1] ~= nil)
        or string.byte(line, (string.find(line, '%S') or 1)) ~= 123 then
        if ok then return nil, 'not a JSON object' end
        return nil, 'not a JSON object: '
            .. string.gsub(tostring(o), '^.-: ', '')
    end
    local bad_word = bad_number_problem(line)
    if bad_word then return nil, 'not a JSON object: ' .. bad_word end
    local conv, prompt, msgs, ot = o.conversations, o.prompt, o.messages,
        o.output_tokens
    local n = (conv ~= nil and 1 or 0) + (prompt ~= nil and 1 or 0)
        + (msgs ~= nil and 1 or 0)
    if n ~= 1 then
        return nil, 'needs exactly one of "prompt" (a string), "messages" '
            .. '(chat messages) or "conversations" (ShareGPT)'
    end
    local out_tokens
    if ot ~= nil then
        if not wl_is_int(ot) or ot < 1 or ot > SYNTH_MAX then
            return nil, string.format('"output_tokens" must be an integer '
                .. 'from 1 to %d', SYNTH_MAX)
        end
        out_tokens = ot
    end
    local e, text
    if prompt ~= nil then
        if type(prompt) ~= 'string' or #prompt == 0 then
            return nil, '"prompt" must be a non-empty string'
        end
        text = line
    elseif msgs ~= nil then
        if type(msgs) ~= 'table' or msgs[1] == nil then
            return nil, '"messages" must be a non-empty array of {"role", '
                .. '"content"} objects'
        end
        for i, m in ipairs(msgs) do
            if type(m) ~= 'table' or type(m.role) ~= 'string' then
                return nil, string.format('"messages": item %d must be an '
                    .. 'object with a string "role"', i - 1)
            end
        end
        text = line
    else
        if type(conv) ~= 'table' or (next(conv) ~= nil and conv[1] == nil) then
            return nil, '"conversations" must be an array of {"from", '
                .. '"value"} turns'
        end
        local human
        for _, t in ipairs(conv) do
            local kind = type(t) == 'table' and (TURN_HUMAN[t.from]
                or TURN_GPT[t.from]) or 0
            local v = type(t) == 'table' and t.value or nil
            if human == nil and kind == 1 and type(v) == 'string'
                and #v > 0 then
                human = v
            elseif human ~= nil and kind == 2 and type(v) == 'string' then
                if ot == nil then out_tokens = text_tokens(#v) end
                break
            end
        end
        if human == nil then
            return nil, '"conversations" has no "human" turn with a '
                .. 'non-empty "value"'
        end
        e = {prompt = human}
        if out_tokens then e.output_tokens = out_tokens end
        text = cjson.encode(e)
    end
    if #text > DATASET_ENTRY_MAX then
        return nil, string.format('the entry is %d bytes; the limit is %d',
            #text, DATASET_ENTRY_MAX)
    end
    return text
end

-- Nil, or the message naming the upload `up` (a list) or its byte count
-- `bk` (a string) when one is a key of another type.
local function dataset_keys_wrong(up, bk)
    for _, kt in ipairs({{up, 'list'}, {bk, 'string'}}) do
        local t = redis.call('TYPE', kt[1])['ok']
        if t ~= 'none' and t ~= kt[2] then
            return 'key "' .. kt[1] .. '" is a ' .. t .. ', llmb expects a '
                .. kt[2] .. ': rename or delete it'
        end
    end
    return nil
end

-- llmb_dataset: see the top of this file.
local function dataset_add(keys, args)
    local base = keys[1]
    local id, first = args[1], tonumber(args[2])
    local nlines = #args - 2
    if id == nil or not string.find(id, '^[%w_.%-]+$') or #id > 128
        or first == nil or first < 0 or first ~= math.floor(first)
        or nlines < 1 then
        return redis.error_reply('ERR usage: FCALL llmb_dataset 1 <queue key> '
            .. '<job id> <first> <line> [<line>...]: the entries of job <job '
            .. 'id>, <first> the number of lines sent before')
    end
    if nlines > DATASET_CALL_MAX then
        return too_many('llmb_dataset', nlines, 'lines', DATASET_CALL_MAX)
    end
    if redis.call('HEXISTS', base .. ':jd', id) == 1 then return -1 end
    local up, bk = dataset_upload_key(base, id), dataset_bytes_key(base, id)
    -- a key of the wrong type is someone else's: refused, never deleted
    local wrong = dataset_keys_wrong(up, bk)
    if wrong then return redis.error_reply('ERR ' .. wrong) end
    -- (UNLINK: an upload runs to 64 MiB; see retention_trim)
    if first == 0 then redis.call('UNLINK', up, bk) end
    local have = redis.call('LLEN', up)
    if first < have and first + nlines <= have then return have end
    if first ~= have then
        return redis.error_reply(string.format('ERR llmb_dataset: job %s has '
            .. '%d entries uploaded, so the next call starts at %d, got %d '
            .. '(start over with 0)', id, have, have, first))
    end
    if have + nlines > DATASET_MAX_ENTRIES then
        return redis.error_reply(string.format('ERR dataset of job %s: more '
            .. 'than %d entries; the limit is %d', id, DATASET_MAX_ENTRIES,
            DATASET_MAX_ENTRIES))
    end
    local entries, bytes = {}, 0
    for i = 1, nlines do
        local e, err = dataset_entry(args[i + 2])
        if e == nil then
            return redis.error_reply(string.format('ERR dataset line %d: %s',
                first + i, err))
        end
        entries[i] = e
        bytes = bytes + #e
    end
    local total = (tonumber(redis.call('GET', bk)) or 0) + bytes
    if total > DATASET_MAX_BYTES then
        return redis.error_reply(string.format('ERR dataset of job %s: more '
            .. 'than %d bytes of entries; the limit is %d', id,
            DATASET_MAX_BYTES, DATASET_MAX_BYTES))
    end
    chunked('RPUSH', up, entries)
    redis.call('SET', bk, istr(total), 'EX', DATASET_UPLOAD_TTL_S)
    redis.call('EXPIRE', up, DATASET_UPLOAD_TTL_S)
    return have + nlines
end

register('llmb_dataset', dataset_add)

-- llmb_dataset_read <job id> <first> <count>: up to DATASET_READ_MAX
-- entries of job <id>'s dataset from index <first> (0-based).
local function dataset_read(keys, args)
    local id, first, count = args[1], tonumber(args[2]), tonumber(args[3])
    if id == nil or first == nil or count == nil or first < 0
        or first > DATASET_MAX_ENTRIES or first ~= math.floor(first)
        or count < 1 or count > DATASET_READ_MAX
        or count ~= math.floor(count) then
        return redis.error_reply(string.format('ERR usage: FCALL '
            .. 'llmb_dataset_read 1 <queue key> <job id> <first 0..%d> '
            .. '<count 1..%d>', DATASET_MAX_ENTRIES, DATASET_READ_MAX))
    end
    local k = dataset_key(keys[1], id)
    local t = redis.call('TYPE', k)['ok']
    if t ~= 'list' then
        return redis.error_reply('ERR job ' .. id .. ' has no dataset (key "'
            .. k .. '" is ' .. (t == 'none' and 'missing' or 'a ' .. t)
            .. ')')
    end
    return redis.call('LRANGE', k, istr(first), istr(first + count - 1))
end

register('llmb_dataset_read', dataset_read, true)

-- For push: checks the dataset of job j (validated, its id resolved, to
-- be stored) and moves its upload under the job. Returns nil, or the
-- message that refuses the job (then the upload is deleted: nothing of
-- the job is stored).
local function dataset_attach(base, j)
    if (j.type ~= 'llm' and j.type ~= 'benchmark')
        or not string.find(j.payload, '"dataset"', 1, true) then
        return nil
    end
    local ok, p = pcall(cjson.decode, j.payload)
    if not ok or type(p) ~= 'table' or type(p.dataset) ~= 'table'
        or not wl_is_int(p.dataset.entries) then
        return nil
    end
    local want = p.dataset.entries
    if j.minted then
        return 'a job with a "dataset" needs its own "id": the one its '
            .. 'entries were stored under with llmb_dataset'
    end
    local up = dataset_upload_key(base, j.id)
    local wrong = dataset_keys_wrong(up, dataset_bytes_key(base, j.id))
    if wrong then return wrong end
    local have = redis.call('LLEN', up)
    local refuse = function(msg)
        redis.call('UNLINK', up, dataset_bytes_key(base, j.id))
        return msg
    end
    if have ~= want then
        return refuse(string.format('payload field "dataset" says %d entries, but '
            .. '%d are stored for job %s (FCALL llmb_dataset 1 %s %s 0 '
            .. '<line>... stores them; an upload expires after an hour)',
            want, have, j.id, base, j.id))
    end
    if j.tasks > have then
        return refuse(string.format('a dataset of %d entries cannot feed %d '
            .. 'tasks: each task takes at least one entry', have, j.tasks))
    end
    redis.call('RENAME', up, dataset_key(base, j.id))
    redis.call('PERSIST', dataset_key(base, j.id))
    redis.call('DEL', dataset_bytes_key(base, j.id))
    return nil
end
