//! The invariants every annotation must satisfy, whatever the input: one
//! row per decoded TCP segment, rows in frame order, connection ids in
//! range, `related` never pointing forward, one report per connection.
//! The mangled-input test, the property tests and the fuzz target all run
//! captures through [`annotate_checked`]; a broken invariant panics.

use crate::analysis::{annotate_bytes, CaptureSummary, Detail, RowSink, Verdicts};
use crate::annotate::Row;
use crate::report::ConnectionReport;

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
    let result = annotate_bytes(bytes, name, Detail::Reports, &mut sink).ok()?;
    assert_eq!(
        sink.rows, result.capture.decode.tcp_segments,
        "{name}: one row per TCP frame"
    );
    assert_eq!(
        result.reports.len() as u32,
        result.capture.connections,
        "{name}: one report per connection"
    );
    Some(result)
}
