//! Helpers shared by the engine's integration tests: where the captures
//! are (`testdata/`, and the third-party corpus in `testdata/third-party/`,
//! see its README.md).

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

pub mod fifo;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `testdata/third-party`: the third-party corpus, part of the repository.
/// Panics (failing the test) when it is missing: a test never passes by
/// skipping its data.
pub fn realworld_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/third-party");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "{} is missing: the third-party corpus is part of the repository",
        dir.display()
    );
    dir
}

/// `testdata/`: the real-kernel recordings.
pub fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The captures (`.pcap`, `.pcapng`, `.cap`) directly in each of `dirs`,
/// in path order; a directory that cannot be read fails the test.
pub fn captures_in(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut captures = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        captures.extend(entries.map(|e| e.unwrap().path()).filter(|p| {
            p.extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
        }));
    }
    captures.sort();
    captures
}

/// One expectation row of MANIFEST.tsv: the capture file, and one element
/// of its `peer_expectation` list.
pub struct PeerRow {
    pub file: String,
    pub notes: String,
    pub expectation: Value,
}

/// Every expectation row of `peer` (`zeek`, `suricata`, `pcapplusplus`),
/// in manifest order.
pub fn peer_rows(peer: &str) -> Vec<PeerRow> {
    let manifest = realworld_dir().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (c_file, c_peer, c_exp, c_notes) = (
        col("file"),
        col("peer"),
        col("peer_expectation"),
        col("peer_notes"),
    );
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[c_peer] != peer {
            continue;
        }
        let rows: Value = serde_json::from_str(cols[c_exp]).expect("peer_expectation JSON");
        for row in rows.as_array().expect("peer_expectation is a list") {
            out.push(PeerRow {
                file: cols[c_file].to_owned(),
                notes: cols[c_notes].to_owned(),
                expectation: row.clone(),
            });
        }
    }
    out
}
