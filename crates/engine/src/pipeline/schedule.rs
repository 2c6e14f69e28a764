//! The schedules: one streaming pass over a capture, or two.
//!
//! Rows need hindsight: the verdict of their connection, known when it
//! leaves the flow table. In one pass (the schedule of every sink that
//! needs only rows) each row waits in [`PendingRows`] until then, and rows
//! leave in frame order; when a connection stays open so long that more
//! rows wait behind it than memory's budget, the oldest wait on a
//! temporary file instead, so the capture is still read once. When the
//! sink needs more than rows (a JSON document starts with every
//! connection), the capture is read twice: pass 1 keeps only a small
//! verdict per connection (and, on request, its report), and pass 2
//! follows every connection again, identically, and makes each row with
//! its verdict at once. Both make a row the same way, from the same
//! [`Tracker`]'s facts and [`SegmentFacts::resolved`], so they agree by
//! construction. Either way memory follows the connections open at a time
//! (and, in one pass, a bounded number of rows), never the length of the
//! capture.
//!
//! [`SegmentFacts::resolved`]: crate::tracking::connection::SegmentFacts::resolved

use std::ops::ControlFlow;
use std::path::Path;

use crate::output::reports::{ConnectionReport, ReportKind, SettledConnection};
use crate::output::rows::Row;
use crate::pipeline::pending::{HeldError, PendingRow, PendingRows, SettledRows};
use crate::pipeline::sinks::{rows_sink, EachReport, FormattedRows, Pass, RowFormatter, RowSink};
use crate::pipeline::summary::{format_name, CaptureSummary, Detail, Verdicts, BRIEF_CONNECTIONS};
use crate::pipeline::tracker::{Conclusions, Tracker};
use crate::tracking::connection::SegmentFacts;
use crate::tracking::flow::{Flow, Retired};
use crate::tracking::inference::ConnVerdict;
use crate::wire::capture::{CaptureError, CaptureReader, Frame, FramesRun};
use crate::wire::link::DecodeStats;
use crate::wire::segment::Segment;
use crate::wire::series::Series;
use crate::wire::source::{Reads, Source};

/// Why a capture could not be analysed at all, or a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot hold rows in a temporary file: {0}")]
    Spill(#[source] std::io::Error),
}

impl From<HeldError> for AnalyzeError {
    fn from(e: HeldError) -> Self {
        match e {
            HeldError::Output(e) => AnalyzeError::Output(e),
            HeldError::Spill(e) => AnalyzeError::Spill(e),
        }
    }
}

/// Frames between two progress reports: often enough for a progress bar,
/// rarely enough to cost nothing.
const PROGRESS_EVERY: u64 = 1 << 16;

/// How [`annotate_with`] reads the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// One pass, if the sink needs only rows, with at most `max_held_rows`
    /// rows waiting in memory for their connection's verdict; past that,
    /// the oldest wait on a temporary file.
    OnePass { max_held_rows: usize },
    /// [`Schedule::OnePass`] on two threads: one reads, decodes and
    /// tracks, the other concludes the connections, holds the rows, makes
    /// them and feeds the sink, in batches; the same rows and reports in
    /// the same order (a sink of reports only, `each_report`'s, gets no
    /// rows on either).
    OnePassThreaded { max_held_rows: usize },
    /// Two passes.
    TwoPasses,
}

/// Rows in a batch from the tracking thread to the rows thread, and
/// batches in flight: enough to even out the two threads' pace and to
/// wake the waiting thread rarely (each hand-off to a thread asleep is
/// a futex call and a context switch), few enough to stay in each
/// core's cache (640 KB of rows each) and in memory (1 MB more at peak
/// than 2,048 rows in 4 batches).
const BATCH: usize = 8192;
const BATCHES_IN_FLIGHT: usize = 3;
/// Flows leaving the table in a batch at most: the end of a capture
/// hands over every flow still held at once, and flows are larger than
/// rows.
const BATCH_FLOWS: usize = 256;

/// Rows the one-pass schedule may hold in memory (64 bytes each) before
/// the oldest go to a temporary file: enough for a few minutes of a busy
/// link's connections to close and linger (`flow::CLOSED_LINGER_SECS`),
/// few enough to stay near 16 MB.
pub const MAX_HELD_ROWS: usize = 1 << 18;

impl Schedule {
    /// One pass on one thread: for runs that already keep every core busy
    /// (a batch of captures on several workers).
    pub fn one_thread() -> Self {
        Schedule::OnePass {
            max_held_rows: MAX_HELD_ROWS,
        }
    }
}

/// One pass, on two threads when the machine has two cores.
impl Default for Schedule {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores > 1 {
            Schedule::OnePassThreaded {
                max_held_rows: MAX_HELD_ROWS,
            }
        } else {
            Schedule::one_thread()
        }
    }
}

/// Streams a capture's frames into `each` until it breaks, stopping
/// after `limit` frames if given, and tells `progress` how far it got now
/// and then and at the end. Returns the frame count and why reading
/// stopped early, if it did. Both are handed `shared`, what they both
/// change (the batch of the two-thread schedule): lent to each in turn,
/// it needs no `RefCell`, whose borrow and its check cost every frame.
fn for_each_frame<S: ?Sized>(
    reader: &mut CaptureReader,
    limit: Option<u64>,
    shared: &mut S,
    progress: &mut dyn FnMut(&mut S, u64),
    mut each: impl FnMut(&mut S, &Frame<'_>) -> std::io::Result<ControlFlow<()>>,
) -> Result<(u64, Option<String>), AnalyzeError> {
    let limit = limit.unwrap_or(u64::MAX);
    let mut frames = 0;
    let stopped = loop {
        if frames >= limit {
            break None;
        }
        // Frames in runs up to the next progress report (or the limit):
        // the reader frames a run in one loop ([`CaptureReader::read_frames`]).
        let run = (limit - frames).min(PROGRESS_EVERY - frames % PROGRESS_EVERY);
        let mut failed = None;
        let (given, ended) = reader.read_frames(
            run,
            #[inline(always)]
            |frame| {
                each(shared, frame).unwrap_or_else(|e| {
                    failed = Some(e);
                    ControlFlow::Break(())
                })
            },
        );
        frames += given;
        if let Some(e) = failed {
            return Err(AnalyzeError::Output(e));
        }
        if given > 0 && frames % PROGRESS_EVERY == 0 {
            progress(shared, reader.bytes_read());
        }
        match ended {
            FramesRun::Full => {}
            FramesRun::Stopped => return Ok((frames, None)),
            FramesRun::Ended => break None,
            FramesRun::Broke(e) => break Some(e.to_string()),
        }
    };
    progress(shared, reader.bytes_read());
    Ok((frames, stopped))
}

/// The report of a connection leaving the flow table, with Zeek's view
/// when the tracker follows it ([`RowSink::wants_zeek_view`]), as brief
/// as the sink allows ([`RowSink::brief_reports`]).
fn report_of(flow: &Flow, verdict: &ConnVerdict, kind: ReportKind) -> ConnectionReport {
    settled_connection(flow, verdict).report(kind == ReportKind::Brief)
}

/// A connection leaving the flow table with its verdict, for the sink.
fn settled_connection<'a>(flow: &'a Flow, verdict: &'a ConnVerdict) -> SettledConnection<'a> {
    SettledConnection {
        conn: &flow.conn,
        zeek: flow.zeek.as_deref(),
        verdict,
    }
}

/// Which report of each connection `sink` takes, if any.
fn reports_wanted(sink: &dyn RowSink) -> Option<ReportKind> {
    match (sink.wants_connections(), sink.brief_reports()) {
        (false, _) => None,
        (true, true) => Some(ReportKind::Brief),
        (true, false) => Some(ReportKind::Full),
    }
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
/// pass, on two threads when the machine has two cores
/// ([`Schedule::default`]), for consumers that aggregate (`tcpshut
/// report`); it skips Zeek's view and checksum verification, so the
/// reports' Zeek fields are those of a connection Zeek never saw start,
/// and `decode.bad_checksum` is 0.
pub fn each_report(
    path: &Path,
    each: &mut dyn FnMut(&ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    each_report_with(path, Schedule::default(), each)
}

/// [`each_report`] with a chosen schedule: the schedules of
/// [`annotate_with`], fed a sink of reports only ([`EachReport`]), so
/// that the reports come in the same order on one thread or two.
pub fn each_report_with(
    path: &Path,
    schedule: Schedule,
    each: &mut dyn FnMut(&ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    // Brief: the reports go to `each`, the tracker keeps next to nothing.
    annotate_with(path, Detail::Brief, &mut EachReport(each), schedule).map(|v| v.capture)
}

/// [`each_report_with`] over a rotated series, read as one capture.
pub fn each_report_series(
    series: &Series,
    schedule: Schedule,
    each: &mut dyn FnMut(&ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    annotate_series(series, Detail::Brief, &mut EachReport(each), schedule).map(|v| v.capture)
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

/// [`each_report_with`] over a capture held in memory; `name` stands in
/// for the path in the summary.
pub fn each_report_bytes(
    bytes: &[u8],
    name: &str,
    schedule: Schedule,
    each: &mut dyn FnMut(&ConnectionReport),
) -> Result<CaptureSummary, AnalyzeError> {
    annotate_bytes(bytes, name, Detail::Brief, &mut EachReport(each), schedule).map(|v| v.capture)
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
    let read = for_each_frame(
        &mut reader,
        None,
        &mut (),
        &mut |_, bytes| progress(bytes),
        |_, frame| {
            if let Some(seg) = tracker.decode(frame) {
                tracker.observe(&seg);
                tracker.conclude_retired(|flow, verdict| settled(flow, &verdict));
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
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
    // Two passes read a stream twice: it is spooled.
    let reads = match schedule {
        Schedule::OnePass { .. } | Schedule::OnePassThreaded { .. } if !sink.needs_first_pass() => {
            Reads::Once
        }
        _ => Reads::MaybeTwice,
    };
    let source = Source::new(path, reads)?;
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
    match schedule {
        Schedule::OnePass { max_held_rows } if !sink.needs_first_pass() => {
            one_pass(open, path, detail, sink, max_held_rows)
        }
        Schedule::OnePassThreaded { max_held_rows } if !sink.needs_first_pass() => {
            one_pass_threaded(open()?, path, detail, sink, max_held_rows)
        }
        _ => two_passes(open, path, detail, sink),
    }
}

/// Everything in one read: each row waits in [`PendingRows`] until its
/// connection leaves the flow table, then rows leave in frame order.
fn one_pass(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    max_held_rows: usize,
) -> Result<Verdicts, AnalyzeError> {
    let mut reader = open()?;
    let format = format_name(reader.format());
    let opening = CaptureSummary::of_read(path, format, (0, None), 0, DecodeStats::default());
    sink.begin(&opening, &[]).map_err(AnalyzeError::Output)?;
    let wants_connections = sink.wants_connections();
    let mut tracker = one_pass_tracker(detail, &*sink);
    let mut held = PendingRows::new(max_held_rows);
    // A sink of connections only (`each_report`'s) is handed no rows.
    let keep_rows = !sink.ignores_rows();
    // Held rows fail in the frame loop as I/O errors of their own kind.
    let mut held_error = None;
    // Both the rows and the progress reports go to the sink, never at once.
    let sink = std::cell::RefCell::new(sink);
    let pass = Pass { number: 1, of: 1 };
    let progress = |bytes| sink.borrow_mut().progress(pass, bytes);
    let mut each = |frame: &Frame<'_>| -> Result<(), HeldError> {
        // Borrowed, not moved out of its Option (see one_pass_threaded).
        let decoded = tracker.decode(frame);
        let Some(seg) = &decoded else {
            return Ok(());
        };
        let facts = tracker.observe(seg);
        if keep_rows {
            held.hold(seg, &facts)?;
        }
        let mut settled = Ok(false);
        tracker.conclude_retired(|flow, verdict| {
            if settled.is_ok() {
                settled = settle(
                    &mut held,
                    &mut **sink.borrow_mut(),
                    wants_connections,
                    flow,
                    verdict,
                )
                .map(|()| true);
            }
        });
        if settled? {
            let mut sink = sink.borrow_mut();
            let to = rows_sink(&mut **sink);
            held.release(|row| to.row(row))?;
        }
        Ok(())
    };
    let read = for_each_frame(
        &mut reader,
        None,
        &mut (),
        &mut |_, bytes| progress(bytes),
        // Out of the reader's loop (into which the two-thread schedule's
        // frame closure goes): inlined there, with the rows released on
        // this thread, it cost 9 instructions a frame more.
        #[inline(never)]
        |_, frame| {
            Ok(match each(frame) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    held_error = Some(e);
                    ControlFlow::Break(())
                }
            })
        },
    )?;
    if let Some(e) = held_error {
        return Err(e.into());
    }
    let sink = sink.into_inner();
    let mut settled = Ok(());
    let verdicts = tracker.finish(
        |flow, verdict| {
            if settled.is_ok() {
                settled = settle(&mut held, sink, wants_connections, flow, verdict);
            }
        },
        path,
        format,
        read,
    );
    settled?;
    let to = rows_sink(sink);
    held.release(|row| to.row(row))?;
    sink.finish().map_err(AnalyzeError::Output)?;
    Ok(verdicts)
}

/// The one pass's tracker: following Zeek's model too when the sink's
/// reports need it ([`RowSink::wants_zeek_view`]).
fn one_pass_tracker(detail: Detail, sink: &dyn RowSink) -> Tracker {
    if sink.wants_connections() && sink.wants_zeek_view() {
        Tracker::concluding_with_zeek(detail, false)
    } else {
        Tracker::concluding(detail)
    }
}

/// A connection left the flow table: the sink hears of it (if it wants
/// to, [`RowSink::connection`]), and its rows can be made.
fn settle(
    held: &mut PendingRows,
    sink: &mut dyn RowSink,
    wants_connections: bool,
    flow: &Flow,
    verdict: ConnVerdict,
) -> Result<(), HeldError> {
    if wants_connections {
        sink.settled(&settled_connection(flow, &verdict))
            .map_err(HeldError::Output)?;
    }
    held.settle(&flow.conn, verdict)
}

/// What the tracking thread's frame loop changes, lent in turn to the
/// frame closure and the progress report ([`for_each_frame`]'s `shared`):
/// reached from one pointer, where each captured by reference took a load
/// a frame.
struct Tracking {
    tracker: Tracker,
    batch: Batch,
    /// The sink takes rows (else batches carry flows alone).
    keep_rows: bool,
}

/// What the tracking thread sends the rows thread, in order.
enum ToRows {
    Batch(Batch),
    /// How far the read got (the sink's progress reports).
    Progress(u64),
    /// The capture is read: every connection still in the flow table
    /// follows, and with them the verdicts of every row still held.
    ReadEnded,
}

/// Rows to hold, in frame order, and the connections that left the flow
/// table between them. Nothing in it is allocated per row, and it
/// travels back to the tracking thread once used, where it is cleared:
/// the flows' boxes go back to the flow table for new connections (on the
/// thread that allocated them, each saving a free and a malloc), and each
/// connection's report is made, handed to the sink and freed on the rows
/// thread (allocating memory on one thread and freeing it on the other
/// cost as much as making the reports).
struct Batch {
    rows: Vec<PendingRow>,
    settled: Vec<SettledAfter>,
    /// Once the batch is back from the rows thread, its connections, done
    /// with: each goes to the flow table in exchange for one that leaves
    /// it ([`Batch::settle`]), its box for a new connection.
    done: Retired,
    /// The rows it holds before it goes: [`BATCH`], or none once it holds
    /// [`BATCH_FLOWS`] flows, so that one compare a frame tells whether
    /// it is full ([`Batch::is_full`]).
    room: usize,
}

/// A connection that left the flow table after the first `rows_before`
/// rows of its batch (its flow as the flow table boxed it: handed over
/// without a copy), concluded on the rows thread; with its verdict when
/// the tracking thread worked it out (the end of the capture, when that
/// thread would otherwise wait for the rows thread).
struct SettledAfter {
    rows_before: usize,
    flow: Box<Flow>,
    verdict: Option<ConnVerdict>,
}

impl Batch {
    fn with_capacity(rows: usize) -> Batch {
        Batch {
            rows: Vec::with_capacity(rows),
            settled: Vec::new(),
            done: Vec::new(),
            room: BATCH,
        }
    }

    /// Empties a batch back from the rows thread: its connections, done
    /// with, are exchanged for those that leave the flow table next
    /// ([`Batch::settle`]).
    fn clear(&mut self) {
        self.rows.clear();
        self.done.clear();
        self.done
            .extend(self.settled.drain(..).map(|settled| settled.flow));
        self.room = BATCH;
    }

    /// It holds [`BATCH`] rows or [`BATCH_FLOWS`] flows.
    #[inline(always)]
    fn is_full(&self) -> bool {
        self.rows.len() >= self.room
    }

    /// The row of `seg`, which its connection observed as `facts`. A
    /// batch goes once full ([`Batch::is_full`]), so the row finds room:
    /// it is written straight into place, with no growth path (which made
    /// the row on the stack first, then copied it) on every segment.
    #[inline(always)]
    fn hold(&mut self, seg: &Segment<'_>, facts: &SegmentFacts) {
        if self.rows.len() < self.rows.capacity() {
            self.rows.push(PendingRow::of(seg, facts));
        } else {
            self.hold_growing(PendingRow::of(seg, facts));
        }
    }

    #[cold]
    #[inline(never)]
    fn hold_growing(&mut self, row: PendingRow) {
        self.rows.push(row);
    }

    /// A connection left the flow table: in exchange, the box of one done
    /// with, if the batch has one ([`FlowTable::exchange_retired`]).
    ///
    /// [`FlowTable::exchange_retired`]: crate::tracking::flow::FlowTable::exchange_retired
    fn settle(&mut self, flow: Box<Flow>) -> Option<Box<Flow>> {
        self.settle_as(flow, None);
        self.done.pop()
    }

    /// A connection left the flow table at the end of the capture: its
    /// verdict is worked out here, on the tracking thread, which has
    /// nothing else to do then, so that the rows thread (on which the end
    /// waits) only records it.
    fn settle_concluded(&mut self, flow: Box<Flow>) {
        let verdict = Some(flow.conn.verdict());
        self.settle_as(flow, verdict);
    }

    fn settle_as(&mut self, flow: Box<Flow>, verdict: Option<ConnVerdict>) {
        self.settled.push(SettledAfter {
            rows_before: self.rows.len(),
            flow,
            verdict,
        });
        if self.settled.len() >= BATCH_FLOWS {
            self.room = 0;
        }
    }

    /// Hands the batch to `held` and `sink` in the order it was made,
    /// concluding the connections that left the flow table.
    fn take(
        &self,
        held: &mut PendingRows,
        sink: &mut dyn RowSink,
        wants_connections: bool,
        conclusions: &mut Conclusions,
    ) -> Result<(), AnalyzeError> {
        let mut held_rows = 0;
        for settled in &self.settled {
            held.hold_rows(&self.rows[held_rows..settled.rows_before])?;
            held_rows = settled.rows_before;
            let verdict = match settled.verdict {
                Some(verdict) => conclusions.conclude_as(&settled.flow, verdict),
                None => conclusions.conclude(&settled.flow),
            };
            settle(held, sink, wants_connections, &settled.flow, verdict)?;
        }
        held.hold_rows(&self.rows[held_rows..])?;
        Ok(())
    }
}

/// [`one_pass`] on two threads: this one holds, makes and writes the
/// rows ([`PendingRows`] and the sink) and the connections' reports, a
/// second reads, decodes and tracks, and hands over the rows and the
/// flows leaving the table in batches, in order, so the rows are the
/// same, and the reports come in the same order. A sink that ignores
/// rows ([`RowSink::ignores_rows`]) is handed none: the batches then
/// carry the leaving flows alone. Neither waits for the other while a
/// batch is in flight.
fn one_pass_threaded(
    mut reader: CaptureReader,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
    max_held_rows: usize,
) -> Result<Verdicts, AnalyzeError> {
    use std::sync::mpsc;
    let format = format_name(reader.format());
    let opening = CaptureSummary::of_read(path, format, (0, None), 0, DecodeStats::default());
    sink.begin(&opening, &[]).map_err(AnalyzeError::Output)?;
    let (to_rows, batches) = mpsc::sync_channel::<ToRows>(BATCHES_IN_FLIGHT);
    // Used batches come back, so that none is allocated after the first few.
    let (give_back, spare) = mpsc::channel::<Batch>();
    let wants_connections = sink.wants_connections();
    let mut tracker = one_pass_tracker(detail, &*sink);
    // A sink of connections only (`each_report`'s) is handed no rows:
    // batches then carry flows alone.
    let keep_rows = !sink.ignores_rows();
    // Verdicts are worked out on the rows thread.
    let mut conclusions = tracker.take_conclusions();
    std::thread::scope(|scope| {
        let tracking = scope.spawn(move || {
            let mut state = Tracking {
                tracker,
                batch: Batch::with_capacity(BATCH),
                keep_rows,
            };
            // False once the rows thread stopped (its sink failed).
            let send = |batch: &mut Batch| {
                let next = match spare.try_recv() {
                    Ok(mut used) => {
                        used.clear();
                        used
                    }
                    Err(_) => Batch::with_capacity(BATCH),
                };
                to_rows
                    .send(ToRows::Batch(std::mem::replace(batch, next)))
                    .is_ok()
            };
            let progress = |bytes| {
                let _ = to_rows.send(ToRows::Progress(bytes));
            };
            let read = for_each_frame(
                &mut reader,
                None,
                &mut state,
                &mut |state, bytes| {
                    // The rows before this point go first.
                    send(&mut state.batch);
                    progress(bytes);
                },
                // In the reader's loop: no call a frame, and no registers
                // saved and restored around it.
                #[inline(always)]
                |state, frame| {
                    let Tracking {
                        tracker,
                        batch,
                        keep_rows,
                    } = state;
                    // Borrowed where it was decoded: moving a segment out
                    // of its Option is a memcpy call per frame.
                    let decoded = tracker.decode(frame);
                    let Some(seg) = &decoded else {
                        return Ok(ControlFlow::Continue(()));
                    };
                    let facts = tracker.observe(seg);
                    if *keep_rows {
                        batch.hold(seg, &facts);
                    }
                    tracker.hand_over_unconcluded(|flow| batch.settle(flow));
                    if batch.is_full() && !send(batch) {
                        return Ok(ControlFlow::Break(()));
                    }
                    Ok(ControlFlow::Continue(()))
                },
            );
            let Tracking {
                tracker, mut batch, ..
            } = state;
            let _ = to_rows.send(ToRows::ReadEnded);
            let read = read.map(|read| {
                let capture = tracker.finish_unconcluded(
                    |flow| {
                        batch.settle_concluded(flow);
                        if batch.is_full() {
                            send(&mut batch);
                        }
                    },
                    path,
                    format,
                    read,
                );
                send(&mut batch);
                capture
            });
            // Dropping the sender ends the rows thread's loop.
            drop(to_rows);
            read
        });
        let pass = Pass { number: 1, of: 1 };
        let mut held = PendingRows::new(max_held_rows);
        // The rows held when the read ends (a sixth of the bench
        // capture's: those of the connections closed in its last two
        // minutes, `flow::CLOSED_LINGER_SECS`) are made on both threads,
        // if the sink can format rows apart.
        let formatter = sink.row_formatter();
        let share_the_end = formatter.is_some();
        let mut read_ended = false;
        let mut rows = || -> Result<(), AnalyzeError> {
            for message in &batches {
                match message {
                    ToRows::Batch(batch) => {
                        batch.take(&mut held, sink, wants_connections, &mut conclusions)?;
                        if !(read_ended && share_the_end) {
                            let to = rows_sink(sink);
                            held.release(|row| to.row(row))?;
                        }
                        let _ = give_back.send(batch);
                    }
                    ToRows::Progress(bytes) => sink.progress(pass, bytes),
                    ToRows::ReadEnded => read_ended = true,
                }
            }
            Ok(())
        };
        let written = rows();
        // A failed sink stops the tracking thread at its next batch.
        drop(batches);
        let capture = tracking
            .join()
            .expect("the tracking thread does not panic")?;
        written?;
        // (No helper for an end with nothing held.)
        let end = held.all_settled().filter(|rows| !rows.is_empty());
        if let (Some(rows), Some(formatter)) = (end, formatter) {
            make_on_two_threads(rows, formatter, rows_sink(sink)).map_err(AnalyzeError::Output)?;
            held.clear();
        }
        let to = rows_sink(sink);
        held.release(|row| to.row(row))?;
        sink.finish().map_err(AnalyzeError::Output)?;
        Ok(conclusions.into_verdicts(capture))
    })
}

/// Rows in a chunk of [`make_on_two_threads`] at most: large enough that
/// handing a chunk over costs nothing next to making it (about 0.5 ms),
/// small enough that the writing thread seldom waits for one.
const SHARED_CHUNK: usize = 2048;

/// Makes and writes `rows` (all settled: the end of a capture) on two
/// threads, the tracking thread being done: this one and a helper each
/// take the next chunk of consecutive rows when free; the helper formats
/// its chunks apart (`formatter`, [`RowSink::row_formatter`]), and this
/// thread hands every chunk to `sink` in order, making its own straight
/// into it. So the bytes are those of one thread, and the two share the
/// work as their pace allows (this one also writes).
fn make_on_two_threads(
    rows: SettledRows<'_>,
    mut formatter: Box<dyn RowFormatter>,
    sink: &mut dyn RowSink,
) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let total = rows.len();
    // Small ends are shared too (and so tested on small captures).
    let chunk = (total / 64).clamp(16, SHARED_CHUNK);
    let chunks = total.div_ceil(chunk);
    let rows_of = |c: usize| c * chunk..((c + 1) * chunk).min(total);
    let next = AtomicUsize::new(0);
    let (made, formatted) = mpsc::sync_channel::<FormattedRows>(2);
    let (give_back, spare) = mpsc::channel::<FormattedRows>();
    std::thread::scope(|scope| {
        let (next, rows_of) = (&next, &rows_of);
        scope.spawn(move || loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= chunks {
                break;
            }
            for i in rows_of(c) {
                formatter.format(&rows.row(i));
            }
            let bytes = formatter.take(spare.try_recv().unwrap_or_default());
            if made.send(bytes).is_err() {
                // The sink failed.
                break;
            }
        });
        let mut write = || -> std::io::Result<()> {
            let mut written = 0;
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed).min(chunks);
                // The helper's chunks before this one first, in order.
                while written < c {
                    let bytes = formatted
                        .recv()
                        .expect("the helper makes every chunk it takes");
                    sink.formatted_rows(bytes.as_bytes())?;
                    let _ = give_back.send(bytes);
                    written += 1;
                }
                if c == chunks {
                    return Ok(());
                }
                for i in rows_of(c) {
                    sink.row(&rows.row(i))?;
                }
                written += 1;
            }
        };
        let written = write();
        // A helper still making chunks stops at its next one.
        drop(formatted);
        written
    })
}

/// Pass 1 keeps the verdicts, pass 2 makes every row with its verdict.
fn two_passes(
    open: Open,
    path: &Path,
    detail: Detail,
    sink: &mut dyn RowSink,
) -> Result<Verdicts, AnalyzeError> {
    let first_pass = Pass { number: 1, of: 2 };
    let wants_connections = reports_wanted(&*sink);
    // Every verdict is kept for pass 2.
    let tracker = if wants_connections.is_some() && sink.wants_zeek_view() {
        Tracker::concluding_with_zeek(detail, true)
    } else {
        Tracker::concluding_all(detail)
    };
    let mut report_error = None;
    let sink_cell = std::cell::RefCell::new(&mut *sink);
    let mut first = verdicts_from(
        open,
        path,
        tracker,
        &mut |bytes| sink_cell.borrow_mut().progress(first_pass, bytes),
        &mut |flow, verdict| {
            if let Some(kind) = wants_connections.filter(|_| report_error.is_none()) {
                let report = report_of(flow, verdict, kind);
                if let Err(e) = sink_cell.borrow_mut().connection(&report) {
                    report_error = Some(e);
                }
            }
        },
    )?;
    if let Some(e) = report_error {
        return Err(AnalyzeError::Output(e));
    }
    sink.begin(&first.capture, &first.reports)
        .map_err(AnalyzeError::Output)?;
    let mut reader = open()?;
    let mut tracker = Tracker::following();
    let verdicts = first.verdicts.as_slice();
    let limit = Some(first.capture.frames);
    let second_pass = Pass { number: 2, of: 2 };
    // Both the rows and the progress reports go to the sink.
    for_each_frame(
        &mut reader,
        limit,
        &mut *sink,
        &mut |sink, bytes| sink.progress(second_pass, bytes),
        |sink, frame| {
            let Some(seg) = tracker.decode(frame) else {
                sink.frame(frame, None)?;
                return Ok(ControlFlow::Continue(()));
            };
            let facts = tracker.observe(&seg);
            // Pass 1 concluded them.
            tracker.conclude_retired(|_, _| {});
            let verdict = verdicts
                .get(facts.conn as usize)
                .copied()
                .unwrap_or_default();
            sink.frame(
                frame,
                Some(&Row::new(&seg, &facts.resolved(&verdict, seg.frame))),
            )?;
            Ok(ControlFlow::Continue(()))
        },
    )?;
    sink.finish().map_err(AnalyzeError::Output)?;
    if detail == Detail::Brief {
        first.verdicts.truncate(BRIEF_CONNECTIONS);
    }
    Ok(first)
}
