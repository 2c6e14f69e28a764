-- tcpshut.lua: shows tcpshut's teardown annotations in Wireshark / tshark.
--
-- A post-dissector that reads the CSV sidecar written by `tcpshut annotate`
-- (CAPTURE.tcpshut.csv, one row per TCP segment) and adds a "TCP Shutdown"
-- subtree plus expert info to every annotated frame.
--
-- The sidecar is data, never code: it is read as text and parsed field by
-- field; nothing in it is ever evaluated.
--
-- Sidecar lookup, first hit wins (re-done whenever a file is opened):
--   1. preference tcpshut.sidecar      (-o tcpshut.sidecar:PATH)
--   2. script argument                 (-X lua_script:tcpshut.lua -X lua_script1:PATH)
--   3. environment variable TCPSHUT_SIDECAR
--   4. CAPTURE.tcpshut.csv beside the open capture (Linux only: found via
--      /proc/<pid>/fd; not on other OSes, nor when reading stdin)
--
-- Works with Wireshark 4.0 (Lua 5.2) up to 4.6 (Lua 5.4). See docs/wireshark.md.

-- Wireshark 4.4 and later call a script loaded from a plugins folder with
-- two arguments, its name and its path ("tcpshut", ".../plugins/tcpshut.lua");
-- 4.0 and 4.2 pass none. A script loaded with -X lua_script: gets only the
-- -X lua_scriptN: arguments. So an argument that names this script itself
-- (its name, its file name, its path, or any .lua file) is not a sidecar.
local function sidecar_arguments(...)
    local self_path = ""
    local info = debug and debug.getinfo and debug.getinfo(1, "S")
    if info and type(info.source) == "string" then self_path = string.gsub(info.source, "^@", "") end
    local args = {}
    for i = 1, select("#", ...) do
        local a = select(i, ...)
        if type(a) == "string" and a ~= "" and a ~= "tcpshut" and a ~= self_path
            and not string.find(a, "%.[Ll][Uu][Aa]$") then
            args[#args + 1] = a
        end
    end
    return args
end
local script_args = sidecar_arguments(...)

local byte, find, match, sub, gsub, gmatch, format =
    string.byte, string.find, string.match, string.sub, string.gsub, string.gmatch, string.format
local char, rep, concat = string.char, string.rep, table.concat
local unpack = table.unpack or unpack
local floor = math.floor

-- Stores up to 20 values (a pattern's captures: the row patterns have at
-- most 19) from t[at + 1] on; returns the first (nil: no match). The row
-- parsers reuse one table for them, so a layout known only from the
-- header costs no table per row. Unrolled: a loop of select() calls costs
-- several times as much.
local function keep(t, at, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20)
    t[at + 1], t[at + 2], t[at + 3], t[at + 4], t[at + 5], t[at + 6], t[at + 7], t[at + 8], t[at + 9], t[at + 10] =
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10
    t[at + 11], t[at + 12], t[at + 13], t[at + 14], t[at + 15], t[at + 16], t[at + 17], t[at + 18], t[at + 19],
        t[at + 20] = a11, a12, a13, a14, a15, a16, a17, a18, a19, a20
    return a1
end
local caught = {}

-- The columns as tcpshut writes them today. Columns are read by name (see
-- column_positions): a sidecar may add columns (ignored) or order them
-- otherwise; the row parser is made from the header (fast_parser), and
-- this exact header also takes the fast path of the index (build_index).
local HEADER = "frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,events,calls,summary,severity,related"
local NFIELDS = 16
local MAX_COLUMNS = 64 -- a header with more columns is refused
local MAX_HEADER = 4096 -- bytes; a longer header line is refused
local MAX_FIELD = 4096 -- bytes; a longer field makes its row malformed
local TS_TOLERANCE_NS = 1000 -- a row's ts must be within 1 microsecond of the frame's

-- The native plugin (wireshark/native/tcpshut.c, an epan plugin in C)
-- registers the protocol tcpshut, its fields, expert items, preference and
-- post-dissector itself, and before any Lua script runs (epan_init calls
-- proto_init, which registers the C plugins and their handoffs, before
-- wslua_init). It marks itself with the dissector "tcpshut_native". When it
-- is loaded, this script registers only what the native plugin lacks (the
-- connections table, `-z tcpshut,conns` and the Statistics menu), never a
-- second post-dissector: `tcpshut` below is then a plain table that
-- Wireshark never sees.
local NATIVE = (function()
    local ok, handle = pcall(Dissector.get, "tcpshut_native")
    return ok and handle ~= nil
end)()
local tcpshut = NATIVE and { prefs = {} } or Proto("tcpshut", "TCP Shutdown")
-- ProtoExpert.new registers its abbreviation at once (the native plugin has
-- them): with the native plugin, placeholders that nothing adds to a tree.
local new_expert = NATIVE and function() return {} end or ProtoExpert.new

-- String fields take base.NONE: base.ASCII and base.UNICODE are nil in
-- Wireshark 4.0 to 4.6, and a nil display drops the description.
local pf = {
    events = ProtoField.string("tcpshut.events", "Events", base.NONE, "Event codes, as in the sidecar (;-separated)"),
    event = ProtoField.string("tcpshut.event", "Event", base.NONE, "One event code"),
    sender_state = ProtoField.string("tcpshut.sender_state", "Sender state", base.NONE,
        "RFC 9293 state of the sending side after this segment"),
    receiver_state = ProtoField.string("tcpshut.receiver_state", "Receiver state", base.NONE,
        "RFC 9293 state of the receiving side after this segment"),
    calls = ProtoField.string("tcpshut.calls", "Likely socket calls", base.NONE,
        "Steps joined by >, candidates by |"),
    call = ProtoField.string("tcpshut.call", "Socket call", base.NONE,
        "One call of tcpshut.calls, a step or a candidate (tcpshut.call == \"shut_rd\")"),
    summary = ProtoField.string("tcpshut.summary", "Summary", base.NONE, "One-sentence explanation"),
    severity = ProtoField.string("tcpshut.severity", "Severity", base.NONE, "chat, note, warn or error"),
    conn = ProtoField.uint32("tcpshut.conn", "Connection", base.DEC, nil, nil, "tcpshut connection id"),
    related = ProtoField.framenum("tcpshut.related", "Related frame", base.NONE, nil, nil,
        "The frame this one answers, acknowledges or repeats"),
    relation = ProtoField.string("tcpshut.relation", "Relation", base.NONE,
        "How this frame relates to tcpshut.related (acknowledges the FIN, RST answering this data, ...)"),
    related_by = ProtoField.framenum("tcpshut.related_by", "Related from frame", base.NONE, nil, nil,
        "A later frame whose tcpshut.related is this one (the other way of the link)"),
    related_by_relation = ProtoField.string("tcpshut.related_by_relation", "Relation from it", base.NONE,
        "How that later frame relates to this one (FIN acknowledged by, answered by RST, ...)"),
    -- the connection's verdict (the connections sidecar), on every frame of it
    side = ProtoField.string("tcpshut.side", "Sender side", base.NONE, "client or server: who sent this segment"),
    outcome = ProtoField.string("tcpshut.outcome", "Outcome", base.NONE,
        "The connection's outcome: graceful, reset, refused, half-closed, open or unknown"),
    closer = ProtoField.string("tcpshut.closer", "Closer", base.NONE,
        "Who closed first: client, server, both, none or unknown"),
    client = ProtoField.string("tcpshut.client", "Client", base.NONE, "The connection's client (ip:port)"),
    server = ProtoField.string("tcpshut.server", "Server", base.NONE, "The connection's server (ip:port)"),
    client_calls = ProtoField.string("tcpshut.client_calls", "Client calls", base.NONE,
        "The client's likely socket calls over the whole connection (steps >, candidates |)"),
    server_calls = ProtoField.string("tcpshut.server_calls", "Server calls", base.NONE,
        "The server's likely socket calls over the whole connection (steps >, candidates |)"),
    client_call = ProtoField.string("tcpshut.client_call", "Client call", base.NONE,
        "One call of tcpshut.client_calls (tcpshut.client_call == \"shut_rd\")"),
    server_call = ProtoField.string("tcpshut.server_call", "Server call", base.NONE,
        "One call of tcpshut.server_calls (tcpshut.server_call == \"shut_rd\")"),
    conn_frames = ProtoField.string("tcpshut.conn_frames", "Frames", base.NONE,
        "The connection's first and last frame"),
    connection = ProtoField.none("tcpshut.connection", "Connection", "The connection's verdict (connections sidecar)"),
    notes = ProtoField.string("tcpshut.notes", "Notes", base.NONE, "The connection's notes, ;-joined"),
    tunnel = ProtoField.string("tcpshut.tunnel", "Tunnel", base.NONE,
        "The tunnels the connection came through, outermost first, joined by /"),
    sidecar_file = ProtoField.string("tcpshut.sidecar_file", "Sidecar", base.NONE,
        "The full path of a sidecar that cannot be used, and where it was found (below its error)"),
}
tcpshut.fields = {
    pf.events, pf.event, pf.sender_state, pf.receiver_state, pf.calls, pf.call,
    pf.summary, pf.severity, pf.conn, pf.related, pf.relation, pf.related_by, pf.related_by_relation,
    pf.side, pf.outcome, pf.closer, pf.client, pf.server, pf.client_calls, pf.server_calls,
    pf.client_call, pf.server_call, pf.conn_frames, pf.connection, pf.notes, pf.tunnel, pf.sidecar_file,
}

-- Expert info: one item per event code, its text the same on every row
-- (so Expert Info and -z expert count each code on one line).
local G, S = expert.group, expert.severity
-- BEGIN EVENT TABLE: generated from Event::ALL (crates/engine/src/tracking/event.rs)
-- by lua_event_table() in crates/core/src/wireshark.rs; a test fails when they differ.
-- code, expert group (false: no item, Wireshark's TCP analysis says it), severity, text
local EVENT_SPEC = {
    { "syn", false, S.CHAT, "connection opened (SYN)" },
    { "syn-ack", false, S.CHAT, "connection accepted (SYN-ACK)" },
    { "fin-active", false, S.NOTE, "active close (first FIN)" },
    { "fin-passive", false, S.NOTE, "passive close (FIN after the peer closed)" },
    { "fin-simultaneous", G.SEQUENCE, S.NOTE, "simultaneous close (FINs crossed)" },
    { "fin-order-unknown", false, S.NOTE, "FIN (who closed first cannot be told)" },
    { "fin-retransmit", G.SEQUENCE, S.NOTE, "FIN retransmitted" },
    { "fin-acked", false, S.CHAT, "FIN acknowledged" },
    { "time-wait", G.SEQUENCE, S.CHAT, "side enters TIME-WAIT" },
    { "data-after-fin", G.PROTOCOL, S.NOTE, "data sent after the peer's FIN (half-close in use)" },
    { "data-to-closed", G.SEQUENCE, S.WARN, "data sent to a side that has closed" },
    { "rst-abort", G.SEQUENCE, S.WARN, "connection aborted by RST" },
    { "rst-after-close", G.SEQUENCE, S.WARN, "RST after close (data to a closed socket)" },
    { "rst-refused", G.SEQUENCE, S.WARN, "connection refused (RST answering SYN)" },
    { "rst-forged", G.SECURITY, S.WARN, "RST forged on the path (not sent by the endpoint it names)" },
    { "rst-idle", G.SEQUENCE, S.WARN, "RST after an idle period: a middlebox dropped the connection's state" },
    { "rst-stray", G.SEQUENCE, S.NOTE, "RST for no known connection" },
    { "rst-ignored", G.SECURITY, S.ERROR, "RST ignored by the receiver (out of window or spoofed?)" },
    { "port-reuse", G.SEQUENCE, S.NOTE, "port reused by a new connection" },
    { "mid-stream", G.SEQUENCE, S.CHAT, "capture starts mid-connection" },
    { "options-cut", G.UNDECODED, S.CHAT, "TCP options cut by the snaplen" },
    { "end-unseen", G.SEQUENCE, S.CHAT, "capture ends before the connection does" },
}
-- The codes that give an Info tag (see "The Info column tag"), from info_tag():
-- FIN and RST kinds make its head, with these labels; TAG_CODES a part of their own.
local FIN_CODES = {
    ["fin-active"] = "FIN",
    ["fin-passive"] = "FIN",
    ["fin-simultaneous"] = "FIN (crossed)",
    ["fin-order-unknown"] = "FIN",
    ["fin-retransmit"] = "FIN again",
}
local RST_CODES = {
    ["rst-abort"] = "abort",
    ["rst-after-close"] = "after close",
    ["rst-refused"] = "refused",
    ["rst-forged"] = "forged",
    ["rst-stray"] = "stray",
    ["rst-ignored"] = "ignored",
}
local TAG_CODES = {
    ["data-after-fin"] = true,
    ["data-to-closed"] = true,
    ["port-reuse"] = true,
}
-- END EVENT TABLE
local EVENT_EXPERT = {} -- code -> ProtoExpert, or false: a known code without an item
local experts = {}
for _, e in ipairs(EVENT_SPEC) do
    if e[2] then
        local ex = new_expert("tcpshut." .. gsub(e[1], "-", "_"), "tcpshut " .. e[1] .. ": " .. e[4], e[2], e[3])
        EVENT_EXPERT[e[1]] = ex
        experts[#experts + 1] = ex
    else
        EVENT_EXPERT[e[1]] = false
    end
end
-- Quiet codes: neither an expert item nor an Info tag (syn, syn-ack,
-- fin-acked). Without a tree, a row with quiet events only shows nothing.
local QUIET = {}
for code, ex in pairs(EVENT_EXPERT) do
    if ex == false and not FIN_CODES[code] and not RST_CODES[code] and not TAG_CODES[code] then QUIET[code] = true end
end
local ex_unknown_event = new_expert("tcpshut.unknown_event", "tcpshut: unknown event code",
    G.PROTOCOL, S.NOTE)
local ex_mismatch = new_expert("tcpshut.sidecar_mismatch", "tcpshut: sidecar does not match this capture",
    G.MALFORMED, S.ERROR)
local ex_malformed = new_expert("tcpshut.sidecar_malformed", "tcpshut: malformed sidecar",
    G.MALFORMED, S.ERROR)
local ex_unreadable = new_expert("tcpshut.sidecar_unreadable", "tcpshut: cannot read sidecar",
    G.MALFORMED, S.ERROR)
local ex_short = new_expert("tcpshut.sidecar_short", "tcpshut: the sidecar ends early",
    G.MALFORMED, S.WARN)
experts[#experts + 1] = ex_short
local ex_connections = new_expert("tcpshut.connections_unusable",
    "tcpshut: the connections sidecar cannot be used", G.MALFORMED, S.WARN)
experts[#experts + 1] = ex_connections
local ex_no_sidecar = new_expert("tcpshut.no_sidecar",
    "tcpshut: no sidecar for this capture; `tcpshut annotate CAPTURE` makes CAPTURE.tcpshut.csv beside it",
    G.PROTOCOL, S.CHAT)
experts[#experts + 1] = ex_no_sidecar
experts[#experts + 1] = ex_unknown_event
experts[#experts + 1] = ex_mismatch
experts[#experts + 1] = ex_malformed
experts[#experts + 1] = ex_unreadable
tcpshut.experts = experts

tcpshut.prefs.sidecar = Pref.string("Sidecar CSV file", "",
    "Path of the CAPTURE.tcpshut.csv written by `tcpshut annotate`. Empty: use the script argument, "
    .. "then $TCPSHUT_SIDECAR, then CAPTURE.tcpshut.csv beside the open capture (Linux).")


---------------------------------------------------------------------------
-- Sidecar lookup
---------------------------------------------------------------------------

-- A sidecar must be a regular file: opening a FIFO blocks until someone
-- writes to it (tshark would hang for good), and a device such as
-- /dev/zero never ends. Lua cannot stat, so on Unix `test -f` says (the path
-- reaches the shell single-quoted, quotes in it escaped); Windows has no
-- FIFOs in its file system.
local UNIX = sub(package.config, 1, 1) == "/"
local function shell_quote(s)
    return "'" .. gsub(s, "'", "'\\''") .. "'"
end
-- What is at path: "regular" (a regular file, or a link to one), "other"
-- (something else: a FIFO, a device, a folder), or nil (nothing: stat
-- fails, so no such file, or a folder on the way cannot be searched).
local function file_kind(path)
    if not UNIX then return "regular" end
    if find(path, "%z") or not io.popen then return "other" end
    local q = shell_quote(path)
    local ok, pipe = pcall(io.popen, "if test -f " .. q .. "; then echo regular; elif test -e " .. q
        .. "; then echo other; fi")
    if not ok or not pipe then return "other" end
    local answer = pipe:read("*l")
    pipe:close()
    return answer
end

-- Opens a sidecar (either of them) for reading, only if it is a regular
-- file, and finds its size: the reader reads no more than that (a file
-- that grows meanwhile is read to the size it had). Returns the handle and
-- the size; or nil, why, and whether nothing is at path.
local NOT_REGULAR = "not a regular file (a FIFO, a device or a folder is never read)"
local function open_regular(path)
    local kind = file_kind(path)
    if kind ~= "regular" then return nil, NOT_REGULAR, kind == nil end
    local fh, why = io.open(path, "rb")
    if not fh then return nil, why or "not a readable file" end
    local size = fh:seek("end")
    if not (size and fh:seek("set", 0)) then
        fh:close()
        return nil, "cannot seek in it (not a regular file?)"
    end
    return fh, size
end

local CAPTURE_EXT = { pcap = true, pcapng = true, cap = true, ntar = true, gz = true, zst = true, lz4 = true }

-- Linux: look at the files this process has open and take the most recently
-- opened one (highest fd) that has a CAPTURE.tcpshut.csv sibling, capture-
-- like names first. Returns that sidecar's path, or nil.
local function find_beside_capture()
    local fh = io.open("/proc/self/stat", "r")
    if not fh then return nil end
    local stat = fh:read("*l")
    fh:close()
    local pid = stat and match(stat, "^(%d+) ")
    if not pid or not io.popen then return nil end
    -- pid is digits only; nothing from the sidecar or the capture reaches the shell.
    -- Regular files only, each marked 1 when its CAPTURE.tcpshut.csv is a regular file.
    local ok, pipe = pcall(io.popen,
        "for f in /proc/" .. pid .. "/fd/*; do t=$(readlink \"$f\") && [ -f \"$t\" ] && { s=0; "
        .. "[ -f \"$t.tcpshut.csv\" ] && s=1; printf '%s %s %s\\n' \"${f##*/}\" \"$s\" \"$t\"; }; done 2>/dev/null")
    if not ok or not pipe then return nil end
    local best_fd, best, best_is_cap = -1, nil, false
    for line in pipe:lines() do
        local fd, has_sidecar, target = match(line, "^(%d+) ([01]) (/.+)$")
        if fd and not match(target, "^/proc/") and not match(target, "^/dev/") and not match(target, "^/sys/")
            and not match(target, " %(deleted%)$") and not match(target, "%.tcpshut%.csv$") then
            local ext = match(target, "%.([%w]+)$")
            local is_cap = ext ~= nil and CAPTURE_EXT[ext:lower()] == true
            local n = tonumber(fd)
            if has_sidecar == "1" and ((is_cap and not best_is_cap) or (is_cap == best_is_cap and n > best_fd)) then
                best_fd, best, best_is_cap = n, target .. ".tcpshut.csv", is_cap
            end
        end
    end
    pipe:close()
    return best
end

local BESIDE = "beside the capture"

local function resolve_sidecar()
    local pref = tcpshut.prefs.sidecar
    if NATIVE then
        -- the native plugin's preference (get_preference: Wireshark 3.5 and later)
        local ok, value = pcall(get_preference, "tcpshut.sidecar")
        pref = ok and type(value) == "string" and value or nil
    end
    if pref and pref ~= "" then return pref, "preference" end
    local arg1 = script_args[1]
    if type(arg1) == "string" and arg1 ~= "" then return arg1, "argument lua_script1" end
    local env = os.getenv("TCPSHUT_SIDECAR")
    if env and env ~= "" then return env, "TCPSHUT_SIDECAR" end
    local ok, auto = pcall(find_beside_capture)
    if ok and auto then return auto, BESIDE end
    return nil
end

---------------------------------------------------------------------------
-- Columns by name. Both sidecars are read by their header's column names,
-- resolved to positions once per file: a newer tcpshut may add columns (an
-- older plugin ignores them) or order them otherwise.
---------------------------------------------------------------------------

-- The 1-based position of each column of names (a list) in the header
-- line, and the number of columns; or nil and why: a column of needed
-- missing (all of them named), one of names twice, a quote (column names
-- are plain), more than MAX_COLUMNS columns or MAX_HEADER bytes.
local function column_positions(header, names, needed)
    if #header > MAX_HEADER then return nil, format("header line longer than %d bytes", MAX_HEADER) end
    if find(header, '"', 1, true) then return nil, "quote in the header line" end
    local wanted = {}
    for _, name in ipairs(names) do wanted[name] = true end
    local pos, n = {}, 0
    for name in gmatch(header .. ",", "([^,]*),") do
        n = n + 1
        if n > MAX_COLUMNS then return nil, format("more than %d columns", MAX_COLUMNS) end
        if wanted[name] then
            if pos[name] then return nil, format("column %s appears twice", name) end
            pos[name] = n
        end
    end
    local missing = {}
    for _, name in ipairs(needed) do
        if not pos[name] then missing[#missing + 1] = name end
    end
    if #missing > 0 then
        return nil, format("missing column%s %s in the header line", #missing > 1 and "s" or "", concat(missing, ", "))
    end
    return pos, n
end

local COLUMNS = {} -- the segments' columns, in HEADER's order
for name in gmatch(HEADER, "[^,]+") do COLUMNS[#COLUMNS + 1] = name end
-- Every column but ack (never shown nor compared: a sidecar without it reads as 0).
local NEEDED = {}
for _, name in ipairs(COLUMNS) do
    if name ~= "ack" then NEEDED[#NEEDED + 1] = name end
end

-- The layout of a sidecar whose header is not HEADER: n columns, and for
-- each of COLUMNS (by its index there) its position in the row, or nil;
-- and the index's pattern for its rows without quotes: the bounds of the
-- frame, events and shown fields as position captures (where each lands
-- in them: slot).
local SHOWN = { "calls", "summary", "severity", "related" } -- they make a row other than plain, besides events
local function segment_layout(header)
    local pos, n = column_positions(header, COLUMNS, NEEDED)
    if not pos then return nil, n end
    local at, shown = {}, {}
    for k, name in ipairs(COLUMNS) do at[k] = pos[name] end
    for _, name in ipairs(SHOWN) do shown[pos[name]] = name end
    local fields, slot, caps = {}, {}, 0
    for i = 1, n do
        local name = (i == pos.frame and "frame") or (i == pos.events and "events") or shown[i]
        if name then
            fields[i] = name == "frame" and "()%d+()" or "()[^,\r\n]*()"
            slot[name], caps = caps + 1, caps + 2
        else
            fields[i] = "[^,\r\n]*"
        end
    end
    return { n = n, at = at, frame = pos.frame, events = pos.events, shown = shown,
        index = "^" .. concat(fields, ",") .. "\r?\n", slot = slot }
end

---------------------------------------------------------------------------
-- Loading: one pass over the file, in chunks, builds a compact index.
--
-- Lua's collector walks every live table entry on each cycle, and tshark
-- makes garbage on every frame (the tvb, pinfo and tree objects), so a
-- table with an entry per row would make every frame slower. The index
-- therefore lives in strings, which the collector does not look into:
--
--   flags   one byte per frame number: 0 no row, 1 a "plain" row (events,
--           calls, summary, severity and related all empty, no quote: most
--           rows of a real sidecar), 2 another row without quotes, 3 a row
--           with a quote (its line end is found by skipping quoted text),
--           4 a "quiet" row: no quote, its events all quiet codes (syn,
--           syn-ack, fin-acked: no expert item, no Info tag);
--   blocks  a small table: for every BLOCK frame numbers, the file offset
--           of the first row at or after the block's first frame;
--   direct  the file offset of each row that is neither plain nor quiet,
--           by frame (at most MAX_DIRECT of them: a sidecar of real
--           traffic has about one such row in ten), so the rows shown
--           without a tree are found without skipping the rows between.
--
-- A row is found from the nearest block start (or from the last row found:
-- dissection is mostly sequential) by skipping rows. A plain or quiet row
-- adds no expert item and no tag, so when no tree is built (plain `tshark
-- -r`, Wireshark's first pass without filters) its frame costs one byte
-- lookup: with a real sidecar, all but about one row in ten.
-- No row text is kept: rows are read back through a small window.
---------------------------------------------------------------------------

local CHUNK = 1048576 -- bytes read per step while indexing
local WINDOW = 262144 -- bytes read around a row on demand
local BLOCK = 256 -- frames per block
local NONE = math.huge
-- The events field of a row of HEADER without quotes, the row's first
-- comma at first, its line end at nl: the text between the 11th and 12th
-- commas, found by plain searches (a pattern of bracket classes costs about
-- 100 instructions a character); nil when there is none or it is empty.
local EVENTS_AT = 12
local function events_field(buf, first, nl)
    local c = first
    for _ = 2, EVENTS_AT - 1 do
        c = find(buf, ",", c + 1, true)
        if not c or c > nl then return nil end
    end
    local e = find(buf, ",", c + 1, true)
    if not e or e > nl or e == c + 1 then return nil end
    return sub(buf, c + 1, e - 1)
end
local MAX_QUIET_MEMO = 64 -- distinct events texts remembered while indexing
local MAX_DIRECT = 262144 -- rows whose offset is kept in the direct table

-- A few memos keyed by a row's events text, so the rows of a capture
-- (which repeat a few dozen events texts) do not split and rebuild the
-- same text on every frame: each keeps at most `cap` texts (MAX_MEMO
-- unless given; the sidecar is not trusted to have few), the rest are
-- worked out each time.
local MAX_MEMO = 256
local function memo_of(compute, cap)
    cap = cap or MAX_MEMO
    local memo, size = {}, 0
    return function(events)
        local v = memo[events]
        if v == nil then
            v = compute(events)
            if size < cap then
                size = size + 1
                memo[events] = v
            end
        end
        return v
    end
end

-- Whether every code of events is quiet.
local function all_quiet(events)
    for code in gmatch(events, "[^;]+") do
        if not QUIET[code] then return false end
    end
    return true
end

local state -- per opened capture, reset by init()
local fast_parser -- the fast row parser of a layout (see "On-demand row parsing")

local function new_state()
    return {
        path = nil, source = nil,
        loaded = false,
        fh = nil, flags = nil, blocks = nil, direct = nil, layout = nil, fast = nil, rows = 0, conns_loaded = false, conns = nil,
        conns_err = nil, conns_err_shown = false, back = nil, last = 0, short_frame = nil, note_frame = nil,
        cur_frame = nil, cur_off = nil, -- the last row found
        -- per connection number: its first sender's text and seq base, the other's
        seq_bases = { first_src = {}, first = {}, other_src = {}, other = {} },
        wbuf = nil, wbase = 0, -- the window: wbuf's first byte is at file offset wbase
        err = nil, err_expert = nil, err_frame = nil, -- whole-sidecar error, shown once
    }
end
state = new_state()

-- From pos (the start of a row in buf), the position of the row's line end:
-- the first "\n" outside quotes. Returns it, or nil and whether buf ran out
-- inside a quoted field.
local function row_end(buf, pos)
    while true do
        local s = find(buf, '["\n]', pos)
        if not s then return nil, false end
        if byte(buf, s) == 10 then return s end
        -- skip a quoted section, "" being an escaped quote
        local q = s + 1
        while true do
            local c = find(buf, '"', q, true)
            if not c then return nil, true end
            if byte(buf, c + 1) == 34 then
                if c + 1 == #buf then return nil, true end -- "" or a closing quote: more text decides
                q = c + 2
            else
                pos = c + 1
                break
            end
        end
    end
end

-- The value of up to 10 decimal digits given as byte values.
local function digits(a, b, c, d, e, f, g, h, i, j)
    local n = a - 48
    if not b then return n end
    n = n * 10 + b - 48
    if not c then return n end
    n = n * 10 + c - 48
    if not d then return n end
    n = n * 10 + d - 48
    if not e then return n end
    n = n * 10 + e - 48
    if not f then return n end
    n = n * 10 + f - 48
    if not g then return n end
    n = n * 10 + g - 48
    if not h then return n end
    n = n * 10 + h - 48
    if not i then return n end
    n = n * 10 + i - 48
    if not j then return n end
    return n * 10 + j - 48
end

-- For a row without quotes of a sidecar with another layout, at pos: its
-- frame number and its flag, from the layout's index pattern; nil when the
-- row does not fit it (layout_row then walks it field by field).
local function layout_row_plain(buf, pos, layout, quiet_of)
    local c, sl = caught, layout.slot
    if not keep(c, 0, match(buf, layout.index, pos)) then return nil end
    local f = sl.frame
    if c[f + 1] - c[f] > 10 then return nil end
    local frame = digits(byte(buf, c[f], c[f + 1] - 1))
    local filled = false
    for _, name in ipairs(SHOWN) do
        local k = sl[name]
        if c[k + 1] > c[k] then filled = true end
    end
    local e = sl.events
    if c[e + 1] == c[e] then return frame, filled and 2 or 1 end
    return frame, quiet_of(sub(buf, c[e], c[e + 1] - 1)) and 4 or 2
end

-- For a row of a sidecar with another layout, from pos to its line end
-- en: its frame number and its flag in the index (see above), walking its
-- fields (quoted ones too); nil when the frame field is not a number of
-- at most 10 digits. A field that is not well formed makes the row flag 3,
-- whose parser then says what is wrong.
local function layout_row(buf, pos, en, layout, quiet_of)
    local want_frame, want_events, shown = layout.frame, layout.events, layout.shown
    local i, p, frame, events, quoted, filled = 0, pos, nil, "", false, false
    while true do
        i = i + 1
        local s, e, after -- the value is buf[s..e]; after: the byte after the field
        local in_quotes = byte(buf, p) == 34
        if in_quotes then
            quoted = true
            local c = p
            repeat
                c = find(buf, '"', c + 1, true)
                if not c or c > en then return frame, 3 end
                local doubled = byte(buf, c + 1) == 34
                if doubled then c = c + 1 end
            until not doubled
            s, e, after = p + 1, c - 1, c + 1
        else
            after = find(buf, "[,\n]", p) -- at most en, a line end
            s, e = p, after - 1
            if after == en and e >= s and byte(buf, e) == 13 then e = e - 1 end
        end
        if i == want_frame then
            local _, d = find(buf, "^%d+", s)
            if in_quotes or d ~= e or e - s >= 10 then return nil end
            frame = digits(byte(buf, s, e))
        elseif i == want_events then
            if e >= s then events = sub(buf, s, e) end
        elseif shown[i] and e >= s then
            filled = true
        end
        if byte(buf, after) ~= 44 then break end
        p = after + 1
    end
    if quoted then return frame, 3 end
    if events == "" then return frame, filled and 2 or 1 end
    return frame, quiet_of(events) and 4 or 2
end

local function out_of_order(row, frame, last)
    return format("row %d: frame %s does not follow frame %d (rows must be in increasing frame order)",
        row, frame, last)
end

-- Reads the whole file once. Returns flags, blocks, row count, the last
-- frame, the direct offsets and the layout (nil for HEADER); or nil and an
-- error. Per row it only looks at the frame number, the line end and the
-- last bytes before it, and creates no string (new strings cost the
-- collector too).
local function build_index(fh, size)
    local left = size -- bytes not read yet: a file that grows is read to the size it had
    local function read_chunk()
        local want = left < CHUNK and left or CHUNK
        local got = want > 0 and fh:read(want) or nil
        left = left - (got and #got or 0)
        return got, not got or #got < CHUNK or left == 0
    end
    local buf, eof = read_chunk()
    buf = buf or ""
    local base = 0 -- file offset of buf's first byte
    local pos = 1
    local function refill() -- keeps buf[pos..], appends the next chunk
        local more
        more, eof = read_chunk()
        base = base + pos - 1
        buf = sub(buf, pos) .. (more or "")
        pos = 1
    end
    if sub(buf, 1, 3) == "\239\187\191" then pos = 4 end -- UTF-8 BOM
    local nl = find(buf, "\n", pos, true)
    while not nl and not eof and #buf - pos < MAX_HEADER do
        refill()
        nl = find(buf, "\n", pos, true)
    end
    if not nl then
        if #buf == 0 then return nil, "the file is empty (no header line)" end
        if not eof then return nil, format("header line longer than %d bytes", MAX_HEADER) end
        return nil, "truncated: the header line has no line end"
    end
    local header = sub(buf, pos, nl - 1)
    if byte(header, -1) == 13 then header = sub(header, 1, -2) end
    local layout -- nil: the columns of HEADER, in its order (the fast paths)
    if header ~= HEADER then
        local why
        layout, why = segment_layout(header)
        if not layout then return nil, why end
    end
    pos = nl + 1
    local parts, np = {}, 0 -- finished pieces of flags
    local fb, nb = {}, 0 -- flag bytes not yet in a piece
    local blocks, next_block = {}, 0 -- next_block: the next block without an offset
    local direct, ndirect = {}, 0
    local rows, last, blank = 0, 0, false
    local quiet_of = memo_of(all_quiet, MAX_QUIET_MEMO) -- events text -> all quiet
    local q = find(buf, '"', pos, true) or NONE -- the next quote at or after pos
    while true do
        nl = find(buf, "\n", pos, true)
        if not nl then
            if eof then
                if pos <= #buf and not (pos == #buf and byte(buf, pos) == 13) then
                    return nil, "truncated: the last row has no line end"
                end
                break
            end
            refill()
            q = find(buf, '"', pos, true) or NONE
        else
            if nl == pos or (nl == pos + 1 and byte(buf, pos) == 13) then
                blank = true -- blank lines are allowed at the end only
                pos = nl + 1
            else
                if blank then return nil, format("row %d: does not start with a frame number", rows + 1) end
                local n, nxt, flag
                if layout then
                    -- a quote in this row: its line end is the first one outside quotes
                    local en, in_quote = nl, false
                    if q <= nl then en, in_quote = row_end(buf, pos) end
                    if en then
                        if q > nl then n, flag = layout_row_plain(buf, pos, layout, quiet_of) end
                        if not n then n, flag = layout_row(buf, pos, en, layout, quiet_of) end
                        if not n then return nil, format("row %d: its frame field is not a frame number", rows + 1) end
                        if n <= last then return nil, out_of_order(rows + 1, n, last) end
                        nxt = en + 1
                        if q <= nl then
                            flag = 3
                            q = find(buf, '"', nxt, true) or NONE
                        end
                    elseif eof then
                        if in_quote then
                            return nil, format("truncated: row %d has an unterminated quoted field", rows + 1)
                        end
                        return nil, format("truncated: row %d has no line end", rows + 1)
                    end
                else
                    local _, e = find(buf, "^%d+,", pos)
                    if not e then return nil, format("row %d: does not start with a frame number", rows + 1) end
                    n = e - pos <= 10 and digits(byte(buf, pos, e - 1))
                    if not n or n <= last then return nil, out_of_order(rows + 1, sub(buf, pos, e - 1), last) end
                    if q > nl then
                        nxt = nl + 1
                        local c1, c2, c3, c4, c5 = byte(buf, nl - 5, nl - 1)
                        flag = (c1 == 44 and c2 == 44 and c3 == 44 and c4 == 44 and c5 == 44) and 1 or 2
                        if flag == 2 then
                            local events = events_field(buf, e, nl)
                            if events and quiet_of(events) then flag = 4 end
                        end
                    else
                        -- a quote in this row: its line end is the first one outside quotes
                        local en, in_quote = row_end(buf, pos)
                        if en then
                            nxt = en + 1
                            flag = 3
                            q = find(buf, '"', nxt, true) or NONE
                        elseif eof then
                            if in_quote then
                                return nil, format("truncated: row %d (frame %d) has an unterminated quoted field",
                                    rows + 1, n)
                            end
                            return nil, format("truncated: row %d (frame %d) has no line end", rows + 1, n)
                        end
                    end
                end
                if nxt then
                    -- frames last+1 .. n-1 have no row
                    if n - last > 64 then
                        np = np + 1
                        parts[np] = char(unpack(fb, 1, nb))
                        nb = 0
                        np = np + 1
                        parts[np] = rep("\0", n - last - 1)
                    else
                        for _ = last + 1, n - 1 do
                            nb = nb + 1
                            fb[nb] = 0
                        end
                    end
                    nb = nb + 1
                    fb[nb] = flag
                    if (flag == 2 or flag == 3) and ndirect < MAX_DIRECT then
                        ndirect = ndirect + 1
                        direct[n] = base + pos - 1
                    end
                    if nb >= 4000 then
                        np = np + 1
                        parts[np] = char(unpack(fb, 1, nb))
                        nb = 0
                    end
                    if n > next_block * BLOCK then
                        local off = base + pos - 1
                        local b = floor((n - 1) / BLOCK)
                        for k = next_block, b do blocks[k] = off end
                        next_block = b + 1
                    end
                    last = n
                    rows = rows + 1
                    pos = nxt
                else
                    refill()
                    q = find(buf, '"', pos, true) or NONE
                end
            end
        end
    end
    np = np + 1
    parts[np] = char(unpack(fb, 1, nb))
    return concat(parts), blocks, rows, last, direct, layout
end

local function load_sidecar()
    state.loaded = true
    local path = state.path
    if not path then return end
    local fh, size = open_regular(path)
    local why
    if not fh then why, size = size, nil end
    local flags, blocks, rows, last, direct, layout
    if fh then
        local ok
        ok, flags, blocks, rows, last, direct, layout = pcall(build_index, fh, size)
        if not ok then
            why, flags = flags, nil
            fh:close()
            fh = nil
        end
    end
    if not fh then
        state.err = format("tcpshut: cannot read sidecar: %s; no annotations shown (sidecar %s, from %s)",
            why or "not a readable file", path, state.source)
        state.err_expert = ex_unreadable
        return
    end
    if not flags then
        fh:close()
        state.err = format("tcpshut: malformed sidecar: %s; no annotations shown (sidecar %s, from %s)",
            blocks, path, state.source)
        state.err_expert = ex_malformed
        return
    end
    state.fh, state.flags, state.blocks, state.rows, state.last = fh, flags, blocks, rows, last
    state.direct, state.layout, state.fast = direct, layout, fast_parser(layout)
    collectgarbage()
end

---------------------------------------------------------------------------
-- The connections sidecar (CAPTURE.tcpshut.connections.csv beside the
-- segments' CAPTURE.tcpshut.csv): each connection's outcome, closer and
-- calls, shown on every frame of it. Optional: without it the rows are
-- shown as before. Loaded on first need; one string per connection (its
-- checked line), so the collector has one entry per connection to walk.
---------------------------------------------------------------------------

-- Its columns, read by name like the segments' (column_positions); each
-- line is kept in this order. Sidecars written before the tunnel column
-- lack it: their lines get an empty one.
local CONNS_HEADER = "conn,client,server,outcome,closer,client_calls,server_calls,first_frame,last_frame,notes,tunnel"
local CONNS_COLUMNS = {}
for name in gmatch(CONNS_HEADER, "[^,]+") do CONNS_COLUMNS[#CONNS_COLUMNS + 1] = name end
local CONNS_NEEDED = { unpack(CONNS_COLUMNS, 1, #CONNS_COLUMNS - 1) } -- all but tunnel
local CONN_LINE = "^(%d+),([%w%.:%[%]%%_-]+),([%w%.:%[%]%%_-]+),([a-z-]+),([a-z]+),([%w_>|-]*),([%w_>|-]*),"
    .. "(%d+),(%d+),([a-z0-9;-]*),([%w%.:=<>/ %%-]*)$"
local MAX_CONN_LINE = 1024
local OUTCOMES = { graceful = true, reset = true, refused = true, ["half-closed"] = true, open = true, unknown = true }
local CLOSERS = { client = true, server = true, both = true, none = true, unknown = true }

-- The connections sidecar's path for a sidecar path (nil when it does not end in .csv).
local function connections_path(path)
    if not match(path, "%.csv$") then return nil end
    return sub(path, 1, -5) .. ".connections.csv"
end

-- Calls each(line) for every line of fh from its current offset to size
-- (the line without its "\n"; false for a line longer than max bytes,
-- which is never held whole), reading CHUNK bytes at a time: the work and
-- the memory stay bounded whatever the file holds.
local function each_line(fh, size, max, each)
    local left = size - fh:seek()
    local pending, long = "", false
    while left > 0 do
        local chunk = fh:read(left < CHUNK and left or CHUNK)
        if not chunk then break end
        left = left - #chunk
        local p = 1
        while true do
            local nl = find(chunk, "\n", p, true)
            if not long then
                local piece = sub(chunk, p, (nl or #chunk + 1) - 1)
                if #pending + #piece > max then
                    pending, long = "", true
                else
                    pending = pending .. piece
                end
            end
            if not nl then break end
            each(not long and pending)
            pending, long = "", false
            p = nl + 1
        end
    end
    if long or pending ~= "" then each(not long and pending) end
end

-- Reads the connections sidecar into state.conns (id -> checked line).
-- Every line is checked; a bad line is left out and counted. None is not
-- an error (older sidecars have none); one that is there but cannot be
-- read (not a regular file, no permission) is said once, like the
-- segments' sidecar's problems.
local function load_connections()
    state.conns_loaded = true
    local path = state.path and connections_path(state.path)
    if not path then return end
    local fh, size, absent = open_regular(path)
    if not fh then
        if not absent then
            -- size is why; io.open's reasons name the file already
            state.conns_err = size == NOT_REGULAR and path .. ": " .. size or size
        end
        return
    end
    local first = fh:read(MAX_HEADER + 2)
    local raw = first and match(first, "^([^\n]*)\n")
    local header = raw
    if header and byte(header, -1) == 13 then header = sub(header, 1, -2) end
    local pos, ncols
    if header then pos, ncols = column_positions(header, CONNS_COLUMNS, CONNS_NEEDED) end
    if not pos then
        fh:close()
        state.conns_err = format("%s in %s", ncols or "no header line", path)
        return
    end
    -- nil: the columns of CONNS_HEADER in its order, lines kept as they are
    local at
    if header ~= CONNS_HEADER then
        at = {}
        for k, name in ipairs(CONNS_COLUMNS) do at[k] = pos[name] or false end
    end
    fh:seek("set", #raw + 1)
    local conns, bad, first_bad = {}, 0, nil
    local n = 0
    each_line(fh, size, MAX_CONN_LINE + 1, function(line)
        n = n + 1
        if line and byte(line, -1) == 13 then line = sub(line, 1, -2) end
        if at and line and line ~= "" and #line <= MAX_CONN_LINE then
            -- into CONNS_HEADER's order (no field needs quoting)
            local fields, k = {}, 0
            for f in gmatch(line .. ",", "([^,]*),") do
                k = k + 1
                fields[k] = f
            end
            local ordered = {}
            for i, c in ipairs(at) do ordered[i] = c and fields[c] or "" end
            line = k == ncols and concat(ordered, ",") or nil -- nil: a wrong number of fields
        end
        local id, client, server, outcome, closer, ccalls, scalls, first, last
        if line and #line <= MAX_CONN_LINE then
            id, client, server, outcome, closer, ccalls, scalls, first, last = match(line, CONN_LINE)
        end
        if id and #id <= 10 and tonumber(id) <= 4294967295 and OUTCOMES[outcome] and CLOSERS[closer]
            and #first <= 15 and #last <= 15 and tonumber(first) <= tonumber(last) then
            local key = tonumber(id)
            if conns[key] == nil then conns[key] = line end
        elseif line ~= "" then
            bad = bad + 1
            first_bad = first_bad or n + 1
        end
    end)
    fh:close()
    state.conns = conns
    if bad > 0 then
        state.conns_err = format("%d malformed line(s), the first line %d, left out of %s", bad, first_bad, path)
    end
end

-- Whether the record of connection conn (its client and server) belongs
-- to a row sent from src to dst; when not, the first such record is named
-- in state.conns_err (a record that does not belong to this sidecar is
-- never shown).
local function belongs(conn, client, server, src, dst)
    if (client == src and server == dst) or (client == dst and server == src) then return true end
    state.conns_err = state.conns_err or format("connection %s is %s > %s there, its rows %s > %s",
        conn, client, server, src, dst)
    return false
end

-- The checked line of connection conn, or nil.
local function connection_line(conn)
    if not state.conns_loaded then load_connections() end
    local conns = state.conns
    return conns and conns[tonumber(conn)]
end

-- The connection record of a row: client, server, outcome, closer, client
-- calls, server calls, first frame, last frame, notes, tunnel; nil when there is
-- none, or when it does not belong to the row.
local function connection_of(conn, src, dst)
    local line = connection_line(conn)
    if not line then return nil end
    local _, client, server, outcome, closer, ccalls, scalls, first, last, notes, tunnel = match(line, CONN_LINE)
    if not belongs(conn, client, server, src, dst) then return nil end
    return client, server, outcome, closer, ccalls, scalls, first, last, notes, tunnel
end

-- Only the record's client (all the Info tag needs, without a tree): its
-- line was checked whole when loaded, so its first two fields are read
-- without the other nine.
local CONN_ENDS = "^%d+,([^,]*),([^,]*),"
local function connection_client(conn, src, dst)
    local line = connection_line(conn)
    if not line then return nil end
    local client, server = match(line, CONN_ENDS)
    if not belongs(conn, client, server, src, dst) then return nil end
    return client
end

---------------------------------------------------------------------------
-- The Info column tag: on frames with events, a short bracket at the end
-- of Info ("[FIN client: shut_wr]", "[RST client abort: close_unread|linger0]")
-- so the teardown shows in the packet list, the Flow Graph and printouts.
---------------------------------------------------------------------------

-- (FIN_CODES, RST_CODES and TAG_CODES, the codes that make a tag, are
-- defined with the event table.)

-- (memo_of, MAX_MEMO: with the indexer's helpers above.)

-- The tag's shape for an events text: false when it gives no tag, else
-- { head's text before the side, after the side, the extra parts joined }.
-- The head is the first FIN or RST kind; further RST kinds and the
-- TAG_CODES follow as parts of their own, in the row's order.
local tag_shape = memo_of(function(events)
    local pre, post, extra = nil, nil, {}
    for code in gmatch(events, "[^;]+") do
        local fin, rst = FIN_CODES[code], RST_CODES[code]
        if fin and not pre then
            pre, post = fin, ""
        elseif rst and not pre then
            pre, post = "RST", " " .. rst
        elseif rst then
            extra[#extra + 1] = "RST " .. rst
        elseif TAG_CODES[code] then
            extra[#extra + 1] = code
        end
    end
    if not pre and #extra == 0 then return false end
    return { pre, post, concat(extra, "; ") }
end)

local function info_tag(events, calls, side)
    local shape = tag_shape(events)
    if not shape then return nil end
    local pre, post, extra = shape[1], shape[2], shape[3]
    if not pre then return "[" .. extra .. "]" end
    return "[" .. pre .. " " .. side .. post .. (calls ~= "" and ": " .. calls or "")
        .. (extra ~= "" and "; " .. extra or "") .. "]"
end

-- Whether the events give the row an Info tag.
local function tagged(events)
    return tag_shape(events) ~= false
end

-- Reads the window starting at file offset off, at least size bytes.
local function load_window(off, size)
    local fh = state.fh
    if not fh:seek("set", off) then return nil end
    local w = fh:read(size)
    state.wbuf, state.wbase = w, off
    return w
end

-- The window holding the row that starts at file offset off: returns the
-- window and the row's position in it, or nil. With complete, the whole row
-- (up to its line end outside quotes) is in the window, growing it if needed;
-- without, only its start is (the fast parser needs the line end anyway and
-- fails without it; the caller then asks again with complete).
local function row_at(off, complete)
    local w = state.wbuf
    if w then
        local rel = off - state.wbase + 1
        if rel >= 1 and rel <= #w and (not complete or row_end(w, rel)) then return w, rel end
    end
    local size = WINDOW
    while true do
        w = load_window(off, size)
        if not w then return nil end
        if row_end(w, 1) then return w, 1 end
        if #w < size then return nil end
        size = size * 4
    end
end

-- The file offset of the row after the row at off (whose flag is given).
local function skip_row(off, flag)
    local w = state.wbuf
    local rel = w and off - state.wbase + 1
    if not w or rel < 1 or rel > #w then
        w = load_window(off, WINDOW)
        if not w then return nil end
        rel = 1
    end
    local e
    if flag == 3 then e = row_end(w, rel) else e = find(w, "\n", rel, true) end
    if not e then
        w, rel = row_at(off, true)
        if not w then return nil end
        e = row_end(w, rel)
    end
    return state.wbase + e
end

-- The file offset of frame num's row (its flag is not 0), or nil.
local function locate(num)
    local flags = state.flags
    local f, off = num, state.direct[num]
    if off then
        state.cur_frame, state.cur_off = f, off
        return off
    end
    f, off = state.cur_frame, state.cur_off
    if not f or f > num or num - f > BLOCK then
        local b = floor((num - 1) / BLOCK)
        off = state.blocks[b]
        f = off and find(flags, "[^\0]", b * BLOCK + 1)
        if not f then return nil end
    end
    while f < num do
        off = skip_row(off, byte(flags, f))
        if not off then return nil end
        f = find(flags, "[^\0]", f + 1)
    end
    state.cur_frame, state.cur_off = f, off
    return off
end

---------------------------------------------------------------------------
-- On-demand row parsing and checking
---------------------------------------------------------------------------

-- Parses the CSV row starting at pos, of nfields fields (NFIELDS when
-- not given). Returns the list of fields, or nil and why.
local function parse_row(data, pos, nfields)
    nfields = nfields or NFIELDS
    local fields, n = {}, 0
    while true do
        n = n + 1
        if n > nfields then return nil, "more than " .. nfields .. " fields" end
        local val, c
        if byte(data, pos) == 34 then
            local parts, p = {}, pos + 1
            while true do
                local q = find(data, '"', p, true)
                if not q then return nil, "unterminated quoted field" end
                parts[#parts + 1] = sub(data, p, q - 1)
                if byte(data, q + 1) == 34 then
                    parts[#parts + 1] = '"'
                    p = q + 2
                else
                    pos = q + 1
                    break
                end
            end
            val = concat(parts)
            c = byte(data, pos)
            if c == 13 and byte(data, pos + 1) == 10 then c = 10 end
        else
            local s = find(data, "[,\n]", pos)
            val = sub(data, pos, (s or #data + 1) - 1)
            if byte(val, -1) == 13 then val = sub(val, 1, -2) end
            if find(val, '"', 1, true) then return nil, "quote inside an unquoted field " .. n end
            pos = s or #data + 1
            c = byte(data, pos)
        end
        if #val > MAX_FIELD then
            return nil, format("field %d is longer than %d bytes", n, MAX_FIELD)
        end
        fields[n] = val
        if c == 44 then
            pos = pos + 1
        elseif c == 10 or c == nil then
            break
        else
            return nil, "text after the closing quote of field " .. n
        end
    end
    if n ~= nfields then return nil, format("%d fields instead of %d", n, nfields) end
    return fields
end

-- The row at pos in the order of HEADER's columns, whatever the sidecar's
-- layout (nil: HEADER's own); or nil and why.
local function parse_row_as_header(data, pos, layout)
    if not layout then return parse_row(data, pos) end
    local raw, why = parse_row(data, pos, layout.n)
    if not raw then return nil, why end
    local r = {}
    for k = 1, NFIELDS do
        local at = layout.at[k]
        r[k] = at and raw[at] or "0" -- only ack may be absent
    end
    return r
end

---------------------------------------------------------------------------
-- Related frames, both ways. A row's `related` names an earlier frame; the
-- kind of link follows from the row's events. The way back (from the
-- earlier frame to the rows naming it) is found by one pass over the
-- sidecar the first time a tree is shown, so plain `tshark -r` never pays.
---------------------------------------------------------------------------

-- The link's kind, forward and backward, from the linking row's events.
local RELATIONS = {
    { "rst-refused", "refuses this SYN", "refused by the RST" },
    { "rst-after-close", "RST answering this data", "answered by an RST" },
    { "rst-abort", "RST answering this segment", "answered by an RST" },
    { "rst-stray", "RST answering this segment", "answered by an RST" },
    { "rst-ignored", "RST answering this segment", "answered by an RST" },
    { "rst-forged", "RST answering this segment", "answered by an RST" },
    { "fin-retransmit", "retransmits this FIN", "FIN retransmitted" },
    { "data-to-closed", "data sent after this FIN", "FIN followed by data" },
    { "fin-acked", "acknowledges this FIN", "FIN acknowledged" },
    { "syn-ack", "accepts this SYN", "SYN accepted" },
}
local function relation_of(events)
    for _, r in ipairs(RELATIONS) do
        if find(";" .. events .. ";", ";" .. r[1] .. ";", 1, true) then return r[2], r[3] end
    end
    return "related", "related"
end

-- frame -> "later,later2" (the rows naming it, in order); built once.
local ROW_START = "^%d+,%d+%.%d+,"
local ROW_EVENTS = "^(%d+),[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,([a-z0-9;-]*),"
local function back_links()
    if state.back then return state.back end
    local back = {}
    state.back = back
    local fh = state.path and io.open(state.path, "rb")
    if not fh then return back end
    local budget = state.rows + 1 -- never more lines than the index counted rows
    local layout = state.layout
    for line in fh:lines() do
        budget = budget - 1
        if budget < 0 then break end
        local frame, events, rel
        if layout then
            local r = parse_row_as_header(line, 1, layout)
            if r and find(r[1], "^%d+$") and find(r[12], "^[a-z0-9;-]*$") and find(r[16], "^%d+$") then
                frame, events, rel = r[1], r[12], r[16]
            end
        else
            rel = match(line, ",(%d+)\r?$")
            if rel and find(line, ROW_START) then frame, events = match(line, ROW_EVENTS) end
        end
        if frame and #rel <= 10 then
            local r = tonumber(rel)
            local entry = frame .. ":" .. events
            back[r] = back[r] and (back[r] .. " " .. entry) or entry
        end
    end
    fh:close()
    return back
end

local function valid_text(s)
    if find(s, "%c") then return false, "control character" end
    if find(s, "[\128-\255]") then
        local rest = gsub(s, "[\32-\126]", "")
        rest = gsub(rest, "[\194-\223][\128-\191]", "")
        rest = gsub(rest, "[\224-\239][\128-\191][\128-\191]", "")
        rest = gsub(rest, "[\240-\244][\128-\191][\128-\191][\128-\191]", "")
        if rest ~= "" then return false, "invalid UTF-8" end
    end
    return true
end

local NAMES = HEADER -- for messages
local function field_name(i)
    local k = 0
    for name in NAMES:gmatch("[^,]+") do
        k = k + 1
        if k == i then return name end
    end
    return tostring(i)
end

local function check_uint(s, max)
    if not match(s, "^%d+$") or #s > 10 then return false end
    return tonumber(s) <= max
end

-- The values docs/sidecar.md allows.
local STATES = {}
for name in gmatch("UNKNOWN SYN-SENT SYN-RECEIVED ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 CLOSE-WAIT CLOSING LAST-ACK "
    .. "TIME-WAIT CLOSED", "%S+") do
    STATES[name] = true
end
local SEVERITIES = { [""] = true, chat = true, note = true, warn = true, error = true }

-- Fast path for the common row shape: every field unquoted except possibly
-- the summary, which then holds no quote of its own. The patterns are
-- made from the sidecar's header (so a sidecar with its columns in another
-- order, or with more of them, takes this path too): each known column
-- checks its character set (FAST_FIELD), a column this plugin does not
-- know is skipped if unquoted; fields that are not shown are not copied
-- out (ack's () captures give only its bounds, to check its length).
-- Rows of any other shape, or that fail a check here, take parse_row +
-- check_row, which say what is wrong.
local FAST_FIELD = {
    frame = "%d+", -- the index found the row by it
    ts = "(%d+)%.(%d+)",
    conn = "(%d+)",
    src = "([%w%.:%[%]%%_-]*)",
    dst = "([%w%.:%[%]%%_-]*)",
    flags = "([FSRPAUEC]*)",
    seq = "(%d+)",
    ack = "()%d+()",
    len = "(%d+)",
    sender_state = "([A-Z0-9-]*)",
    receiver_state = "([A-Z0-9-]*)",
    events = "([a-z0-9;-]*)",
    calls = "([%w_>|-]*)",
    severity = "([a-z]*)",
    related = "(%d*)",
}
local OTHER_FIELD = '[^,"\n]*'
-- the values a column's captures give, when not one named as the column
local FAST_VALUES = { frame = {}, ts = { "ts_s", "ts_f" }, ack = { "ack_from", "ack_to" } }

-- The fast parser of a layout (nil: HEADER): the pattern of the columns
-- before the summary (ending with the summary's position), the patterns
-- of the rest after a quoted and after an unquoted summary, and where
-- each value lands in the captures (see fast_row).
function fast_parser(layout)
    local names = {} -- position -> known column name
    local n = layout and layout.n or NFIELDS
    for k, name in ipairs(COLUMNS) do
        local at = not layout and k or layout.at[k]
        if at then names[at] = name end
    end
    local head, tail, slot = {}, {}, {}
    local part, caps = head, 0
    for i = 1, n do
        local name = names[i]
        if name == "summary" then
            -- the summary's position (head), then the summary itself
            part, caps = tail, caps + 2
            slot.summary = caps
        else
            part[#part + 1] = FAST_FIELD[name] or OTHER_FIELD
            for _, value in ipairs(FAST_VALUES[name] or { name }) do
                caps = caps + 1
                slot[value] = caps
            end
        end
    end
    local rest = (#tail > 0 and "," .. concat(tail, ",") or "") .. "\r?\n"
    return {
        head = "^" .. concat(head, ",") .. (#head > 0 and ",()" or "()"),
        after_quoted = "^" .. rest,
        after_plain = '^([^,"\n]*)' .. rest,
        summary_pos = slot.summary - 1, -- where head's last capture lands
        slot = slot,
    }
end

-- Returns secs, fraction (the ts text's two parts), conn, sender_state,
-- receiver_state, events, calls, summary, severity, related, src, dst,
-- flags, seq, len; or nil.
local function fast_row(w, pos, fast)
    local c, at = caught, fast.summary_pos
    if not keep(c, 0, match(w, fast.head, pos)) then return nil end
    local p = c[at]
    if byte(w, p) == 34 then
        -- a quoted summary, "" standing for a quote
        local q = p
        repeat
            q = find(w, '"', q + 1, true)
            if not q then return nil end
            local doubled = byte(w, q + 1) == 34
            if doubled then q = q + 1 end
        until not doubled
        if not keep(c, at + 1, match(w, fast.after_quoted, q + 1)) then return nil end
        local summary = sub(w, p + 1, q - 1)
        if find(summary, '"', 1, true) then summary = gsub(summary, '""', '"') end
        c[at + 1] = summary
    elseif not keep(c, at, match(w, fast.after_plain, p)) then
        return nil
    end
    local sl = fast.slot
    local ts_s, ts_f, conn, src, dst, tcp_flags, seq, len, ss, rs, events, calls, summary, sev, rel =
        c[sl.ts_s], c[sl.ts_f], c[sl.conn], c[sl.src], c[sl.dst], c[sl.flags], c[sl.seq], c[sl.len],
        c[sl.sender_state], c[sl.receiver_state], c[sl.events], c[sl.calls], c[sl.summary], c[sl.severity],
        c[sl.related]
    -- lengths and ranges the pattern cannot express
    if #ts_s > 12 or #ts_f ~= 9 or #conn > 9 or #src > 64 or #dst > 64 or #seq > 9
        or (sl.ack_from and c[sl.ack_to] - c[sl.ack_from] > 9)
        or #len > 9 or #rel > 9 or #ss > 32 or #rs > 32 or #calls > 256 or #sev > 16 then
        return nil
    end
    if events ~= "" and (#events > 256 or find(events, ";;", 1, true) or byte(events, 1) == 59
            or byte(events, -1) == 59) then
        return nil
    end
    if summary ~= "" and (#summary > MAX_FIELD or find(summary, "[%c\128-\255]")) then return nil end
    if not STATES[ss] or not STATES[rs] or not SEVERITIES[sev] then return nil end
    return ts_s, ts_f, conn, ss, rs, events, calls, summary, sev, rel, src, dst, tcp_flags, seq, len
end

-- Checks every field; returns true or false and why.
local function check_row(r)
    for i = 1, NFIELDS do
        local ok, why = valid_text(r[i])
        if not ok then return false, why .. " in field " .. field_name(i) end
    end
    if not match(r[2], "^%d+%.%d%d%d%d%d%d%d%d%d$") or #match(r[2], "^%d+") > 12 then
        return false, "bad ts \"" .. r[2] .. "\" (seconds with exactly 9 decimals)"
    end
    if not check_uint(r[3], 4294967295) then return false, "bad conn \"" .. r[3] .. "\"" end
    if not match(r[6], "^[FSRPAUEC]*$") then return false, "bad flags \"" .. r[6] .. "\"" end
    for i = 7, 9 do
        if not check_uint(r[i], 4294967295) then
            return false, format("bad %s \"%s\"", field_name(i), r[i])
        end
    end
    for i = 10, 11 do
        if not STATES[r[i]] then
            return false, format("bad %s \"%s\" (not an RFC 9293 state name)", field_name(i), r[i])
        end
    end
    if r[12] ~= "" and not match(r[12], "^[a-z0-9-]+$") and not match(r[12], "^[a-z0-9-]+[a-z0-9;-]*[a-z0-9-]$") then
        return false, "bad events \"" .. r[12] .. "\""
    end
    if find(r[12], ";;", 1, true) then return false, "bad events \"" .. r[12] .. "\"" end
    if not match(r[13], "^[%w_>|-]*$") then return false, "bad calls \"" .. r[13] .. "\"" end
    if not SEVERITIES[r[15]] then
        return false, "bad severity \"" .. r[15] .. "\" (chat, note, warn, error or empty)"
    end
    if r[16] ~= "" and not check_uint(r[16], 4294967295) then return false, "bad related \"" .. r[16] .. "\"" end
    return true
end

-- Whether the row's ts (secs and fraction, as text) is within 1 microsecond of
-- the frame's time. Integer arithmetic on seconds and nanoseconds, never a
-- formatted float. The frame's time comes from pinfo.abs_ts, a double that is
-- good to about 0.12 us for present-day epochs. (A Field extractor for
-- frame.time_epoch would be exact, but it forces every dissector to build a
-- tree for every frame, which costs more than the whole plugin.)
-- Returns whether they match, and the frame's time (secs, nsecs).
local function ts_matches(ts_s, ts_f, pinfo)
    local t = pinfo.abs_ts
    local fs = floor(t)
    local fns = floor((t - fs) * 1e9 + 0.5)
    local rns = tonumber(ts_f) -- exactly 9 digits: nanoseconds
    local d = (tonumber(ts_s) - fs) * 1000000000 + (rns - fns)
    return d > -TS_TOLERANCE_NS and d < TS_TOLERANCE_NS
end

-- The frame's time as text, to the microsecond: all a double of a
-- present-day epoch holds exactly (more digits would be the double's noise).
local function frame_time_text(pinfo)
    local t = pinfo.abs_ts
    local secs = floor(t)
    local usecs = floor((t - secs) * 1e6 + 0.5)
    if usecs >= 1000000 then secs, usecs = secs + 1, usecs - 1000000 end
    return format("%d.%06d", secs, usecs)
end

-- The frame's TCP header as the sidecar sees it: its flags (FSRPAUEC
-- letters), its raw sequence number, its payload length (from the IP
-- header, as the sidecar's len: nil when the IP header in front of the TCP
-- header is not a plain IPv4 or IPv6 one), and, when that header is IPv4,
-- the frame's two endpoints as the sidecar writes them (a.b.c.d:port, from
-- the header's bytes: cheaper than pinfo's address objects). The TCP
-- header is the first place after the smallest IPv4 header where the
-- frame's two ports follow each other and a plausible data offset comes
-- next. nil when the header is not in the captured bytes.
-- The FSRPAUEC letters of each value of the flags byte, made once.
local FLAG_TEXT = {}
for bits = 0, 255 do
    local letters, b = {}, bits
    for i, letter in ipairs({ "F", "S", "R", "P", "A", "U", "E", "C" }) do
        if b % 2 == 1 then letters[#letters + 1] = letter end
        b = floor(b / 2)
        if i == 8 then break end
    end
    FLAG_TEXT[bits] = concat(letters)
end
local ENDPOINT_V4 = "%d.%d.%d.%d:%d"
local function frame_tcp(tvb, sp, dp)
    local n = tvb:len()
    if n > 256 then n = 256 end
    if n < 34 then return nil end
    local raw = tvb:raw(0, n)
    local ports = char(floor(sp / 256), sp % 256, floor(dp / 256), dp % 256)
    local at = 21
    local offset
    while true do
        at = find(raw, ports, at, true)
        if not at or at + 13 > n then return nil end
        offset = floor(byte(raw, at + 12) / 16)
        if offset >= 5 then break end
        at = at + 1
    end
    local s1, s2, s3, s4 = byte(raw, at + 4, at + 7)
    local seq = ((s1 * 256 + s2) * 256 + s3) * 256 + s4
    -- the IP header right in front: IPv4 (any header length) or IPv6
    -- without extension headers; anything else leaves the length unknown
    local len, fsrc, fdst
    for ihl = 5, 15 do
        local p = at - 4 * ihl
        if p < 1 then break end
        if byte(raw, p) == 64 + ihl and byte(raw, p + 9) == 6 then
            local total = byte(raw, p + 2) * 256 + byte(raw, p + 3)
            -- total 0: a segmentation offload packet, whose length the header does not give
            if total > 0 then len = total - 4 * ihl - 4 * offset end
            local a1, a2, a3, a4, b1, b2, b3, b4 = byte(raw, p + 12, p + 19)
            fsrc = format(ENDPOINT_V4, a1, a2, a3, a4, sp)
            fdst = format(ENDPOINT_V4, b1, b2, b3, b4, dp)
            break
        end
    end
    if not len and not fsrc and at > 40 and floor(byte(raw, at - 40) / 16) == 6 and byte(raw, at - 34) == 6 then
        len = (byte(raw, at - 36) * 256 + byte(raw, at - 35)) - 4 * offset
    end
    if len and len < 0 then len = nil end
    return FLAG_TEXT[byte(raw, at + 13)], seq, len, fsrc, fdst
end

-- How an address and port look in the sidecar: a.b.c.d:port, [v6]:port.
local function endpoint_text(addr, port, v6)
    if v6 then return "[" .. tostring(addr) .. "]:" .. port end
    return tostring(addr) .. ":" .. port
end

-- Whether the row is this frame's: the time, and, because several frames
-- can share a time and frames may have been removed from a copy, the
-- addresses, ports, TCP flags, payload length and sequence number.
-- The sidecar's seq is relative to its direction's ISN, so the raw number
-- less the row's seq is the same on every row of one direction of one
-- connection, changing only at a SYN (tcpshut counts from its ISN, as
-- Wireshark does). That base is learnt per connection and sender on the
-- first pass, which runs in frame order and parses every SYN's row (each
-- has an event); frames visited again (a click in Wireshark, tshark's second
-- pass) were checked then, and skip this part. Returns nil when the row is
-- the frame's, or what differs.
local TWO32 = 4294967296
local function row_mismatch(tvb, pinfo, ts_s, ts_f, src, dst, tcp_flags, seq, len, conn)
    if not ts_matches(ts_s, ts_f, pinfo) then
        return format("is at %s, its row at %s.%s", frame_time_text(pinfo), ts_s, ts_f)
    end
    if not src then return nil end
    local sp, dp = pinfo.src_port, pinfo.dst_port
    local fflags, fseq, flen, fsrc, fdst = frame_tcp(tvb, sp, dp)
    if fsrc ~= src or fdst ~= dst then
        -- not IPv4, or the header's bytes say otherwise: Wireshark's
        -- addresses (those of the innermost IP layer) decide
        local v6 = byte(src, 1) == 91
        fsrc = endpoint_text(pinfo.src, sp, v6)
        fdst = endpoint_text(pinfo.dst, dp, v6)
        if fsrc ~= src or fdst ~= dst then
            return format("is %s > %s, its row %s > %s", fsrc, fdst, src, dst)
        end
    end
    if not fflags then return nil end
    if fflags ~= tcp_flags then
        return format("has flags %s, its row %s", fflags, tcp_flags)
    end
    len = tonumber(len)
    if flen and len and flen ~= len then
        return format("carries %d payload bytes, its row %d", flen, len)
    end
    seq = tonumber(seq)
    if seq and not pinfo.visited then
        -- by connection number: the base of the first sender seen, and of
        -- the other one (no new string per frame)
        local base = (fseq - seq) % TWO32
        local bases, c = state.seq_bases, tonumber(conn)
        local slot
        local first = bases.first_src[c]
        if first == nil or first == src then
            bases.first_src[c], slot = src, bases.first
        else
            local other = bases.other_src[c]
            if other == nil or other == src then
                bases.other_src[c], slot = src, bases.other
            end
        end
        local known = slot and slot[c]
        if known and known ~= base and not (find(tcp_flags, "S", 1, true) and not find(tcp_flags, "R", 1, true)) then
            return format("has relative seq %d, its row %d", (fseq - known) % TWO32, seq)
        end
        if slot then slot[c] = base end
    end
    return nil
end


---------------------------------------------------------------------------
-- Dissection
---------------------------------------------------------------------------

-- Whether anything needs this frame's fields: TreeItem:referenced(Dissector)
-- is documented as "if false, the dissector does not need to be dissected
-- and can be safely skipped". It is false when no tree is built (plain
-- `tshark -r`, `-q -z expert`, Wireshark's first pass) and when a tree is
-- built only for other fields (`-Y tcp`, `-T fields -e frame.number` in 4.4
-- and later); true when the tree is shown (-V, -T json, the packet details)
-- or a filter, column or colouring rule names tcpshut or one of its fields.
-- Then only expert items are added, for rows with events (`-z expert` and
-- filters on _ws.expert still see them). Where it cannot be asked (no
-- Dissector handle), every frame counts as wanted: slower, never wrong.
local self_handle = nil
-- The method itself, fetched once: tree:referenced() looks it up through
-- TreeItem's __index on every frame, which costs about as much as the call.
local tree_referenced = type(TreeItem) == "table" and TreeItem.referenced
local function referenced(tree)
    return tree_referenced(tree, self_handle)
end
local function referenced_method(tree)
    return tree:referenced(self_handle)
end
local function always() return true end

-- Which of this frame's fields are asked for, group by group. With a tree
-- that is not shown (Wireshark's packet list: only the Shutdown column and
-- the colouring rules' fields; `-T fields -e` in 4.4 and later; a filter)
-- the costly parts (the connection's record, the back links, the
-- relation, each event and call split out) are worked out only when one
-- of their fields is referenced. TreeItem:referenced(ProtoField) is true
-- for every field of a shown tree; it exists from 4.2: in 4.0 (only the
-- Dissector form) every field counts as asked for.
local CONN_FIELDS = { pf.side, pf.connection, pf.outcome, pf.closer, pf.client, pf.server, pf.conn_frames,
    pf.client_calls, pf.client_call, pf.server_calls, pf.server_call, pf.notes, pf.tunnel }
local BACK_FIELDS = { pf.related_by, pf.related_by_relation }
local RELATION_FIELDS = { pf.relation }
local EVENT_FIELDS = { pf.event }
local CALL_FIELDS = { pf.call }
local function any_referenced(tree, fields)
    for i = 1, #fields do
        if tree_referenced(tree, fields[i]) then return true end
    end
    return false
end
local function all_asked() return true end
local asked
-- The first call checks that the ProtoField form works here.
local function first_asked(tree, fields)
    local ok, needed = false, nil
    if tree_referenced then ok, needed = pcall(tree_referenced, tree, fields[1]) end
    asked = (ok and type(needed) == "boolean") and any_referenced or all_asked
    return asked(tree, fields)
end
asked = first_asked
local wanted
-- The first call checks that the method works here; later calls go straight.
local function first_wanted(tree)
    for _, test in ipairs({ referenced, referenced_method }) do
        local ok, needed = pcall(test, tree)
        if ok and type(needed) == "boolean" then
            wanted = test
            return needed
        end
    end
    wanted = always
    return true
end
wanted = first_wanted

local registered = false

-- Whether this run can show the no-sidecar note (an expert item) at all.
-- Wireshark: always. tshark: when its command line asks for the tree, a
-- filter, fields, statistics or colouring rules, or names the note or the
-- expert fields in a preference (a custom column), or when the profile's
-- preferences do (its columns print in every summary line); plain `tshark
-- -r` prints the summary line alone, where no expert item ever shows.
-- The command line is read once from /proc/self/cmdline and parsed as
-- tshark's getopt parses it (the option lists of the native plugin's
-- fields_without_ours); anything the parse does not know, or a command
-- line that cannot be read, counts as yes (slower, never silent).
local SHOWING_SHORT = "VOTeYRz" -- the tree, fields, filters, statistics
local SHORT_WITH_VALUE = "abBcdefiACEFGHjJKMNoOrRsStTuUwWXyYz"
local SHORT_WITHOUT = "2DILpnghlPqQvVx"
local SHOWING_LONG = { color = true, ["display-filter"] = true, ["read-filter"] = true }
local LONG_WITHOUT = {}
for name in gmatch("help version monitor-mode list-interfaces list-data-link-types no-promiscuous-mode "
    .. "list-time-stamp-types print no-duplicate-keys", "%S+") do LONG_WITHOUT[name] = true end
local LONG_WITH_VALUE = {}
for name in gmatch("interface snapshot-length buffer-size linktype time-stamp-type autostop ring-buffer "
    .. "read-file enable-protocol disable-protocol enable-heuristic disable-heuristic capture-comment hexdump "
    .. "export-objects export-tls-session-keys elastic-mapping-filter temp-dir log-level log-fatal log-domains "
    .. "log-debug log-noisy log-file log-fatal-domains only-protocols compress", "%S+") do
    LONG_WITH_VALUE[name] = true
end

-- Whether a preference's text names the note or the expert fields (a
-- custom column "%Cus:_ws.expert.message", a column on tcpshut.no_sidecar).
local function names_the_note(text)
    return find(text, "_ws.expert", 1, true) or find(text, "tcpshut.no_sidecar", 1, true)
end

-- Whether tshark's arguments (argv[1] on) can show an expert item.
local function arguments_can_show(args)
    local i = 1
    while i <= #args do
        local a = args[i]
        if sub(a, 1, 2) == "--" then
            local name, eq = match(a, "^%-%-([^=]*)(=?)")
            if SHOWING_LONG[name] then return true end
            if LONG_WITH_VALUE[name] then
                if eq == "" then i = i + 1 end
            elseif not LONG_WITHOUT[name] then
                return true -- unknown
            end
        elseif sub(a, 1, 1) == "-" and #a > 1 then
            for j = 2, #a do
                local c = sub(a, j, j)
                if find(SHOWING_SHORT, c, 1, true) then return true end
                if find(SHORT_WITH_VALUE, c, 1, true) then
                    local value = sub(a, j + 1)
                    if value == "" then
                        i = i + 1
                        value = args[i] or ""
                    end
                    if c == "o" and names_the_note(value) then return true end
                    break
                elseif not find(SHORT_WITHOUT, c, 1, true) then
                    return true -- unknown
                end
            end
        end
        i = i + 1
    end
    return false
end

local note_shows = nil
local function note_can_show()
    if note_shows ~= nil then return note_shows end
    note_shows = true
    if gui_enabled and gui_enabled() then return true end
    local fh = io.open("/proc/self/cmdline", "rb")
    local cmdline = fh and fh:read(1048576)
    if fh then fh:close() end
    if not cmdline then return true end
    local args = {}
    for arg in gmatch(cmdline, "[^%z]+") do args[#args + 1] = arg end
    table.remove(args, 1)
    if arguments_can_show(args) then return true end
    -- the profile's own columns (tshark sets the profile, -C, before
    -- loading plugins)
    local ok, prefs = pcall(Dir.personal_config_path, "preferences")
    local pf = ok and prefs and open_regular(prefs)
    if pf then
        local text = pf:read(1048576) or ""
        pf:close()
        if names_the_note(text) then return true end
    end
    note_shows = false
    return false
end

function tcpshut.init()
    if not self_handle then
        local ok, handle = pcall(Dissector.get, "tcpshut")
        if ok and handle then self_handle = handle else wanted = always end
    end
    if state.fh then pcall(io.close, state.fh) end
    state = new_state()
    state.path, state.source = resolve_sidecar()
    -- Wireshark calls a post-dissector for every frame, and that call alone
    -- (the Lua objects it makes) costs about 15 % of plain `tshark -r`: so
    -- the plugin becomes one only when a capture with a sidecar (or a
    -- sidecar named by preference, argument or environment) is opened, or
    -- when the no-sidecar note on the first frame can show (note_can_show:
    -- Wireshark, and tshark asked for more than its summary lines). Once
    -- registered it stays (Lua cannot unregister).
    if not registered and (state.path or note_can_show()) then
        registered = true
        register_postdissector(tcpshut)
    end
end

local function row_error(tree, num, why)
    tree:add(tcpshut):add_proto_expert_info(ex_malformed, format(
        "tcpshut: malformed sidecar row for frame %d: %s; this row is not shown (sidecar %s)", num, why, state.path))
end

-- One expert item per event code that has one; its text is the code's
-- own (the row's summary is in the tree and the Shutdown column). An
-- unknown code gets the unknown-code item, naming it.
local expert_list = memo_of(function(events)
    local list = {}
    for code in gmatch(events, "[^;]+") do
        local ex = EVENT_EXPERT[code]
        if ex then
            list[#list + 1] = { ex }
        elseif ex == nil then
            list[#list + 1] = { ex_unknown_event, "tcpshut: unknown event code " .. code }
        end
    end
    return list
end)
local function add_experts(item, events)
    for _, e in ipairs(expert_list(events)) do
        if e[2] then item:add_proto_expert_info(e[1], e[2]) else item:add_proto_expert_info(e[1]) end
    end
end

-- The whole sidecar's error (state.err): its expert item and, below it,
-- the sidecar's full path and where it was found. Wireshark cuts an item's
-- text at 240 bytes, so the texts say the sidecar's file name last and
-- leave the whole path to this item's value (-e tcpshut.sidecar_file).
local function show_error(tree)
    local item = tree:add(tcpshut)
    item:add_proto_expert_info(state.err_expert, state.err)
    item:add(pf.sidecar_file, state.path):append_text(" (from " .. state.source .. ")")
end

function tcpshut.dissector(tvb, pinfo, tree)
    if not state.loaded then load_sidecar() end
    local num = pinfo.number
    if state.err then
        -- One error for the whole capture, on the first frame dissected.
        if not state.err_frame then state.err_frame = num end
        if state.err_frame == num then show_error(tree) end
        return
    end
    local flags = state.flags
    if not flags then
        if not state.path then
            -- no sidecar anywhere: one quiet note on the first frame, no more
            if not state.note_frame then state.note_frame = num end
            if state.note_frame == num then tree:add(tcpshut):add_proto_expert_info(ex_no_sidecar) end
        end
        return
    end
    local flag = byte(flags, num)
    if not flag then
        -- past the last row: a TCP frame there means the sidecar ends early
        if num > state.last and pinfo.port_type == 2 then
            if not state.short_frame then state.short_frame = num end
            if state.short_frame == num then
                tree:add(tcpshut):add_proto_expert_info(ex_short, format(
                    "tcpshut: the sidecar ends early: its last row is frame %d, TCP frame %d and later have none "
                    .. "(an interrupted tcpshut annotate? run it again; sidecar %s)", state.last, num, state.path))
            end
        end
        return
    end
    if flag == 0 then return end
    local bare = not wanted(tree)
    if (flag == 1 or flag == 4) and bare then return end -- plain or quiet: nothing to add without a tree
    local off = locate(num)
    if not off then
        tree:add(tcpshut):add_proto_expert_info(ex_unreadable, format(
            "tcpshut: cannot read the sidecar row for frame %d; this row is not shown (sidecar %s)",
            num, state.path))
        return
    end

    local w, pos = row_at(off, false)
    local ts_s, ts_f, conn, ss, rs, events, calls, summary, sev, rel, src, dst, tcp_flags, seq, len
    if w then
        ts_s, ts_f, conn, ss, rs, events, calls, summary, sev, rel, src, dst, tcp_flags, seq, len =
            fast_row(w, pos, state.fast)
    end
    if not ts_s then
        -- the slow path (rows with quotes outside the summary, or that
        -- fail a check): the whole row, field by field, with a reason if it is bad
        w, pos = row_at(off, true)
        if not w then
            tree:add(tcpshut):add_proto_expert_info(ex_unreadable, format(
                "tcpshut: cannot read the sidecar row for frame %d; this row is not shown (sidecar %s)",
                num, state.path))
            return
        end
        local r, why = parse_row_as_header(w, pos, state.layout)
        if r then
            local ok
            ok, why = check_row(r)
            if not ok then r = nil end
        end
        if not r then return row_error(tree, num, why) end
        ts_s, ts_f = match(r[2], "^(%d+)%.(%d+)$")
        conn, ss, rs, events, calls, summary, sev, rel = r[3], r[10], r[11], r[12], r[13], r[14], r[15], r[16]
        src, dst, tcp_flags, seq, len = r[4], r[5], r[6], r[7], r[9]
    end

    local differs = row_mismatch(tvb, pinfo, ts_s, ts_f, src, dst, tcp_flags, seq, len, conn)
    if differs then
        -- A sidecar named by a preference, argument or environment variable
        -- belongs to one capture: for another one, the sidecar beside it.
        if state.source ~= BESIDE and not state.fell_back then
            local ok, auto = pcall(find_beside_capture)
            if ok and auto and auto ~= state.path then
                local pinned = state.source
                if state.fh then pcall(io.close, state.fh) end
                state = new_state()
                state.path, state.source, state.fell_back = auto, BESIDE .. " (not " .. pinned .. ")", true
                return tcpshut.dissector(tvb, pinfo, tree)
            end
        end
        -- what differs first, the sidecar's file name last (show_error)
        state.err = format("tcpshut: the sidecar does not match this capture: frame %d %s; nothing shown (sidecar %s)",
            num, differs, match(state.path, "([^/]*)$"))
        state.err_expert = ex_mismatch
        state.err_frame = num
        state.flags, state.blocks, state.direct, state.wbuf = nil, nil, nil, nil
        show_error(tree)
        return
    end

    -- the connection's record, when the connections sidecar has it
    -- without a tree, only the Info tag needs it (for the sender's side)
    local client, server, outcome, closer, ccalls, scalls, first, last, notes, tunnel
    -- pick: whether to ask field by field (never in 4.0, where every field is asked for)
    local pick = not bare and asked ~= all_asked
    local record = not bare and (not pick or asked(tree, CONN_FIELDS))
    if record then
        client, server, outcome, closer, ccalls, scalls, first, last, notes, tunnel = connection_of(conn, src, dst)
    elseif events ~= "" and tagged(events) then
        client = connection_client(conn, src, dst)
    end
    local side = client and (client == src and "client" or "server") or src
    if events ~= "" then
        local tag = info_tag(events, calls, side)
        if tag then pinfo.cols.info:append(" " .. tag) end
    end
    if state.conns_err and not state.conns_err_shown then
        state.conns_err_shown = true
        tree:add(tcpshut):add_proto_expert_info(ex_connections, format(
            "tcpshut: the connections sidecar cannot be used: %s; connection fields are not shown where it fails",
            state.conns_err))
    end
    if bare then
        -- no tree: only the expert items (the row has events, or it would be plain)
        if events ~= "" then add_experts(tree, events) end
        return
    end
    -- Fields with an empty value are not added.
    local st = tree:add(tcpshut, summary ~= "" and ("TCP Shutdown: " .. summary) or "TCP Shutdown")
    st:add(pf.conn, tonumber(conn))
    if events ~= "" then
        st:add(pf.events, events)
    end
    if events ~= "" and (not pick or asked(tree, EVENT_FIELDS)) then
        if find(events, ";", 1, true) then
            for code in gmatch(events, "[^;]+") do st:add(pf.event, code) end
        else
            st:add(pf.event, events)
        end
    end
    if ss ~= "" then st:add(pf.sender_state, ss) end
    if rs ~= "" then st:add(pf.receiver_state, rs) end
    if calls ~= "" then
        st:add(pf.calls, calls)
    end
    if calls ~= "" and (not pick or asked(tree, CALL_FIELDS)) then
        local seen = {}
        for call in gmatch(calls, "[^>|]+") do
            if not seen[call] then
                seen[call] = true
                st:add(pf.call, call)
            end
        end
    end
    if summary ~= "" then st:add(pf.summary, summary) end
    if sev ~= "" then st:add(pf.severity, sev) end
    if rel ~= "" then
        st:add(pf.related, tonumber(rel))
        if not pick or asked(tree, RELATION_FIELDS) then st:add(pf.relation, (relation_of(events))) end
    end
    local back = (not pick or asked(tree, BACK_FIELDS)) and back_links()[num]
    if back then
        for frame, from_events in gmatch(back, "(%d+):([a-z0-9;-]*)") do
            local _, backward = relation_of(from_events)
            st:add(pf.related_by, tonumber(frame))
            st:add(pf.related_by_relation, backward)
        end
    end
    if record and client then
        st:add(pf.side, side)
        local ct = st:add(pf.connection)
        ct:set_text(format("Connection %s: %s, closer %s (%s > %s, frames %s-%s)",
            conn, outcome, closer, client, server, first, last))
        ct:add(pf.outcome, outcome)
        ct:add(pf.closer, closer)
        ct:add(pf.client, client)
        ct:add(pf.server, server)
        ct:add(pf.conn_frames, first .. "-" .. last)
        for _, pair in ipairs({ { pf.client_calls, pf.client_call, ccalls }, { pf.server_calls, pf.server_call, scalls } }) do
            local list = pair[3]
            if list ~= "" then
                ct:add(pair[1], list)
                local seen = {}
                for call in gmatch(list, "[^>|]+") do
                    if not seen[call] then
                        seen[call] = true
                        ct:add(pair[2], call)
                    end
                end
            end
        end
        if notes ~= "" then ct:add(pf.notes, notes) end
        if tunnel ~= "" then ct:add(pf.tunnel, tunnel) end
    end
    if events ~= "" then add_experts(st, events) end
end

---------------------------------------------------------------------------
-- "tcpshut connections": one row per connection of the connections
-- sidecar, with its outcome, closer and calls, the TCP streams Wireshark
-- put its frames in (they differ where Wireshark and tcpshut split a
-- 4-tuple differently: port reuse, a SYN retried after a refusing RST),
-- and the filter that shows it. In tshark `-z tcpshut,conns`; in
-- Wireshark Statistics > tcpshut connections. A tap on "tcp" (registered
-- only for the table) gives each frame's addresses, ports and tcp.stream;
-- a frame belongs to the connection on its 4-tuple whose first and last
-- frames enclose it.
---------------------------------------------------------------------------

-- The connections as a list in id order, each with its fields; and, by
-- "addr:port addr:port" (either order), the connections on that 4-tuple.
local function connection_list()
    if not state.loaded then load_sidecar() end
    if not state.conns_loaded then load_connections() end
    local list, by_tuple = {}, {}
    for id, line in pairs(state.conns or {}) do
        local _, client, server, outcome, closer, ccalls, scalls, first, last = match(line, CONN_LINE)
        local c = { id = id, client = client, server = server, outcome = outcome, closer = closer,
            ccalls = ccalls, scalls = scalls, first = tonumber(first), last = tonumber(last),
            frames = 0, streams = {} }
        list[#list + 1] = c
        for _, key in ipairs({ client .. " " .. server, server .. " " .. client }) do
            by_tuple[key] = by_tuple[key] or {}
            table.insert(by_tuple[key], c)
        end
    end
    table.sort(list, function(a, b) return a.id < b.id end)
    return list, by_tuple
end

-- A tap that counts each connection's frames and collects its streams.
-- The connections are read at the first frame (the capture is open then,
-- so the sidecar beside it can be found). Returns the tap and a function
-- giving the table's data: the list, and the connections per stream.
local function connections_tap()
    local tap = Listener.new("tcp", nil, false)
    local list, by_tuple, stream_conns
    local function data()
        if not list and NATIVE then
            -- nothing else resolves the sidecar here (no init of ours runs);
            -- the table needs only its path, not the segments' index
            state = new_state()
            state.path, state.source = resolve_sidecar()
            state.loaded = true
        end
        if not list then list, by_tuple = connection_list() end
        stream_conns = stream_conns or {}
        return list, stream_conns
    end
    function tap.reset()
        list, by_tuple, stream_conns = nil, nil, nil
    end
    function tap.packet(pinfo, _, t)
        if type(t) ~= "table" or not t.ip_src then return end
        data()
        local v6 = find(tostring(t.ip_src), ":", 1, true)
        local src = endpoint_text(t.ip_src, t.th_sport, v6)
        local dst = endpoint_text(t.ip_dst, t.th_dport, v6)
        local cands = by_tuple[src .. " " .. dst]
        if not cands then return end
        local n = pinfo.number
        for _, c in ipairs(cands) do
            if n >= c.first and n <= c.last then
                c.frames = c.frames + 1
                local st = t.th_stream
                if st and not c.streams[st] then
                    c.streams[st] = true
                    stream_conns[st] = (stream_conns[st] or 0) + 1
                end
                return
            end
        end
    end
    return tap, data
end

-- The table's lines.
local function connection_lines(list, stream_conns)
    local lines = {
        format("tcpshut connections: %d (sidecar %s)", #list, tostring(state.path)),
        format("%-5s %-22s %-22s %-11s %-7s %-24s %-24s %6s  %-10s %s", "conn", "client", "server", "outcome",
            "closer", "client calls", "server calls", "frames", "tcp.stream", "filter"),
    }
    if state.conns_err then
        lines[#lines + 1] = "(the connections sidecar: " .. state.conns_err .. ")"
    elseif not state.conns then
        lines[#lines + 1] = "(no connections sidecar: `tcpshut annotate CAPTURE` writes CAPTURE.tcpshut.connections.csv)"
    end
    for _, c in ipairs(list) do
        local streams, shared = {}, false
        for st in pairs(c.streams) do
            streams[#streams + 1] = st
            if stream_conns[st] > 1 then shared = true end
        end
        table.sort(streams)
        local st = concat(streams, ",")
        -- where Wireshark's streams and tcpshut's connections are not one to one
        if #streams > 1 then st = st .. " (split)" elseif shared then st = st .. " (shared)" end
        lines[#lines + 1] = format("%-5d %-22s %-22s %-11s %-7s %-24s %-24s %6d  %-10s tcpshut.conn == %d",
            c.id, c.client, c.server, c.outcome, c.closer, c.ccalls == "" and "-" or c.ccalls,
            c.scalls == "" and "-" or c.scalls, c.frames, st == "" and "-" or st, c.id)
    end
    return lines
end

-- A click that filters to one connection: the packet list's context menu
-- (right-click a frame: tcpshut > This connection) applies
-- `tcpshut.conn == N` for the frame's connection. register_packet_menu
-- exists from Wireshark 4.2 (4.4 and 4.6 here); Wireshark passes the
-- selected frame's fields, and shows the entry only on frames that have
-- tcpshut.conn. In 4.0 there is no such menu: right-click the
-- "Connection: N" line in the packet details, Apply as Filter > Selected.
-- tshark keeps the entry and never shows it. Registered with the native
-- plugin too (its fields have the same names).
local function filter_to_connection(...)
    for _, field in ipairs({ ... }) do
        if field.name == "tcpshut.conn" then
            set_filter("tcpshut.conn == " .. tostring(field.value))
            apply_filter()
            return
        end
    end
end
if register_packet_menu then
    register_packet_menu("tcpshut/This connection (tcpshut.conn == N)", filter_to_connection, "tcpshut.conn")
end

if register_stat_cmd_arg then
    register_stat_cmd_arg("tcpshut,conns", function()
        local tap, data = connections_tap()
        function tap.draw()
            print(rep("=", 80))
            for _, line in ipairs(connection_lines(data())) do print(line) end
            print(rep("=", 80))
        end
    end)
end

-- The table window's first line: how to choose connections in it.
local MARK_HINT = "Type * at the start of connection lines, then press \"Filter to the marked connections\"."

-- The display filter for the connections marked in the table's text (a
-- `*` at the start of a connection's line, spaces allowed around it), in
-- the table's order; nil when none is.
local function marked_filter(text)
    local ids, seen = {}, {}
    for line in gmatch(text or "", "[^\n]+") do
        local id = match(line, "^%s*%*%s*(%d+)%s")
        if id and not seen[id] then
            seen[id] = true
            ids[#ids + 1] = id
        end
    end
    if #ids == 0 then return nil end
    if #ids == 1 then return "tcpshut.conn == " .. ids[1] end
    -- 4.0 needs the commas
    return "tcpshut.conn in {" .. concat(ids, ", ") .. "}"
end

if gui_enabled and gui_enabled() and register_menu and TextWindow then
    register_menu("tcpshut connections", function()
        local tap, data = connections_tap()
        local win = TextWindow.new("tcpshut connections")
        retap_packets()
        -- The tap only counts for the table: removed as soon as it has, so
        -- that no later rescan runs it. With it still registered, applying
        -- a filter from the connection dialog crashed Wireshark 4.0 and
        -- 4.4 (scripts/check-wireshark-gui).
        tap:remove()
        -- The window's lines cannot be clicked (a TextWindow reports no
        -- cursor or selection, in 4.0 to 4.6), so a line is chosen by
        -- marking it: the text is editable, a `*` typed at the start of a
        -- line marks its connection, and the first button filters to the
        -- marked ones (marked_filter).
        win:set(MARK_HINT .. "\n" .. concat(connection_lines(data()), "\n"))
        win:set_editable(true)
        win:add_button("Filter to the marked connections", function()
            local filter = marked_filter(win:get_text())
            if filter then
                set_filter(filter)
                apply_filter()
            else
                report_failure("tcpshut: no connection is marked: type * at the start of a connection's "
                    .. "line in the table, then press the button again")
            end
        end)
        win:add_button("Filter to a connection...", function()
            new_dialog("tcpshut: show one connection", function(id)
                if match(id or "", "^%d+$") then
                    set_filter("tcpshut.conn == " .. id)
                    apply_filter()
                end
            end, "Connection (conn)")
        end)
        for _, outcome in ipairs({ "reset", "refused", "half-closed" }) do
            win:add_button("Show " .. outcome, function()
                set_filter("tcpshut.outcome == \"" .. outcome .. "\"")
                apply_filter()
            end)
        end
    end, MENU_STAT_UNSORTED)
end
