//! Link decoding: from a [`Frame`] to a TCP [`Segment`], through Ethernet
//! (802.1Q/QinQ, MPLS, PPPoE, Cisco FabricPath), Linux SLL/SLL2, raw IP,
//! BSD loopback, NFLOG and IPv4/IPv6.
//!
//! etherparse's lax slicer does Ethernet, VLAN, IP (with extension headers),
//! and TCP; the headers it lacks are stepped over in [`headers`], which
//! hands back an ether type and the bytes after it so that etherparse can
//! carry on. Lax slicing means a snaplen-cut frame still yields a segment
//! as long as its TCP header is complete.

mod headers;

use std::net::{IpAddr, SocketAddr};

use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::packet::SliceError;
use etherparse::{
    LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, LenSource, TcpOptionElement, TcpSlice,
    TransportSlice,
};

use crate::capture::{Frame, LinkType};
use crate::segment::{Segment, TcpFlags, TcpOptionsSummary};
use headers::{EncapError, Encapsulated};

/// What decoding skipped, so the user can see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub frames: u64,
    pub tcp_segments: u64,
    /// Frames that are not TCP (ARP, UDP, ICMP, …).
    pub non_tcp: u64,
    /// Frames too short for their TCP header.
    pub truncated: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// TCP segments whose checksum was verified and is wrong (kept).
    pub bad_checksum: u64,
    /// Frames of a link type this tool does not decode.
    pub unknown_link: u64,
}

/// Link types [`decode`] understands (LINKTYPE_* unless noted).
pub mod linktype {
    use crate::capture::LinkType;

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

/// Decodes one frame; `None` when it carries no whole TCP header.
pub fn decode<'a>(frame: &Frame<'a>, stats: &mut DecodeStats) -> Option<Segment<'a>> {
    stats.frames += 1;
    let skipped = match slice_link(frame.link, frame.data) {
        Ok(sliced) => match tcp_segment(frame, &sliced) {
            Ok(segment) => {
                stats.tcp_segments += 1;
                if segment.checksum_ok == Some(false) {
                    stats.bad_checksum += 1;
                }
                return Some(segment);
            }
            Err(skip) => skip,
        },
        Err(skip) => skip,
    };
    *match skipped {
        Skip::NotTcp => &mut stats.non_tcp,
        Skip::Truncated => &mut stats.truncated,
        Skip::Fragment => &mut stats.ip_fragments,
        Skip::UnknownLink => &mut stats.unknown_link,
    } += 1;
    None
}

/// Why a frame yields no segment; each maps to one [`DecodeStats`] counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    NotTcp,
    Truncated,
    Fragment,
    UnknownLink,
}

impl From<EncapError> for Skip {
    fn from(err: EncapError) -> Self {
        match err {
            EncapError::Truncated => Skip::Truncated,
            EncapError::NotIp => Skip::NotTcp,
        }
    }
}

fn slice_link(link: LinkType, data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    use linktype::*;
    match link {
        ETHERNET => {
            let mut sliced = LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Truncated)?;
            follow_encapsulations(&mut sliced)?;
            Ok(sliced)
        }
        DLT_RAW | DLT_RAW_OPENBSD | RAW | IPV4 | IPV6 => slice_ip(data),
        NULL | LOOP => slice_encapsulated(headers::loopback(data)),
        LINUX_SLL => slice_encapsulated(headers::linux_sll(data)),
        LINUX_SLL2 => slice_encapsulated(headers::linux_sll2(data)),
        NFLOG => slice_encapsulated(headers::nflog(data)),
        _ => Err(Skip::UnknownLink),
    }
}

fn slice_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    LaxSlicedPacket::from_ip(data).map_err(|err| match err {
        LaxHeaderSliceError::Len(_) => Skip::Truncated,
        LaxHeaderSliceError::Content(_) => Skip::NotTcp,
    })
}

fn slice_encapsulated(
    inner: Result<Encapsulated<'_>, EncapError>,
) -> Result<LaxSlicedPacket<'_>, Skip> {
    let inner = inner?;
    let mut sliced = LaxSlicedPacket::from_ether_type(inner.ether_type, inner.payload);
    follow_encapsulations(&mut sliced)?;
    Ok(sliced)
}

/// Upper bound on MPLS/PPPoE/FabricPath layers, so crafted input can't loop.
const MAX_ENCAPSULATIONS: usize = 8;

/// Continues where etherparse stopped at an ether type it doesn't know.
/// In place: a sliced packet is a few hundred bytes, and moving it shows
/// in profiles.
fn follow_encapsulations(sliced: &mut LaxSlicedPacket<'_>) -> Result<(), Skip> {
    for _ in 0..MAX_ENCAPSULATIONS {
        if sliced.net.is_some() || sliced.stop_err.is_some() {
            break;
        }
        let Some(ether) = sliced.ether_payload() else {
            break;
        };
        let inner = match ether.ether_type {
            headers::MPLS_UNICAST | headers::MPLS_MULTICAST => headers::mpls(ether.payload),
            headers::PPPOE_SESSION => headers::pppoe_session(ether.payload),
            headers::CISCO_FABRICPATH => headers::fabricpath(ether.payload),
            _ => break,
        }?;
        *sliced = LaxSlicedPacket::from_ether_type(inner.ether_type, inner.payload);
    }
    Ok(())
}

/// Picks the TCP segment out of a sliced packet, or says why there is none.
fn tcp_segment<'a>(frame: &Frame<'a>, sliced: &LaxSlicedPacket<'a>) -> Result<Segment<'a>, Skip> {
    let (src, dst, ip_payload, declared_ip_total) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ipv4)) => {
            let header = ipv4.header();
            (
                IpAddr::V4(header.source_addr()),
                IpAddr::V4(header.destination_addr()),
                ipv4.payload(),
                DeclaredLen::from_header(header.slice(), usize::from(header.total_len())),
            )
        }
        Some(LaxNetSlice::Ipv6(ipv6)) => {
            let header = ipv6.header();
            (
                IpAddr::V6(header.source_addr()),
                IpAddr::V6(header.destination_addr()),
                ipv6.payload(),
                DeclaredLen::from_header(header.slice(), 40 + usize::from(header.payload_length())),
            )
        }
        _ => return Err(stop_reason(sliced)),
    };
    if ip_payload.fragmented {
        return Err(Skip::Fragment);
    }
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Err(stop_reason(sliced));
    };
    let header_len = usize::from(tcp.data_offset()) * 4;
    let payload_len = declared_ip_total
        .payload_len(ip_payload)
        .saturating_sub(header_len);
    let captured = tcp.payload();
    let flags = TcpFlags(tcp.header_slice()[13]);
    Ok(Segment {
        frame: frame.number,
        ts: frame.ts,
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags,
        window: tcp.window_size(),
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        payload: &captured[..captured.len().min(payload_len)],
        options: if flags.syn() {
            syn_options(tcp)
        } else {
            TcpOptionsSummary::default()
        },
        checksum_ok: verify_checksum(tcp, ip_payload, src, dst),
    })
}

/// Why slicing ended without a TCP segment.
fn stop_reason(sliced: &LaxSlicedPacket<'_>) -> Skip {
    match &sliced.stop_err {
        // A length error means the frame ended inside a header; a content
        // error inside TCP means a header length below 20, no whole header.
        Some((SliceError::Len(_), _)) | Some((SliceError::Tcp(_), _)) => Skip::Truncated,
        _ => Skip::NotTcp,
    }
}

/// The IP header's idea of the packet length, which is the on-wire length
/// even when the frame was cut short by the snaplen.
struct DeclaredLen<'a> {
    ip_header: &'a [u8],
    total: usize,
}

impl<'a> DeclaredLen<'a> {
    fn from_header(ip_header: &'a [u8], total: usize) -> Self {
        Self { ip_header, total }
    }

    /// IP payload length after extension headers. When the frame is
    /// complete etherparse already cut the payload to the IP length (so
    /// Ethernet padding is gone); only a cut frame needs the header's value.
    fn payload_len(&self, payload: &LaxIpPayloadSlice<'_>) -> usize {
        if !payload.incomplete {
            return payload.payload.len();
        }
        let headers_len = payload.payload.as_ptr() as usize - self.ip_header.as_ptr() as usize;
        self.total.saturating_sub(headers_len)
    }
}

/// `None` unless the whole segment was captured and the IP header gave its
/// length (a zero length, as with TSO, leaves the extent unknown).
fn verify_checksum(
    tcp: &TcpSlice<'_>,
    ip_payload: &LaxIpPayloadSlice<'_>,
    src: IpAddr,
    dst: IpAddr,
) -> Option<bool> {
    if ip_payload.incomplete || ip_payload.len_source == LenSource::Slice {
        return None;
    }
    let computed = match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => tcp.calc_checksum_ipv4(src.octets(), dst.octets()),
        (IpAddr::V6(src), IpAddr::V6(dst)) => tcp.calc_checksum_ipv6(src.octets(), dst.octets()),
        _ => return None,
    }
    .ok()?;
    Some(computed == tcp.checksum())
}

fn syn_options(tcp: &TcpSlice<'_>) -> TcpOptionsSummary {
    let mut summary = TcpOptionsSummary::default();
    // A malformed option ends the walk; what came before still counts.
    for option in tcp.options_iterator().map_while(Result::ok) {
        match option {
            TcpOptionElement::MaximumSegmentSize(mss) => summary.mss = Some(mss),
            TcpOptionElement::WindowScale(shift) => summary.window_scale = Some(shift),
            TcpOptionElement::SelectiveAcknowledgementPermitted => summary.sack_permitted = true,
            _ => {}
        }
    }
    summary
}

#[cfg(test)]
mod tests;
