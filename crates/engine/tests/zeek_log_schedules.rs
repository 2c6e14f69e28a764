//! The conn.log streams (`ZeekLogSink` takes each report as its
//! connection leaves the engine): one pass (on one thread or two, its
//! held rows on a spill file or not) and two passes all write the same
//! log, byte for byte, each Zeek row once; and the one pass keeps no report past its
//! connection's last row.

use std::path::{Path, PathBuf};

use tcpshut_engine::{annotate_with, Detail, Schedule, ZeekForm, ZeekLogSink};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(name)
}

fn conn_log(path: &Path, form: ZeekForm, schedule: Schedule) -> String {
    let mut out = Vec::new();
    let mut sink = ZeekLogSink::new(&mut out, form);
    annotate_with(path, Detail::Brief, &mut sink, schedule)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    drop(sink);
    String::from_utf8(out).unwrap()
}

#[test]
fn every_schedule_writes_the_same_conn_log() {
    let schedules = [
        Schedule::TwoPasses,
        Schedule::one_thread(),
        // Rows past the first 3 held wait on the spill file.
        Schedule::OnePass { max_held_rows: 3 },
        Schedule::OnePassThreaded { max_held_rows: 3 },
    ];
    let mut lines = 0;
    for name in [
        "report-mix/mix.pcap",
        "port-reuse.pcap",
        "close-wait-at-end.pcap",
        "third-party/zeek__pop3__pop3.pcap",
    ] {
        let path = capture(name);
        for form in [ZeekForm::Tsv, ZeekForm::Json] {
            let one = conn_log(&path, form, Schedule::default());
            for schedule in schedules {
                assert_eq!(
                    conn_log(&path, form, schedule),
                    one,
                    "{name} {form:?} {schedule:?}"
                );
            }
            lines += one.lines().filter(|l| !l.starts_with('#')).count();
        }
        // Each tcpshut connection's lines appear once, rows spilled or not.
        let log = conn_log(
            &path,
            ZeekForm::Json,
            Schedule::OnePass { max_held_rows: 3 },
        );
        let mut uids: Vec<String> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["uid"].to_string())
            .collect();
        let all = uids.len();
        uids.sort();
        uids.dedup();
        assert_eq!(uids.len(), all, "{name}: a line written twice");
    }
    assert!(lines > 500, "{lines} lines");
}
