#!/usr/bin/env python3
"""Load-cost benchmark for lua/tcpshut.lua (issue #3).

Writes a synthetic capture of N TCP frames (default 1,000,000) and a matching
sidecar into a temporary directory, then times tshark reading it without the
plugin and with it. Nothing is written into the repository.

usage: scripts/bench-wireshark.py [N] [--mix realistic|worst|teardown] [--runs R]
                                  [--plugin FILE] [--modes open,frames,fields,expert,nosidecar]
                                  [--keep DIR]

--mix realistic (default): connections of 100 frames; only the 5 teardown /
    handshake rows of each carry events, calls and a summary (5% of rows), the
    other 95% have those columns empty, as in real sidecars.
--mix worst: connections of 10 frames, every row has a summary (quoted, some
    with "" and commas), half of them events: the previous benchmark.

Each command runs R times (default 3); the median wall time is reported, and
the median CPU time (user+sys of tshark), which is less disturbed by other
processes on a shared machine. The modes:
  open       tshark -n -r CAP                     (issue #13 target: 1.15x)
  frames     tshark -n -r CAP -T fields -e frame.number, with the plugin too (1.15x)
  fields     ... -T fields -e frame.number [-e tcpshut.summary]   (the plugin's fields asked for)
  expert     tshark -n -r CAP -q -z expert        (1.15x)
  nosidecar  tshark -n -r CAP with and without the plugin, no sidecar anywhere (1.02x)
--mix teardown: connections of 11 frames (handshake, one request and answer,
    teardown): 18% of rows with events, as in the capture of issue #13.
"""
import os, statistics, struct, subprocess, sys, tempfile, time

def write(dirpath, n, mix):
    cap = os.path.join(dirpath, "big.pcap")
    side = cap + ".tcpshut.csv"
    t0 = 1700000000
    if mix == "worst":
        # connections of 10 frames: S, SA, A, PA(10 bytes), A, FA, A, FA, A, A
        plan = [(0x02, 0), (0x12, 1), (0x10, 0), (0x18, 0), (0x10, 1),
                (0x11, 0), (0x10, 1), (0x11, 1), (0x10, 0), (0x10, 0)]
        ev_at = {0: "syn", 1: "syn-ack", 5: "fin-active", 7: "fin-passive", 8: "fin-acked;time-wait"}
    elif mix == "teardown":
        # connections of 28 frames: S, SA, A, 10 x (PA 10 bytes, A), A, FA, A, FA, A: 5 rows with events (18%)
        plan = [(0x02, 0), (0x12, 1), (0x10, 0)] + [(0x18, 0), (0x10, 1)] * 10 + [(0x10, 0)]
        plan += [(0x11, 0), (0x10, 1), (0x11, 1), (0x10, 0)]
        assert len(plan) == 28
        ev_at = {0: "syn", 1: "syn-ack", 24: "fin-active", 26: "fin-passive", 27: "fin-acked;time-wait"}
    else:
        # connections of 100 frames: S, SA, A, then 47 x (PA 10 bytes, A), then FA, A, FA, A...
        plan = [(0x02, 0), (0x12, 1), (0x10, 0)]
        for _ in range(46):
            plan += [(0x18, 0), (0x10, 1)]
        plan += [(0x10, 0), (0x11, 0), (0x10, 1), (0x11, 1), (0x10, 0)]
        assert len(plan) == 100
        ev_at = {0: "syn", 1: "syn-ack", 96: "fin-active", 98: "fin-passive", 99: "fin-acked;time-wait"}
    fin_step = [k for k, v in ev_at.items() if v == "fin-active"][0]
    per = len(plan)
    with open(cap, "wb") as pc, open(side, "w", newline="") as sc:
        pc.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        sc.write("frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,"
                 "events,calls,summary,severity,related\n")
        buf, rows = [], []
        for i in range(n):
            conn, step = divmod(i, per)
            flags, rev = plan[step]
            sport = 10000 + conn % 50000
            a, b = (bytes([10, 0, 0, 1]), sport), (bytes([10, 0, 0, 2]), 80)
            (sip, sp), (dip, dp) = (b, a) if rev else (a, b)
            payload = b"x" * 10 if flags == 0x18 else b""
            tcp = struct.pack("!HHIIBBHHH", sp, dp, 1000 + step, 2000, 0x50, flags, 65535, 0, 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, sip, dip) + tcp
            eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip
            usec = i * 7 % 1000000
            secs = t0 + i // 1000
            buf.append(struct.pack("<IIII", secs, usec, len(eth), len(eth)) + eth)
            letters = "".join(c for c, bit in zip("FSRPAUEC", [1, 2, 4, 8, 16, 32, 64, 128]) if flags & bit)
            ev = ev_at.get(step, "")
            calls = "shut_wr|close" if step == fin_step else ""
            if step == fin_step:
                summ = f'"Client 10.0.0.1:{sport} closes first (FIN): shutdown(SHUT_WR), a half-close, ""it keeps reading"""'
            elif ev:
                summ = f"Frame {i + 1} of connection {conn}: {ev}"
            elif mix == "worst":
                summ = f'"Frame {i + 1}, connection {conn}"'
            else:
                summ = ""
            sev = "note" if step == fin_step else ("chat" if ev else "")
            rel = str(i) if ev and step > fin_step else ""
            rows.append(f"{i + 1},{secs}.{usec:06d}000,{conn},{'.'.join(map(str, sip))}:{sp},"
                        f"{'.'.join(map(str, dip))}:{dp},{letters},{step},{step},{len(payload)},"
                        f"ESTABLISHED,ESTABLISHED,{ev},{calls},{summ},{sev},{rel}\n")
            if len(buf) >= 10000:
                pc.write(b"".join(buf)); sc.write("".join(rows)); buf, rows = [], []
        pc.write(b"".join(buf)); sc.write("".join(rows))
    return cap, side

def run_once(cmd, env):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0 or (b"Lua" in err and b"rror" in err):
        sys.exit(f"failed: {cmd}: {err.decode()[:500]}")
    return wall, ru.ru_utime + ru.ru_stime

def timed(cmd, env, runs):
    res = [run_once(cmd, env) for _ in range(runs)]
    walls = [w for w, _ in res]
    cpus = [c for _, c in res]
    return statistics.median(walls), statistics.median(cpus), min(walls), max(walls)

def arg(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1_000_000
    keep = arg("--keep", None)
    mix = arg("--mix", "realistic")
    runs = int(arg("--runs", "3"))
    modes = arg("--modes", "open,frames,fields,expert,nosidecar").split(",")
    plugin = arg("--plugin", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lua", "tcpshut.lua"))
    with tempfile.TemporaryDirectory() as tmp:
        d = keep or tmp
        os.makedirs(d, exist_ok=True)
        cap, side = os.path.join(d, "big.pcap"), os.path.join(d, "big.pcap.tcpshut.csv")
        if not (keep and os.path.exists(side) and os.path.exists(d + "/.n") and open(d + "/.n").read() == f"{n} {mix}"):
            cap, side = write(d, n, mix)
            with open(os.path.join(d, ".n"), "w") as f:
                f.write(f"{n} {mix}")
        env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "cfg"))
        env.pop("TCPSHUT_SIDECAR", None)
        print(f"{n} frames, mix {mix}, capture {os.path.getsize(cap) >> 20} MiB, "
              f"sidecar {os.path.getsize(side) >> 20} MiB, {runs} runs each, load {os.getloadavg()[0]:.1f}")
        base = ["tshark", "-n", "-r", cap]
        lua = base + ["-X", "lua_script:" + plugin, "-o", "tcpshut.sidecar:" + side]
        # without the plugin tcpshut.summary does not exist: -e frame.number alone
        nothing = os.path.join(d, "no-sidecar")
        os.makedirs(nothing, exist_ok=True)
        bare_cap = os.path.join(nothing, "big.pcap")  # the capture, no sidecar beside it
        if not os.path.exists(bare_cap):
            os.link(cap, bare_cap)
        extras = {"open": ([], []),
                  "frames": (["-T", "fields", "-e", "frame.number"], ["-T", "fields", "-e", "frame.number"]),
                  "fields": (["-T", "fields", "-e", "frame.number"],
                             ["-T", "fields", "-e", "frame.number", "-e", "tcpshut.summary"]),
                  "expert": (["-q", "-z", "expert"], ["-q", "-z", "expert"])}
        for mode in modes:
            if mode == "nosidecar":
                # the plugin loaded, no sidecar anywhere: what it costs everyone else
                cmd0 = ["tshark", "-n", "-r", bare_cap]
                w0, c0, lo0, hi0 = timed(cmd0, env, runs)
                w1, c1, lo1, hi1 = timed(cmd0 + ["-X", "lua_script:" + plugin], env, runs)
            else:
                w0, c0, lo0, hi0 = timed(base + extras[mode][0], env, runs)
                w1, c1, lo1, hi1 = timed(lua + extras[mode][1], env, runs)
            print(f"{mode:6}: without {w0:6.2f} s [{lo0:.2f}-{hi0:.2f}] (cpu {c0:6.2f}), "
                  f"with {w1:6.2f} s [{lo1:.2f}-{hi1:.2f}] (cpu {c1:6.2f}), "
                  f"ratio wall {w1 / w0:.2f}, cpu {c1 / c0:.2f}", flush=True)
        print(f"load after: {os.getloadavg()[0]:.1f}")

if __name__ == "__main__":
    main()
