//! Rows waiting for hindsight, for the one-pass schedule.
//!
//! A row's calls, its `data-to-closed` event, and (after a simultaneous
//! close) its states depend on how its connection ends. In one pass each
//! row is held here from its segment until its connection's verdict is
//! final (the connection left the flow table); rows then leave in frame
//! order. Memory follows the rows of the connections still open or
//! lingering, and the caller bounds it (see `analysis`).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::annotate::Row;
use crate::connection::{Connection, SegmentFacts};
use crate::endpoint::TcpState;
use crate::event::EventSet;
use crate::inference::ConnVerdict;
use crate::segment::{Segment, TcpFlags, TcpOptionsSummary, Timestamp};

/// The rows held, and what each connection needs to release them.
#[derive(Default)]
pub struct PendingRows {
    rows: VecDeque<PendingRow>,
    /// How many rows have left: the absolute index of `rows[0]`.
    released: u64,
    /// By connection id, from `first_conn` on.
    conns: VecDeque<PendingConn>,
    first_conn: u32,
    /// Rows visited by replays so far (see [`PendingRows::replays_too_costly`]).
    replayed: u64,
}

/// A held row: its segment's fields (enough to make the row and to replay
/// the segment through a fresh connection; addresses are the
/// connection's) and its [`SegmentFacts`], packed into 80 bytes instead
/// of 112, as up to [`crate::analysis::MAX_HELD_ROWS`] of them are held.
#[derive(Clone, Copy)]
struct PendingRow {
    frame: u64,
    ts_secs: i64,
    /// Frame numbers (from 1), 0 for none.
    related: u64,
    if_receiver_stopped_reading: u64,
    ts_nanos: u32,
    seq: u32,
    ack: u32,
    payload_len: u32,
    rel_seq: u32,
    rel_ack: u32,
    conn: u32,
    events: EventSet,
    window: u16,
    flags: TcpFlags,
    window_scale: Option<u8>,
    sender: u8,
    sender_state: TcpState,
    receiver_state: TcpState,
    reveals: bool,
}

impl PendingRow {
    fn of(seg: &Segment<'_>, facts: &SegmentFacts) -> PendingRow {
        let mut row = PendingRow {
            frame: seg.frame,
            ts_secs: seg.ts.secs,
            related: 0,
            if_receiver_stopped_reading: 0,
            ts_nanos: seg.ts.nanos,
            seq: seg.seq,
            ack: seg.ack,
            payload_len: seg.payload_len,
            rel_seq: 0,
            rel_ack: 0,
            conn: facts.conn,
            events: EventSet::default(),
            window: seg.window,
            flags: seg.flags,
            window_scale: seg.options.window_scale,
            sender: 0,
            sender_state: TcpState::Unknown,
            receiver_state: TcpState::Unknown,
            reveals: false,
        };
        row.set_facts(facts);
        row
    }

    fn set_facts(&mut self, facts: &SegmentFacts) {
        self.related = facts.related.unwrap_or(0);
        self.if_receiver_stopped_reading = facts.if_receiver_stopped_reading.unwrap_or(0);
        self.rel_seq = facts.rel_seq;
        self.rel_ack = facts.rel_ack;
        self.events = facts.events;
        self.sender = (facts.sender != 0).into();
        self.sender_state = facts.sender_state;
        self.receiver_state = facts.receiver_state;
        self.reveals = facts.reveals;
    }

    fn facts(&self) -> SegmentFacts {
        let frame = |n: u64| (n != 0).then_some(n);
        SegmentFacts {
            conn: self.conn,
            sender: usize::from(self.sender),
            events: self.events,
            sender_state: self.sender_state,
            receiver_state: self.receiver_state,
            related: frame(self.related),
            rel_seq: self.rel_seq,
            rel_ack: self.rel_ack,
            reveals: self.reveals,
            if_receiver_stopped_reading: frame(self.if_receiver_stopped_reading),
        }
    }

    /// The segment again, from the connection's `endpoints` (the payload
    /// itself is not kept: nothing after decoding reads it).
    fn segment(&self, endpoints: [SocketAddr; 2]) -> Segment<'static> {
        let sender = usize::from(self.sender);
        Segment {
            frame: self.frame,
            ts: Timestamp {
                secs: self.ts_secs,
                nanos: self.ts_nanos,
            },
            src: endpoints[sender],
            dst: endpoints[1 - sender],
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            payload_len: self.payload_len,
            payload: &[],
            options: TcpOptionsSummary {
                window_scale: self.window_scale,
                ..TcpOptionsSummary::default()
            },
            checksum_ok: None,
        }
    }
}

#[derive(Default)]
struct PendingConn {
    /// Its rows still held.
    held: u32,
    /// Absolute index of its first row, where a replay starts.
    first_row: u64,
    settled: Option<Settled>,
}

/// A connection that left the flow table: its verdict is final.
struct Settled {
    /// In the connection's order (index 0 sent its first segment).
    endpoints: [SocketAddr; 2],
    verdict: ConnVerdict,
}

/// Rows a replay may visit per row held, on average, before the one pass
/// gives way ([`PendingRows::replays_too_costly`]).
const REPLAY_BUDGET: u64 = 4;
/// Replay visits allowed whatever the rows held so far.
const REPLAY_ALLOWANCE: u64 = 1 << 20;

impl PendingRows {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether replays have visited more rows than the one pass is worth:
    /// each scans the rows held since its connection's first, so a capture
    /// of many simultaneous closes behind a long-lived connection would
    /// cost rows × connections. Past `REPLAY_BUDGET` visits per row held
    /// (plus a start-up allowance), two passes are cheaper.
    pub fn replays_too_costly(&self) -> bool {
        let held_so_far = self.released + self.rows.len() as u64;
        self.replayed > REPLAY_BUDGET * held_so_far + REPLAY_ALLOWANCE
    }

    /// Frame of the first row not yet released.
    pub fn first_held_frame(&self) -> Option<u64> {
        self.rows.front().map(|row| row.frame)
    }

    /// Holds the row of `seg`, which its connection observed as `facts`
    /// (without hindsight). Segments come in frame order.
    pub fn hold(&mut self, seg: &Segment<'_>, facts: &SegmentFacts) {
        let index = (facts.conn - self.first_conn) as usize;
        if index >= self.conns.len() {
            // Ids are handed out in order of first appearance: a new one
            // is always the next.
            self.conns.resize_with(index + 1, PendingConn::default);
            self.conns[index].first_row = self.released + self.rows.len() as u64;
        }
        self.conns[index].held += 1;
        self.rows.push_back(PendingRow::of(seg, facts));
    }

    /// `conn` left the flow table with `verdict`: its rows can be made.
    ///
    /// Only a simultaneous close changes what the pass saw, not just how
    /// its rows read: hindsight keeps the first FIN's receiver out of
    /// CLOSE-WAIT. Its rows are then observed again, with the verdict,
    /// by a fresh connection, as a second pass would.
    pub fn settle(&mut self, conn: &Connection, verdict: ConnVerdict) {
        let endpoints = [conn.endpoints[0].addr, conn.endpoints[1].addr];
        let Some(index) = conn.id.checked_sub(self.first_conn) else {
            return;
        };
        let Some(entry) = self.conns.get_mut(index as usize) else {
            return;
        };
        if verdict.simultaneous {
            let start = (entry.first_row - self.released) as usize;
            let mut fresh: Option<Connection> = None;
            self.replayed += (self.rows.len() - start) as u64;
            for row in self.rows.range_mut(start..) {
                if row.conn != conn.id {
                    continue;
                }
                let seg = row.segment(endpoints);
                let fresh =
                    fresh.get_or_insert_with(|| Connection::new(conn.id, &seg, conn.reuses));
                row.set_facts(&fresh.observe(&seg, Some(&verdict)));
            }
        }
        entry.settled = Some(Settled { endpoints, verdict });
    }

    /// Makes and hands over, in frame order, every row whose connection
    /// is settled, up to the first that is not.
    pub fn release(
        &mut self,
        mut emit: impl FnMut(&Row) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while let Some(row) = self.rows.front() {
            let conn = &mut self.conns[(row.conn - self.first_conn) as usize];
            let Some(settled) = &conn.settled else {
                break;
            };
            let seg = row.segment(settled.endpoints);
            emit(&Row::new(&seg, &row.facts(), &settled.verdict))?;
            conn.held -= 1;
            self.rows.pop_front();
            self.released += 1;
        }
        while self
            .conns
            .front()
            .is_some_and(|c| c.settled.is_some() && c.held == 0)
        {
            self.conns.pop_front();
            self.first_conn += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_row_takes_at_most_80_bytes() {
        assert!(std::mem::size_of::<PendingRow>() <= 80);
    }
}
