//! Who really sent an RST: the router recordings of testdata/router (RSTs
//! forged by nftables in an endpoint's name, and genuine controls through
//! the same router) against their manifest, at every capture point; and
//! no genuine RST called forged in testdata/ or the third-party corpus.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tcpshut_engine::ConnectionReport;

use common::testdata_dir as testdata;

/// Frame number and events of every row of `path`.
fn events(path: &Path) -> BTreeMap<u64, String> {
    let mut out = Vec::new();
    let mut sink = tcpshut_engine::CsvSink::new(&mut out);
    tcpshut_engine::annotate_with(
        path,
        tcpshut_engine::Detail::Verdicts,
        &mut sink,
        tcpshut_engine::Schedule::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    drop(sink);
    let text = String::from_utf8(out).expect("UTF-8 CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let at = |name| header.iter().position(|h| *h == name).expect(name);
    let (frame, events) = (at("frame"), at("events"));
    lines
        .map(|l| {
            // The columns up to `events` hold no commas.
            let cols: Vec<&str> = l.splitn(events + 2, ',').collect();
            (
                cols[frame].parse().expect("frame"),
                cols[events].to_string(),
            )
        })
        .collect()
}

fn reports(path: &Path) -> Vec<ConnectionReport> {
    tcpshut_engine::verdicts(path, tcpshut_engine::Detail::Reports)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .reports
}

fn forged(events: &str) -> bool {
    events.split(';').any(|e| e == "rst-forged")
}

#[test]
fn every_forged_rst_is_found_and_no_genuine_one_is_called_forged() {
    let dir = testdata().join("router");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("testdata/router/manifest.json"),
    )
    .expect("JSON manifest");
    let captures = manifest["captures"].as_array().expect("captures");
    assert_eq!(captures.len(), 18, "six scenarios at three points");
    let mut problems = Vec::new();
    let mut found = 0;
    for capture in captures {
        let file = capture["file"].as_str().expect("file");
        let path = dir.join(file);
        let rows = events(&path);
        for f in capture["forged"].as_array().expect("forged") {
            let frame = f["frame"].as_u64().expect("frame");
            match rows.get(&frame) {
                Some(e) if forged(e) => found += 1,
                other => problems.push(format!("{file}: forged frame {frame} is {other:?}")),
            }
        }
        for frame in capture["genuine_rsts"].as_array().expect("genuine") {
            let frame = frame.as_u64().expect("frame");
            if rows.get(&frame).is_some_and(|e| forged(e)) {
                problems.push(format!("{file}: genuine RST {frame} called forged"));
            }
        }
        // The endpoint a forged RST names made no abortive call; the
        // controls' aborts are still found.
        let report = reports(&path);
        for (i, endpoint) in report[0].endpoints.iter().enumerate() {
            let side = if i == 0 { "client" } else { "server" };
            let named = capture["forged"]
                .as_array()
                .expect("forged")
                .iter()
                .any(|f| f["claimed"] == side);
            let calls = endpoint.calls.to_string();
            let made: Vec<String> = capture[format!("{side}_calls")]
                .as_array()
                .expect("calls")
                .iter()
                .map(|c| c.as_str().expect("call").to_string())
                .collect();
            let aborted = made.iter().any(|c| c == "close_unread" || c == "linger0");
            if calls.contains("linger0") != aborted {
                problems.push(format!(
                    "{file}: {side} calls {calls:?}, its application called {made:?}"
                ));
            }
            let judged = endpoint.rst_origin.as_ref().is_some_and(|o| o.forged);
            if named && !judged {
                problems.push(format!("{file}: the {side}'s RSTs not judged forged"));
            }
            if named && report[0].notes.iter().all(|n| *n != "rst-forged") {
                problems.push(format!("{file}: no rst-forged note"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(found, 10, "forged RSTs found over the recordings");
}

/// Every capture in testdata/, testdata/degraded and the third-party corpus, with the frames
/// called `rst-forged`: only the two that are.
#[test]
fn no_genuine_rst_is_called_forged_in_testdata_or_the_corpus() {
    let captures = common::captures_in(&[
        testdata(),
        testdata().join("degraded"),
        common::realworld_dir(),
    ]);
    assert!(captures.len() > 100, "{} captures", captures.len());
    let mut called = BTreeMap::new();
    for path in &captures {
        let frames: Vec<u64> = events(path)
            .into_iter()
            .filter(|(_, e)| forged(e))
            .map(|(f, _)| f)
            .collect();
        if !frames.is_empty() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            called.insert(name, frames);
        }
    }
    let expected = BTreeMap::from([
        // Documented as injected: frame 2 answers the SYN in 1.2.0.3's name.
        ("zeek__tcp__rst-inject-rae.pcap".to_string(), vec![2, 7, 9]),
        // RST+ACKs with TTL 255 in the name of a web server whose segments
        // arrive with TTL 53 (docs/semantics.md, forged resets).
        ("zeek__tunnels__Teredo.pcap".to_string(), vec![50, 78]),
    ]);
    assert_eq!(called, expected);
}

/// Zeek's injection capture: frame 2 is an RST in 1.2.0.3's name with TTL
/// 46 and the IP ID of the SYN it answers, where 1.2.0.3's own segments
/// carry TTL 49.
#[test]
fn the_injected_rst_shows_its_evidence() {
    let path = testdata().join("third-party/zeek__tcp__rst-inject-rae.pcap");
    let report = reports(&path);
    let server = report[0]
        .endpoints
        .iter()
        .find(|e| e.addr == "1.2.0.3:6649")
        .expect("1.2.0.3");
    let origin = server.rst_origin.as_ref().expect("origin checked");
    assert!(origin.forged);
    let texts: Vec<&str> = origin.evidence.iter().map(|s| s.text.as_str()).collect();
    assert!(
        texts.contains(&"TTL 46 where this host's segments carry 49"),
        "{texts:?}"
    );
    assert!(
        origin.evidence.iter().any(|s| s.code == "ip-id-copied"),
        "{texts:?}"
    );
    assert!(server.calls.to_string().is_empty(), "{}", server.calls);
}

/// A refusal is one segment of the endpoint's: nothing to compare with,
/// and the report says so.
#[test]
fn a_lone_rst_cannot_be_checked() {
    let report = reports(&testdata().join("refused.pcap"));
    assert!(
        report[0].notes.contains(&"rst-origin-unchecked"),
        "{:?}",
        report[0].notes
    );
}
