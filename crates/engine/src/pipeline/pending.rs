//! Rows waiting for hindsight, for the one-pass schedule.
//!
//! A row's calls, its `data-to-closed` event, and (after a simultaneous
//! close) its states depend on how its connection ends. In one pass each
//! row is held here, as its segment's provisional facts, until its
//! connection's verdict is final (the connection left the flow table);
//! rows then leave in frame order, made with
//! [`SegmentFacts::resolved`] as a second pass would make them. Memory follows the rows of the connections still open or
//! lingering, and the caller bounds it (see `analysis`).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::output::rows::Row;
use crate::tracking::connection::{Connection, SegmentFacts};
use crate::tracking::endpoint::TcpState;
use crate::tracking::event::EventSet;
use crate::tracking::inference::ConnVerdict;
use crate::wire::segment::{Segment, TcpFlags, TcpOptionsSummary, Timestamp};

/// The rows held, and what each connection needs to release them.
#[derive(Default)]
pub struct PendingRows {
    rows: VecDeque<PendingRow>,
    /// How many rows have left: the absolute index of `rows[0]`.
    released: u64,
    /// By connection id, from `first_conn` on.
    conns: VecDeque<PendingConn>,
    first_conn: u32,
}

/// A held row: its segment's fields (enough to make the row; addresses
/// are the connection's) and its [`SegmentFacts`], packed into 80 bytes
/// instead of 112, as up to [`crate::pipeline::schedule::MAX_HELD_ROWS`] of them
/// are held.
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
    if_fins_crossed: Option<[TcpState; 2]>,
    reveals: bool,
    idle_rst: bool,
}

impl PendingRow {
    fn of(seg: &Segment<'_>, facts: &SegmentFacts) -> PendingRow {
        PendingRow {
            frame: seg.frame,
            ts_secs: seg.ts.secs,
            related: facts.related.unwrap_or(0),
            if_receiver_stopped_reading: facts.if_receiver_stopped_reading.unwrap_or(0),
            ts_nanos: seg.ts.nanos,
            seq: seg.seq,
            ack: seg.ack,
            payload_len: seg.payload_len,
            rel_seq: facts.rel_seq,
            rel_ack: facts.rel_ack,
            conn: facts.conn,
            events: facts.events,
            window: seg.window,
            flags: seg.flags,
            window_scale: seg.options.window_scale,
            sender: (facts.sender != 0).into(),
            sender_state: facts.sender_state,
            receiver_state: facts.receiver_state,
            if_fins_crossed: facts.if_fins_crossed,
            reveals: facts.reveals,
            idle_rst: facts.idle_rst,
        }
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
            if_fins_crossed: self.if_fins_crossed,
            idle_rst: self.idle_rst,
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
            marks: Default::default(),
            // Rows do not show it (the JSON sink finds a row's tunnel by
            // its connection), so it is not held per row.
            tunnel: None,
            reassembled: false,
        }
    }
}

#[derive(Default)]
struct PendingConn {
    /// Its rows still held.
    held: u32,
    settled: Option<Settled>,
}

/// A connection that left the flow table: its verdict is final.
struct Settled {
    /// In the connection's order (index 0 sent its first segment).
    endpoints: [SocketAddr; 2],
    verdict: ConnVerdict,
}

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

    /// Frame of the first row not yet released.
    pub fn first_held_frame(&self) -> Option<u64> {
        self.rows.front().map(|row| row.frame)
    }

    /// Holds the row of `seg`, which its connection observed as `facts`.
    /// Segments come in frame order.
    pub fn hold(&mut self, seg: &Segment<'_>, facts: &SegmentFacts) {
        let index = (facts.conn - self.first_conn) as usize;
        if index >= self.conns.len() {
            // Ids are handed out in order of first appearance: a new one
            // is always the next.
            self.conns.resize_with(index + 1, PendingConn::default);
        }
        self.conns[index].held += 1;
        self.rows.push_back(PendingRow::of(seg, facts));
    }

    /// `conn` left the flow table with `verdict`: its rows can be made.
    pub fn settle(&mut self, conn: &Connection, verdict: ConnVerdict) {
        let endpoints = [conn.endpoints[0].addr, conn.endpoints[1].addr];
        let Some(index) = conn.id.checked_sub(self.first_conn) else {
            return;
        };
        let Some(entry) = self.conns.get_mut(index as usize) else {
            return;
        };
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
            emit(&Row::new(
                &seg,
                &row.facts().resolved(&settled.verdict, seg.frame),
            ))?;
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
