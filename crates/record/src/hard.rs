//! Hard cases: the per-frame expectations of recorded hard-case scenarios
//! (found on the wire by the generator, independently of tcpshut), and the
//! derived captures with their transformations.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use crate::derive::{self, build, find, find_from, fragment, record_after, tag, Flags, Pcap, Tcp};
use crate::manifest::{Capture, FrameEvents, Variant};
use tcpshut_lab::scenarios::{ClosedBy, Outcome, Role};
use tcpshut_lab::script::{CLIENT_PORT, SERVER_PORT};
use tcpshut_lab::wire;

/// Recordings whose decode counters go into the manifest.
pub const HARD_SCENARIOS: &[&str] = &[
    "keepalive",
    "zero-window",
    "fin-with-data",
    "tfo",
    "retransmit-across-fin",
    "half-close-data-after-fin-snap80",
];

fn ev(frame: usize, events: &[&str]) -> FrameEvents {
    FrameEvents {
        frame,
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

/// Frames of a recording, with each direction's highest end sequence
/// number before the frame (for probes and retransmissions).
fn walk(p: &Pcap) -> Vec<(usize, Tcp, Option<u32>)> {
    let mut max_end: BTreeMap<u16, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, r) in p.records.iter().enumerate() {
        let Some(t) = derive::tcp(&r.data) else {
            continue;
        };
        let before = max_end.get(&t.src.1).copied();
        let end = t.end_seq();
        let e = max_end.entry(t.src.1).or_insert(end);
        if (end.wrapping_sub(*e) as i32) > 0 {
            *e = end;
        }
        out.push((i + 1, t, before));
    }
    out
}

/// Expected events of the frames a recorded hard case is about: found
/// from sequence numbers, and required to be there (the kernel did it).
pub fn recorded_events(scenario: &str, file: &Path) -> Result<Vec<FrameEvents>> {
    let probe = |t: &Tcp, before: Option<u32>| {
        t.payload == 0 && !t.syn && !t.fin && !t.rst && before == Some(t.seq.wrapping_add(1))
    };
    let frames = || -> Result<Vec<(usize, Tcp, Option<u32>)>> { Ok(walk(&Pcap::read(file)?)) };
    let out: Vec<FrameEvents> = match scenario {
        // Keep-alive and zero-window probes: seq = SND.NXT - 1, no payload;
        // no event, and not data.
        "keepalive" | "zero-window" => frames()?
            .into_iter()
            .filter(|(_, t, b)| probe(t, *b))
            .map(|(f, _, _)| ev(f, &[]))
            .collect(),
        // The retransmitted reply: payload that ends at or below what was sent.
        "retransmit-across-fin" => frames()?
            .into_iter()
            .filter(|(_, t, b)| {
                t.payload > 0 && b.is_some_and(|b| (t.end_seq().wrapping_sub(b) as i32) <= 0)
            })
            .map(|(f, _, _)| ev(f, &[]))
            .collect(),
        "fin-with-data" => frames()?
            .into_iter()
            .filter(|(_, t, _)| t.fin && t.payload > 0)
            .map(|(f, _, _)| ev(f, &["fin-active"]))
            .collect(),
        "tfo" => frames()?
            .into_iter()
            .filter(|(_, t, _)| t.syn && !t.rst && t.payload > 0)
            .map(|(f, _, _)| ev(f, &["syn"]))
            .collect(),
        _ => return Ok(Vec::new()),
    };
    ensure!(
        !out.is_empty(),
        "{scenario}: the frames this case is about are not on the wire"
    );
    Ok(out)
}

/// Decode counters, counted here with etherparse: TCP frames, frames
/// with a verifiable and wrong TCP checksum (veth offload leaves the
/// sender's checksum unfinished), IPv4 fragments.
pub fn decode_counts(file: &Path) -> Result<BTreeMap<String, u64>> {
    let p = Pcap::read(file)?;
    let (mut tcp, mut bad, mut frags) = (0, 0, 0);
    for r in &p.records {
        let Ok(sliced) = etherparse::LaxSlicedPacket::from_ethernet(&r.data) else {
            continue;
        };
        if let Some(etherparse::LaxNetSlice::Ipv4(ip)) = &sliced.net {
            if ip.payload().fragmented {
                frags += 1;
                continue;
            }
        }
        if let Some(TransportSlice::Tcp(_)) = &sliced.transport {
            tcp += 1;
        }
        // Checksums only where the whole frame was captured.
        if let Ok(full) = SlicedPacket::from_ethernet(&r.data) {
            if let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) =
                (&full.net, &full.transport)
            {
                let want = t
                    .calc_checksum_ipv4(ip.header().source(), ip.header().destination())
                    .ok();
                if want.is_some_and(|w| w != t.checksum()) {
                    bad += 1;
                }
            }
        }
    }
    Ok(BTreeMap::from([
        ("bad_checksum".to_string(), bad),
        ("ip_fragments".to_string(), frags),
        ("tcp_segments".to_string(), tcp),
    ]))
}

/// One derived capture: its name, source, and what was done.
struct Derived {
    file: &'static str,
    from: &'static str,
    transformation: &'static str,
    description: &'static str,
}

const DERIVED: &[Derived] = &[
    Derived {
        file: "mid-stream.pcap",
        from: "close-client-first.pcap",
        transformation: "drop the first 3 packets (the handshake)",
        description: "The capture starts after the handshake: no SYN, states start UNKNOWN, the \
                      client is guessed from the ports.",
    },
    Derived {
        file: "one-direction.pcap",
        from: "close-client-first.pcap",
        transformation: "keep only the packets from the client (10.77.0.1:40000)",
        description: "A one-directional capture: only the client's segments. Its FIN shows; \
                      the server's direction never does, so the outcome, the server's close and \
                      who closed first cannot be told.",
    },
    Derived {
        file: "flipped.pcap",
        from: "close-client-first.pcap",
        transformation: "drop the first packet (the SYN), so the server's SYN+ACK comes first",
        description: "Direction flipped: the first packet seen is the server's SYN+ACK; the \
                      client is the SYN+ACK's receiver.",
    },
    Derived {
        file: "out-of-order-fin.pcap",
        from: "half-close-data-after-fin.pcap",
        transformation: "swap the server's 300-byte data segment and its FIN (the FIN, with the \
                         higher sequence number, comes first)",
        description: "Out-of-order segments across the teardown: after the client's \
                      shutdown(SHUT_WR), the server's FIN is seen before the data sent ahead of \
                      it. The data is still new data after the client's FIN, ACKed: half-close.",
    },
    Derived {
        file: "ip-fragments.pcap",
        from: "close-client-first.pcap",
        transformation: "split the IPv4 packet of the client's 100-byte request into two \
                         fragments (40 + 92 bytes of IP payload)",
        description: "IP fragments are skipped (not reassembled) and counted; the rest of the \
                      connection is unaffected.",
    },
    Derived {
        file: "rst-out-of-window.pcap",
        from: "close-client-first.pcap",
        transformation: "insert after the server's reply a bare RST from the server with seq \
                         1,000,000 beyond its next sequence number",
        description:
            "Derived, the RST injected into a recording (not sent by a raw socket): an RST \
                      outside the receiver's window: RFC 5961 has it ignored \
                      (rst-ignored), the connection closes gracefully afterwards.",
    },
    Derived {
        file: "syn-fin.pcap",
        from: "close-client-first.pcap",
        transformation: "insert after the server's reply a SYN+FIN from the client at its next \
                         sequence number",
        description:
            "Derived, the SYN+FIN injected into a recording (not sent by a raw socket): an \
                      odd flag mix on an established connection. A synchronized \
                      receiver drops a SYN (RFC 9293 3.10.7.4, RFC 5961 4.2: challenge ACK), so \
                      its FIN is no teardown; the real close follows.",
    },
    Derived {
        file: "rst-with-data.pcap",
        from: "linger0-after-data.pcap",
        transformation: "append 24 bytes of text (a diagnostic payload, RFC 9293 3.5.3) to the \
                         client's RST+ACK",
        description: "Derived, the payload added to the real RST+ACK after recording: an RST \
                      carrying data, still the abortive RST of SO_LINGER 0; its payload is \
                      no stream data.",
    },
    Derived {
        file: "vlan.pcap",
        from: "close-client-first.pcap",
        transformation: "insert an 802.1Q tag (TPID 0x8100, VLAN 77) in every frame",
        description: "The close-client-first teardown behind an 802.1Q VLAN tag.",
    },
    Derived {
        file: "qinq.pcap",
        from: "close-client-first.pcap",
        transformation: "insert 802.1ad + 802.1Q tags (0x88a8 VLAN 100, 0x8100 VLAN 77) in every \
                         frame",
        description: "The close-client-first teardown behind QinQ tags.",
    },
];

/// (file, source, transformation) of every derived capture.
pub fn derived_list() -> Vec<(&'static str, &'static str, &'static str)> {
    DERIVED
        .iter()
        .map(|d| (d.file, d.from, d.transformation))
        .collect()
}

pub fn derived_files() -> Vec<String> {
    DERIVED.iter().map(|d| d.file.to_string()).collect()
}

fn from_client(t: &Tcp) -> bool {
    t.src.1 == CLIENT_PORT
}

fn from_server(t: &Tcp) -> bool {
    t.src.1 == SERVER_PORT
}

/// Applies a transformation; returns the expected events by frame.
fn transform(d: &Derived, p: &mut Pcap) -> Result<Vec<FrameEvents>> {
    let reply = |p: &Pcap| find(p, |t| from_server(t) && t.payload > 0 && !t.fin);
    Ok(match d.file {
        "mid-stream.pcap" => {
            p.records.drain(..3);
            vec![ev(1, &["mid-stream"])]
        }
        "one-direction.pcap" => {
            p.records
                .retain(|r| derive::tcp(&r.data).is_some_and(|t| from_client(&t)));
            let fin = find(p, |t| t.fin)?;
            // The server's direction is not there: whether it closed
            // first cannot be told, and the FIN claims no order.
            vec![ev(fin + 1, &["fin-order-unknown"])]
        }
        "flipped.pcap" => {
            p.records.remove(0);
            vec![ev(1, &["syn-ack"])]
        }
        "out-of-order-fin.pcap" => {
            let cfin = find(p, |t| from_client(t) && t.fin)?;
            let data = find_from(p, cfin, |t| from_server(t) && t.payload > 0)?;
            let sfin = find(p, |t| from_server(t) && t.fin)?;
            ensure!(data < sfin, "data after the FIN");
            // Swap frames, keeping each position's timestamp.
            let (hd, hf) = (p.records[data].header, p.records[sfin].header);
            p.records.swap(data, sfin);
            p.records[data].header[..8].copy_from_slice(&hd[..8]);
            p.records[sfin].header[..8].copy_from_slice(&hf[..8]);
            // The capture point takes every segment as delivered, so the
            // client (in FIN-WAIT-2) enters TIME-WAIT with the early FIN.
            vec![
                ev(data + 1, &["fin-passive", "time-wait"]),
                ev(sfin + 1, &["data-after-fin"]),
            ]
        }
        "ip-fragments.pcap" => {
            let req = find(p, |t| from_client(t) && t.payload > 0)?;
            fragment(p, req, 40)?;
            Vec::new()
        }
        "rst-out-of-window.pcap" => {
            let i = reply(p)?;
            let t = derive::tcp(&p.records[i].data).context("tcp")?;
            let rst = build(
                &t,
                t.end_seq().wrapping_add(1_000_000),
                0,
                Flags {
                    rst: true,
                    ..Flags::default()
                },
                &[],
            )?;
            let r = record_after(&p.records[i], rst);
            p.records.insert(i + 1, r);
            vec![ev(i + 2, &["rst-ignored"])]
        }
        "syn-fin.pcap" => {
            let i = reply(p)?;
            let c = find(p, |t| from_client(t) && t.payload > 0)?;
            let t = derive::tcp(&p.records[c].data).context("tcp")?;
            let odd = build(
                &t,
                t.end_seq(),
                0,
                Flags {
                    syn: true,
                    fin: true,
                    ..Flags::default()
                },
                &[],
            )?;
            let r = record_after(&p.records[i], odd);
            p.records.insert(i + 1, r);
            let fin = find(p, |t| from_client(t) && t.fin && !t.syn)?;
            vec![ev(i + 2, &[]), ev(fin + 1, &["fin-active"])]
        }
        "rst-with-data.pcap" => {
            let i = find(p, |t| t.rst)?;
            let t = derive::tcp(&p.records[i].data).context("tcp")?;
            let rst = build(
                &t,
                t.seq,
                t.ack,
                Flags {
                    rst: true,
                    ack: true,
                    ..Flags::default()
                },
                b"diagnostic: linger0 RST\n",
            )?;
            let mut r = record_after(&p.records[i], rst);
            r.header[..8].copy_from_slice(&p.records[i].header[..8]);
            p.records[i] = r;
            vec![ev(i + 1, &["rst-abort"])]
        }
        "vlan.pcap" => {
            tag(p, &[(0x8100, 77)]);
            Vec::new()
        }
        "qinq.pcap" => {
            tag(p, &[(0x88a8, 100), (0x8100, 77)]);
            Vec::new()
        }
        other => anyhow::bail!("unknown derived capture {other}"),
    })
}

/// Makes every derived capture from the recordings in `out` and returns
/// their manifest entries (source entries from `entries`).
pub fn derive_all(out: &Path, entries: &[Capture]) -> Result<Vec<Capture>> {
    let mut made = Vec::new();
    for d in DERIVED {
        let source = entries
            .iter()
            .find(|c| c.file == d.from)
            .with_context(|| format!("{} needs {} recorded first", d.file, d.from))?;
        let mut p = Pcap::read(&out.join(d.from))?;
        let expected_events = transform(d, &mut p).with_context(|| d.file)?;
        let path = out.join(d.file);
        p.write(&path)?;
        let (packets, conns) = wire::connections(&path)?;
        ensure!(
            conns.len() == source.connections.len(),
            "{}: connections",
            d.file
        );
        let mut connections = source.connections.clone();
        for (m, w) in connections.iter_mut().zip(&conns) {
            m.client.segments = w.from_client;
            m.server.segments = w.from_server;
        }
        if d.file == "one-direction.pcap" {
            // The server's direction is not in the capture: whether it
            // closed, and before the client or not, cannot be told.
            let c = &mut connections[0];
            c.expected_outcome = Outcome::Unknown;
            c.server.expected_calls = Vec::new();
            c.client.expected_role = Role::Unknown;
            c.server.expected_role = Role::Unknown;
            c.server.expected_closed_by = ClosedBy::Unknown;
        }
        made.push(Capture {
            file: d.file.into(),
            scenario: source.scenario.clone(),
            description: d.description.into(),
            variant: Variant {
                link_type: "ETHERNET".into(),
                ..source.variant.clone()
            },
            packets,
            connections,
            derived_from: Some(d.from.into()),
            transformation: Some(d.transformation.into()),
            expected_events,
            expected_decode: Some(decode_counts(&path)?),
        });
    }
    Ok(made)
}
