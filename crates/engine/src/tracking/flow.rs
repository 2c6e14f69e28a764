//! The flow table: groups segments into connections by their 4-tuple,
//! starts a new connection when a SYN reopens a closed 4-tuple, and
//! retires closed connections so memory follows the connections open at
//! a time, not the length of the capture.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use hashbrown::hash_table::HashTable;
use rustc_hash::FxHasher;

use crate::tracking::connection::{Connection, SegmentFacts};
use crate::tracking::zeek::ZeekTracker;
use crate::wire::segment::{Segment, Tunnel};

/// How long (capture time) a closed connection stays in the table to
/// catch late segments: retransmitted FINs, last ACKs, stray RSTs. Linux
/// keeps TIME-WAIT for 60 s; twice that covers a peer's retransmissions.
pub const CLOSED_LINGER_SECS: i64 = 120;

/// One endpoint folded into a word of the flow hash and key: an IPv4
/// address and port exactly (below bit 48), an IPv6 address folded, with
/// bit 63 set (two that fold alike only cost a comparison of the
/// addresses themselves, [`sender_in_flow`]).
#[inline]
fn endpoint_word(addr: &SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => (u64::from(a.ip().to_bits()) << 16) | u64::from(a.port()),
        SocketAddr::V6(a) => {
            let ip = a.ip().to_bits();
            let folded = ((ip >> 64) as u64 ^ ip as u64).rotate_left(16) ^ u64::from(a.port());
            folded | IPV6_WORD
        }
    }
}

/// The bit that marks an IPv6 endpoint's (folded, so inexact) word.
const IPV6_WORD: u64 = 1 << 63;

/// A segment's endpoints as words, sender first: what its connection's
/// key ([`Flow::key`]) is compared with.
#[inline]
fn segment_words(seg: &Segment<'_>) -> [u64; 2] {
    [endpoint_word(&seg.src), endpoint_word(&seg.dst)]
}

/// The hash of a connection's key: its two endpoints' words, in either
/// order (the smaller word first, so that both directions hash alike),
/// and the tunnel it came through, if any (direction-free too:
/// [`TunnelLayer`](crate::wire::tunnel::TunnelLayer)), so that identical
/// inner 4-tuples in two tunnels stay apart. Two words and no ordering of
/// addresses: this runs for every segment. The tunnel is optional, as a
/// segment holds it: most have none, which then needs no look at
/// `Tunnel::NONE`.
#[inline]
fn flow_hash([a, b]: [u64; 2], tunnel: Option<&Tunnel>) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write_u64(a.min(b));
    hasher.write_u64(a.max(b));
    if let Some(tunnel) = tunnel.filter(|t| !t.is_none()) {
        tunnel.hash(&mut hasher);
    }
    hasher.finish()
}

/// The hash of `flow`'s key (the same as its segments').
fn flow_key_hash(flow: &Flow) -> u64 {
    flow_hash(flow.key, Some(flow.conn.tunnel()))
}

/// If `seg` (whose endpoints' words are `words`) is one of `flow`'s (the
/// same two endpoints, either way, through the same tunnel), whether its
/// sender is the second of [`Connection::endpoints`]: the look-up's
/// comparison tells the direction, so the connection need not compare the
/// addresses again. A bool, not an index: the index made of it is known
/// to be 0 or 1, so indexing the connection's pairs by it needs no bounds
/// check.
///
/// The words decide for IPv4, which they hold exactly: two words compared
/// instead of two `SocketAddr`s (their variant, address and port) each
/// way. Words that differ are different addresses whatever the family;
/// IPv6 words that agree are compared again in full.
#[inline]
fn sender_in_flow(flow: &Flow, seg: &Segment<'_>, [src, dst]: [u64; 2]) -> Option<bool> {
    let second = if flow.key == [src, dst] {
        false
    } else if flow.key == [dst, src] {
        true
    } else {
        return None;
    };
    let conn = &flow.conn;
    if (src | dst) & IPV6_WORD != 0 {
        return sender_of_addresses(conn, seg);
    }
    conn.came_through(seg.tunnel.as_deref()).then_some(second)
}

/// [`sender_in_flow`] by the addresses themselves (IPv6, whose words are
/// folded). Out of line: IPv4 never comes here.
#[inline(never)]
fn sender_of_addresses(conn: &Connection, seg: &Segment<'_>) -> Option<bool> {
    let [a, b] = [&conn.endpoints[0].addr, &conn.endpoints[1].addr];
    let second = if *a == seg.src && *b == seg.dst {
        false
    } else if *a == seg.dst && *b == seg.src {
        true
    } else {
        return None;
    };
    conn.came_through(seg.tunnel.as_deref()).then_some(second)
}

/// Hands out connection ids in order of first appearance.
fn next_id(counter: &mut u32) -> u32 {
    let id = *counter;
    *counter += 1;
    id
}

/// A connection in the flow table, and beside it, when the table follows
/// that, Zeek's model of the same segments (only the full reports show
/// it; boxed so that a flow without it stays small).
#[derive(Clone, Debug)]
pub struct Flow {
    /// The words of the connection's endpoints ([`endpoint_word`]), its
    /// [`Connection::endpoints`]' order: the look-up compares these.
    key: [u64; 2],
    pub conn: Connection,
    pub zeek: Option<Box<ZeekTracker>>,
}

/// A new flow (not a method: the caller holds a table entry), in the box
/// of a connection done with if there is one
/// ([`FlowTable::exchange_retired`]).
fn new_flow(
    counter: &mut u32,
    without_zeek: bool,
    spare: &mut Retired,
    seg: &Segment<'_>,
    words: [u64; 2],
    reuses: Option<u32>,
) -> Box<Flow> {
    match spare.pop() {
        Some(mut done) => {
            *done = flow_of(counter, without_zeek, seg, words, reuses);
            done
        }
        None => Box::new(flow_of(counter, without_zeek, seg, words, reuses)),
    }
}

/// [`new_flow`]'s flow, made in place in either branch (a value made
/// before the branch would be copied into the box).
#[inline(always)]
fn flow_of(
    counter: &mut u32,
    without_zeek: bool,
    seg: &Segment<'_>,
    words: [u64; 2],
    reuses: Option<u32>,
) -> Flow {
    Flow {
        key: words,
        conn: Connection::new(next_id(counter), seg, reuses),
        zeek: (!without_zeek).then(Box::default),
    }
}

/// Boxes of connections done with that the table keeps for new ones at
/// most ([`FlowTable::exchange_retired`]): a few batches' worth of
/// leaving connections, about 1 MB.
const SPARE_FLOWS: usize = 1024;

/// Connections that left the flow table, still boxed as the table held
/// them: sorting them and handing them on (to the rows thread) moves
/// pointers, not whole connections (clippy's `vec_box` takes a box in a
/// `Vec` for waste).
#[allow(clippy::vec_box)]
pub type Retired = Vec<Box<Flow>>;

/// All connections open (or recently closed) at one point of the capture.
#[derive(Default)]
pub struct FlowTable {
    /// Boxed connections, found by their addresses: a slot is a pointer
    /// (8 bytes, not the 72 of a key and a box), so the thousands of open
    /// and lingering connections' slots stay in cache, and the connection
    /// a lookup compares against is the one it is about to update.
    open: HashTable<Box<Flow>>,
    /// Closed connections in the order they closed, with the time they
    /// did and their key's hash.
    closing: VecDeque<(i64, u64, u32)>,
    /// Before this time (seconds) the front of `closing` cannot expire:
    /// the one comparison every segment makes ([`FlowTable::retire_expired`]).
    next_expiry: i64,
    next_id: u32,
    /// Connections that left the table, waiting for [`FlowTable::drain_retired`].
    retired: Retired,
    /// No Zeek model beside the connections ([`FlowTable::without_zeek`]).
    without_zeek: bool,
    /// Boxes of connections done with, for new connections
    /// ([`FlowTable::exchange_retired`]).
    spare: Retired,
}

impl FlowTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table without Zeek's model beside its connections: for passes
    /// that need no report (rows, verdicts), as Zeek's columns are only in
    /// reports.
    pub fn without_zeek() -> Self {
        Self {
            without_zeek: true,
            ..Self::default()
        }
    }

    /// Number of connections seen so far.
    pub fn connections_seen(&self) -> u32 {
        self.next_id
    }

    /// Routes one segment to its connection and returns what it meant.
    pub fn observe(&mut self, seg: &Segment<'_>) -> SegmentFacts {
        if seg.ts.secs >= self.next_expiry {
            self.retire_expired(seg.ts.secs);
        }
        let words = segment_words(seg);
        let hash = flow_hash(words, seg.tunnel.as_deref());
        // GTP-U: which of the connections of this key the segment's TEID
        // belongs to (the oldest whose TEIDs agree; none: a new one).
        let teids = seg.tunnel.as_deref().is_some_and(Tunnel::carries_teid);
        let wanted = teids.then(|| self.oldest_agreeing(hash, seg, words));
        // The sender, as the matching comparison found it (a new
        // connection's first segment is its endpoint 0's).
        let mut from_second = false;
        // One hash lookup per segment: this runs for every segment (a
        // lookup alone, not an entry, which makes room for an insertion).
        let flow = match self.open.find_mut(hash, |flow| {
            sender_in_flow(flow, seg, words).is_some_and(|second| {
                from_second = second;
                wanted.is_none_or(|id| id == Some(flow.conn.id))
            })
        }) {
            Some(flow) => {
                // Only a SYN reopens: most segments skip the call.
                if seg.flags.syn() && flow.conn.reopened_by(seg) {
                    let reuses = Some(flow.conn.id);
                    let new = new_flow(
                        &mut self.next_id,
                        self.without_zeek,
                        &mut self.spare,
                        seg,
                        words,
                        reuses,
                    );
                    self.retired.push(std::mem::replace(flow, new));
                    from_second = false;
                }
                flow
            }
            None => {
                from_second = false;
                let new = new_flow(
                    &mut self.next_id,
                    self.without_zeek,
                    &mut self.spare,
                    seg,
                    words,
                    None,
                );
                self.open
                    .insert_unique(hash, new, |flow| flow_key_hash(flow))
                    .into_mut()
            }
        };
        let conn = &mut flow.conn;
        if teids {
            conn.learn_teids(seg.tunnel());
        }
        if let Some(zeek) = &mut flow.zeek {
            zeek.observe(seg, !from_second);
        }
        let (facts, closed) = conn.observe(seg, usize::from(from_second));
        if closed {
            if self.closing.is_empty() {
                self.next_expiry = seg.ts.secs.saturating_add(CLOSED_LINGER_SECS);
            }
            self.closing.push_back((seg.ts.secs, hash, conn.id));
        }
        facts
    }

    /// The oldest connection of `key` whose GTP-U TEIDs agree with
    /// `tunnel`'s (an end whose TEID it has not seen yet agrees): the
    /// first segment a direction shows of two connections with the same
    /// inner 4-tuple and tunnel endpoints goes to the older one that
    /// lacks it, as the first SYN of a pair of connections would.
    #[cold]
    fn oldest_agreeing(&self, hash: u64, seg: &Segment<'_>, words: [u64; 2]) -> Option<u32> {
        self.open
            .iter_hash(hash)
            .filter(|flow| {
                sender_in_flow(flow, seg, words).is_some()
                    && flow.conn.tunnel().teids_agree(seg.tunnel())
            })
            .map(|flow| flow.conn.id)
            .min()
    }

    /// Have connections left the table since the last [`FlowTable::drain_retired`]?
    #[inline]
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// Connections that left the table since the last call, by id (the
    /// list keeps its room: it is not allocated again for each).
    pub fn drain_retired(&mut self) -> std::vec::Drain<'_, Box<Flow>> {
        self.retired.sort_unstable_by_key(|f| f.conn.id);
        self.retired.drain(..)
    }

    /// [`FlowTable::drain_retired`] handing each connection to `each`,
    /// which may give back in exchange the box of one done with: the
    /// table keeps it for a new connection. The two-thread schedule's
    /// connections come back to the tracking thread with their batch,
    /// where each was a free, and each new one a malloc (~400
    /// instructions a connection together). Out of line: most segments
    /// retire nothing.
    #[inline(never)]
    pub fn exchange_retired(&mut self, mut each: impl FnMut(Box<Flow>) -> Option<Box<Flow>>) {
        let mut spare = std::mem::take(&mut self.spare);
        for flow in self.drain_retired() {
            if let Some(done) = each(flow) {
                if spare.len() < SPARE_FLOWS {
                    spare.push(done);
                }
            }
        }
        self.spare = spare;
    }

    /// Ends the capture: every connection still held, in id order.
    pub fn finish(mut self) -> Retired {
        let mut all = std::mem::take(&mut self.retired);
        all.extend(self.open);
        all.sort_unstable_by_key(|f| f.conn.id);
        all
    }

    /// Drops connections closed longer than [`CLOSED_LINGER_SECS`] ago
    /// (called once `now_secs` reaches `next_expiry`). Only the front is
    /// asked, as ever: captures are not always in time order.
    #[cold]
    fn retire_expired(&mut self, now_secs: i64) {
        while let Some(&(closed_at, hash, id)) = self.closing.front() {
            if now_secs.saturating_sub(closed_at) < CLOSED_LINGER_SECS {
                // Exact: before this time the difference stays below the linger.
                self.next_expiry = closed_at.saturating_add(CLOSED_LINGER_SECS);
                return;
            }
            self.closing.pop_front();
            // The entry may already be a newer connection on the same 4-tuple.
            if let Ok(entry) = self.open.find_entry(hash, |f| f.conn.id == id) {
                self.retired.push(entry.remove().0);
            }
        }
        self.next_expiry = i64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{endpoint_word, Flow, FlowTable};
    use crate::wire::segment::{Segment, TcpFlags};

    /// The look-up compares endpoints' words, which hold an IPv4 address
    /// and port exactly but fold an IPv6 address: two clients whose
    /// addresses fold alike are still two connections, and the server's
    /// answer goes to the one it is addressed to.
    #[test]
    fn ipv6_endpoints_whose_words_agree_stay_apart() {
        let server: SocketAddr = "[2001:db8::80]:443".parse().unwrap();
        let one: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let other: SocketAddr = "[2001:db8:0:ff::fe]:40000".parse().unwrap();
        assert_eq!(
            endpoint_word(&one),
            endpoint_word(&other),
            "the test needs two addresses that fold alike"
        );
        let segment = |frame, src, dst, flags, seq, ack| Segment {
            frame,
            ..Segment::for_test(src, dst, flags, seq, ack, 0)
        };
        let mut table = FlowTable::without_zeek();
        let first = table.observe(&segment(1, one, server, TcpFlags::SYN, 100, 0));
        let second = table.observe(&segment(2, other, server, TcpFlags::SYN, 700, 0));
        assert_ne!(first.conn, second.conn);
        let answer = segment(3, server, other, TcpFlags::SYN | TcpFlags::ACK, 500, 701);
        let answer = table.observe(&answer);
        assert_eq!((answer.conn, answer.sender), (second.conn, 1));
        let again = table.observe(&segment(4, one, server, TcpFlags::ACK, 101, 0));
        assert_eq!((again.conn, again.sender), (first.conn, 0));
    }

    /// IPv4 words are exact: the reply of a connection is its own, from
    /// its second endpoint, and a neighbour port is another connection.
    #[test]
    fn ipv4_words_tell_direction_and_ports_apart() {
        let client: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let neighbour: SocketAddr = "10.0.0.1:40001".parse().unwrap();
        let server: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let mut table = FlowTable::without_zeek();
        let syn = table.observe(&Segment::for_test(client, server, TcpFlags::SYN, 1, 0, 0));
        let answer = Segment {
            frame: 2,
            ..Segment::for_test(server, client, TcpFlags::SYN | TcpFlags::ACK, 9, 2, 0)
        };
        let answer = table.observe(&answer);
        assert_eq!((answer.conn, answer.sender), (syn.conn, 1));
        let other = Segment {
            frame: 3,
            ..Segment::for_test(neighbour, server, TcpFlags::SYN, 1, 0, 0)
        };
        assert_ne!(table.observe(&other).conn, syn.conn);
    }

    /// Memory grows with the connections open at once, one boxed `Flow`
    /// each, so a Flow's size is a choice, not an accident: a field that
    /// grows it past 1,032 bytes (glibc's per-thread cache limit on 64-bit)
    /// fails here. Staying under that limit saved no allocator work
    /// measurably (new connections come in bursts that the cache's seven
    /// blocks do not hold); the 208 bytes per connection it took are the
    /// gain (docs/performance.md, sixth round, the tracking thread).
    #[test]
    fn a_flow_stays_within_glibcs_per_thread_cache_limit() {
        let size = std::mem::size_of::<Flow>();
        assert!(
            size <= 1032,
            "a Flow is {size} bytes, above 1,032 (glibc's tcache limit): say why in this test if it must grow"
        );
    }
}
