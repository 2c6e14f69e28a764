//! Link and encapsulation headers etherparse does not slice. Each function
//! steps over one header and names the ether type of what follows, so that
//! etherparse can carry on from there.

use etherparse::EtherType;

pub(super) const MPLS_UNICAST: EtherType = EtherType(0x8847);
pub(super) const MPLS_MULTICAST: EtherType = EtherType(0x8848);
pub(super) const PPPOE_SESSION: EtherType = EtherType(0x8864);
pub(super) const CISCO_FABRICPATH: EtherType = EtherType(0x8903);

/// What follows a header: its ether type and its bytes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Encapsulated<'a> {
    pub ether_type: EtherType,
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EncapError {
    /// The frame ends inside the header.
    Truncated,
    /// The header says something other than IP follows.
    NotIp,
}

use EncapError::{NotIp, Truncated};

fn split(data: &[u8], at: usize) -> Result<(&[u8], &[u8]), EncapError> {
    data.split_at_checked(at).ok_or(Truncated)
}

fn be_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn le_u16(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

fn encapsulated(ether_type: EtherType, payload: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    Ok(Encapsulated {
        ether_type,
        payload,
    })
}

/// Socket address families: AF_INET is 2 everywhere, AF_INET6 differs
/// (Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30).
fn address_family(family: u32) -> Result<EtherType, EncapError> {
    match family {
        2 => Ok(EtherType::IPV4),
        10 | 24 | 28 | 30 => Ok(EtherType::IPV6),
        _ => Err(NotIp),
    }
}

/// IP by the version nibble, for headers that don't say what follows.
fn ip_by_version(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    let ether_type = match data.first().map(|byte| byte >> 4) {
        Some(4) => EtherType::IPV4,
        Some(6) => EtherType::IPV6,
        Some(_) => return Err(NotIp),
        None => return Err(Truncated),
    };
    encapsulated(ether_type, data)
}

/// BSD loopback (NULL, LOOP): a 4-byte address family. NULL writes it in
/// the capturing host's byte order, so either order is accepted: families
/// are small, so the order giving a value below 2^16 is the right one.
pub(super) fn loopback(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    let (family, payload) = split(data, 4)?;
    let family = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
    let family = if family > 0xffff {
        family.swap_bytes()
    } else {
        family
    };
    encapsulated(address_family(family)?, payload)
}

/// Linux cooked capture v1: 16 bytes, protocol last.
pub(super) fn linux_sll(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    cooked(data, 16, 14)
}

/// Linux cooked capture v2: 20 bytes, protocol first.
pub(super) fn linux_sll2(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    cooked(data, 20, 0)
}

/// Linux's packet type of an outgoing packet (`PACKET_OUTGOING`).
const PACKET_OUTGOING: u16 = 4;

/// Whether a cooked capture's frame left the capturing host (`Some(true)`)
/// or came into it (`Some(false)`: to it, broadcast, multicast, or to
/// another host); `None` for other links, which do not say. On a router's
/// `-i any` capture, a forwarded packet is seen coming in, then going out.
pub(super) fn cooked_outgoing(sll2: bool, data: &[u8]) -> Option<bool> {
    // SLL: the packet type is the first field (2 bytes); SLL2: one byte at 10.
    let packet_type = if sll2 {
        u16::from(*data.get(10)?)
    } else {
        be_u16(data.get(..2)?)
    };
    Some(packet_type == PACKET_OUTGOING)
}

/// Both cooked headers carry an ether type, except that values below
/// 0x0600 are Linux-internal protocol numbers (802.2, CAN, netlink, …).
/// Hand-parsed because etherparse's SLL slice rejects packet types and
/// hardware types it doesn't know, which loses valid IP frames.
fn cooked(
    data: &[u8],
    header_len: usize,
    protocol_at: usize,
) -> Result<Encapsulated<'_>, EncapError> {
    let (header, payload) = split(data, header_len)?;
    let protocol = be_u16(&header[protocol_at..]);
    if protocol < 0x0600 {
        return Err(NotIp);
    }
    encapsulated(EtherType(protocol), payload)
}

/// NFLOG TLV type of the packet payload (NFULA_PAYLOAD).
const NFULA_PAYLOAD: u16 = 9;

/// NFLOG: family, version, resource id, then netlink TLVs whose length and
/// type are in the capturing host's byte order (little-endian assumed, as
/// on every common host). The packet is the payload TLV.
pub(super) fn nflog(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    let (header, mut tlvs) = split(data, 4)?;
    let ether_type = address_family(u32::from(header[0]))?;
    while !tlvs.is_empty() {
        let (tlv_header, _) = split(tlvs, 4)?;
        let len = usize::from(le_u16(tlv_header));
        // The top bits of the type are netlink flags (nested, byte order).
        let kind = le_u16(&tlv_header[2..]) & 0x3fff;
        if len < 4 {
            return Err(NotIp);
        }
        if kind == NFULA_PAYLOAD {
            // A snaplen cut leaves the payload TLV short; keep what's there.
            return encapsulated(ether_type, &tlvs[4..len.min(tlvs.len())]);
        }
        let padded = (len + 3) & !3;
        tlvs = tlvs.get(padded..).ok_or(Truncated)?;
    }
    Err(NotIp)
}

/// MPLS: 4-byte label entries up to the bottom-of-stack bit, then IP
/// recognised by its version nibble (MPLS doesn't say what it carries).
pub(super) fn mpls(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    let mut rest = data;
    loop {
        let (entry, after) = split(rest, 4)?;
        rest = after;
        if entry[2] & 0x01 != 0 {
            return ip_by_version(rest);
        }
    }
}

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// PPPoE session: 6-byte PPPoE header, then the 2-byte PPP protocol.
pub(super) fn pppoe_session(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    let (header, payload) = split(data, 8)?;
    let ether_type = match be_u16(&header[6..]) {
        PPP_IPV4 => EtherType::IPV4,
        PPP_IPV6 => EtherType::IPV6,
        _ => return Err(NotIp),
    };
    encapsulated(ether_type, payload)
}

/// Cisco FabricPath: after the outer ether type come the 2-byte FTag/TTL
/// and the inner Ethernet header (12 bytes of addresses, then its type).
pub(super) fn fabricpath(data: &[u8]) -> Result<Encapsulated<'_>, EncapError> {
    let (header, payload) = split(data, 16)?;
    encapsulated(EtherType(be_u16(&header[14..])), payload)
}
