"""tcpshut on Apache Spark: many captures on any filesystem Spark reads
(local, HDFS, S3), one Parquet dataset, and the report's aggregates in
Spark SQL. See docs/scale.md.

    spark-submit --master yarn --files target/release/tcpshut \\
        scripts/spark/tcpshut_spark.py --listing hdfs:///captures.txt \\
        --out hdfs:///tcpshut/dataset --queries docs/queries.md

The listing is a text file (on any filesystem) of capture URIs, one per
line. Files of one rotated series (tcpdump -C: NAME, NAME1, NAME2, ...;
or NAME.0, NAME.1, ...) go to one task, in order, so that whatever
spans them stays together on one executor. Each task runs the `tcpshut`
binary shipped with the job (`--files`) on its captures and turns its
JSON documents into rows; Spark writes them as one dataset with the
tables `connections/` and `segments/` (the columns of `tcpshut annotate
--format parquet`, docs/queries.md), then runs every `-- query:` block
of docs/queries.md on it and writes the results as JSON lines to
`--aggregates` (default: printed). With `--dataset DIR` instead, it only
queries a dataset written by `tcpshut annotate --format parquet -o DIR`
(the same two tables).
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pyspark import SparkFiles
from pyspark.sql import SparkSession
from pyspark.sql import types as T

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def series_key(uri):
    """The rotated series a capture belongs to: its name without the
    rotation number tcpdump -C (NAME1) or logrotate (NAME.1) adds."""
    return re.sub(r"(\.pcap|\.pcapng|\.cap)\.?\d+$", r"\1", uri)


def series_order(uri):
    """Order within a series: the bare name first, then by number."""
    m = re.search(r"\.?(\d+)$", uri)
    return (1, int(m.group(1))) if m and series_key(uri) != uri else (0, 0)


def timestamp(text):
    """A JSON timestamp ("secs.nanos") as a datetime, to the microsecond
    (as the Parquet tables store it)."""
    if text is None:
        return None
    whole, _, frac = text.partition(".")
    frac = (frac + "000000000")[:9]
    sign = -1 if whole.startswith("-") else 1
    return EPOCH + timedelta(microseconds=int(whole) * 1_000_000 + sign * int(frac) // 1000)


def nanos(text):
    whole, _, frac = text.partition(".")
    frac = (frac + "000000000")[:9]
    sign = -1 if whole.startswith("-") else 1
    return int(whole) * 1_000_000_000 + sign * int(frac)


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return (host[1:-1] if host.startswith("[") else host), int(port)


def tunnel_text(layers):
    """The tunnels as tcpshut shows them (`vxlan vni=77 10.0.0.1<>10.0.0.2`,
    outermost first, joined by ` / `); None outside tunnels."""
    if not layers:
        return None
    shown = []
    for layer in layers:
        ids = "".join(f" {k}={v}" for k, v in layer.items() if k not in ("kind", "endpoints"))
        shown.append(f"{layer['kind']}{ids} {'<>'.join(layer['endpoints'])}")
    return " / ".join(shown)


def calls_class(steps):
    return ">".join("|".join(step) for step in steps)


SIDE_FIELDS = [
    ("role", T.StringType()),
    ("closed_by", T.StringType()),
    ("calls", T.StringType()),
    ("state", T.StringType()),
    ("state_since", T.TimestampType()),
    ("fin_ts", T.TimestampType()),
    ("fin_retransmits", T.LongType()),
    ("data_after_fin", T.BooleanType()),
]

# The origin of the RSTs sent in a side's name (JSON `rst_origin`).
RST_ORIGIN_FIELDS = [
    ("rst_forged", T.BooleanType()),
    ("rst_unchecked", T.BooleanType()),
    ("rst_evidence", T.ArrayType(T.StringType())),
    ("rst_evidence_text", T.ArrayType(T.StringType())),
]

CONNECTIONS = T.StructType(
    [
        T.StructField("capture", T.StringType()),
        T.StructField("id", T.LongType()),
        T.StructField("client", T.StringType()),
        T.StructField("server", T.StringType()),
        T.StructField("client_ip", T.StringType()),
        T.StructField("client_port", T.IntegerType()),
        T.StructField("server_ip", T.StringType()),
        T.StructField("server_port", T.IntegerType()),
        T.StructField("community_id", T.StringType()),
        T.StructField("first_frame", T.LongType()),
        T.StructField("last_frame", T.LongType()),
        T.StructField("first_ts", T.TimestampType()),
        T.StructField("last_ts", T.TimestampType()),
        T.StructField("rst_ts", T.TimestampType()),
        T.StructField("handshake", T.StringType()),
        T.StructField("outcome", T.StringType()),
        T.StructField("closer", T.StringType()),
        T.StructField("notes", T.ArrayType(T.StringType())),
        T.StructField("zeek_conn_state", T.StringType()),
        T.StructField("zeek_history", T.StringType()),
    ]
    + [T.StructField(f"{side}_{name}", ty) for side in ("client", "server") for name, ty in SIDE_FIELDS]
    + [
        T.StructField("tunnel", T.StringType()),
        T.StructField("rsts", T.LongType()),
        T.StructField("idle_reset_secs", T.DoubleType()),
    ]
    + [T.StructField(f"{side}_{name}", ty) for side in ("client", "server") for name, ty in RST_ORIGIN_FIELDS]
)

SEGMENTS = T.StructType(
    [
        T.StructField("capture", T.StringType()),
        T.StructField("frame", T.LongType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("ts_ns", T.LongType()),
        T.StructField("conn", T.LongType()),
        T.StructField("src", T.StringType()),
        T.StructField("dst", T.StringType()),
        T.StructField("flags", T.StringType()),
        T.StructField("seq", T.LongType()),
        T.StructField("ack", T.LongType()),
        T.StructField("len", T.LongType()),
        T.StructField("sender_state", T.StringType()),
        T.StructField("receiver_state", T.StringType()),
        T.StructField("events", T.ArrayType(T.StringType())),
        T.StructField("calls", T.ArrayType(T.StringType())),
        T.StructField("summary", T.StringType()),
        T.StructField("severity", T.StringType()),
        T.StructField("related", T.LongType()),
    ]
)


def connection_row(capture, c):
    client_ip, client_port = split_addr(c["client"])
    server_ip, server_port = split_addr(c["server"])
    row = [
        capture, c["id"], c["client"], c["server"], client_ip, client_port, server_ip,
        server_port, c["community_id"], c["first_frame"], c["last_frame"],
        timestamp(c["first_ts"]), timestamp(c["last_ts"]), timestamp(c["rst_ts"]),
        c["handshake"], c["outcome"], c["closer"], c["notes"], c["zeek_conn_state"],
        c["zeek_history"],
    ]
    for e in c["endpoints"]:
        row += [
            e["role"], e["closed_by"], calls_class(e["calls"]), e["final_state"],
            timestamp(e["state_since"]), timestamp(e["fin_ts"]), e["fin_retransmits"],
            e["data_after_fin"],
        ]
    row += [tunnel_text(c.get("tunnel")), c["rsts"], c.get("idle_reset_secs")]
    for e in c["endpoints"]:
        origin = e.get("rst_origin")
        if origin is None:
            row += [None, None, None, None]
        else:
            row += [origin["forged"], origin["unchecked"],
                    [sign["code"] for sign in origin["evidence"]],
                    [sign["text"] for sign in origin["evidence"]]]
    return ("connections", tuple(row))


def segment_row(capture, s):
    calls = None if s["calls"] is None else ["|".join(step) for step in s["calls"]]
    return ("segments", (
        capture, s["frame"], timestamp(s["ts"]), nanos(s["ts"]), s["conn"], s["src"], s["dst"],
        s["flags"], s["seq"], s["ack"], s["len"], s["sender_state"], s["receiver_state"],
        s["events"], calls, s["summary"], s["severity"], s["related"],
    ))


def annotate_series(files, tcpshut):
    """Runs tcpshut on one series' files (pairs of URI and bytes), in
    order, on this executor; yields ("connections"|"segments", row)."""
    with tempfile.TemporaryDirectory() as tmp:
        for uri, content in sorted(files, key=lambda f: series_order(f[0])):
            local = Path(tmp) / "capture"
            local.write_bytes(content)
            done = subprocess.run(
                [tcpshut, "annotate", str(local), "--format", "json", "-o", "-", "--no-progress"],
                capture_output=True, text=True,
            )
            # 3: cut short, annotated up to its last whole record.
            if done.returncode not in (0, 3):
                raise RuntimeError(f"tcpshut: {uri}: {done.stderr.strip()}")
            doc = json.loads(done.stdout)
            for c in doc["connections"]:
                yield connection_row(uri, c)
            for s in doc["segments"]:
                yield segment_row(uri, s)


def queries(markdown):
    """The `-- query: NAME` blocks of docs/queries.md."""
    text = Path(markdown).read_text()
    for body in re.findall(r"```sql\n(.*?)```", text, flags=re.S):
        first = body.splitlines()[0].strip()
        if first.startswith("-- query: "):
            yield first[len("-- query: "):].strip(), body.strip().rstrip(";")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listing", help="text file of capture URIs, one per line")
    parser.add_argument("--out", help="where the Parquet dataset goes")
    parser.add_argument("--dataset",
                        help="query this dataset instead (`tcpshut annotate --format parquet -o DIR`)")
    parser.add_argument("--queries", default=str(Path(__file__).resolve().parents[2] / "docs" / "queries.md"))
    parser.add_argument("--aggregates", help="write each query's rows here as JSON lines")
    parser.add_argument("--tcpshut", default="tcpshut",
                        help="the binary's name as shipped with --files (or a path on every executor)")
    parser.add_argument("--master", help="for tests: e.g. local[2]")
    args = parser.parse_args(argv)
    if bool(args.dataset) == bool(args.listing and args.out):
        parser.error("give --listing and --out (run tcpshut on the captures), or --dataset")
    return args


def session(master=None):
    builder = SparkSession.builder.appName("tcpshut").config("spark.sql.session.timeZone", "UTC")
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


def make_dataset(spark, listing, out, tcpshut):
    """Runs tcpshut on every listed capture, a series per task, and
    writes the dataset `out`/connections and `out`/segments."""
    sc = spark.sparkContext
    # The executors unpickle this module's functions: ship it.
    sc.addPyFile(__file__)
    name = os.path.basename(tcpshut)

    uris = [r.value.strip() for r in spark.read.text(listing).collect() if r.value.strip()]
    if not uris:
        raise SystemExit(f"{listing}: no captures listed")
    series = {}
    for uri in uris:
        series.setdefault(series_key(uri), []).append(uri)
    # One partition per series (as far as there are series), read by
    # Spark from any filesystem, then grouped so a series stays whole.
    contents = sc.binaryFiles(",".join(uris), minPartitions=len(series))
    by_series = contents.map(lambda kv: (series_key(kv[0]), kv)).groupByKey(numPartitions=len(series))

    def run(group):
        binary = SparkFiles.get(name) if not os.path.isabs(tcpshut) else tcpshut
        os.chmod(binary, 0o755)
        for _, files in group:
            yield from annotate_series(list(files), binary)

    rows = by_series.mapPartitions(run).cache()
    connections = spark.createDataFrame(rows.filter(lambda r: r[0] == "connections").map(lambda r: r[1]), CONNECTIONS)
    segments = spark.createDataFrame(rows.filter(lambda r: r[0] == "segments").map(lambda r: r[1]), SEGMENTS)
    connections.write.mode("overwrite").parquet(f"{out}/connections")
    segments.write.mode("overwrite").parquet(f"{out}/segments")


def run_queries(spark, dataset, markdown):
    """Every `-- query:` block of `markdown` over the dataset (its
    connections/ and segments/ directories, read whole): {name: rows}."""
    spark.read.parquet(f"{dataset}/connections").createOrReplaceTempView("connections")
    spark.read.parquet(f"{dataset}/segments").createOrReplaceTempView("segments")
    return {qname: [list(r) for r in spark.sql(sql).collect()] for qname, sql in queries(markdown)}


def main(argv=None, spark=None):
    """The job; a test passes its own `spark` session (kept running)."""
    args = parse_args(argv)
    own = spark is None
    spark = spark or session(args.master)
    dataset = args.dataset
    if not dataset:
        make_dataset(spark, args.listing, args.out, args.tcpshut)
        dataset = args.out
    results = run_queries(spark, dataset, args.queries)
    lines = [json.dumps({"query": q, "rows": rows}, default=float) for q, rows in results.items()]
    if args.aggregates:
        Path(args.aggregates).write_text("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
    if own:
        spark.stop()


if __name__ == "__main__":
    main()
