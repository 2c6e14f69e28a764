//! The pipeline, end to end: two streaming passes over one capture.
//!
//! Pass 1 follows every connection and keeps only a small verdict per
//! connection (and, on request, its report). Pass 2 follows them again,
//! identically, and emits each row in frame order with the verdict's
//! hindsight. Neither pass holds more than the connections open at a
//! time, however long the capture or a connection is.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::annotate::Row;
use crate::capture::{CaptureError, CaptureFormat, CaptureReader, Frame};
use crate::connection::Connection;
use crate::flow::FlowTable;
use crate::inference::ConnVerdict;
use crate::link::{self, DecodeOptions, DecodeStats};
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

/// Why a capture could not be analysed at all, or a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

/// Receives the results of [`annotate`], in order.
pub trait RowSink {
    /// Called once, after pass 1, before any row.
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
    /// How far `pass` (1 or 2) has read into the capture, in bytes: now and
    /// then during each pass, and once at its end. Pass 1 reports before
    /// [`RowSink::begin`]. For progress bars; the default ignores it.
    fn progress(&mut self, _pass: u8, _bytes: u64) {}
}

/// Frames between two progress reports: often enough for a progress bar,
/// rarely enough to cost nothing.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What pass 1 keeps per connection besides the small verdict pass 2
/// needs. Each level costs more memory per connection of the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    /// Verdicts only: enough for the rows and the outcome counts.
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
    fn progress(&mut self, pass: u8, bytes: u64) {
        self.0.progress(pass, bytes);
        self.1.progress(pass, bytes);
    }
}

/// Pass 1's result.
pub struct Verdicts {
    pub capture: CaptureSummary,
    /// Indexed by connection id.
    pub verdicts: Vec<ConnVerdict>,
    /// Client and server address, indexed by connection id (empty unless
    /// [`Detail::Peers`] or more was asked for).
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

/// Streams a capture's frames, each with its TCP segment if it has one
/// (decoded with `options`), into `each`, stopping after `limit` frames if
/// given, and tells `progress` how far it got now and then and at the end.
/// Returns the frame count and why reading stopped early, if it did.
fn for_each_frame(
    reader: &mut CaptureReader,
    stats: &mut DecodeStats,
    options: DecodeOptions,
    limit: Option<u64>,
    progress: &mut dyn FnMut(u64),
    mut each: impl FnMut(&Frame<'_>, Option<&Segment<'_>>) -> std::io::Result<()>,
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
        each(&frame, segment.as_ref()).map_err(AnalyzeError::Output)?;
        if frames % PROGRESS_EVERY == 0 {
            progress(reader.bytes_read());
        }
    };
    progress(reader.bytes_read());
    Ok((frames, stopped))
}

/// Opens the capture from its start; called once per pass.
type Open<'a> = &'a dyn Fn() -> Result<CaptureReader, CaptureError>;

/// Pass 1: every connection's verdict, and what `detail` asks for.
pub fn verdicts(path: &Path, detail: Detail) -> Result<Verdicts, AnalyzeError> {
    verdicts_from(&|| CaptureReader::open(path), path, detail, &mut |_| {})
}

fn verdicts_from(
    open: Open,
    path: &Path,
    detail: Detail,
    progress: &mut dyn FnMut(u64),
) -> Result<Verdicts, AnalyzeError> {
    let mut reader = open()?;
    let format = format_name(reader.format());
    let mut stats = DecodeStats::default();
    // Zeek's view is only in reports.
    let mut table = if detail == Detail::Reports {
        FlowTable::new()
    } else {
        FlowTable::without_zeek()
    };
    let mut verdicts = Vec::new();
    let mut peers = Vec::new();
    let mut reports = Vec::new();
    let mut conclude = |conns: Vec<Connection>| {
        for conn in conns {
            let verdict = conn.verdict();
            let slot = conn.id as usize;
            if verdicts.len() <= slot {
                verdicts.resize(slot + 1, ConnVerdict::default());
            }
            verdicts[slot] = verdict;
            if detail >= Detail::Peers {
                let client = verdict.client.index;
                let both = Peers::new(conn.endpoints[client].addr, conn.endpoints[1 - client].addr);
                if peers.len() <= slot {
                    peers.resize(slot + 1, both);
                }
                peers[slot] = both;
            }
            if detail == Detail::Reports {
                reports.push(ConnectionReport::new(&conn, &verdict));
            }
        }
    };
    // Verifying checksums reads every payload byte, and its only product is
    // the `bad_checksum` count, which only the full reports show (the JSON
    // document's `capture.decode`): the CSV sidecar never does.
    let options = DecodeOptions {
        verify_checksums: detail == Detail::Reports,
    };
    let (frames, incomplete) = for_each_frame(
        &mut reader,
        &mut stats,
        options,
        None,
        progress,
        |_, segment| {
            if let Some(seg) = segment {
                table.observe(seg, None);
                conclude(table.take_retired());
            }
            Ok(())
        },
    )?;
    let connections = table.connections_seen();
    conclude(table.finish());
    reports.sort_unstable_by_key(|r| r.id);
    Ok(Verdicts {
        capture: CaptureSummary {
            path: path.to_path_buf(),
            format,
            frames,
            connections,
            decode: stats,
            incomplete,
        },
        verdicts,
        peers,
        reports,
    })
}

/// Both passes: rows with hindsight into `sink`. Returns pass 1's result.
pub fn annotate(
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
) -> Result<Verdicts, AnalyzeError> {
    annotate_from(&|| CaptureReader::open(path), path, detail, sink)
}

/// [`annotate`] over a capture held in memory (fuzzing, property tests):
/// the same two passes, each reading from a copy of `bytes`. `name` stands
/// in for the path in the summary.
pub fn annotate_bytes(
    bytes: &[u8],
    name: &str,
    detail: Detail,
    sink: &mut dyn RowSink,
) -> Result<Verdicts, AnalyzeError> {
    let open = || CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes.to_vec())), name);
    annotate_from(&open, Path::new(name), detail, sink)
}

fn annotate_from(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
) -> Result<Verdicts, AnalyzeError> {
    let first = verdicts_from(open, path, detail, &mut |bytes| sink.progress(1, bytes))?;
    sink.begin(&first.capture, &first.reports)
        .map_err(AnalyzeError::Output)?;
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
    let mut progress = |bytes| sink.borrow_mut().progress(2, bytes);
    for_each_frame(
        &mut reader,
        &mut stats,
        options,
        limit,
        &mut progress,
        |frame, segment| {
            let Some(seg) = segment else {
                return sink.borrow_mut().frame(frame, None);
            };
            let facts = table.observe(seg, Some(hindsight));
            // Retired connections are only needed in pass 1.
            table.take_retired();
            let verdict = hindsight
                .get(facts.conn as usize)
                .copied()
                .unwrap_or_default();
            sink.borrow_mut()
                .frame(frame, Some(&Row::new(seg, &facts, &verdict)))
        },
    )?;
    let sink = sink.into_inner();
    sink.finish().map_err(AnalyzeError::Output)?;
    Ok(first)
}
