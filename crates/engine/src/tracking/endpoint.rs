//! The endpoint state machine: one side of a connection, its RFC 9293
//! state as seen from the capture point, and the sequence bookkeeping the
//! state changes are decided from.
//!
//! The capture point sees a segment once and assumes it is delivered, so
//! a sent FIN moves the receiver to CLOSE-WAIT at the same moment it moves
//! the sender to FIN-WAIT-1. The one case where that is wrong is the
//! simultaneous close, which the connection detects from ACK numbers when
//! the second FIN comes (`SendCrossingFin`); what the receiver of the
//! first was meanwhile (`RecvCrossingFin`) rows learn in hindsight.

use std::fmt;
use std::net::SocketAddr;

use crate::wire::segment::FrameNumber;
use crate::wire::seq::{seq_gt, seq_max};

/// RFC 9293 section 3.3.2 connection states, plus `UNKNOWN` for an
/// endpoint the capture has told nothing about yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TcpState {
    #[default]
    #[serde(rename = "UNKNOWN")]
    Unknown,
    #[serde(rename = "SYN-SENT")]
    SynSent,
    #[serde(rename = "SYN-RECEIVED")]
    SynReceived,
    #[serde(rename = "ESTABLISHED")]
    Established,
    #[serde(rename = "FIN-WAIT-1")]
    FinWait1,
    #[serde(rename = "FIN-WAIT-2")]
    FinWait2,
    #[serde(rename = "CLOSE-WAIT")]
    CloseWait,
    #[serde(rename = "CLOSING")]
    Closing,
    #[serde(rename = "LAST-ACK")]
    LastAck,
    #[serde(rename = "TIME-WAIT")]
    TimeWait,
    #[serde(rename = "CLOSED")]
    Closed,
}

impl TcpState {
    /// Every state, in declaration order: `ALL[s as usize] == s`.
    pub const ALL: [TcpState; 11] = [
        TcpState::Unknown,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::CloseWait,
        TcpState::Closing,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Closed,
    ];

    /// The state's name as RFC 9293 spells it.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::Unknown => "UNKNOWN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Closed => "CLOSED",
        }
    }

    /// No more data can flow from or to this endpoint on this connection.
    pub fn is_finished(self) -> bool {
        matches!(self, TcpState::TimeWait | TcpState::Closed)
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened to one endpoint, from its own point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointEvent {
    /// It sent a SYN without ACK (active open).
    SendSyn,
    /// It answered a SYN with SYN+ACK (passive open).
    SendSynAck,
    /// It received the SYN+ACK answering its SYN.
    RecvSynAck,
    /// It received the ACK of its SYN+ACK.
    RecvAckOfSyn,
    /// It sent a segment (neither SYN, FIN nor RST) on a connection whose
    /// opening the capture did not see.
    SendMidStream,
    /// It sent its FIN.
    SendFin,
    /// It received its peer's FIN.
    RecvFin,
    /// It sent its FIN before its peer's FIN, already sent, reached it
    /// (the capture point saw the peer's first): a simultaneous close.
    SendCrossingFin,
    /// Its peer's FIN crossed its own FIN, still to come: seen from the
    /// capture point before its own FIN, where it is not yet closing.
    RecvCrossingFin,
    /// It sent its FIN first, and its peer's FIN acknowledged it, but the
    /// capture point saw the peer's FIN first (capture order is not time
    /// order): its FIN is acknowledged and the peer's received.
    SendFinSeenLate,
    /// Its peer's FIN reached it before it sent its own, which
    /// acknowledged that FIN, but the capture point saw its own first.
    RecvFinSeenLate,
    /// It received the ACK of its own FIN.
    RecvAckOfFin,
    /// It sent an RST, or received one that it accepted.
    Reset,
}

/// The transition table. Anything not listed leaves the state unchanged:
/// the capture point may have missed segments, and a wrong guess is worse
/// than a stale state.
pub fn transition(state: TcpState, event: EndpointEvent) -> TcpState {
    use EndpointEvent as E;
    use TcpState as S;
    match (state, event) {
        // RFC 9293 3.10.4 (OPEN call): an active open sends SYN, enters SYN-SENT.
        (S::Unknown | S::Closed | S::SynSent, E::SendSyn) => S::SynSent,
        // RFC 9293 3.10.7.2 (LISTEN): a SYN is answered by SYN,ACK, enter SYN-RECEIVED.
        // Not from CLOSED: an endpoint this connection saw close does not
        // reopen it (a new SYN starts a new connection, `FlowTable`).
        (S::Unknown | S::SynReceived, E::SendSynAck) => S::SynReceived,
        // RFC 9293 3.10.7.3 (SYN-SENT): our SYN is ACKed by SYN,ACK, enter ESTABLISHED.
        (S::SynSent | S::Unknown, E::RecvSynAck) => S::Established,
        // RFC 9293 3.10.7.4 fifth check (SYN-RECEIVED): an acceptable ACK, enter ESTABLISHED.
        (S::SynReceived, E::RecvAckOfSyn) => S::Established,
        // Mid-stream: an endpoint that sends plain segments is synchronized (RFC 9293 3.3.2).
        // From SYN-SENT too: it only ACKs after the SYN,ACK (3.10.7.3), which the capture missed.
        (S::Unknown | S::SynSent | S::SynReceived, E::SendMidStream) => S::Established,
        // RFC 9293 3.10.4 (CLOSE call, ESTABLISHED / SYN-RECEIVED): send FIN, enter FIN-WAIT-1.
        (S::Unknown | S::SynSent | S::SynReceived | S::Established, E::SendFin) => S::FinWait1,
        // RFC 9293 3.10.4 (CLOSE call, CLOSE-WAIT): send FIN, enter LAST-ACK.
        (S::CloseWait, E::SendFin) => S::LastAck,
        // RFC 9293 3.10.7.4 eighth check (ESTABLISHED): a FIN moves to CLOSE-WAIT.
        (S::Unknown | S::SynReceived | S::Established, E::RecvFin) => S::CloseWait,
        // RFC 9293 3.10.7.4 eighth check (FIN-WAIT-1, own FIN not ACKed): enter CLOSING.
        (S::FinWait1, E::RecvFin) => S::Closing,
        // RFC 9293 3.6 case 3 (simultaneous close): it was in FIN-WAIT-1 when the peer's FIN
        // arrived, and is in CLOSING whatever the capture point made of that FIN before.
        (_, E::SendCrossingFin) => S::Closing,
        // RFC 9293 3.3.2: receiving a FIN shows an endpoint synchronized; the FIN that crossed
        // its own (3.6 case 3) moves it to FIN-WAIT-1 only with its own FIN.
        (S::Unknown, E::RecvCrossingFin) => S::Established,
        // RFC 9293 3.6 case 1, seen backwards: it was in FIN-WAIT-1 when the peer's FIN
        // arrived acknowledging its own (3.10.7.4 fifth and eighth checks: TIME-WAIT) ...
        (S::CloseWait, E::SendFinSeenLate) => S::TimeWait,
        // ... and the peer was in CLOSE-WAIT when it sent that FIN (3.10.4: LAST-ACK), and
        // CLOSED if that FIN was acknowledged too (3.10.7.4 fifth check).
        (S::FinWait1, E::RecvFinSeenLate) => S::LastAck,
        (S::FinWait2, E::RecvFinSeenLate) => S::Closed,
        // RFC 9293 3.10.7.4 eighth check (FIN-WAIT-2): enter TIME-WAIT.
        (S::FinWait2, E::RecvFin) => S::TimeWait,
        // RFC 9293 3.10.7.4 fifth check (FIN-WAIT-1): our FIN is ACKed, enter FIN-WAIT-2.
        (S::FinWait1, E::RecvAckOfFin) => S::FinWait2,
        // RFC 9293 3.10.7.4 fifth check (CLOSING): our FIN is ACKed, enter TIME-WAIT.
        (S::Closing, E::RecvAckOfFin) => S::TimeWait,
        // RFC 9293 3.10.7.4 fifth check (LAST-ACK): our FIN is ACKed, enter CLOSED.
        (S::LastAck, E::RecvAckOfFin) => S::Closed,
        // RFC 9293 3.10.7.4 second check / 3.10.7.3: an accepted RST closes; sending one aborts (3.10.5).
        (_, E::Reset) => S::Closed,
        // Anything else (retransmissions, segments the capture point saw out of order) changes nothing.
        (state, _) => state,
    }
}

/// One endpoint of a connection: its address, its state, and what the
/// capture has shown of its sequence space.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub state: TcpState,
    /// Base for relative sequence numbers (the ISN, or the first seq seen).
    pub seq_base: Option<u32>,
    /// Sequence number just past everything it has sent (its SND.NXT as
    /// far as the capture shows).
    pub snd_nxt: Option<u32>,
    /// Highest ACK number it has sent.
    pub max_ack_sent: Option<u32>,
    /// The frame that carried it: an ACK captured before what it
    /// acknowledges (capture order is not time order) is found by number.
    pub max_ack_frame: u64,
    /// Window-scale shift it announced on its SYN.
    pub window_scale: Option<u8>,
    /// Last advertised (scaled) receive window.
    pub window: u32,
    /// Sequence number of its FIN, once sent.
    pub fin_seq: Option<u32>,
    /// Frame that first acknowledged its FIN.
    pub fin_acked_frame: Option<FrameNumber>,
    /// Frame of its SYN (for `related` on a refusal).
    pub syn_frame: Option<FrameNumber>,
    /// Has it sent anything at all?
    pub sent_any: bool,
    /// Frame of the last segment it sent.
    pub last_sent_frame: Option<FrameNumber>,
    /// Has it received payload from its peer at any time?
    pub received_payload: bool,
}

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Self {
        Endpoint {
            addr,
            state: TcpState::Unknown,
            seq_base: None,
            snd_nxt: None,
            max_ack_sent: None,
            max_ack_frame: 0,
            window_scale: None,
            window: 0,
            fin_seq: None,
            fin_acked_frame: None,
            syn_frame: None,
            sent_any: false,
            last_sent_frame: None,
            received_payload: false,
        }
    }

    /// Goes through `event`. `#[inline]`: without it the flow table's
    /// paths inline it only when the two share a codegen unit, which
    /// unrelated changes move (docs/performance.md, "Fourteenth round: the
    /// tracking thread").
    #[inline]
    pub fn apply(&mut self, event: EndpointEvent) {
        self.state = transition(self.state, event);
    }

    /// Records that it sent the sequence range ending at `end_seq`.
    pub fn note_sent(&mut self, end_seq: u32) {
        self.snd_nxt = Some(match self.snd_nxt {
            Some(nxt) => seq_max(nxt, end_seq),
            None => end_seq,
        });
    }

    /// Records an ACK it sent in `frame`; true when the ACK moved forward.
    pub fn note_ack_sent(&mut self, ack: u32, frame: u64) -> bool {
        match self.max_ack_sent {
            Some(prev) if !seq_gt(ack, prev) => false,
            _ => {
                self.max_ack_sent = Some(ack);
                self.max_ack_frame = frame;
                true
            }
        }
    }

    /// The frame of an ACK it sent beyond `seq` (it had received the byte,
    /// SYN or FIN at `seq`), whenever the capture showed that ACK.
    pub fn acked_beyond(&self, seq: u32) -> Option<FrameNumber> {
        self.max_ack_sent
            .filter(|ack| seq_gt(*ack, seq))
            .and_then(|_| FrameNumber::new(self.max_ack_frame))
    }

    /// Relative form of a sequence number this endpoint sent.
    pub fn relative(&self, seq: u32) -> u32 {
        seq.wrapping_sub(self.seq_base.unwrap_or(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EndpointEvent as E;
    use TcpState as S;

    #[test]
    fn all_states_in_declaration_order() {
        for (i, state) in S::ALL.iter().enumerate() {
            assert_eq!(*state as usize, i);
        }
        assert_eq!(S::ALL.len(), S::Closed as usize + 1);
    }

    fn walk(start: TcpState, events: &[EndpointEvent]) -> Vec<TcpState> {
        let mut state = start;
        events
            .iter()
            .map(|e| {
                state = transition(state, *e);
                state
            })
            .collect()
    }

    // ---- active closer: ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT ----
    #[test]
    fn active_close_ends_in_time_wait() {
        let states = walk(
            S::Unknown,
            &[
                E::SendSyn,
                E::RecvSynAck,
                E::SendFin,
                E::RecvAckOfFin,
                E::RecvFin,
            ],
        );
        assert_eq!(
            states,
            [
                S::SynSent,
                S::Established,
                S::FinWait1,
                S::FinWait2,
                S::TimeWait
            ]
        );
    }

    // ---- passive closer: CLOSE-WAIT, LAST-ACK, CLOSED ----
    #[test]
    fn passive_close_ends_closed() {
        let states = walk(
            S::Unknown,
            &[
                E::SendSynAck,
                E::RecvAckOfSyn,
                E::RecvFin,
                E::SendFin,
                E::RecvAckOfFin,
            ],
        );
        assert_eq!(
            states,
            [
                S::SynReceived,
                S::Established,
                S::CloseWait,
                S::LastAck,
                S::Closed
            ]
        );
    }

    // ---- simultaneous close: FIN-WAIT-1, CLOSING, TIME-WAIT ----
    #[test]
    fn simultaneous_close_goes_through_closing() {
        let states = walk(S::Established, &[E::SendFin, E::RecvFin, E::RecvAckOfFin]);
        assert_eq!(states, [S::FinWait1, S::Closing, S::TimeWait]);
    }

    // ---- simultaneous close seen from beside the first FIN's receiver ----
    #[test]
    fn a_crossing_fin_ends_in_closing() {
        // Provisionally the receiver of the first FIN went to CLOSE-WAIT.
        let states = walk(S::Established, &[E::RecvFin, E::SendCrossingFin]);
        assert_eq!(states, [S::CloseWait, S::Closing]);
        assert_eq!(transition(S::Unknown, E::RecvCrossingFin), S::Established);
        assert_eq!(transition(S::SynSent, E::RecvCrossingFin), S::SynSent);
    }

    // ---- reset from anywhere ----
    #[test]
    fn reset_closes_from_any_state() {
        for s in [
            S::Unknown,
            S::SynSent,
            S::Established,
            S::FinWait2,
            S::CloseWait,
        ] {
            assert_eq!(transition(s, E::Reset), S::Closed);
        }
    }

    // ---- stale segments change nothing ----
    #[test]
    fn retransmissions_leave_final_states_alone() {
        assert_eq!(transition(S::TimeWait, E::RecvFin), S::TimeWait);
        assert_eq!(transition(S::LastAck, E::SendFin), S::LastAck);
        assert_eq!(transition(S::Closed, E::RecvAckOfFin), S::Closed);
    }

    #[test]
    fn names_follow_rfc_9293() {
        assert_eq!(S::FinWait1.to_string(), "FIN-WAIT-1");
        assert_eq!(S::TimeWait.to_string(), "TIME-WAIT");
        assert_eq!(S::Unknown.to_string(), "UNKNOWN");
    }
}
