-- jsonl.lua: wraps each line as a JSON object, {"line":"..."}, one per
-- line (JSON Lines). Control characters, quotes and backslashes are
-- escaped; UTF-8 passes through; a byte that is not part of valid UTF-8
-- becomes U+FFFD, so that the output is always valid JSON.
--
--   [service audit]
--   transform = jsonl
--   jsonl.key = message
local escapes = {
    ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
    ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for byte = 0, 31 do
    local c = string.char(byte)
    escapes[c] = escapes[c] or string.format("\\u%04x", byte)
end
escapes["\127"] = "\\u007f"

local function escape(text)
    return (text:gsub('[%c"\\]', escapes))
end

-- valid UTF-8 as is; each invalid byte as U+FFFD
local function valid_utf8(text)
    local out, from = {}, 1
    while true do
        local ok, bad = utf8.len(text, from)
        if ok then
            out[#out + 1] = text:sub(from)
            return table.concat(out)
        end
        out[#out + 1] = text:sub(from, bad - 1)
        out[#out + 1] = "\u{FFFD}"
        from = bad + 1
    end
end

return {
    version = "1.0",
    description = "wraps each line as a JSON object",
    options = { key = "line" },

    transform = function(message, conn, options)
        return '{"' .. escape(options.key) .. '":"' ..
               escape(valid_utf8(message)) .. '"}'
    end,
}
