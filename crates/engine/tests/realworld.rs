//! Reads every capture in `testdata/third-party/` and checks that the number of
//! decoded TCP segments per file matches the protocol stacks `MANIFEST.tsv`
//! lists (tshark's count), plus the segments tshark does not decode and
//! tcpshut does, each with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use tcpshut_engine::CaptureReader;
use tcpshut_engine::{decode_reassembling, DecodeOptions, DecodeStats, Fragments};

mod common;

/// Segments tcpshut decodes beyond tshark's count, by file, with the reason.
const BEYOND_TSHARK: &[(&str, u64, &str)] = &[(
    "zeek__tunnels__Teredo.pcap",
    22,
    "Teredo between the client and its relay on UDP 3797/32900: tshark looks for \
     Teredo on UDP 3544 only, tcpshut (as Zeek) also by its shape",
)];

/// Files whose count is known to differ, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// Sums `stack xN` counts of the manifest's linktype column.
fn expected_segments(linktype: &str) -> u64 {
    let Some((_, stacks)) = linktype.split_once("tcp-stacks=") else {
        return 0;
    };
    stacks
        .split(", ")
        .filter_map(|entry| entry.rsplit_once(" x"))
        .map(|(_, count)| count.parse::<u64>().expect("stack count is a number"))
        .sum()
}

fn decode_file(path: &Path) -> DecodeStats {
    let mut reader = CaptureReader::open(path).expect("capture opens");
    let mut stats = DecodeStats::default();
    let mut fragments = Fragments::new();
    while let Some(frame) = reader.next_frame().expect("capture reads to the end") {
        decode_reassembling(&frame, &mut stats, &mut fragments, DecodeOptions::default());
    }
    stats
}

#[test]
fn realworld_segment_counts_match_manifest() {
    let corpus = common::realworld_dir();
    let manifest =
        std::fs::read_to_string(corpus.join("MANIFEST.tsv")).expect("MANIFEST.tsv is readable");
    let mut header = manifest
        .lines()
        .next()
        .expect("manifest header")
        .split('\t');
    let file_col = header.position(|c| c == "file").expect("file column");
    let mut header = manifest
        .lines()
        .next()
        .expect("manifest header")
        .split('\t');
    let link_col = header
        .position(|c| c == "linktype")
        .expect("linktype column");

    // A file can have several rows (one per peer); its stacks are the same.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for row in manifest.lines().skip(1).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = row.split('\t').collect();
        let file = cols[file_col];
        let beyond = BEYOND_TSHARK
            .iter()
            .find(|(name, _, _)| *name == file)
            .map_or(0, |(_, extra, _)| *extra);
        expected.insert(file.to_string(), expected_segments(cols[link_col]) + beyond);
    }
    assert!(!expected.is_empty(), "manifest lists no captures");

    let mut disagreements = Vec::new();
    let mut agreeing = 0;
    for (file, want) in &expected {
        let stats = decode_file(&corpus.join(file));
        let known = KNOWN_DIFFERENCES.iter().find(|(name, _)| name == file);
        if stats.tcp_segments == *want {
            agreeing += 1;
            eprintln!("agree   {file}: {want} segments");
            assert!(
                known.is_none(),
                "{file} agrees now; drop it from KNOWN_DIFFERENCES"
            );
        } else {
            let reason = known.map_or("UNEXPECTED", |(_, why)| why);
            eprintln!(
                "DIFFER  {file}: decoded {} want {want} ({reason}) {stats:?}",
                stats.tcp_segments
            );
            if known.is_none() {
                disagreements.push(file.clone());
            }
        }
    }
    eprintln!("{agreeing} of {} files agree", expected.len());
    assert!(
        disagreements.is_empty(),
        "unexplained disagreements: {disagreements:?}"
    );
}

#[test]
fn manifest_stack_counts_are_summed() {
    let linktype = "pcap; ether; tcp-stacks=eth:ethertype:ip:tcp x22, \
                    eth:ethertype:ip:udp:gtp:ip:tcp x78, eth:ethertype:mpls:ip:tcp x11";
    assert_eq!(expected_segments(linktype), 111);
    assert_eq!(expected_segments("pcapng; ether; tcp-stacks=(no tcp)"), 0);
}
