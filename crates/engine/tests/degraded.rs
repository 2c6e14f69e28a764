//! The degraded captures of `testdata/degraded` (a real recording cut as
//! people take captures: headers only, one direction, started late,
//! stopped early; made by tcpshut-record) and the losses of
//! `testdata/router` (a FIN or RST dropped by a router on the path,
//! captured at both ends and on the router): every answer is the truth (what the
//! applications called), or, where the manifest says the wire at that
//! point cannot prove it, one of the honest wider answers; never a
//! confident wrong one. Each capture also goes through `annotate_checked`
//! (row and verdict invariants, same rows in every schedule).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tcpshut_engine::ConnectionReport;

fn testdata(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(dir)
}

fn manifest(dir: &Path) -> Value {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the captures are part of the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("valid JSON")
}

/// The report's answer for each field the manifest names.
fn answers(r: &ConnectionReport) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        ("outcome".to_string(), r.outcome.name().to_string()),
        ("closer".to_string(), r.closer.name().to_string()),
    ]);
    for (name, e) in ["client", "server"].iter().zip(&r.endpoints) {
        out.insert(format!("{name}.role"), e.role.name().into());
        out.insert(format!("{name}.closed_by"), e.closed_by.name().into());
        out.insert(format!("{name}.calls"), e.calls.to_string());
    }
    out
}

/// Checks every capture of `dir`'s manifest that carries the truth
/// (`connections`); returns how many captures were judged and how many
/// answers were honestly wider than the truth.
fn answers_right_or_honestly_wider(dir: &Path) -> (usize, usize) {
    let manifest = manifest(dir);
    let captures: Vec<&Value> = manifest["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .filter(|c| c["connections"].as_array().is_some_and(|c| !c.is_empty()))
        .collect();
    let mut problems = Vec::new();
    let mut wider = 0;
    for capture in &captures {
        let file = capture["file"].as_str().expect("file");
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let result = tcpshut_engine::testing::annotate_checked(&bytes, file)
            .unwrap_or_else(|| panic!("{file}: not readable"));
        let expected = capture["connections"].as_array().expect("connections");
        if result.reports.len() != expected.len() {
            problems.push(format!(
                "{file}: {} connections, expected {}",
                result.reports.len(),
                expected.len()
            ));
            continue;
        }
        if let Some(decode) = capture["expected_decode"].as_object() {
            let got = serde_json::to_value(&result.capture.decode).unwrap();
            for (field, want) in decode {
                if &got[field] != want {
                    problems.push(format!(
                        "{file}: decode {field} {}, expected {want}",
                        got[field]
                    ));
                }
            }
        }
        // The end is unseen exactly when the frames do not show it (both
        // FINs, or an RST): the ACKs after both FINs are not needed.
        if let Some(end_seen) = capture["end_seen"].as_bool() {
            for got in &result.reports {
                if got.notes.contains(&"end-unseen") == end_seen {
                    problems.push(format!(
                        "{file}: notes {:?}, but the frames {} the end",
                        got.notes,
                        if end_seen { "show" } else { "do not show" }
                    ));
                }
            }
        }
        for (want, got) in expected.iter().zip(&result.reports) {
            assert_eq!(want["client_addr"], got.client.as_str(), "{file}");
            for (field, answer) in answers(got) {
                let truth = want["truth"][&field]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: truth of {field}"));
                if answer == truth {
                    continue;
                }
                let honest = want["unprovable"][&field]
                    .as_array()
                    .is_some_and(|allowed| allowed.iter().any(|a| a == answer.as_str()));
                if honest {
                    wider += 1;
                } else {
                    problems.push(format!(
                        "{file}: {field} {answer:?}, but the truth is {truth:?} and the wire {}",
                        match want["unprovable"].get(&field) {
                            Some(allowed) => format!("allows only {allowed} instead"),
                            None => "proves it".to_string(),
                        }
                    ));
                }
            }
        }
    }
    for p in &problems {
        eprintln!("WRONG {p}");
    }
    assert!(
        problems.is_empty(),
        "{} confident wrong answers",
        problems.len()
    );
    (captures.len(), wider)
}

#[test]
fn degraded_captures_answer_right_or_honestly_wider() {
    let (captures, wider) = answers_right_or_honestly_wider(&testdata("degraded"));
    assert!(captures >= 20, "{captures} degraded captures");
    // The conditions do hide things: some answers must be wider.
    assert!(wider > 20, "only {wider} wider answers");
}

/// A FIN or RST lost on the path (once, or for good), seen from the
/// client and from the server.
#[test]
fn lost_fins_and_rsts_answer_right_or_honestly_wider() {
    let (captures, wider) = answers_right_or_honestly_wider(&testdata("router"));
    assert!(captures >= 12, "{captures} captures of a loss");
    assert!(wider >= 5, "only {wider} wider answers");
}

/// Every row placing a FIN in the order of the closes, in the captures of
/// `dir`'s manifest, with its
/// connection's closer: (file, frame, sender, events, sentence, closer).
type FinRow = (String, u64, String, String, String, String);
fn fin_rows(dir: &str) -> Vec<FinRow> {
    let dir = testdata(dir);
    let mut out = Vec::new();
    for capture in manifest(&dir)["captures"].as_array().expect("captures") {
        let file = capture["file"].as_str().expect("file");
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut sink = tcpshut_engine::MemorySink::default();
        let result = tcpshut_engine::annotate_bytes(
            &bytes,
            file,
            tcpshut_engine::Detail::Reports,
            &mut sink,
            tcpshut_engine::Schedule::TwoPasses,
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        for row in &sink.rows {
            let events = row.events.to_string();
            let places_a_fin = [
                "fin-active",
                "fin-passive",
                "fin-simultaneous",
                "fin-order-unknown",
            ]
            .iter()
            .any(|e| events.split(';').any(|x| x == *e));
            if !places_a_fin {
                continue;
            }
            let closer = result.reports[row.conn as usize].closer.name();
            out.push((
                file.to_string(),
                row.frame,
                format!("{:?}", row.summary.sender()).to_lowercase(),
                events,
                row.summary.to_string(),
                closer.to_string(),
            ));
        }
    }
    out
}

/// No FIN row claims a closer its verdict does not know: where the closer
/// is `unknown` the row is `fin-order-unknown` and says why; where it is
/// known, "closes first" only from the closer.
#[test]
fn fin_rows_claim_no_more_than_the_verdict() {
    let mut rows = fin_rows("degraded");
    rows.extend(fin_rows("router"));
    let mut unknown = 0;
    for (file, frame, sender, events, sentence, closer) in &rows {
        let at = format!("{file} frame {frame}: {events}: {sentence:?}, closer {closer}");
        if closer == "unknown" {
            unknown += 1;
            assert!(events.contains("fin-order-unknown"), "{at}");
            assert!(
                sentence.starts_with(&format!("FIN from the {sender}: "))
                    && sentence.contains("; who closed first cannot be told: "),
                "{at}"
            );
        } else {
            assert!(!events.contains("fin-order-unknown"), "{at}");
        }
        if sentence.contains("closes first") {
            assert_eq!(closer, sender, "{at}");
        }
    }
    // One direction, started after the first FIN, stopped after it, a FIN
    // lost for good: each leaves the order untold.
    assert!(unknown >= 10, "only {unknown} FIN rows of an unknown order");
    let row = |file: &str, frame: u64| {
        rows.iter()
            .find(|r| r.0 == file && r.1 == frame)
            .unwrap_or_else(|| panic!("{file}: no FIN row at frame {frame}"))
    };
    // Only the server's direction: its FIN (which answered the client's)
    // is not called the first.
    let server_only = row("close-client-first--server-only.pcap", 5);
    assert_eq!(
        server_only.4,
        "FIN from the server: close(), shutdown(SHUT_RDWR) or shutdown(SHUT_WR); \
         who closed first cannot be told: the capture saw one direction only"
    );
    // The client's RST never reached the server, which then sends the
    // connection's first FIN: it closes second, not first.
    let after_rst = row("rst-lost-at-client.pcap", 9);
    assert!(after_rst.3.contains("fin-passive"), "{after_rst:?}");
    assert!(
        after_rst
            .4
            .starts_with("Server closes after the client did (FIN)"),
        "{after_rst:?}"
    );
}
