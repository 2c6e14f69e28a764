//! The connections sidecar: one CSV line per connection
//! (`CAPTURE.tcpshut.connections.csv`, beside the segments' sidecar), so
//! that the Wireshark plugin can show a connection's outcome, closer and
//! calls on every frame of it. Connections are written as their verdict
//! is settled (as they leave the flow table, then those still open at the
//! end), not in id order: nothing is held, and readers key them by `conn`.

use std::hash::BuildHasher;
use std::net::SocketAddr;

use rustc_hash::FxBuildHasher;

use crate::output::csv_fast::push_socket_addr;
use crate::output::reports::{each_note, ConnectionReport, SettledConnection};
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::CaptureSummary;
use crate::tracking::inference::{CallSteps, Closer, Outcome};
use crate::wire::capture::Frame;
use crate::wire::tunnel::Tunnel;
use std::io::{self, Write};

/// The header line, exactly (docs/sidecar.md).
pub const CONNECTIONS_HEADER: &str =
    "conn,client,server,outcome,closer,client_calls,server_calls,first_frame,last_frame,notes,tunnel";

/// Writes the connections sidecar from [`RowSink::settled`] (straight
/// from each connection) or [`RowSink::connection`] (from its report: a
/// series' files, whose frames are renumbered in the report); rows are
/// ignored.
pub struct ConnectionsCsvSink<W: Write> {
    out: W,
    started: bool,
    /// The line being written (kept: one allocation for all).
    line: Vec<u8>,
    /// The outcome, closer and calls fields, by what they are made of: a
    /// capture has few distinct combinations, so each is pieced together
    /// about once (it was ~400 instructions a line, a third of it).
    middles: Vec<Option<(Middle, Vec<u8>)>>,
}

/// What a line's outcome, closer and calls fields are made of.
type Middle = (Outcome, Closer, [CallSteps; 2]);

/// Slots of [`ConnectionsCsvSink::middles`] (a power of two).
const MIDDLE_CACHE: usize = 64;

impl<W: Write> ConnectionsCsvSink<W> {
    pub fn new(out: W) -> Self {
        ConnectionsCsvSink {
            out,
            started: false,
            line: Vec::with_capacity(160),
            middles: vec![None; MIDDLE_CACHE],
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            writeln!(self.out, "{CONNECTIONS_HEADER}")?;
        }
        Ok(())
    }

    /// Writes the line `push` makes (with the cached middles), with its
    /// line break.
    fn write_line(
        &mut self,
        push: impl FnOnce(&mut Vec<u8>, &mut [Option<(Middle, Vec<u8>)>]),
    ) -> io::Result<()> {
        self.start()?;
        self.line.clear();
        push(&mut self.line, &mut self.middles);
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }
}

/// What a connection's line shows, from its report or from the connection
/// and its verdict, client first.
struct LineFields<'a> {
    id: u32,
    ends: [End<'a>; 2],
    outcome: Outcome,
    closer: Closer,
    calls: [CallSteps; 2],
    frames: [u64; 2],
    tunnel: &'a Tunnel,
}

/// An endpoint's address: as a report shows it, or as the connection holds it.
enum End<'a> {
    Text(&'a str),
    Addr(&'a SocketAddr),
}

/// A report's line.
fn report_line(
    report: &ConnectionReport,
    line: &mut Vec<u8>,
    middles: &mut [Option<(Middle, Vec<u8>)>],
) {
    let [client, server] = &report.endpoints;
    let fields = LineFields {
        id: report.id,
        ends: [End::Text(&report.client), End::Text(&report.server)],
        outcome: report.outcome,
        closer: report.closer,
        calls: [client.calls, server.calls],
        frames: [report.first_frame, report.last_frame],
        tunnel: &report.tunnel,
    };
    push_connection_line(
        &fields,
        |note| report.notes.iter().for_each(|n| note(n)),
        line,
        middles,
    );
}

/// The same line straight from the connection and its verdict, as its
/// brief report would show it ([`ConnectionReport::brief`]: the same
/// fields, the same notes).
fn settled_line(
    settled: &SettledConnection<'_>,
    line: &mut Vec<u8>,
    middles: &mut [Option<(Middle, Vec<u8>)>],
) {
    let (conn, verdict) = (settled.conn, settled.verdict);
    let client = verdict.client.index;
    let fields = LineFields {
        id: conn.id,
        ends: [
            End::Addr(&conn.endpoints[client].addr),
            End::Addr(&conn.endpoints[1 - client].addr),
        ],
        outcome: verdict.outcome,
        closer: verdict.closer,
        calls: [
            verdict.endpoints[client].calls,
            verdict.endpoints[1 - client].calls,
        ],
        frames: [conn.first_frame, conn.last_frame],
        tunnel: conn.tunnel(),
    };
    push_connection_line(
        &fields,
        |note| each_note(conn, verdict, note),
        line,
        middles,
    );
}

/// One connection's line, without its line break, into `line` (no field
/// needs quoting: addresses, codes, numbers, and the tunnel as shown
/// everywhere, which has no comma), pieced together without `format!`
/// (it is written for every connection); `notes` hands each note to the
/// function it is given, and `middles` caches the outcome, closer and
/// calls fields ([`ConnectionsCsvSink::middles`]).
fn push_connection_line(
    fields: &LineFields<'_>,
    notes: impl FnOnce(&mut dyn FnMut(&'static str)),
    line: &mut Vec<u8>,
    middles: &mut [Option<(Middle, Vec<u8>)>],
) {
    let mut numbers = itoa::Buffer::new();
    line.extend_from_slice(numbers.format(fields.id).as_bytes());
    for end in &fields.ends {
        line.push(b',');
        match end {
            End::Text(text) => line.extend_from_slice(text.as_bytes()),
            End::Addr(addr) => push_socket_addr(line, addr),
        }
    }
    let middle: Middle = (fields.outcome, fields.closer, fields.calls);
    let slot = FxBuildHasher.hash_one(middle) as usize % middles.len();
    match &middles[slot] {
        Some((made_from, bytes)) if *made_from == middle => line.extend_from_slice(bytes),
        _ => {
            let start = line.len();
            for text in [fields.outcome.name(), fields.closer.name()] {
                line.push(b',');
                line.extend_from_slice(text.as_bytes());
            }
            for calls in fields.calls {
                line.push(b',');
                calls.pieces(|piece| line.extend_from_slice(piece.as_bytes()));
            }
            middles[slot] = Some((middle, line[start..].to_vec()));
        }
    }
    for frame in fields.frames {
        line.push(b',');
        line.extend_from_slice(numbers.format(frame).as_bytes());
    }
    line.push(b',');
    let mut first = true;
    notes(&mut |note| {
        if !first {
            line.push(b';');
        }
        first = false;
        line.extend_from_slice(note.as_bytes());
    });
    line.push(b',');
    if !fields.tunnel.is_none() {
        write!(line, "{}", fields.tunnel).expect("a Vec takes any bytes");
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
        self.write_line(|line, middles| report_line(report, line, middles))
    }
    fn settled(&mut self, settled: &SettledConnection<'_>) -> io::Result<()> {
        self.write_line(|line, middles| settled_line(settled, line, middles))
    }
    fn finish(&mut self) -> io::Result<()> {
        self.start()?;
        self.out.flush()
    }
}
