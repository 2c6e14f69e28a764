//! Captures as they arrive in the field: streams read once (FIFOs,
//! standard input) give exactly the rows of the file, whichever schedule
//! runs, the one pass that gives way to two included (the stream is
//! spooled, never read twice).

use std::path::{Path, PathBuf};
use std::process::Command;

use tcpshut_engine::{annotate_with, CsvSink, Detail, Schedule};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
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
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("live.pcap");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "mkfifo (coreutils) is required"
    );
    let bytes = std::fs::read(capture).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    let csv = csv_on(&fifo, schedule);
    writer.join().unwrap();
    csv
}

#[test]
fn a_fifo_gives_the_rows_of_the_file_on_every_schedule() {
    let mut captures: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    captures.sort();
    captures.push(testdata().join("third-party/zeek__ssh__ssh.pcap"));
    assert!(captures.len() > 10);
    for capture in &captures {
        let from_file = csv_on(capture, Schedule::TwoPasses);
        for schedule in [
            Schedule::default(),
            Schedule::TwoPasses,
            Schedule::OnePass { max_held_rows: 3 },
        ] {
            assert!(
                csv_through_fifo(capture, schedule) == from_file,
                "{} through a FIFO on {schedule:?}",
                capture.display()
            );
        }
    }
}
