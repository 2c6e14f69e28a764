//! The connections sidecar: one CSV line per connection
//! (`CAPTURE.tcpshut.connections.csv`, beside the segments' sidecar), so
//! that the Wireshark plugin can show a connection's outcome, closer and
//! calls on every frame of it. Connections are written as their verdict
//! is settled (as they leave the flow table, then those still open at the
//! end), not in id order: nothing is held, and readers key them by `conn`.

use crate::output::reports::ConnectionReport;
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::CaptureSummary;
use crate::wire::capture::Frame;
use std::io::{self, Write};

/// The header line, exactly (docs/sidecar.md).
pub const CONNECTIONS_HEADER: &str =
    "conn,client,server,outcome,closer,client_calls,server_calls,first_frame,last_frame,notes,tunnel";

/// Writes the connections sidecar from [`RowSink::connection`]; rows are
/// ignored.
pub struct ConnectionsCsvSink<W: Write> {
    out: W,
    started: bool,
    /// The line being written (kept: one allocation for all).
    line: String,
}

impl<W: Write> ConnectionsCsvSink<W> {
    pub fn new(out: W) -> Self {
        ConnectionsCsvSink {
            out,
            started: false,
            line: String::with_capacity(160),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            writeln!(self.out, "{CONNECTIONS_HEADER}")?;
        }
        Ok(())
    }
}

/// One connection's line, without its line break, into `line` (no field
/// needs quoting: addresses, codes, numbers, and the tunnel as shown
/// everywhere, which has no comma), pieced together without `format!`
/// (it is written for every connection).
fn push_connection_line(report: &ConnectionReport, line: &mut String) {
    use std::fmt::Write as _;
    let [client, server] = &report.endpoints;
    let mut numbers = itoa::Buffer::new();
    line.push_str(numbers.format(report.id));
    for text in [
        &report.client,
        &report.server,
        report.outcome.name(),
        report.closer.name(),
    ] {
        line.push(',');
        line.push_str(text);
    }
    for calls in [client.calls, server.calls] {
        line.push(',');
        calls.pieces(|piece| line.push_str(piece));
    }
    for frame in [report.first_frame, report.last_frame] {
        line.push(',');
        line.push_str(numbers.format(frame));
    }
    line.push(',');
    for (i, note) in report.notes.iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        line.push_str(note);
    }
    line.push(',');
    if !report.tunnel.is_none() {
        write!(line, "{}", report.tunnel).expect("a String takes any text");
    }
}

impl<W: Write> RowSink for ConnectionsCsvSink<W> {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    /// The line shows none of what a brief report leaves out.
    fn brief_reports(&self) -> bool {
        true
    }
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        self.start()
    }
    fn row(&mut self, _: &Row) -> io::Result<()> {
        Ok(())
    }
    fn ignores_rows(&self) -> bool {
        true
    }
    fn frame(&mut self, _: &Frame<'_>, _: Option<&Row>) -> io::Result<()> {
        Ok(())
    }
    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        self.start()?;
        self.line.clear();
        push_connection_line(report, &mut self.line);
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.start()?;
        self.out.flush()
    }
}
