//! Zeek's history letters (`Connection::CheckHistory`,
//! `ScaledHistoryEntry`, `update_history`): stored with their sender,
//! cased by role when rendered.

use super::session::ZeekConn;
use crate::wire::segment::Segment;

/// `Connection::ScaledHistoryEntry`: true at the 1st, 10th, 100th… event.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scaled {
    pub(super) count: u32,
    pub(super) threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled {
            count: 0,
            threshold: 1,
        }
    }
}

impl Scaled {
    pub(super) fn bump(&mut self) -> bool {
        self.count += 1;
        if self.count != self.threshold {
            return false;
        }
        match self.threshold.checked_mul(10) {
            Some(next) => self.threshold = next,
            None => self.count = 0,
        }
        true
    }
}

// `CheckHistory` masks (TCP_Endpoint.h); the responder's are shifted by 16.
pub(super) const HIST_SYN: u32 = 0x1;
pub(super) const HIST_FIN: u32 = 0x2;
pub(super) const HIST_RST: u32 = 0x4;
pub(super) const HIST_FIN_RST: u32 = 0x8;
pub(super) const HIST_DATA: u32 = 0x10;
pub(super) const HIST_ACK: u32 = 0x20;
pub(super) const HIST_MULTI: u32 = 0x40;

/// `X`, `HIST_ANALYZER_LIMIT_REACHED`: the connection's, not an
/// endpoint's; always upper case.
pub(super) const LIMIT_REACHED: u8 = b'X';

/// Marks a stored letter as sent by the connection's first sender.
pub(super) const FIRST_SENDER: u8 = 0x80;
pub(super) const INLINE_LETTERS: usize = 32;

/// History letters in order, each the upper-case letter plus
/// [`FIRST_SENDER`] when endpoint 0 sent it; case is decided when the
/// string is rendered, once the final roles are known.
#[derive(Clone, Debug)]
pub(super) struct Letters {
    pub(super) inline: [u8; INLINE_LETTERS],
    pub(super) len: u8,
    /// Only used past [`INLINE_LETTERS`] letters (rare: repeats of S/H/F/R
    /// with new sequence numbers, or 10^n retransmissions).
    pub(super) spill: Vec<u8>,
}

impl Default for Letters {
    fn default() -> Self {
        Letters {
            inline: [0; INLINE_LETTERS],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl Letters {
    pub(super) fn push(&mut self, letter: u8) {
        if (self.len as usize) < INLINE_LETTERS {
            self.inline[self.len as usize] = letter;
            self.len += 1;
        } else {
            self.spill.push(letter);
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.inline[..self.len as usize]
            .iter()
            .chain(self.spill.iter())
            .copied()
    }
}

impl ZeekConn {
    /// Zeek's history string.
    pub fn history(&self) -> String {
        let mut out = String::with_capacity(self.flips as usize + self.letters.len as usize);
        for _ in 0..self.flips {
            out.push('^');
        }
        out.extend(self.letters.iter().map(|l| self.render(l) as char));
        out
    }

    /// A stored letter in the case its sender's final role gives it.
    pub(super) fn render(&self, letter: u8) -> u8 {
        let sender = usize::from(letter & FIRST_SENDER == 0);
        let upper = letter & !FIRST_SENDER;
        if sender == self.orig as usize || letter == LIMIT_REACHED {
            upper
        } else {
            upper.to_ascii_lowercase()
        }
    }

    /// conn_state's `/\^?S[^HAFGIQ]*R.*/ == history`, without allocating.
    pub(super) fn history_is_syn_then_rst(&self) -> bool {
        if self.flips > 1 {
            return false;
        }
        let mut letters = self.letters.iter().map(|l| self.render(l));
        if letters.next() != Some(b'S') {
            return false;
        }
        for l in letters {
            match l {
                b'R' => return true,
                b'H' | b'A' | b'F' | b'G' | b'I' | b'Q' => return false,
                _ => {}
            }
        }
        false
    }

    pub(super) fn add(&mut self, p: usize, upper: u8) {
        let mark = if p == 0 { FIRST_SENDER } else { 0 };
        self.letters.push(upper | mark);
    }

    /// `Connection::CheckHistory`: adds the letter the first time; true
    /// when it had been seen before.
    pub(super) fn check_history(&mut self, p: usize, is_orig: bool, mask: u32, upper: u8) -> bool {
        let mask = if is_orig { mask } else { mask << 16 };
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.add(p, upper);
            false
        } else {
            true
        }
    }

    pub(super) fn update_history(
        &mut self,
        p: usize,
        is_orig: bool,
        seg: &Segment<'_>,
        rel_seq: i64,
    ) {
        let f = seg.flags;
        let len = seg.payload_len;
        let bits = u8::from(f.syn()) + u8::from(f.fin()) + u8::from(f.rst());
        if bits > 1 {
            if f.fin() && f.rst() {
                self.check_history(p, is_orig, HIST_FIN_RST, b'I');
            } else {
                self.check_history(p, is_orig, HIST_MULTI, b'Q');
            }
        } else if bits == 1 {
            if f.syn() {
                let code = if f.ack() { b'H' } else { b'S' };
                if self.check_history(p, is_orig, HIST_SYN, code)
                    && rel_seq != self.ep[p].hist_last_syn
                {
                    self.add(p, code);
                }
                self.ep[p].hist_last_syn = rel_seq;
            }
            if f.fin() {
                // A FIN's position is after the data it carries.
                let at = rel_seq + i64::from(len);
                if self.check_history(p, is_orig, HIST_FIN, b'F') && at != self.ep[p].hist_last_fin
                {
                    self.add(p, b'F');
                }
                self.ep[p].hist_last_fin = at;
            }
            if f.rst() {
                if self.check_history(p, is_orig, HIST_RST, b'R')
                    && rel_seq != self.ep[p].hist_last_rst
                {
                    self.add(p, b'R');
                }
                self.ep[p].hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            self.check_history(p, is_orig, HIST_DATA, b'D');
        } else if f.ack() {
            self.check_history(p, is_orig, HIST_ACK, b'A');
        }
    }
}
