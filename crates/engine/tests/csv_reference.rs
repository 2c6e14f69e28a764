//! The CSV sidecar's fast writer (`output/csv.rs` and its fast path
//! `output/csv_fast.rs`) against a reference writer made the obvious way,
//! with the `csv` crate and each field's `Display`: the two must write the
//! same bytes for every capture in `testdata/` (the real-kernel captures,
//! their derived copies and the third-party corpus). The connections
//! sidecar's writer likewise, against each field's `Display` joined by
//! `format!` from the full reports, both as the one-pass schedules feed it
//! (straight from each settled connection, [`RowSink::settled`]) and from
//! brief reports (as a series' files feed it, [`RowSink::brief_reports`]);
//! and the brief reports against the full.

use std::path::{Path, PathBuf};

use tcpshut_engine::starts_like_capture;
use tcpshut_engine::ConnectionReport;
use tcpshut_engine::{
    annotate_with, CaptureSummary, ConnectionsCsvSink, CsvSink, Detail, RowSink, Schedule,
    CONNECTIONS_HEADER, CSV_HEADER,
};

mod common;

/// The sidecar as `docs/sidecar.md` describes it, written by `csv::Writer`.
struct ReferenceCsv {
    out: csv::Writer<Vec<u8>>,
}

impl RowSink for ReferenceCsv {
    fn needs_first_pass(&self) -> bool {
        false
    }

    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        self.out.write_record(CSV_HEADER)?;
        Ok(())
    }

    fn row(&mut self, row: &tcpshut_engine::Row) -> std::io::Result<()> {
        let calls = row.calls.map(|c| c.to_string()).unwrap_or_default();
        let related = row.related.map(|r| r.to_string()).unwrap_or_default();
        self.out.write_record([
            row.frame.to_string(),
            row.ts.to_string(),
            row.conn.to_string(),
            row.src.to_string(),
            row.dst.to_string(),
            row.flags.to_string(),
            row.seq.to_string(),
            row.ack.to_string(),
            row.len.to_string(),
            row.sender_state.to_string(),
            row.receiver_state.to_string(),
            row.events.to_string(),
            calls,
            row.summary.to_string(),
            row.severity.code().to_string(),
            related,
        ])?;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The connections sidecar made the obvious way: each field's `Display`.
struct ReferenceConnections {
    out: Vec<u8>,
}

impl RowSink for ReferenceConnections {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        use std::io::Write;
        writeln!(self.out, "{CONNECTIONS_HEADER}")
    }
    fn row(&mut self, _: &tcpshut_engine::Row) -> std::io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        use std::io::Write;
        let [client, server] = &report.endpoints;
        writeln!(
            self.out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            report.id,
            report.client,
            report.server,
            report.outcome,
            report.closer,
            client.calls,
            server.calls,
            report.first_frame,
            report.last_frame,
            report.notes.join(";"),
            report.tunnel,
        )
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The connections sidecar's writer fed each connection's brief report
/// ([`RowSink::connection`]) instead of the connection itself.
struct ThroughReports<'a>(ConnectionsCsvSink<&'a mut Vec<u8>>);

impl RowSink for ThroughReports<'_> {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn brief_reports(&self) -> bool {
        true
    }
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        reports: &[ConnectionReport],
    ) -> std::io::Result<()> {
        self.0.begin(capture, reports)
    }
    fn row(&mut self, _: &tcpshut_engine::Row) -> std::io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        self.0.connection(report)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.0.finish()
    }
}

/// Every file under `dir` that starts like a capture, in name order.
fn captures(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            captures(&path, found);
        } else if std::fs::read(&path).is_ok_and(|bytes| starts_like_capture(&bytes)) {
            found.push(path);
        }
    }
}

/// Every capture of `testdata/`, the third-party corpus included.
fn all_captures() -> Vec<PathBuf> {
    let third_party = common::realworld_dir();
    let testdata = third_party.parent().expect("testdata").to_path_buf();
    let mut files = Vec::new();
    captures(&testdata, &mut files);
    assert!(
        files.iter().any(|f| f.starts_with(&third_party)) && files.len() >= 100,
        "expected the test captures and the third-party corpus under {}, found {}",
        testdata.display(),
        files.len()
    );
    files
}

#[test]
fn the_fast_csv_writer_writes_what_the_csv_crate_writes() {
    let files = all_captures();
    let mut differ = Vec::new();
    let mut tunnelled = 0;
    for file in &files {
        let mut fast_conns = Vec::new();
        let mut reference_conns = ReferenceConnections { out: Vec::new() };
        annotate_with(
            file,
            Detail::Brief,
            &mut ConnectionsCsvSink::new(&mut fast_conns),
            Schedule::default(),
        )
        .ok();
        annotate_with(
            file,
            Detail::Brief,
            &mut reference_conns,
            Schedule::default(),
        )
        .ok();
        if fast_conns != reference_conns.out {
            differ.push(format!("{} (connections)", file.display()));
        }
        let mut from_reports = Vec::new();
        annotate_with(
            file,
            Detail::Brief,
            &mut ThroughReports(ConnectionsCsvSink::new(&mut from_reports)),
            Schedule::default(),
        )
        .ok();
        if from_reports != reference_conns.out {
            differ.push(format!("{} (connections from reports)", file.display()));
        }
        // A line with a tunnel does not end with its empty last field.
        let text = String::from_utf8_lossy(&fast_conns);
        tunnelled += text.lines().skip(1).filter(|l| !l.ends_with(',')).count();
        let mut fast = CsvSink::new(Vec::new());
        let mut reference = ReferenceCsv {
            out: csv::Writer::from_writer(Vec::new()),
        };
        let schedule = Schedule::default();
        let fast_result = annotate_with(file, Detail::Brief, &mut fast, schedule);
        let reference_result = annotate_with(file, Detail::Brief, &mut reference, schedule);
        if fast_result.is_err() || reference_result.is_err() {
            // A capture the engine cannot read has no sidecar either way.
            assert_eq!(
                fast_result.err().map(|e| e.to_string()),
                reference_result.err().map(|e| e.to_string()),
                "{}",
                file.display()
            );
            continue;
        }
        let fast = fast.into_inner().expect("a Vec takes every write");
        let reference = reference.out.into_inner().expect("flushed");
        if fast != reference {
            differ.push(file.display().to_string());
        }
    }
    assert!(differ.is_empty(), "the two writers differ on {differ:?}");
    // The connections' tunnel column was compared too.
    assert!(tunnelled > 0, "no tunnelled capture");
}

/// Every report handed to it, as JSON, brief ones or full ones.
struct Reports {
    brief: bool,
    json: Vec<serde_json::Value>,
}

impl RowSink for Reports {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn brief_reports(&self) -> bool {
        self.brief
    }
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        Ok(())
    }
    fn row(&mut self, _: &tcpshut_engine::Row) -> std::io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        self.json.push(serde_json::to_value(report)?);
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A brief report is the full one without the fields
/// `ConnectionReport::brief` documents as left out, and nothing else.
#[test]
fn brief_reports_are_the_full_ones_less_what_they_leave_out() {
    use serde_json::json;
    let (mut connections, mut left_out) = (0, 0);
    for file in &all_captures() {
        let run = |brief| {
            let mut sink = Reports {
                brief,
                json: Vec::new(),
            };
            annotate_with(file, Detail::Brief, &mut sink, Schedule::default())
                .map(|_| sink.json)
                .ok()
        };
        let (Some(brief), Some(mut full)) = (run(true), run(false)) else {
            continue;
        };
        for report in &mut full {
            let before = report.clone();
            report["community_id"] = json!("");
            report["zeek_conn_state"] = json!("");
            report["zeek_history"] = json!("");
            report["zeek_rows"] = json!([]);
            for end in report["endpoints"].as_array_mut().expect("two endpoints") {
                end["addr"] = json!("");
                end["evidence"] = json!([]);
                end.as_object_mut().expect("an object").remove("rst_origin");
            }
            left_out += usize::from(before != *report);
        }
        connections += full.len();
        assert_eq!(brief, full, "{}", file.display());
    }
    assert!(
        connections > 0 && left_out == connections,
        "{connections} connections, {left_out} with fields left out"
    );
}
