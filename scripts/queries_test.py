"""Runs every SQL block of docs/queries.md in DuckDB over the Parquet
dataset of the test captures (`tcpshut annotate DIR --format parquet -o
DATASET`, read whole), and checks each result against the same
aggregate of `tcpshut report --format json` on the same captures (the
RST causes, which the report does not count per segment, against the
segments of `tcpshut annotate --format json`).

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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERIES_MD = REPO / "docs" / "queries.md"

RST_EVENTS = ["rst-abort", "rst-refused", "rst-after-close", "rst-forged", "rst-idle",
              "rst-stray", "rst-ignored"]


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
    """The real-kernel captures (those recorded through a router among
    them: forged and idle resets) and the third-party corpus."""
    found = []
    for folder in [REPO / "testdata", REPO / "testdata" / "router", REPO / "testdata" / "third-party"]:
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
        prefix = {"third-party": "tp-", "router": "router-"}.get(path.parent.name, "")
        shutil.copy(path, dest / (prefix + path.name))
    return dest


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def captures_in(captures):
    """A list of captures, or the .pcap/.pcapng files of a folder."""
    if isinstance(captures, Path):
        return [p for p in sorted(captures.iterdir()) if p.suffix in (".pcap", ".pcapng")]
    return list(captures)


def report_document(tcpshut, captures):
    """`tcpshut report --format json` over the captures: the reference."""
    return json.loads(run([tcpshut, "report", *captures_in(captures), "--format", "json",
                           "--no-progress"]))


def json_documents(tcpshut, captures):
    """`tcpshut annotate --format json` of every capture."""
    return [json.loads(run([tcpshut, "annotate", p, "--format", "json", "-o", "-"]))
            for p in captures_in(captures)]


def expected(report, docs):
    """Every query's expected rows: the aggregates of `report` (the
    tcpshut-report/1 document) for the report's four questions, put in
    the order of each query's ORDER BY; the RST segments by cause from
    the annotate documents `docs` (the report counts connections, not
    segments)."""
    out = {}

    rows = []
    for s in report["services"]:
        resets = s["outcomes"]["reset"]
        if resets == 0:
            continue
        server_aborts = s["server_aborts_after_data"] + s["server_aborts_without_data"]
        client_aborts = s["client_aborts_after_data"] + s["client_aborts_without_data"]
        pct = round(100.0 * resets / s["connections"], 1)
        rows.append((s["service"], s["connections"], resets, server_aborts, client_aborts, pct))
    rows.sort(key=lambda t: (-t[2], t[0]))
    out["top_resetting_services"] = rows[:20]

    rows = []
    for t in report["time_wait"]:
        if not t["peak_exact"]:
            raise SystemExit(f"the report's TIME-WAIT peak of {t['holder']} is a lower bound: "
                             "choose test captures where it is exact")
        rows.append((t["holder"], t["side"], t["service"], t["connections"], t["peak"]))
    rows.sort(key=lambda t: (-t[4], -t[3], t[0], t[1], t[2]))
    out["time_wait_holders"] = rows

    rows = [(c["service"], c["side"], c["connections"], c["oldest_secs"])
            for c in report["close_wait"]]
    rows.sort(key=lambda t: (-t[2], t[0], t[1]))
    out["close_wait_leaks"] = rows

    rows = []
    for s in report["services"]:
        for side in ("client", "server"):
            for cls, n in s[f"{side}_calls"].items():
                if cls != "-":
                    rows.append((s["service"], side, cls, n))
    rows.sort(key=lambda t: (t[0], t[1], -t[3], t[2]))
    out["calls_per_service"] = rows

    counts = [0] * len(RST_EVENTS)
    for d in docs:
        for s in d["segments"]:
            for i, ev in enumerate(RST_EVENTS):
                counts[i] += ev in s["events"]
    out["rst_causes"] = [tuple(counts)]

    rows = [(s["service"], s["forged_resets"]) for s in report["services"] if s["forged_resets"] > 0]
    rows.sort(key=lambda t: (-t[1], t[0]))
    out["forged_resets"] = rows

    rows = [(r["client"], r["service"], r["connections"], r["forged"],
             round(r["shortest_secs"], 3), round(r["longest_secs"], 3))
            for r in report["idle_resets"]]
    rows.sort(key=lambda t: (-t[2], t[0], t[1]))
    out["idle_resets"] = rows
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
        dataset = Path(tmp) / "dataset"
        run([tcpshut, "annotate", captures, "--format", "parquet", "-o", dataset, "--no-progress"])
        want = expected(report_document(tcpshut, captures), json_documents(tcpshut, captures))
        db = duckdb.connect()
        results = {}
        for name, sql in sql_blocks():
            sql = sql.replace("'dataset/", f"'{dataset}/")
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
