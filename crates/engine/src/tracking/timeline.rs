//! When things happened to a connection, in capture time: its first and
//! last segment, each side's first FIN and state changes, the first RST,
//! retransmitted FINs and half-close use. Verdicts do not need these;
//! reports do (how long a socket has been in TIME-WAIT or CLOSE-WAIT, RST
//! bursts, teardowns over time), so they are noted once per segment from
//! what the segment already meant, without a second look at it.

use crate::tracking::endpoint::TcpState;
use crate::tracking::event::{Event, EventSet};
use crate::wire::segment::Timestamp;

/// A connection's times and teardown counts, per endpoint where it says so
/// (indexed like [`crate::tracking::connection::Connection::endpoints`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Time of the connection's first segment.
    pub first: Timestamp,
    /// Time of its last segment.
    pub last: Timestamp,
    /// When each endpoint sent its first FIN.
    pub fin: [Option<Timestamp>; 2],
    /// When the connection's first RST was sent (accepted or not).
    pub rst: Option<Timestamp>,
    /// RSTs sent on the connection, by either side (a router's second
    /// copy of a packet is not one more).
    pub rsts: u32,
    /// When each endpoint entered the state it is in.
    pub state_since: [Timestamp; 2],
    /// FINs each endpoint sent again at the same sequence number: its peer
    /// did not acknowledge the first.
    pub fin_retransmits: [u32; 2],
    /// Each endpoint sent new payload after receiving its peer's FIN
    /// (the peer half-closed, and this side kept sending).
    pub data_after_fin: [bool; 2],
}

impl Timeline {
    /// The timeline of a connection whose first segment is at `ts`.
    pub fn starting(ts: Timestamp) -> Timeline {
        Timeline {
            first: ts,
            last: ts,
            state_since: [ts; 2],
            ..Timeline::default()
        }
    }

    /// Notes one segment sent by endpoint `sender` at `ts`, with its
    /// `events` and each endpoint's state `before` and `after` it.
    /// Inlined into the connection's every segment; the events' part is
    /// not.
    #[inline]
    pub fn note(
        &mut self,
        ts: Timestamp,
        sender: usize,
        events: EventSet,
        before: [TcpState; 2],
        after: [TcpState; 2],
    ) {
        self.note_time(ts);
        for i in 0..2 {
            if before[i] != after[i] {
                self.state_since[i] = ts;
            }
        }
        if !events.is_empty() {
            self.note_events(ts, sender, events);
        }
    }

    /// Notes a segment at `ts` that changed no state and had no event
    /// (a quiet one): its time is all it moves.
    #[inline]
    pub fn note_time(&mut self, ts: Timestamp) {
        self.last = ts;
    }

    /// The times and counts that `events` of `sender`'s segment at `ts`
    /// change (out of line: most segments have no event).
    fn note_events(&mut self, ts: Timestamp, sender: usize, events: EventSet) {
        let first_fin = [Event::FinActive, Event::FinPassive, Event::FinSimultaneous];
        if first_fin.iter().any(|&e| events.contains(e)) {
            self.fin[sender].get_or_insert(ts);
        }
        let rst = [
            Event::RstAbort,
            Event::RstAfterClose,
            Event::RstRefused,
            Event::RstStray,
            Event::RstIgnored,
        ];
        if rst.iter().any(|&e| events.contains(e)) {
            self.rst.get_or_insert(ts);
            self.rsts = self.rsts.saturating_add(1);
        }
        if events.contains(Event::FinRetransmit) {
            self.fin_retransmits[sender] = self.fin_retransmits[sender].saturating_add(1);
        }
        if events.contains(Event::DataAfterFin) {
            self.data_after_fin[sender] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    #[test]
    fn state_changes_fins_and_rsts_are_timed() {
        let mut t = Timeline::starting(at(10));
        let est = [TcpState::Established; 2];
        t.note(at(11), 0, EventSet::default(), est, est);
        assert_eq!(t.state_since, [at(10); 2]);
        let mut fin = EventSet::default();
        fin.insert(Event::FinActive);
        let after = [TcpState::FinWait1, TcpState::CloseWait];
        t.note(at(12), 0, fin, est, after);
        let mut again = EventSet::default();
        again.insert(Event::FinRetransmit);
        t.note(at(13), 0, again, after, after);
        let mut rst = EventSet::default();
        rst.insert(Event::RstAbort);
        t.note(at(14), 1, rst, after, [TcpState::Closed; 2]);
        assert_eq!(t.fin, [Some(at(12)), None]);
        assert_eq!(t.fin_retransmits, [1, 0]);
        assert_eq!(t.rst, Some(at(14)));
        assert_eq!(t.rsts, 1);
        assert_eq!(t.state_since, [at(14); 2]);
        assert_eq!((t.first, t.last), (at(10), at(14)));
    }
}
