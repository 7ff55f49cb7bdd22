-- counter.lua: numbers the lines of each connection ("3: text"), and
-- counts all the lines it has numbered in `morph stats`.
--
-- `conn` is the connection's own table: it lives as long as the TCP
-- connection (over UDP, one datagram). A local of the script, like
-- `served` below, is shared by every connection of one worker (each
-- worker has a Lua state of its own), and needs no lock.
local served = 0

return {
    version = "1.0",
    description = "numbers the lines of each connection",
    counters = { lines = "lines numbered" },

    open = function(conn)
        conn.lines = 0
    end,

    transform = function(message, conn, options)
        conn.lines = conn.lines + 1
        served = served + 1
        morph.count("lines")
        return conn.lines .. ": " .. message
    end,

    close = function(conn)
        if conn.lines > 100 then
            morph.log("info", "a connection of " .. conn.lines .. " lines ended (" ..
                      served .. " lines on this worker so far)")
        end
    end,
}
