//! Tunnel packets the path fragmented. A tunnel endpoint that wraps a
//! full-sized segment exceeds the path MTU, so the outer IPv4 packet
//! travels in fragments (GTP-U does so all the time): the first holds the
//! tunnel headers, the inner IP and TCP headers, the others only the rest
//! of the payload. The segment is decoded from the first fragment (its
//! length from the inner IP header, its payload counted as cut) and held
//! until the last fragment arrives, at whose frame it is handed on, as
//! Wireshark and Zeek report it where the packet is whole. A first
//! fragment that carries plain TCP is still skipped and counted, as any
//! IP fragment is (`ip_fragments`).

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::wire::segment::Segment;

/// One IPv4 packet's fragments: addresses, identification, protocol
/// (RFC 791 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub protocol: u8,
}

/// How many first fragments wait at once; the oldest gives way (its last
/// fragment never came, or comes too late), so memory stays bounded
/// whatever the capture holds.
pub const MAX_HELD_FRAGMENTS: usize = 64;

/// Segments decoded from first fragments, waiting for their last fragment.
#[derive(Debug, Default)]
pub struct Fragments {
    held: VecDeque<(FragmentKey, Segment<'static>)>,
}

impl Fragments {
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `segment` (its captured payload dropped) until the last
    /// fragment of `key`.
    pub(super) fn hold(&mut self, key: FragmentKey, segment: &Segment<'_>) {
        if self.held.len() == MAX_HELD_FRAGMENTS {
            self.held.pop_front();
        }
        self.held.retain(|(held, _)| *held != key);
        self.held.push_back((
            key,
            Segment {
                payload: &[],
                ..segment.clone()
            },
        ));
    }

    /// The segment held for `key`, if any, no longer held.
    pub(super) fn take(&mut self, key: FragmentKey) -> Option<Segment<'static>> {
        let at = self.held.iter().position(|(held, _)| *held == key)?;
        self.held.remove(at).map(|(_, segment)| segment)
    }
}
