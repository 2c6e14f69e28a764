// The engine's and the command line's tests each use part of it.
#![allow(dead_code)]

//! Wraps a real-kernel recording in a tunnel, frame by frame: the
//! documented, deterministic rewrite behind the tunnel tests (the test
//! kernel has no VXLAN, Geneve, GRE, ERSPAN, Teredo or GTP-U to record
//! them through).
//!
//! Every frame of the recording becomes one Ethernet frame that carries
//! it, same frame number, same timestamp, nothing else changed: the inner
//! packet's bytes stay as recorded. Encapsulations that carry Ethernet
//! (VXLAN, Geneve with protocol 0x6558, ERSPAN, GRE bridging) carry the
//! recorded Ethernet frame (a Linux SLL2 recording gets the Ethernet
//! header its protocol names, with fixed addresses); the others carry the
//! IP packet (VLAN tags dropped). Outer addresses are fixed:
//! `192.0.2.1`/`192.0.2.2` or `2001:db8::1`/`2001:db8::2`, the first
//! frame's inner sender behind the first, so each direction's outer
//! packets go the other way, as real tunnel endpoints send them, over one
//! outer UDP connection (the tunnel's port on one side, 50001 on the
//! other). A frame
//! the snaplen cut keeps its cut: each outer length field counts the
//! bytes the recording lost, as a capture of the tunnel would.

use std::net::IpAddr;

use etherparse::{ip_number, IpNumber, Ipv4Header, Ipv6Header};
use tcpshut_engine::{CaptureReader, Frame};

/// LINKTYPE_ETHERNET and LINKTYPE_LINUX_SLL2, the recordings' link types.
const ETHERNET: u32 = 1;
const LINUX_SLL2: u32 = 276;

/// One way to wrap a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// VXLAN on UDP 4789, VNI as given (both directions).
    Vxlan(u32),
    /// Geneve on UDP 6081 carrying Ethernet, with one 8-byte option.
    GeneveEthernet,
    /// Geneve carrying the IP packet (protocol 0x0800/0x86dd), as GCP's
    /// packet mirroring sends it, with one option.
    GeneveIp,
    /// GRE with key 0x2a and a sequence number, carrying IP.
    Gre,
    /// GRE (with checksum field) bridging Ethernet (0x6558).
    GreBridged,
    /// ERSPAN type II (GRE 0x88be with sequence), session 5.
    ErspanII,
    /// ERSPAN type III (GRE 0x22eb), session 6, with the platform subheader.
    ErspanIII,
    /// IP in outer IPv4: IP-in-IP for IPv4, 6in4 for IPv6.
    InIpv4,
    /// IP in outer IPv6: 4in6 or 6in6.
    InIpv6,
    /// Teredo on UDP 3544 (an origin indication before each packet from
    /// the server side); an IPv4 recording rides 4in6 inside it.
    Teredo,
    /// GTP-U on UDP 2152, each direction its own TEID (0x1001 forward,
    /// 0x2002 back), the second with a sequence number and a PDU session
    /// extension header.
    GtpU,
    /// As `GtpU`, with these TEIDs forward and back: another user's
    /// bearer between the same tunnel endpoints.
    GtpUTeids(u32, u32),
    /// VXLAN (VNI 9) inside GRE with key 7: nested tunnels.
    VxlanInGre,
    /// VXLAN (VNI 77) on another UDP port, as `--vxlan-port` finds it.
    VxlanOnPort(u16),
}

impl Encap {
    pub const ALL: [Encap; 12] = [
        Encap::Vxlan(77),
        Encap::GeneveEthernet,
        Encap::GeneveIp,
        Encap::Gre,
        Encap::GreBridged,
        Encap::ErspanII,
        Encap::ErspanIII,
        Encap::InIpv4,
        Encap::InIpv6,
        Encap::Teredo,
        Encap::GtpU,
        Encap::VxlanInGre,
    ];
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// What one recorded frame holds: its ether type (after any VLAN tags),
/// the Ethernet frame (recorded or made), and the IP packet.
struct Inner {
    ether_type: u16,
    ethernet: Vec<u8>,
    ip_at: usize,
}

impl Inner {
    fn of(frame: &Frame<'_>) -> Inner {
        let data = frame.data;
        match frame.link.0 {
            ETHERNET => {
                let mut at = 12;
                let mut ether_type = be16(&data[at..]);
                while ether_type == 0x8100 || ether_type == 0x88a8 {
                    at += 4;
                    ether_type = be16(&data[at..]);
                }
                Inner {
                    ether_type,
                    ethernet: data.to_vec(),
                    ip_at: at + 2,
                }
            }
            LINUX_SLL2 => {
                let ether_type = be16(data);
                let mut ethernet = ethernet_header(ether_type);
                ethernet.extend_from_slice(&data[20..]);
                Inner {
                    ether_type,
                    ethernet,
                    ip_at: 14,
                }
            }
            other => panic!("recordings are Ethernet or SLL2, not {other:?}"),
        }
    }

    fn ip(&self) -> &[u8] {
        &self.ethernet[self.ip_at..]
    }

    fn is_ipv6(&self) -> bool {
        self.ether_type == 0x86dd
    }

    /// The inner sender's address, to tell the directions apart.
    fn source(&self) -> Vec<u8> {
        let ip = self.ip();
        if self.is_ipv6() {
            ip[8..24].to_vec()
        } else {
            ip[12..16].to_vec()
        }
    }
}

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn ethernet_header(ether_type: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(1514);
    out.extend_from_slice(&MAC_B);
    out.extend_from_slice(&MAC_A);
    out.extend_from_slice(&ether_type.to_be_bytes());
    out
}

fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = ethernet_header(ether_type);
    out.extend_from_slice(payload);
    out
}

/// The outer endpoints, `forward` from the first frame's sender.
fn ends(v6: bool, forward: bool) -> (IpAddr, IpAddr) {
    let (a, b): (IpAddr, IpAddr) = if v6 {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
    };
    if forward {
        (a, b)
    } else {
        (b, a)
    }
}

/// An IP header and `payload`; its length counts `lost` more bytes.
fn ip(ends: (IpAddr, IpAddr), protocol: IpNumber, payload: &[u8], lost: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 40);
    let len = payload.len() + lost;
    match ends {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut header =
                Ipv4Header::new(len as u16, 64, protocol, src.octets(), dst.octets()).unwrap();
            header.header_checksum = header.calc_header_checksum();
            header.write(&mut out).unwrap();
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: len as u16,
            next_header: protocol,
            hop_limit: 64,
            source: src.octets(),
            destination: dst.octets(),
        }
        .write(&mut out)
        .unwrap(),
        _ => unreachable!("both ends are of one version"),
    }
    out.extend_from_slice(payload);
    out
}

/// A UDP header (checksum 0: unset, as tunnel endpoints may send) and
/// `payload`; its length counts `lost` more bytes.
fn udp(src: u16, dst: u16, payload: &[u8], lost: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&src.to_be_bytes());
    out.extend_from_slice(&dst.to_be_bytes());
    out.extend_from_slice(&((payload.len() + lost + 8) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    out
}

/// A UDP tunnel packet in an outer IPv4 Ethernet frame.
fn over_udp(forward: bool, port: u16, header: &[u8], inner: &[u8], lost: usize) -> Vec<u8> {
    // One outer UDP connection, as a mirror session or a GTP-U path is
    // (Zeek's model counts a change of outer connection: tunnels.rs).
    let (src, dst) = if forward {
        (50_001, port)
    } else {
        (port, 50_001)
    };
    let mut payload = header.to_vec();
    payload.extend_from_slice(inner);
    let datagram = udp(src, dst, &payload, lost);
    let packet = ip(ends(false, forward), ip_number::UDP, &datagram, lost);
    ethernet(0x0800, &packet)
}

fn gre_header(flags: u16, protocol: u16, fields: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&protocol.to_be_bytes());
    for field in fields {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out
}

/// A GRE packet in an outer IPv4 Ethernet frame.
fn over_gre(forward: bool, header: &[u8], inner: &[u8], lost: usize) -> Vec<u8> {
    let mut payload = header.to_vec();
    payload.extend_from_slice(inner);
    ethernet(
        0x0800,
        &ip(ends(false, forward), ip_number::GRE, &payload, lost),
    )
}

fn vxlan_header(vni: u32) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0];
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    out
}

/// Geneve with one 8-byte option (GCP puts its own TLVs there).
fn geneve_header(protocol: u16, vni: u32) -> Vec<u8> {
    let mut out = vec![0x02, 0x00];
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    // Option class 0x0103 (Google), type 0x80, length 1 word.
    out.extend_from_slice(&[0x01, 0x03, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    out
}

/// The ip number an IP packet of `inner_v6` has inside another.
fn ip_in_ip(inner_v6: bool) -> IpNumber {
    if inner_v6 {
        ip_number::IPV6
    } else {
        ip_number::IPV4
    }
}

fn wrap_frame(encap: Encap, inner: &Inner, forward: bool, lost: usize) -> Vec<u8> {
    let eth = inner.ethernet.as_slice();
    let ip_packet = inner.ip();
    let v6 = inner.is_ipv6();
    match encap {
        Encap::Vxlan(vni) => over_udp(forward, 4789, &vxlan_header(vni), eth, lost),
        Encap::VxlanOnPort(port) => over_udp(forward, port, &vxlan_header(77), eth, lost),
        Encap::GeneveEthernet => over_udp(forward, 6081, &geneve_header(0x6558, 0x1234), eth, lost),
        Encap::GeneveIp => over_udp(
            forward,
            6081,
            &geneve_header(inner.ether_type, 0x1234),
            ip_packet,
            lost,
        ),
        Encap::Gre => over_gre(
            forward,
            &gre_header(0x3000, inner.ether_type, &[0x2a, 1]),
            ip_packet,
            lost,
        ),
        Encap::GreBridged => over_gre(forward, &gre_header(0x8000, 0x6558, &[0]), eth, lost),
        Encap::ErspanII => {
            let mut header = gre_header(0x1000, 0x88be, &[1]);
            // Version 1, VLAN 0; COS 0, encapsulation 0, T 0, session 5;
            // reserved, index 0.
            header.extend_from_slice(&[0x10, 0x00, 0x00, 0x05, 0, 0, 0, 0]);
            over_gre(forward, &header, eth, lost)
        }
        Encap::ErspanIII => {
            let mut header = gre_header(0x1000, 0x22eb, &[1]);
            // Version 2, VLAN 0; session 6; timestamp; SGT; P/FT 0 (Ethernet),
            // hardware id, D, Gra, O = 1 (platform subheader follows).
            header.extend_from_slice(&[0x20, 0x00, 0x00, 0x06]);
            header.extend_from_slice(&[0x00, 0x01, 0x02, 0x03]);
            header.extend_from_slice(&[0x00, 0x00, 0x00, 0x01]);
            header.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0]);
            over_gre(forward, &header, eth, lost)
        }
        Encap::InIpv4 => ethernet(
            0x0800,
            &ip(ends(false, forward), ip_in_ip(v6), ip_packet, lost),
        ),
        Encap::InIpv6 => ethernet(
            0x86dd,
            &ip(ends(true, forward), ip_in_ip(v6), ip_packet, lost),
        ),
        Encap::Teredo => {
            // IPv4 rides 4in6 between a Teredo client address and a relay.
            let teredo_ends: (IpAddr, IpAddr) = (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2".parse().unwrap(),
                "2001:db8:1::1".parse().unwrap(),
            );
            let ipv6 = if v6 {
                ip_packet.to_vec()
            } else {
                let (a, b) = teredo_ends;
                let ends = if forward { (a, b) } else { (b, a) };
                ip(ends, ip_number::IPV4, ip_packet, lost)
            };
            // The relay's side sends an origin indication first.
            let header: &[u8] = if forward {
                &[]
            } else {
                &[0x00, 0x00, 0xf2, 0x27, 0x3f, 0x57, 0xfd, 0xfe]
            };
            over_udp(forward, 3544, header, &ipv6, lost)
        }
        Encap::GtpU | Encap::GtpUTeids(..) => {
            let (teid_forward, teid_back) = match encap {
                Encap::GtpUTeids(forward, back) => (forward, back),
                _ => (0x1001, 0x2002),
            };
            let mut header = Vec::new();
            if forward {
                // Version 1, PT; G-PDU; length; TEID.
                header.extend_from_slice(&[0x30, 0xff]);
                header.extend_from_slice(&((ip_packet.len() + lost) as u16).to_be_bytes());
                header.extend_from_slice(&teid_forward.to_be_bytes());
            } else {
                // E and S set: sequence number, N-PDU, next type 0x85
                // (PDU session container: 1 word, then no more).
                header.extend_from_slice(&[0x36, 0xff]);
                header.extend_from_slice(&((ip_packet.len() + lost + 8) as u16).to_be_bytes());
                header.extend_from_slice(&teid_back.to_be_bytes());
                header.extend_from_slice(&[0x00, 0x01, 0x00, 0x85, 0x01, 0x00, 0x01, 0x00]);
            }
            over_udp(forward, 2152, &header, ip_packet, lost)
        }
        Encap::VxlanInGre => {
            let vxlan = wrap_frame(Encap::Vxlan(9), inner, forward, lost);
            // The inner VTEPs' frame, minus its Ethernet header, in GRE.
            let gre = gre_header(0x2000, 0x0800, &[7]);
            let mut payload = gre;
            payload.extend_from_slice(&vxlan[14..]);
            let ends: (IpAddr, IpAddr) = if forward {
                (
                    "198.51.100.1".parse().unwrap(),
                    "198.51.100.2".parse().unwrap(),
                )
            } else {
                (
                    "198.51.100.2".parse().unwrap(),
                    "198.51.100.1".parse().unwrap(),
                )
            };
            ethernet(0x0800, &ip(ends, ip_number::GRE, &payload, lost))
        }
    }
}

/// The recording at `path` wrapped in `encap`, as a nanosecond pcap in
/// memory (Ethernet link type).
pub fn wrap_capture(path: &std::path::Path, encap: Encap) -> Vec<u8> {
    let mut reader = CaptureReader::open(path).expect("recording opens");
    let mut out = Vec::new();
    // Nanosecond pcap: magic, version 2.4, zone, sigfigs, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut first_source = None;
    while let Some(frame) = reader.next_frame().expect("recording reads") {
        let inner = Inner::of(&frame);
        let source = inner.source();
        let forward = *first_source.get_or_insert_with(|| source.clone()) == source;
        let lost = (frame.orig_len as usize).saturating_sub(frame.data.len());
        let wrapped = wrap_frame(encap, &inner, forward, lost);
        let orig_len = wrapped.len() + lost;
        out.extend_from_slice(&(frame.ts.secs as u32).to_le_bytes());
        out.extend_from_slice(&frame.ts.nanos.to_le_bytes());
        out.extend_from_slice(&(wrapped.len() as u32).to_le_bytes());
        out.extend_from_slice(&(orig_len as u32).to_le_bytes());
        out.extend_from_slice(&wrapped);
    }
    out
}
