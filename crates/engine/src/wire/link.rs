//! Link decoding: from a [`Frame`] to a TCP [`Segment`], through Ethernet
//! (802.1Q/QinQ, MPLS, PPPoE, Cisco FabricPath), Linux SLL/SLL2, raw IP,
//! BSD loopback, NFLOG and IPv4/IPv6.
//!
//! Each header is sliced with etherparse's per-header slices (Ethernet,
//! VLAN, MACsec, lax IP with extension headers, TCP); the headers it lacks
//! are stepped over in [`headers`], which hands back an ether type and the
//! bytes after it. The common frame (Ethernet II, IPv4 without options,
//! TCP) is read by hand at fixed places first, and the tests hold it to
//! the general path's answer. Lax slicing means a snaplen-cut frame still yields a
//! segment as long as the TCP fields the rules need (ports, sequence and
//! acknowledgement numbers, flags, window: the first 16 bytes) are there;
//! options and payload cut short are counted, and the payload length comes
//! from the IP header.

mod fragments;
mod headers;
mod tunnels;

pub use fragments::{Fragments, MAX_HELD_FRAGMENTS};

pub use tunnels::{set_tunnel_ports, tunnel_ports, TunnelError, TunnelPorts, MAX_PORTS_PER_TUNNEL};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::{ipv6_exts, macsec, Layer, LenError};
use etherparse::{
    ether_type, ip_number, ArpPacketSlice, Ethernet2Slice, Icmpv4Slice, Icmpv6Slice, IgmpSlice,
    IpNumber, LaxIpPayloadSlice, LaxIpSlice, LaxMacsecPayloadSlice, LaxMacsecSlice,
    LaxSlicedPacket, LenSource, SingleVlanSlice, TcpSlice, UdpSlice,
};

use crate::wire::capture::{Frame, LinkType};
use crate::wire::segment::{Segment, SenderMarks, TcpFlags, TcpOptionsSummary};
use crate::wire::tunnel::{TooDeep, Tunnel};
use fragments::FragmentKey;
use headers::{EncapError, Encapsulated};
use tunnels::Inner;

/// What decoding skipped, so the user can see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub frames: u64,
    pub tcp_segments: u64,
    /// Frames that are not TCP (ARP, UDP, ICMP, …).
    pub non_tcp: u64,
    /// Frames cut before the TCP fields the rules need (ports, numbers,
    /// flags, window): not usable.
    pub truncated: u64,
    /// TCP segments decoded although the snaplen cut their options (from
    /// the fixed header; counted in `tcp_segments`).
    pub options_cut: u64,
    /// TCP segments decoded although the snaplen cut their payload (its
    /// length comes from the IP header; counted in `tcp_segments`).
    pub payload_cut: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// TCP segments whose checksum was verified and is wrong (kept).
    pub bad_checksum: u64,
    /// Frames of a link type this tool does not decode.
    pub unknown_link: u64,
    /// TCP segments decoded from inside a tunnel (counted in
    /// `tcp_segments`; absent from the JSON when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub tunnelled: u64,
    /// Frames whose tunnels nest deeper than
    /// [`MAX_TUNNEL_DEPTH`](crate::wire::tunnel::MAX_TUNNEL_DEPTH): not decoded
    /// (absent from the JSON when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub tunnel_too_deep: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// Link types [`decode`] understands (LINKTYPE_* unless noted).
pub mod linktype {
    use crate::wire::capture::LinkType;

    /// BSD loopback, host byte order family.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// DLT_RAW on most systems.
    pub const DLT_RAW: LinkType = LinkType(12);
    /// DLT_RAW on OpenBSD.
    pub const DLT_RAW_OPENBSD: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback, network byte order family.
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// What [`decode_with`] does besides finding the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify TCP checksums (reading every payload byte). Without it,
    /// [`Segment::checksum_ok`] is `None` and `bad_checksum` stays 0: a
    /// second pass over a capture skips it, as the first already counted.
    pub verify_checksums: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            verify_checksums: true,
        }
    }
}

/// Decodes one frame; `None` when it carries no TCP segment, or one cut
/// before the fields the rules need.
pub fn decode<'a>(frame: &Frame<'a>, stats: &mut DecodeStats) -> Option<Segment<'a>> {
    decode_with(frame, stats, DecodeOptions::default())
}

/// [`decode`], doing only what `options` asks for. Each frame on its own:
/// a tunnel packet the path fragmented is not put back together
/// ([`decode_reassembling`] does).
pub fn decode_with<'a>(
    frame: &Frame<'a>,
    stats: &mut DecodeStats,
    options: DecodeOptions,
) -> Option<Segment<'a>> {
    decode_frame(frame, stats, None, options)
}

/// [`decode_with`], also handing on the segment of a tunnel packet the
/// path fragmented, at its last fragment (`fragments` holds the first
/// fragments' segments meanwhile; see [`Fragments`]).
pub fn decode_reassembling<'a>(
    frame: &Frame<'a>,
    stats: &mut DecodeStats,
    fragments: &mut Fragments,
    options: DecodeOptions,
) -> Option<Segment<'a>> {
    decode_frame(frame, stats, Some(fragments), options)
}

fn decode_frame<'a>(
    frame: &Frame<'a>,
    stats: &mut DecodeStats,
    fragments: Option<&mut Fragments>,
    options: DecodeOptions,
) -> Option<Segment<'a>> {
    stats.frames += 1;
    let mut fragments = fragments;
    let found = match plain_ipv4(frame) {
        // The common frame: TCP in plain IPv4 over Ethernet, with no
        // tunnel or fragment to look for. Every other frame goes through
        // `tcp_segment`, out of line, so that its registers and stack do
        // not weigh on this path (decoding 351 → 215 instructions a frame).
        Some(ip) if ip.payload.ip_number == ip_number::TCP => {
            match TcpFields::of(ip.payload.payload) {
                Ok(tcp) => {
                    // Each path writes the segment where it is returned:
                    // a call in the midst of the common one (a SYN's
                    // options) kept its fields on the stack, and a
                    // segment made on either path and then returned is
                    // copied.
                    return match whole_header_wanted(&ip.payload, &tcp, options) {
                        None => {
                            let segment = segment_of(frame, ip, tcp, None, None);
                            counted(stats, &segment);
                            Some(segment)
                        }
                        Some(verify) => segment_with_whole_header(frame, ip, tcp, verify, stats),
                    };
                }
                Err(skip) => Err(skip),
            }
        }
        _ => tcp_segment(frame, options, fragments.as_deref_mut()),
    };
    let skipped = match found {
        Ok(segment) => {
            counted(stats, &segment);
            return Some(segment);
        }
        Err(Skip::LastFragment(key)) => match fragments.and_then(|f| f.take(key)) {
            Some(segment) => {
                let segment = Segment {
                    frame: frame.number,
                    ts: frame.ts,
                    reassembled: true,
                    ..segment
                };
                counted(stats, &segment);
                return Some(segment);
            }
            None => Skip::Fragment,
        },
        Err(skip) => skip,
    };
    *match skipped {
        Skip::NotTcp => &mut stats.non_tcp,
        Skip::Truncated => &mut stats.truncated,
        Skip::Fragment | Skip::LastFragment(_) => &mut stats.ip_fragments,
        Skip::UnknownLink => &mut stats.unknown_link,
        Skip::TooDeep => &mut stats.tunnel_too_deep,
    } += 1;
    None
}

/// A segment handed on, counted.
#[inline]
fn counted(stats: &mut DecodeStats, segment: &Segment<'_>) {
    stats.tcp_segments += 1;
    stats.bad_checksum += u64::from(segment.checksum_ok == Some(false));
    stats.options_cut += u64::from(segment.options.cut);
    stats.payload_cut += u64::from(!segment.payload_captured());
    stats.tunnelled += u64::from(segment.tunnel.is_some());
}

/// Why a frame yields no segment; each maps to one [`DecodeStats`] counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    NotTcp,
    Truncated,
    Fragment,
    /// The last fragment of an IPv4 packet: a fragment, unless its first
    /// fragment's segment is held.
    LastFragment(FragmentKey),
    UnknownLink,
    TooDeep,
}

impl From<EncapError> for Skip {
    fn from(err: EncapError) -> Self {
        match err {
            EncapError::Truncated => Skip::Truncated,
            EncapError::NotIp => Skip::NotTcp,
        }
    }
}

impl From<TunnelError> for Skip {
    fn from(err: TunnelError) -> Self {
        match err {
            TunnelError::Truncated { .. } => Skip::Truncated,
            TunnelError::Version { .. } | TunnelError::Payload { .. } => Skip::NotTcp,
        }
    }
}

impl From<TooDeep> for Skip {
    fn from(_: TooDeep) -> Self {
        Skip::TooDeep
    }
}

impl From<LenError> for Skip {
    fn from(_: LenError) -> Self {
        Skip::Truncated
    }
}

/// The IP packet a frame carries, and why etherparse stopped inside its
/// extension headers, if it did.
type IpPacket<'a> = (LaxIpSlice<'a>, Option<(ipv6_exts::HeaderSliceError, Layer)>);

/// Finds the IP packet past the link layer and its encapsulations.
///
/// Each header is sliced in place with etherparse's per-header slices
/// (a few words each), not its whole-packet `LaxSlicedPacket`, which is a
/// few hundred bytes that moving around showed in profiles.
fn ip_packet(link: LinkType, data: &[u8]) -> Result<IpPacket<'_>, Skip> {
    use linktype::*;
    let inner = match link {
        ETHERNET => ethernet(data)?,
        DLT_RAW | DLT_RAW_OPENBSD | RAW | IPV4 | IPV6 => return slice_ip(data),
        NULL | LOOP => headers::loopback(data)?,
        LINUX_SLL => headers::linux_sll(data)?,
        LINUX_SLL2 => headers::linux_sll2(data)?,
        NFLOG => headers::nflog(data)?,
        _ => return Err(Skip::UnknownLink),
    };
    follow_ether_type(inner)
}

/// What an Ethernet frame (without FCS) carries.
#[inline]
fn ethernet(data: &[u8]) -> Result<Encapsulated<'_>, Skip> {
    let payload = Ethernet2Slice::from_slice_without_fcs(data)?.payload();
    Ok(Encapsulated {
        ether_type: payload.ether_type,
        payload: payload.payload,
    })
}

/// Upper bound on MPLS/PPPoE/FabricPath layers, so crafted input can't loop.
const MAX_ENCAPSULATIONS: usize = 8;

/// Steps over VLAN tags, MACsec, MPLS, PPPoE and FabricPath to IP.
///
/// At most [`LaxSlicedPacket::LINK_EXTS_CAP`] VLAN/MACsec headers in a row
/// (counted afresh after each MPLS/PPPoE/FabricPath header), as
/// etherparse's lax slicer allows; more is not taken for TCP.
#[inline]
fn follow_ether_type(mut inner: Encapsulated<'_>) -> Result<IpPacket<'_>, Skip> {
    let mut link_exts = 0;
    let mut encapsulations = 0;
    loop {
        inner = match inner.ether_type {
            ether_type::VLAN_TAGGED_FRAME
            | ether_type::PROVIDER_BRIDGING
            | ether_type::VLAN_DOUBLE_TAGGED_FRAME => {
                if link_exts == LaxSlicedPacket::LINK_EXTS_CAP {
                    return Err(Skip::NotTcp);
                }
                link_exts += 1;
                let payload = SingleVlanSlice::from_slice(inner.payload)?.payload();
                Encapsulated {
                    ether_type: payload.ether_type,
                    payload: payload.payload,
                }
            }
            ether_type::MACSEC => {
                if link_exts == LaxSlicedPacket::LINK_EXTS_CAP {
                    return Err(Skip::NotTcp);
                }
                link_exts += 1;
                let macsec =
                    LaxMacsecSlice::from_slice(inner.payload).map_err(|err| match err {
                        macsec::HeaderSliceError::Len(_) => Skip::Truncated,
                        macsec::HeaderSliceError::Content(_) => Skip::NotTcp,
                    })?;
                match macsec.payload {
                    LaxMacsecPayloadSlice::Unmodified(payload) => Encapsulated {
                        ether_type: payload.ether_type,
                        payload: payload.payload,
                    },
                    // Encrypted: whatever it carries can't be read.
                    LaxMacsecPayloadSlice::Modified { .. } => return Err(Skip::NotTcp),
                }
            }
            ether_type::ARP => {
                // An ARP packet cut short counts as truncated, like any
                // header the frame ends inside.
                ArpPacketSlice::from_slice(inner.payload)?;
                return Err(Skip::NotTcp);
            }
            ether_type::IPV4 | ether_type::IPV6 => return slice_ip(inner.payload),
            headers::MPLS_UNICAST
            | headers::MPLS_MULTICAST
            | headers::PPPOE_SESSION
            | headers::CISCO_FABRICPATH => {
                if encapsulations == MAX_ENCAPSULATIONS {
                    return Err(Skip::NotTcp);
                }
                encapsulations += 1;
                link_exts = 0;
                match inner.ether_type {
                    headers::PPPOE_SESSION => headers::pppoe_session(inner.payload)?,
                    headers::CISCO_FABRICPATH => headers::fabricpath(inner.payload)?,
                    _ => headers::mpls(inner.payload)?,
                }
            }
            _ => return Err(Skip::NotTcp),
        };
    }
}

/// IPv4 or IPv6 (by the version nibble), laxly: a snaplen-cut packet is
/// sliced as far as it goes.
fn slice_ip(data: &[u8]) -> Result<IpPacket<'_>, Skip> {
    LaxIpSlice::from_slice(data).map_err(|err| match err {
        LaxHeaderSliceError::Len(_) => Skip::Truncated,
        LaxHeaderSliceError::Content(_) => Skip::NotTcp,
    })
}

/// What the segment needs of an IP packet: addresses, length, sender
/// marks, and its payload (not a fragment, extension headers read).
#[cfg_attr(test, derive(Debug, PartialEq))]
struct IpFields<'a> {
    src: IpAddr,
    dst: IpAddr,
    declared: DeclaredLen,
    ttl: u8,
    ip_id: Option<u16>,
    payload: LaxIpPayloadSlice<'a>,
    /// The packet is the first fragment of an IPv4 packet (what it holds
    /// can be decoded only when it is a tunnel's, see [`Fragments`]).
    first_fragment: Option<FragmentKey>,
}

impl<'a> IpFields<'a> {
    #[inline]
    fn of((ip, stop): IpPacket<'a>) -> Result<Self, Skip> {
        let (src, dst, declared, ttl, ip_id) = match &ip {
            LaxIpSlice::Ipv4(ipv4) => {
                let header = ipv4.header();
                (
                    IpAddr::V4(header.source_addr()),
                    IpAddr::V4(header.destination_addr()),
                    DeclaredLen::from_header(header.slice(), usize::from(header.total_len())),
                    header.ttl(),
                    Some(header.identification()),
                )
            }
            LaxIpSlice::Ipv6(ipv6) => {
                let header = ipv6.header();
                (
                    IpAddr::V6(header.source_addr()),
                    IpAddr::V6(header.destination_addr()),
                    DeclaredLen::from_header(
                        header.slice(),
                        40 + usize::from(header.payload_length()),
                    ),
                    header.hop_limit(),
                    None,
                )
            }
        };
        let payload = ip.payload().clone();
        let mut first_fragment = None;
        if payload.fragmented {
            let LaxIpSlice::Ipv4(ipv4) = &ip else {
                return Err(Skip::Fragment);
            };
            let header = ipv4.header();
            let key = FragmentKey {
                src,
                dst,
                id: header.identification(),
                protocol: header.protocol().0,
            };
            match (header.fragments_offset().value(), header.more_fragments()) {
                (0, _) => first_fragment = Some(key),
                (_, false) => return Err(Skip::LastFragment(key)),
                _ => return Err(Skip::Fragment),
            }
        }
        if let Some((err, _)) = stop {
            // The frame ended inside an extension header, or one is invalid.
            return Err(match err {
                ipv6_exts::HeaderSliceError::Len(_) => Skip::Truncated,
                ipv6_exts::HeaderSliceError::Content(_) => Skip::NotTcp,
            });
        }
        Ok(IpFields {
            src,
            dst,
            declared,
            ttl,
            ip_id,
            payload,
            first_fragment,
        })
    }
}

/// Ethernet II's header: two addresses and the ether type.
const ETHERNET_LEN: usize = 14;
/// An IPv4 header without options.
const IPV4_PLAIN_LEN: usize = 20;

/// The IP fields of the most common frame, read by hand at fixed places:
/// Ethernet without a tag, then IPv4 without options (version and header
/// length one byte, 0x45) captured whole (total length within the frame,
/// covering the header), neither a fragment nor IPsec AH. `None` for any
/// other frame, which [`ip_packet`] and [`IpFields::of`] slice with
/// etherparse's packet slices: the same fields, at a tenth of the
/// instructions (they try each link, tag and error case in turn, and the
/// lax IP slice each length; `tests.rs` holds both to the same answer on
/// every frame).
#[inline]
fn plain_ipv4<'a>(frame: &Frame<'a>) -> Option<IpFields<'a>> {
    if frame.link != linktype::ETHERNET {
        return None;
    }
    let (ethernet, ip) = frame.data.split_at_checked(ETHERNET_LEN)?;
    let header: &[u8; IPV4_PLAIN_LEN] = ip.first_chunk()?;
    let word = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let ether_type = u16::from_be_bytes([ethernet[12], ethernet[13]]);
    let total = usize::from(word(2));
    let protocol = IpNumber(header[9]);
    // More fragments, or an offset: a fragment.
    let fragment = word(6) & 0x3fff != 0;
    if ether_type != ether_type::IPV4.0
        || header[0] != 0x45
        || total < IPV4_PLAIN_LEN
        || total > ip.len()
        || fragment
        || protocol == ip_number::AUTH
    {
        return None;
    }
    let address = |at: usize| {
        IpAddr::V4(Ipv4Addr::new(
            header[at],
            header[at + 1],
            header[at + 2],
            header[at + 3],
        ))
    };
    Some(IpFields {
        src: address(12),
        dst: address(16),
        declared: DeclaredLen::from_header(ip, total),
        ttl: header[8],
        ip_id: Some(word(4)),
        payload: LaxIpPayloadSlice {
            incomplete: false,
            ip_number: protocol,
            fragmented: false,
            len_source: LenSource::Ipv4HeaderTotalLen,
            payload: &ip[IPV4_PLAIN_LEN..total],
        },
        first_fragment: None,
    })
}

/// The IP packet inside a tunnel an IP packet carries, its layer added
/// to `tunnel`; when it carries none, why it is no TCP segment. Out of
/// line: untunnelled TCP never comes here.
#[inline(never)]
fn decapsulated<'a>(
    ip: &IpFields<'a>,
    tunnel: &mut Option<Box<Tunnel>>,
) -> Result<IpPacket<'a>, Skip> {
    let payload = &ip.payload;
    let found = tunnels::decapsulate(
        payload.ip_number,
        payload.payload,
        (ip.src, ip.dst),
        tunnel_ports(),
    )?;
    let Some((layer, inner)) = found else {
        return Err(other_transport(payload));
    };
    tunnel.get_or_insert_with(Box::default).push(layer)?;
    match inner {
        Inner::Ip(packet) => slice_ip(packet),
        Inner::Ethernet(frame) => follow_ether_type(ethernet(frame)?),
        Inner::EtherType(encapsulated) => follow_ether_type(encapsulated),
    }
}

/// The frame's TCP segment, or why it has none, whatever the link,
/// tunnels and fragments. A segment from a tunnel packet's first
/// fragment is held in `fragments` (when given) until its last fragment,
/// and this frame counts as a fragment. Out of line: the common frame
/// does not come here ([`decode_frame`]).
#[inline(never)]
fn tcp_segment<'a>(
    frame: &Frame<'a>,
    options: DecodeOptions,
    fragments: Option<&mut Fragments>,
) -> Result<Segment<'a>, Skip> {
    // Found again rather than handed over: the common frame's fields
    // then stay in registers.
    let mut ip = match plain_ipv4(frame) {
        Some(ip) => ip,
        None => IpFields::of(ip_packet(frame.link, frame.data)?)?,
    };
    let outer_fragment = ip.first_fragment;
    // Made only for a tunnel: nothing to fill for plain TCP.
    let mut tunnel = None;
    while ip.payload.ip_number != ip_number::TCP {
        ip = IpFields::of(decapsulated(&ip, &mut tunnel)?)?;
    }
    if ip.first_fragment.is_some() && (tunnel.is_none() || ip.first_fragment != outer_fragment) {
        // Fragmented TCP itself, not a fragmented tunnel packet.
        return Err(Skip::Fragment);
    }
    let tcp = TcpFields::of(ip.payload.payload)?;
    let whole_header = whole_header_wanted(&ip.payload, &tcp, options);
    let segment = segment_of(frame, ip, tcp, tunnel, whole_header);
    match outer_fragment {
        None => Ok(segment),
        Some(key) => {
            if let Some(fragments) = fragments {
                fragments.hold(key, &segment);
            }
            Err(Skip::Fragment)
        }
    }
}

/// The segment of a TCP header `tcp` in the IP packet `ip` (the
/// innermost, inside `tunnel`'s layers) of `frame`, with what its whole
/// header gives when [`whole_header_wanted`] says so.
#[inline(always)]
fn segment_of<'a>(
    frame: &Frame<'a>,
    ip: IpFields<'a>,
    tcp: TcpFields<'a>,
    tunnel: Option<Box<Tunnel>>,
    whole_header_wanted: Option<bool>,
) -> Segment<'a> {
    let IpFields {
        src,
        dst,
        declared: declared_ip_total,
        ttl,
        ip_id,
        payload: ip_payload,
        first_fragment: _,
    } = ip;
    let ip_payload = &ip_payload;
    let payload_len = declared_ip_total
        .payload_len(ip_payload)
        .saturating_sub(tcp.header_len);
    let captured = tcp.payload;
    let flags = tcp.flags();
    let cut = tcp.options_cut();
    // A length that does not even cover the headers (0 with TCP
    // segmentation offload, or an IPv6 jumbogram): the headers and the
    // TCP segment instead.
    let headers_len = declared_ip_total.headers_len(ip_payload);
    let ip_len = match declared_ip_total.total {
        total if total > headers_len => total,
        _ => headers_len + tcp.header_len + payload_len,
    };
    let mut segment = Segment {
        frame: frame.number,
        ts: frame.ts,
        src: SocketAddr::new(src, tcp.u16_at(0)),
        dst: SocketAddr::new(dst, tcp.u16_at(2)),
        seq: tcp.u32_at(4),
        ack: tcp.u32_at(8),
        flags,
        window: tcp.u16_at(14),
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        payload: &captured[..captured.len().min(payload_len)],
        options: TcpOptionsSummary {
            cut,
            ..TcpOptionsSummary::default()
        },
        checksum_ok: None,
        marks: SenderMarks {
            ttl,
            ip_id,
            outgoing: match frame.link {
                linktype::LINUX_SLL => headers::cooked_outgoing(false, frame.data),
                linktype::LINUX_SLL2 => headers::cooked_outgoing(true, frame.data),
                _ => None,
            },
            tcp_header_len: u8::try_from(tcp.header_len).unwrap_or(u8::MAX),
            ip_len: u32::try_from(ip_len).unwrap_or(u32::MAX),
        },
        tunnel,
        reassembled: false,
    };
    if let Some(verify) = whole_header_wanted {
        whole_header_facts(&mut segment, &tcp, verify);
    }
    segment
}

/// Whether a segment needs what only its whole TCP header gives (a SYN's
/// options; the checksum, when `options` ask to verify it and the IP
/// header gave the segment's extent), and has it: `Some(verify)` then.
#[inline(always)]
fn whole_header_wanted(
    ip_payload: &LaxIpPayloadSlice<'_>,
    tcp: &TcpFields<'_>,
    options: DecodeOptions,
) -> Option<bool> {
    let verify = options.verify_checksums && checksum_verifiable(ip_payload);
    (!tcp.options_cut() && (verify || tcp.flags().syn())).then_some(verify)
}

/// [`segment_of`] for a segment whose whole header is wanted
/// ([`whole_header_wanted`]), counted, out of line: the common frame's segment
/// wants none, and is then written in place without a call between its
/// fields ([`decode_frame`]).
#[inline(never)]
fn segment_with_whole_header<'a>(
    frame: &Frame<'a>,
    ip: IpFields<'a>,
    tcp: TcpFields<'a>,
    verify: bool,
    stats: &mut DecodeStats,
) -> Option<Segment<'a>> {
    let segment = segment_of(frame, ip, tcp, None, Some(verify));
    counted(stats, &segment);
    Some(segment)
}

/// Fills in what a segment's whole TCP header `tcp` gives: a SYN's
/// options, and whether its checksum is right when `verify`.
#[inline(never)]
fn whole_header_facts(segment: &mut Segment<'_>, tcp: &TcpFields<'_>, verify: bool) {
    if verify {
        segment.checksum_ok = TcpSlice::from_slice(tcp.bytes)
            .ok()
            .and_then(|whole| verify_checksum(&whole, segment.src.ip(), segment.dst.ip()));
    }
    if segment.flags.syn() {
        segment.options = syn_options(tcp.options());
    }
}

/// The TCP header's first bytes, up to the window: what every rule reads.
/// A snaplen that cuts the options (Linux puts a timestamp option on
/// every segment, so `-s 64` cuts every one) leaves them whole.
const TCP_FIELDS_NEEDED: usize = 16;

/// A TCP header as far as it was captured: at least the fields the rules
/// need, perhaps not its options.
struct TcpFields<'a> {
    /// At least [`TCP_FIELDS_NEEDED`] bytes.
    bytes: &'a [u8],
    /// The header length its data offset declares (20 or more).
    header_len: usize,
    /// Captured bytes after the header (empty when the options were cut).
    payload: &'a [u8],
}

impl<'a> TcpFields<'a> {
    /// `Truncated` when the frame ends before the window, or the data
    /// offset declares less than the 20-byte fixed header.
    fn of(bytes: &'a [u8]) -> Result<Self, Skip> {
        if bytes.len() < TCP_FIELDS_NEEDED {
            return Err(Skip::Truncated);
        }
        let header_len = usize::from(bytes[12] >> 4) * 4;
        if header_len < 20 {
            return Err(Skip::Truncated);
        }
        Ok(TcpFields {
            bytes,
            header_len,
            payload: bytes.get(header_len..).unwrap_or_default(),
        })
    }

    /// Whether the capture cut the header (its options), so that
    /// [`whole_header_facts`] cannot be had.
    fn options_cut(&self) -> bool {
        self.bytes.len() < self.header_len
    }

    /// The options, as far as they were captured.
    fn options(&self) -> &'a [u8] {
        let end = self.header_len.min(self.bytes.len());
        self.bytes.get(20..end).unwrap_or_default()
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    fn flags(&self) -> TcpFlags {
        TcpFlags(self.bytes[13])
    }
}

/// A transport other than TCP: not TCP, or truncated when the frame ends
/// inside a header etherparse knows (UDP, ICMP, ICMPv6, IGMP).
fn other_transport(ip_payload: &LaxIpPayloadSlice<'_>) -> Skip {
    let data = ip_payload.payload;
    let whole = match ip_payload.ip_number {
        ip_number::UDP => UdpSlice::from_slice_lax(data).is_ok(),
        ip_number::ICMP => Icmpv4Slice::from_slice(data).is_ok(),
        ip_number::IPV6_ICMP => Icmpv6Slice::from_slice(data).is_ok(),
        ip_number::IGMP => IgmpSlice::from_slice(data).is_ok(),
        _ => true,
    };
    if whole {
        Skip::NotTcp
    } else {
        Skip::Truncated
    }
}

/// The IP header's idea of the packet length, which is the on-wire length
/// even when the frame was cut short by the snaplen.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct DeclaredLen {
    /// Where the IP header starts (an address, to measure the headers).
    ip_header_at: usize,
    total: usize,
}

impl DeclaredLen {
    fn from_header(ip_header: &[u8], total: usize) -> Self {
        Self {
            ip_header_at: ip_header.as_ptr() as usize,
            total,
        }
    }

    /// IP payload length after extension headers. When the frame is
    /// complete etherparse already cut the payload to the IP length (so
    /// Ethernet padding is gone); only a cut frame needs the header's value.
    fn payload_len(&self, payload: &LaxIpPayloadSlice<'_>) -> usize {
        if !payload.incomplete {
            return payload.payload.len();
        }
        self.total.saturating_sub(self.headers_len(payload))
    }

    /// The IP header's length, extension headers included.
    fn headers_len(&self, payload: &LaxIpPayloadSlice<'_>) -> usize {
        payload.payload.as_ptr() as usize - self.ip_header_at
    }
}

/// Whether the IP header gave the segment's extent and all of it was
/// captured, so that its checksum can be verified (a zero length, as
/// with TSO, leaves the extent unknown).
fn checksum_verifiable(ip_payload: &LaxIpPayloadSlice<'_>) -> bool {
    !ip_payload.incomplete && ip_payload.len_source != LenSource::Slice
}

/// Whether a whole segment's checksum is right (`None`: not computed).
fn verify_checksum(tcp: &TcpSlice<'_>, src: IpAddr, dst: IpAddr) -> Option<bool> {
    let computed = match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => tcp.calc_checksum_ipv4(src.octets(), dst.octets()),
        (IpAddr::V6(src), IpAddr::V6(dst)) => tcp.calc_checksum_ipv6(src.octets(), dst.octets()),
        _ => return None,
    }
    .ok()?;
    Some(computed == tcp.checksum())
}

/// A SYN's options (MSS, window scale, SACK permitted): the only
/// segments whose options the rules read.
///
/// Walked as etherparse's options iterator walks them (the tests hold the
/// two to the same answer): the walk ends at the end of the list, at a
/// kind it does not know (whatever its length says), or at an option
/// whose length is not its kind's or runs past the header; what came
/// before counts. By hand, because the iterator's items (a SACK's blocks,
/// the errors) made it about 270 instructions a SYN.
fn syn_options(options: &[u8]) -> TcpOptionsSummary {
    let mut summary = TcpOptionsSummary::default();
    let mut rest = options;
    while let [kind, after @ ..] = rest {
        let len = match *kind {
            1 => 1,
            2 => 4,
            3 => 3,
            4 => 2,
            8 => 10,
            5 => match after.first() {
                Some(&len @ (10 | 18 | 26 | 34)) => usize::from(len),
                _ => break,
            },
            // The end of the list, or a kind the walk does not know.
            _ => break,
        };
        let Some(option) = rest.get(..len) else {
            break;
        };
        if len > 1 && usize::from(option[1]) != len {
            break;
        }
        match option {
            [2, _, high, low] => summary.mss = Some(u16::from_be_bytes([*high, *low])),
            [3, _, shift] => summary.window_scale = Some(*shift),
            [4, _] => summary.sack_permitted = true,
            _ => {}
        }
        rest = &rest[len..];
    }
    summary
}

#[cfg(test)]
mod tests;
