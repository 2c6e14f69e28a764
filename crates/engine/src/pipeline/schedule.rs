//! The schedules: one streaming pass over a capture, or two.
//!
//! Rows need hindsight: the verdict of their connection, known when it
//! leaves the flow table. In one pass (the usual schedule) each row waits
//! in [`PendingRows`] until then, and rows leave in frame order. When a
//! connection stays open so long that too many rows wait behind it, or
//! the sink needs more than rows, the capture is read twice instead: pass
//! 1 keeps only a small verdict per connection (and, on request, its
//! report), and pass 2 follows every connection again, identically, and
//! makes each row with its verdict at once. Both make a row the same way,
//! from the same [`Tracker`]'s facts and [`SegmentFacts::resolved`], so
//! they agree by construction. Either way memory follows the connections
//! open at a time (and, in one pass, a bounded number of rows), never the
//! length of the capture.
//!
//! [`SegmentFacts::resolved`]: crate::tracking::connection::SegmentFacts::resolved

use std::ops::ControlFlow;
use std::path::Path;

use crate::output::reports::ConnectionReport;
use crate::output::rows::Row;
use crate::pipeline::pending::PendingRows;
use crate::pipeline::sinks::{Pass, RowSink};
use crate::pipeline::summary::{format_name, CaptureSummary, Detail, Verdicts, BRIEF_CONNECTIONS};
use crate::pipeline::tracker::Tracker;
use crate::tracking::flow::Flow;
use crate::tracking::inference::ConnVerdict;
use crate::wire::capture::{CaptureError, CaptureReader, Frame};
use crate::wire::link::DecodeStats;
use crate::wire::series::Series;
use crate::wire::source::{Reads, Source};

/// Why a capture could not be analysed at all, or a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

/// Frames between two progress reports: often enough for a progress bar,
/// rarely enough to cost nothing.
const PROGRESS_EVERY: u64 = 1 << 16;

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

/// Streams a capture's frames into `each` until it breaks, stopping
/// after `limit` frames if given, and tells `progress` how far it got now
/// and then and at the end. Returns the frame count and why reading
/// stopped early, if it did.
fn for_each_frame(
    reader: &mut CaptureReader,
    limit: Option<u64>,
    progress: &mut dyn FnMut(u64),
    mut each: impl FnMut(&Frame<'_>) -> std::io::Result<ControlFlow<()>>,
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
        let flow = each(&frame).map_err(AnalyzeError::Output)?;
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

/// The report of a connection leaving the flow table, with Zeek's view
/// when the tracker follows it ([`RowSink::wants_zeek_view`]).
fn report_of(flow: &Flow, verdict: &ConnVerdict) -> ConnectionReport {
    ConnectionReport::new(&flow.conn, flow.zeek.as_deref(), verdict)
}

/// Opens the capture from its start; called once per pass.
type Open<'a> = &'a dyn Fn() -> Result<CaptureReader, CaptureError>;

/// Pass 1: every connection's verdict, and what `detail` asks for.
pub fn verdicts(path: &Path, detail: Detail) -> Result<Verdicts, AnalyzeError> {
    let source = Source::new(path, Reads::Once)?;
    verdicts_from(
        &|| source.open(),
        path,
        Tracker::concluding(detail),
        &mut |_| {},
        &mut |_, _| {},
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
    let source = Source::new(path, Reads::Once)?;
    each_report_from(&|| source.open(), path, each)
}

/// [`each_report`] over a rotated series, read as one capture.
pub fn each_report_series(
    series: &Series,
    each: &mut dyn FnMut(ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    each_report_from(&|| series.open(), Path::new(&series.name()), each)
}

/// [`verdicts`] over a rotated series, read as one capture: the
/// connections crossing its files are followed across them.
pub fn verdicts_series(series: &Series, detail: Detail) -> Result<Verdicts, AnalyzeError> {
    let name = series.name();
    verdicts_from(
        &|| series.open(),
        Path::new(&name),
        Tracker::concluding(detail),
        &mut |_| {},
        &mut |_, _| {},
    )
}

/// [`annotate_with`] over a rotated series, read as one capture (rows
/// are numbered on from file to file: `output::series::SeriesSink` gives
/// each file its own).
pub fn annotate_series(
    series: &Series,
    detail: Detail,
    sink: &mut dyn RowSink,
    schedule: Schedule,
) -> Result<Verdicts, AnalyzeError> {
    let name = series.name();
    annotate_from(&|| series.open(), Path::new(&name), detail, sink, schedule)
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
    // Brief: the reports go to `each`, the tracker keeps next to nothing.
    let mut tracker = Tracker::concluding(Detail::Brief);
    let mut report = |flow: &Flow, verdict| each(report_of(flow, &verdict));
    let read = for_each_frame(&mut reader, None, &mut |_| {}, |frame| {
        if let Some(seg) = tracker.decode(frame) {
            tracker.observe(&seg);
            tracker.conclude_retired(&mut report);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(tracker.finish(report, path, format, read).capture)
}

/// Pass 1 with `tracker`, which says what is kept, handing each
/// connection to `settled` as it is concluded.
fn verdicts_from(
    open: Open,
    path: &Path,
    mut tracker: Tracker,
    progress: &mut dyn FnMut(u64),
    settled: &mut dyn FnMut(&Flow, &ConnVerdict),
) -> Result<Verdicts, AnalyzeError> {
    let mut reader = open()?;
    let format = format_name(reader.format());
    let read = for_each_frame(&mut reader, None, progress, |frame| {
        if let Some(seg) = tracker.decode(frame) {
            tracker.observe(&seg);
            tracker.conclude_retired(|flow, verdict| settled(flow, &verdict));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(tracker.finish(|flow, verdict| settled(flow, &verdict), path, format, read))
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
    // The one pass may give way to two: a stream is spooled.
    let source = Source::new(path, Reads::MaybeTwice)?;
    annotate_from(&|| source.open(), path, detail, sink, schedule)
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
        OnePass::GaveWay {
            written_before,
            reported,
        } => two_passes(
            open,
            path,
            detail,
            sink,
            TwoPassStart::After {
                written_before,
                reported,
            },
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
        /// Connections reported to the sink so far (the first ones pass 1
        /// settles again, in the same order).
        reported: u64,
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
    let wants_connections = sink.wants_connections();
    let mut tracker = if wants_connections && sink.wants_zeek_view() {
        Tracker::concluding_with_zeek(detail, false)
    } else {
        Tracker::concluding(detail)
    };
    let mut held = PendingRows::new();
    let mut gave_way = None;
    let mut reported = 0u64;
    let mut report_error = None;
    // Both the rows and the progress reports go to the sink, never at once.
    let sink = std::cell::RefCell::new(sink);
    let pass = Pass { number: 1, of: 1 };
    let mut progress = |bytes| sink.borrow_mut().progress(pass, bytes);
    let read = for_each_frame(&mut reader, None, &mut progress, |frame| {
        let Some(seg) = tracker.decode(frame) else {
            return Ok(ControlFlow::Continue(()));
        };
        let facts = tracker.observe(&seg);
        held.hold(&seg, &facts);
        let mut settled = false;
        tracker.conclude_retired(|flow, verdict| {
            if wants_connections && report_error.is_none() {
                if let Err(e) = sink.borrow_mut().connection(&report_of(flow, &verdict)) {
                    report_error = Some(e);
                }
                reported += 1;
            }
            held.settle(&flow.conn, verdict);
            settled = true;
        });
        if let Some(e) = report_error.take() {
            return Err(e);
        }
        if settled {
            held.release(|row| sink.borrow_mut().row(row))?;
        }
        if held.len() > max_held_rows {
            // Every row before the first still held is written (all of
            // them up to this frame if none is held).
            gave_way = Some(held.first_held_frame().unwrap_or(frame.number + 1));
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let sink = sink.into_inner();
    if let Some(written_before) = gave_way {
        return Ok(OnePass::GaveWay {
            written_before,
            reported,
        });
    }
    let verdicts = tracker.finish(
        |flow, verdict| {
            if wants_connections && report_error.is_none() {
                if let Err(e) = sink.connection(&report_of(flow, &verdict)) {
                    report_error = Some(e);
                }
            }
            held.settle(&flow.conn, verdict)
        },
        path,
        format,
        read,
    );
    if let Some(e) = report_error {
        return Err(AnalyzeError::Output(e));
    }
    held.release(|row| sink.row(row))
        .map_err(AnalyzeError::Output)?;
    sink.finish().map_err(AnalyzeError::Output)?;
    Ok(OnePass::Done(Box::new(verdicts)))
}

/// Where two passes start from.
enum TwoPassStart {
    /// Nothing written yet: [`RowSink::begin`] follows pass 1.
    Fresh,
    /// One pass gave way: `begin`, the rows of the frames before
    /// `written_before` and the first `reported` connections are written
    /// already.
    After { written_before: u64, reported: u64 },
}

/// Pass 1 keeps the verdicts, pass 2 makes every row with its verdict.
fn two_passes(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    start: TwoPassStart,
) -> Result<Verdicts, AnalyzeError> {
    let (of, written_before, reported) = match start {
        TwoPassStart::Fresh => (2, 0, 0),
        TwoPassStart::After {
            written_before,
            reported,
        } => (3, written_before, reported),
    };
    let first_pass = Pass { number: of - 1, of };
    // Pass 1 settles the connections in the order one pass did: those it
    // reported already are skipped.
    let wants_connections = sink.wants_connections();
    // Every verdict is kept for pass 2.
    let tracker = if wants_connections && sink.wants_zeek_view() {
        Tracker::concluding_with_zeek(detail, true)
    } else {
        Tracker::concluding_all(detail)
    };
    let mut settled = 0u64;
    let mut report_error = None;
    let sink_cell = std::cell::RefCell::new(&mut *sink);
    let mut first = verdicts_from(
        open,
        path,
        tracker,
        &mut |bytes| sink_cell.borrow_mut().progress(first_pass, bytes),
        &mut |flow, verdict| {
            settled += 1;
            if wants_connections && settled > reported && report_error.is_none() {
                if let Err(e) = sink_cell.borrow_mut().connection(&report_of(flow, verdict)) {
                    report_error = Some(e);
                }
            }
        },
    )?;
    if let Some(e) = report_error {
        return Err(AnalyzeError::Output(e));
    }
    if let TwoPassStart::Fresh = start {
        sink.begin(&first.capture, &first.reports)
            .map_err(AnalyzeError::Output)?;
    }
    let mut reader = open()?;
    let mut tracker = Tracker::following();
    let verdicts = first.verdicts.as_slice();
    let limit = Some(first.capture.frames);
    // Both the rows and the progress reports go to the sink, never at once.
    let sink = std::cell::RefCell::new(sink);
    let second_pass = Pass { number: of, of };
    let mut progress = |bytes| sink.borrow_mut().progress(second_pass, bytes);
    for_each_frame(&mut reader, limit, &mut progress, |frame| {
        let mut sink = sink.borrow_mut();
        let Some(seg) = tracker.decode(frame) else {
            if frame.number >= written_before {
                sink.frame(frame, None)?;
            }
            return Ok(ControlFlow::Continue(()));
        };
        let facts = tracker.observe(&seg);
        // Pass 1 concluded them.
        tracker.conclude_retired(|_, _| {});
        if frame.number >= written_before {
            let verdict = verdicts
                .get(facts.conn as usize)
                .copied()
                .unwrap_or_default();
            sink.frame(
                frame,
                Some(&Row::new(&seg, &facts.resolved(&verdict, seg.frame))),
            )?;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let sink = sink.into_inner();
    sink.finish().map_err(AnalyzeError::Output)?;
    if detail == Detail::Brief {
        first.verdicts.truncate(BRIEF_CONNECTIONS);
    }
    Ok(first)
}
