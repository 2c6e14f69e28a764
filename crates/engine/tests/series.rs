//! Rotated series: a real-kernel recording split into files the way
//! `editcap -c` splits it, read as a series, gives exactly what the whole
//! recording gives: the same rows (events, states, calls) at the same
//! frames once each file numbers its own, and the same verdict for each
//! connection in every file it appears in; whatever the order the files
//! are given in, and whichever schedule runs.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use tcpshut_engine::{
    annotate_series, verdicts_series, CaptureSummary, ConnectionReport, Detail, MakeFileSink,
    MemorySink, Row, RowSink, Schedule, Series, SeriesFile, SeriesSink,
};

/// The recording: 280 connections between several clients and services,
/// 2,600 frames, connection 2 open from frame 17 to frame 2,569.
fn whole() -> PathBuf {
    common::testdata_dir().join("report-mix/mix.pcap")
}

/// Frames per file: 5 files.
const PER_FILE: u64 = 520;

/// `capture` split by `editcap -c PER_FILE` into `dir` (editcap names the
/// files `part_NNNNN_TIMESTAMP.pcap`), in name order.
fn split(capture: &Path, dir: &Path) -> Vec<PathBuf> {
    split_as(capture, dir, "pcap")
}

/// [`split`] into files of `format` (`pcap`, or `pcapng` as dumpcap's
/// ring buffer writes).
fn split_as(capture: &Path, dir: &Path, format: &str) -> Vec<PathBuf> {
    let status = Command::new("editcap")
        .args(["-F", format, "-c"])
        .arg(PER_FILE.to_string())
        .arg(capture)
        .arg(dir.join(format!("part.{format}")))
        .status()
        .expect("editcap is needed (wireshark-common; scripts/install-deps installs it)");
    assert!(status.success(), "editcap failed: {status}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// What one file's sink received.
#[derive(Default)]
struct FileOut {
    path: PathBuf,
    rows: Vec<Row>,
    connections: Vec<ConnectionReport>,
    finished: bool,
}

/// A file's sink: keeps what it gets in `into`, at its index.
struct Collect {
    index: usize,
    out: FileOut,
    into: Rc<RefCell<BTreeMap<usize, FileOut>>>,
}

impl RowSink for Collect {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> io::Result<()> {
        self.out.path = capture.path.clone();
        Ok(())
    }
    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.out.rows.push(*row);
        Ok(())
    }
    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        self.out.connections.push(report.clone());
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        self.out.finished = true;
        let out = std::mem::take(&mut self.out);
        let before = self.into.borrow_mut().insert(self.index, out);
        assert!(before.is_none(), "file {} finished twice", self.index);
        Ok(())
    }
}

/// Annotates `files` as a series: what each file's sink got, by file in
/// reading order.
fn annotate_files(series: &Series, schedule: Schedule) -> Vec<FileOut> {
    let got = Rc::new(RefCell::new(BTreeMap::new()));
    let mut make = |file: &SeriesFile| -> io::Result<Box<dyn RowSink>> {
        let index = series.files().iter().position(|p| *p == file.path).unwrap();
        Ok(Box::new(Collect {
            index,
            out: FileOut::default(),
            into: Rc::clone(&got),
        }))
    };
    let make: &mut MakeFileSink = &mut make;
    let mut sink = SeriesSink::new(series.log().clone(), make);
    annotate_series(series, Detail::Brief, &mut sink, schedule).unwrap();
    let got = std::mem::take(&mut *got.borrow_mut());
    got.into_values().collect()
}

/// The whole recording's rows and reports.
fn whole_rows_and_reports() -> (Vec<Row>, BTreeMap<u32, ConnectionReport>) {
    let mut memory = MemorySink::default();
    tcpshut_engine::annotate(&whole(), Detail::Brief, &mut memory).unwrap();
    let verdicts = tcpshut_engine::verdicts(&whole(), Detail::Reports).unwrap();
    let reports = verdicts.reports.into_iter().map(|r| (r.id, r)).collect();
    (memory.rows, reports)
}

/// A row with its frames as a file of `PER_FILE` frames numbers them:
/// `(file, row)`; a related frame in another file is gone.
fn renumbered(row: &Row) -> (usize, Row) {
    let file = ((row.frame - 1) / PER_FILE) as usize;
    let base = file as u64 * PER_FILE;
    let mut local = *row;
    local.frame -= base;
    local.related = row
        .related
        .filter(|f| (f - 1) / PER_FILE == file as u64)
        .map(|f| f - base);
    (file, local)
}

/// The verdict, as a connection's report says it: outcome, who closed,
/// each side's calls and final state.
fn verdict(report: &ConnectionReport) -> String {
    format!(
        "{} {} {} / {} {} / {} {}",
        report.id,
        report.outcome,
        report.closer,
        report.endpoints[0].calls,
        report.endpoints[0].final_state,
        report.endpoints[1].calls,
        report.endpoints[1].final_state,
    )
}

fn check_series_gives_the_whole(files: Vec<PathBuf>, schedule: Schedule) {
    let (whole_rows, whole_reports) = whole_rows_and_reports();
    let series = Series::new(files);
    let got = annotate_files(&series, schedule);
    assert_eq!(got.len(), 5, "a sidecar for each of the 5 files");
    // Time order: editcap's names are in time order too.
    let mut by_name = series.files().to_vec();
    by_name.sort();
    assert_eq!(series.files(), by_name.as_slice());
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); 5];
    for row in &whole_rows {
        let (file, local) = renumbered(row);
        expected[file].push(format!("{local:?}"));
    }
    for (index, out) in got.iter().enumerate() {
        assert!(out.finished);
        assert_eq!(out.path, series.files()[index]);
        let rows: Vec<String> = out.rows.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(rows.len(), expected[index].len(), "file {index}: rows");
        for (got, want) in rows.iter().zip(&expected[index]) {
            assert_eq!(got, want, "file {index}");
        }
        // Each connection of the file, with the verdict of the whole.
        for report in &out.connections {
            let whole = &whole_reports[&report.id];
            assert_eq!(verdict(report), verdict(whole), "file {index}");
            let first = index as u64 * PER_FILE;
            assert!(report.first_frame >= 1 && report.last_frame <= PER_FILE);
            assert_eq!(
                report.first_frame,
                whole.first_frame.max(first + 1) - first,
                "file {index}, connection {}",
                report.id
            );
        }
        // Exactly the connections whose span overlaps the file.
        let mut ids: Vec<u32> = out.connections.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let lo = index as u64 * PER_FILE + 1;
        let hi = lo + PER_FILE - 1;
        let want: Vec<u32> = whole_reports
            .values()
            .filter(|r| r.first_frame <= hi && r.last_frame >= lo)
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, want, "file {index}: connections");
    }
    // Connection 2 is open across all five files, with one verdict.
    let open_across: Vec<String> = got
        .iter()
        .filter_map(|out| out.connections.iter().find(|r| r.id == 2).map(verdict))
        .collect();
    assert_eq!(open_across.len(), 5);
    assert!(open_across
        .iter()
        .all(|v| *v == verdict(&whole_reports[&2])));
}

#[test]
fn a_split_recording_read_as_a_series_gives_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = split(&whole(), dir.path());
    assert_eq!(files.len(), 5);
    // Given in any order, read in time order.
    files.reverse();
    files.swap(1, 3);
    check_series_gives_the_whole(files, Schedule::default());
}

#[test]
fn a_pcapng_ring_gives_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let files = split_as(&whole(), dir.path(), "pcapng");
    assert!(files
        .iter()
        .all(|f| f.extension().is_some_and(|e| e == "pcapng")));
    check_series_gives_the_whole(files, Schedule::default());
}

#[test]
fn every_schedule_gives_the_same_series() {
    let dir = tempfile::tempdir().unwrap();
    let files = split(&whole(), dir.path());
    check_series_gives_the_whole(files.clone(), Schedule::TwoPasses);
    // One pass that gives way to two part of the way.
    check_series_gives_the_whole(files, Schedule::OnePass { max_held_rows: 300 });
}

#[test]
fn reports_over_a_series_are_those_of_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let files = split(&whole(), dir.path());
    let series = Series::new(files);
    let got = verdicts_series(&series, Detail::Reports).unwrap();
    let whole = tcpshut_engine::verdicts(&whole(), Detail::Reports).unwrap();
    assert_eq!(got.reports.len(), 280);
    assert_eq!(got.capture.frames, whole.capture.frames);
    for (a, b) in got.reports.iter().zip(&whole.reports) {
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            serde_json::to_value(b).unwrap()
        );
    }
    let log = series.log().files();
    assert!(log
        .iter()
        .all(|f| f.problem.is_none() && f.overlaps.is_none()));
    assert_eq!(
        log.iter().map(|f| f.span.base).collect::<Vec<_>>(),
        [0, 520, 1040, 1560, 2080]
    );
}

#[test]
fn a_broken_file_in_the_middle_is_logged_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let files = split(&whole(), dir.path());
    // The third file cut in the middle of a record, the fourth no capture.
    let third = std::fs::read(&files[2]).unwrap();
    std::fs::write(&files[2], &third[..third.len() / 2 + 7]).unwrap();
    std::fs::write(&files[3], b"not a capture at all").unwrap();
    let series = Series::new(files.clone());
    // The file that is no capture has no first frame: read last.
    assert_eq!(series.files().last(), Some(&files[3]));
    let got = verdicts_series(&series, Detail::Reports).unwrap();
    let log = series.log().files().clone();
    assert_eq!(log.len(), 5);
    let cut = log.iter().find(|f| f.path == files[2]).unwrap();
    assert!(cut.format.is_some());
    assert!(cut.span.frames > 0 && cut.span.frames < PER_FILE);
    assert!(
        cut.problem.as_deref().unwrap().contains("truncated"),
        "{:?}",
        cut.problem
    );
    let junk = log.iter().find(|f| f.path == files[3]).unwrap();
    assert!(junk.format.is_none());
    assert!(junk.problem.as_deref().unwrap().contains("not a pcap"));
    // What the others hold is all read, numbered on.
    let frames: u64 = log.iter().map(|f| f.span.frames).sum();
    assert_eq!(got.capture.frames, frames);
    assert_eq!(frames, 3 * PER_FILE + cut.span.frames);
    assert!(got.reports.len() > 150, "{}", got.reports.len());
}
