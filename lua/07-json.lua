--[[
The checks of JSON text that cjson lets through: cjson accepts bytes
that are not UTF-8 and numbers JSON does not have (NaN, Infinity, hex),
which every other reader (llmb-push, the workers, jansson) refuses. The
push (10-document.lua), a task's result (40-lease.lua) and a dataset line
(08-workload.lua) are refused in the same words.
]]

-- Index of the quote that closes the string opening at s[i].
local function scan_string(s, i)
    local j = i + 1
    while true do
        local k = string.find(s, '["\\]', j)
        if k == nil then return #s end
        if string.byte(s, k) == 92 then j = k + 2 else return k end
    end
end

-- Position of the first byte that is not valid UTF-8, or nil.
local function utf8_invalid_at(s)
    local i = string.find(s, '[\128-\255]')
    while i do
        local c = string.byte(s, i)
        local len
        if c >= 0xC2 and c <= 0xDF then len = 2
        elseif c >= 0xE0 and c <= 0xEF then len = 3
        elseif c >= 0xF0 and c <= 0xF4 then len = 4
        else return i end
        for k = 1, len - 1 do
            local cc = string.byte(s, i + k)
            if cc == nil or cc < 0x80 or cc > 0xBF then return i end
        end
        local c2 = string.byte(s, i + 1)
        if (c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F)
            or (c == 0xF0 and c2 < 0x90) or (c == 0xF4 and c2 > 0x8F) then
            return i
        end
        i = string.find(s, '[\128-\255]', i + len)
    end
    return nil
end

-- cjson also accepts numbers that JSON does not have (NaN, Infinity,
-- hex like 0x10); the raw payload would then reach workers and results as
-- invalid JSON. Returns the first such word and its position, or nil. Outside
-- strings the only words of valid JSON are true, false, null and the
-- exponent marker e/E right after a digit or a dot.
local function bad_number_at(s)
    local i = 1
    while true do
        local k = string.find(s, '["%a]', i)
        if k == nil then return nil end
        if string.byte(s, k) == 34 then
            i = scan_string(s, k) + 1
        else
            local word = string.match(s, '^%a+', k)
            if not (word == 'true' or word == 'false' or word == 'null'
                or ((word == 'e' or word == 'E')
                    and string.find(string.sub(s, k - 1, k - 1), '[%d.]'))) then
                while k > 1 and string.find(string.sub(s, k - 1, k - 1), '[%w.+-]') do
                    k = k - 1
                end
                return string.match(s, '^[%w.+-]+', k), k
            end
            i = k + #word
        end
    end
end

local function shown(raw)
    if #raw > 40 then raw = string.sub(raw, 1, 37) .. '...' end
    return raw
end

-- The words of bad_number_at's find in JSON text s, or nil: what each
-- caller says after its own "... is not valid JSON: ".
local function bad_number_problem(s)
    local word, at = bad_number_at(s)
    if word == nil then return nil end
    return string.format('"%s" at character %d is not a JSON value',
        shown(word), at)
end
