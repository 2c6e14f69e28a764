//! Rows waiting for hindsight, for the one-pass schedule.
//!
//! A row's calls, its `data-to-closed` event, and (after a simultaneous
//! close) its states depend on how its connection ends. In one pass each
//! row is held here, as its segment's provisional facts, until its
//! connection's verdict is final (the connection left the flow table);
//! rows then leave in frame order, made with
//! [`SegmentFacts::resolved`] as a second pass would make them.
//!
//! Memory holds at most a budget of rows, and the connections with rows
//! in memory: past the budget the oldest rows go to a [`spill`] file,
//! read back as they are released, and the verdicts of connections whose
//! rows are all there go to a verdict file. So one read serves whatever
//! the capture holds, a connection open from the first frame to the last
//! included, and memory stays flat.
//!
//! [`spill`]: crate::pipeline::spill

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::output::rows::Row;
use crate::pipeline::spill::{RowFile, Settled, VerdictFile};
use crate::tracking::connection::{Connection, ResolvedFacts, SegmentFacts};
use crate::tracking::endpoint::TcpState;
use crate::tracking::event::EventSet;
use crate::tracking::inference::ConnVerdict;
use crate::wire::segment::{Segment, TcpFlags, Timestamp};

/// Why held rows could not be released.
#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    /// The rows' destination failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// The temporary files that hold rows beyond the budget failed.
    #[error("cannot hold rows in a temporary file: {0}")]
    Spill(#[source] std::io::Error),
}

/// The rows held, and what each connection needs to release them.
pub struct PendingRows {
    /// Rows in memory, in frame order, after those in `spill`.
    rows: VecDeque<PendingRow>,
    /// Rows in memory at most; past it the oldest go to `spill`.
    budget: usize,
    /// Connections with rows held (in memory, or on file with their
    /// verdict not yet there).
    conns: Conns,
    /// Once the budget was exceeded: the oldest rows, and the verdicts of
    /// the connections whose rows are all there.
    spill: Option<Box<Spill>>,
}

/// Rows and verdicts on file.
struct Spill {
    rows: RowFile<ROW_BYTES>,
    verdicts: VerdictFile,
    /// The connection of the first row on file, found not settled: the
    /// rows on file wait for it (saves a look-up per release).
    waiting_for: Option<u32>,
}

/// A held row: the fields of its segment that a [`Row`] shows (addresses
/// are the connection's) and its [`SegmentFacts`], packed into 64 bytes
/// (was 112, then 80), as up to the budget of them are held in memory and
/// each crosses from the tracking thread to the rows thread
/// ([`ROW_BYTES`] on a spill file). The segment's absolute sequence and
/// acknowledgement numbers, window and window scale are not kept: a row
/// shows the relative numbers (in the facts) and no window.
#[derive(Clone, Copy)]
pub struct PendingRow {
    frame: u64,
    ts_secs: i64,
    /// Frame numbers (from 1), 0 for none.
    related: u64,
    if_receiver_stopped_reading: u64,
    ts_nanos: u32,
    payload_len: u32,
    rel_seq: u32,
    rel_ack: u32,
    conn: u32,
    events: EventSet,
    flags: TcpFlags,
    sender: u8,
    sender_state: TcpState,
    receiver_state: TcpState,
    if_fins_crossed: Option<[TcpState; 2]>,
    reveals: bool,
    idle_rst: bool,
}

/// Bytes of a held row on a spill file.
const ROW_BYTES: usize = 65;

impl PendingRow {
    /// The row of `seg`, which its connection observed as `facts`.
    pub(crate) fn of(seg: &Segment<'_>, facts: &SegmentFacts) -> PendingRow {
        PendingRow {
            frame: seg.frame,
            ts_secs: seg.ts.secs,
            related: facts.related.unwrap_or(0),
            if_receiver_stopped_reading: facts.if_receiver_stopped_reading.unwrap_or(0),
            ts_nanos: seg.ts.nanos,
            payload_len: seg.payload_len,
            rel_seq: facts.rel_seq,
            rel_ack: facts.rel_ack,
            conn: facts.conn,
            events: facts.events,
            flags: seg.flags,
            sender: (facts.sender != 0).into(),
            sender_state: facts.sender_state,
            receiver_state: facts.receiver_state,
            if_fins_crossed: facts.if_fins_crossed,
            reveals: facts.reveals,
            idle_rst: facts.idle_rst,
        }
    }

    fn to_bytes(self) -> [u8; ROW_BYTES] {
        let mut out = [0; ROW_BYTES];
        let words = [
            self.frame,
            self.ts_secs as u64,
            self.related,
            self.if_receiver_stopped_reading,
        ];
        for (i, w) in words.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let halves = [
            self.ts_nanos,
            self.payload_len,
            self.rel_seq,
            self.rel_ack,
            self.conn,
            self.events.bits(),
        ];
        for (i, h) in halves.iter().enumerate() {
            out[32 + i * 4..36 + i * 4].copy_from_slice(&h.to_le_bytes());
        }
        out[56] = self.flags.0;
        out[57] = self.sender;
        out[58] = self.sender_state as u8;
        out[59] = self.receiver_state as u8;
        if let Some([a, b]) = self.if_fins_crossed {
            out[60] = 1;
            out[61] = a as u8;
            out[62] = b as u8;
        }
        out[63] = self.reveals.into();
        out[64] = self.idle_rst.into();
        out
    }

    fn from_bytes(b: &[u8; ROW_BYTES]) -> PendingRow {
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let half =
            |i: usize| u32::from_le_bytes(b[32 + i * 4..36 + i * 4].try_into().expect("4 bytes"));
        let state = |byte: u8| {
            TcpState::ALL
                .get(usize::from(byte))
                .copied()
                .unwrap_or_default()
        };
        PendingRow {
            frame: word(0),
            ts_secs: word(1) as i64,
            related: word(2),
            if_receiver_stopped_reading: word(3),
            ts_nanos: half(0),
            payload_len: half(1),
            rel_seq: half(2),
            rel_ack: half(3),
            conn: half(4),
            events: EventSet::from_bits(half(5)),
            flags: TcpFlags(b[56]),
            sender: b[57],
            sender_state: state(b[58]),
            receiver_state: state(b[59]),
            if_fins_crossed: (b[60] != 0).then(|| [state(b[61]), state(b[62])]),
            reveals: b[63] != 0,
            idle_rst: b[64] != 0,
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

    /// Its row, from the connection's `endpoints` and `verdict`.
    ///
    /// `SegmentFacts::resolved`, with the row made in each branch: a
    /// quiet row's facts (most rows) then go straight into it, and the
    /// other rows' (one in five, the rules applied) are made out of line,
    /// so that the quiet ones do not lay their facts out for the rules.
    fn row(&self, settled: &Settled) -> Row {
        let facts = self.facts();
        let verdict = &settled.verdict;
        if facts.quiet(verdict, self.frame) {
            self.row_of(settled, &facts.resolved_quietly(verdict))
        } else {
            self.row_by_the_rules(settled)
        }
    }

    #[inline(never)]
    fn row_by_the_rules(&self, settled: &Settled) -> Row {
        let resolved = self
            .facts()
            .resolved_by_the_rules(&settled.verdict, self.frame);
        self.row_of(settled, &resolved)
    }

    #[inline(always)]
    fn row_of(&self, settled: &Settled, resolved: &ResolvedFacts) -> Row {
        let sender = usize::from(self.sender);
        let endpoints = settled.endpoints;
        Row::of_fields(
            self.frame,
            Timestamp {
                secs: self.ts_secs,
                nanos: self.ts_nanos,
            },
            [endpoints[sender], endpoints[1 - sender]],
            self.flags,
            self.payload_len,
            resolved,
        )
    }
}

/// A connection with rows held.
#[derive(Default)]
struct PendingConn {
    /// Its rows in memory (older ones may be on file).
    in_memory: u32,
    settled: Option<Settled>,
}

/// Connections by id: a window from `first` on (ids are handed out in
/// order of first appearance, so a new one is always the next: one
/// indexed look-up per row), and, once rows spill and the window is
/// trimmed, the few older connections that still have rows in memory
/// (a connection open for long) in `older`. A connection in neither has
/// its rows on file only, and its verdict, once settled, there too.
#[derive(Default)]
struct Conns {
    window: VecDeque<PendingConn>,
    first: u32,
    older: FxHashMap<u32, PendingConn>,
}

/// Connections the window keeps while rows spill: beyond, the oldest
/// leave it (to `older` or, rows all on file, to the verdict file), so
/// that memory stays flat however many connections come and go behind a
/// long one.
const SPILLING_WINDOW: usize = 4096;

impl Conns {
    /// The verdict of `id`, if settled, with its rows in memory.
    fn settled(&self, id: u32) -> Option<&Settled> {
        let conn = match id.checked_sub(self.first) {
            Some(index) => self.window.get(index as usize),
            None => self.older.get(&id),
        };
        conn?.settled.as_ref()
    }

    #[inline]
    fn get(&mut self, id: u32) -> Option<&mut PendingConn> {
        match id.checked_sub(self.first) {
            Some(index) => self.window.get_mut(index as usize),
            None => self.older.get_mut(&id),
        }
    }

    /// One more row of `id` in memory.
    fn add_row(&mut self, id: u32) {
        let conn = match id.checked_sub(self.first) {
            Some(index) => {
                let index = index as usize;
                if index >= self.window.len() {
                    self.window.resize_with(index + 1, PendingConn::default);
                }
                &mut self.window[index]
            }
            None => self.older.entry(id).or_default(),
        };
        conn.in_memory += 1;
    }

    /// One row of `id` left memory (to the sink or the spill file); an
    /// older connection left with none leaves `older`, handing back its
    /// verdict if settled. Inlined, the older ones out of line: a row's
    /// connection is mostly in the window, and the call returning a
    /// verdict it seldom has cost ~20 instructions a row.
    #[inline]
    fn remove_row(&mut self, id: u32) -> Option<Settled> {
        match id.checked_sub(self.first) {
            Some(index) => {
                self.window[index as usize].in_memory -= 1;
                None
            }
            None => self.remove_older_row(id),
        }
    }

    #[inline(never)]
    fn remove_older_row(&mut self, id: u32) -> Option<Settled> {
        let conn = self.older.get_mut(&id).expect("a held row's connection");
        conn.in_memory -= 1;
        if conn.in_memory > 0 {
            return None;
        }
        self.older.remove(&id).and_then(|conn| conn.settled)
    }

    /// Drops the window's first connections while they are settled with
    /// no row in memory (and, past `keep` connections, whatever they
    /// hold), handing `gone` the verdict of each that may still have rows
    /// on file.
    fn advance(
        &mut self,
        keep: usize,
        mut gone: impl FnMut(u32, Settled) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while let Some(front) = self.window.front() {
            let done = front.in_memory == 0 && front.settled.is_some();
            if !done && self.window.len() <= keep {
                break;
            }
            let front = self.window.pop_front().expect("a front");
            let id = self.first;
            self.first += 1;
            if front.in_memory > 0 {
                self.older.insert(id, front);
            } else if let Some(settled) = front.settled {
                gone(id, settled)?;
            }
        }
        Ok(())
    }
}

impl PendingRows {
    /// Holds up to `budget` rows in memory, the rest on a spill file.
    pub fn new(budget: usize) -> Self {
        PendingRows {
            rows: VecDeque::new(),
            budget,
            conns: Conns::default(),
            spill: None,
        }
    }

    /// Rows held, in memory and on the spill file.
    pub fn len(&self) -> u64 {
        self.rows.len() as u64 + self.spill.as_ref().map_or(0, |s| s.rows.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds the row of `seg`, which its connection observed as `facts`.
    /// Segments come in frame order.
    pub fn hold(&mut self, seg: &Segment<'_>, facts: &SegmentFacts) -> Result<(), HeldError> {
        self.hold_row(PendingRow::of(seg, facts))
    }

    /// Holds a row made by [`PendingRow::of`] (on the tracking thread,
    /// when this runs on a thread of its own). Rows come in frame order.
    pub(crate) fn hold_row(&mut self, row: PendingRow) -> Result<(), HeldError> {
        self.hold_rows(std::slice::from_ref(&row))
    }

    /// Holds rows made by [`PendingRow::of`], in frame order: a batch
    /// from the tracking thread is held in runs (one call and one copy
    /// into the ring a run, not a call per row passing the row by
    /// value), each run ending where one more row would exceed the
    /// budget, so rows spill exactly when [`PendingRows::hold_row`] one
    /// by one would spill them.
    pub(crate) fn hold_rows(&mut self, mut rows: &[PendingRow]) -> Result<(), HeldError> {
        while !rows.is_empty() {
            let room = (self.budget + 1).saturating_sub(self.rows.len()).max(1);
            let (run, rest) = rows.split_at(room.min(rows.len()));
            for row in run {
                self.conns.add_row(row.conn);
            }
            self.rows.extend(run.iter().copied());
            if self.rows.len() > self.budget {
                self.spill_oldest().map_err(HeldError::Spill)?;
            }
            rows = rest;
        }
        Ok(())
    }

    /// Moves the oldest rows in memory to the spill file, down to half the
    /// budget (so that spilling comes in runs), and trims the window of
    /// connections; a settled connection left with no row in memory takes
    /// its verdict to the verdict file.
    fn spill_oldest(&mut self) -> std::io::Result<()> {
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Box::new(Spill {
                rows: RowFile::new()?,
                verdicts: VerdictFile::new(),
                waiting_for: None,
            })),
        };
        while self.rows.len() > self.budget / 2 {
            let Some(row) = self.rows.pop_front() else {
                break;
            };
            spill.rows.push(&row.to_bytes())?;
            if let Some(settled) = self.conns.remove_row(row.conn) {
                spill.verdicts.put(row.conn, settled)?;
            }
        }
        let keep = SPILLING_WINDOW.min(self.budget);
        self.conns
            .advance(keep, |id, settled| spill.verdicts.put(id, settled))
    }

    /// `conn` left the flow table with `verdict`: its rows can be made.
    pub fn settle(&mut self, conn: &Connection, verdict: ConnVerdict) -> Result<(), HeldError> {
        self.settle_id(conn.id, Settled::of(conn, verdict))
    }

    fn settle_id(&mut self, id: u32, settled: Settled) -> Result<(), HeldError> {
        if let Some(spill) = &mut self.spill {
            if spill.waiting_for == Some(id) {
                spill.waiting_for = None;
            }
        }
        match (self.conns.get(id), &mut self.spill) {
            (Some(entry), _) => entry.settled = Some(settled),
            // Every row of it is on file (a connection always has a row
            // held until it is settled).
            (None, Some(spill)) => spill.verdicts.put(id, settled).map_err(HeldError::Spill)?,
            (None, None) => {}
        }
        Ok(())
    }

    /// Every held row, when each one's connection is settled and none is
    /// on file (the end of a capture): rows that can be made in any order,
    /// on any thread ([`SettledRows::row`]). Then [`PendingRows::clear`].
    pub(crate) fn all_settled(&self) -> Option<SettledRows<'_>> {
        if self.spill.is_some() {
            return None;
        }
        // Every row in memory counts in its connection's `in_memory`, so
        // every connection with rows in memory settled is every row's
        // connection settled: a look-up a connection, not a row (the end
        // of the bench capture holds ~30 rows a connection).
        let conns = &self.conns;
        let every = conns
            .window
            .iter()
            .chain(conns.older.values())
            .all(|conn| conn.in_memory == 0 || conn.settled.is_some());
        every.then_some(SettledRows {
            rows: self.rows.as_slices(),
            conns,
        })
    }

    /// Forgets every held row (made through [`PendingRows::all_settled`]).
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
        self.conns = Conns::default();
    }

    /// Makes and hands over, in frame order, every row whose connection
    /// is settled, up to the first that is not.
    pub fn release(
        &mut self,
        mut emit: impl FnMut(&Row) -> std::io::Result<()>,
    ) -> Result<(), HeldError> {
        let mut make = |row: &PendingRow, settled: &Settled| {
            emit(&row.row(settled)).map_err(HeldError::Output)
        };
        if let Some(spill) = &mut self.spill {
            while let Some(bytes) = spill.rows.front().map_err(HeldError::Spill)? {
                let row = PendingRow::from_bytes(bytes);
                if spill.waiting_for == Some(row.conn) {
                    return Ok(());
                }
                let settled = match self.conns.get(row.conn) {
                    Some(entry) => entry.settled,
                    None => spill.verdicts.get(row.conn).map_err(HeldError::Spill)?,
                };
                let Some(settled) = settled else {
                    spill.waiting_for = Some(row.conn);
                    return Ok(());
                };
                make(&row, &settled)?;
                spill.rows.pop();
                if spill.rows.len() == 0 {
                    // No row on file: no verdict there is needed again.
                    spill.verdicts.clear();
                }
            }
        }
        // The ring's two parts walked in place, the rows made dropped
        // together after: taking them off the front one by one
        // (`front`, `pop_front`, each wrapping around the ring) was ~25
        // instructions a row.
        let (older, newer) = self.rows.as_slices();
        let mut released = 0;
        let mut outcome = Ok(());
        for run in [older, newer] {
            let (made, ended) = release_run(run, &mut self.conns, &mut make);
            released += made;
            match ended {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        self.rows.drain(..released);
        outcome?;
        // Connections done with leave the window; those that may still
        // have rows on file take their verdict to the verdict file.
        match &mut self.spill {
            Some(spill) if spill.rows.len() > 0 => self
                .conns
                .advance(usize::MAX, |id, settled| spill.verdicts.put(id, settled))
                .map_err(HeldError::Spill),
            _ => self
                .conns
                .advance(usize::MAX, |_, _| Ok(()))
                .map_err(HeldError::Spill),
        }
    }
}

/// Makes and hands over the rows of `run` (held rows in frame order,
/// none of them on file) while each one's connection is settled,
/// counting each down in its connection; returns how many were made, and
/// whether all were (`Ok(false)`: stopped at a row whose connection is
/// not settled). The connection is looked up once a row
/// ([`Conns::get`]), and its verdict borrowed, not copied (a verdict and its
/// endpoints are larger than the row: a `memcpy` call a row).
#[inline(always)]
fn release_run(
    run: &[PendingRow],
    conns: &mut Conns,
    make: &mut impl FnMut(&PendingRow, &Settled) -> Result<(), HeldError>,
) -> (usize, Result<bool, HeldError>) {
    for (made, row) in run.iter().enumerate() {
        let in_window = row.conn >= conns.first;
        let conn = conns.get(row.conn).expect("a held row's connection");
        let Some(settled) = &conn.settled else {
            return (made, Ok(false));
        };
        if let Err(e) = make(row, settled) {
            return (made, Err(e));
        }
        if in_window {
            conn.in_memory -= 1;
        } else {
            // An older connection left with no row in memory leaves.
            conns.remove_older_row(row.conn);
        }
    }
    (run.len(), Ok(true))
}

/// Held rows whose connections are all settled ([`PendingRows::all_settled`]),
/// in frame order: each can be made on its own.
#[derive(Clone, Copy)]
pub(crate) struct SettledRows<'a> {
    /// The held rows, as the two parts of their ring.
    rows: (&'a [PendingRow], &'a [PendingRow]),
    conns: &'a Conns,
}

impl SettledRows<'_> {
    pub(crate) fn len(&self) -> usize {
        self.rows.0.len() + self.rows.1.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`th row (from 0, in frame order).
    pub(crate) fn row(&self, index: usize) -> Row {
        let row = match index.checked_sub(self.rows.0.len()) {
            None => &self.rows.0[index],
            Some(index) => &self.rows.1[index],
        };
        let settled = self
            .conns
            .settled(row.conn)
            .expect("every connection settled");
        row.row(settled)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn a_held_row_takes_at_most_64_bytes() {
        assert!(std::mem::size_of::<PendingRow>() <= 64);
    }

    /// A connection open from the first row to the last, and thousands
    /// of short ones settling behind it: every row comes out once, in
    /// frame order, while memory holds at most the budget of rows and a
    /// bounded number of connections (the rest wait on the files).
    #[test]
    fn memory_stays_flat_behind_a_connection_open_throughout() {
        const BUDGET: usize = 64;
        let addr: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let settled = Settled {
            endpoints: [addr, addr],
            verdict: ConnVerdict::default(),
        };
        let mut frame = 0;
        let mut row = |conn: u32| {
            frame += 1;
            PendingRow {
                frame,
                ts_secs: 0,
                related: 0,
                if_receiver_stopped_reading: 0,
                ts_nanos: 0,
                payload_len: 0,
                rel_seq: 0,
                rel_ack: 0,
                conn,
                events: EventSet::default(),
                flags: TcpFlags(0x10),
                sender: 0,
                sender_state: TcpState::Established,
                receiver_state: TcpState::Established,
                if_fins_crossed: None,
                reveals: false,
                idle_rst: false,
            }
        };
        let mut held = PendingRows::new(BUDGET);
        let mut out = Vec::new();
        held.hold_row(row(0)).unwrap();
        let mut most_conns = 0;
        for id in 1..20_000u32 {
            held.hold_row(row(id)).unwrap();
            held.hold_row(row(id)).unwrap();
            if id % 10 == 0 {
                held.hold_row(row(0)).unwrap();
            }
            held.settle_id(id, settled).unwrap();
            held.release(|r| {
                out.push(r.frame);
                Ok(())
            })
            .unwrap();
            assert!(held.rows.len() <= BUDGET);
            most_conns = most_conns.max(held.conns.window.len() + held.conns.older.len());
        }
        assert!(
            out.is_empty(),
            "{} rows left before connection 0 settled",
            out.len()
        );
        assert!(
            most_conns <= 3 * BUDGET,
            "{most_conns} connections in memory"
        );
        held.settle_id(0, settled).unwrap();
        held.release(|r| {
            out.push(r.frame);
            Ok(())
        })
        .unwrap();
        assert!(held.is_empty());
        assert_eq!(out, (1..frame + 1).collect::<Vec<u64>>());
    }

    #[test]
    fn a_held_row_survives_its_bytes() {
        let row = PendingRow {
            frame: u64::MAX - 3,
            ts_secs: -5,
            related: 17,
            if_receiver_stopped_reading: 9,
            ts_nanos: 999_999_999,
            payload_len: 3,
            rel_seq: 4,
            rel_ack: 5,
            conn: 6,
            events: EventSet::from_bits(0x8000_0101),
            flags: TcpFlags(0x19),
            sender: 1,
            sender_state: TcpState::FinWait2,
            receiver_state: TcpState::Closed,
            if_fins_crossed: Some([TcpState::Closing, TcpState::TimeWait]),
            reveals: true,
            idle_rst: true,
        };
        let other = PendingRow {
            if_fins_crossed: None,
            reveals: false,
            idle_rst: false,
            sender: 0,
            ..row
        };
        for row in [row, other] {
            let back = PendingRow::from_bytes(&row.to_bytes());
            assert_eq!(back.to_bytes(), row.to_bytes());
            assert_eq!(format!("{:?}", back.facts()), format!("{:?}", row.facts()));
            assert_eq!(back.frame, row.frame);
            assert_eq!(back.ts_secs, row.ts_secs);
            assert_eq!(back.flags, row.flags);
        }
    }
}
