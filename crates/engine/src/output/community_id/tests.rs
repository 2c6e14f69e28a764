//! Community ID v1 against the specification's own baseline
//! (`testdata/third-party/community-id/`, copied from
//! corelight/community-id-spec): every flow tuple there must hash to the
//! value the reference implementation computed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::*;

fn baseline(name: &str) -> Vec<serde_json::Value> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/third-party/community-id")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the Community ID vectors are part of the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The baseline's flows whose ports are hashed as they are (TCP, UDP,
/// SCTP) or that have none (RSVP); ICMP maps type and code first.
fn flows(entries: &[serde_json::Value]) -> Vec<(FlowTuple, String)> {
    let flows: Vec<(FlowTuple, String)> = entries
        .iter()
        .filter(|e| !matches!(e["proto"].as_u64(), Some(1 | 58)))
        .map(|e| {
            let addr = |k: &str| e[k].as_str().unwrap().parse::<IpAddr>().unwrap();
            let port = |k: &str| e[k].as_u64().map(|p| u16::try_from(p).unwrap());
            let ports = match (port("sport"), port("dport")) {
                (Some(s), Some(d)) => Some((s, d)),
                (None, None) => None,
                other => panic!("half a port pair: {other:?}"),
            };
            let flow = FlowTuple {
                proto: u8::try_from(e["proto"].as_u64().unwrap()).unwrap(),
                src: addr("saddr"),
                dst: addr("daddr"),
                ports,
            };
            (flow, e["communityid"].as_str().unwrap().to_owned())
        })
        .collect();
    // 4 TCP (IPv4 and IPv6), 2 UDP, 2 SCTP, 2 RSVP: a change of file
    // that dropped them would otherwise pass.
    assert_eq!(flows.len(), 10, "{flows:?}");
    assert_eq!(flows.iter().filter(|(f, _)| f.proto == 6).count(), 4);
    flows
}

#[test]
fn default_settings_match_the_baseline() {
    for (flow, expected) in flows(&baseline("baseline_deflt.json")) {
        assert_eq!(flow.community_id(0), expected, "{flow:?}");
    }
}

#[test]
fn seed_1_matches_the_baseline() {
    for (flow, expected) in flows(&baseline("baseline_seed1.json")) {
        assert_eq!(flow.community_id(1), expected, "{flow:?}");
    }
}

#[test]
fn hex_variant_matches_the_baseline() {
    for (flow, expected) in flows(&baseline("baseline_nob64.json")) {
        assert_eq!(flow.community_id_hex(0), expected, "{flow:?}");
    }
}

#[test]
fn tcp_connections_hash_by_their_sockets() {
    let entries = baseline("baseline_deflt.json");
    for (flow, expected) in flows(&entries).into_iter().filter(|(f, _)| f.proto == 6) {
        let (sport, dport) = flow.ports.unwrap();
        let a = SocketAddr::new(flow.src, sport);
        let b = SocketAddr::new(flow.dst, dport);
        assert_eq!(tcp(a, b), expected);
    }
}

#[test]
fn both_directions_give_the_readme_value() {
    // The first row of the specification's baseline README table.
    let a: SocketAddr = "1.2.3.4:1122".parse().unwrap();
    let b: SocketAddr = "5.6.7.8:3344".parse().unwrap();
    assert_eq!(tcp(a, b), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
    assert_eq!(tcp(b, a), "1:wCb3OG7yAFWelaUydu0D+125CLM=");
}

#[test]
fn equal_addresses_are_ordered_by_port() {
    let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:80".parse().unwrap();
    assert_eq!(tcp(a, b), tcp(b, a));
    assert_ne!(
        tcp(a, b),
        tcp(a, "127.0.0.1:81".parse().unwrap()),
        "the port is part of the hash"
    );
}
