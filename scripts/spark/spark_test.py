"""The Spark job in local mode (local[2]) on a few test captures, one
rotated series among them: its aggregates (every query of
docs/queries.md, in Spark SQL) must equal `tcpshut report --format
json` on the same captures (the RST causes: the segments of `tcpshut
annotate --format json`), as scripts/queries_test.py checks DuckDB.

Usage: scripts/python scripts/spark/spark_test.py [TCPSHUT]
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import queries_test  # noqa: E402
import tcpshut_spark  # noqa: E402

CAPTURES = [
    "close-unread.pcap",
    "close-wait-at-end.pcap",
    "data-after-close.pcap",
    "half-close-data-after-fin.pcap",
    "linger0-after-data-ipv6.pcap",
    "port-reuse.pcap",
    "refused.pcap",
    "third-party/zeek__pop3__pop3.pcap",
    # Forged and idle resets (the rst_origin and idle_reset columns).
    "router/forged-both-at-router.pcap",
    "router/idle-reset-at-client.pcap",
]
# A rotated series (tcpdump -C names): one task, in order.
SERIES = ["close-client-first.pcap", "close-server-first.pcap"]


def run_job(tmp, name, spark, argv):
    """tcpshut_spark.main with `argv`; its results by query."""
    aggregates = tmp / f"{name}.jsonl"
    tcpshut_spark.main(argv + ["--aggregates", str(aggregates)], spark=spark)
    results = {}
    for line in aggregates.read_text().splitlines():
        entry = json.loads(line)
        results[entry["query"]] = entry["rows"]
    if not any(results.values()):
        raise SystemExit(f"every Spark query over {name} returned nothing")
    return results


def main():
    tcpshut = Path(sys.argv[1] if len(sys.argv) > 1 else queries_test.REPO / "target" / "debug" / "tcpshut").resolve()
    if not tcpshut.exists():
        raise SystemExit(f"{tcpshut} is missing: build tcpshut first (cargo build)")
    assert tcpshut_spark.series_key("/d/t.pcap3") == "/d/t.pcap"
    assert tcpshut_spark.series_key("/d/t.pcap") == "/d/t.pcap"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        captures = tmp / "captures"
        captures.mkdir()
        for name in CAPTURES:
            shutil.copy(queries_test.REPO / "testdata" / name, captures / Path(name).name)
        for i, name in enumerate(SERIES):
            shutil.copy(queries_test.REPO / "testdata" / name, captures / ("series.pcap" + (str(i) if i else "")))
        listed = sorted(captures.iterdir())
        listing = tmp / "listing.txt"
        listing.write_text("".join(f"{p}\n" for p in listed))
        want = queries_test.expected(queries_test.report_document(tcpshut, listed),
                                     queries_test.json_documents(tcpshut, listed))
        spark = tcpshut_spark.session("local[2]")
        try:
            started = time.monotonic()
            job = run_job(tmp, "job", spark, [
                "--listing", str(listing), "--out", str(tmp / "dataset"),
                "--tcpshut", str(tcpshut),
            ])
            took = time.monotonic() - started
            # The dataset of `tcpshut annotate --format parquet -o DIR`,
            # read whole by Spark: the same answers.
            queries_test.run([tcpshut, "annotate", *listed, "--format", "parquet",
                              "-o", tmp / "annotated", "--no-progress"])
            read = run_job(tmp, "annotated", spark, ["--dataset", str(tmp / "annotated")])
        finally:
            spark.stop()
        print("spark job on the listing:")
        passed, failed = queries_test.check(job, want)
        print("spark over tcpshut annotate --format parquet -o DIR:")
        more_passed, more_failed = queries_test.check(read, want)
        passed, failed = passed + more_passed, failed + more_failed
    print(f"spark job: {took:.1f} s in local[2]")
    print(f"spark: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
