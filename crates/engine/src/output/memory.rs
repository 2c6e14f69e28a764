//! Rows kept in memory, for tests and for `tcpshut lab`'s terminal view of
//! its small captures.

use std::io;

use crate::output::reports::ConnectionReport;
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::CaptureSummary;

/// Rows kept in memory with the capture's summary. Unlike the other
/// sinks its memory grows with the capture: not for captures of any size.
#[derive(Default)]
pub struct MemorySink {
    pub rows: Vec<Row>,
    /// As [`RowSink::begin`] gave it (after pass 1).
    pub capture: Option<CaptureSummary>,
}

impl RowSink for MemorySink {
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        self.capture = Some(capture.clone());
        Ok(())
    }
    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.rows.push(*row);
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}
