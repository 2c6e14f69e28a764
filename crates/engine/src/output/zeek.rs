//! Zeek-compatible connection verdicts: `conn_state` and `history` as
//! Zeek's conn.log would report them, so users can join our output with
//! their Zeek logs.
//!
//! This is an independent Rust model of Zeek's TCP bookkeeping, written
//! from reading these Zeek sources (BSD licence; no code copied):
//!
//! - `src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc`: `Process`,
//!   `init_endpoint`, `init_peer`, `update_history`, `update_window`,
//!   `update_ack_seq`, `update_last_seq` and the `Update*State` endpoint
//!   state machine;
//! - `src/packet_analysis/protocol/tcp/TCP.cc` / `ip/IPBasedAnalyzer.cc`:
//!   `WantConnection` (role flip by `likely_server_ports`), `NewConn`;
//! - `src/analyzer/protocol/tcp/TCP_Endpoint.cc`: `Size`, `DidRxmit`,
//!   `ZeroWindow`, `Gap`, `CheckHistory`;
//! - `src/analyzer/protocol/tcp/TCP_Reassembler.cc`: `AckReceived`,
//!   `Undelivered`, `Gap` (when a content gap is written to the history);
//! - `src/Conn.cc` / `Session.h`: `CheckHistory`, `ScaledHistoryEntry`
//!   (letters `c g t w` logged again at 10, 100, … events), `FlipRoles`;
//! - `scripts/base/protocols/conn/main.zeek`: the `conn_state` function;
//! - zeek/zeek pull request #2191: a connection that starts with a SYN-ACK
//!   is flipped once an ACK or data segment follows it;
//! - connection expiry: `TCPSessionAdapter`'s `AttemptTimer`,
//!   `PartialCloseTimer`, `ExpireTimer`, `ResetTimer`, `ConnDeleteTimer`
//!   and `ConnectionClosed`, `session/Session.cc`'s `InactivityTimer`,
//!   `Timer.cc`'s `DoAdvance` (a timer due at or before a packet's time
//!   fires first), with the defaults of `scripts/base/init-bare.zeek`.
//!
//! Deliberate differences are listed in `docs/zeek.md`: we behave like
//! `zeek -C` (bad checksums are ignored, so no `c` letters), a flip is
//! always written as a leading `^` with the earlier letters re-cased for
//! the new roles. One tcpshut connection can span several Zeek
//! connections: [`ZeekTracker`] ends a Zeek connection where Zeek's timers
//! would have removed it, without changing how the engine delimits its
//! own connections.
//!
//! Per-segment work is a handful of integer updates; letters go into an
//! inline buffer, so observing a segment never allocates (a Zeek split
//! allocates its finished row).

use crate::segment::Segment;
use crate::seq::seq_diff;

/// Zeek's `TCP_ENDPOINT_*` states (init-bare.zeek numbers them 0 to 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// `Connection::ScaledHistoryEntry`: true at the 1st, 10th, 100th… event.
#[derive(Clone, Copy, Debug)]
struct Scaled {
    count: u32,
    threshold: u32,
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
    fn bump(&mut self) -> bool {
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

/// Out-of-order blocks the reassembly model remembers per endpoint.
const MAX_PENDING: usize = 4;

/// Just enough of `TCP_Reassembler` to know when Zeek reports a content
/// gap: what was delivered in order, a few blocks above a hole, and how
/// far acknowledgements have trimmed. Sequence numbers are relative (the
/// first data octet is 1).
#[derive(Clone, Copy, Debug)]
struct Reassembly {
    last_reassem: i64,
    trim: i64,
    pending: [(i64, i64); MAX_PENDING],
    n_pending: u8,
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
    fn insert(&mut self, mut seq: i64, upper: i64) {
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
    fn absorb_pending(&mut self) {
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

    fn remove_pending(&mut self, i: usize) {
        let n = self.n_pending as usize;
        self.pending[i] = self.pending[n - 1];
        self.n_pending -= 1;
    }

    /// Index of the lowest pending block starting below `up_to`.
    fn lowest_below(&self, up_to: i64) -> Option<usize> {
        (0..self.n_pending as usize)
            .filter(|&i| self.pending[i].0 < up_to)
            .min_by_key(|&i| self.pending[i].0)
    }
}

/// One endpoint as Zeek's `TCP_Endpoint` sees it.
#[derive(Clone, Copy, Debug, Default)]
struct Endpoint {
    state: State,
    prev_state: State,
    start_seq: u32,
    last_seq: u32,
    /// Highest ACK the peer sent for this endpoint's data.
    ack_seq: u32,
    fin_cnt: u32,
    /// Relative sequence number just past the FIN.
    fin_seq: i64,
    hist_last_syn: i64,
    hist_last_fin: i64,
    hist_last_rst: i64,
    rxmt: Scaled,
    win0: Scaled,
    gap: Scaled,
    reasm: Reassembly,
}

impl Endpoint {
    fn set_state(&mut self, new: State) {
        if new != self.state {
            self.prev_state = self.state;
            self.state = new;
        }
    }

    fn init_seq(&mut self, start: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    fn rel(&self, seq: u32) -> i64 {
        i64::from(seq_diff(seq, self.start_seq))
    }

    /// `TCP_Endpoint::NoDataAcked`.
    fn no_data_acked(&self) -> bool {
        self.ack_seq == self.start_seq || self.ack_seq == self.start_seq.wrapping_add(1)
    }

    /// `TCP_Endpoint::IsClean` as the reassembler uses it for gaps.
    fn is_clean(&self) -> bool {
        self.state == State::Established
            || (self.state == State::Closed && self.prev_state == State::Established)
    }
}

// `CheckHistory` masks (TCP_Endpoint.h); the responder's are shifted by 16.
const HIST_SYN: u32 = 0x1;
const HIST_FIN: u32 = 0x2;
const HIST_RST: u32 = 0x4;
const HIST_FIN_RST: u32 = 0x8;
const HIST_DATA: u32 = 0x10;
const HIST_ACK: u32 = 0x20;
const HIST_MULTI: u32 = 0x40;

/// Marks a stored letter as sent by the connection's first sender.
const FIRST_SENDER: u8 = 0x80;
const INLINE_LETTERS: usize = 32;

/// History letters in order, each the upper-case letter plus
/// [`FIRST_SENDER`] when endpoint 0 sent it; case is decided when the
/// string is rendered, once the final roles are known.
#[derive(Clone, Debug)]
struct Letters {
    inline: [u8; INLINE_LETTERS],
    len: u8,
    /// Only used past [`INLINE_LETTERS`] letters (rare: repeats of S/H/F/R
    /// with new sequence numbers, or 10^n retransmissions).
    spill: Vec<u8>,
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
    fn push(&mut self, letter: u8) {
        if (self.len as usize) < INLINE_LETTERS {
            self.inline[self.len as usize] = letter;
            self.len += 1;
        } else {
            self.spill.push(letter);
        }
    }

    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.inline[..self.len as usize]
            .iter()
            .chain(self.spill.iter())
            .copied()
    }
}

const SEC: i64 = 1_000_000_000;
/// Largest capture time (ns) the timers work with: far beyond any real
/// capture (year 2146), far enough below i64::MAX for their sums.
const MAX_TS: i64 = i64::MAX / 2;
// Zeek's defaults (`scripts/base/init-bare.zeek`), in nanoseconds.
/// `tcp_SYN_timeout`: the first ExpireTimer, after the first packet.
const TCP_SYN_TIMEOUT: i64 = 5 * SEC;
/// `tcp_session_timer`: ExpireTimer's period.
const TCP_SESSION_TIMER: i64 = 6 * SEC;
/// `tcp_connection_linger`: ExpireTimer's idle threshold.
const TCP_CONNECTION_LINGER: i64 = 5 * SEC;
/// `tcp_attempt_delay`: AttemptTimer, after the originator's SYN.
const TCP_ATTEMPT_DELAY: i64 = 5 * SEC;
/// `tcp_close_delay`: ConnDeleteTimer, after a complete close.
const TCP_CLOSE_DELAY: i64 = 5 * SEC;
/// `tcp_reset_delay`: ResetTimer, after a RST from a closed endpoint.
const TCP_RESET_DELAY: i64 = 5 * SEC;
/// `tcp_partial_close_delay`: PartialCloseTimer.
const TCP_PARTIAL_CLOSE_DELAY: i64 = 3 * SEC;
/// `tcp_inactivity_timeout`: Session::InactivityTimer.
const TCP_INACTIVITY_TIMEOUT: i64 = 300 * SEC;
/// Zeek only schedules PartialCloseTimer and ResetTimer when a script
/// handles `connection_partial_close` / `connection_reset`; we assume a
/// run that loads scripts handling both.
const PARTIAL_CLOSE_TIMER: bool = true;
const RESET_TIMER: bool = true;
/// A timer that is not scheduled.
const NEVER: i64 = i64::MAX;

/// The timers that end a Zeek connection (`TCPSessionAdapter`'s
/// `AttemptTimer`, `PartialCloseTimer`, `ExpireTimer`, `ResetTimer`,
/// `ConnDeleteTimer`, and the session's `InactivityTimer`), as due times
/// in capture nanoseconds, [`NEVER`] when not scheduled.
#[derive(Clone, Copy, Debug)]
struct Timers {
    /// `Connection::LastTime`.
    last_time: i64,
    /// `TCP_Endpoint::did_close`, by physical endpoint.
    did_close: [bool; 2],
    /// `TCPSessionAdapter::is_active`.
    active: bool,
    attempt: i64,
    partial_close: i64,
    /// Up to two ExpireTimer chains: the one started with the
    /// connection, and one started by a half close.
    expire: [i64; 2],
    reset: i64,
    delete: i64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            last_time: 0,
            did_close: [false; 2],
            active: true,
            attempt: NEVER,
            partial_close: NEVER,
            expire: [NEVER; 2],
            reset: NEVER,
            delete: NEVER,
        }
    }
}

impl Timers {
    /// A connection whose first packet came at `now`.
    fn new(now: i64) -> Self {
        Timers {
            last_time: now,
            expire: [now + TCP_SYN_TIMEOUT, NEVER],
            ..Timers::default()
        }
    }

    /// `t` with every analyzer timer cancelled.
    fn idle(t: &Timers) -> Self {
        Timers {
            last_time: t.last_time,
            did_close: t.did_close,
            active: t.active,
            ..Timers::default()
        }
    }
}

/// Ports Zeek treats as likely servers when a connection starts without a
/// SYN (`likely_server_ports`, filled by the analyzers a default `zeek`
/// run loads). This is our approximation of that table.
fn likely_server_port(port: u16) -> bool {
    matches!(
        port,
        21 | 22
            | 23
            | 25
            | 53
            | 80
            | 81
            | 88
            | 110
            | 111
            | 113
            | 135
            | 139
            | 143
            | 389
            | 443
            | 445
            | 465
            | 502
            | 563
            | 585
            | 587
            | 614
            | 631
            | 636
            | 989
            | 990
            | 992
            | 993
            | 995
            | 1080
            | 1883
            | 2049
            | 3128
            | 3268
            | 3306
            | 3389
            | 5222
            | 5223
            | 5269
            | 5432
            | 6379
            | 6666..=6669 | 8000 | 8080 | 8888 | 20000
    )
}

/// One connection as Zeek's conn.log would show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ZeekRow {
    pub conn_state: &'static str,
    pub history: String,
    /// Frame of the Zeek connection's first packet.
    pub first_frame: u64,
}

/// Follows one tcpshut connection through Zeek's eyes. Zeek removes a
/// connection on timers (see [`Timers`]) and makes a new one from the
/// next packet on the same 4-tuple, so one tcpshut connection can span
/// several Zeek connections. The tracker models the current one and
/// keeps the finished ones as [`ZeekRow`]s, allocated only when Zeek
/// would have split.
#[derive(Clone, Debug, Default)]
pub struct ZeekTracker {
    cur: ZeekConn,
    /// The current Zeek connection's first sender is the tcpshut
    /// connection's second endpoint.
    cur_swapped: bool,
    cur_first_frame: u64,
    /// Network time: the latest capture time seen (it never goes back).
    clock: i64,
    /// Zeek connections that ended before `cur`, in order.
    earlier: Vec<ZeekRow>,
}

impl ZeekTracker {
    /// Observes one segment; `from_first_sender` is true when it was sent
    /// by the endpoint that sent the tcpshut connection's first segment.
    #[inline]
    pub fn observe(&mut self, seg: &Segment<'_>, from_first_sender: bool) {
        // Clamped so that the timer sums below (now + a few minutes) cannot
        // overflow on corrupt timestamps (found by tests/mangled.rs).
        let ts = seg
            .ts
            .secs
            .saturating_mul(SEC)
            .saturating_add(i64::from(seg.ts.nanos))
            .clamp(-MAX_TS, MAX_TS);
        self.clock = self.clock.max(ts);
        if self.cur.started && self.cur.expired_by(self.clock) {
            self.split(!from_first_sender);
        }
        if !self.cur.started {
            self.cur_first_frame = seg.frame;
        }
        self.cur
            .observe(seg, from_first_sender != self.cur_swapped, ts);
    }

    /// Zeek removed the current connection; the next one starts with a
    /// segment from the tcpshut connection's second endpoint if `swapped`.
    #[cold]
    fn split(&mut self, swapped: bool) {
        let done = std::mem::take(&mut self.cur);
        self.earlier.push(done.row(self.cur_first_frame));
        self.cur_swapped = swapped;
    }

    /// conn_state of the first Zeek connection.
    pub fn conn_state(&self) -> &'static str {
        match self.earlier.first() {
            Some(row) => row.conn_state,
            None => self.cur.conn_state(),
        }
    }

    /// History of the first Zeek connection.
    pub fn history(&self) -> String {
        match self.earlier.first() {
            Some(row) => row.history.clone(),
            None => self.cur.history(),
        }
    }

    /// Every Zeek connection this tcpshut connection spans, in order
    /// (one, unless Zeek's timers split it).
    pub fn rows(&self) -> Vec<ZeekRow> {
        let mut rows = self.earlier.clone();
        if self.cur.started || rows.is_empty() {
            rows.push(self.cur.row(self.cur_first_frame));
        }
        rows
    }
}

/// Accumulates what Zeek needs to know about one Zeek connection.
///
/// Endpoints are indexed physically: 0 sent the connection's first
/// segment. `orig` says which of them Zeek calls the originator.
#[derive(Clone, Debug, Default)]
struct ZeekConn {
    ep: [Endpoint; 2],
    orig: u8,
    flips: u8,
    started: bool,
    /// `TCPSessionAdapter::is_partial`.
    partial: bool,
    /// `first_packet_seen`, one bit per physical endpoint.
    first_seen: u8,
    /// `Connection::hist_seen`, by role (responder bits shifted by 16).
    hist_seen: u32,
    letters: Letters,
    timers: Timers,
}

impl ZeekConn {
    /// Observes one segment at capture time `now` (nanoseconds);
    /// `from_first_sender` is true when it was sent by the endpoint that
    /// sent this Zeek connection's first segment.
    fn observe(&mut self, seg: &Segment<'_>, from_first_sender: bool, now: i64) {
        let p = usize::from(!from_first_sender);
        let q = 1 - p;
        let f = seg.flags;
        let (syn, ack, fin, rst) = (f.syn(), f.ack(), f.fin(), f.rst());
        let len = seg.payload_len;

        if !self.started {
            self.started = true;
            self.timers = Timers::new(now);
            self.want_connection(seg);
        } else if self.flips == 0
            && self.ep[self.orig as usize].state == State::SynAckSent
            && self.ep[1 - self.orig as usize].state == State::Inactive
            && !syn
            && !fin
            && !rst
            && (ack || len > 0)
        {
            // Pull request #2191: a SYN-ACK followed by an ACK or data was
            // a reply to a SYN we missed, not a stealth scan. Its sender
            // becomes the responder, established as if we had seen the SYN.
            let synack_sender = self.orig as usize;
            self.flip_roles();
            self.ep[synack_sender].set_state(State::Established);
        }
        let is_orig = p == self.orig as usize;
        self.set_partial_status(p, is_orig, syn, ack);

        // TCPSessionAdapter::Process, in Zeek's order.
        let seg_len = if rst { 0 } else { len } + u32::from(syn) + u32::from(fin);
        let seq_past = seg.seq.wrapping_add(seg_len);
        self.init_endpoint(p, syn, seg.seq, seq_past);
        let rel_seq = self.ep[p].rel(seg.seq);
        let underflow = rel_seq < 0;
        self.update_history(p, is_orig, seg, rel_seq);

        // update_window: only the zero-window part matters here.
        if seg.window == 0
            && !rst
            && self.ep[q].state != State::Closed
            && self.ep[p].state != State::Reset
            && self.ep[p].win0.bump()
        {
            self.add(p, b'W');
        }
        if fin {
            let e = &mut self.ep[p];
            e.fin_cnt += 1;
            e.fin_seq = rel_seq + i64::from(seg_len);
        }

        let mut rel_ack = 0;
        if ack {
            if self.ep[q].state == State::Inactive {
                // init_peer: number the peer as if we had seen its SYN.
                rel_ack = 1;
                let base = seg.ack.wrapping_sub(1);
                self.ep[q].init_seq(base, base);
            } else {
                let d = self.ep[q].rel(seg.ack);
                if d >= 0 {
                    rel_ack = d;
                    if !rst {
                        // update_ack_seq
                        let peer = &mut self.ep[q];
                        let delta = seq_diff(seg.ack, peer.ack_seq);
                        if !(seg.ack == 0 && delta > TOO_LARGE_SEQ_DELTA) && delta > 0 {
                            peer.ack_seq = seg.ack;
                        }
                    }
                }
            }
        }

        // Conn()->SetLastTime, unless both sides have already closed.
        if !(self.timers.did_close[0] && self.timers.did_close[1]) {
            self.timers.last_time = now;
        }

        let delta_last = self.update_last_seq(p, seq_past, syn, fin, rst, len);
        let close = self.update_state_machine(p, is_orig, seg, delta_last, now);

        if ack {
            self.ack_received(q, rel_ack);
        }
        // DataSent, when the whole payload was captured (Zeek skips
        // truncated payloads, which later shows as a gap).
        if len > 0 && !rst && !underflow && seg.payload.len() as u64 >= u64::from(len) {
            self.data_sent(p, rel_seq + i64::from(syn), len);
        }
        self.first_seen |= 1 << p;
        if let Some(gen_event) = close {
            self.connection_closed(p, gen_event);
        }
    }

    /// Zeek's conn_state (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0,
    /// RSTRH, SH, SHR, OTH).
    pub fn conn_state(&self) -> &'static str {
        use State::*;
        let o = self.orig as usize;
        let (os, rs) = (self.ep[o].state, self.ep[1 - o].state);
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent)
                || (os == Reset && self.size(o) == 0 && self.size(1 - o) == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if !r_inactive {
                "RSTO"
            } else if self.history_is_syn_then_rst() {
                "RSTOS0"
            } else {
                "OTH"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if r_inactive {
                "SH"
            } else {
                "S2"
            }
        } else if rs == Closed {
            if o_inactive {
                "SHR"
            } else {
                "S3"
            }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }

    fn row(&self, first_frame: u64) -> ZeekRow {
        ZeekRow {
            conn_state: self.conn_state(),
            history: self.history(),
            first_frame,
        }
    }

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
    fn render(&self, letter: u8) -> u8 {
        let sender = usize::from(letter & FIRST_SENDER == 0);
        let upper = letter & !FIRST_SENDER;
        if sender == self.orig as usize {
            upper
        } else {
            upper.to_ascii_lowercase()
        }
    }

    /// conn_state's `/\^?S[^HAFGIQ]*R.*/ == history`, without allocating.
    fn history_is_syn_then_rst(&self) -> bool {
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

    fn add(&mut self, p: usize, upper: u8) {
        let mark = if p == 0 { FIRST_SENDER } else { 0 };
        self.letters.push(upper | mark);
    }

    /// `Connection::CheckHistory`: adds the letter the first time; true
    /// when it had been seen before.
    fn check_history(&mut self, p: usize, is_orig: bool, mask: u32, upper: u8) -> bool {
        let mask = if is_orig { mask } else { mask << 16 };
        if self.hist_seen & mask == 0 {
            self.hist_seen |= mask;
            self.add(p, upper);
            false
        } else {
            true
        }
    }

    /// `Connection::FlipRoles`: swaps originator and responder. The `^`
    /// is rendered in front, letters re-cased for the new roles.
    fn flip_roles(&mut self) {
        self.orig = 1 - self.orig;
        self.flips = self.flips.saturating_add(1);
        self.partial = false;
    }

    /// `WantConnection` at the first packet: a connection that does not
    /// start with a plain SYN is flipped when its source port looks like
    /// a server's.
    fn want_connection(&mut self, seg: &Segment<'_>) {
        let f = seg.flags;
        if f.syn() && !f.ack() {
            return;
        }
        let (src, dst) = (seg.src.port(), seg.dst.port());
        if !likely_server_port(src) {
            return;
        }
        let flip = if likely_server_port(dst) {
            !f.syn() && src < dst
        } else {
            true
        };
        if flip {
            self.flip_roles();
        }
    }

    fn set_partial_status(&mut self, p: usize, is_orig: bool, syn: bool, ack: bool) {
        if self.first_seen & (1 << p) != 0 {
            return;
        }
        if is_orig {
            self.partial = !syn || ack;
        } else if !self.partial {
            self.partial = !syn;
        }
    }

    fn init_endpoint(&mut self, p: usize, syn: bool, seq: u32, seq_past: u32) {
        let e = &mut self.ep[p];
        match e.state {
            State::Inactive => {
                if syn {
                    e.init_seq(seq, seq_past);
                } else {
                    // Partial: number as though a SYN preceded, and do not
                    // let the first packet count as a retransmission.
                    e.init_seq(seq.wrapping_sub(1), seq);
                }
            }
            State::SynSent | State::SynAckSent => {
                if syn && seq != e.start_seq {
                    e.init_seq(seq, seq_past);
                }
            }
            State::Established | State::Partial => {
                if syn {
                    e.init_seq(seq, seq_past);
                }
            }
            State::Reset => {
                if syn && e.prev_state == State::Inactive {
                    e.init_seq(seq, seq_past);
                }
            }
            State::Closed => {}
        }
    }

    fn update_history(&mut self, p: usize, is_orig: bool, seg: &Segment<'_>, rel_seq: i64) {
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

    /// `update_last_seq`; a payload that does not advance the endpoint's
    /// highest sequence number is a retransmission (`t`/`T`).
    fn update_last_seq(
        &mut self,
        p: usize,
        seq_past: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        len: u32,
    ) -> i32 {
        let e = &mut self.ep[p];
        let delta = seq_diff(seq_past, e.last_seq);
        if (syn || rst) && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta) {
            // Outlandish SYN/RST sequence numbers are not trusted.
        } else if fin && e.last_seq == e.start_seq.wrapping_add(1) {
            e.last_seq = seq_past;
        } else if e.state == State::Reset {
            // Nothing after a RST is trusted.
        } else if delta > 0 {
            e.last_seq = seq_past;
        } else if len > 0 && e.rxmt.bump() {
            self.add(p, b'T');
        }
        delta
    }

    /// `UpdateStateMachine` and the `Update*State` functions it calls.
    /// Returns `Some(gen_event)` when Zeek's `do_close` is set, that is
    /// when `ConnectionClosed` must run once the segment is processed.
    fn update_state_machine(
        &mut self,
        p: usize,
        is_orig: bool,
        seg: &Segment<'_>,
        delta_last: i32,
        now: i64,
    ) -> Option<bool> {
        let q = 1 - p;
        let f = seg.flags;
        let (syn, ack, fin, rst) = (f.syn(), f.ack(), f.fin(), f.rst());
        let _ = delta_last; // only feeds Zeek weirds
        let mut close = None;
        match self.ep[p].state {
            State::Inactive => {
                if syn {
                    if is_orig {
                        let next = if ack {
                            State::SynAckSent
                        } else {
                            State::SynSent
                        };
                        self.ep[p].set_state(next);
                        let t = &mut self.timers;
                        t.attempt = t.attempt.min(now + TCP_ATTEMPT_DELAY);
                    } else {
                        if !ack
                            && self.ep[q].state == State::SynAckSent
                            && seg.seq == self.ep[p].start_seq
                        {
                            // SYN/SYN-ACK reversal: the SYN-ACK came first.
                            self.flip_roles();
                            self.ep[q].set_state(State::Established);
                            self.first_seen |= 1 << p;
                        }
                        if self.ep[q].state == State::SynSent {
                            self.ep[q].set_state(State::Established);
                        }
                        self.ep[p].set_state(State::Established);
                    }
                }
                if fin {
                    self.ep[p].set_state(State::Closed);
                    close = Some(true);
                }
                if rst {
                    self.ep[p].set_state(State::Reset);
                    let peer = self.ep[q].state;
                    let is_reject = if is_orig {
                        peer == State::Established
                    } else {
                        matches!(peer, State::SynSent | State::SynAckSent)
                    };
                    close = Some(!is_reject);
                }
                if self.ep[p].state == State::Inactive {
                    let orig_state = self.ep[self.orig as usize].state;
                    if !is_orig && seg.payload_len == 0 && orig_state == State::SynSent {
                        // An ACK of the SYN before the SYN-ACK: not partial.
                    } else if ack && self.ep[q].state == State::Established {
                        // SYN-ACK seen, SYN missed, now the ACK.
                        self.ep[p].set_state(State::Established);
                        self.partial = false;
                        self.first_seen |= 1 << p;
                    } else {
                        self.ep[p].set_state(State::Partial);
                    }
                }
            }
            State::SynSent | State::SynAckSent => {
                if fin {
                    self.ep[p].set_state(State::Closed);
                    close = Some(true);
                }
                if rst {
                    self.ep[p].set_state(State::Reset);
                    self.timers.active = false; // ConnectionReset
                    close = Some(fin);
                }
            }
            State::Established | State::Partial => {
                if syn
                    && self.ep[p].state == State::Partial
                    && self.ep[q].state == State::Inactive
                    && !ack
                {
                    self.ep[p].set_state(State::SynSent);
                }
                if fin && !rst {
                    self.ep[p].set_state(State::Closed);
                    let peer = &mut self.ep[q];
                    if peer.state == State::Reset && peer.prev_state == State::Closed {
                        // FIN then RST from the peer was a normal close.
                        peer.set_state(State::Closed);
                    }
                    close = Some(true);
                }
                if rst {
                    self.ep[p].set_state(State::Reset);
                    close = Some(false);
                    let peer = &self.ep[q];
                    if peer.state != State::Reset || peer.prev_state != State::Established {
                        self.timers.active = false; // ConnectionReset
                    }
                }
            }
            State::Closed => {
                if rst && self.ep[q].state != State::Closed {
                    self.ep[p].set_state(State::Reset);
                    if !self.timers.did_close[p] {
                        close = Some(false);
                    }
                    if RESET_TIMER {
                        let t = &mut self.timers;
                        t.reset = t.reset.min(now + TCP_RESET_DELAY);
                    }
                }
            }
            State::Reset => {}
        }
        close
    }

    /// `TCPSessionAdapter::ConnectionClosed` for endpoint `p`: sets the
    /// timers that will remove the connection (we do not model Zeek's
    /// deferral while reassembled data is still pending).
    fn connection_closed(&mut self, p: usize, gen_event: bool) {
        let q = 1 - p;
        let t = &mut self.timers;
        if t.did_close[p] {
            return;
        }
        t.did_close[p] = true;
        let (me, peer) = (&self.ep[p], &self.ep[q]);
        let complete = me.state == State::Reset || t.did_close[q] || peer.state == State::Inactive;
        if complete {
            if (me.prev_state != State::Inactive || peer.state != State::Inactive) && gen_event {
                t.active = false; // ConnectionFinished
            }
            // CancelTimers, then ConnDeleteTimer.
            *t = Timers {
                delete: t.last_time + TCP_CLOSE_DELAY,
                ..Timers::idle(t)
            };
        } else if me.prev_state == State::Inactive {
            if PARTIAL_CLOSE_TIMER {
                t.partial_close = t.partial_close.min(t.last_time + TCP_PARTIAL_CLOSE_DELAY);
            }
        } else {
            // A second ExpireTimer chain.
            t.expire[1] = t.expire[1].min(t.last_time + TCP_SESSION_TIMER);
        }
    }

    /// Would Zeek have removed this connection before capture time `now`?
    /// Runs the pending timers in time order, as Zeek's timer manager
    /// does when `now` advances network time (a timer due exactly at
    /// `now` fires first). Nothing changes the connection between its
    /// segments, so only `is_active` and the rescheduled ExpireTimer
    /// evolve. Timers are taken to fire at their due time, as they do
    /// when other traffic keeps network time moving.
    fn expired_by(&mut self, now: i64) -> bool {
        loop {
            let t = &mut self.timers;
            let inactivity = t.last_time.saturating_add(TCP_INACTIVITY_TIMEOUT);
            let due = t
                .attempt
                .min(t.partial_close)
                .min(t.expire[0])
                .min(t.expire[1])
                .min(t.reset)
                .min(t.delete)
                .min(inactivity);
            if due > now {
                return false;
            }
            if due == t.delete || due == inactivity {
                // ConnDeleteTimer, Session::InactivityTimer.
                return true;
            }
            let o = self.orig as usize;
            let (os, rs) = (self.ep[o].state, self.ep[1 - o].state);
            let any_reset = os == State::Reset || rs == State::Reset;
            let any_inactive = os == State::Inactive || rs == State::Inactive;
            if due == t.attempt {
                t.attempt = NEVER;
                if t.active
                    && matches!(os, State::SynSent | State::SynAckSent)
                    && rs == State::Inactive
                {
                    return true;
                }
            } else if due == t.partial_close {
                t.partial_close = NEVER;
                if t.active
                    && os != State::Inactive
                    && rs != State::Inactive
                    && !(t.did_close[0] && t.did_close[1])
                    && !any_reset
                {
                    return true;
                }
            } else if due == t.reset {
                t.reset = NEVER;
                if t.active {
                    return true;
                }
            } else {
                let chain = usize::from(due != t.expire[0]);
                t.expire[chain] = NEVER;
                if !t.active {
                    continue;
                }
                if t.last_time + TCP_CONNECTION_LINGER < due {
                    let closed = t.did_close[0] || t.did_close[1];
                    let both_closed = t.did_close[0] && t.did_close[1];
                    if closed && (both_closed || any_reset || any_inactive) {
                        return true;
                    }
                    if os == State::Inactive && rs == State::Inactive {
                        return true;
                    }
                }
                t.expire[chain] = due + TCP_SESSION_TIMER;
            }
        }
    }

    /// `TCP_Reassembler::AckReceived` for endpoint `e`'s data.
    fn ack_received(&mut self, e: usize, rel_ack: i64) {
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
    fn undelivered(&mut self, e: usize, up_to: i64) {
        if up_to <= 2 && self.partial {
            return;
        }
        while let Some(i) = self.ep[e].reasm.lowest_below(up_to) {
            let r = &mut self.ep[e].reasm;
            let (lo, hi) = r.pending[i];
            r.remove_pending(i);
            let hole = lo > r.last_reassem;
            r.last_reassem = r.last_reassem.max(hi);
            r.absorb_pending();
            if hole {
                self.gap(e);
            }
        }
        if up_to > self.ep[e].reasm.last_reassem {
            self.gap(e);
            self.ep[e].reasm.last_reassem = up_to;
        }
    }

    /// `TCP_Reassembler::Gap`: only written while both sides are cleanly
    /// established or closing.
    fn gap(&mut self, e: usize) {
        if self.ep[e].is_clean() && self.ep[1 - e].is_clean() && self.ep[e].gap.bump() {
            self.add(e, b'G');
        }
    }

    /// `TCP_Reassembler::DataSent` for `len` octets at relative `seq`.
    fn data_sent(&mut self, p: usize, seq: i64, len: u32) {
        let e = &mut self.ep[p];
        let acked = e.rel(e.ack_seq);
        let upper = seq + i64::from(len);
        if seq < acked && upper <= acked {
            return;
        }
        e.reasm.insert(seq.max(acked), upper);
    }

    /// `TCP_Endpoint::Size`: octets sent, from sequence numbers.
    fn size(&self, e: usize) -> u64 {
        let ep = &self.ep[e];
        if ep.prev_state == State::SynSent
            && ep.state == State::Reset
            && self.ep[1 - e].state == State::Inactive
            && !ep.no_data_acked()
        {
            return 0;
        }
        let last = ep.rel(ep.last_seq);
        let acked = ep.rel(ep.ack_seq);
        // Neither the SYN octet nor the FIN octet is data.
        let size = (last.max(acked).max(0) as u64).saturating_sub(1);
        if ep.fin_cnt > 0 {
            size.saturating_sub(1)
        } else {
            size
        }
    }
}

/// Zeek's `TOO_LARGE_SEQ_DELTA`.
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{TcpFlags, Timestamp};

    const A: &str = "10.0.0.1:40000";
    const B: &str = "10.0.0.2:80";

    fn seg(from_a: bool, flags: u8, seq: u32, ack: u32, len: u32) -> Segment<'static> {
        static DATA: [u8; 1500] = [0; 1500];
        let (src, dst) = if from_a { (A, B) } else { (B, A) };
        Segment {
            frame: 1,
            ts: Timestamp::default(),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 1000,
            payload_len: len,
            payload: &DATA[..len as usize],
            options: Default::default(),
            checksum_ok: Some(true),
        }
    }

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const AK: u8 = TcpFlags::ACK;
    const PA: u8 = TcpFlags::ACK | TcpFlags::PSH;
    const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;
    const R: u8 = TcpFlags::RST;
    const RA: u8 = TcpFlags::RST | TcpFlags::ACK;

    fn run(segs: &[(bool, u8, u32, u32, u32)]) -> (String, &'static str) {
        let mut t = ZeekConn::default();
        let first_a = segs[0].0;
        for &(a, fl, s, k, l) in segs {
            t.observe(&seg(a, fl, s, k, l), a == first_a, 0);
        }
        (t.history(), t.conn_state())
    }

    #[test]
    fn normal_close_is_sf() {
        let (h, st) = run(&[
            (true, S, 100, 0, 0),
            (false, SA, 500, 101, 0),
            (true, AK, 101, 501, 0),
            (true, PA, 101, 501, 10),
            (false, AK, 501, 111, 0),
            (false, PA, 501, 111, 20),
            (true, FA, 111, 521, 0),
            (false, FA, 521, 112, 0),
            (true, AK, 112, 522, 0),
        ]);
        assert_eq!((h.as_str(), st), ("ShADadFf", "SF"));
    }

    #[test]
    fn refused_is_rej() {
        let (h, st) = run(&[(true, S, 100, 0, 0), (false, RA, 0, 101, 0)]);
        assert_eq!((h.as_str(), st), ("Sr", "REJ"));
    }

    #[test]
    fn syn_then_rst_is_rstos0_and_lone_rst_oth() {
        assert_eq!(
            run(&[(true, S, 100, 0, 0), (true, R, 101, 0, 0)]),
            ("SR".into(), "RSTOS0")
        );
        assert_eq!(run(&[(true, R, 101, 0, 0)]), ("R".into(), "OTH"));
    }

    #[test]
    fn synack_first_then_ack_flips() {
        // Only the server's side was captured: SYN-ACK, ACK, FIN.
        let (h, _) = run(&[
            (true, SA, 500, 101, 0),
            (true, AK, 501, 101, 0),
            (true, FA, 501, 101, 0),
        ]);
        assert_eq!(h, "^haf");
    }

    #[test]
    fn retransmissions_scale() {
        let mut segs = vec![
            (true, S, 100, 0, 0),
            (false, SA, 500, 101, 0),
            (true, AK, 101, 501, 0),
            (true, PA, 101, 501, 10),
        ];
        for _ in 0..10 {
            segs.push((true, PA, 101, 501, 10));
        }
        let (h, st) = run(&segs);
        assert_eq!((h.as_str(), st), ("ShADTT", "S1"));
    }

    #[test]
    fn acked_but_unseen_data_is_a_gap() {
        let (h, _) = run(&[
            (true, S, 100, 0, 0),
            (false, SA, 500, 101, 0),
            (true, AK, 101, 501, 0),
            (true, PA, 111, 501, 10),
            (false, AK, 501, 121, 0),
        ]);
        assert_eq!(h, "ShADaG");
    }

    /// Runs a tracker over `(millis, from_a, flags, seq, ack, len)` and
    /// returns its Zeek rows as `(conn_state, history)`.
    fn run_timed(segs: &[(i64, bool, u8, u32, u32, u32)]) -> Vec<(&'static str, String)> {
        let mut t = ZeekTracker::default();
        let first_a = segs[0].1;
        for (frame, &(ms, a, fl, s, k, l)) in segs.iter().enumerate() {
            let mut sg = seg(a, fl, s, k, l);
            sg.frame = frame as u64 + 1;
            sg.ts = Timestamp {
                secs: ms.div_euclid(1000),
                nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
            };
            t.observe(&sg, a == first_a);
        }
        let rows = t.rows();
        assert_eq!(rows[0].conn_state, t.conn_state());
        assert_eq!(rows[0].history, t.history());
        rows.into_iter()
            .map(|r| (r.conn_state, r.history))
            .collect()
    }

    fn rows(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|&(s, h)| (s, h.to_owned())).collect()
    }

    #[test]
    fn unanswered_syn_expires_after_the_attempt_delay() {
        // Only the client is captured: SYN, ACK, data within 5 s, then
        // more data and a FIN later (ssh.client-side-half-duplex).
        let segs = [
            (0, true, S, 100, 0, 0),
            (100, true, AK, 101, 501, 0),
            (200, true, PA, 101, 501, 10),
            (5_000, true, PA, 111, 501, 10),
            (6_000, true, AK, 121, 501, 0),
            (7_000, true, FA, 121, 501, 0),
        ];
        assert_eq!(run_timed(&segs), rows(&[("S0", "SAD"), ("SH", "DAF")]));
        // Everything before the delay: one connection.
        let mut early = segs;
        for (i, s) in early[3..].iter_mut().enumerate() {
            s.0 = 4_997 + i as i64;
        }
        assert_eq!(run_timed(&early), rows(&[("SH", "SADF")]));
    }

    #[test]
    fn reset_connection_is_deleted_after_the_close_delay() {
        // Refused-after-accept, then data 16 s later that the server
        // resets (modbus-and-non-modbus-p502).
        let segs = [
            (0, true, S, 100, 0, 0),
            (1, false, SA, 500, 101, 0),
            (100, true, R, 101, 0, 0),
            (16_000, true, PA, 101, 501, 10),
            (16_001, false, R, 501, 0, 0),
        ];
        assert_eq!(run_timed(&segs), rows(&[("RSTO", "ShR"), ("RSTRH", "Dr")]));
    }

    #[test]
    fn closed_connection_is_deleted_and_the_next_one_may_flip() {
        // A normal close, then the server's RST 6 s later: a new Zeek
        // connection, flipped because its source port is a server's.
        let segs = [
            (0, true, S, 100, 0, 0),
            (1, false, SA, 500, 101, 0),
            (2, true, AK, 101, 501, 0),
            (3, true, FA, 101, 501, 0),
            (4, false, FA, 501, 102, 0),
            (5, true, AK, 102, 502, 0),
            (6_005, false, RA, 502, 102, 0),
        ];
        assert_eq!(run_timed(&segs), rows(&[("SF", "ShAFf"), ("RSTRH", "^r")]));
    }

    #[test]
    fn idle_connection_expires_after_the_inactivity_timeout() {
        let segs = [
            (0, true, PA, 101, 501, 10),
            (1, false, AK, 501, 111, 0),
            (300_001, true, PA, 101, 501, 10),
        ];
        assert_eq!(run_timed(&segs), rows(&[("OTH", "Da"), ("OTH", "D")]));
        let mut active = segs;
        active[2].0 = 300_000;
        assert_eq!(run_timed(&active), rows(&[("OTH", "DaT")]));
    }

    #[test]
    fn one_sided_close_expires_after_the_partial_close_delay() {
        // Mid-stream: the client's data, then the server's first packet
        // is a FIN; the client answers 4 s later.
        let segs = [
            (0, true, PA, 101, 501, 10),
            (1_000, false, FA, 501, 111, 0),
            (4_001, true, AK, 111, 502, 0),
        ];
        assert_eq!(run_timed(&segs), rows(&[("SHR", "Df"), ("OTH", "A")]));
        let mut early = segs;
        early[2].0 = 3_999;
        assert_eq!(run_timed(&early), rows(&[("SHR", "DfA")]));
    }
}
