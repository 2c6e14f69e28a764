//! The two tables read back with the Parquet crate's own reader: one
//! segments row per sidecar row with the same values, one connections
//! row per connection, the documented types, and row groups of at most
//! `ROWS_PER_GROUP` rows.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tcpshut_engine::{annotate_with, CsvSink, Detail, Schedule};
use tcpshut_parquet::{connections_schema, segments_schema, ParquetSink, ROWS_PER_GROUP};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(name)
}

fn read(bytes: Vec<u8>) -> (Vec<RecordBatch>, usize) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    let groups = builder.metadata().num_row_groups();
    let batches = builder.build().unwrap().map(Result::unwrap).collect();
    (batches, groups)
}

fn tables(capture: &Path, rows_per_group: usize) -> (Vec<RecordBatch>, Vec<RecordBatch>, usize) {
    let (mut segments, mut connections) = (Vec::new(), Vec::new());
    let mut sink = ParquetSink::new(&mut segments, &mut connections)
        .unwrap()
        .with_rows_per_group(rows_per_group);
    tcpshut_engine::annotate(capture, Detail::Reports, &mut sink).unwrap();
    drop(sink);
    let (segments, groups) = read(segments);
    (segments, read(connections).0, groups)
}

#[test]
fn segments_match_the_sidecar_rows_and_connections_the_reports() {
    let capture = testdata("close-unread.pcap");
    let (segments, connections, _) = tables(&capture, ROWS_PER_GROUP);
    let mut csv = Vec::new();
    tcpshut_engine::annotate(&capture, Detail::Brief, &mut CsvSink::new(&mut csv)).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let batch = &segments[0];
    assert_eq!(batch.num_rows(), rows.len());
    assert_eq!(batch.schema(), segments_schema());
    let column = |name: &str| batch.column_by_name(name).unwrap();
    let frames = column("frame").as_primitive::<Int64Type>();
    let flags = column("flags").as_string::<i32>();
    let events = column("events").as_list::<i32>();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(frames.value(i).to_string(), row[0]);
        assert_eq!(flags.value(i), row[5]);
        let listed: Vec<String> = events
            .value(i)
            .as_string::<i32>()
            .iter()
            .map(|e| e.unwrap().to_owned())
            .collect();
        assert_eq!(listed.join(";"), row[11], "events of frame {}", row[0]);
    }
    assert!(matches!(
        column("ts").data_type(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC"
    ));
    let ts = column("ts").as_primitive::<TimestampMicrosecondType>();
    let ts_ns = column("ts_ns").as_primitive::<Int64Type>();
    assert_eq!(ts.value(0), ts_ns.value(0) / 1000);
    assert_eq!(
        column("capture").as_string::<i32>().value(0),
        capture.display().to_string()
    );

    let report = tcpshut_engine::verdicts(&capture, Detail::Reports)
        .unwrap()
        .reports;
    let conns = &connections[0];
    assert_eq!(conns.schema(), connections_schema());
    assert_eq!(conns.num_rows(), report.len());
    let text = |name: &str| {
        conns
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_owned()
    };
    assert_eq!(text("outcome"), report[0].outcome.to_string());
    assert_eq!(text("community_id"), report[0].community_id);
    assert_eq!(
        text("client_calls"),
        report[0].endpoints[0].calls.to_string()
    );
    assert_eq!(
        text("server_state"),
        report[0].endpoints[1].final_state.to_string()
    );
}

#[test]
fn row_groups_are_written_as_rows_arrive() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/third-party/zeek__pop3__pop3.pcap");
    let (whole, _, one) = tables(&capture, ROWS_PER_GROUP);
    let rows: usize = whole.iter().map(RecordBatch::num_rows).sum();
    assert!(rows > 100, "{rows} rows");
    assert_eq!(one, 1);
    let (parts, _, groups) = tables(&capture, 7);
    assert_eq!(groups, rows.div_ceil(7));
    assert_eq!(parts.iter().map(RecordBatch::num_rows).sum::<usize>(), rows);
}

/// Every row of `batches` as text, one string per column value.
fn rows_as_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| format!("{:?}", column.slice(i, 1)))
                    .collect(),
            );
        }
    }
    rows
}

/// The tables of `capture` on `schedule`: the segments rows, and the
/// connections rows sorted by id (one pass writes them as connections
/// leave the engine; two passes from the start, in id order).
fn tables_on(capture: &Path, schedule: Schedule) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (mut segments, mut connections) = (Vec::new(), Vec::new());
    let mut sink = ParquetSink::new(&mut segments, &mut connections)
        .unwrap()
        .with_rows_per_group(100);
    annotate_with(capture, Detail::Brief, &mut sink, schedule).unwrap();
    drop(sink);
    let mut connections = rows_as_text(&read(connections).0);
    // Column 1 is the id.
    connections.sort_by_key(|row| row[1].clone());
    (rows_as_text(&read(segments).0), connections)
}

#[test]
fn every_schedule_writes_the_same_tables_once() {
    for name in [
        "report-mix/mix.pcap",
        "port-reuse.pcap",
        "close-wait-at-end.pcap",
    ] {
        let capture = testdata(name);
        let one = tables_on(&capture, Schedule::default());
        let doc = tcpshut_engine::annotate(
            &capture,
            Detail::Reports,
            &mut tcpshut_engine::MemorySink::default(),
        )
        .unwrap();
        assert_eq!(
            one.1.len(),
            doc.reports.len(),
            "{name}: one row per connection"
        );
        for schedule in [
            Schedule::TwoPasses,
            Schedule::OnePass { max_held_rows: 3 },
            Schedule::OnePassThreaded { max_held_rows: 3 },
        ] {
            assert!(
                tables_on(&capture, schedule) == one,
                "{name}: {schedule:?} wrote other tables"
            );
        }
    }
}

#[path = "../../engine/tests/tunnels/wrap.rs"]
mod wrap;

/// The connections of `bytes` (a capture named `name`) as the Parquet
/// table has them, by id, and the engine's reports of them.
fn connections_and_reports(
    bytes: &[u8],
    name: &str,
) -> (Vec<RecordBatch>, Vec<tcpshut_engine::ConnectionReport>) {
    let (mut segments, mut connections) = (Vec::new(), Vec::new());
    let mut sink = ParquetSink::new(&mut segments, &mut connections).unwrap();
    tcpshut_engine::annotate_bytes(bytes, name, Detail::Brief, &mut sink, Schedule::default())
        .unwrap();
    drop(sink);
    let mut memory = tcpshut_engine::MemorySink::default();
    let reports = tcpshut_engine::annotate_bytes(
        bytes,
        name,
        Detail::Reports,
        &mut memory,
        Schedule::default(),
    )
    .unwrap()
    .reports;
    (read(connections).0, reports)
}

/// The strings of a list cell, `None` for a null list.
fn strings_at(column: &arrow_array::ArrayRef, i: usize) -> Option<Vec<String>> {
    let list = column.as_list::<i32>();
    list.is_valid(i).then(|| {
        list.value(i)
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_owned())
            .collect()
    })
}

/// The tunnel, the RST count, the idle reset and each side's RST origin
/// (forged, unchecked, evidence), as the JSON document's `connections`
/// carry them: on the router recordings (forged and idle resets, and
/// their genuine controls) and on a recording wrapped in tunnels.
#[test]
fn connections_carry_the_tunnel_rst_origin_and_idle_reset() {
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    let router = testdata("router");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&router)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    names.sort();
    assert!(names.len() > 20, "{} router recordings", names.len());
    for path in names {
        inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    for encap in [wrap::Encap::Vxlan(77), wrap::Encap::VxlanInGre] {
        let bytes = wrap::wrap_capture(&testdata("close-client-first.pcap"), encap);
        inputs.push((format!("{encap:?}"), bytes));
    }
    let (mut forged, mut idle, mut tunnelled) = (0, 0, 0);
    for (name, bytes) in &inputs {
        let (batches, reports) = connections_and_reports(bytes, name);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, reports.len(), "{name}");
        for batch in &batches {
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let ids = column("id");
            let ids = ids.as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let r = reports
                    .iter()
                    .find(|r| i64::from(r.id) == ids.value(i))
                    .unwrap();
                let what = format!("{name}: connection {}", r.id);
                let tunnel = column("tunnel");
                let tunnel = tunnel.as_string::<i32>();
                let want = (!r.tunnel.is_none()).then(|| r.tunnel.to_string());
                assert_eq!(
                    tunnel.is_valid(i).then(|| tunnel.value(i)),
                    want.as_deref(),
                    "{what}"
                );
                tunnelled += usize::from(want.is_some());
                let rsts = column("rsts");
                assert_eq!(
                    rsts.as_primitive::<Int64Type>().value(i),
                    i64::from(r.rsts),
                    "{what}"
                );
                let secs = column("idle_reset_secs");
                let secs = secs.as_primitive::<arrow_array::types::Float64Type>();
                assert_eq!(
                    secs.is_valid(i).then(|| secs.value(i)),
                    r.idle_reset_secs,
                    "{what}"
                );
                idle += usize::from(r.idle_reset_secs.is_some());
                for (side, end) in ["client", "server"].iter().zip(&r.endpoints) {
                    let origin = end.rst_origin.as_ref();
                    let flag = |field: &str| {
                        let c = column(&format!("{side}_{field}"));
                        let c = c.as_boolean();
                        c.is_valid(i).then(|| c.value(i))
                    };
                    assert_eq!(
                        flag("rst_forged"),
                        origin.map(|o| o.forged),
                        "{what} {side}"
                    );
                    assert_eq!(
                        flag("rst_unchecked"),
                        origin.map(|o| o.unchecked),
                        "{what} {side}"
                    );
                    let codes =
                        origin.map(|o| o.evidence.iter().map(|s| s.code.to_owned()).collect());
                    let texts = origin.map(|o| o.evidence.iter().map(|s| s.text.clone()).collect());
                    assert_eq!(
                        strings_at(&column(&format!("{side}_rst_evidence")), i),
                        codes,
                        "{what}"
                    );
                    assert_eq!(
                        strings_at(&column(&format!("{side}_rst_evidence_text")), i),
                        texts,
                        "{what}"
                    );
                    forged += usize::from(origin.is_some_and(|o| o.forged));
                }
            }
        }
    }
    // The recordings hold forged and idle resets, the wrapped ones tunnels.
    assert!(forged >= 5, "{forged} sides with forged RSTs");
    assert!(idle >= 2, "{idle} idle resets");
    assert_eq!(tunnelled, 2, "{tunnelled} tunnelled connections");
}

/// A buffer shared by the sink that writes it and the test that reads it.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A real-kernel recording split by `editcap -c 520` into 5 files and
/// annotated as a rotated series: each file's tables hold the whole
/// recording's segments at the file's own frame numbers, and the whole's
/// connection rows (but for the frames, cut to the file) for every
/// connection spanning the file.
#[test]
fn each_file_of_a_series_gets_its_share_of_the_tables() {
    use tcpshut_engine::{annotate_series, RowSink, Series, SeriesFile, SeriesSink};
    let whole = testdata("report-mix/mix.pcap");
    let (whole_segments, whole_connections) = tables_on(&whole, Schedule::default());
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("editcap")
        .args(["-c", "520"])
        .arg(&whole)
        .arg(dir.path().join("part.pcap"))
        .status()
        .expect("editcap is needed (wireshark-common; scripts/install-deps installs it)");
    assert!(status.success());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let series = Series::new(files.clone());
    let mut outputs: Vec<(PathBuf, Shared, Shared)> = Vec::new();
    let mut make = |file: &SeriesFile| -> std::io::Result<Box<dyn RowSink>> {
        let (segments, connections) = (Shared::default(), Shared::default());
        outputs.push((file.path.clone(), segments.clone(), connections.clone()));
        Ok(Box::new(
            ParquetSink::new(segments, connections)?.with_rows_per_group(100),
        ))
    };
    let mut sink = SeriesSink::new(series.log().clone(), &mut make).with_zeek_view(true);
    annotate_series(&series, Detail::Brief, &mut sink, Schedule::default()).unwrap();
    drop(sink);
    let paths: Vec<&PathBuf> = outputs.iter().map(|o| &o.0).collect();
    assert_eq!(paths, files.iter().collect::<Vec<_>>());
    let whole_by_id: std::collections::BTreeMap<String, &Vec<String>> = whole_connections
        .iter()
        .map(|row| (row[1].clone(), row))
        .collect();
    for (index, (path, segments, connections)) in outputs.iter().enumerate() {
        let segments = rows_as_text(&read(segments.0.borrow().clone()).0);
        let share = &whole_segments[index * 520..(index + 1) * 520];
        assert_eq!(segments.len(), 520, "{}", path.display());
        for (i, (got, want)) in segments.iter().zip(share).enumerate() {
            // Capture, frame and related differ; the rest is the whole's.
            assert!(got[1].contains(&format!("  {},\n", i + 1)), "{}", got[1]);
            assert_eq!(
                got[2..got.len() - 1],
                want[2..want.len() - 1],
                "{}",
                path.display()
            );
        }
        let connections = rows_as_text(&read(connections.0.borrow().clone()).0);
        assert!(!connections.is_empty());
        for got in &connections {
            let want = whole_by_id[&got[1]];
            assert_eq!(
                got[11..],
                want[11..],
                "{} connection {}",
                path.display(),
                got[1]
            );
            assert_eq!(got[1..9], want[1..9]);
        }
    }
}

/// An output that takes `room` bytes, then fails as a full disk does.
struct FillsUp {
    room: usize,
}

impl std::io::Write for FillsUp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::other("disk full"));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Row groups are encoded on the sink's own thread: an output failing
/// midway, or at the footer, is the run's error (said, not a panic or a
/// hang), whichever table it is.
#[test]
fn a_failing_output_is_the_runs_error() {
    let capture = testdata("close-unread.pcap");
    let (mut segments, mut connections) = (Vec::new(), Vec::new());
    let mut sink = ParquetSink::new(&mut segments, &mut connections)
        .unwrap()
        .with_rows_per_group(2);
    tcpshut_engine::annotate(&capture, Detail::Reports, &mut sink).unwrap();
    drop(sink);
    for room in [0, 100, segments.len() / 2, segments.len() - 1] {
        let mut sink = ParquetSink::new(FillsUp { room }, Vec::new())
            .unwrap()
            .with_rows_per_group(2);
        let Err(error) = tcpshut_engine::annotate(&capture, Detail::Reports, &mut sink) else {
            panic!("{room}: the segments table does not fit");
        };
        assert!(error.to_string().contains("disk full"), "{room}: {error}");
    }
    for room in [0, connections.len() - 1] {
        let mut sink = ParquetSink::new(Vec::new(), FillsUp { room })
            .unwrap()
            .with_rows_per_group(2);
        let Err(error) = tcpshut_engine::annotate(&capture, Detail::Reports, &mut sink) else {
            panic!("{room}: the connections table does not fit");
        };
        assert!(error.to_string().contains("disk full"), "{room}: {error}");
    }
}

/// Both tables' bytes from `capture` with row groups of `rows`, the
/// encoding on a thread of its own or not, by the schedule.
fn table_bytes(capture: &Path, rows: usize, schedule: &Schedule) -> (Vec<u8>, Vec<u8>) {
    let (mut segments, mut connections) = (Vec::new(), Vec::new());
    let mut sink = ParquetSink::for_schedule(&mut segments, &mut connections, schedule)
        .unwrap()
        .with_rows_per_group(rows);
    annotate_with(capture, Detail::Reports, &mut sink, *schedule).unwrap();
    drop(sink);
    (segments, connections)
}

#[test]
fn a_run_on_one_thread_encodes_inline_to_the_same_bytes() {
    let threaded = Schedule::OnePassThreaded {
        max_held_rows: 1 << 16,
    };
    for name in ["close-unread.pcap", "shut_wr-then-close-unread.pcap"] {
        let capture = testdata(name);
        // Small row groups: many hand-overs, and texts reused between them.
        let inline = table_bytes(&capture, 7, &Schedule::one_thread());
        let (segments, connections) = &inline;
        assert!(!segments.is_empty() && !connections.is_empty(), "{name}");
        assert_eq!(inline, table_bytes(&capture, 7, &threaded), "{name}");
    }
}
