//! Captures as they arrive in the field: streams read once (FIFOs,
//! standard input) give exactly the rows of the file, whichever schedule
//! runs: one pass reads them once whatever they hold (rows behind a
//! long connection wait on a spill file), two passes from a spool.

mod common;

use std::path::{Path, PathBuf};

use tcpshut_engine::testing::compress;
use tcpshut_engine::Compression;
use tcpshut_engine::{annotate_with, CsvSink, Detail, Schedule};

use common::fifo::read_through_fifo;
use common::testdata_dir as testdata;

/// The test captures (the recordings of `testdata/`, in name order, and a
/// third-party one of several connections).
fn captures() -> Vec<PathBuf> {
    let mut captures = common::captures_in(&[testdata()]);
    captures.push(testdata().join("third-party/zeek__ssh__ssh.pcap"));
    assert!(captures.len() > 10);
    captures
}

/// The CSV of `path` on `schedule`.
fn csv_on(path: &Path, schedule: Schedule) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = CsvSink::new(&mut out);
    annotate_with(path, Detail::Verdicts, &mut sink, schedule)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

/// The CSV of `capture` read through a FIFO that a thread fills.
fn csv_through_fifo(capture: &Path, schedule: Schedule) -> Vec<u8> {
    let bytes = std::fs::read(capture).unwrap();
    read_through_fifo(bytes, |fifo| csv_on(fifo, schedule))
}

#[test]
fn a_fifo_gives_the_rows_of_the_file_on_every_schedule() {
    let captures = captures();
    for capture in &captures {
        let from_file = csv_on(capture, Schedule::TwoPasses);
        for schedule in [
            Schedule::default(),
            Schedule::TwoPasses,
            Schedule::OnePass { max_held_rows: 3 },
            Schedule::OnePassThreaded { max_held_rows: 3 },
        ] {
            assert!(
                csv_through_fifo(capture, schedule) == from_file,
                "{} through a FIFO on {schedule:?}",
                capture.display()
            );
        }
    }
}

/// A connection open from the first frame to the last (FTP's control
/// connection, with its data connections in between) holds every row
/// behind it until the end. The rows wait on the spill file, and the
/// stream is read once: through a FIFO (which cannot be read twice), no
/// spool, one pass whose progress ends at the file's size, on one thread
/// and on two, giving the very bytes of two passes over the file, rows
/// and connections sidecar.
#[test]
fn a_connection_open_from_first_to_last_frame_is_read_once() {
    use tcpshut_engine::{
        CaptureSummary, ConnectionReport, ConnectionsCsvSink, Pass, RowSink, Tee,
    };

    /// The progress reports.
    struct Progress(Vec<(Pass, u64)>);
    impl RowSink for Progress {
        fn needs_first_pass(&self) -> bool {
            false
        }
        fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
            Ok(())
        }
        fn row(&mut self, _: &tcpshut_engine::Row) -> std::io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn progress(&mut self, pass: Pass, bytes: u64) {
            self.0.push((pass, bytes));
        }
    }
    /// Rows, connections and progress of `path` on `schedule`.
    fn run(path: &Path, schedule: Schedule) -> (Vec<u8>, Vec<u8>, Vec<(Pass, u64)>) {
        let (mut rows, mut conns) = (Vec::new(), Vec::new());
        let mut csv = CsvSink::new(&mut rows);
        let mut conns_csv = ConnectionsCsvSink::new(&mut conns);
        let mut progress = Progress(Vec::new());
        let mut outputs = Tee(&mut csv, &mut conns_csv);
        annotate_with(
            path,
            Detail::Verdicts,
            &mut Tee(&mut outputs, &mut progress),
            schedule,
        )
        .unwrap_or_else(|e| panic!("{}: {schedule:?}: {e}", path.display()));
        drop(csv);
        (rows, conns, progress.0)
    }

    let capture = testdata().join("third-party/zeek__ftp__ipv6.pcap");
    let size = std::fs::metadata(&capture).unwrap().len();
    let (rows, conns, _) = run(&capture, Schedule::TwoPasses);
    // The capture is what the test needs: the first and the last row of
    // one connection, others in between.
    let text = String::from_utf8(rows.clone()).unwrap();
    let conn_of = |line: &str| line.split(',').nth(2).unwrap().to_string();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(conn_of(lines[0]), conn_of(lines[lines.len() - 1]));
    let mut ids: Vec<String> = lines.iter().map(|l| conn_of(l)).collect();
    ids.sort();
    ids.dedup();
    assert!(ids.len() >= 5, "{} connections", ids.len());

    let bytes = std::fs::read(&capture).unwrap();
    for schedule in [
        Schedule::default(),
        Schedule::one_thread(),
        Schedule::OnePass { max_held_rows: 0 },
        Schedule::OnePass { max_held_rows: 2 },
        Schedule::OnePassThreaded { max_held_rows: 2 },
    ] {
        for through_fifo in [false, true] {
            let (got_rows, got_conns, progress) = if through_fifo {
                read_through_fifo(bytes.clone(), |fifo| run(fifo, schedule))
            } else {
                run(&capture, schedule)
            };
            let case = format!("{schedule:?}, through a FIFO: {through_fifo}");
            assert!(got_rows == rows, "{case}: rows");
            assert!(got_conns == conns, "{case}: connections");
            assert!(
                progress
                    .iter()
                    .all(|(pass, _)| *pass == Pass { number: 1, of: 1 }),
                "{case}: {progress:?}"
            );
            assert_eq!(progress.last().map(|p| p.1), Some(size), "{case}");
        }
    }
}

const COMPRESSIONS: [Compression; 3] = [Compression::Gzip, Compression::Zstd, Compression::Lz4];

/// A capture compressed with gzip, zstd or lz4, as a file (whatever its
/// name) or through a FIFO, gives the rows of the plain capture on every
/// schedule.
#[test]
fn compressed_captures_give_the_rows_of_the_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let captures = captures();
    for capture in &captures {
        let plain = std::fs::read(capture).unwrap();
        let expected = csv_on(capture, Schedule::TwoPasses);
        for kind in COMPRESSIONS {
            let packed = dir.path().join(format!("capture.{}", kind.name()));
            std::fs::write(&packed, compress(kind, &plain)).unwrap();
            assert!(
                csv_on(&packed, Schedule::default()) == expected,
                "{} as {kind:?}",
                capture.display()
            );
            // Rows held on a temporary file, and two passes: a second
            // decompression of the file, and of the spooled stream.
            let spilling = Schedule::OnePass { max_held_rows: 3 };
            assert!(
                csv_on(&packed, spilling) == expected,
                "{} as {kind:?}, spilling",
                capture.display()
            );
            assert!(
                csv_through_fifo(&packed, Schedule::TwoPasses) == expected,
                "{} as {kind:?} through a FIFO",
                capture.display()
            );
        }
    }
}

/// gzip members one after the other (`cat a.gz b.gz`, pigz) are one
/// stream, as `gzip -d` reads them.
#[test]
fn concatenated_gzip_members_are_one_capture() {
    let capture = testdata().join("third-party/zeek__ssh__ssh.pcap");
    let plain = std::fs::read(&capture).unwrap();
    let (first, second) = plain.split_at(plain.len() / 3);
    let mut both = compress(Compression::Gzip, first);
    both.extend(compress(Compression::Gzip, second));
    let dir = tempfile::tempdir().unwrap();
    let packed = dir.path().join("two-members.pcap.gz");
    std::fs::write(&packed, both).unwrap();
    assert!(csv_on(&packed, Schedule::default()) == csv_on(&capture, Schedule::default()));
}

/// A compressed capture cut short or corrupted ends like a truncated
/// capture: no error, the frames before the damage annotated, and the
/// reason in `incomplete`.
#[test]
fn a_cut_or_corrupt_compressed_capture_ends_early() {
    let capture = testdata().join("third-party/zeek__ssh__ssh.pcap");
    let plain = std::fs::read(&capture).unwrap();
    let full = csv_on(&capture, Schedule::TwoPasses);
    let dir = tempfile::tempdir().unwrap();
    for kind in COMPRESSIONS {
        let packed = compress(kind, &plain);
        let cut = dir.path().join(format!("cut.{}", kind.name()));
        std::fs::write(&cut, &packed[..packed.len() * 2 / 3]).unwrap();
        let mut rows = Vec::new();
        let verdicts = annotate_with(
            &cut,
            Detail::Verdicts,
            &mut CsvSink::new(&mut rows),
            Schedule::default(),
        )
        .unwrap();
        let why = verdicts
            .capture
            .incomplete
            .expect("a cut stream is incomplete");
        assert!(
            why.contains(kind.name()) || why.contains("truncated"),
            "{kind:?}: {why}"
        );
        assert!(
            verdicts.capture.frames > 0,
            "{kind:?}: frames before the cut"
        );
        // The rows are those of the frames before the cut.
        let lines = |csv: &[u8]| String::from_utf8(csv.to_vec()).unwrap().lines().count();
        assert!(lines(&rows) > 1 && lines(&rows) < lines(&full), "{kind:?}");

        // A checksum or the format's own structure catches corruption
        // (lz4 frames carry no checksum by default: not tried).
        if kind == Compression::Lz4 {
            continue;
        }
        let mut flipped = packed.clone();
        let at = flipped.len() / 2;
        for byte in &mut flipped[at..at + 16] {
            *byte ^= 0xa5;
        }
        let corrupt = dir.path().join(format!("corrupt.{}", kind.name()));
        std::fs::write(&corrupt, flipped).unwrap();
        let verdicts = annotate_with(
            &corrupt,
            Detail::Verdicts,
            &mut CsvSink::new(std::io::sink()),
            Schedule::default(),
        )
        .unwrap();
        assert!(
            verdicts.capture.incomplete.is_some(),
            "{kind:?}: corruption is seen"
        );
    }
}

/// Records what each pass reports of its progress.
#[derive(Default)]
struct ProgressLog(Vec<u64>);

impl tcpshut_engine::RowSink for ProgressLog {
    fn begin(
        &mut self,
        _: &tcpshut_engine::CaptureSummary,
        _: &[tcpshut_engine::ConnectionReport],
    ) -> std::io::Result<()> {
        Ok(())
    }
    fn row(&mut self, _: &tcpshut_engine::Row) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn progress(&mut self, _: tcpshut_engine::Pass, bytes: u64) {
        self.0.push(bytes);
    }
}

/// Progress through a compressed capture is counted in the file's own
/// (compressed) bytes, which the progress bar's length is: it never runs
/// past the file's size, and reaches it at the end, not before.
#[test]
fn progress_through_a_compressed_capture_counts_its_compressed_bytes() {
    let plain = std::fs::read(testdata().join("third-party/zeek__ssh__ssh.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for kind in COMPRESSIONS {
        let packed = compress(kind, &plain);
        let path = dir.path().join(format!("capture.{}", kind.name()));
        std::fs::write(&path, &packed).unwrap();
        let mut log = ProgressLog::default();
        annotate_with(&path, Detail::Verdicts, &mut log, Schedule::default()).unwrap();
        let size = packed.len() as u64;
        assert!(
            log.0.iter().all(|&b| b <= size),
            "{kind:?}: {:?} of {size}",
            log.0
        );
        assert_eq!(log.0.last(), Some(&size), "{kind:?}: {:?}", log.0);
    }
}
