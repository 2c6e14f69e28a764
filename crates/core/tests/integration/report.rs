//! `tcpshut report` end to end: the JSON schema on the bundled captures,
//! the same output whatever the parallelism, colour rules, bad inputs.

use std::fs;

use serde_json::Value;

use crate::util::{repo_root, tcpshut, testdata, text};

fn json_report(args: &[&str]) -> Value {
    let mut all = vec!["report", "--format", "json"];
    all.extend_from_slice(args);
    let out = tcpshut(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("report --format json prints JSON")
}

/// Findings and counts of the bundled single-connection captures, which
/// each planted one teardown: counts add up, and the aborts the
/// close-unread and linger0 captures planted are found.
#[test]
fn json_report_counts_the_bundled_captures() {
    let files = [
        "close-unread.pcap",
        "linger0-no-data.pcap",
        "refused.pcap",
        "close-wait-at-end.pcap",
        "fin-retransmit.pcap",
    ];
    let paths: Vec<String> = files
        .iter()
        .map(|f| testdata().join(f).display().to_string())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let doc = json_report(&args);
    assert_eq!(doc["schema"], "tcpshut-report/1");
    assert_eq!(doc["inputs"]["captures"], 5);
    assert_eq!(doc["inputs"]["connections"], 5);
    assert_eq!(doc["outcomes"]["refused"], 1);
    assert_eq!(doc["assumptions"]["time_wait_secs"], 60);
    let kinds: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("abort", "10.77.0.2:5000"),
        ("abort", "10.77.0.2:5000"),
        ("close-wait", "10.77.0.2:5000"),
        ("refused", "10.77.0.2:5001"),
        ("fin-retransmit", "10.77.0.2:5000"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect();
    assert_eq!(kinds, want, "{:#}", doc["findings"]);
    let service = &doc["services"][0];
    assert_eq!(service["service"], "10.77.0.2:5000");
    assert_eq!(service["connections"], 4);
    assert_eq!(service["client_aborts_after_data"], 1);
    assert_eq!(service["client_aborts_without_data"], 1);
    let example = &doc["findings"][0]["examples"][0];
    assert!(example["filter"]
        .as_str()
        .unwrap()
        .starts_with("ip.addr == 10.77.0.1 && tcp.port == 40000"));
}

#[test]
fn report_is_the_same_whatever_the_parallelism() {
    let dir = testdata().display().to_string();
    let one = tcpshut(&["report", "--format", "json", "--jobs", "1", &dir]);
    let two = tcpshut(&["report", "--format", "json", "--jobs", "2", &dir]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert_eq!(one.stdout, two.stdout);
    let one = tcpshut(&["report", "--jobs", "1", &dir]);
    let two = tcpshut(&["report", "--jobs", "2", &dir]);
    assert_eq!(one.stdout, two.stdout);
}

/// A capture's report read on one thread and on two (one reads, decodes
/// and tracks, the other concludes and aggregates: `tcpshut report` on
/// one capture) is the same, byte for byte, in JSON, on the terminal (in
/// colour) and in HTML, and the engine hands over the same reports in the
/// same order: for every recorded capture of `testdata/`, and for a
/// generated capture whose connections are held open at its end.
#[test]
fn report_is_the_same_on_one_thread_or_two() {
    use tcpshut_engine::{ConnectionReport, Outcome, Schedule, MAX_HELD_ROWS};
    use tcpshut_report::{aggregate_capture_as, html, terminal, Document};

    let dir = tempfile::tempdir().unwrap();
    let mut captures = crate::util::testdata_captures();
    captures.push(crate::util::generated_capture(dir.path(), 3000));
    let outputs = |path: &std::path::Path, schedule| {
        let (mut reports, mut open) = (Vec::new(), 0);
        let mut add = |r: &ConnectionReport| {
            reports.push(serde_json::to_string(r).unwrap());
            open += u32::from(r.outcome == Outcome::Open);
        };
        tcpshut_engine::each_report_with(path, schedule, &mut add).unwrap();
        let name = path.display().to_string();
        let (agg, _) = aggregate_capture_as(0, path, name, schedule).unwrap();
        let doc = Document::new(&agg, 0);
        let json = serde_json::to_string_pretty(&doc).unwrap();
        let mut text = Vec::new();
        terminal::write(&doc, true, &mut text).unwrap();
        let page = html::render(&doc, &html::Ladders::new());
        (reports, json, text, page, open)
    };
    let mut held_open = 0;
    for path in &captures {
        let one = outputs(path, Schedule::one_thread());
        let two = outputs(
            path,
            Schedule::OnePassThreaded {
                max_held_rows: MAX_HELD_ROWS,
            },
        );
        let shown = path.display();
        assert!(!one.0.is_empty(), "{shown}: no connections");
        assert!(one.0 == two.0, "{shown}: the reports or their order differ");
        assert!(one.1 == two.1, "{shown}: the JSON report differs");
        assert!(one.2 == two.2, "{shown}: the terminal report differs");
        assert!(one.3 == two.3, "{shown}: the HTML report differs");
        held_open += one.4;
    }
    assert!(
        held_open > 100,
        "{held_open} connections held open at the end"
    );
}

/// Not a terminal: no escape sequences, whatever NO_COLOR says.
#[test]
fn report_text_is_plain_when_piped() {
    let out = tcpshut(&[
        "report",
        testdata().join("close-unread.pcap").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    assert!(stdout.contains("Findings"), "{stdout}");
    assert!(stdout.contains("close() with unread data"), "{stdout}");
}

/// A file that is not a capture is named once, the others still count,
/// and the exit code says an input failed.
#[test]
fn a_bad_input_is_named_and_the_rest_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pcap");
    fs::write(&bad, b"not a capture at all").unwrap();
    let good = testdata().join("refused.pcap");
    let out = tcpshut(&[
        "report",
        "--format",
        "json",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("bad.pcap").count(), 1, "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["inputs"]["failed"], 1);
    assert_eq!(doc["inputs"]["captures"], 1);
}

/// The third-party corpus, every capture: no panic, and a document.
#[test]
fn report_reads_the_third_party_corpus() {
    let dir = repo_root().join("testdata/third-party");
    let doc = json_report(&[dir.to_str().unwrap()]);
    assert!(doc["inputs"]["captures"].as_u64().unwrap() > 50);
    assert!(doc["inputs"]["connections"].as_u64().unwrap() > 0);
}

/// The HTML of the real-kernel mix opens in headless Chromium (Debian's
/// `chromium`) with no console message, and its script ran (the page
/// marks itself ready). `tcpshut ladder` writes an SVG file.
#[test]
fn the_html_report_opens_in_chromium_without_console_errors() {
    crate::util::require_tool("chromium", "the HTML report is checked in a real browser");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("mix.html");
    let mix = testdata().join("report-mix");
    let out = tcpshut(&[
        "report",
        mix.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let profile = dir.path().join("profile");
    let run = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = text(&run.stdout);
    let log = text(&run.stderr);
    assert!(
        dom.contains("data-ready=\"yes\""),
        "the page's script ran: {log}"
    );
    assert!(dom.contains("Ladder diagram of"), "{dom}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");

    let svg = dir.path().join("conn1.svg");
    let capture = mix.join("mix.pcap");
    let out = tcpshut(&[
        "ladder",
        capture.to_str().unwrap(),
        "--conn",
        "1",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(fs::read_to_string(&svg).unwrap().contains("rst-abort"));
    let out = tcpshut(&["ladder", capture.to_str().unwrap(), "--conn", "100000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no connection 100000"));
    // The HTML never replaces a capture.
    let out = tcpshut(&[
        "report",
        capture.to_str().unwrap(),
        "--html",
        capture.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Neither the HTML page nor a ladder diagram replaces a file that holds a
/// capture, whatever its name.
#[test]
fn report_and_ladder_never_replace_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let capture = testdata().join("refused.pcap");
    let bytes = std::fs::read(&capture).unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(&page, &bytes).unwrap();
    let out = tcpshut(&[
        "report",
        "--html",
        page.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("looks like a capture"));
    let out = tcpshut(&[
        "ladder",
        capture.to_str().unwrap(),
        "--conn",
        "0",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("looks like a capture"));
    assert_eq!(std::fs::read(&page).unwrap(), bytes);
}

/// The HTML report of a capture on standard input has the diagrams the
/// same capture as a file gets (the stream is copied whole, both reads
/// read the copy), named `-`.
#[test]
fn the_html_report_of_standard_input_keeps_its_ladders() {
    let dir = tempfile::tempdir().unwrap();
    let capture = testdata().join("report-mix/mix.pcap");
    let from_file = dir.path().join("file.html");
    let out = tcpshut(&[
        "report",
        capture.to_str().unwrap(),
        "--html",
        from_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_stdin = dir.path().join("stdin.html");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tcpshut"))
        .args(["report", "-", "--html", from_stdin.to_str().unwrap()])
        .stdin(fs::File::open(&capture).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let ladders = |page: &std::path::Path| {
        fs::read_to_string(page)
            .unwrap()
            .matches("Ladder diagram of")
            .count()
    };
    assert!(ladders(&from_file) > 0);
    assert_eq!(ladders(&from_stdin), ladders(&from_file));
    let page = fs::read_to_string(&from_stdin).unwrap();
    assert!(page.contains("Ladder diagram of -,"), "named as given");
    assert!(!page.contains("/proc/self/fd"));
}
