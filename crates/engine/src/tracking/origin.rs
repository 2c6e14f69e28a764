//! Who really sent an RST: the marks of each endpoint's own segments
//! (TTL or hop limit, IPv4 ID progression, TCP options), compared with the
//! RSTs sent in its name, plus what only a forger does (copy the IP ID of
//! the packet it answers, keep the "reset" endpoint sending afterwards).
//! A middlebox (firewall, load balancer, censor) resets in an endpoint's
//! name; the endpoint's application then called nothing.
//!
//! Signs are weighed: a strong one (a TTL jump, a copied IP ID, the
//! endpoint still sending) calls the RST forged; the weak ones (options,
//! window, payload, IP ID off the sequence, several sequence numbers) are
//! shown as evidence but never decide, alone or together. Rules and limits: docs/semantics.md ("Forged resets").

use std::fmt;

use crate::wire::segment::Segment;

/// Weight of a sign that alone shows a forged RST.
const STRONG: u8 = 2;
/// How far a Linux-like IP ID may advance between two captured segments
/// of one sender and still count as its own progression.
const ID_STEP: u16 = 1024;

/// One reason to doubt that the claimed endpoint sent its RST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// The RST's TTL differs from the one all of the endpoint's segments carry.
    TtlDiffers { rst: u8, usual: u8 },
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
}

impl Sign {
    fn weight(self) -> u8 {
        match self {
            Sign::TtlDiffers { .. } | Sign::IdCopied(_) | Sign::SeenOnce => 2,
            _ => 1,
        }
    }

    /// This sign's bit in a verdict's mask ([`describe_mask`]).
    pub fn bit(self) -> u8 {
        1 << match self {
            Sign::TtlDiffers { .. } => 0,
            Sign::IdCopied(_) => 1,
            Sign::KeepsSending => 2,
            Sign::IdOutOfSequence { .. } => 3,
            Sign::OptionsMissing => 4,
            Sign::ZeroWindow => 5,
            Sign::Payload => 6,
            Sign::SeveralSequences => 7,
            // Shares the TTL's bit: both say the path differs.
            Sign::SeenOnce => 0,
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
        }
    }
}

impl fmt::Display for Sign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Sign::TtlDiffers { rst, usual } => {
                write!(f, "TTL {rst} where this host's segments carry {usual}")
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
        }
    }
}

/// The signs of a verdict's mask in words, as a row's sentence lists them.
const PHRASES: [&str; 8] = [
    "it came another way than this host's segments (TTL, or seen once at a router)",
    "its IP ID copies the packet it answers",
    "the host keeps sending after it",
    "its IP ID is outside this host's sequence",
    "it lacks the TCP options this host's segments carry",
    "window 0 where this host advertises one",
    "it carries payload",
    "several RSTs at different sequence numbers",
];

/// Writes the signs in `mask` joined by "; ".
pub fn describe_mask(mask: u8, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut sep = "";
    for (i, phrase) in PHRASES.iter().enumerate() {
        if mask & (1 << i) != 0 {
            f.write_str(sep)?;
            f.write_str(phrase)?;
            sep = "; ";
        }
    }
    Ok(())
}

/// What the capture says about the origin of an endpoint's RSTs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub signs: Vec<Sign>,
    /// Too few of the endpoint's own segments to compare with.
    pub unchecked: bool,
}

impl Origin {
    /// The signs as a mask of [`Sign::bit`]s.
    pub fn mask(&self) -> u8 {
        self.signs.iter().fold(0, |m, s| m | s.bit())
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
    /// The last segment (seq, ack, flags, IP ID, TTL): a router capture
    /// (`-i any`) sees each forwarded packet twice, one TTL lower.
    last_key: Option<(u32, u32, u8, Option<u16>, u8)>,
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
}

/// Both endpoints' marks, kept by the connection (a few dozen bytes).
#[derive(Clone, Copy, Debug, Default)]
pub struct OriginTrack {
    sides: [SideMarks; 2],
}

impl OriginTrack {
    /// Notes segment `seg` sent by endpoint `x`; true when it is the
    /// previous segment again, one TTL lower (a router's second copy).
    pub fn observe(&mut self, seg: &Segment<'_>, x: usize) -> bool {
        let peer_id = self.sides[1 - x].last_id;
        let side = &mut self.sides[x];
        let marks = seg.marks;
        let key = (seg.seq, seg.ack, seg.flags.0, marks.ip_id, marks.ttl);
        let copy = side.last_key.is_some_and(|(seq, ack, flags, id, ttl)| {
            (seq, ack, flags, id) == (key.0, key.1, key.2, key.3)
                && ttl.checked_sub(1) == Some(marks.ttl)
        });
        side.last_key = Some(key);
        if copy {
            if seg.flags.rst() {
                side.rst_copied = true;
            } else {
                side.copies += 1;
            }
            return true;
        }
        if seg.flags.rst() {
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
                    })
                }
            }
            return false;
        }
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
        false
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
        // tcpdump may miss a copy.
        if side.own >= 2 && side.copies * 2 >= side.own && !side.rst_copied {
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
        Some(Origin {
            signs,
            unchecked: side.own < 2,
        })
    }
}
