//! Just enough of Zeek's `TCP_Reassembler` to know when it reports a
//! content gap (`AckReceived`, `Undelivered`, `Gap`, `DataSent`): the `g`
//! history letter.

use super::session::ZeekConn;

/// Out-of-order blocks the reassembly model remembers per endpoint.
pub(super) const MAX_PENDING: usize = 4;

/// Just enough of `TCP_Reassembler` to know when Zeek reports a content
/// gap: what was delivered in order, a few blocks above a hole, and how
/// far acknowledgements have trimmed. Sequence numbers are relative (the
/// first data octet is 1).
#[derive(Clone, Copy, Debug)]
pub(super) struct Reassembly {
    pub(super) last_reassem: i64,
    pub(super) trim: i64,
    pub(super) pending: [(i64, i64); MAX_PENDING],
    pub(super) n_pending: u8,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly {
            last_reassem: 1,
            trim: 1,
            pending: [(0, 0); MAX_PENDING],
            n_pending: 0,
        }
    }
}

impl Reassembly {
    /// A block of new data `[seq, upper)` (`Reassembler::NewBlock`).
    pub(super) fn insert(&mut self, mut seq: i64, upper: i64) {
        if upper <= self.trim {
            return;
        }
        seq = seq.max(self.trim);
        if seq <= self.last_reassem {
            if upper > self.last_reassem {
                self.last_reassem = upper;
                self.absorb_pending();
            }
            return;
        }
        // Above a hole: remember it (merging overlaps), or drop it when
        // the table is full, which at worst reports one more gap.
        for block in &mut self.pending[..self.n_pending as usize] {
            if seq <= block.1 && upper >= block.0 {
                *block = (block.0.min(seq), block.1.max(upper));
                return;
            }
        }
        if (self.n_pending as usize) < MAX_PENDING {
            self.pending[self.n_pending as usize] = (seq, upper);
            self.n_pending += 1;
        }
    }

    /// Delivers pending blocks that became contiguous.
    pub(super) fn absorb_pending(&mut self) {
        let mut i = 0;
        while i < self.n_pending as usize {
            let (lo, hi) = self.pending[i];
            if lo <= self.last_reassem {
                self.last_reassem = self.last_reassem.max(hi);
                self.remove_pending(i);
                i = 0;
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn remove_pending(&mut self, i: usize) {
        let n = self.n_pending as usize;
        self.pending[i] = self.pending[n - 1];
        self.n_pending -= 1;
    }

    /// Index of the lowest pending block starting below `up_to`.
    pub(super) fn lowest_below(&self, up_to: i64) -> Option<usize> {
        (0..self.n_pending as usize)
            .filter(|&i| self.pending[i].0 < up_to)
            .min_by_key(|&i| self.pending[i].0)
    }
}

impl ZeekConn {
    /// `TCP_Reassembler::AckReceived` for endpoint `e`'s data.
    pub(super) fn ack_received(&mut self, e: usize, rel_ack: i64) {
        let mut seq = rel_ack;
        let ep = &self.ep[e];
        if ep.fin_cnt > 0 && seq >= ep.fin_seq {
            seq = ep.fin_seq - 1;
        }
        if seq <= ep.reasm.trim {
            return;
        }
        if seq > ep.reasm.last_reassem {
            self.undelivered(e, seq);
        }
        let r = &mut self.ep[e].reasm;
        r.trim = seq;
        let mut i = 0;
        while i < r.n_pending as usize {
            if r.pending[i].1 <= seq {
                r.remove_pending(i);
            } else {
                i += 1;
            }
        }
    }

    /// `TCP_Reassembler::Undelivered`: the peer acknowledged data up to
    /// `up_to` that never arrived here; every hole is a content gap.
    pub(super) fn undelivered(&mut self, e: usize, up_to: i64) {
        if up_to <= 2 && self.partial {
            return;
        }
        while let Some(i) = self.ep[e].reasm.lowest_below(up_to) {
            let r = &mut self.ep[e].reasm;
            let (lo, hi) = r.pending[i];
            r.remove_pending(i);
            let hole = lo - r.last_reassem;
            r.last_reassem = r.last_reassem.max(hi);
            r.absorb_pending();
            if hole > 0 {
                self.gap(e, hole);
            }
        }
        let hole = up_to - self.ep[e].reasm.last_reassem;
        if hole > 0 {
            self.gap(e, hole);
            self.ep[e].reasm.last_reassem = up_to;
        }
    }

    /// `TCP_Reassembler::Gap` of `len` octets: only written (the `g`
    /// letter) and reported (`content_gap`, which conn.log's
    /// `missed_bytes` adds up) while both sides are cleanly established
    /// or closing.
    pub(super) fn gap(&mut self, e: usize, len: i64) {
        if self.ep[e].is_clean() && self.ep[1 - e].is_clean() {
            self.ep[e].missed += u64::try_from(len).unwrap_or(0);
            if self.ep[e].gap.bump() {
                self.add(e, b'G');
            }
        }
    }

    /// `TCP_Reassembler::DataSent` for `len` octets at relative `seq`.
    pub(super) fn data_sent(&mut self, p: usize, seq: i64, len: u32) {
        let e = &mut self.ep[p];
        let acked = e.rel(e.ack_seq);
        let upper = seq + i64::from(len);
        if seq < acked && upper <= acked {
            return;
        }
        e.reasm.insert(seq.max(acked), upper);
    }
}
