#!/usr/bin/env python3
"""Load-cost benchmark for lua/tcpshut.lua (issue #3).

Writes a synthetic capture of N TCP frames (default 1,000,000) and a matching
sidecar into a temporary directory, then times tshark reading it without the
plugin and with it. Nothing is written into the repository.

usage: scripts/bench-wireshark.py [N] [--keep DIR]
"""
import os, struct, subprocess, sys, tempfile, time

def write(dirpath, n):
    cap = os.path.join(dirpath, "big.pcap")
    side = cap + ".tcpshut.csv"
    t0 = 1700000000
    with open(cap, "wb") as pc, open(side, "w", newline="") as sc:
        pc.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        sc.write("frame,ts,conn,src,dst,flags,seq,ack,len,sender_state,receiver_state,"
                 "events,calls,summary,severity,related\n")
        buf, rows = [], []
        # connections of 10 frames: S, SA, A, PA(10 bytes), A, FA, A, FA, A, A
        plan = [(0x02, 0), (0x12, 1), (0x10, 0), (0x18, 0), (0x10, 1),
                (0x11, 0), (0x10, 1), (0x11, 1), (0x10, 0), (0x10, 0)]
        for i in range(n):
            conn, step = divmod(i, 10)
            flags, rev = plan[step]
            sport = 10000 + conn % 50000
            a, b = (bytes([10, 0, 0, 1]), sport), (bytes([10, 0, 0, 2]), 80)
            (sip, sp), (dip, dp) = (b, a) if rev else (a, b)
            payload = b"x" * 10 if step == 3 else b""
            tcp = struct.pack("!HHIIBBHHH", sp, dp, 1000 + step, 2000, 0x50, flags, 65535, 0, 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, sip, dip) + tcp
            eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip
            usec = i * 7 % 1000000
            secs = t0 + i // 1000
            buf.append(struct.pack("<IIII", secs, usec, len(eth), len(eth)) + eth)
            letters = "".join(c for c, bit in zip("FSRPAUEC", [1, 2, 4, 8, 16, 32, 64, 128]) if flags & bit)
            ev = {0: "syn", 1: "syn-ack", 5: "fin-active", 7: "fin-passive", 8: "fin-acked;time-wait"}.get(step, "")
            calls = "shut_wr|close" if step == 5 else ""
            summ = f'"Client 10.0.0.1:{sport} closes first (FIN): shutdown(SHUT_WR), a half-close, ""it keeps reading"""' if step == 5 else \
                   f'"Frame {i + 1} of connection {conn}"'
            sev = "note" if step == 5 else ("chat" if ev else "")
            rel = str(i) if step in (7, 8) else ""
            rows.append(f"{i + 1},{secs}.{usec:06d}000,{conn},{'.'.join(map(str, sip))}:{sp},"
                        f"{'.'.join(map(str, dip))}:{dp},{letters},{step},{step},{len(payload)},"
                        f"ESTABLISHED,ESTABLISHED,{ev},{calls},{summ},{sev},{rel}\n")
            if len(buf) >= 10000:
                pc.write(b"".join(buf)); sc.write("".join(rows)); buf, rows = [], []
        pc.write(b"".join(buf)); sc.write("".join(rows))
    return cap, side

def timed(cmd, env):
    best = None
    for _ in range(2):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        d = time.perf_counter() - t
        if r.returncode != 0 or b"Lua" in r.stderr and b"rror" in r.stderr:
            sys.exit(f"failed: {cmd}: {r.stderr.decode()[:500]}")
        best = d if best is None else min(best, d)
    return best

def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1_000_000
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    plugin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lua", "tcpshut.lua")
    with tempfile.TemporaryDirectory() as tmp:
        d = keep or tmp
        os.makedirs(d, exist_ok=True)
        cap, side = write(d, n)
        env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "cfg"))
        print(f"{n} frames, capture {os.path.getsize(cap) >> 20} MiB, sidecar {os.path.getsize(side) >> 20} MiB")
        base = ["tshark", "-n", "-r", cap]
        lua = base + ["-X", "lua_script:" + plugin, "-o", "tcpshut.sidecar:" + side]
        for label, extra in [("summary lines", []), ("-T fields (tree built)", ["-T", "fields", "-e", "frame.number", "-e", "tcp.flags"]), ("-Y tcp (filtering tree)", ["-Y", "tcp"])]:
            t0 = timed(base + extra, env)
            t1 = timed(lua + extra, env)
            print(f"{label}: without plugin {t0:.2f} s, with plugin {t1:.2f} s, ratio {t1 / t0:.2f}")

if __name__ == "__main__":
    main()
