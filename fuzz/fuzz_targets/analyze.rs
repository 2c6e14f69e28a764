//! Reading plus analysis of arbitrary bytes as a capture: the whole
//! two-pass pipeline (`annotate_bytes`), with the row invariants that must
//! hold for any input: one row per decoded TCP segment, in frame order,
//! connection ids in range, `related` never pointing forward.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpshut_engine::analysis::{CaptureSummary, RowSink};
use tcpshut_engine::annotate::Row;
use tcpshut_engine::report::ConnectionReport;

#[derive(Default)]
struct Check {
    rows: u64,
    last_frame: u64,
    connections: u32,
}

impl RowSink for Check {
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        self.connections = capture.connections;
        Ok(())
    }
    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        assert!(row.frame > self.last_frame, "rows in frame order");
        assert!(row.conn < self.connections, "connection id in range");
        assert!(row.related.is_none_or(|r| r <= row.frame), "related points back");
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

fuzz_target!(|data: &[u8]| {
    let mut check = Check::default();
    if let Ok(result) = tcpshut_engine::annotate_bytes(data, "fuzz.pcap", tcpshut_engine::Detail::Reports, &mut check) {
        assert_eq!(check.rows, result.capture.decode.tcp_segments, "one row per TCP frame");
        assert_eq!(result.reports.len() as u32, result.capture.connections);
    }
});
