//! Zeek's `TCPSessionAdapter` and `TCP_Endpoint`: the per-endpoint state
//! machine (`UpdateStateMachine`), sequence bookkeeping
//! (`init_endpoint`, `init_peer`, `update_ack_seq`, `update_last_seq`),
//! role flips and partial connections, in `Process`'s order.

use super::history::{Letters, Scaled, LIMIT_REACHED};
use super::reassembly::Reassembly;
use super::timers::{Timers, RESET_TIMER, TCP_ATTEMPT_DELAY, TCP_RESET_DELAY};
use super::ZeekRow;
use crate::wire::segment::{Segment, Tunnel};
use crate::wire::seq::seq_diff;

/// Zeek's `TCP_ENDPOINT_*` states (init-bare.zeek numbers them 0 to 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum State {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// One endpoint as Zeek's `TCP_Endpoint` sees it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Endpoint {
    pub(super) state: State,
    pub(super) prev_state: State,
    pub(super) start_seq: u32,
    pub(super) last_seq: u32,
    /// Highest ACK the peer sent for this endpoint's data.
    pub(super) ack_seq: u32,
    pub(super) fin_cnt: u32,
    /// Relative sequence number just past the FIN.
    pub(super) fin_seq: i64,
    pub(super) hist_last_syn: i64,
    pub(super) hist_last_fin: i64,
    pub(super) hist_last_rst: i64,
    pub(super) rxmt: Scaled,
    pub(super) win0: Scaled,
    pub(super) gap: Scaled,
    pub(super) reasm: Reassembly,
    /// `num_bytes_ip` of Zeek's ConnSize analyzer: IP lengths sent.
    pub(super) ip_bytes: u64,
    /// Octets of the content gaps reported in this endpoint's data.
    pub(super) missed: u64,
}

impl Endpoint {
    pub(super) fn set_state(&mut self, new: State) {
        if new != self.state {
            self.prev_state = self.state;
            self.state = new;
        }
    }

    pub(super) fn init_seq(&mut self, start: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    pub(super) fn rel(&self, seq: u32) -> i64 {
        i64::from(seq_diff(seq, self.start_seq))
    }

    /// `TCP_Endpoint::NoDataAcked`.
    pub(super) fn no_data_acked(&self) -> bool {
        self.ack_seq == self.start_seq || self.ack_seq == self.start_seq.wrapping_add(1)
    }

    /// `TCP_Endpoint::IsClean` as the reassembler uses it for gaps.
    pub(super) fn is_clean(&self) -> bool {
        self.state == State::Established
            || (self.state == State::Closed && self.prev_state == State::Established)
    }
}

/// Accumulates what Zeek needs to know about one Zeek connection.
///
/// Endpoints are indexed physically: 0 sent the connection's first
/// segment. `orig` says which of them Zeek calls the originator.
#[derive(Clone, Debug, Default)]
pub(super) struct ZeekConn {
    pub(super) ep: [Endpoint; 2],
    pub(super) orig: u8,
    pub(super) flips: u8,
    pub(super) started: bool,
    /// `TCPSessionAdapter::is_partial`.
    pub(super) partial: bool,
    /// `first_packet_seen`, one bit per physical endpoint.
    pub(super) first_seen: u8,
    /// `Connection::hist_seen`, by role (responder bits shifted by 16).
    pub(super) hist_seen: u32,
    pub(super) letters: Letters,
    pub(super) timers: Timers,
    /// `Connection::encapsulation`: the tunnels of the last segment.
    pub(super) encapsulation: Option<Box<Tunnel>>,
    /// `Connection::tunnel_changes`.
    pub(super) tunnel_changes: u8,
    /// The `X` letter was added (its `CheckHistory` mask).
    pub(super) limit_reached: bool,
}

/// Zeek's `Tunnel::max_changes_per_connection` (init-bare.zeek).
const MAX_TUNNEL_CHANGES: u8 = 5;

impl ZeekConn {
    /// Observes one segment at capture time `now` (nanoseconds);
    /// `from_first_sender` is true when it was sent by the endpoint that
    /// sent this Zeek connection's first segment.
    pub(super) fn observe(&mut self, seg: &Segment<'_>, from_first_sender: bool, now: i64) {
        let p = usize::from(!from_first_sender);
        let q = 1 - p;
        let f = seg.flags;
        let (syn, ack, fin, rst) = (f.syn(), f.ack(), f.fin(), f.rst());
        let len = seg.payload_len;

        let first = !self.started;
        if first {
            self.started = true;
            self.timers = Timers::new(now);
            self.encapsulation = seg.tunnel.clone();
            self.want_connection(seg);
        } else if !seg.tunnel().same_encapsulation(self.encapsulation()) {
            self.tunnel_changed(seg);
        }
        if !first
            && self.flips == 0
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
        self.ep[p].ip_bytes += u64::from(seg.marks.ip_len);

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
        if len > 0 && !rst && !underflow && seg.payload_captured() {
            self.data_sent(p, rel_seq + i64::from(syn), len);
        }
        self.first_seen |= 1 << p;
        if let Some(gen_event) = close {
            self.connection_closed(p, gen_event);
        }
    }

    fn encapsulation(&self) -> &Tunnel {
        self.encapsulation.as_deref().unwrap_or(&Tunnel::NONE)
    }

    /// `Connection::CheckEncapsulation`: the segment came through other
    /// tunnels (or other outer UDP connections) than the last one. Past
    /// `Tunnel::max_changes_per_connection` changes, Zeek adds `X` (once)
    /// instead of counting.
    #[cold]
    fn tunnel_changed(&mut self, seg: &Segment<'_>) {
        self.encapsulation = seg.tunnel.clone();
        if self.tunnel_changes < MAX_TUNNEL_CHANGES {
            self.tunnel_changes += 1;
        } else if !self.limit_reached {
            self.limit_reached = true;
            self.letters.push(LIMIT_REACHED);
        }
    }

    pub(super) fn row(&self, first_frame: u64) -> ZeekRow {
        let orig = usize::from(self.orig);
        ZeekRow {
            conn_state: self.conn_state(),
            history: self.history(),
            first_frame,
            ip_bytes: [self.ep[orig].ip_bytes, self.ep[1 - orig].ip_bytes],
            missed_bytes: self.ep[0].missed + self.ep[1].missed,
        }
    }

    /// `Connection::FlipRoles`: swaps originator and responder. The `^`
    /// is rendered in front, letters re-cased for the new roles.
    pub(super) fn flip_roles(&mut self) {
        self.orig = 1 - self.orig;
        self.flips = self.flips.saturating_add(1);
        self.partial = false;
    }

    pub(super) fn set_partial_status(&mut self, p: usize, is_orig: bool, syn: bool, ack: bool) {
        if self.first_seen & (1 << p) != 0 {
            return;
        }
        if is_orig {
            self.partial = !syn || ack;
        } else if !self.partial {
            self.partial = !syn;
        }
    }

    pub(super) fn init_endpoint(&mut self, p: usize, syn: bool, seq: u32, seq_past: u32) {
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

    /// `update_last_seq`; a payload that does not advance the endpoint's
    /// highest sequence number is a retransmission (`t`/`T`).
    pub(super) fn update_last_seq(
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
    pub(super) fn update_state_machine(
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

    /// `TCP_Endpoint::Size`: octets sent, from sequence numbers.
    pub(super) fn size(&self, e: usize) -> u64 {
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
pub(super) const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;
