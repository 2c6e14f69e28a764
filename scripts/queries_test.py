"""Runs every SQL block of docs/queries.md in DuckDB over the Parquet
dataset of the test captures, and checks each result against the same
aggregate computed from `tcpshut annotate --format json` on the same
captures (until `tcpshut report --format json` exists, the JSON
document's connections are the reference).

Usage: scripts/python scripts/queries_test.py [TCPSHUT]
(TCPSHUT defaults to target/debug/tcpshut). scripts/spark/spark_test.py
uses the parsing and the expected aggregates from here.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERIES_MD = REPO / "docs" / "queries.md"

# TIME-WAIT length the queries assume (Linux).
TIME_WAIT_MICROS = 60_000_000
RST_EVENTS = ["rst-abort", "rst-refused", "rst-after-close", "rst-stray", "rst-ignored"]


def sql_blocks(markdown_path=QUERIES_MD):
    """The ```sql blocks of the doc: (name, sql), the setup block named
    'setup'. Every block must start with `-- setup` or `-- query: NAME`."""
    text = Path(markdown_path).read_text()
    blocks = []
    for body in re.findall(r"```sql\n(.*?)```", text, flags=re.S):
        first = body.splitlines()[0].strip()
        if first == "-- setup":
            blocks.append(("setup", body))
        elif first.startswith("-- query: "):
            blocks.append((first[len("-- query: "):].strip(), body))
        else:
            raise SystemExit(f"{markdown_path}: an sql block starts with {first!r}, "
                             "not `-- setup` or `-- query: NAME`")
    return blocks


def test_captures():
    """The real-kernel captures and the third-party corpus."""
    found = []
    for folder in [REPO / "testdata", REPO / "testdata" / "third-party"]:
        found += sorted(p for p in folder.iterdir()
                        if p.suffix in (".pcap", ".pcapng") and p.is_file())
    if len(found) < 50:
        raise SystemExit(f"only {len(found)} test captures found under testdata/")
    return found


def copy_captures(into):
    """Copies the test captures into `into`/captures (so that the
    sidecars land there, not in the repository); returns that folder."""
    dest = Path(into) / "captures"
    dest.mkdir()
    for path in test_captures():
        prefix = "tp-" if path.parent.name == "third-party" else ""
        shutil.copy(path, dest / (prefix + path.name))
    return dest


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def json_documents(tcpshut, captures):
    """`tcpshut annotate --format json` of every capture (a list of
    paths, or the .pcap/.pcapng files of a folder)."""
    if isinstance(captures, Path):
        captures = [p for p in sorted(captures.iterdir()) if p.suffix in (".pcap", ".pcapng")]
    return [json.loads(run([tcpshut, "annotate", p, "--format", "json", "-o", "-"])) for p in captures]


def micros(text):
    """Microseconds since the epoch of a JSON timestamp, truncated as the
    Parquet `TIMESTAMP` column stores it."""
    whole, _, frac = text.partition(".")
    frac = (frac + "000000000")[:9]
    sign = -1 if whole.startswith("-") else 1
    return int(whole) * 1_000_000 + sign * int(frac) // 1000


def calls_class(steps):
    return ">".join("|".join(step) for step in steps)


def ip_of(addr):
    host = addr.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def expected(docs):
    """Every query's expected rows, from the JSON documents."""
    conns = [c for d in docs for c in d["connections"]]
    for d in docs:
        for c in d["connections"]:
            c["_capture"] = d["capture"]["path"]
    out = {}

    by_service = defaultdict(lambda: [0, 0, 0])
    for c in conns:
        row = by_service[c["server"]]
        row[0] += 1
        if c["outcome"] == "reset":
            row[1] += 1
            if c["endpoints"][1]["closed_by"] in ("rst", "fin+rst"):
                row[2] += 1
    rows = [(s, n, r, by, round(100.0 * r / n, 1)) for s, (n, r, by) in by_service.items() if r > 0]
    rows.sort(key=lambda t: (-t[2], t[0]))
    out["top_resetting_services"] = rows[:20]

    held = defaultdict(list)
    for c in conns:
        for e in c["endpoints"]:
            if e["final_state"] == "TIME-WAIT":
                held[ip_of(e["addr"])].append(micros(e["state_since"]))
    rows = []
    for host, starts in held.items():
        changes = sorted([(t, 1) for t in starts] + [(t + TIME_WAIT_MICROS, -1) for t in starts])
        at_once = peak = 0
        for _, delta in changes:
            at_once += delta
            peak = max(peak, at_once)
        rows.append((host, len(starts), peak))
    rows.sort(key=lambda t: (-t[2], -t[1], t[0]))
    out["time_wait_holders"] = rows

    ended = defaultdict(int)
    for c in conns:
        ended[c["_capture"]] = max(ended[c["_capture"]], micros(c["last_ts"]))
    leaks = defaultdict(list)
    for c in conns:
        for e in c["endpoints"]:
            if e["final_state"] == "CLOSE-WAIT":
                age = ended[c["_capture"]] - micros(e["state_since"])
                leaks[(c["server"], e["side"])].append(age)
    rows = [(svc, side, len(ages), round(max(ages) / 1e6, 3)) for (svc, side), ages in leaks.items()]
    rows.sort(key=lambda t: (-t[2], t[0], t[1]))
    out["close_wait_leaks"] = rows

    calls = defaultdict(int)
    for c in conns:
        for e in c["endpoints"]:
            cls = calls_class(e["calls"])
            if cls:
                calls[(c["server"], e["side"], cls)] += 1
    rows = [(svc, side, cls, n) for (svc, side, cls), n in calls.items()]
    rows.sort(key=lambda t: (t[0], t[1], -t[3], t[2]))
    out["calls_per_service"] = rows

    counts = [0] * len(RST_EVENTS)
    for d in docs:
        for s in d["segments"]:
            for i, ev in enumerate(RST_EVENTS):
                counts[i] += ev in s["events"]
    out["rst_causes"] = [tuple(counts)]
    return out


def normalize(rows):
    """Rows as tuples of str, int or float, for comparing."""
    def value(v):
        if isinstance(v, bool) or v is None or isinstance(v, (str, int)):
            return v
        return float(v)
    return [tuple(value(v) for v in row) for row in rows]


def same(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if len(g) != len(w):
            return False
        for a, b in zip(g, w):
            if isinstance(a, float) or isinstance(b, float):
                if abs(float(a) - float(b)) > 0.0011:
                    return False
            elif a != b:
                return False
    return True


def check(results, want):
    """Compares each query's rows; returns (passed, failed) and prints
    the differences."""
    passed = failed = 0
    for name, rows in results.items():
        if name not in want:
            print(f"FAIL {name}: no reference aggregate for this query; add one to scripts/queries_test.py")
            failed += 1
            continue
        got = normalize(rows)
        if same(got, want[name]):
            print(f"ok   {name} ({len(got)} rows)")
            passed += 1
        else:
            print(f"FAIL {name}:\n  got  {got}\n  want {want[name]}")
            failed += 1
    for name in want:
        if name not in results:
            print(f"FAIL {name}: the reference has it but docs/queries.md has no such query")
            failed += 1
    return passed, failed


def main():
    import duckdb

    tcpshut = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "target" / "debug" / "tcpshut")
    if not tcpshut.exists():
        raise SystemExit(f"{tcpshut} is missing: build tcpshut first (cargo build)")
    with tempfile.TemporaryDirectory() as tmp:
        captures = copy_captures(tmp)
        run([tcpshut, "annotate", captures, "--format", "parquet", "--no-progress"])
        want = expected(json_documents(tcpshut, captures))
        db = duckdb.connect()
        results = {}
        for name, sql in sql_blocks():
            sql = sql.replace("'captures/", f"'{captures}/")
            if name == "setup":
                db.execute(sql)
            else:
                results[name] = db.execute(sql).fetchall()
        if not any(rows for rows in results.values()):
            raise SystemExit("every query returned nothing: the dataset is empty")
        passed, failed = check(results, want)
    print(f"queries: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
