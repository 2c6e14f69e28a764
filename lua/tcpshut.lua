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

local script_args = { ... }

local byte, find, match, sub, gsub, format = string.byte, string.find, string.match, string.sub, string.gsub, string.format
local concat = table.concat
local floor = math.floor

local HEADER = "frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,events,calls,summary,severity,related"
local NFIELDS = 16
local MAX_FIELD = 4096 -- bytes; a longer field makes its row malformed
local TS_TOLERANCE_NS = 1000 -- a row's ts must be within 1 microsecond of the frame's

local tcpshut = Proto("tcpshut", "TCP Shutdown")

local pf = {
    events = ProtoField.string("tcpshut.events", "Events", base.ASCII, "Event codes, as in the sidecar (;-separated)"),
    event = ProtoField.string("tcpshut.event", "Event", base.ASCII, "One event code"),
    sender_state = ProtoField.string("tcpshut.sender_state", "Sender state", base.ASCII,
        "RFC 9293 state of the sending side after this segment"),
    receiver_state = ProtoField.string("tcpshut.receiver_state", "Receiver state", base.ASCII,
        "RFC 9293 state of the receiving side after this segment"),
    calls = ProtoField.string("tcpshut.calls", "Likely socket calls", base.ASCII,
        "Steps joined by >, candidates by |"),
    summary = ProtoField.string("tcpshut.summary", "Summary", base.UNICODE, "One-sentence explanation"),
    severity = ProtoField.string("tcpshut.severity", "Severity", base.ASCII, "chat, note, warn or error"),
    conn = ProtoField.uint32("tcpshut.conn", "Connection", base.DEC, nil, nil, "tcpshut connection id"),
    related = ProtoField.framenum("tcpshut.related", "Related frame", base.NONE),
}
tcpshut.fields = {
    pf.events, pf.event, pf.sender_state, pf.receiver_state, pf.calls,
    pf.summary, pf.severity, pf.conn, pf.related,
}

-- Expert info, one item per event code. Keep in sync with docs/wireshark.md.
local G, S = expert.group, expert.severity
local EVENT_EXPERT_SPEC = {
    { "syn", G.SEQUENCE, S.CHAT, "connection opened (SYN)" },
    { "syn-ack", G.SEQUENCE, S.CHAT, "connection accepted (SYN-ACK)" },
    { "fin-active", G.SEQUENCE, S.NOTE, "active close (first FIN)" },
    { "fin-passive", G.SEQUENCE, S.NOTE, "passive close (FIN answering a FIN)" },
    { "fin-simultaneous", G.SEQUENCE, S.NOTE, "simultaneous close (FINs crossed)" },
    { "fin-retransmit", G.SEQUENCE, S.NOTE, "FIN retransmitted" },
    { "fin-acked", G.SEQUENCE, S.CHAT, "FIN acknowledged" },
    { "time-wait", G.SEQUENCE, S.CHAT, "side enters TIME-WAIT" },
    { "data-after-fin", G.PROTOCOL, S.WARN, "data sent after FIN" },
    { "data-to-closed", G.SEQUENCE, S.WARN, "data sent to a side that has closed" },
    { "rst-abort", G.SEQUENCE, S.WARN, "connection aborted by RST" },
    { "rst-after-close", G.SEQUENCE, S.WARN, "RST after close (data to a closed socket)" },
    { "rst-refused", G.SEQUENCE, S.NOTE, "connection refused (RST answering SYN)" },
    { "rst-stray", G.SEQUENCE, S.NOTE, "RST for no known connection" },
    { "rst-ignored", G.SECURITY, S.ERROR, "RST ignored by the receiver (out of window or spoofed?)" },
    { "port-reuse", G.SEQUENCE, S.NOTE, "port reused by a new connection" },
    { "mid-stream", G.SEQUENCE, S.CHAT, "capture starts mid-connection" },
}
local EVENT_EXPERT = {}
local experts = {}
for _, e in ipairs(EVENT_EXPERT_SPEC) do
    local ex = ProtoExpert.new("tcpshut." .. gsub(e[1], "-", "_"), "tcpshut " .. e[1] .. ": " .. e[4], e[2], e[3])
    EVENT_EXPERT[e[1]] = ex
    experts[#experts + 1] = ex
end
local ex_unknown_event = ProtoExpert.new("tcpshut.unknown_event", "tcpshut: unknown event code",
    G.PROTOCOL, S.NOTE)
local ex_mismatch = ProtoExpert.new("tcpshut.sidecar_mismatch", "tcpshut: sidecar does not match this capture",
    G.MALFORMED, S.ERROR)
local ex_malformed = ProtoExpert.new("tcpshut.sidecar_malformed", "tcpshut: malformed sidecar",
    G.MALFORMED, S.ERROR)
local ex_unreadable = ProtoExpert.new("tcpshut.sidecar_unreadable", "tcpshut: cannot read sidecar",
    G.MALFORMED, S.ERROR)
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

local function readable(path)
    local fh = io.open(path, "rb")
    if fh then
        fh:close()
        return true
    end
    return false
end

local CAPTURE_EXT = { pcap = true, pcapng = true, cap = true, ntar = true, gz = true, zst = true, lz4 = true }

-- Linux: look at the files this process has open and take the most recently
-- opened one (highest fd) that has a CAPTURE.tcpshut.csv sibling.
local function find_beside_capture()
    local fh = io.open("/proc/self/stat", "r")
    if not fh then return nil end
    local stat = fh:read("*l")
    fh:close()
    local pid = stat and match(stat, "^(%d+) ")
    if not pid or not io.popen then return nil end
    -- pid is digits only; nothing from the sidecar or the capture reaches the shell.
    local ok, pipe = pcall(io.popen,
        "for f in /proc/" .. pid .. "/fd/*; do t=$(readlink \"$f\") && printf '%s %s\\n' \"${f##*/}\" \"$t\"; done 2>/dev/null")
    if not ok or not pipe then return nil end
    local best_fd, best, best_is_cap = -1, nil, false
    for line in pipe:lines() do
        local fd, target = match(line, "^(%d+) (/.+)$")
        if fd and not match(target, "^/proc/") and not match(target, "^/dev/") and not match(target, "^/sys/")
            and not match(target, " %(deleted%)$") and not match(target, "%.tcpshut%.csv$") then
            local cand = target .. ".tcpshut.csv"
            if readable(cand) then
                local ext = match(target, "%.([%w]+)$")
                local is_cap = ext ~= nil and CAPTURE_EXT[ext:lower()] == true
                local n = tonumber(fd)
                if (is_cap and not best_is_cap) or (is_cap == best_is_cap and n > best_fd) then
                    best_fd, best, best_is_cap = n, cand, is_cap
                end
            end
        end
    end
    pipe:close()
    return best
end

local function resolve_sidecar()
    local pref = tcpshut.prefs.sidecar
    if pref and pref ~= "" then return pref, "preference tcpshut.sidecar" end
    local arg1 = script_args[1]
    if type(arg1) == "string" and arg1 ~= "" then return arg1, "script argument lua_script1" end
    local env = os.getenv("TCPSHUT_SIDECAR")
    if env and env ~= "" then return env, "environment variable TCPSHUT_SIDECAR" end
    local ok, auto = pcall(find_beside_capture)
    if ok and auto then return auto, "beside the capture" end
    return nil, nil
end

---------------------------------------------------------------------------
-- Loading: one pass records the byte offset of each row, keyed by frame.
---------------------------------------------------------------------------

local state -- per opened capture, reset by init()

local function new_state()
    return {
        path = nil, source = nil,
        loaded = false,
        fh = nil, index = nil, stops = nil, rows = 0,
        err = nil, err_expert = nil, err_frame = nil, -- whole-sidecar error, shown once
    }
end
state = new_state()

-- Returns index (frame -> offset of the row's first byte), stops (frame ->
-- offset just after the row's line end), row count; or nil and an error message.
local function build_index(data)
    local len = #data
    local pos = 1
    if sub(data, 1, 3) == "\239\187\191" then pos = 4 end -- UTF-8 BOM
    local nl = find(data, "\n", pos, true)
    if not nl then
        if len == 0 then return nil, "the file is empty (no header line)" end
        return nil, "truncated: the header line has no line end"
    end
    local header = sub(data, pos, nl - 1)
    if byte(header, -1) == 13 then header = sub(header, 1, -2) end
    if header ~= HEADER then
        return nil, "wrong header line (expected \"" .. HEADER .. "\")"
    end
    local index, stops = {}, {}
    local rows, last = 0, 0
    pos = nl + 1
    while pos <= len do
        -- Fast paths: a row without quotes, or with one quoted field without "".
        local fr, nxt = match(data, '^(%d+),[^"\n]*"[^"]*"[^"\n]*\n()', pos)
        if not fr then fr, nxt = match(data, '^(%d+),[^"\n]*\n()', pos) end
        if not fr then
            fr = match(data, "^(%d+),", pos)
            if not fr then
                if not find(data, "^[\r\n]*$", pos) then
                    return nil, format("row %d: does not start with a frame number", rows + 1)
                end
                break -- only blank lines left
            end
            -- General path: find the first line end outside quotes.
            local p = pos
            while true do
                local s = find(data, '["\n]', p)
                if not s then
                    return nil, format("truncated: row %d (frame %s) has no line end", rows + 1, fr)
                end
                if byte(data, s) == 10 then
                    nxt = s + 1
                    break
                end
                -- skip a quoted section, "" being an escaped quote
                local q = s + 1
                while true do
                    local c = find(data, '"', q, true)
                    if not c then
                        return nil, format("truncated: row %d (frame %s) has an unterminated quoted field",
                            rows + 1, fr)
                    end
                    if byte(data, c + 1) == 34 then
                        q = c + 2
                    else
                        p = c + 1
                        break
                    end
                end
            end
        end
        local n = tonumber(fr)
        if #fr > 10 or n <= last then
            return nil, format("row %d: frame %s does not follow frame %d (rows must be in increasing frame order)",
                rows + 1, fr, last)
        end
        index[n] = pos
        stops[n] = nxt
        last = n
        rows = rows + 1
        pos = nxt
    end
    if rows > 0 and byte(data, len) ~= 10 then
        return nil, "truncated: the last row has no line end"
    end
    return index, stops, rows
end

local function load_sidecar()
    state.loaded = true
    local path = state.path
    if not path then return end
    local fh, why = io.open(path, "rb")
    local data
    if fh then
        data = fh:read("*a")
        fh:close()
    end
    if not data then
        state.err = format("tcpshut: cannot read sidecar: %s; no annotations shown (sidecar %s, from %s)",
            why or "not a readable file", path, state.source)
        state.err_expert = ex_unreadable
        return
    end
    local index, stops, rows = build_index(data)
    if not index then
        rows = stops
        state.err = format("tcpshut: malformed sidecar: %s; no annotations shown (sidecar %s, from %s)",
            rows, path, state.source)
        state.err_expert = ex_malformed
        return
    end
    -- Keep only the offsets: rows are read back from the file on demand, so
    -- the Lua heap stays small (a big heap makes every later collection cost
    -- more, for all plugins).
    data = nil
    state.fh = io.open(path, "rb")
    if not state.fh then
        state.err = format("tcpshut: cannot read sidecar: it vanished while loading; no annotations shown (sidecar %s, from %s)",
            path, state.source)
        state.err_expert = ex_unreadable
        return
    end
    state.index, state.stops, state.rows = index, stops, rows
    collectgarbage()
end

---------------------------------------------------------------------------
-- On-demand row parsing and checking
---------------------------------------------------------------------------

-- Parses the CSV row starting at pos. Returns the list of fields, or nil and why.
local function parse_row(data, pos)
    local fields, n = {}, 0
    while true do
        n = n + 1
        if n > NFIELDS then return nil, "more than " .. NFIELDS .. " fields" end
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
    if n ~= NFIELDS then return nil, format("%d fields instead of %d", n, NFIELDS) end
    return fields
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

-- Fast path for the common row shape: every field unquoted except possibly
-- the summary, which then holds no quote of its own. The pattern also checks
-- each field's character set, so only lengths and ranges remain to check.
-- Rows of any other shape take parse_row + check_row.
local FAST_HEAD = "^(%d+),(%d+%.%d+),(%d+),([%w%.:%[%]%%_-]*),([%w%.:%[%]%%_-]*),([FSRPAUEC]*),(%d+),(%d+),(%d+),"
    .. "([A-Z0-9-]*),([A-Z0-9-]*),([a-z0-9;-]*),([%w_>|-]*),"
local FAST_QUOTED = FAST_HEAD .. '"([^"]*)",([a-z]*),(%d*)\r?\n'
local FAST_PLAIN = FAST_HEAD .. '([^,"\n]*),([a-z]*),(%d*)\r?\n'

local function fast_row(data, pos)
    local r = { match(data, FAST_QUOTED, pos) }
    if not r[1] then
        r = { match(data, FAST_PLAIN, pos) }
        if not r[1] then return nil end
    end
    -- lengths and ranges the pattern cannot express
    if #r[3] > 9 or #r[7] > 9 or #r[8] > 9 or #r[9] > 9 or #r[16] > 9 or #r[10] > 32 or #r[11] > 32
        or #r[2] > 22 or #r[4] > 64 or #r[5] > 64 or #r[12] > 256 or #r[13] > 256 or #r[15] > 16
        or find(r[12], ";;", 1, true) or byte(r[12], 1) == 59 or byte(r[12], -1) == 59 then
        return nil
    end
    local summary = r[14]
    if #summary > MAX_FIELD or find(summary, "[%c\128-\255]") then return nil end
    return r
end


-- Checks every field; returns true or false and why.
local function check_row(r)
    for i = 1, NFIELDS do
        local ok, why = valid_text(r[i])
        if not ok then return false, why .. " in field " .. field_name(i) end
    end
    if not match(r[2], "^%d+%.%d+$") or #match(r[2], "^%d+") > 12 or #match(r[2], "%.(%d+)$") > 9 then
        return false, "bad ts \"" .. r[2] .. "\""
    end
    if not check_uint(r[3], 4294967295) then return false, "bad conn \"" .. r[3] .. "\"" end
    if not match(r[6], "^[FSRPAUEC]*$") then return false, "bad flags \"" .. r[6] .. "\"" end
    for i = 7, 9 do
        if not check_uint(r[i], 4294967295) then
            return false, format("bad %s \"%s\"", field_name(i), r[i])
        end
    end
    for i = 10, 11 do
        if not match(r[i], "^[A-Z0-9-]*$") or #r[i] > 32 then
            return false, format("bad %s \"%s\"", field_name(i), r[i])
        end
    end
    if r[12] ~= "" and not match(r[12], "^[a-z0-9-]+$") and not match(r[12], "^[a-z0-9-]+[a-z0-9;-]*[a-z0-9-]$") then
        return false, "bad events \"" .. r[12] .. "\""
    end
    if find(r[12], ";;", 1, true) then return false, "bad events \"" .. r[12] .. "\"" end
    if not match(r[13], "^[%w_>|-]*$") then return false, "bad calls \"" .. r[13] .. "\"" end
    if not match(r[15], "^[a-z]*$") then return false, "bad severity \"" .. r[15] .. "\"" end
    if r[16] ~= "" and not check_uint(r[16], 4294967295) then return false, "bad related \"" .. r[16] .. "\"" end
    return true
end

-- The frame's time as integer seconds and nanoseconds, from pinfo.abs_ts.
-- That is a double: for present-day epochs it is good to about 0.12 us, well
-- inside the 1 us tolerance. (A Field extractor for frame.time_epoch would be
-- exact, but it forces every dissector to build a tree for every frame, which
-- costs more than the whole plugin when nobody looks at the tree.)
local function frame_time(pinfo)
    local t = pinfo.abs_ts
    local s = floor(t)
    local ns = floor((t - s) * 1e9 + 0.5)
    if ns >= 1000000000 then
        s, ns = s + 1, ns - 1000000000
    end
    return s, ns
end

-- Compares the row's ts text with the frame's time at microsecond precision,
-- on integers (seconds and nanoseconds separately), never on a formatted float.
-- Returns whether they match, and the frame's time (secs, nsecs).
local function ts_matches(ts, pinfo)
    local rs, rf = match(ts, "^(%d+)%.(%d+)$")
    local rns = #rf == 9 and tonumber(rf) or tonumber(sub(rf .. "000000000", 1, 9))
    local fs, fns = frame_time(pinfo)
    local ds = tonumber(rs) - fs
    if ds > 1 or ds < -1 then return false, fs, fns end
    local d = ds * 1000000000 + (rns - fns)
    return d > -TS_TOLERANCE_NS and d < TS_TOLERANCE_NS, fs, fns
end

---------------------------------------------------------------------------
-- Dissection
---------------------------------------------------------------------------

function tcpshut.init()
    if state.fh then pcall(io.close, state.fh) end
    state = new_state()
    state.path, state.source = resolve_sidecar()
end

-- True when tshark/Wireshark builds no tree for this pass (plain `tshark -r`
-- with no filter, no custom column, no -V/-T): no field could be shown, so
-- only the expert items are added (tshark -q -z expert still collects them).
-- Unknown tostring formats count as "a tree": the plugin then does it all.
local function no_tree(tree)
    return find(tostring(tree), "has item=false, has subtree=false", 1, true) ~= nil
end

function tcpshut.dissector(tvb, pinfo, tree)
    if not state.loaded then load_sidecar() end
    local num = pinfo.number
    if state.err then
        -- One error for the whole capture, on the first frame dissected.
        if not state.err_frame then state.err_frame = num end
        if state.err_frame == num then
            tree:add(tcpshut):add_proto_expert_info(state.err_expert, state.err)
        end
        return
    end
    local index = state.index
    if not index then return end
    local pos = index[num]
    if not pos then return end

    local fh = state.fh
    local text = fh:seek("set", pos - 1) and fh:read(state.stops[num] - pos)
    if not text then
        tree:add(tcpshut):add_proto_expert_info(ex_unreadable, format(
            "tcpshut: cannot read the sidecar row for frame %d; this row is not shown (sidecar %s)", num, state.path))
        return
    end
    local row = fast_row(text, 1)
    local ok, why = row ~= nil, nil
    if not ok then
        row, why = parse_row(text, 1)
        ok = row ~= nil
        if ok then ok, why = check_row(row) end
    end
    if not ok then
        tree:add(tcpshut):add_proto_expert_info(ex_malformed, format(
            "tcpshut: malformed sidecar row for frame %d: %s; this row is not shown (sidecar %s)", num, why, state.path))
        return
    end

    local matches, fs, fns = ts_matches(row[2], pinfo)
    if not matches then
        local shown = format("%.0f.%09.0f", fs, fns)
        state.err = format(
            "tcpshut: sidecar does not match this capture: frame %d was captured at %s but its row says %s "
            .. "(a sidecar made for another capture, or frames renumbered by a read filter); no annotations shown "
            .. "(sidecar %s, from %s)",
            num, shown, row[2], state.path, state.source)
        state.err_expert = ex_mismatch
        state.err_frame = num
        state.index, state.stops = nil, nil
        tree:add(tcpshut):add_proto_expert_info(ex_mismatch, state.err)
        return
    end

    local summary = row[14]
    local events = row[12]
    if no_tree(tree) then
        if events ~= "" then
            local text = summary ~= "" and summary or "(no summary)"
            for code in events:gmatch("[^;]+") do
                local ex = EVENT_EXPERT[code]
                if ex then tree:add_proto_expert_info(ex, "tcpshut " .. code .. ": " .. text) end
            end
        end
        return
    end
    local st = tree:add(tcpshut, summary ~= "" and ("TCP Shutdown: " .. summary) or "TCP Shutdown")
    st:add(pf.conn, tonumber(row[3]))
    st:add(pf.events, events)
    if events ~= "" then
        for code in events:gmatch("[^;]+") do
            st:add(pf.event, code)
        end
    end
    st:add(pf.sender_state, row[10])
    st:add(pf.receiver_state, row[11])
    st:add(pf.calls, row[13])
    st:add(pf.summary, summary)
    st:add(pf.severity, row[15])
    if row[16] ~= "" then st:add(pf.related, tonumber(row[16])) end
    if events ~= "" then
        local text = summary ~= "" and summary or "(no summary)"
        for code in events:gmatch("[^;]+") do
            local ex = EVENT_EXPERT[code]
            if ex then
                st:add_proto_expert_info(ex, "tcpshut " .. code .. ": " .. text)
            else
                st:add_proto_expert_info(ex_unknown_event, "tcpshut: unknown event code " .. code .. ": " .. text)
            end
        end
    end
end

register_postdissector(tcpshut)
