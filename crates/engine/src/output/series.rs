//! The outputs of a rotated series (`wire::series`): one sink per file, so
//! that each file keeps its own sidecar with its own frame numbers (as
//! Wireshark numbers that file alone), while the one flow table followed
//! connections across all of them.
//!
//! Rows arrive in the series' frame order; each goes to the sink of the
//! file that holds its frame, renumbered. A connection's report goes to
//! every file its span (first to last frame) overlaps, its frames
//! renumbered and cut to the file: the verdict is the same in each.
//! A file's sink is made when something first goes to it and finished as
//! soon as rows have moved past the file. By then every connection
//! overlapping it has been reported (its rows wait for its verdict, and
//! rows leave in frame order), so at most the files spanned by the rows
//! still held are open at once, never the whole series.

use std::collections::BTreeMap;
use std::io;

use crate::output::reports::ConnectionReport;
use crate::output::rows::Row;
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::{format_name, CaptureSummary};
use crate::wire::link::DecodeStats;
use crate::wire::series::{FileSpan, SeriesFile, SeriesLog};

/// Makes the sink of one file of the series (its sidecar beside it, say).
pub type MakeFileSink<'a> = dyn FnMut(&SeriesFile) -> io::Result<Box<dyn RowSink + 'a>> + 'a;

/// Routes rows and reports to each file's own sink.
pub struct SeriesSink<'a, 'm> {
    log: SeriesLog,
    make: &'m mut MakeFileSink<'a>,
    /// Sinks made and not yet finished, by file (reading order).
    open: BTreeMap<usize, Box<dyn RowSink + 'a>>,
    /// Files before this one are finished.
    finished_before: usize,
    /// The file the last row went to, while its span is final (rows of
    /// one file follow one another: one look-up per file, not per row).
    last: Option<(usize, FileSpan)>,
    /// The files' sinks want reports with Zeek's view.
    zeek_view: bool,
    /// The files' sinks take brief reports.
    brief_reports: bool,
}

impl<'a, 'm> SeriesSink<'a, 'm> {
    /// Routes to the sinks `make` makes, file by file, as `log` (the
    /// series' log, filled as the series is read) says where files start.
    pub fn new(log: SeriesLog, make: &'m mut MakeFileSink<'a>) -> Self {
        SeriesSink {
            log,
            make,
            open: BTreeMap::new(),
            finished_before: 0,
            last: None,
            zeek_view: false,
            brief_reports: false,
        }
    }

    /// Whether the files' sinks want reports with Zeek's view
    /// ([`RowSink::wants_zeek_view`]): the sinks are made as the read goes,
    /// so the caller says it before.
    pub fn with_zeek_view(mut self, zeek_view: bool) -> Self {
        self.zeek_view = zeek_view;
        self
    }

    /// Whether the files' sinks take brief reports
    /// ([`RowSink::brief_reports`]: the connections sidecar does), said
    /// before the sinks are made as [`SeriesSink::with_zeek_view`] is.
    pub fn with_brief_reports(mut self, brief_reports: bool) -> Self {
        self.brief_reports = brief_reports;
        self
    }

    /// The file that holds the series' frame `frame`, and its span.
    fn file_of(&mut self, frame: u64) -> io::Result<(usize, FileSpan)> {
        if let Some((index, span)) = self.last {
            if span.holds(frame) {
                return Ok((index, span));
            }
        }
        let found = self.log.file_of(frame).ok_or_else(|| {
            io::Error::other(format!("frame {frame} is in no file of the series"))
        })?;
        self.last = found.1.done.then_some(found);
        Ok(found)
    }

    /// File `index`'s sink, made (and begun) if it is not yet.
    fn sink(&mut self, index: usize) -> io::Result<&mut Box<dyn RowSink + 'a>> {
        if !self.open.contains_key(&index) {
            let file = self.log.files()[index].clone();
            if index < self.finished_before {
                return Err(io::Error::other(format!(
                    "{}: written already, but more came for it",
                    file.path.display()
                )));
            }
            let mut sink = (self.make)(&file)?;
            debug_assert!(
                !self.brief_reports || !sink.wants_connections() || sink.brief_reports(),
                "brief reports promised for a sink that wants full ones"
            );
            let format = file.format.map_or("unknown", format_name);
            let summary =
                CaptureSummary::of_read(&file.path, format, (0, None), 0, DecodeStats::default());
            sink.begin(&summary, &[])?;
            self.open.insert(index, sink);
        }
        Ok(self.open.get_mut(&index).expect("just made"))
    }

    /// Finishes every file before `end` (made now if nothing went to it:
    /// a file with no TCP still gets its sidecar; one that is no capture
    /// gets none).
    fn finish_before(&mut self, end: usize) -> io::Result<()> {
        while self.finished_before < end {
            let index = self.finished_before;
            let capture = self.log.files()[index].format.is_some();
            if capture {
                self.sink(index)?.finish()?;
            }
            self.open.remove(&index);
            self.finished_before += 1;
        }
        Ok(())
    }
}

/// `row` as its file numbers it: its frame, and the related frame when it
/// is in the same file (none when it is in another).
fn renumbered_row(row: &Row, span: FileSpan) -> Row {
    let mut row = *row;
    row.frame -= span.base;
    row.related = row.related.and_then(|f| span.local(f));
    row
}

/// `report` as a file shows it: its first and last frames those of its
/// span within the file, the evidence frames the file holds; the verdict
/// unchanged.
fn renumbered_report(report: &ConnectionReport, span: FileSpan) -> ConnectionReport {
    let mut report = report.clone();
    let first = span.base + 1;
    let last = if span.done {
        span.base + span.frames
    } else {
        u64::MAX
    };
    let local = |frame: u64| frame.clamp(first, last) - span.base;
    report.first_frame = local(report.first_frame);
    report.last_frame = local(report.last_frame);
    // Zeek's connections that start after the file are not in it; those
    // that started before it go on from its first frame.
    report.zeek_rows.retain(|row| row.first_frame <= last);
    for row in &mut report.zeek_rows {
        row.first_frame = local(row.first_frame);
    }
    for endpoint in &mut report.endpoints {
        endpoint.evidence = endpoint
            .evidence
            .iter()
            .filter_map(|&f| span.local(f))
            .collect();
    }
    report
}

impl RowSink for SeriesSink<'_, '_> {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn wants_zeek_view(&self) -> bool {
        self.zeek_view
    }
    fn brief_reports(&self) -> bool {
        self.brief_reports
    }
    /// Each file's sink begins when it is made.
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        Ok(())
    }
    fn row(&mut self, row: &Row) -> io::Result<()> {
        let (index, span) = self.file_of(row.frame)?;
        if index > self.finished_before {
            self.finish_before(index)?;
        }
        let row = renumbered_row(row, span);
        self.sink(index)?.row(&row)
    }
    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        let (first, _) = self.file_of(report.first_frame)?;
        let (last, _) = self.file_of(report.last_frame)?;
        for index in first..=last {
            let (capture, span) = {
                let files = self.log.files();
                (files[index].format.is_some(), files[index].span)
            };
            if !capture {
                continue;
            }
            let local = renumbered_report(report, span);
            let sink = self.sink(index)?;
            if sink.wants_connections() {
                sink.connection(&local)?;
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        let files = self.log.files().len();
        self.finish_before(files)
    }
}
