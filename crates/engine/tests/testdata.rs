//! The real-kernel captures in `testdata/`: the manifest lists every one,
//! every pass reports its progress, and every schedule writes the same
//! rows. (Each capture against what its applications called, the
//! manifest's ground truth, is checked by tcpshut-record's own test, with
//! the lab's check of a run: `cargo test -p tcpshut-record`.)

mod common;

use std::path::Path;

use serde_json::Value;
use tcpshut_engine::ConnectionReport;

use common::testdata_dir as testdata;

fn manifest() -> Value {
    let text = std::fs::read_to_string(testdata().join("manifest.json"))
        .expect("testdata/manifest.json is committed");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

#[test]
fn manifest_lists_every_capture() {
    let manifest = manifest();
    let listed: Vec<String> = manifest["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["file"].as_str().unwrap().to_string())
        .collect();
    for entry in std::fs::read_dir(testdata()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            assert!(listed.contains(&name), "{name} is not in manifest.json");
        }
    }
}

/// Progress reports, whatever the schedule: each pass ends by reporting
/// the whole file read, and the pass 1 of two reports before any row.
#[test]
fn every_pass_reports_its_progress() {
    use tcpshut_engine::{CaptureSummary, Detail, Pass, RowSink, Schedule};

    /// Each report with the number of rows seen when it came.
    struct Progress {
        reports: Vec<(Pass, u64, u64)>,
        rows: u64,
        rows_only: bool,
    }
    impl RowSink for Progress {
        fn needs_first_pass(&self) -> bool {
            !self.rows_only
        }
        fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
            Ok(())
        }
        fn row(&mut self, _: &tcpshut_engine::Row) -> std::io::Result<()> {
            self.rows += 1;
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn progress(&mut self, pass: Pass, bytes: u64) {
            self.reports.push((pass, bytes, self.rows));
        }
    }

    let path = testdata().join("half-close-data-after-fin.pcap");
    let size = std::fs::metadata(&path).unwrap().len();
    let spilling = Schedule::OnePass { max_held_rows: 2 };
    for (rows_only, schedule, passes) in [
        (false, Schedule::default(), 2),
        (true, Schedule::TwoPasses, 2),
        (true, Schedule::default(), 1),
        (true, Schedule::one_thread(), 1),
        (true, spilling, 1),
    ] {
        let mut sink = Progress {
            reports: Vec::new(),
            rows: 0,
            rows_only,
        };
        tcpshut_engine::annotate_with(&path, Detail::Verdicts, &mut sink, schedule).unwrap();
        let case = format!("rows only: {rows_only}, {schedule:?}");
        assert!(sink.rows > 0, "{case}");
        for number in 1..=passes {
            let pass = Pass { number, of: passes };
            let last = sink.reports.iter().rev().find(|(p, _, _)| *p == pass);
            assert_eq!(
                last.map(|r| r.1),
                Some(size),
                "{case}: {pass:?} ends at the end"
            );
        }
        assert!(
            sink.reports.iter().all(|(p, _, _)| p.of == passes),
            "{case}: {:?}",
            sink.reports
        );
        if passes == 2 {
            let first_of_pass_2 = sink.reports.iter().position(|(p, _, _)| p.number == 2);
            assert!(sink.reports[..first_of_pass_2.unwrap()]
                .iter()
                .all(|(_, _, rows)| *rows == 0));
        }
    }
}

/// The CSV of `path` made on `schedule`, its connections sidecar, and
/// what the run concluded (the capture's summary, the outcome counts and
/// every verdict: on two threads the rows thread concludes).
fn csv_on(path: &Path, schedule: tcpshut_engine::Schedule) -> (Vec<u8>, Vec<u8>, String) {
    use tcpshut_engine::ConnectionsCsvSink;
    let (mut out, mut conns_out) = (Vec::new(), Vec::new());
    let mut sink = tcpshut_engine::CsvSink::new(&mut out);
    let mut conns = ConnectionsCsvSink::new(&mut conns_out);
    let verdicts = tcpshut_engine::annotate_with(
        path,
        tcpshut_engine::Detail::Verdicts,
        &mut tcpshut_engine::Tee(&mut sink, &mut conns),
        schedule,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // every connection once
    let text = String::from_utf8(conns_out.clone()).unwrap();
    let mut ids: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    let expected: Vec<u64> = (0..verdicts.outcomes.total()).collect();
    assert_eq!(ids, expected, "{}: {schedule:?}", path.display());
    let concluded = format!(
        "{:?}\n{:?}\n{:?}",
        verdicts.capture, verdicts.outcomes, verdicts.verdicts
    );
    (out, conns_out, concluded)
}

/// One pass (on one thread or two), two passes, and one pass whose held
/// rows go to a temporary file past any budget write the same rows, and
/// the same connections sidecar (every connection once, in the same
/// order), and conclude the same: for every capture of `testdata/` and of the real-world corpus
/// (where a connection lasts the whole capture, so the rows behind it
/// wait on the file).
#[test]
fn one_pass_two_passes_and_spilling_write_the_same_rows() {
    use tcpshut_engine::Schedule;

    let captures = common::captures_in(&[testdata(), common::realworld_dir()]);
    assert!(captures.len() > 100, "{} captures", captures.len());
    for path in &captures {
        let two = csv_on(path, Schedule::TwoPasses);
        assert_eq!(csv_on(path, Schedule::default()), two, "{}", path.display());
        assert!(
            csv_on(path, Schedule::one_thread()) == two,
            "{}",
            path.display()
        );
        for max_held_rows in [0, 1, 7, 50] {
            for spilling in [
                Schedule::OnePass { max_held_rows },
                Schedule::OnePassThreaded { max_held_rows },
            ] {
                assert!(
                    csv_on(path, spilling) == two,
                    "{}: {spilling:?}",
                    path.display()
                );
            }
        }
    }
}

/// `Detail::Brief` keeps the counts of every connection and the verdicts
/// and peers of the first 20 only, the same as the fuller details, in one
/// pass or two.
#[test]
fn brief_keeps_counts_and_the_first_connections() {
    use tcpshut_engine::{Detail, Schedule, BRIEF_CONNECTIONS};

    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/third-party/zeek__ssh__ssh.pcap");
    let run = |detail, schedule| {
        let mut sink = tcpshut_engine::CsvSink::new(std::io::sink());
        tcpshut_engine::annotate_with(&capture, detail, &mut sink, schedule).unwrap()
    };
    let full = run(Detail::Peers, Schedule::default());
    assert!(
        full.verdicts.len() > BRIEF_CONNECTIONS,
        "{}",
        full.verdicts.len()
    );
    for schedule in [Schedule::default(), Schedule::TwoPasses] {
        let brief = run(Detail::Brief, schedule);
        assert_eq!(
            brief.verdicts,
            full.verdicts[..BRIEF_CONNECTIONS],
            "{schedule:?}"
        );
        assert_eq!(brief.peers, full.peers[..BRIEF_CONNECTIONS], "{schedule:?}");
        assert_eq!(brief.outcomes, full.outcomes, "{schedule:?}");
        assert_eq!(brief.outcomes.total(), u64::from(brief.capture.connections));
        let graceful = full
            .verdicts
            .iter()
            .filter(|v| v.outcome == tcpshut_engine::Outcome::Graceful)
            .count();
        assert_eq!(
            brief.outcomes.get(tcpshut_engine::Outcome::Graceful),
            graceful as u64
        );
    }
}

/// `each_report` hands over the same reports as `verdicts` keeps (but for
/// Zeek's view, which it skips), every connection once.
#[test]
fn streamed_reports_are_the_kept_reports() {
    let manifest = manifest();
    for capture in manifest["captures"].as_array().unwrap() {
        let file = capture["file"].as_str().unwrap();
        let path = testdata().join(file);
        let kept = tcpshut_engine::verdicts(&path, tcpshut_engine::Detail::Reports).unwrap();
        let mut streamed = Vec::new();
        let summary =
            tcpshut_engine::each_report(&path, &mut |r| streamed.push(r.clone())).unwrap();
        assert_eq!(summary.connections, kept.capture.connections, "{file}");
        streamed.sort_by_key(|r| r.id);
        let without_zeek = |r: &ConnectionReport| {
            let mut v = serde_json::to_value(r).unwrap();
            for key in ["zeek_conn_state", "zeek_history", "zeek_rows"] {
                v.as_object_mut().unwrap().remove(key);
            }
            v
        };
        let a: Vec<_> = streamed.iter().map(without_zeek).collect();
        let b: Vec<_> = kept.reports.iter().map(without_zeek).collect();
        assert_eq!(a, b, "{file}");
    }
}

/// The times reports carry: a leaked CLOSE-WAIT is dated from the client's
/// FIN, and a retransmitted FIN is counted on its sender.
#[test]
fn reports_carry_teardown_times() {
    let one = |file: &str| {
        let mut all = Vec::new();
        tcpshut_engine::each_report(&testdata().join(file), &mut |r| all.push(r.clone())).unwrap();
        assert_eq!(all.len(), 1, "{file}");
        all.pop().unwrap()
    };
    let leak = one("close-wait-at-end.pcap");
    let [client, server] = &leak.endpoints;
    assert_eq!(server.final_state.name(), "CLOSE-WAIT");
    assert_eq!(Some(server.state_since), client.fin_ts);
    assert!(leak.first_ts <= server.state_since && server.state_since <= leak.last_ts);
    assert_eq!(leak.rst_ts, None);
    let retransmitted = one("fin-retransmit.pcap");
    let fins: u32 = retransmitted
        .endpoints
        .iter()
        .map(|e| e.fin_retransmits)
        .sum();
    assert!(fins >= 1, "fin-retransmit.pcap retransmits a FIN");
    let reset = one("close-unread.pcap");
    assert!(reset.rst_ts.is_some());
}
