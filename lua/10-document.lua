--[[
Job documents: validation of the JSON a caller pushes, with one specific
message per mistake. The payload is stored as the exact text the caller
sent (cjson would re-encode numbers with 14 digits and turn [] into {}),
so a small scanner finds the raw text of each top-level field of a
document that cjson has already accepted as valid JSON.
]]

local MAX_PRIORITY = 1000000

local function skip_ws(s, i)
    return string.find(s, '[^ \t\r\n]', i)
end

-- Index of the last byte of the JSON value starting at s[i].
local function scan_value(s, i)
    local c = string.byte(s, i)
    if c == 34 then return scan_string(s, i) end
    if c == 123 or c == 91 then
        local depth, j = 0, i
        while true do
            local k = string.find(s, '[%[%]{}"]', j)
            if k == nil then return #s end
            local b = string.byte(s, k)
            if b == 34 then
                j = scan_string(s, k) + 1
            elseif b == 123 or b == 91 then
                depth = depth + 1
                j = k + 1
            else
                depth = depth - 1
                if depth == 0 then return k end
                j = k + 1
            end
        end
    end
    local k = string.find(s, '[,}%]%s]', i)
    return (k or (#s + 1)) - 1
end

-- Raw text of every top-level field of a valid JSON object document.
local function raw_fields(s)
    local out = {}
    local i = skip_ws(s, skip_ws(s, 1) + 1)
    if string.byte(s, i) == 125 then return out end
    while true do
        local ke = scan_string(s, i)
        local key = string.sub(s, i + 1, ke - 1)
        if string.find(key, '\\', 1, true) then
            key = cjson.decode(string.sub(s, i, ke))
        end
        local vs = skip_ws(s, skip_ws(s, ke + 1) + 1)
        local ve = scan_value(s, vs)
        out[key] = string.sub(s, vs, ve)
        i = skip_ws(s, ve + 1)
        if string.byte(s, i) ~= 44 then return out end
        i = skip_ws(s, i + 1)
    end
end

local KNOWN_FIELDS = {
    type = true, queue = true, payload = true, priority = true, tasks = true,
    timeout_s = true, max_retries = true, delay_s = true, id = true,
    backoff_ms = true, deadline_s = true,
}
local KNOWN_LIST = 'type, queue, payload, priority, tasks, timeout_s, '
    .. 'max_retries, delay_s, id, backoff_ms, deadline_s'

-- The fields of an `llm` or `benchmark` payload, in the order of
-- include/llmb/llmfields.h's llmb_llm_fields (lib/llmfields.c), which
-- llmb-push and the executor check with: keep the two the same
-- (test_llm_fields pushes every C name here). 'b': benchmark only.
local LLM_FIELDS = {
    'endpoint', 'provider:b', 'iterations:b', 'requests', 'concurrency',
    'rate', 'warmup_requests', 'warmup_s', 'duration_s', 'ramp_up_s',
    'start_at_ms', 'start', 'start_timeout_s',
    'timeout_s', 'retries', 'retry_backoff_ms', 'max_records',
    'record_itls', 'seed', 'slo',
    '_kinds', 'endpoints', 'models',
    'extra_body', 'synthetic', 'dataset',
    'model', 'messages', 'prompt', 'max_tokens', 'max_completion_tokens',
    'temperature', 'top_p', 'stop', 'n', 'stream', 'stream_options',
    'ignore_eos', 'logprobs', 'top_logprobs', 'presence_penalty',
    'frequency_penalty', 'logit_bias', 'user', 'response_format', 'tools',
    'tool_choice', 'parallel_tool_calls', 'reasoning_effort', 'echo',
    'best_of', 'suffix',
}

-- Edit distance of a and b, capped at 3 (only 1 and 2 are close):
-- insertions, deletions, substitutions and swaps of two neighbours, as
-- llmb_edit_distance in lib/util.c, so both give the same "did you mean".
local function distance(a, b)
    local la, lb = #a, #b
    if la > 64 or lb > 64 then return 3 end
    local d = {}
    for i = 0, la do d[i] = {[0] = i} end
    for j = 0, lb do d[0][j] = j end
    for i = 1, la do
        local ai = string.byte(a, i)
        for j = 1, lb do
            local bj = string.byte(b, j)
            local best = d[i - 1][j - 1] + ((ai ~= bj) and 1 or 0)
            if d[i - 1][j] + 1 < best then best = d[i - 1][j] + 1 end
            if d[i][j - 1] + 1 < best then best = d[i][j - 1] + 1 end
            if i > 1 and j > 1 and ai == string.byte(b, j - 1)
                and string.byte(a, i - 1) == bj and d[i - 2][j - 2] + 1 < best then
                best = d[i - 2][j - 2] + 1
            end
            d[i][j] = best
        end
    end
    return math.min(d[la][lb], 3)
end

-- a < b byte by byte, as C's strcmp (Lua's < follows the locale).
local function byte_less(a, b)
    for i = 1, math.min(#a, #b) do
        local x, y = string.byte(a, i), string.byte(b, i)
        if x ~= y then return x < y end
    end
    return #a < #b
end

-- Checks the keys of the decoded payload p of a job of type `typ` (llm or
-- benchmark): nil, or the message lib/llmfields.c gives for the first
-- unknown key in byte order.
local function llm_fields_check(p, typ)
    local bench = typ == 'benchmark'
    local names, known = {}, {}
    for _, f in ipairs(LLM_FIELDS) do
        local name, only = string.match(f, '^([%w_]+)(:?b?)$')
        if bench or only == '' then
            names[#names + 1] = name
            known[name] = true
        end
    end
    local bad
    for k in pairs(p) do
        if type(k) ~= 'string' then return nil end -- an array
        if not known[k] and (bad == nil or byte_less(k, bad)) then bad = k end
    end
    if bad == nil then return nil end
    local near, best = nil, 3
    for _, name in ipairs(names) do
        local d = distance(bad, name)
        if d < best and d < #bad then near, best = name, d end
    end
    return string.format('%s payload field "%.40s" is not known%s known: %s '
        .. '(server-specific fields go in "extra_body")', typ, bad,
        near and string.format('; did you mean "%s"?', near) or ';',
        table.concat(names, ', '))
end

-- Checks a job payload's "_kinds", the aggregate kinds of its fields
-- (docs/coordinator.md), with lib/aggregate.c's words
-- (llmb_agg_kinds_check): nil, or the message for the byte-least bad
-- entry.
local AGG_KINDS = {duration = true, count = true, gauge = true,
    flag = true, label = true}
local AGG_KINDS_MAX = 1024
local function kinds_check(p)
    local kinds = p._kinds
    if kinds == nil or kinds == cjson.null then return nil end
    local not_obj = 'payload field "_kinds" must be an object of field '
        .. 'paths to kind names (duration, count, gauge, flag, label)'
    if type(kinds) ~= 'table' then return not_obj end
    local n, bad = 0, nil
    for k, v in pairs(kinds) do
        if type(k) ~= 'string' then return not_obj end
        n = n + 1
        if (k == '' or not (type(v) == 'string' and AGG_KINDS[v]))
            and (bad == nil or byte_less(k, bad)) then
            bad = k
        end
    end
    if n > AGG_KINDS_MAX then
        return string.format('payload field "_kinds" has %d entries; the '
            .. 'limit is %d', n, AGG_KINDS_MAX)
    end
    if bad == nil then return nil end
    if bad == '' then
        return 'payload field "_kinds" has an empty field path'
    end
    local v = kinds[bad]
    return string.format('payload field "_kinds": "%s" must be one of '
        .. 'duration, count, gauge, flag, label, got %s', string.sub(bad, 1,
        100), type(v) == 'string' and '"' .. string.sub(v, 1, 40) .. '"'
        or 'a non-string')
end

-- The messages of a number or a name out of its rules; `raw` is the
-- value as the caller wrote it. Both push paths use them, so a value is
-- refused in the same words whichever way it came.
local function bad_number(name, whole, min, max, raw)
    return string.format('job field "%s" must be %s from %s to %s, got %s',
        name, whole and 'an integer' or 'a number', tostring(min),
        tostring(max), shown(raw))
end

local function bad_name(name, maxlen, raw)
    return string.format('job field "%s" must be a string of 1 to %d '
        .. 'characters from [A-Za-z0-9_.%s-], got %s', name, maxlen,
        name == 'type' and ':/' or '', shown(raw))
end

-- Checks field `name` of decoded document `obj`: a number within
-- [min, max], whole when `whole`. Returns the value, or nil and a message.
local function doc_number(obj, raw, name, whole, min, max, default)
    local v = obj[name]
    if v == nil then return default end
    if type(v) ~= 'number' or v ~= v or (whole and v ~= math.floor(v))
        or v < min or v > max then
        return nil, bad_number(name, whole, min, max, raw[name])
    end
    return v
end

local function doc_name(obj, raw, name, maxlen, pattern, default)
    local v = obj[name]
    if v == nil then return default end
    if type(v) ~= 'string' or #v == 0 or #v > maxlen
        or not string.find(v, pattern) then
        return nil, bad_name(name, maxlen, raw[name])
    end
    return v
end

local function fmt_num(v)
    if v == math.floor(v) then return string.format('%d', v) end
    return tostring(v)
end

-- Validates one job document for queue `queue`. Returns a table of the
-- job's fields (strings and numbers, payload as the caller's raw text), or
-- nil and the message the caller will read.
local function doc_parse(doc, queue, max_payload, max_tasks)
    if #doc > max_payload + 65536 then
        return nil, string.format('job document is %d bytes; the limit is %d '
            .. '(payload limit %d plus 64 KiB)', #doc, max_payload + 65536,
            max_payload)
    end
    local bad = utf8_invalid_at(doc)
    if bad then
        return nil, string.format('job document is not valid UTF-8 (byte %d)', bad)
    end
    local ok, obj = pcall(cjson.decode, doc)
    if not ok then
        local msg = string.gsub(tostring(obj), '^.-: ', '')
        return nil, 'job document is not valid JSON: ' .. msg
    end
    local bad_word = bad_number_problem(doc)
    if bad_word then
        return nil, 'job document is not valid JSON: ' .. bad_word
    end
    local first = skip_ws(doc, 1)
    if type(obj) ~= 'table' or string.byte(doc, first) ~= 123 then
        return nil, 'job document must be a JSON object'
    end
    local raw = raw_fields(doc)
    for k in pairs(raw) do
        if not KNOWN_FIELDS[k] then
            return nil, string.format('job field "%s" is not known (known '
                .. 'fields: %s)', shown(k), KNOWN_LIST)
        end
    end
    local j, err = {}, nil
    if obj.type == nil then return nil, 'job field "type" is required' end
    j.type, err = doc_name(obj, raw, 'type', 128, '^[%w_.:/%-]+$', nil)
    if err then return nil, err end
    j.queue, err = doc_name(obj, raw, 'queue', 64, '^[%w_.%-]+$', queue)
    if err then return nil, err end
    if j.queue ~= queue then
        return nil, string.format('job field "queue" is "%s" but the job was '
            .. 'pushed to queue "%s"', j.queue, queue)
    end
    j.id, err = doc_name(obj, raw, 'id', 128, '^[%w_.%-]+$', nil)
    if err then return nil, err end
    j.priority, err = doc_number(obj, raw, 'priority', true, -MAX_PRIORITY,
        MAX_PRIORITY, 0)
    if err then return nil, err end
    j.tasks, err = doc_number(obj, raw, 'tasks', true, 1, max_tasks, 1)
    if err then return nil, err end
    j.timeout_s, err = doc_number(obj, raw, 'timeout_s', false, 0.001, 604800, 600)
    if err then return nil, err end
    j.max_retries, err = doc_number(obj, raw, 'max_retries', true, 0, 100, 3)
    if err then return nil, err end
    j.delay_s, err = doc_number(obj, raw, 'delay_s', false, 0, 31536000, 0)
    if err then return nil, err end
    j.backoff_ms, err = doc_number(obj, raw, 'backoff_ms', true, 1, 3600000, 1000)
    if err then return nil, err end
    j.deadline_s, err = doc_number(obj, raw, 'deadline_s', false, 0, 31536000, 0)
    if err then return nil, err end
    local payload = raw.payload or '{}'
    if #payload > max_payload then
        return nil, string.format('job field "payload" is %d bytes; the limit '
            .. 'is %d', #payload, max_payload)
    end
    if (j.type == 'llm' or j.type == 'benchmark')
        and type(obj.payload) == 'table' then
        local m = obj.payload.model -- at most LLMB_LLM_MODEL_MAX bytes
        err = llm_fields_check(obj.payload, j.type)
            or (type(m) == 'string' and #m > 200 and string.format(
                '%s payload field "model" is %d bytes; the limit is 200',
                j.type, #m))
            or llm_workload_check(obj.payload, j.type) -- (08-workload.lua)
        if err then return nil, err end
    end
    if type(obj.payload) == 'table' then
        err = kinds_check(obj.payload)
        if err then return nil, err end
    end
    j.payload = payload
    return j
end
