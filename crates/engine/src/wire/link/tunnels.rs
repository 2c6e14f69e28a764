//! Tunnel headers: what an IP packet that is not TCP may carry inside.
//! VXLAN, Geneve, Teredo and GTP-U by their UDP ports (configurable:
//! [`TunnelPorts`]; Teredo also by its shape, as relays use any port),
//! GRE (key, sequence, ERSPAN types I, II and III) and IP-in-IP, 6in4,
//! 4in6 and 6in6 by the IP protocol number. None of these has an
//! etherparse slice; each function steps over one header, zero-copy, and
//! says what follows (an Ethernet frame, an IP packet, or an ether type).

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use etherparse::{ip_number, EtherType, IpNumber};

use super::headers::Encapsulated;
use crate::wire::tunnel::{TunnelKind, TunnelLayer};

/// UDP ports each tunnel is recognised on, when either port of a datagram
/// is one of them (a VXLAN sender picks its source port for entropy; a
/// GTP-U peer may send from another port than 2152).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelPorts {
    pub vxlan: Vec<u16>,
    pub geneve: Vec<u16>,
    pub teredo: Vec<u16>,
    pub gtp: Vec<u16>,
}

/// The IANA ports.
impl Default for TunnelPorts {
    fn default() -> Self {
        TunnelPorts {
            vxlan: vec![4789],
            geneve: vec![6081],
            teredo: vec![3544],
            gtp: vec![2152],
        }
    }
}

/// Upper bound on the ports of one kind (resources stay bounded whatever
/// the arguments).
pub const MAX_PORTS_PER_TUNNEL: usize = 64;

static PORTS: OnceLock<TunnelPorts> = OnceLock::new();

/// Sets the ports for this process, once, before the first capture is
/// read (the `tcpshut` command line does); `Err` with the ports in force
/// if they were already set or used, or a kind lists too many ports.
pub fn set_tunnel_ports(ports: TunnelPorts) -> Result<(), String> {
    for (name, list) in [
        ("vxlan", &ports.vxlan),
        ("geneve", &ports.geneve),
        ("teredo", &ports.teredo),
        ("gtp", &ports.gtp),
    ] {
        if list.len() > MAX_PORTS_PER_TUNNEL {
            return Err(format!(
                "{} {name} ports given, at most {MAX_PORTS_PER_TUNNEL}",
                list.len()
            ));
        }
    }
    PORTS
        .set(ports)
        .map_err(|_| format!("tunnel ports already in use: {:?}", tunnel_ports()))
}

/// The ports in force (the IANA ones unless [`set_tunnel_ports`] said).
pub fn tunnel_ports() -> &'static TunnelPorts {
    PORTS.get_or_init(TunnelPorts::default)
}

/// Why a tunnel header yields nothing, with the numbers that say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelError {
    /// The frame ends inside the header: it needs `needed` bytes, the
    /// frame has `available`.
    Truncated {
        kind: TunnelKind,
        needed: usize,
        available: usize,
    },
    /// A version this decoder does not know.
    Version { kind: TunnelKind, version: u8 },
    /// The header carries something other than a frame or packet (a
    /// GTP-U signalling message, a Geneve payload type not Ethernet or IP).
    Payload { kind: TunnelKind, value: u16 },
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Truncated {
                kind,
                needed,
                available,
            } => write!(
                f,
                "{kind} header cut: needs {needed} bytes, has {available}"
            ),
            TunnelError::Version { kind, version } => write!(f, "{kind} version {version}"),
            TunnelError::Payload { kind, value } => write!(f, "{kind} carries {value:#06x}"),
        }
    }
}

/// What a tunnel header says follows it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inner<'a> {
    /// An Ethernet frame (VXLAN, Geneve and GRE bridging, ERSPAN).
    Ethernet(&'a [u8]),
    /// An IP packet, its version in its first nibble.
    Ip(&'a [u8]),
    /// What an ether type names (GRE, Geneve): IP, MPLS, VLAN, …
    EtherType(Encapsulated<'a>),
}

/// The tunnel inside an IP packet's payload, if it is one: its layer and
/// what it carries. `outer` are the packet's addresses.
pub(super) fn decapsulate<'a>(
    ip_number: IpNumber,
    payload: &'a [u8],
    outer: (IpAddr, IpAddr),
    ports: &TunnelPorts,
) -> Result<Option<(TunnelLayer, Inner<'a>)>, TunnelError> {
    let (kind, id, inner) = match ip_number {
        ip_number::IPV4 | ip_number::IPV6 => {
            let kind = match (outer.0.is_ipv6(), ip_number == ip_number::IPV6) {
                (false, false) => TunnelKind::IpInIp,
                (false, true) => TunnelKind::SixInFour,
                (true, false) => TunnelKind::FourInSix,
                (true, true) => TunnelKind::SixInSix,
            };
            (kind, None, Inner::Ip(payload))
        }
        ip_number::GRE => gre(payload)?,
        ip_number::UDP => {
            return Ok(udp(payload, ports)?.map(|((kind, id, inner), (src, dst))| {
                // GTP-U's TEID is the receiver's, not the tunnel's (`teids`).
                let (id, teid) = match kind {
                    TunnelKind::GtpU => (None, id),
                    _ => (id, None),
                };
                let mut layer = TunnelLayer::over_udp(kind, id, (outer.0, src), (outer.1, dst));
                if let Some(teid) = teid {
                    layer = layer.with_teid_to((outer.1, dst), teid);
                }
                (layer, inner)
            }));
        }
        _ => return Ok(None),
    };
    Ok(Some((TunnelLayer::new(kind, id, outer.0, outer.1), inner)))
}

fn be_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The first `len` bytes and the rest, or `Truncated`.
fn header(kind: TunnelKind, data: &[u8], len: usize) -> Result<(&[u8], &[u8]), TunnelError> {
    data.split_at_checked(len).ok_or(TunnelError::Truncated {
        kind,
        needed: len,
        available: data.len(),
    })
}

/// What a tunnel header found: its kind, identifier and what it carries.
type Found<'a> = (TunnelKind, Option<u32>, Inner<'a>);

/// A datagram's source and destination ports.
type UdpPorts = (u16, u16);

/// A UDP datagram's tunnel, by its ports (Teredo also by its shape), and
/// its source and destination ports.
fn udp<'a>(
    datagram: &'a [u8],
    ports: &TunnelPorts,
) -> Result<Option<(Found<'a>, UdpPorts)>, TunnelError> {
    // A UDP header cut short is the caller's to count (not a tunnel yet).
    let Some((udp, payload)) = datagram.split_at_checked(8) else {
        return Ok(None);
    };
    let (src, dst) = (be_u16(udp), be_u16(&udp[2..]));
    let on = |list: &[u16]| list.contains(&dst) || list.contains(&src);
    let found = if on(&ports.vxlan) {
        let (vni, inner) = vxlan(payload)?;
        (TunnelKind::Vxlan, Some(vni), inner)
    } else if on(&ports.geneve) {
        let (vni, inner) = geneve(payload)?;
        (TunnelKind::Geneve, Some(vni), inner)
    } else if on(&ports.gtp) {
        let (teid, inner) = gtp_u(payload)?;
        (TunnelKind::GtpU, Some(teid), inner)
    } else if on(&ports.teredo) || teredo_by_shape(payload) {
        (TunnelKind::Teredo, None, teredo(payload)?)
    } else {
        return Ok(None);
    };
    Ok(Some((found, (src, dst))))
}

/// VXLAN (RFC 7348): flags (the I bit says the VNI is valid), 3 reserved
/// bytes, the 24-bit VNI, a reserved byte; then an Ethernet frame. A
/// header without the I bit is taken laxly, its VNI as written.
fn vxlan(data: &[u8]) -> Result<(u32, Inner<'_>), TunnelError> {
    let (header, frame) = header(TunnelKind::Vxlan, data, 8)?;
    Ok((be_u32(&header[4..]) >> 8, Inner::Ethernet(frame)))
}

/// Ether type of an Ethernet frame carried as such (Transparent Ethernet
/// Bridging: Geneve, GRE).
const TRANSPARENT_ETHERNET: u16 = 0x6558;

/// Geneve (RFC 8926): version (0) and options length (in 4-byte words),
/// flags, protocol type, 24-bit VNI; options skipped. The protocol is
/// Ethernet (0x6558), or, as GCP's packet mirroring sends it, IPv4 or
/// IPv6 straight away (or anything an ether type names).
fn geneve(data: &[u8]) -> Result<(u32, Inner<'_>), TunnelError> {
    let kind = TunnelKind::Geneve;
    let (fixed, _) = header(kind, data, 8)?;
    let version = fixed[0] >> 6;
    if version != 0 {
        return Err(TunnelError::Version { kind, version });
    }
    let options = usize::from(fixed[0] & 0x3f) * 4;
    let (_, payload) = header(kind, data, 8 + options)?;
    let vni = be_u32(&fixed[4..]) >> 8;
    Ok((vni, by_ether_type(be_u16(&fixed[2..]), payload)))
}

/// What an ether type in a tunnel header names.
fn by_ether_type(ether_type: u16, payload: &[u8]) -> Inner<'_> {
    match ether_type {
        TRANSPARENT_ETHERNET => Inner::Ethernet(payload),
        _ => Inner::EtherType(Encapsulated {
            ether_type: EtherType(ether_type),
            payload,
        }),
    }
}

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
/// ERSPAN type I and II ride GRE protocol 0x88be (type I without the
/// sequence number), type III 0x22eb.
const ERSPAN_II: u16 = 0x88be;
const ERSPAN_III: u16 = 0x22eb;

/// GRE (RFC 2784, with RFC 2890's key and sequence number and RFC 1701's
/// routing entries): flags and version 0, protocol type, then the
/// optional fields the flags announce. ERSPAN's header follows when the
/// protocol says so, and then becomes the layer (its session ID as id).
fn gre(data: &[u8]) -> Result<Found<'_>, TunnelError> {
    let kind = TunnelKind::Gre;
    let (fixed, mut rest) = header(kind, data, 4)?;
    let flags = be_u16(fixed);
    let version = (flags & 0x7) as u8;
    if version != 0 {
        // 1 is PPTP's enhanced GRE, which carries PPP.
        return Err(TunnelError::Version { kind, version });
    }
    let protocol = be_u16(&fixed[2..]);
    if flags & (GRE_CHECKSUM | GRE_ROUTING) != 0 {
        rest = header(kind, rest, 4)?.1;
    }
    let mut key = None;
    if flags & GRE_KEY != 0 {
        let (field, after) = header(kind, rest, 4)?;
        key = Some(be_u32(field));
        rest = after;
    }
    let sequenced = flags & GRE_SEQUENCE != 0;
    if sequenced {
        rest = header(kind, rest, 4)?.1;
    }
    if flags & GRE_ROUTING != 0 {
        rest = gre_routing(rest)?;
    }
    Ok(match protocol {
        ERSPAN_II if !sequenced => (TunnelKind::ErspanII, None, Inner::Ethernet(rest)),
        ERSPAN_II | ERSPAN_III => erspan(rest)?,
        _ => (kind, key, by_ether_type(protocol, rest)),
    })
}

/// RFC 1701 source route entries: address family, offset, length, then
/// `length` bytes, until the null entry (family 0, length 0).
fn gre_routing(mut data: &[u8]) -> Result<&[u8], TunnelError> {
    loop {
        let (entry, after) = header(TunnelKind::Gre, data, 4)?;
        let len = usize::from(entry[3]);
        if be_u16(entry) == 0 && len == 0 {
            return Ok(after);
        }
        data = header(TunnelKind::Gre, after, len)?.1;
    }
}

/// ERSPAN type II (version 1: 8 bytes) or III (version 2: 12 bytes, and
/// an 8-byte platform subheader when its O bit is set); the session ID is
/// the low 10 bits of the second half-word. Type III's frame type 2 says
/// an IP packet follows, not an Ethernet frame.
fn erspan(data: &[u8]) -> Result<Found<'_>, TunnelError> {
    let (first, _) = header(TunnelKind::ErspanII, data, 4)?;
    let session = Some(u32::from(be_u16(&first[2..]) & 0x03ff));
    match first[0] >> 4 {
        1 => {
            let (_, frame) = header(TunnelKind::ErspanII, data, 8)?;
            Ok((TunnelKind::ErspanII, session, Inner::Ethernet(frame)))
        }
        2 => {
            let kind = TunnelKind::ErspanIII;
            let (fixed, after) = header(kind, data, 12)?;
            let platform = fixed[11] & 0x01 != 0;
            let payload = if platform {
                header(kind, after, 8)?.1
            } else {
                after
            };
            let frame_type = (fixed[10] >> 2) & 0x1f;
            let inner = match frame_type {
                0 => Inner::Ethernet(payload),
                2 => Inner::Ip(payload),
                other => {
                    return Err(TunnelError::Payload {
                        kind,
                        value: u16::from(other),
                    })
                }
            };
            Ok((kind, session, inner))
        }
        version => Err(TunnelError::Version {
            kind: TunnelKind::ErspanII,
            version,
        }),
    }
}

/// GTP-U message type of a user packet (G-PDU); the others (echo, error
/// indication, end marker) carry none.
const GTP_G_PDU: u8 = 0xff;

/// GTP-U (3GPP TS 29.281 5): version 1 with the protocol type bit, the
/// message type, length and TEID; 4 more bytes when a sequence number,
/// N-PDU number or extension header is flagged; extension headers (each
/// its length in 4-byte words first, the next type last); then the
/// user's IP packet. Returns the TEID (its receiver's) and the packet.
fn gtp_u(data: &[u8]) -> Result<(u32, Inner<'_>), TunnelError> {
    let kind = TunnelKind::GtpU;
    let (fixed, mut rest) = header(kind, data, 8)?;
    let version = fixed[0] >> 5;
    if version != 1 || fixed[0] & 0x10 == 0 {
        return Err(TunnelError::Version { kind, version });
    }
    if fixed[1] != GTP_G_PDU {
        return Err(TunnelError::Payload {
            kind,
            value: u16::from(fixed[1]),
        });
    }
    if fixed[0] & 0x07 != 0 {
        let (optional, after) = header(kind, rest, 4)?;
        rest = after;
        let mut next = optional[3];
        while next != 0 {
            let words = usize::from(*rest.first().ok_or(TunnelError::Truncated {
                kind,
                needed: 1,
                available: 0,
            })?);
            if words == 0 {
                return Err(TunnelError::Payload {
                    kind,
                    value: u16::from(next),
                });
            }
            let (extension, after) = header(kind, rest, words * 4)?;
            next = extension[words * 4 - 1];
            rest = after;
        }
    }
    Ok((be_u32(&fixed[4..]), Inner::Ip(rest)))
}

/// Teredo's optional headers before the IPv6 packet (RFC 4380 5.1.1):
/// authentication (type 1: client id and value lengths, the two, an
/// 8-byte nonce, a confirmation byte) and origin indication (type 0:
/// 8 bytes).
fn teredo(data: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let kind = TunnelKind::Teredo;
    let mut rest = data;
    if rest.starts_with(&[0x00, 0x01]) {
        let (lengths, _) = header(kind, rest, 4)?;
        let len = 4 + usize::from(lengths[2]) + usize::from(lengths[3]) + 9;
        rest = header(kind, rest, len)?.1;
    }
    if rest.starts_with(&[0x00, 0x00]) {
        rest = header(kind, rest, 8)?.1;
    }
    match rest.first() {
        Some(byte) if byte >> 4 == 6 => Ok(Inner::Ip(rest)),
        Some(byte) => Err(TunnelError::Version {
            kind,
            version: byte >> 4,
        }),
        None => Err(TunnelError::Truncated {
            kind,
            needed: 40,
            available: 0,
        }),
    }
}

/// A datagram on another port is taken for Teredo (relays talk to
/// clients from any port, as Zeek's detection allows) only when it holds
/// exactly one IPv6 packet carrying TCP with an address in the Teredo
/// prefix 2001::/32, after Teredo's optional headers: a shape other UDP
/// payloads do not take by chance.
fn teredo_by_shape(data: &[u8]) -> bool {
    let Ok(Inner::Ip(ipv6)) = teredo(data) else {
        return false;
    };
    let Some(header) = ipv6.get(..40) else {
        return false;
    };
    let teredo_prefix = |at: usize| header[at..at + 4] == [0x20, 0x01, 0x00, 0x00];
    usize::from(be_u16(&header[4..])) + 40 == ipv6.len()
        && header[6] == ip_number::TCP.0
        && (teredo_prefix(8) || teredo_prefix(24))
}
