//! Where rows go: the [`RowSink`] a schedule feeds, in frame order,
//! [`Tee`] to feed two at once, and [`EachReport`] for reports alone.
//! The sinks themselves (CSV, JSON, pcapng) are in the output layer.

use crate::output::reports::{ConnectionReport, SettledConnection};
use crate::output::rows::Row;
use crate::pipeline::summary::CaptureSummary;
use crate::wire::capture::Frame;

/// Which read of the capture a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// From 1.
    pub number: u8,
    /// How many reads the run takes, as far as known: 1 in one pass; 2 for
    /// two passes.
    pub of: u8,
}

/// Makes the bytes a sink writes for a row, apart from the sink: on
/// another thread, so that two threads can share the rows made at the end
/// of a capture ([`RowSink::row_formatter`]). Rows are formatted into one
/// chunk, handed over whole ([`RowFormatter::take`]): a copy of each
/// row's bytes into the chunk cost ~40 instructions a row.
pub trait RowFormatter: Send {
    /// Appends the bytes of `row` (those [`RowSink::row`] writes) to the
    /// chunk being made.
    fn format(&mut self, row: &Row);
    /// The rows formatted since the last call, in order; the next are
    /// formatted into `room` (a chunk handed back once written, so that
    /// none is allocated after the first few, or an empty one).
    fn take(&mut self, room: FormattedRows) -> FormattedRows;
}

/// Rows made by a [`RowFormatter`]: the first `len` bytes of `bytes`. The
/// rest is room the formatter keeps (initialised, so that a chunk handed
/// back is filled again without being cleared).
#[derive(Default)]
pub struct FormattedRows {
    bytes: Vec<u8>,
    len: usize,
}

impl FormattedRows {
    /// The first `len` bytes of `bytes` are formatted rows.
    pub fn new(bytes: Vec<u8>, len: usize) -> Self {
        assert!(
            len <= bytes.len(),
            "{len} formatted bytes of {}",
            bytes.len()
        );
        FormattedRows { bytes, len }
    }

    /// The formatted rows.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The allocation, room included, to be formatted into again.
    pub fn into_room(self) -> Vec<u8> {
        self.bytes
    }
}

/// Receives the results of [`annotate`], in order.
pub trait RowSink {
    /// Whether the sink needs pass 1's results before the first row (a
    /// JSON document starts with its summary and connections) or every
    /// frame (an annotated copy); the capture is then read twice. A sink
    /// that needs only the rows says `false`: it then gets no
    /// [`RowSink::frame`] calls, and [`RowSink::begin`] comes before the
    /// capture is read, with what is known then (path and format).
    fn needs_first_pass(&self) -> bool {
        true
    }
    /// Called once before any row: after pass 1, or (see
    /// [`RowSink::needs_first_pass`]) before reading.
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        connections: &[ConnectionReport],
    ) -> std::io::Result<()>;
    /// Called once per TCP segment, in frame order.
    fn row(&mut self, row: &Row) -> std::io::Result<()>;
    /// Called once per frame, in order, with the frame's row if it is a
    /// TCP segment. Sinks that only want rows keep the default.
    fn frame(&mut self, _frame: &Frame<'_>, row: Option<&Row>) -> std::io::Result<()> {
        match row {
            Some(row) => self.row(row),
            None => Ok(()),
        }
    }
    fn finish(&mut self) -> std::io::Result<()>;
    /// Whether the sink wants every connection's report through
    /// [`RowSink::connection`]; no report is made for sinks that do not.
    fn wants_connections(&self) -> bool {
        false
    }
    /// Called once per connection, as its verdict is settled (when it
    /// leaves the flow table, then those still open at the end): not in id
    /// order. Only when [`RowSink::wants_connections`].
    fn connection(&mut self, _report: &ConnectionReport) -> std::io::Result<()> {
        Ok(())
    }
    /// How the one-pass schedules hand over a connection as its verdict is
    /// settled (when [`RowSink::wants_connections`]): by default its report,
    /// brief if [`RowSink::brief_reports`], to [`RowSink::connection`]. A
    /// sink that shows a few of a report's fields may write them from the
    /// connection instead, the same as from its report.
    fn settled(&mut self, settled: &SettledConnection<'_>) -> std::io::Result<()> {
        self.connection(&settled.report(self.brief_reports()))
    }
    /// Whether the reports handed to [`RowSink::connection`] must carry
    /// Zeek's view of the connection (`zeek_rows`, `zeek_conn_state`,
    /// `zeek_history`). Following Zeek's model costs on every segment, so
    /// only sinks that show it ask (conn.log, the Parquet connections
    /// table); without, those fields are those of a connection Zeek never
    /// saw start. Only read when [`RowSink::wants_connections`].
    fn wants_zeek_view(&self) -> bool {
        false
    }
    /// Whether the reports handed to [`RowSink::connection`] may be brief
    /// ([`ConnectionReport::brief`]: no Community ID, Zeek view, evidence
    /// frames, RST origins or endpoint addresses), for a sink that reads
    /// none of them: they cost about three quarters of a report. Only read
    /// when [`RowSink::wants_connections`].
    fn brief_reports(&self) -> bool {
        false
    }
    /// How far `pass` has read into the capture, in bytes: now and then
    /// during each pass, and once at its end. Pass 1 of 2 reports before
    /// [`RowSink::begin`]. For progress bars; the default ignores it.
    fn progress(&mut self, _pass: Pass, _bytes: u64) {}
    /// For a sink whose bytes for a row depend on that row alone: a
    /// formatter making them on another thread, handed back in order
    /// through [`RowSink::formatted_rows`] (instead of [`RowSink::row`]).
    /// `None` (the default): every row goes through [`RowSink::row`].
    fn row_formatter(&self) -> Option<Box<dyn RowFormatter>> {
        None
    }
    /// The bytes of consecutive rows, made by the sink's
    /// [`RowSink::row_formatter`], in frame order among the other rows.
    fn formatted_rows(&mut self, _bytes: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("this sink formats its own rows"))
    }
    /// Whether [`RowSink::row`] does nothing (a sink of connections
    /// only): [`Tee`] then leaves the rows to the other sink.
    fn ignores_rows(&self) -> bool {
        false
    }
    /// The sink this one passes its rows on to, when it wraps one that
    /// takes them all (a [`Tee`] whose other sink ignores rows): the
    /// schedules hand rows straight to it ([`rows_sink`]), one call
    /// through `dyn RowSink` a row instead of one a layer and one to the
    /// sink that ignores it (~25 instructions a row). Its
    /// [`RowSink::row`] and [`RowSink::formatted_rows`] must be this
    /// one's. `None` (the default): rows go to this one.
    fn rows_to(&mut self) -> Option<&mut dyn RowSink> {
        None
    }
}

/// Where `sink`'s rows go in the end ([`RowSink::rows_to`]): the rows of
/// a batch are handed to it, the rest (reports, progress) to `sink`.
pub fn rows_sink(sink: &mut dyn RowSink) -> &mut dyn RowSink {
    // Asked twice: returning the first answer's borrow in one branch and
    // `sink` in the other is refused by the borrow checker.
    if sink.rows_to().is_some() {
        sink.rows_to().expect("asked just before")
    } else {
        sink
    }
}

/// A borrowed sink is a sink (to wrap one that the caller keeps).
impl<T: RowSink + ?Sized> RowSink for &mut T {
    fn needs_first_pass(&self) -> bool {
        (**self).needs_first_pass()
    }
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        connections: &[ConnectionReport],
    ) -> std::io::Result<()> {
        (**self).begin(capture, connections)
    }
    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        (**self).row(row)
    }
    fn frame(&mut self, frame: &Frame<'_>, row: Option<&Row>) -> std::io::Result<()> {
        (**self).frame(frame, row)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        (**self).finish()
    }
    fn wants_connections(&self) -> bool {
        (**self).wants_connections()
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        (**self).connection(report)
    }
    fn settled(&mut self, settled: &SettledConnection<'_>) -> std::io::Result<()> {
        (**self).settled(settled)
    }
    fn wants_zeek_view(&self) -> bool {
        (**self).wants_zeek_view()
    }
    fn brief_reports(&self) -> bool {
        (**self).brief_reports()
    }
    fn progress(&mut self, pass: Pass, bytes: u64) {
        (**self).progress(pass, bytes)
    }
    fn row_formatter(&self) -> Option<Box<dyn RowFormatter>> {
        (**self).row_formatter()
    }
    fn formatted_rows(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        (**self).formatted_rows(bytes)
    }
    fn ignores_rows(&self) -> bool {
        (**self).ignores_rows()
    }
    fn rows_to(&mut self) -> Option<&mut dyn RowSink> {
        (**self).rows_to()
    }
}

/// Feeds two sinks at once (a sidecar and an annotated copy, say).
pub struct Tee<'a>(pub &'a mut dyn RowSink, pub &'a mut dyn RowSink);

impl RowSink for Tee<'_> {
    fn needs_first_pass(&self) -> bool {
        self.0.needs_first_pass() || self.1.needs_first_pass()
    }
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        connections: &[ConnectionReport],
    ) -> std::io::Result<()> {
        self.0.begin(capture, connections)?;
        self.1.begin(capture, connections)
    }
    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        self.0.row(row)?;
        self.1.row(row)
    }
    fn frame(&mut self, frame: &Frame<'_>, row: Option<&Row>) -> std::io::Result<()> {
        self.0.frame(frame, row)?;
        self.1.frame(frame, row)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.0.finish()?;
        self.1.finish()
    }
    fn wants_connections(&self) -> bool {
        self.0.wants_connections() || self.1.wants_connections()
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        if self.0.wants_connections() {
            self.0.connection(report)?;
        }
        if self.1.wants_connections() {
            self.1.connection(report)?;
        }
        Ok(())
    }
    /// Straight to the one sink that wants connections; one report for
    /// both when both do.
    fn settled(&mut self, settled: &SettledConnection<'_>) -> std::io::Result<()> {
        match (self.0.wants_connections(), self.1.wants_connections()) {
            (true, false) => self.0.settled(settled),
            (false, true) => self.1.settled(settled),
            (true, true) => self.connection(&settled.report(self.brief_reports())),
            (false, false) => Ok(()),
        }
    }
    fn wants_zeek_view(&self) -> bool {
        (self.0.wants_connections() && self.0.wants_zeek_view())
            || (self.1.wants_connections() && self.1.wants_zeek_view())
    }
    fn brief_reports(&self) -> bool {
        (!self.0.wants_connections() || self.0.brief_reports())
            && (!self.1.wants_connections() || self.1.brief_reports())
    }
    fn progress(&mut self, pass: Pass, bytes: u64) {
        self.0.progress(pass, bytes);
        self.1.progress(pass, bytes);
    }
    /// The formatter of the one sink that takes rows, if the other
    /// ignores them.
    fn row_formatter(&self) -> Option<Box<dyn RowFormatter>> {
        match (self.0.ignores_rows(), self.1.ignores_rows()) {
            (false, true) => self.0.row_formatter(),
            (true, false) => self.1.row_formatter(),
            _ => None,
        }
    }
    fn formatted_rows(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.0.ignores_rows() {
            self.1.formatted_rows(bytes)
        } else {
            self.0.formatted_rows(bytes)
        }
    }
    fn ignores_rows(&self) -> bool {
        self.0.ignores_rows() && self.1.ignores_rows()
    }
    /// The one sink that takes rows, if the other ignores them (as
    /// [`Tee::row_formatter`]).
    fn rows_to(&mut self) -> Option<&mut dyn RowSink> {
        match (self.0.ignores_rows(), self.1.ignores_rows()) {
            (false, true) => Some(rows_sink(&mut *self.0)),
            (true, false) => Some(rows_sink(&mut *self.1)),
            _ => None,
        }
    }
}

/// A sink of connections only, handing each report to a function: what
/// `each_report` runs a schedule with. It takes no rows, so a schedule
/// holds none ([`RowSink::ignores_rows`]), and its reports are full ones
/// without Zeek's view.
pub(crate) struct EachReport<'a>(pub &'a mut dyn FnMut(&ConnectionReport));

impl RowSink for EachReport<'_> {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        Ok(())
    }
    fn row(&mut self, _: &Row) -> std::io::Result<()> {
        Ok(())
    }
    fn ignores_rows(&self) -> bool {
        true
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        (self.0)(report);
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::connections_csv::ConnectionsCsvSink;
    use crate::output::csv::CsvSink;
    use crate::output::json::JsonSink;

    /// The CSV sidecar with its connections sidecar (what `annotate`
    /// writes) formats rows apart: the end of a capture is then made on
    /// two threads. Two sinks that both take rows cannot.
    #[test]
    fn a_tee_formats_apart_when_one_sink_ignores_rows() {
        let (mut csv, mut conns) = (
            CsvSink::new(Vec::new()),
            ConnectionsCsvSink::new(Vec::new()),
        );
        assert!(Tee(&mut csv, &mut conns).row_formatter().is_some());
        assert!(Tee(&mut conns, &mut csv).row_formatter().is_some());
        let mut other = CsvSink::new(Vec::new());
        assert!(Tee(&mut csv, &mut other).row_formatter().is_none());
        let mut json = JsonSink::new(Vec::new());
        assert!(Tee(&mut json, &mut conns).row_formatter().is_none());
    }

    /// The schedules hand rows straight to the one sink of a tee that
    /// takes them, through tees within tees; to the tee itself when both
    /// take rows.
    #[test]
    fn rows_go_straight_to_the_sink_that_takes_them() {
        let (mut csv, mut conns) = (
            CsvSink::new(Vec::new()),
            ConnectionsCsvSink::new(Vec::new()),
        );
        // Where the rows go, as an address.
        fn target(sink: &mut dyn RowSink) -> *const u8 {
            rows_sink(sink) as *mut dyn RowSink as *const u8
        }
        let at = &csv as *const CsvSink<Vec<u8>> as *const u8;
        let mut tee = Tee(&mut conns, &mut csv);
        assert_eq!(target(&mut tee), at);
        let mut more = ConnectionsCsvSink::new(Vec::new());
        let mut outer = Tee(&mut tee, &mut more);
        assert_eq!(target(&mut outer), at);
        let (mut a, mut b) = (CsvSink::new(Vec::new()), CsvSink::new(Vec::new()));
        assert!(Tee(&mut a, &mut b).rows_to().is_none());
    }
}
