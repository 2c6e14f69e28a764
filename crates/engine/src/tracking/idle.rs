//! Idle resets: a connection silent for a long time, then reset as soon as
//! one side speaks again. A NAT or firewall that dropped an idle
//! connection's state answers the next packet with an RST (forged in the
//! peer's name), or lets it through to a peer that no longer has the
//! connection (its stray RST). Either way the application called nothing:
//! the path forgot the connection.
//!
//! The candidate is noted as segments come: the connection's first RST,
//! sent right after the other side's first segment following a silence.
//! The verdict keeps it only when that RST is a stray or forged
//! ([`IdleTrack::candidate`] and `Connection::verdict`): an application's
//! abort, or the reset of data sent after a close, is no idle timeout.
//! Rules and limits: docs/semantics.md ("Idle resets").

use crate::wire::segment::Timestamp;

/// The shortest silence taken as idle. Real idle timeouts are minutes
/// (NAT gateways 350 s, stateful firewalls 300-3600 s); a second is far
/// above any round trip, and lets the recordings use short timeouts.
pub const IDLE_MIN_US: i64 = 1_000_000;
/// The RST answers the packet that broke the silence: it comes within a
/// second of it, and within a tenth of the silence.
const ANSWER_MAX_US: i64 = 1_000_000;

/// An RST that followed a silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleRst {
    /// The silence before the packet it answers, milliseconds.
    pub idle_ms: u32,
    /// Endpoint index of the RST's (claimed) sender.
    pub sender: usize,
    /// At the time, the RST said its sender had no such connection
    /// (`rst-stray`), rather than an abort or the reset of late data.
    pub stray: bool,
}

/// Per connection: the last distinct segment, when the one before it came,
/// and the candidate idle reset.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdleTrack {
    /// When the last segment came (if `seen`), and from which endpoint:
    /// plain fields, not an optional pair, as every segment moves them.
    last: Timestamp,
    last_sender: u8,
    /// A segment has been noted (`last` is its).
    seen: bool,
    /// When the segment before the last one came (the last one's time if
    /// none did: no silence): the silence before the last is worked out
    /// from it only when an RST asks (every segment moves it, a copy;
    /// working out the silence each time was a saturating multiply and a
    /// division by 1,000).
    before_last: Timestamp,
    /// The first RST has been seen (only it can be an idle reset).
    rst_seen: bool,
    pub candidate: Option<IdleRst>,
}

impl IdleTrack {
    /// Notes a segment of endpoint `sender` at `ts` (a router's second
    /// copy of a packet is not passed here); `rst` is `Some(stray)` for an
    /// RST that took effect or was judged at all. True when this RST is
    /// the candidate (which only the first RST can be): the caller's
    /// answer without a look at `candidate` before and after.
    #[inline]
    pub fn observe(&mut self, ts: Timestamp, sender: usize, rst: Option<bool>) -> bool {
        let mut candidate = false;
        if let (Some(stray), false) = (rst, self.rst_seen) {
            candidate = self.first_rst(ts, sender, stray);
        }
        self.before_last = if self.seen { self.last } else { ts };
        self.last = ts;
        self.last_sender = u8::from(sender != 0);
        self.seen = true;
        candidate
    }

    /// The connection's first RST, from `sender` at `ts`: is it right
    /// after a silence? (Out of line: once a connection at most.)
    fn first_rst(&mut self, ts: Timestamp, sender: usize, stray: bool) -> bool {
        self.rst_seen = true;
        if !self.seen {
            return false;
        }
        let at = self.last;
        let after = ts.micros_since(at);
        let silence_us = at.micros_since(self.before_last);
        if usize::from(self.last_sender) != sender
            && silence_us >= IDLE_MIN_US
            && after <= ANSWER_MAX_US
            && after.saturating_mul(10) <= silence_us
        {
            self.candidate = Some(IdleRst {
                idle_ms: u32::try_from(silence_us / 1000).unwrap_or(u32::MAX),
                sender,
                stray,
            });
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp {
            secs: ms / 1000,
            nanos: (ms % 1000) as u32 * 1_000_000,
        }
    }

    #[test]
    fn an_rst_answering_the_first_packet_after_a_silence() {
        let mut t = IdleTrack::default();
        t.observe(at(0), 0, None);
        t.observe(at(5), 1, None);
        assert!(!t.observe(at(3505), 0, None));
        assert!(
            t.observe(at(3506), 1, Some(true)),
            "the RST is the candidate"
        );
        assert_eq!(
            t.candidate,
            Some(IdleRst {
                idle_ms: 3500,
                sender: 1,
                stray: true
            })
        );
    }

    #[test]
    fn no_silence_a_late_answer_or_a_later_rst_is_no_idle_reset() {
        // A short pause.
        let mut t = IdleTrack::default();
        t.observe(at(0), 0, None);
        t.observe(at(900), 0, None);
        assert!(!t.observe(at(901), 1, Some(true)));
        assert_eq!(t.candidate, None);
        // The RST comes long after the packet that broke the silence.
        let mut t = IdleTrack::default();
        t.observe(at(0), 0, None);
        t.observe(at(5000), 0, None);
        t.observe(at(6200), 1, Some(true));
        assert_eq!(t.candidate, None);
        // The silence was broken by the RST's own sender.
        let mut t = IdleTrack::default();
        t.observe(at(0), 0, None);
        t.observe(at(5000), 1, None);
        t.observe(at(5001), 1, Some(false));
        assert_eq!(t.candidate, None);
        // Only the first RST counts.
        let mut t = IdleTrack::default();
        t.observe(at(0), 1, Some(false));
        t.observe(at(5000), 0, None);
        t.observe(at(5001), 1, Some(true));
        assert_eq!(t.candidate, None);
    }
}
