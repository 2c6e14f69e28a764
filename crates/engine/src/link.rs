//! Link decoding: from a [`Frame`] to a TCP [`Segment`], through Ethernet
//! (802.1Q/QinQ), Linux SLL/SLL2, raw IP, BSD loopback and IPv4/IPv6.
//!
//! STUB: the interface below is the contract; the implementation is owned
//! by the capture/link work item.

use crate::capture::Frame;
use crate::segment::Segment;

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

/// Decodes one frame; `None` when it carries no whole TCP header.
pub fn decode<'a>(_frame: &Frame<'a>, _stats: &mut DecodeStats) -> Option<Segment<'a>> {
    unimplemented!("link decoding")
}
