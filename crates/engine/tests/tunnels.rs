//! Tunnels, on the real-kernel recordings of `testdata/` wrapped in each
//! encapsulation by `tunnels/wrap.rs` (see there for the rewrite):
//! every wrapped recording gives the rows and verdicts of the original,
//! each connection names its tunnel, two tenants' identical 4-tuples in
//! two VNIs stay two connections, and the decoding agrees with tshark's.

#[path = "tunnels/wrap.rs"]
mod wrap;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tcpshut_engine::{annotate, annotate_bytes, Detail, MemorySink, Schedule, Verdicts};
use tcpshut_engine::{decode, CaptureReader, DecodeStats};
use wrap::{wrap_capture, Encap};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Every recording of `testdata/manifest.json` (derived ones included).
fn recordings() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(testdata().join("manifest.json"))
        .expect("testdata/manifest.json is committed");
    let manifest: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let files: Vec<PathBuf> = manifest["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .map(|c| testdata().join(c["file"].as_str().expect("file")))
        .collect();
    assert!(files.len() > 20, "the manifest lists the recordings");
    files
}

/// What a run gives: every row (Debug form), every report without its
/// tunnel, the tunnels shown, and the decode counts.
struct Outcome {
    rows: Vec<String>,
    reports: Vec<Value>,
    tunnels: Vec<Value>,
    decode: DecodeStats,
}

impl Outcome {
    fn of(verdicts: Verdicts, sink: MemorySink) -> Outcome {
        let mut tunnels = Vec::new();
        let reports = verdicts
            .reports
            .iter()
            .map(|report| {
                let mut value = serde_json::to_value(report).unwrap();
                tunnels.push(
                    value
                        .as_object_mut()
                        .unwrap()
                        .remove("tunnel")
                        .unwrap_or(Value::Null),
                );
                value
            })
            .collect();
        Outcome {
            rows: sink.rows.iter().map(|row| format!("{row:?}")).collect(),
            reports,
            tunnels,
            decode: verdicts.capture.decode,
        }
    }

    fn of_file(path: &Path) -> Outcome {
        let mut sink = MemorySink::default();
        let verdicts = annotate(path, Detail::Reports, &mut sink).expect("recording annotates");
        Outcome::of(verdicts, sink)
    }

    fn of_bytes(bytes: &[u8], name: &str) -> Outcome {
        let mut sink = MemorySink::default();
        let verdicts = annotate_bytes(bytes, name, Detail::Reports, &mut sink, Schedule::default())
            .expect("wrapped capture annotates");
        Outcome::of(verdicts, sink)
    }
}

/// The kinds of the layers of a report's tunnel, outermost first.
fn kinds(tunnel: &Value) -> Vec<String> {
    tunnel
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .map(|l| l["kind"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The layers an encapsulation must show, for an IPv4 or IPv6 recording.
fn expected_kinds(encap: Encap, v6: bool) -> Vec<&'static str> {
    match encap {
        Encap::Vxlan(_) | Encap::VxlanOnPort(_) => vec!["vxlan"],
        Encap::GeneveEthernet | Encap::GeneveIp => vec!["geneve"],
        Encap::Gre | Encap::GreBridged => vec!["gre"],
        Encap::ErspanII => vec!["erspan-ii"],
        Encap::ErspanIII => vec!["erspan-iii"],
        Encap::InIpv4 if v6 => vec!["6in4"],
        Encap::InIpv4 => vec!["ipip"],
        Encap::InIpv6 if v6 => vec!["6in6"],
        Encap::InIpv6 => vec!["4in6"],
        Encap::Teredo if v6 => vec!["teredo"],
        Encap::Teredo => vec!["teredo", "4in6"],
        Encap::GtpU | Encap::GtpUTeids(..) => vec!["gtp-u"],
        Encap::VxlanInGre => vec!["gre", "vxlan"],
    }
}

#[test]
fn every_recording_gives_the_same_verdicts_in_every_tunnel() {
    let mut problems = Vec::new();
    let mut compared = 0;
    for path in recordings() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let original = Outcome::of_file(&path);
        let v6 = original
            .reports
            .first()
            .is_some_and(|r| r["client"].as_str().unwrap().starts_with('['));
        for encap in Encap::ALL {
            let at = format!("{name} in {encap:?}");
            let wrapped = Outcome::of_bytes(&wrap_capture(&path, encap), &at);
            compared += 1;
            if wrapped.rows != original.rows {
                let first = wrapped
                    .rows
                    .iter()
                    .zip(&original.rows)
                    .find(|(w, o)| w != o);
                problems.push(format!(
                    "{at}: rows differ ({} against {}), first: {first:?}",
                    wrapped.rows.len(),
                    original.rows.len()
                ));
            }
            if wrapped.reports != original.reports {
                problems.push(format!("{at}: reports differ"));
            }
            for tunnel in &wrapped.tunnels {
                let want = expected_kinds(encap, v6);
                if kinds(tunnel) != want {
                    problems.push(format!("{at}: tunnel {tunnel}, expected kinds {want:?}"));
                }
            }
            let (w, o) = (&wrapped.decode, &original.decode);
            if (
                w.tcp_segments,
                w.truncated,
                w.ip_fragments,
                w.options_cut,
                w.payload_cut,
            ) != (
                o.tcp_segments,
                o.truncated,
                o.ip_fragments,
                o.options_cut,
                o.payload_cut,
            ) || w.tunnelled != w.tcp_segments
            {
                problems.push(format!("{at}: decode {w:?}, original {o:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {compared} wrapped recordings differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The records of a pcap made by `wrap_capture` (after its 24-byte header).
fn records(pcap: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = &pcap[24..];
    while !rest.is_empty() {
        let len = 16 + u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

/// Two captures made by `wrap_capture` as one: their records in turns.
fn interleaved(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut merged = a[..24].to_vec();
    for (a, b) in records(a).into_iter().zip(records(b)) {
        merged.extend_from_slice(a);
        merged.extend_from_slice(b);
    }
    merged
}

#[test]
fn identical_inner_tuples_in_two_vnis_stay_two_connections() {
    let path = testdata().join("close-client-first.pcap");
    let original = Outcome::of_file(&path);
    assert_eq!(original.reports.len(), 1);
    let tenant_a = wrap_capture(&path, Encap::Vxlan(100));
    let tenant_b = wrap_capture(&path, Encap::Vxlan(200));
    // Both tenants' frames interleaved: the same 4-tuple, the same
    // sequence numbers, at the same times.
    let both = Outcome::of_bytes(&interleaved(&tenant_a, &tenant_b), "two-vnis");
    assert_eq!(both.reports.len(), 2, "one connection per VNI");
    let vnis: Vec<u64> = both
        .tunnels
        .iter()
        .map(|t| t[0]["vni"].as_u64().unwrap())
        .collect();
    assert_eq!(vnis, [100, 200]);
    for report in &both.reports {
        for field in [
            "client",
            "server",
            "outcome",
            "closer",
            "zeek_conn_state",
            "zeek_history",
        ] {
            assert_eq!(report[field], original.reports[0][field], "{field}");
        }
        assert_eq!(
            report["endpoints"][0]["calls"],
            original.reports[0]["endpoints"][0]["calls"]
        );
        assert_eq!(
            report["endpoints"][1]["calls"],
            original.reports[0]["endpoints"][1]["calls"]
        );
    }
}

/// Two users' bearers between the same GTP-U tunnel endpoints, with the
/// same inner 4-tuple (overlapping private address pools), interleaved:
/// each direction's TEID tells them apart, and each connection's tunnel
/// shows the TEID each end chose.
#[test]
fn identical_inner_tuples_with_two_gtp_teids_stay_two_connections() {
    let path = testdata().join("close-client-first.pcap");
    let original = Outcome::of_file(&path);
    assert_eq!(original.reports.len(), 1);
    let user_a = wrap_capture(&path, Encap::GtpUTeids(0x1001, 0x2002));
    let user_b = wrap_capture(&path, Encap::GtpUTeids(0x3003, 0x4004));
    let both = Outcome::of_bytes(&interleaved(&user_a, &user_b), "two-teids");
    assert_eq!(both.reports.len(), 2, "one connection per pair of TEIDs");
    let mut teids: Vec<Vec<u64>> = both
        .tunnels
        .iter()
        .map(|t| {
            let teids = t[0]["teids"].as_array().unwrap();
            let mut teids: Vec<u64> = teids.iter().map(|t| t.as_u64().unwrap()).collect();
            teids.sort_unstable();
            teids
        })
        .collect();
    teids.sort();
    assert_eq!(teids, [[0x1001, 0x2002], [0x3003, 0x4004]]);
    for report in &both.reports {
        for field in ["client", "server", "outcome", "closer"] {
            assert_eq!(report[field], original.reports[0][field], "{field}");
        }
        for side in 0..2 {
            assert_eq!(
                report["endpoints"][side]["calls"],
                original.reports[0]["endpoints"][side]["calls"]
            );
        }
    }
    // Without the TEIDs' difference (one user's capture twice), the copies
    // are one connection, as for one VNI.
    let twice = interleaved(&user_a, &user_a);
    assert_eq!(Outcome::of_bytes(&twice, "one-teid-pair").reports.len(), 1);
}

/// Recordings cross-checked against tshark: IPv4 Ethernet, IPv6 SLL2,
/// and one the snaplen cut.
const CROSS_CHECKED: [&str; 3] = [
    "close-client-first.pcap",
    "close-client-first-ipv6.pcap",
    "half-close-data-after-fin-snap80.pcap",
];

/// Per TCP segment: frame, ports, flags, raw sequence and acknowledgement
/// numbers, payload length.
type Fields = (u64, u16, u16, u8, u32, u32, u32);

fn ours(pcap: &[u8]) -> Vec<Fields> {
    let mut reader =
        CaptureReader::from_reader(Box::new(std::io::Cursor::new(pcap.to_vec())), "wrapped")
            .unwrap();
    let mut stats = DecodeStats::default();
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        if let Some(seg) = decode(&frame, &mut stats) {
            out.push((
                seg.frame,
                seg.src.port(),
                seg.dst.port(),
                seg.flags.0,
                seg.seq,
                seg.ack,
                seg.payload_len,
            ));
        }
    }
    out
}

fn tsharks(path: &Path) -> Vec<Fields> {
    let output = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-Y", "tcp", "-T", "fields", "-E", "occurrence=l"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
        ])
        .args([
            "-e",
            "tcp.flags",
            "-e",
            "tcp.seq_raw",
            "-e",
            "tcp.ack_raw",
            "-e",
            "tcp.len",
        ])
        .output()
        .expect("tshark runs (scripts/install-deps installs it)");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let flags = u8::from_str_radix(f[3].trim_start_matches("0x0"), 16).unwrap();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                flags,
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
                f[6].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn decoding_agrees_with_tshark_in_every_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    for name in CROSS_CHECKED {
        let path = testdata().join(name);
        // Every encapsulation in one file, one after another, so that
        // tshark starts once per recording.
        let mut all: Vec<u8> = Vec::new();
        for encap in Encap::ALL {
            let pcap = wrap_capture(&path, encap);
            if all.is_empty() {
                all.extend_from_slice(&pcap[..24]);
            }
            for record in records(&pcap) {
                all.extend_from_slice(record);
            }
        }
        let file = dir.path().join(name);
        std::fs::write(&file, &all).unwrap();
        let ours = ours(&all);
        let theirs = tsharks(&file);
        assert!(!ours.is_empty(), "{name}: nothing decoded");
        assert_eq!(
            ours, theirs,
            "{name}: tcpshut and tshark decode differently"
        );
    }
}
