//! Who really sent an RST: the marks of each endpoint's own segments
//! (TTL or hop limit, IPv4 ID progression, TCP options), compared with the
//! RSTs sent in its name, plus what only a forger does (copy the IP ID of
//! the packet it answers, keep the "reset" endpoint sending afterwards, or
//! answer sooner than a round trip to the endpoint allows).
//! A middlebox (firewall, load balancer, censor) resets in an endpoint's
//! name; the endpoint's application then called nothing.
//!
//! Signs are weighed: a strong one (a TTL jump, a copied IP ID, the
//! endpoint still sending) calls the RST forged; the weak ones (options,
//! window, payload, IP ID off the sequence, several sequence numbers) are
//! shown as evidence but never decide, alone or together. Rules and limits: docs/semantics.md ("Forged resets").

use std::fmt;

use crate::wire::segment::{Segment, Timestamp};
use crate::wire::seq::seq_diff;

/// Weight of a sign that alone shows a forged RST.
const STRONG: u8 = 2;
/// How far a Linux-like IP ID may advance between two captured segments
/// of one sender and still count as its own progression.
const ID_STEP: u16 = 1024;
/// The shortest round trip that timing is judged against, µs.
const MIN_RTT_US: u32 = 1000;

/// One reason to doubt that the claimed endpoint sent its RST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// The RST's TTL (IPv6: hop limit, `v6`) differs from the one all of
    /// the endpoint's segments carry.
    TtlDiffers { rst: u8, usual: u8, v6: bool },
    /// The RST's IPv4 ID is the ID of the peer's packet it answers.
    IdCopied(u16),
    /// The endpoint sent more segments after "its" RST.
    KeepsSending,
    /// Most packets of the endpoint are seen twice (coming into a router and
    /// leaving it one TTL lower, `-i any`), the RST only once: it was made
    /// at the capture point.
    SeenOnce,
    /// The RST's IPv4 ID is outside the endpoint's rising sequence of IDs.
    IdOutOfSequence { rst: u16, last: u16 },
    /// An RST+ACK without the TCP options every other segment carried.
    OptionsMissing,
    /// An RST+ACK with a zero window, where the endpoint advertised one.
    ZeroWindow,
    /// The RST carries payload.
    Payload,
    /// RSTs in the endpoint's name at different sequence numbers.
    SeveralSequences,
    /// The RST came `after_us` after the peer's packet it answers, less
    /// than half the round trip from the capture point to the endpoint
    /// and back (`rtt_us`, the quickest the endpoint ever answered).
    Early { after_us: u32, rtt_us: u32 },
}

impl Sign {
    fn weight(self) -> u8 {
        match self {
            Sign::TtlDiffers { .. } | Sign::IdCopied(_) | Sign::SeenOnce => 2,
            _ => 1,
        }
    }

    /// This sign's bit in a [`Why`]'s mask.
    pub fn bit(self) -> u16 {
        1 << match self {
            Sign::TtlDiffers { .. } => 0,
            Sign::IdCopied(_) => 1,
            Sign::KeepsSending => 2,
            Sign::IdOutOfSequence { .. } => 3,
            Sign::OptionsMissing => 4,
            Sign::ZeroWindow => 5,
            Sign::Payload => 6,
            Sign::SeveralSequences => 7,
            Sign::SeenOnce => 8,
            Sign::Early { .. } => 9,
        }
    }

    /// Short code for the JSON evidence list.
    pub fn code(self) -> &'static str {
        match self {
            Sign::TtlDiffers { .. } => "ttl",
            Sign::IdCopied(_) => "ip-id-copied",
            Sign::KeepsSending => "keeps-sending",
            Sign::IdOutOfSequence { .. } => "ip-id-sequence",
            Sign::OptionsMissing => "options",
            Sign::ZeroWindow => "window",
            Sign::Payload => "payload",
            Sign::SeveralSequences => "several-seq",
            Sign::SeenOnce => "seen-once",
            Sign::Early { .. } => "timing",
        }
    }
}

impl fmt::Display for Sign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Sign::TtlDiffers { rst, usual, v6 } => {
                let what = if v6 { "hop limit" } else { "TTL" };
                write!(f, "{what} {rst} where this host's segments carry {usual}")
            }
            Sign::IdCopied(id) => write!(f, "its IP ID {id} copies the packet it answers"),
            Sign::KeepsSending => write!(f, "the host keeps sending after it"),
            Sign::IdOutOfSequence { rst, last } => {
                write!(f, "IP ID {rst} outside this host's sequence (last {last})")
            }
            Sign::OptionsMissing => f.write_str("no TCP options where this host's segments carry them"),
            Sign::ZeroWindow => f.write_str("window 0 where this host advertises one"),
            Sign::Payload => f.write_str("the RST carries payload"),
            Sign::SeveralSequences => f.write_str("several RSTs at different sequence numbers"),
            Sign::SeenOnce => f.write_str(
                "seen once, where each of this host's packets is seen twice (into and out of the router)",
            ),
            Sign::Early { after_us, rtt_us } => write!(
                f,
                "it came {} after the packet it answers, where this host takes {} to answer",
                Micros(after_us),
                Micros(rtt_us)
            ),
        }
    }
}

/// A time in microseconds, as the sentences write it: `63 µs`, `1.2 ms`.
struct Micros(u32);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            us @ 0..1000 => write!(f, "{us} µs"),
            us @ 1000..1_000_000 => write!(f, "{:.1} ms", f64::from(us) / 1e3),
            us => write!(f, "{:.1} s", f64::from(us) / 1e6),
        }
    }
}

/// The signs of a verdict, small and `Copy` (kept per connection between
/// the passes, and in each RST's row until it is written): which signs,
/// and the numbers the sentence quotes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Why {
    mask: u16,
    /// RST's TTL, the host's usual one; IPv6's hop limit if `v6`.
    ttl: [u8; 2],
    v6: bool,
    /// RST's IP ID, and the host's last own one (or the copied one).
    ip_id: [u16; 2],
    /// Time after the packet answered, and the host's round trip, µs.
    timing: [u32; 2],
}

impl Why {
    pub fn of(signs: &[Sign]) -> Why {
        let mut why = Why::default();
        for &sign in signs {
            why.mask |= sign.bit();
            match sign {
                Sign::TtlDiffers { rst, usual, v6 } => (why.ttl, why.v6) = ([rst, usual], v6),
                Sign::IdCopied(id) => why.ip_id = [id, id],
                Sign::IdOutOfSequence { rst, last } => why.ip_id = [rst, last],
                Sign::Early { after_us, rtt_us } => why.timing = [after_us, rtt_us],
                _ => {}
            }
        }
        why
    }

    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// Bytes in [`Why::to_bytes`].
    pub const BYTES: usize = 17;

    /// Every field in [`Why::BYTES`] bytes (held rows' verdicts on a
    /// spill file, `pipeline/spill.rs`).
    pub fn to_bytes(self) -> [u8; Why::BYTES] {
        let mut out = [0; Why::BYTES];
        out[0..2].copy_from_slice(&self.mask.to_le_bytes());
        out[2..4].copy_from_slice(&self.ttl);
        out[4] = self.v6.into();
        out[5..7].copy_from_slice(&self.ip_id[0].to_le_bytes());
        out[7..9].copy_from_slice(&self.ip_id[1].to_le_bytes());
        out[9..13].copy_from_slice(&self.timing[0].to_le_bytes());
        out[13..17].copy_from_slice(&self.timing[1].to_le_bytes());
        out
    }

    /// The [`Why`] of [`Why::to_bytes`].
    pub fn from_bytes(b: &[u8; Why::BYTES]) -> Why {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Why {
            mask: u16_at(0),
            ttl: [b[2], b[3]],
            v6: b[4] != 0,
            ip_id: [u16_at(5), u16_at(7)],
            timing: [u32_at(9), u32_at(13)],
        }
    }

    /// The signs again, in [`Sign::bit`] order.
    pub fn signs(&self) -> impl Iterator<Item = Sign> + '_ {
        let [rst, usual] = self.ttl;
        let [id, last] = self.ip_id;
        let [after_us, rtt_us] = self.timing;
        [
            Sign::TtlDiffers {
                rst,
                usual,
                v6: self.v6,
            },
            Sign::IdCopied(id),
            Sign::KeepsSending,
            Sign::IdOutOfSequence { rst: id, last },
            Sign::OptionsMissing,
            Sign::ZeroWindow,
            Sign::Payload,
            Sign::SeveralSequences,
            Sign::SeenOnce,
            Sign::Early { after_us, rtt_us },
        ]
        .into_iter()
        .filter(|s| self.mask & s.bit() != 0)
    }
}

/// The signs joined by "; ", with their numbers ("TTL 61 where this
/// host's segments carry 64; the host keeps sending after it").
impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for sign in self.signs() {
            write!(f, "{sep}{sign}")?;
            sep = "; ";
        }
        Ok(())
    }
}

/// What the capture says about the origin of an endpoint's RSTs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub signs: Vec<Sign>,
    /// Too few of the endpoint's own segments to compare with.
    pub unchecked: bool,
}

impl Origin {
    /// The signs, compact.
    pub fn why(&self) -> Why {
        Why::of(&self.signs)
    }

    /// Forged: a strong sign (the RST came another way, or copies the
    /// packet it answers), or the endpoint kept sending after it and the
    /// RST also differs from the endpoint's own segments. The others only
    /// add to the evidence shown; one of them alone is never enough.
    pub fn forged(&self) -> bool {
        let differs = |s: &&Sign| {
            matches!(
                s,
                Sign::IdOutOfSequence { .. }
                    | Sign::OptionsMissing
                    | Sign::ZeroWindow
                    | Sign::Payload
                    | Sign::Early { .. }
            )
        };
        self.signs.iter().any(|s| s.weight() >= STRONG)
            || (self.signs.contains(&Sign::KeepsSending) && self.signs.iter().any(|s| differs(&s)))
    }
}

/// The first RST in an endpoint's name, as it looked.
#[derive(Clone, Copy, Debug)]
struct RstMarks {
    ttl: u8,
    ip_id: Option<u16>,
    id_copied: bool,
    /// The endpoint's last own ID before it, when its IDs were rising.
    rising_from: Option<u16>,
    with_ack: bool,
    has_options: bool,
    window: u16,
    payload: bool,
    seq: u32,
    /// How long after the peer's last packet it came, µs.
    after_us: Option<u32>,
    /// The capture point saw it come in (a cooked capture's packet type):
    /// seen once so, it was dropped there, not made there.
    came_in: bool,
}

/// Per endpoint: the marks of its own (non-RST) segments, and its RSTs.
#[derive(Clone, Copy, Debug, Default)]
struct SideMarks {
    own: u32,
    ttl: u8,
    ttl_varies: bool,
    last_id: Option<u16>,
    ids_rising: bool,
    with_options: u32,
    nonzero_window: bool,
    /// The last segment: a router capture (`-i any`) sees each forwarded
    /// packet twice, one TTL lower.
    last_key: CopyKey,
    /// Own segments seen a second time so, and whether the RST was.
    copies: u32,
    rst_copied: bool,
    /// The first own IP ID, and whether every own ID equals it (crafted
    /// captures often use one ID throughout: then nothing is "copied").
    first_id: Option<u16>,
    ids_constant: bool,
    rst: Option<RstMarks>,
    several_seqs: bool,
    sent_after_rst: bool,
    /// When its last own segment was seen.
    last_ts: Timestamp,
    /// Its highest sequence number sent: a segment below it is a
    /// retransmission, which spoils a round-trip sample (Karn).
    high_end: Option<u32>,
    /// The peer's oldest segment this endpoint has yet to acknowledge
    /// (end sequence number, time seen), for its round trip.
    awaited: Option<(u32, Timestamp)>,
    /// The quickest this endpoint acknowledged the peer: the round trip
    /// from the capture point to it and back, µs.
    rtt_us: Option<u32>,
}

/// What tells a router's second copy of a segment: its seq, ack, flags
/// and IP ID, and its TTL one lower or higher. Before an endpoint's first
/// segment its TTL is [`CopyKey::NONE`], which no TTL is one away from:
/// no `Option` to set and ask on every segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CopyKey {
    seq: u32,
    ack: u32,
    flags: u8,
    ip_id: Option<u16>,
    ttl: u16,
}

impl CopyKey {
    /// A TTL beyond any (a `u8`), and beyond any one away from one.
    const NONE: u16 = 0x8000;

    fn of(seg: &Segment<'_>) -> CopyKey {
        CopyKey {
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags.0,
            ip_id: seg.marks.ip_id,
            ttl: u16::from(seg.marks.ttl),
        }
    }
}

impl Default for CopyKey {
    fn default() -> Self {
        CopyKey {
            seq: 0,
            ack: 0,
            flags: 0,
            ip_id: None,
            ttl: CopyKey::NONE,
        }
    }
}

/// Microseconds from `since` to `ts`, clamped to a `u32` (0 if `ts` is
/// earlier). Within one second (a round trip, nearly always) without the
/// saturating arithmetic of [`Timestamp::micros_since`], whose result it
/// equals.
#[inline]
fn micros_after(ts: Timestamp, since: Timestamp) -> u32 {
    if ts.secs == since.secs {
        return ts.nanos.saturating_sub(since.nanos) / 1000;
    }
    ts.micros_since(since).clamp(0, i64::from(u32::MAX)) as u32
}

/// Both endpoints' marks, kept by the connection (a few dozen bytes).
#[derive(Clone, Copy, Debug, Default)]
pub struct OriginTrack {
    sides: [SideMarks; 2],
}

impl OriginTrack {
    /// Is `seg`, sent by endpoint `x`, its previous segment again, one TTL
    /// lower (a router's second copy), or one TTL higher (the two copies
    /// seen in the other order: capture order is not time order)?
    pub fn is_copy(&self, seg: &Segment<'_>, x: usize) -> bool {
        self.copy_of_previous(seg, x).is_some()
    }

    /// `Some(true)` when `seg` is its sender's previous segment again one
    /// TTL higher (the original after its forwarded copy), `Some(false)`
    /// one TTL lower (the forwarded copy after the original).
    #[inline]
    fn copy_of_previous(&self, seg: &Segment<'_>, x: usize) -> Option<bool> {
        let key = &self.sides[x].last_key;
        if (key.seq, key.ack, key.flags, key.ip_id)
            != (seg.seq, seg.ack, seg.flags.0, seg.marks.ip_id)
        {
            return None;
        }
        let ttl = u16::from(seg.marks.ttl);
        if key.ttl == ttl + 1 {
            Some(false)
        } else if ttl == key.ttl + 1 {
            Some(true)
        } else {
            None
        }
    }

    /// Notes segment `seg` sent by endpoint `x`; true when it is the
    /// previous segment again, one TTL lower (a router's second copy).
    /// Always inlined into the flow table's block: once that block held
    /// the plain segments' path too, LLVM kept it out of line, and the
    /// call and its marks' loads and stores cost 14 instructions a frame
    /// (docs/performance.md, "Thirteenth round: the flow table").
    #[inline(always)]
    pub fn observe(&mut self, seg: &Segment<'_>, x: usize) -> bool {
        let copy = self.copy_of_previous(seg, x);
        self.sides[x].last_key = CopyKey::of(seg);
        if copy.is_some() || seg.flags.rst() {
            return self.observe_copy_or_rst(seg, x, copy);
        }
        let side = &mut self.sides[x];
        let marks = &seg.marks;
        if side.rst.is_some() && !seg.flags.syn() {
            side.sent_after_rst = true;
        }
        if side.own == 0 {
            side.ttl = marks.ttl;
            side.ids_rising = true;
            side.first_id = marks.ip_id;
            side.ids_constant = true;
        } else {
            side.ids_constant &= side.first_id == marks.ip_id;
            side.ttl_varies |= side.ttl != marks.ttl;
            if let (Some(last), Some(id)) = (side.last_id, marks.ip_id) {
                side.ids_rising &= (1..ID_STEP).contains(&id.wrapping_sub(last));
            }
        }
        // Linux sends ID 0 on some segments of its own (SYN+ACK): not
        // part of a progression.
        if marks.ip_id != Some(0) {
            side.last_id = marks.ip_id.or(side.last_id);
        }
        side.own += 1;
        side.with_options += u32::from(marks.has_options());
        side.nonzero_window |= seg.window != 0;
        side.last_ts = seg.ts;
        self.time_round_trip(seg, x);
        false
    }

    /// [`OriginTrack::observe`] of a router's copy (`copy`: the original
    /// after its copy, or the copy after the original) or an RST: few
    /// segments, out of line, so that an endpoint's own segments keep
    /// their short path (the peer's marks it reads are only loaded here).
    #[cold]
    #[inline(never)]
    fn observe_copy_or_rst(&mut self, seg: &Segment<'_>, x: usize, copy: Option<bool>) -> bool {
        let peer_id = self.sides[1 - x].last_id;
        let peer_ts = self.sides[1 - x].last_ts;
        let peer_seen = self.sides[1 - x].own > 0;
        let side = &mut self.sides[x];
        let marks = seg.marks;
        if let Some(original_last) = copy {
            if seg.flags.rst() {
                side.rst_copied = true;
                // The RST's marks are the original's, the higher TTL.
                if let (true, Some(rst)) = (original_last, &mut side.rst) {
                    rst.ttl = marks.ttl;
                }
            } else {
                side.copies += 1;
            }
            return true;
        }
        // An RST, not a copy.
        match &side.rst {
            Some(first) => side.several_seqs |= first.seq != seg.seq,
            None => {
                side.rst = Some(RstMarks {
                    ttl: marks.ttl,
                    ip_id: marks.ip_id,
                    id_copied: marks.ip_id.is_some_and(|id| id != 0) && marks.ip_id == peer_id,
                    rising_from: side.last_id.filter(|_| side.ids_rising && side.own >= 2),
                    with_ack: seg.flags.ack(),
                    has_options: marks.has_options(),
                    window: seg.window,
                    payload: seg.payload_len > 0,
                    seq: seg.seq,
                    after_us: peer_seen.then(|| micros_after(seg.ts, peer_ts)),
                    came_in: marks.outgoing == Some(false),
                })
            }
        }
        false
    }

    /// Round-trip samples: endpoint `x`'s segment acknowledges the peer's
    /// awaited one; a segment of `x` that takes sequence space is awaited
    /// by the peer in turn, unless it is sent again. Only the kernel's own
    /// prompt answers count (a SYN+ACK, or an ACK without payload: payload
    /// waits for the application), and only before the endpoint's RST (its
    /// host may answer later segments for another reason). Always inlined
    /// into [`OriginTrack::observe`] (so into the flow table's block): LLVM
    /// had kept it out of line, a call of ~62 instructions a segment whose
    /// entry, exit and spills were 7.4 a frame (docs/performance.md,
    /// "Fourteenth round: the tracking thread").
    #[inline(always)]
    fn time_round_trip(&mut self, seg: &Segment<'_>, x: usize) {
        let end = seg.end_seq();
        let side = &mut self.sides[x];
        if let Some((awaited, since)) = side.awaited {
            if seg.flags.ack() && seq_diff(seg.ack, awaited) >= 0 {
                let prompt = seg.flags.syn() || seg.payload_len == 0;
                if prompt && side.rst.is_none() {
                    let us = micros_after(seg.ts, since);
                    side.rtt_us = Some(side.rtt_us.map_or(us, |r| r.min(us)));
                }
                side.awaited = None;
            }
        }
        let resent = side
            .high_end
            .is_some_and(|high| seq_diff(seg.seq, high) < 0);
        if end != seg.seq {
            side.high_end =
                Some(
                    side.high_end
                        .map_or(end, |h| if seq_diff(end, h) > 0 { end } else { h }),
                );
        }
        let peer = &mut self.sides[1 - x];
        if resent {
            // The peer's ACK could answer either copy.
            peer.awaited = None;
        } else if end != seg.seq && peer.awaited.is_none() {
            peer.awaited = Some((end, seg.ts));
        }
    }

    /// The origin of endpoint `x`'s RSTs; `None` if it sent none.
    pub fn judge(&self, x: usize) -> Option<Origin> {
        let side = &self.sides[x];
        let rst = side.rst?;
        let mut signs = Vec::new();
        if side.own >= 2 && !side.ttl_varies && side.ttl != 0 && rst.ttl != side.ttl {
            signs.push(Sign::TtlDiffers {
                rst: rst.ttl,
                usual: side.ttl,
                // IPv6 has no IP ID (nor TTL: its hop limit).
                v6: rst.ip_id.is_none(),
            });
        }
        let own_id_too = side.own > 0 && side.ids_constant && side.first_id == rst.ip_id;
        if rst.id_copied && !own_id_too {
            signs.push(Sign::IdCopied(rst.ip_id.unwrap_or(0)));
        } else if let (Some(last), Some(id)) = (rst.rising_from, rst.ip_id) {
            if id != 0 && !(0..ID_STEP).contains(&id.wrapping_sub(last)) {
                signs.push(Sign::IdOutOfSequence { rst: id, last });
            }
        }
        // Most, not all: the router drops some (what it rejects), and
        // tcpdump may miss a copy. An RST seen once coming in was dropped
        // at the capture point (a loss, or a filter), not made there: its
        // lone copy says nothing of who sent it.
        if side.own >= 2 && side.copies * 2 >= side.own && !side.rst_copied && !rst.came_in {
            signs.push(Sign::SeenOnce);
        }
        if side.sent_after_rst {
            signs.push(Sign::KeepsSending);
        }
        // An abortive RST (RST+ACK) comes from the socket, with its options
        // and window; a bare RST never has them, whoever sends it.
        if rst.with_ack && side.own >= 2 {
            if !rst.has_options && side.with_options == side.own {
                signs.push(Sign::OptionsMissing);
            }
            if rst.window == 0 && side.nonzero_window {
                signs.push(Sign::ZeroWindow);
            }
        }
        if rst.payload {
            signs.push(Sign::Payload);
        }
        if side.several_seqs {
            signs.push(Sign::SeveralSequences);
        }
        // A host answers no sooner than a round trip from the capture
        // point; half of it leaves room for jitter and a slow first answer.
        // Below a millisecond (a LAN) jitter and interrupt coalescing are
        // as large as the round trip: nothing to tell.
        if let (Some(after_us), Some(rtt_us)) = (rst.after_us, side.rtt_us) {
            if rtt_us >= MIN_RTT_US && after_us < rtt_us / 2 {
                signs.push(Sign::Early { after_us, rtt_us });
            }
        }
        Some(Origin {
            signs,
            unchecked: side.own < 2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::segment::{SenderMarks, TcpFlags};

    /// Endpoint 0 is the client, 1 the server; `us` is capture time.
    fn seg(us: i64, flags: u8, seq: u32, ack: u32, len: u32, ttl: u8) -> Segment<'static> {
        let (src, dst) = (
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        );
        Segment {
            ts: Timestamp {
                secs: us / 1_000_000,
                nanos: (us % 1_000_000) as u32 * 1000,
            },
            // IPv4, with Linux's ID 0 (never a sign).
            marks: SenderMarks {
                ttl,
                ip_id: Some(0),
                outgoing: None,
                tcp_header_len: 20,
                ip_len: 40 + len,
            },
            ..Segment::for_test(src, dst, flags, seq, ack, len)
        }
    }

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;
    const R: u8 = TcpFlags::RST;

    /// A client capture, the server 20 ms away: handshake, the server's 5
    /// bytes, the client's 10 (acknowledging them), then an RST in the server's name `rst_after` µs later.
    fn server_rst(rst_after: i64, rst_ttl: u8) -> Origin {
        let mut t = OriginTrack::default();
        t.observe(&seg(0, S, 100, 0, 0, 64), 0);
        t.observe(&seg(20_000, SA, 500, 101, 0, 63), 1);
        t.observe(&seg(20_100, A, 101, 501, 0, 64), 0);
        t.observe(&seg(25_000, A, 501, 101, 5, 63), 1);
        t.observe(&seg(30_000, A, 101, 506, 10, 64), 0);
        t.observe(&seg(30_000 + rst_after, R, 506, 0, 0, rst_ttl), 1);
        t.judge(1).expect("an RST")
    }

    #[test]
    fn an_rst_sooner_than_a_round_trip_is_a_weak_sign() {
        let early = server_rst(300, 63);
        assert_eq!(
            early.signs,
            vec![Sign::Early {
                after_us: 300,
                rtt_us: 20_000
            }]
        );
        // Weak: alone it decides nothing.
        assert!(!early.forged());
        assert_eq!(
            early.why().to_string(),
            "it came 300 µs after the packet it answers, where this host takes 20.0 ms to answer"
        );
        // A round trip later: the server's own answer.
        assert!(server_rst(19_000, 63).signs.is_empty());
    }

    #[test]
    fn the_sentence_quotes_the_numbers() {
        let origin = server_rst(21_000, 61);
        assert!(origin.forged());
        assert_eq!(
            origin.why().to_string(),
            "TTL 61 where this host's segments carry 63"
        );
        assert_eq!(origin.why().signs().collect::<Vec<_>>(), origin.signs);
    }

    /// IPv6 has no IP ID, and its TTL is the hop limit.
    #[test]
    fn ipv6_says_hop_limit() {
        let mut t = OriginTrack::default();
        let v6 = |mut s: Segment<'static>| {
            s.marks.ip_id = None;
            s
        };
        t.observe(&v6(seg(0, S, 100, 0, 0, 64)), 0);
        t.observe(&v6(seg(100, SA, 500, 101, 0, 63)), 1);
        t.observe(&v6(seg(200, A, 501, 101, 5, 63)), 1);
        t.observe(&v6(seg(300, R, 506, 0, 0, 64)), 1);
        let origin = t.judge(1).expect("an RST");
        assert!(origin.forged());
        assert_eq!(
            origin.why().to_string(),
            "hop limit 64 where this host's segments carry 63"
        );
    }

    /// The short way within one second gives what the clamped
    /// `micros_since` gives, across seconds, backwards and far apart too.
    #[test]
    fn micros_after_is_micros_since_clamped() {
        let at = |secs, nanos| Timestamp { secs, nanos };
        let times = [
            at(0, 0),
            at(0, 999),
            at(0, 1_000),
            at(0, 999_999_999),
            at(1, 0),
            at(1, 500_000_000),
            at(-1, 500_000_000),
            at(5_000, 1),
            at(i64::MAX, 999_999_999),
            at(i64::MIN, 0),
        ];
        for &ts in &times {
            for &since in &times {
                let clamped = ts.micros_since(since).clamp(0, i64::from(u32::MAX)) as u32;
                assert_eq!(micros_after(ts, since), clamped, "{ts:?} after {since:?}");
            }
        }
    }

    /// Before an endpoint's first segment no segment is a copy, whatever
    /// its TTL (the key's TTL is none).
    #[test]
    fn a_first_segment_is_no_copy() {
        for ttl in 0..=u8::MAX {
            let mut first = seg(0, 0, 0, 0, 0, ttl);
            first.marks.ip_id = None;
            let t = OriginTrack::default();
            assert!(!t.is_copy(&first, 0) && !t.is_copy(&first, 1), "TTL {ttl}");
        }
    }

    #[test]
    fn a_retransmission_gives_no_round_trip() {
        let mut t = OriginTrack::default();
        t.observe(&seg(0, S, 100, 0, 0, 64), 0);
        // The SYN again: the SYN+ACK may answer either.
        t.observe(&seg(1_000_000, S, 100, 0, 0, 64), 0);
        t.observe(&seg(1_000_100, SA, 500, 101, 0, 63), 1);
        t.observe(&seg(1_000_200, A, 101, 501, 0, 64), 0);
        t.observe(&seg(1_000_300, R, 501, 0, 0, 63), 1);
        assert_eq!(t.sides[1].rtt_us, None);
    }
}
