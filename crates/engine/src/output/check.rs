//! The invariants every annotation must satisfy, whatever the input: one
//! row per decoded TCP segment, rows in frame order, connection ids in
//! range, `related` never pointing forward, one report per connection,
//! and the same rows whether made in one pass, in two, or in one that
//! gave way to two.
//! The mangled-input test, the property tests and the fuzz target all run
//! captures through [`annotate_checked`]; a broken invariant panics.

use crate::analysis::{annotate_bytes, CaptureSummary, Detail, RowSink, Schedule, Verdicts};
use crate::annotate::Row;
use crate::report::ConnectionReport;
use crate::writer::CsvSink;

/// A sink that asserts the row invariants as rows arrive.
#[derive(Default)]
struct InvariantSink {
    rows: u64,
    last_frame: u64,
    connections: u32,
}

impl RowSink for InvariantSink {
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        self.connections = capture.connections;
        Ok(())
    }

    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        assert!(row.frame > self.last_frame, "rows in frame order");
        assert!(row.conn < self.connections, "connection id in range");
        assert!(
            row.related.is_none_or(|r| r <= row.frame),
            "related points back"
        );
        // The sentence is produced lazily: make sure it can be.
        let _ = row.summary.to_string();
        self.last_frame = row.frame;
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Annotates `bytes` as a capture, checking every invariant. Returns the
/// result, or `None` when the bytes could not be read as a capture at all.
pub fn annotate_checked(bytes: &[u8], name: &str) -> Option<Verdicts> {
    let mut sink = InvariantSink::default();
    let result =
        annotate_bytes(bytes, name, Detail::Reports, &mut sink, Schedule::TwoPasses).ok()?;
    assert_eq!(
        sink.rows, result.capture.decode.tcp_segments,
        "{name}: one row per TCP frame"
    );
    assert_eq!(
        result.reports.len() as u32,
        result.capture.connections,
        "{name}: one report per connection"
    );
    let csv = |schedule| {
        let mut out = Vec::new();
        annotate_bytes(
            bytes,
            name,
            Detail::Verdicts,
            &mut CsvSink::new(&mut out),
            schedule,
        )
        .map(|_| out)
        .map_err(|e| e.to_string())
    };
    let two = csv(Schedule::TwoPasses);
    assert_eq!(
        csv(Schedule::default()),
        two,
        "{name}: one pass = two passes"
    );
    let gives_way = Schedule::OnePass { max_held_rows: 3 };
    assert_eq!(
        csv(gives_way),
        two,
        "{name}: one pass giving way = two passes"
    );
    Some(result)
}
