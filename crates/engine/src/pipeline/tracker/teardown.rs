//! The teardown logic on hand-chained segments, one scenario per test,
//! one banner per state the chain walks through (smoltcp style). The
//! ground truth for the calls comes from the real-kernel captures in
//! `testdata/`; these tests pin the mechanics: ACK-number decisions,
//! wraparound, windows, port reuse. (Unit tests of the `Tracker`: the
//! segments are made by hand, which only the crate itself can do.)

use std::net::SocketAddr;

use super::Tracker;
use crate::pipeline::summary::Detail;
use crate::tracking::connection::SegmentFacts;
use crate::tracking::endpoint::TcpState as S;
use crate::tracking::event::Event;
use crate::tracking::flow::Flow;
use crate::tracking::inference::{ClosedBy, Closer, ConnVerdict, Outcome, Role};
use crate::wire::segment::{Segment, TcpFlags, TcpOptionsSummary, Timestamp};

const F: u8 = TcpFlags::FIN;
const SY: u8 = TcpFlags::SYN;
const R: u8 = TcpFlags::RST;
const A: u8 = TcpFlags::ACK;

/// Two endpoints exchanging segments; tracks their sequence numbers so a
/// test reads like a capture. `analyse` runs the engine's tracker over them.
struct Wire {
    addrs: [SocketAddr; 2],
    next_seq: [u32; 2],
    segments: Vec<Segment<'static>>,
}

const C: usize = 0;
const SV: usize = 1;

/// What the engine made of a wire: facts per segment (with hindsight) and
/// the verdicts by connection id.
struct Analysis {
    facts: Vec<SegmentFacts>,
    verdicts: Vec<ConnVerdict>,
    final_states: Vec<[S; 2]>,
}

impl Analysis {
    fn events(&self, frame: usize) -> Vec<&'static str> {
        self.facts[frame - 1]
            .events
            .iter()
            .map(Event::code)
            .collect()
    }
    fn states(&self, frame: usize) -> (S, S) {
        let f = &self.facts[frame - 1];
        (f.sender_state, f.receiver_state)
    }
    fn calls(&self, conn: usize, endpoint: usize) -> String {
        self.verdicts[conn].endpoints[endpoint].calls.to_string()
    }
}

impl Wire {
    fn new(isn: [u32; 2]) -> Wire {
        Wire {
            addrs: [
                "10.0.0.1:40000".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap(),
            ],
            next_seq: isn,
            segments: Vec::new(),
        }
    }

    /// Sends a segment from `from` with `flags`, `len` payload bytes and
    /// an explicit ACK number; returns its frame number.
    fn send_acking(&mut self, from: usize, flags: u8, len: u32, ack: u32) -> usize {
        let frame = self.segments.len() as u64 + 1;
        let seg = Segment {
            frame,
            ts: Timestamp {
                secs: 1_700_000_000 + frame as i64,
                nanos: 0,
            },
            src: self.addrs[from],
            dst: self.addrs[1 - from],
            seq: self.next_seq[from],
            ack,
            flags: TcpFlags(flags),
            window: 64000,
            payload_len: len,
            payload: &[],
            options: TcpOptionsSummary::default(),
            checksum_ok: None,
            marks: Default::default(),
            tunnel: Default::default(),
            reassembled: false,
        };
        if flags & R == 0 {
            self.next_seq[from] = seg.end_seq();
        }
        self.segments.push(seg);
        frame as usize
    }

    /// Sends a segment that acknowledges everything the peer sent.
    fn send(&mut self, from: usize, flags: u8, len: u32) -> usize {
        let ack = if flags & A != 0 {
            self.next_seq[1 - from]
        } else {
            0
        };
        self.send_acking(from, flags, len, ack)
    }

    fn handshake(&mut self) {
        self.send(C, SY, 0);
        self.send(SV, SY | A, 0);
        self.send(C, A, 0);
    }

    fn analyse(&self) -> Analysis {
        let mut tracker = Tracker::concluding(Detail::Verdicts);
        let mut final_states = Vec::new();
        let mut keep_states = |flow: &Flow, _| {
            let conn = &flow.conn;
            let id = conn.id as usize;
            final_states.resize(final_states.len().max(id + 1), [S::Unknown; 2]);
            final_states[id] = [conn.endpoints[0].state, conn.endpoints[1].state];
        };
        let provisional: Vec<SegmentFacts> = self
            .segments
            .iter()
            .map(|seg| {
                let facts = tracker.observe(seg);
                tracker.conclude_retired(&mut keep_states);
                facts
            })
            .collect();
        let read = (self.segments.len() as u64, None);
        let verdicts = tracker
            .finish(keep_states, "wire".as_ref(), "pcap", read)
            .verdicts;
        let facts = provisional
            .iter()
            .zip(&self.segments)
            .map(|(facts, seg)| {
                facts
                    .resolved(&verdicts[facts.conn as usize], seg.frame)
                    .facts
            })
            .collect();
        Analysis {
            facts,
            verdicts,
            final_states,
        }
    }
}

// ---- ESTABLISHED → FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT (active close) ----
#[test]
fn active_close_by_the_client() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, A, 10);
    w.send(SV, A, 0);
    let fin = w.send(C, F | A, 0);
    let ack = w.send(SV, A, 0);
    let fin2 = w.send(SV, F | A, 0);
    let last = w.send(C, A, 0);
    let a = w.analyse();

    assert_eq!(a.states(3), (S::Established, S::Established));
    assert_eq!(a.events(fin), ["fin-active"]);
    assert_eq!(a.states(fin), (S::FinWait1, S::CloseWait));
    assert!(a.facts[fin - 1].reveals);
    assert_eq!(a.events(ack), ["fin-acked"]);
    assert_eq!(a.facts[ack - 1].related, Some(fin as u64));
    assert_eq!(a.states(ack), (S::CloseWait, S::FinWait2));
    assert_eq!(a.events(fin2), ["fin-passive", "time-wait"]);
    assert_eq!(a.states(fin2), (S::LastAck, S::TimeWait));
    assert_eq!(a.events(last), ["fin-acked"]);
    assert_eq!(a.states(last), (S::TimeWait, S::Closed));

    let v = &a.verdicts[0];
    assert_eq!(v.outcome, Outcome::Graceful);
    assert_eq!(v.endpoints[C].role, Role::Active);
    assert_eq!(v.endpoints[SV].role, Role::Passive);
    assert_eq!(a.calls(0, C), "close|shut_rdwr|shut_wr");
    assert_eq!(a.calls(0, SV), "close|shut_rdwr|shut_wr");
    assert_eq!(a.final_states[0], [S::TimeWait, S::Closed]);
}

// ---- CLOSE-WAIT: half-close, the server keeps sending (class 1) ----
#[test]
fn shut_wr_half_close_with_data_after_fin() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    let fin = w.send(C, F | A, 0);
    w.send(SV, A, 0);
    let data = w.send(SV, A, 100);
    let ack = w.send(C, A, 0);
    w.send(SV, F | A, 0);
    w.send(C, A, 0);
    let a = w.analyse();

    assert_eq!(a.events(data), ["data-after-fin"]);
    assert_eq!(a.states(data), (S::CloseWait, S::FinWait2));
    assert_eq!(a.states(ack), (S::FinWait2, S::CloseWait));
    assert_eq!(a.calls(0, C), "shut_wr");
    assert_eq!(a.verdicts[0].endpoints[C].role, Role::Active);
    assert!(a.facts[fin - 1].reveals);
}

// ---- FIN-WAIT-2 → CLOSED by a bare RST: close() then data (class 2) ----
#[test]
fn data_after_close_is_reset() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    let fin = w.send(C, F | A, 0);
    w.send(SV, A, 0);
    let data = w.send(SV, A | TcpFlags::PSH, 50);
    let rst = w.send_acking(C, R, 0, 0);
    let a = w.analyse();

    assert_eq!(a.events(fin), ["fin-active"]);
    assert_eq!(a.events(data), ["data-after-fin", "data-to-closed"]);
    assert_eq!(a.facts[data - 1].related, Some(fin as u64));
    assert_eq!(a.events(rst), ["rst-after-close"]);
    assert_eq!(a.facts[rst - 1].related, Some(data as u64));
    assert_eq!(a.states(rst), (S::Closed, S::Closed));
    assert_eq!(a.calls(0, C), "close|shut_rdwr");
    assert_eq!(a.calls(0, SV), "");
    assert_eq!(a.verdicts[0].outcome, Outcome::Reset);
}

// ---- FIN-WAIT-1 → CLOSING → TIME-WAIT on both sides (simultaneous) ----
#[test]
fn crossing_fins_are_simultaneous_on_both_sides() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    let before_client_fin = w.next_seq[C];
    let client_fin = w.send(C, F | A, 0);
    // The server's FIN does not acknowledge the client's: it was sent first.
    let server_fin = w.send_acking(SV, F | A, 0, before_client_fin);
    let a1 = w.send(C, A, 0);
    let a2 = w.send(SV, A, 0);
    let a = w.analyse();

    assert_eq!(a.events(client_fin), ["fin-simultaneous"]);
    assert_eq!(a.events(server_fin), ["fin-simultaneous"]);
    assert_eq!(a.states(server_fin), (S::Closing, S::Closing));
    assert_eq!(a.events(a1), ["fin-acked", "time-wait"]);
    assert_eq!(a.events(a2), ["fin-acked", "time-wait"]);
    assert_eq!(a.final_states[0], [S::TimeWait, S::TimeWait]);
    assert_eq!(a.verdicts[0].endpoints[C].role, Role::Simultaneous);
    assert_eq!(a.verdicts[0].endpoints[SV].role, Role::Simultaneous);
}

// ---- SYN-SENT → CLOSED: refused ----
#[test]
fn refused_connection() {
    let mut w = Wire::new([1000, 0]);
    let syn = w.send(C, SY, 0);
    let rst = w.send_acking(SV, R | A, 0, 1001);
    let a = w.analyse();
    assert_eq!(a.events(syn), ["syn"]);
    assert_eq!(a.events(rst), ["rst-refused"]);
    assert_eq!(a.facts[rst - 1].related, Some(syn as u64));
    assert_eq!(a.verdicts[0].outcome, Outcome::Refused);
    assert_eq!(a.calls(0, SV), "");
    assert_eq!(a.verdicts[0].endpoints[SV].role, Role::None);
}

// ---- ESTABLISHED → CLOSED: abortive RST with and without received data ----
#[test]
fn abortive_resets_split_on_received_data() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, A, 20);
    let rst = w.send(SV, R | A, 0);
    let a = w.analyse();
    assert_eq!(a.events(rst), ["rst-abort"]);
    assert_eq!(a.calls(0, SV), "close_unread|linger0|shut_rd");
    assert_eq!(a.verdicts[0].endpoints[SV].role, Role::Active);

    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, A, 20);
    w.send(SV, A, 0);
    let rst = w.send(C, R | A, 0);
    let a = w.analyse();
    assert_eq!(a.events(rst), ["rst-abort"]);
    assert_eq!(a.calls(0, C), "linger0");
}

// ---- an RST outside the window changes nothing (RFC 5961) ----
#[test]
fn rst_outside_the_window_is_ignored() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, A, 10);
    w.send(SV, A, 0);
    w.next_seq[SV] = w.next_seq[SV].wrapping_add(10_000_000);
    let rst = w.send(SV, R | A, 0);
    let a = w.analyse();
    // The ignored RST is the last segment of a connection still open.
    assert_eq!(a.events(rst), ["rst-ignored", "end-unseen"]);
    assert_eq!(a.states(rst), (S::Established, S::Established));
    assert_eq!(a.verdicts[0].outcome, Outcome::Open);
    assert_eq!(a.calls(0, SV), "");
}

// ---- sequence numbers that wrap around 2^32 ----
#[test]
fn wraparound_does_not_confuse_fin_acks() {
    let mut w = Wire::new([u32::MAX - 5, u32::MAX - 1]);
    w.handshake();
    w.send(C, A, 100);
    let fin = w.send(C, F | A, 0);
    let ack = w.send(SV, A, 0);
    let a = w.analyse();
    assert_eq!(a.events(fin), ["fin-active"]);
    // The capture ends half-closed: its end is not seen.
    assert_eq!(a.events(ack), ["fin-acked", "end-unseen"]);
    assert_eq!(a.facts[fin - 1].rel_seq, 101);
}

// ---- retransmitted FIN ----
#[test]
fn retransmitted_fin_points_at_the_first() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    let fin = w.send(C, F | A, 0);
    w.next_seq[C] -= 1;
    let again = w.send(C, F | A, 0);
    let a = w.analyse();
    assert_eq!(a.events(again), ["fin-retransmit", "end-unseen"]);
    assert_eq!(a.facts[again - 1].related, Some(fin as u64));
    assert!(!a.facts[again - 1].reveals);
}

// ---- TIME-WAIT, then a new SYN on the same 4-tuple ----
#[test]
fn syn_after_close_is_port_reuse() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, F | A, 0);
    w.send(SV, F | A, 0);
    w.send(C, A, 0);
    w.next_seq = [90_000, 70_000];
    let syn = w.send(C, SY, 0);
    w.send(SV, SY | A, 0);
    let a = w.analyse();
    assert_eq!(a.events(syn), ["syn", "port-reuse"]);
    assert_eq!(a.facts[syn - 1].conn, 1);
    assert_eq!(a.verdicts.len(), 2);
    assert_eq!(a.verdicts[0].outcome, Outcome::Graceful);
}

// ---- mid-stream: no handshake, the client is guessed from the ports ----
#[test]
fn mid_stream_connection_guesses_the_client() {
    let mut w = Wire::new([1000, 5000]);
    let first = w.send(SV, A, 10);
    w.send(C, A, 0);
    let a = w.analyse();
    assert_eq!(a.events(first), ["mid-stream"]);
    assert_eq!(a.states(first), (S::Established, S::Unknown));
    let client = a.verdicts[0].client;
    assert!(client.guessed);
    // Index 0 is the first sender (the server, port 80); the client has port 40000.
    assert_eq!(client.index, 1);
}

// ---- CLOSE-WAIT: a 1-byte keep-alive (seq = SND.NXT - 1, as Windows sends it) is no new data ----
#[test]
fn one_byte_keepalive_after_fin_is_not_new_data() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(SV, A, 100);
    w.send(C, A, 0);
    w.send(C, F | A, 0);
    w.send(SV, A, 0);
    // The probe repeats the last byte sent: seq one below SND.NXT.
    w.next_seq[SV] -= 1;
    let probe = w.send(SV, A, 1);
    w.send(C, A, 0);
    w.send(SV, F | A, 0);
    w.send(C, A, 0);
    let a = w.analyse();

    assert_eq!(a.events(probe), Vec::<&str>::new());
    assert_eq!(a.calls(0, C), "close|shut_rdwr|shut_wr");
}

// ---- What the capture point could not see: wider answers, never wrong ones ----

impl Wire {
    /// A segment the capture point did not see: the sender's sequence
    /// numbers move on all the same.
    fn unseen(&mut self, from: usize, flags: u8, len: u32) {
        let seq = self.next_seq[from];
        let fin_or_syn = u32::from(flags & (F | SY) != 0);
        self.next_seq[from] = seq.wrapping_add(len + fin_or_syn);
    }
}

#[test]
fn a_capture_of_only_an_abortive_rst_is_a_reset_by_nobody_known() {
    let mut w = Wire::new([1000, 5000]);
    w.send(SV, R | A, 0);
    let a = w.analyse();
    let v = &a.verdicts[0];
    // The server sent first: it is endpoint 0 of the connection.
    let (c, sv) = (v.client.index, 1 - v.client.index);
    // The record agrees with itself: an RST closed both ends.
    assert_eq!(v.outcome, Outcome::Reset);
    assert_eq!(a.final_states[0], [S::Closed, S::Closed]);
    // The peer may have closed first unseen; data may have come before
    // the capture began: the wider class, not "SO_LINGER 0".
    assert_eq!(v.closer, Closer::Unknown);
    assert_eq!(v.endpoints[sv].closed_by, ClosedBy::Rst);
    assert_eq!(v.endpoints[c].closed_by, ClosedBy::Unknown);
    assert_eq!(a.calls(0, sv), "close_unread|linger0|shut_rd");
}

#[test]
fn one_direction_with_only_the_passive_fin_names_no_closer() {
    // tcpdump src host SERVER: the client closed first, unseen.
    let mut w = Wire::new([1000, 5000]);
    w.unseen(C, SY, 0);
    w.send(SV, SY | A, 0);
    w.unseen(C, A, 20);
    w.send(SV, A, 100);
    w.unseen(C, F | A, 0);
    w.send(SV, F | A, 0);
    let a = w.analyse();
    let v = &a.verdicts[0];
    let (c, sv) = (v.client.index, 1 - v.client.index);
    assert_eq!(v.closer, Closer::Unknown);
    assert_eq!(v.outcome, Outcome::Unknown);
    assert_eq!(v.endpoints[sv].role, Role::Unknown);
    assert_eq!(v.endpoints[sv].closed_by, ClosedBy::Fin);
    assert_eq!(v.endpoints[c].closed_by, ClosedBy::Unknown);
    assert_eq!(a.calls(0, sv), "close|shut_rdwr|shut_wr");
}

#[test]
fn a_fin_acknowledging_one_more_than_the_peer_sent_answers_an_unseen_fin() {
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, A, 10);
    w.send(SV, A, 0);
    w.unseen(C, F | A, 0); // lost before the capture point
    let fin = w.send(SV, F | A, 0);
    let last = w.send(C, A, 0);
    let a = w.analyse();
    assert_eq!(a.events(fin), ["fin-passive", "fin-acked", "time-wait"]);
    assert_eq!(a.states(last), (S::TimeWait, S::Closed));
    let v = &a.verdicts[0];
    assert_eq!(v.closer, Closer::Client);
    assert_eq!(v.outcome, Outcome::Graceful);
    assert_eq!(v.endpoints[C].closed_by, ClosedBy::Fin);
    assert_eq!(v.endpoints[SV].role, Role::Passive);
}

#[test]
fn a_capture_started_after_the_first_fin_names_no_closer() {
    let mut w = Wire::new([1000, 5000]);
    w.unseen(C, F | A, 0);
    w.send(SV, A, 0);
    w.send(C, A, 0);
    w.send(SV, F | A, 0);
    w.send(C, A, 0);
    let a = w.analyse();
    let v = &a.verdicts[0];
    assert_eq!(v.closer, Closer::Unknown);
    assert_eq!(v.endpoints[1 - v.client.index].role, Role::Unknown);
    // The client sent no payload in the capture: its close may be before.
    assert_eq!(v.endpoints[v.client.index].closed_by, ClosedBy::Unknown);
    assert_eq!(v.outcome, Outcome::Unknown);
}

#[test]
fn a_late_start_still_names_the_closer_when_the_peer_sent_data() {
    let mut w = Wire::new([1000, 5000]);
    w.send(SV, A, 100);
    w.send(C, A, 0);
    w.send(C, F | A, 0);
    w.send(SV, F | A, 0);
    w.send(C, A, 0);
    let a = w.analyse();
    let v = &a.verdicts[0];
    assert_eq!(v.closer, Closer::Client);
    assert_eq!(v.outcome, Outcome::Graceful);
}

#[test]
fn a_stray_rst_before_any_close_seen_means_a_close_the_capture_missed() {
    // The client's abortive RST was lost before the capture point (a
    // router dropped it); the server's next data is answered by a bare
    // RST from a client that no longer has the connection.
    let mut w = Wire::new([1000, 5000]);
    w.handshake();
    w.send(C, A, 10);
    w.send(SV, A, 0);
    w.unseen(C, R | A, 0);
    let data = w.send(SV, A, 100);
    let rst = w.send_acking(C, R, 0, 0);
    let a = w.analyse();
    assert_eq!(a.events(rst), ["rst-stray"]);
    assert!(data < rst);
    let v = &a.verdicts[0];
    assert_eq!(v.outcome, Outcome::Reset);
    assert_eq!(v.endpoints[C].closed_by, ClosedBy::Unknown);
    assert_eq!(v.closer, Closer::Unknown);
}

// ---- SYN-RECEIVED → (lone FIN) → SYN-RECEIVED → ESTABLISHED → CLOSING: FINs crossing a new ISN ----
/// The receiver of a lone FIN is still SYN-RECEIVED, answers with a
/// SYN+ACK carrying a new ISN, and its own FIN (sent before the lone one
/// reached it) follows. Hindsight (`if_fins_crossed`) shows the receiver
/// as it was: SYN-RECEIVED until the ACK of its new SYN, never CLOSE-WAIT
/// (the replay this rewrite replaced put it in ESTABLISHED at the lone
/// FIN). Hand-chained because no real kernel sends it: a Linux FIN always
/// acknowledges the peer's SYN (every segment after the first SYN carries
/// an ACK, RFC 9293 3.10.7.3), which takes its receiver out of
/// SYN-RECEIVED before the FIN counts, and an endpoint keeps its ISN for
/// the life of a connection (RFC 9293 3.4: a SYN+ACK retransmitted from
/// SYN-RECEIVED repeats it); docs/semantics.md, "Simultaneous close".
/// The nearest real recording, `simultaneous-close.pcap`, is held by
/// `tests/hard_cases.rs`.
#[test]
fn a_lone_fin_to_syn_received_then_a_new_isn_and_crossing_fins() {
    let mut w = Wire::new([1000, 5000]);
    w.send(C, SY, 0);
    w.send(SV, SY | A, 0);
    let before_client_fin = w.next_seq[C];
    let lone_fin = w.send_acking(C, F, 0, 0);
    w.next_seq[SV] = 9000;
    let new_isn = w.send_acking(SV, SY | A, 0, before_client_fin);
    let ack_of_new_isn = w.send(C, A, 0);
    let crossing_fin = w.send_acking(SV, F | A, 0, before_client_fin);
    let a1 = w.send(C, A, 0);
    let a2 = w.send(SV, A, 0);
    let a = w.analyse();

    assert_eq!(a.events(lone_fin), ["fin-simultaneous"]);
    assert_eq!(a.states(lone_fin), (S::FinWait1, S::SynReceived));
    assert_eq!(a.events(new_isn), [] as [&str; 0]);
    assert_eq!(a.states(new_isn), (S::SynReceived, S::FinWait1));
    assert_eq!(a.states(ack_of_new_isn), (S::FinWait1, S::Established));
    assert_eq!(a.events(crossing_fin), ["fin-simultaneous"]);
    assert_eq!(a.states(crossing_fin), (S::Closing, S::Closing));
    assert_eq!(a.events(a1), ["fin-acked", "time-wait"]);
    assert_eq!(a.events(a2), ["fin-acked", "time-wait"]);
    assert_eq!(a.final_states[0], [S::TimeWait, S::TimeWait]);
    assert_eq!(a.verdicts[0].outcome, Outcome::Graceful);
    assert_eq!(a.verdicts[0].closer, Closer::Both);
}
