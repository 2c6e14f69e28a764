//! The report of the real-kernel mix (testdata/report-mix, recorded by
//! `tcpshut-record --report-mix`): counts per service against what the
//! applications called (mix.json), and the ranked findings, exactly.

use std::path::{Path, PathBuf};

mod common;

use serde_json::Value;
use tcpshut_report::findings::{Kind, Severity};
use tcpshut_report::{aggregate_capture, Document};

fn mix_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/report-mix")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(mix_dir().join("mix.json"))
        .expect("testdata/report-mix/mix.json is committed");
    serde_json::from_str(&text).unwrap()
}

fn document() -> Document {
    let (agg, summary) = aggregate_capture(0, &mix_dir().join("mix.pcap")).expect("mix.pcap reads");
    assert!(summary.incomplete.is_none());
    Document::new(&agg, 0)
}

/// The number of connections of `service` whose `side` made `call`.
fn made(manifest: &Value, service: &str, side: &str, call: &str) -> u64 {
    manifest["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == service)
        .unwrap_or_else(|| panic!("{service} in mix.json"))[side][call]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn counts_match_what_the_applications_did() {
    let m = manifest();
    let doc = document();
    assert_eq!(doc.inputs.connections, m["connections"].as_u64().unwrap());
    assert_eq!(doc.inputs.frames, m["packets"].as_u64().unwrap());
    let service = |addr: &str| {
        doc.services
            .iter()
            .find(|s| s.service == addr)
            .unwrap_or_else(|| panic!("{addr} in the report"))
    };
    for plan in m["services"].as_array().unwrap() {
        let addr = plan["service"].as_str().unwrap();
        assert_eq!(
            service(addr).tally.connections,
            plan["connections"].as_u64().unwrap(),
            "{addr}"
        );
    }
    // :8080 resets exactly the connections whose server closed with unread data.
    let api = service("10.77.0.2:8080");
    let unread = made(&m, "10.77.0.2:8080", "server_calls", "close_unread");
    assert_eq!(api.server_aborts_after_data, unread);
    assert_eq!(
        api.tally.outcomes.get(tcpshut_engine::Outcome::Reset),
        unread
    );
    assert_eq!(
        api.server_calls.get("close_unread|linger0|shut_rd"),
        Some(&unread)
    );
    // :9090: the client closes first every time, and every one stays in TIME-WAIT.
    let batch = service("10.77.0.2:9090");
    let closes = made(&m, "10.77.0.2:9090", "client_calls", "close");
    assert_eq!(
        batch.tally.closer.get(tcpshut_engine::Closer::Client),
        closes
    );
    let tw = doc
        .time_wait
        .iter()
        .find(|t| t.service == "10.77.0.2:9090")
        .expect("TIME-WAIT towards :9090");
    assert_eq!(
        (tw.holder.as_str(), tw.peak, tw.connections),
        ("10.77.0.1", closes, closes)
    );
    // :5432: every server socket is left in CLOSE-WAIT, aged by the pause.
    let leaks = made(&m, "10.77.0.2:5432", "client_calls", "close");
    let cw = &doc.close_wait[0];
    assert_eq!(
        (cw.service.as_str(), cw.connections),
        ("10.77.0.2:5432", leaks)
    );
    assert!(cw.oldest_secs >= 1.5, "{}", cw.oldest_secs);
    assert_eq!(cw.older_than_limit, 0);
    // :81: refused, every attempt.
    assert_eq!(doc.refused.len(), 1);
    assert_eq!(
        doc.refused[0].attempts,
        made(&m, "10.77.0.2:81", "client_calls", "connect")
    );
}

#[test]
fn the_planted_problems_are_the_top_findings() {
    let doc = document();
    let got = common::ranked(&doc);
    assert_eq!(
        got,
        [
            (1, Kind::TimeWait, Severity::Warn, "10.77.0.1", 150, 150),
            (2, Kind::Abort, Severity::Warn, "10.77.0.2:8080", 25, 100),
            (3, Kind::CloseWait, Severity::Warn, "10.77.0.2:5432", 20, 20),
            (4, Kind::Refused, Severity::Note, "10.77.0.2:81", 10, 10),
        ]
    );
    let titles: Vec<&str> = doc.findings.iter().map(|f| f.title.as_str()).collect();
    assert!(titles[0].starts_with("Client 10.77.0.1 holds up to 150 sockets in TIME-WAIT towards 10.77.0.2:9090: it closes first."), "{}", titles[0]);
    assert!(titles[1].starts_with("10.77.0.2:8080 resets 25% (25/100) of its connections right after receiving data it did not read"), "{}", titles[1]);
    assert!(
        titles[2].starts_with(
            "20 connections of 10.77.0.2:5432 were still in CLOSE-WAIT at the end of the capture"
        ),
        "{}",
        titles[2]
    );
    assert_eq!(
        titles[3],
        "Nothing listens on 10.77.0.2:81: 10 connection attempts from 1 host were refused."
    );
    for f in &doc.findings {
        assert!(!f.examples.is_empty(), "{} has examples", f.title);
        assert!(f.examples.len() <= 3);
    }
}

/// The mix's 25 aborts fall within one second; beside a few captures with
/// an RST or two at other times, that second is an RST burst: counted in
/// RSTs, with the connections it reset and the first of them as examples.
#[test]
fn an_rst_burst_counts_rsts_and_names_its_connections() {
    let testdata = mix_dir().join("..");
    let mut paths = vec![mix_dir().join("mix.pcap")];
    for name in [
        "close-unread.pcap",
        "linger0-no-data.pcap",
        "refused.pcap",
        "linger0-after-data.pcap",
        "refused-ipv6.pcap",
        "linger0-after-data-ipv6.pcap",
    ] {
        paths.push(testdata.join(name));
    }
    let mut agg = tcpshut_report::Aggregate::default();
    for (i, path) in paths.iter().enumerate() {
        agg.merge(aggregate_capture(i, path).expect("reads").0);
    }
    let doc = Document::new(&agg, 0);
    let bursts: Vec<_> = doc
        .findings
        .iter()
        .filter(|f| f.kind == Kind::RstBurst)
        .collect();
    assert_eq!(bursts.len(), 1);
    let burst = bursts[0];
    assert_eq!(
        burst.title,
        "RST burst: 25 RSTs within 1 s (from 1796033208, epoch seconds), 61% (25/41) of all RSTs, resetting 25 connections."
    );
    assert_eq!((burst.affected, burst.total), (25, 41));
    let examples: Vec<(u32, u64)> = burst
        .examples
        .iter()
        .map(|e| (e.conn, e.first_frame))
        .collect();
    assert_eq!(examples, [(1, 11), (13, 117), (25, 227)]);
    assert!(burst
        .examples
        .iter()
        .all(|e| e.capture.ends_with("mix.pcap")));
}
