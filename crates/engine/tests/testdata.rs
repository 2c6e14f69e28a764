//! The real-kernel captures in `testdata/` against what their
//! applications called (`testdata/manifest.json`, written by
//! `tcpshut-record`): every connection's inferred calls, role, closed_by
//! and outcome must match, and every inferred step must contain a call
//! the application really made.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tcpshut_engine::report::{ConnectionReport, EndpointReport};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(testdata().join("manifest.json"))
        .expect("testdata/manifest.json is committed");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Compares one side; returns the mismatches as sentences.
fn check_side(at: &str, expected: &Value, got: &EndpointReport) -> Vec<String> {
    let mut problems = Vec::new();
    let want_calls: Vec<Vec<String>> = expected["expected_calls"]
        .as_array()
        .expect("expected_calls is a list")
        .iter()
        .map(strings)
        .collect();
    let got_calls: Vec<Vec<String>> = got
        .calls
        .steps()
        .iter()
        .map(|step| step.iter().map(|c| c.code().to_string()).collect())
        .collect();
    if want_calls != got_calls {
        problems.push(format!(
            "{at}: calls {got_calls:?}, expected {want_calls:?}"
        ));
    }
    let made = strings(&expected["calls"]);
    for step in &got_calls {
        if !step.iter().any(|c| made.contains(c)) {
            problems.push(format!(
                "{at}: inferred step {step:?} contains none of the calls made {made:?}"
            ));
        }
    }
    for (field, value) in [
        ("expected_role", got.role.name()),
        ("expected_closed_by", got.closed_by.name()),
    ] {
        if expected[field].as_str() != Some(value) {
            problems.push(format!(
                "{at}: {field} {value}, expected {}",
                expected[field]
            ));
        }
    }
    problems
}

fn check_connection(file: &str, i: usize, expected: &Value, got: &ConnectionReport) -> Vec<String> {
    let at = format!("{file} conn {i}");
    let mut problems = Vec::new();
    for (field, value) in [
        ("client_addr", got.client.as_str()),
        ("server_addr", got.server.as_str()),
        ("expected_outcome", got.outcome.name()),
    ] {
        if expected[field].as_str() != Some(value) {
            problems.push(format!(
                "{at}: {field} {value}, expected {}",
                expected[field]
            ));
        }
    }
    problems.extend(check_side(
        &format!("{at} client"),
        &expected["client"],
        &got.endpoints[0],
    ));
    problems.extend(check_side(
        &format!("{at} server"),
        &expected["server"],
        &got.endpoints[1],
    ));
    problems
}

#[test]
fn every_capture_matches_what_its_applications_called() {
    let manifest = manifest();
    let captures = manifest["captures"].as_array().expect("captures list");
    assert!(captures.len() >= 20, "the manifest lists the scenarios");
    let mut problems = Vec::new();
    let mut connections = 0;
    for capture in captures {
        let file = capture["file"].as_str().expect("file name");
        let result =
            tcpshut_engine::verdicts(&testdata().join(file), tcpshut_engine::Detail::Reports)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            result.capture.incomplete.is_none(),
            "{file} reads to the end"
        );
        let expected = capture["connections"].as_array().expect("connections");
        if expected.len() != result.reports.len() {
            problems.push(format!(
                "{file}: {} connections, expected {}",
                result.reports.len(),
                expected.len()
            ));
            continue;
        }
        for (i, (want, got)) in expected.iter().zip(&result.reports).enumerate() {
            connections += 1;
            problems.extend(check_connection(file, i, want, got));
        }
    }
    for p in &problems {
        eprintln!("MISMATCH {p}");
    }
    assert!(
        problems.is_empty(),
        "{} mismatches over {connections} connections",
        problems.len()
    );
}

/// Every capture file in testdata/ is listed in the manifest, so nothing
/// escapes the check above.
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

/// Progress reports: each pass ends by reporting the whole file read, and
/// pass 1 reports before any row.
#[test]
fn both_passes_report_their_progress() {
    use tcpshut_engine::analysis::{CaptureSummary, Detail, RowSink};

    /// Each report with the number of rows seen when it came.
    #[derive(Default)]
    struct Progress {
        reports: Vec<(u8, u64, u64)>,
        rows: u64,
    }
    impl RowSink for Progress {
        fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
            Ok(())
        }
        fn row(&mut self, _: &tcpshut_engine::annotate::Row) -> std::io::Result<()> {
            self.rows += 1;
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
        fn progress(&mut self, pass: u8, bytes: u64) {
            self.reports.push((pass, bytes, self.rows));
        }
    }

    let path = testdata().join("half-close-data-after-fin.pcap");
    let size = std::fs::metadata(&path).unwrap().len();
    let mut sink = Progress::default();
    tcpshut_engine::annotate(&path, Detail::Verdicts, &mut sink).unwrap();
    let last = |pass| {
        sink.reports
            .iter()
            .rev()
            .find(|(p, _, _)| *p == pass)
            .map(|(_, bytes, _)| *bytes)
    };
    assert_eq!(last(1), Some(size));
    assert_eq!(last(2), Some(size));
    let first_pass_2 = sink.reports.iter().position(|(p, _, _)| *p == 2).unwrap();
    assert!(sink.reports[..first_pass_2]
        .iter()
        .all(|(pass, _, rows)| *pass == 1 && *rows == 0));
    assert!(sink.rows > 0);
}
