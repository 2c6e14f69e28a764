//! What the path did, across the router recordings of testdata/router
//! (RSTs forged by the router's nftables, conntrack dropping an idle
//! connection, genuine resets through the same router as controls; each
//! at three capture points): the idle timeout is a per-path finding, the
//! forged resets are the middlebox's and not the applications', and the
//! counts are exact.

use std::path::{Path, PathBuf};

mod common;

use serde_json::Value;
use tcpshut_report::findings::{Kind, Severity};
use tcpshut_report::{aggregate_capture, Aggregate, Document};

fn router_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/router")
}

/// The scenarios of forged and idle resets, and their controls (the
/// manifest also holds the lost FINs and RSTs of `tcpshut-record --only
/// loss`).
const SCENARIOS: [&str; 6] = [
    "forged-to-client",
    "forged-both",
    "idle-reset",
    "close-unread",
    "linger0-after-data",
    "refused",
];

/// Every capture of those scenarios in the manifest, merged in its order.
fn document() -> Document {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(router_dir().join("manifest.json")).expect("manifest.json"),
    )
    .unwrap();
    let mut agg = Aggregate::default();
    let captures = manifest["captures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| SCENARIOS.iter().any(|s| c["scenario"].as_str() == Some(*s)));
    for (i, capture) in captures.enumerate() {
        let path = router_dir().join(capture["file"].as_str().unwrap());
        let (one, _) = aggregate_capture(i, &path).expect("a router recording reads");
        agg.merge(one);
    }
    Document::new(&agg, 0)
}

#[test]
fn the_idle_timeout_and_the_forged_resets_are_findings_of_the_path() {
    let doc = document();
    let got = common::ranked(&doc);
    // 15 connections to :5000 (five scenarios at three points), 3 refusals.
    assert_eq!(
        got,
        [
            // close-unread and linger0-after-data, at three points.
            (1, Kind::Abort, Severity::Warn, "10.78.2.2:5000", 6, 15),
            // forged-both at three points, forged-to-client at the client
            // and the router.
            (
                2,
                Kind::ForgedReset,
                Severity::Warn,
                "10.78.2.2:5000",
                5,
                15
            ),
            // idle-reset at three points.
            (
                3,
                Kind::IdleReset,
                Severity::Warn,
                "10.78.1.1 -> 10.78.2.2:5000",
                3,
                15
            ),
            // forged-to-client at the server: it sees only its data reset
            // by the client's kernel, which the forged RST had emptied.
            (
                4,
                Kind::ResetAfterClose,
                Severity::Warn,
                "10.78.2.2:5000",
                1,
                15
            ),
            (5, Kind::Refused, Severity::Note, "10.78.2.2:5001", 3, 3),
        ]
    );
    let idle = &doc.findings[2];
    assert_eq!(
        idle.title,
        "Connections from 10.78.1.1 to 10.78.2.2:5000 idle more than 3.5 s are reset: a middlebox idle timeout (20% (3/15) of the connections of 10.78.2.2:5000)."
    );
    assert_eq!(
        idle.evidence[1],
        "the reset was an RST forged on the path in the peer's name"
    );
    assert_eq!(idle.examples.len(), 3);
    assert!(idle
        .examples
        .iter()
        .all(|e| e.capture.contains("idle-reset-at-")));
    assert_eq!(doc.idle_resets.len(), 1);
    assert_eq!(doc.idle_resets[0].idle.connections, 3);
    assert_eq!(doc.idle_resets[0].idle.forged, 3);
    assert!(doc.findings[1]
        .examples
        .iter()
        .all(|e| e.capture.contains("forged-")));
}
