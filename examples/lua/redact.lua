-- redact.lua: masks every digit (card numbers, phone numbers, PINs) with
-- the text of the `mask` option, one mask per digit.
--
--   [service support]
--   transform = redact
--   redact.mask = *
return {
    version = "1.0",
    description = "masks every digit",
    chunk_safe = true, -- each byte is masked on its own: chunks are fine
    options = { mask = "#" },
    help = { mask = "the text each digit is replaced with" },

    transform = function(message, conn, options)
        -- in a gsub replacement "%" is special: double it
        local mask = options.mask:gsub("%%", "%%%%")
        return (message:gsub("%d", mask))
    end,
}
