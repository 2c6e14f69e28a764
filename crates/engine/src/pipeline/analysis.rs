//! The pipeline, end to end: one or two streaming passes over a capture.
//!
//! Rows need hindsight: the verdict of their connection, known when it
//! leaves the flow table. In one pass (the usual schedule) each row waits
//! in [`PendingRows`] until then, and rows leave in frame order. When a
//! connection stays open so long that too many rows wait behind it, or
//! the sink needs more than rows, the capture is read twice instead: pass
//! 1 keeps only a small verdict per connection (and, on request, its
//! report), and pass 2 follows every connection again, identically, and
//! makes each row with its verdict at once. Either way memory follows the
//! connections open at a time (and, in one pass, a bounded number of
//! rows), never the length of the capture.

use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::annotate::Row;
use crate::capture::{CaptureError, CaptureFormat, CaptureReader, Frame};
use crate::connection::Connection;
use crate::flow::FlowTable;
use crate::inference::{ConnVerdict, Outcome};
use crate::link::{self, DecodeOptions, DecodeStats};
use crate::pending::PendingRows;
use crate::report::ConnectionReport;
use crate::segment::Segment;

/// What the capture held, for the JSON header and the user.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaptureSummary {
    pub path: PathBuf,
    pub format: &'static str,
    pub frames: u64,
    pub connections: u32,
    pub decode: DecodeStats,
    /// Why reading stopped before the end of the file, if it did: the
    /// capture was annotated up to its last whole record.
    pub incomplete: Option<String>,
}

impl CaptureSummary {
    /// What a read of the capture at `path` saw: the frame count and why it
    /// stopped early (as [`for_each_frame`] returns them), the connections
    /// and the decoding counts.
    fn of_read(
        path: &Path,
        format: &'static str,
        (frames, incomplete): (u64, Option<String>),
        connections: u32,
        decode: DecodeStats,
    ) -> CaptureSummary {
        CaptureSummary {
            path: path.to_path_buf(),
            format,
            frames,
            connections,
            decode,
            incomplete,
        }
    }
}

/// Why a capture could not be analysed at all, or a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

/// Which read of the capture a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// From 1.
    pub number: u8,
    /// How many reads the run takes, as far as known: 1 in one pass; 2 for
    /// two passes; 3 when one pass gave way to two.
    pub of: u8,
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
    /// How far `pass` has read into the capture, in bytes: now and then
    /// during each pass, and once at its end. Pass 1 of 2 reports before
    /// [`RowSink::begin`]. For progress bars; the default ignores it.
    fn progress(&mut self, _pass: Pass, _bytes: u64) {}
}

/// Connections whose verdict and peers [`Detail::Brief`] keeps.
pub const BRIEF_CONNECTIONS: usize = 20;

/// Frames between two progress reports: often enough for a progress bar,
/// rarely enough to cost nothing.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What a run keeps per connection for its result, besides the outcome
/// counts. Each level after `Brief` costs memory per connection of the
/// capture (two passes also keep every verdict, for pass 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// The verdicts and peers of the first [`BRIEF_CONNECTIONS`]
    /// connections only: memory does not grow with the capture.
    Brief,
    /// Every connection's verdict.
    Verdicts,
    /// Also each connection's client and server address.
    Peers,
    /// Also the full report (JSON `connections`, `tcpshut summary`).
    Reports,
}

/// A connection's client and server addresses, kept for every
/// connection of a capture: 38 bytes instead of two `SocketAddr`s' 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peers {
    ips: [IpAddr; 2],
    ports: [u16; 2],
}

impl Peers {
    fn new(client: SocketAddr, server: SocketAddr) -> Peers {
        Peers {
            ips: [client.ip(), server.ip()],
            ports: [client.port(), server.port()],
        }
    }
    pub fn client(&self) -> SocketAddr {
        SocketAddr::new(self.ips[0], self.ports[0])
    }
    pub fn server(&self) -> SocketAddr {
        SocketAddr::new(self.ips[1], self.ports[1])
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
    fn progress(&mut self, pass: Pass, bytes: u64) {
        self.0.progress(pass, bytes);
        self.1.progress(pass, bytes);
    }
}

/// The result: the capture's summary and what was kept per connection.
pub struct Verdicts {
    pub capture: CaptureSummary,
    /// How many connections ended each way.
    pub outcomes: OutcomeCounts,
    /// Indexed by connection id: all, or with [`Detail::Brief`] the first
    /// [`BRIEF_CONNECTIONS`].
    pub verdicts: Vec<ConnVerdict>,
    /// Client and server address, indexed by connection id: as many as
    /// `verdicts` with [`Detail::Brief`], [`Detail::Peers`] or more,
    /// otherwise none.
    pub peers: Vec<Peers>,
    /// Reports in id order (empty unless [`Detail::Reports`]).
    pub reports: Vec<ConnectionReport>,
}

fn format_name(format: CaptureFormat) -> &'static str {
    match format {
        CaptureFormat::Pcap {
            nanosecond: false, ..
        } => "pcap",
        CaptureFormat::Pcap {
            nanosecond: true, ..
        } => "pcap-ns",
        CaptureFormat::PcapNg => "pcapng",
    }
}

/// How [`annotate_with`] reads the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// One pass, if the sink needs only rows, with at most `max_held_rows`
    /// rows waiting for their connection's verdict; past that, two passes
    /// from the start, which skip the rows already written.
    OnePass { max_held_rows: usize },
    /// Two passes.
    TwoPasses,
}

/// Rows the one-pass schedule may hold (80 bytes each) before it gives
/// way to two passes: enough for a few minutes of a busy link's
/// connections to close and linger (`flow::CLOSED_LINGER_SECS`), few
/// enough to stay near 20 MB.
pub const MAX_HELD_ROWS: usize = 1 << 18;

impl Default for Schedule {
    fn default() -> Self {
        Schedule::OnePass {
            max_held_rows: MAX_HELD_ROWS,
        }
    }
}

/// Streams a capture's frames, each with its TCP segment if it has one
/// (decoded with `options`), into `each` until it breaks, stopping after
/// `limit` frames if given, and tells `progress` how far it got now and
/// then and at the end. Returns the frame count and why reading stopped
/// early, if it did.
fn for_each_frame(
    reader: &mut CaptureReader,
    stats: &mut DecodeStats,
    options: DecodeOptions,
    limit: Option<u64>,
    progress: &mut dyn FnMut(u64),
    mut each: impl FnMut(&Frame<'_>, Option<&Segment<'_>>) -> std::io::Result<ControlFlow<()>>,
) -> Result<(u64, Option<String>), AnalyzeError> {
    let mut frames = 0;
    let stopped = loop {
        if limit.is_some_and(|l| frames >= l) {
            break None;
        }
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        };
        frames += 1;
        let segment = link::decode_with(&frame, stats, options);
        let flow = each(&frame, segment.as_ref()).map_err(AnalyzeError::Output)?;
        if frames % PROGRESS_EVERY == 0 {
            progress(reader.bytes_read());
        }
        if flow.is_break() {
            return Ok((frames, None));
        }
    };
    progress(reader.bytes_read());
    Ok((frames, stopped))
}

/// Opens the capture from its start; called once per pass.
type Open<'a> = &'a dyn Fn() -> Result<CaptureReader, CaptureError>;

/// How many connections ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts([u64; Outcome::ALL.len()]);

impl OutcomeCounts {
    pub fn add(&mut self, outcome: Outcome) {
        self.0[outcome as usize] += 1;
    }
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// What a pass that follows connections to their end keeps of each: its
/// outcome, and what `detail` asks for.
struct Conclusions {
    detail: Detail,
    /// Keep every verdict whatever `detail` says: pass 2 needs them.
    all_verdicts: bool,
    outcomes: OutcomeCounts,
    verdicts: Vec<ConnVerdict>,
    peers: Vec<Peers>,
    reports: Vec<ConnectionReport>,
}

impl Conclusions {
    fn new(detail: Detail, all_verdicts: bool) -> Self {
        Conclusions {
            detail,
            all_verdicts,
            outcomes: OutcomeCounts::default(),
            verdicts: Vec::new(),
            peers: Vec::new(),
            reports: Vec::new(),
        }
    }

    /// Records a connection that left the flow table; returns its verdict.
    fn conclude(&mut self, conn: &Connection) -> ConnVerdict {
        let verdict = conn.verdict();
        self.outcomes.add(verdict.outcome);
        let slot = conn.id as usize;
        let brief = self.detail == Detail::Brief;
        let first = slot < BRIEF_CONNECTIONS;
        if brief && !first && !self.all_verdicts {
            return verdict;
        }
        if self.verdicts.len() <= slot {
            self.verdicts.resize(slot + 1, ConnVerdict::default());
        }
        self.verdicts[slot] = verdict;
        if (brief && first) || self.detail >= Detail::Peers {
            let client = verdict.client.index;
            let both = Peers::new(conn.endpoints[client].addr, conn.endpoints[1 - client].addr);
            if self.peers.len() <= slot {
                self.peers.resize(slot + 1, both);
            }
            self.peers[slot] = both;
        }
        if self.detail == Detail::Reports {
            self.reports.push(ConnectionReport::new(conn, &verdict));
        }
        verdict
    }

    fn into_verdicts(mut self, capture: CaptureSummary) -> Verdicts {
        self.reports.sort_unstable_by_key(|r| r.id);
        Verdicts {
            capture,
            outcomes: self.outcomes,
            verdicts: self.verdicts,
            peers: self.peers,
            reports: self.reports,
        }
    }
}

/// The flow table and decoding a pass that concludes connections uses:
/// Zeek's view and checksums only when reports are kept (they are the
/// only output that shows them).
fn concluding_pass(detail: Detail) -> (FlowTable, DecodeOptions) {
    let table = if detail == Detail::Reports {
        FlowTable::new()
    } else {
        FlowTable::without_zeek()
    };
    // Verifying checksums reads every payload byte, and its only product is
    // the `bad_checksum` count, which only the full reports show (the JSON
    // document's `capture.decode`): the CSV sidecar never does.
    let options = DecodeOptions {
        verify_checksums: detail == Detail::Reports,
    };
    (table, options)
}

/// Pass 1: every connection's verdict, and what `detail` asks for.
pub fn verdicts(path: &Path, detail: Detail) -> Result<Verdicts, AnalyzeError> {
    verdicts_from(
        &|| CaptureReader::open(path),
        path,
        detail,
        false,
        &mut |_| {},
    )
}

/// Every connection's report, handed to `each` as the connection leaves
/// the flow table (closed connections as they retire, then those still
/// held at the end, each batch in id order), keeping none of them: memory
/// follows the connections open at a time, not the capture's length. One
/// pass, for consumers that aggregate (`tcpshut report`); it skips Zeek's
/// view and checksum verification, so the reports' Zeek fields are those
/// of a connection Zeek never saw start, and `decode.bad_checksum` is 0.
pub fn each_report(
    path: &Path,
    each: &mut dyn FnMut(ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    each_report_from(&|| CaptureReader::open(path), path, each)
}

/// [`each_report`] over a capture held in memory; `name` stands in for the
/// path in the summary.
pub fn each_report_bytes(
    bytes: &[u8],
    name: &str,
    each: &mut dyn FnMut(ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    let open = || CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes.to_vec())), name);
    each_report_from(&open, Path::new(name), each)
}

fn each_report_from(
    open: Open,
    path: &Path,
    each: &mut dyn FnMut(ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    let mut reader = open()?;
    let format = format_name(reader.format());
    let mut stats = DecodeStats::default();
    let mut table = FlowTable::without_zeek();
    let mut report = |conn: &Connection| each(ConnectionReport::new(conn, &conn.verdict()));
    let read = for_each_frame(
        &mut reader,
        &mut stats,
        DecodeOptions {
            verify_checksums: false,
        },
        None,
        &mut |_| {},
        |_, segment| {
            if let Some(seg) = segment {
                table.observe(seg, None);
                for conn in table.take_retired() {
                    report(&conn);
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let connections = table.connections_seen();
    for conn in table.finish() {
        report(&conn);
    }
    Ok(CaptureSummary::of_read(
        path,
        format,
        read,
        connections,
        stats,
    ))
}

/// Pass 1; `all_verdicts` keeps every verdict whatever `detail` says (for
/// a pass 2).
fn verdicts_from(
    open: Open,
    path: &Path,
    detail: Detail,
    all_verdicts: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Verdicts, AnalyzeError> {
    let mut reader = open()?;
    let format = format_name(reader.format());
    let mut stats = DecodeStats::default();
    let (mut table, options) = concluding_pass(detail);
    let mut kept = Conclusions::new(detail, all_verdicts);
    let read = for_each_frame(
        &mut reader,
        &mut stats,
        options,
        None,
        progress,
        |_, segment| {
            if let Some(seg) = segment {
                table.observe(seg, None);
                for conn in table.take_retired() {
                    kept.conclude(&conn);
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let connections = table.connections_seen();
    for conn in table.finish() {
        kept.conclude(&conn);
    }
    let capture = CaptureSummary::of_read(path, format, read, connections, stats);
    Ok(kept.into_verdicts(capture))
}

/// Rows with hindsight into `sink`, in one pass or two ([`Schedule`]'s
/// default). Returns the capture's summary and the verdicts.
pub fn annotate(
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
) -> Result<Verdicts, AnalyzeError> {
    annotate_with(path, detail, sink, Schedule::default())
}

/// [`annotate`] with a chosen schedule (tests compare them).
pub fn annotate_with(
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    schedule: Schedule,
) -> Result<Verdicts, AnalyzeError> {
    annotate_from(&|| CaptureReader::open(path), path, detail, sink, schedule)
}

/// [`annotate`] over a capture held in memory (fuzzing, property tests),
/// each pass reading from a copy of `bytes`. `name` stands in for the
/// path in the summary.
pub fn annotate_bytes(
    bytes: &[u8],
    name: &str,
    detail: Detail,
    sink: &mut dyn RowSink,
    schedule: Schedule,
) -> Result<Verdicts, AnalyzeError> {
    let open = || CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes.to_vec())), name);
    annotate_from(&open, Path::new(name), detail, sink, schedule)
}

fn annotate_from(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    schedule: Schedule,
) -> Result<Verdicts, AnalyzeError> {
    let max_held_rows = match schedule {
        Schedule::OnePass { max_held_rows } if !sink.needs_first_pass() => max_held_rows,
        _ => return two_passes(open, path, detail, sink, TwoPassStart::Fresh),
    };
    match one_pass(open, path, detail, sink, max_held_rows)? {
        OnePass::Done(verdicts) => Ok(*verdicts),
        OnePass::GaveWay { written_before } => two_passes(
            open,
            path,
            detail,
            sink,
            TwoPassStart::After { written_before },
        ),
    }
}

/// How one pass ended.
enum OnePass {
    Done(Box<Verdicts>),
    /// Too many rows waited: the rows of frames before `written_before`
    /// are written, the rest are not.
    GaveWay {
        written_before: u64,
    },
}

/// Everything in one read: each row waits in [`PendingRows`] until its
/// connection leaves the flow table, then rows leave in frame order.
fn one_pass(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    max_held_rows: usize,
) -> Result<OnePass, AnalyzeError> {
    let mut reader = open()?;
    let format = format_name(reader.format());
    let opening = CaptureSummary::of_read(path, format, (0, None), 0, DecodeStats::default());
    sink.begin(&opening, &[]).map_err(AnalyzeError::Output)?;
    let mut stats = DecodeStats::default();
    let (mut table, options) = concluding_pass(detail);
    let mut kept = Conclusions::new(detail, false);
    let mut held = PendingRows::new();
    let mut gave_way = None;
    // Both the rows and the progress reports go to the sink, never at once.
    let sink = std::cell::RefCell::new(sink);
    let pass = Pass { number: 1, of: 1 };
    let mut progress = |bytes| sink.borrow_mut().progress(pass, bytes);
    let read = for_each_frame(
        &mut reader,
        &mut stats,
        options,
        None,
        &mut progress,
        |frame, segment| {
            let Some(seg) = segment else {
                return Ok(ControlFlow::Continue(()));
            };
            let facts = table.observe(seg, None);
            held.hold(seg, &facts);
            let retired = table.take_retired();
            if !retired.is_empty() {
                for conn in retired {
                    let verdict = kept.conclude(&conn);
                    held.settle(&conn, verdict);
                }
                held.release(|row| sink.borrow_mut().row(row))?;
            }
            if held.len() > max_held_rows || held.replays_too_costly() {
                // Every row before the first still held is written (all of
                // them up to this frame if none is held).
                gave_way = Some(held.first_held_frame().unwrap_or(frame.number + 1));
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let sink = sink.into_inner();
    if let Some(written_before) = gave_way {
        return Ok(OnePass::GaveWay { written_before });
    }
    let connections = table.connections_seen();
    for conn in table.finish() {
        let verdict = kept.conclude(&conn);
        held.settle(&conn, verdict);
    }
    held.release(|row| sink.row(row))
        .map_err(AnalyzeError::Output)?;
    sink.finish().map_err(AnalyzeError::Output)?;
    let capture = CaptureSummary::of_read(path, format, read, connections, stats);
    Ok(OnePass::Done(Box::new(kept.into_verdicts(capture))))
}

/// Where two passes start from.
enum TwoPassStart {
    /// Nothing written yet: [`RowSink::begin`] follows pass 1.
    Fresh,
    /// One pass gave way: `begin` and the rows of the frames before
    /// `written_before` are written already.
    After { written_before: u64 },
}

/// Pass 1 keeps the verdicts, pass 2 makes every row with its verdict.
fn two_passes(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    start: TwoPassStart,
) -> Result<Verdicts, AnalyzeError> {
    let (of, written_before) = match start {
        TwoPassStart::Fresh => (2, 0),
        TwoPassStart::After { written_before } => (3, written_before),
    };
    let first_pass = Pass { number: of - 1, of };
    let mut first = verdicts_from(open, path, detail, true, &mut |bytes| {
        sink.progress(first_pass, bytes)
    })?;
    if let TwoPassStart::Fresh = start {
        sink.begin(&first.capture, &first.reports)
            .map_err(AnalyzeError::Output)?;
    }
    let mut reader = open()?;
    let mut stats = DecodeStats::default();
    let mut table = FlowTable::without_zeek();
    let hindsight = first.verdicts.as_slice();
    let limit = Some(first.capture.frames);
    // Checksums only feed the `bad_checksum` count, which pass 1 has.
    let options = DecodeOptions {
        verify_checksums: false,
    };
    // Both the rows and the progress reports go to the sink, never at once.
    let sink = std::cell::RefCell::new(sink);
    let second_pass = Pass { number: of, of };
    let mut progress = |bytes| sink.borrow_mut().progress(second_pass, bytes);
    for_each_frame(
        &mut reader,
        &mut stats,
        options,
        limit,
        &mut progress,
        |frame, segment| {
            let mut sink = sink.borrow_mut();
            let Some(seg) = segment else {
                if frame.number >= written_before {
                    sink.frame(frame, None)?;
                }
                return Ok(ControlFlow::Continue(()));
            };
            let facts = table.observe(seg, Some(hindsight));
            // Retired connections are only needed in pass 1.
            table.take_retired();
            if frame.number >= written_before {
                let verdict = hindsight
                    .get(facts.conn as usize)
                    .copied()
                    .unwrap_or_default();
                sink.frame(frame, Some(&Row::new(seg, &facts, &verdict)))?;
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let sink = sink.into_inner();
    sink.finish().map_err(AnalyzeError::Output)?;
    if detail == Detail::Brief {
        first.verdicts.truncate(BRIEF_CONNECTIONS);
    }
    Ok(first)
}
