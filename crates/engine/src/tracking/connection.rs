//! A connection: its two endpoints, and the per-segment logic that turns
//! each segment into teardown events, state changes and evidence.
//!
//! Every decision is made from sequence and ACK numbers, not from capture
//! order alone, so a capture point close to either side gives the same
//! verdicts: a FIN is simultaneous when its sender had not acknowledged
//! the peer's FIN, an RST is ignored when it falls outside the receiver's
//! window, and so on. Capture order is not even time order (merged
//! mirrors deliver the two directions locally reordered), so what a
//! segment proves about one captured before it is found by number too: a
//! FIN already acknowledged, data already ACKed or reset, data sent after a
//! FIN that the capture shows ahead of it, a refusal ahead of its SYN
//! (`docs/semantics.md`, "Capture order").

use crate::tracking::endpoint::{transition, Endpoint, EndpointEvent, TcpState};
use crate::tracking::event::{Event, EventSet};
use crate::tracking::idle::IdleTrack;
use crate::tracking::inference::{
    infer, CallSteps, ClientChoice, Closer, ConnFacts, ConnVerdict, Evidence, Outcome, Sight,
    Unseen,
};
use crate::tracking::origin::{OriginTrack, Why};
use crate::tracking::timeline::Timeline;
use crate::wire::segment::{FrameNumber, Segment, TcpFlags, Tunnel};
use crate::wire::seq::{seq_diff, seq_gt, seq_max};

/// What one segment meant, for its row, as far as the segments up to it
/// tell: provisional facts, plus what they become if the connection ends
/// a certain way ("what if" markers, applied by [`SegmentFacts::resolved`]).
#[derive(Clone, Copy, Debug)]
pub struct SegmentFacts {
    pub conn: u32,
    /// Index of the sending endpoint in [`Connection::endpoints`].
    pub sender: usize,
    pub events: EventSet,
    pub sender_state: TcpState,
    pub receiver_state: TcpState,
    /// Frame this segment refers to (the FIN it ACKs, the data it resets…).
    pub related: Option<u64>,
    pub rel_seq: u32,
    pub rel_ack: u32,
    /// This is the sender's first FIN or first abortive RST: the segment
    /// that reveals its teardown, where its calls are written.
    pub reveals: bool,
    /// New data to a receiver that had sent its FIN: if the verdict shows
    /// the receiver stopped reading there, the row adds `data-to-closed`
    /// and this `related` ([`SegmentFacts::resolved`]).
    pub if_receiver_stopped_reading: Option<u64>,
    /// From a lone FIN (its receiver had sent none) up to the receiver's own
    /// FIN: the row's `[sender, receiver]` states if that FIN turns out to
    /// cross the lone one (a simultaneous close, RFC 9293 3.6 case 3). The
    /// receiver then never was in CLOSE-WAIT, and the lone FIN (provisionally
    /// `fin-active`) is the first FIN of a simultaneous close.
    pub if_fins_crossed: Option<[TcpState; 2]>,
    /// This is the connection's first RST, right after a silence: an idle
    /// reset if the verdict keeps it ([`crate::tracking::idle`]).
    pub idle_rst: bool,
}

/// A segment's facts with its connection's verdict applied: everything its
/// row shows.
#[derive(Clone, Copy, Debug)]
pub struct ResolvedFacts {
    pub facts: SegmentFacts,
    /// The sender's calls as the verdict infers them (for the sentence).
    pub sender_calls: CallSteps,
    /// The same, on the segment that reveals them (the row's `calls`).
    pub revealed_calls: Option<CallSteps>,
    /// The sender is the connection's client.
    pub sender_is_client: bool,
    /// On a forged RST: why.
    pub forged_why: Why,
    /// On an idle reset: the silence before it, milliseconds.
    pub idle_ms: Option<u32>,
    /// On a FIN whose place in the order of the closes the verdict cannot
    /// tell (`fin-order-unknown`): what the capture point did not see.
    pub order_unknown: Option<Unseen>,
    /// On a FIN that was the connection's first, its sender's peer having
    /// closed before it by an RST it never received: `fin-passive`, "after".
    pub after_peer: bool,
}

impl SegmentFacts {
    /// The facts with the connection's final verdict applied. Every
    /// hindsight rule is here, so that rows can be made in one pass, held
    /// until their connection's verdict is known, and read the same as
    /// rows made in a second pass: the tracker never sees a verdict.
    /// Inlined, so that a quiet row's facts go straight into the row made
    /// of them instead of through a returned copy; the rules stay out of
    /// line.
    #[inline]
    pub fn resolved(&self, verdict: &ConnVerdict, frame: u64) -> ResolvedFacts {
        if self.quiet(verdict, frame) {
            return self.resolved_quietly(verdict);
        }
        self.resolved_by_the_rules(verdict, frame)
    }

    /// No event and no "what if" marker, and not the last segment of a
    /// connection whose end is unseen: every hindsight rule of
    /// [`SegmentFacts::resolved`] starts from one of these. Public for
    /// the held rows, which branch on it themselves
    /// ([`SegmentFacts::resolved_quietly`]).
    #[inline]
    pub fn quiet(&self, verdict: &ConnVerdict, frame: u64) -> bool {
        self.events.is_empty()
            && self.if_receiver_stopped_reading.is_none()
            && self.if_fins_crossed.is_none()
            && !self.idle_rst
            && verdict.end_unseen_at.is_none_or(|last| last.get() != frame)
    }

    /// [`SegmentFacts::resolved`] of [`SegmentFacts::quiet`] facts: no
    /// rule changes anything (most rows), the sender's calls are added.
    /// A caller that makes a row of each branch at its own site (the held
    /// rows) lets the quiet facts go straight into the row, instead of
    /// through a copy both branches share (~60 instructions a row).
    #[inline(always)]
    pub fn resolved_quietly(&self, verdict: &ConnVerdict) -> ResolvedFacts {
        let sender_calls = verdict.endpoints[self.sender].calls;
        ResolvedFacts {
            facts: *self,
            sender_calls,
            revealed_calls: self.reveals.then_some(sender_calls),
            sender_is_client: self.sender == verdict.client.index,
            forged_why: Why::default(),
            idle_ms: None,
            order_unknown: None,
            after_peer: false,
        }
    }

    /// [`SegmentFacts::resolved`], every rule applied.
    #[inline(never)]
    pub fn resolved_by_the_rules(&self, verdict: &ConnVerdict, frame: u64) -> ResolvedFacts {
        let mut facts = *self;
        // The connection's last segment, in a capture that ends before it.
        if verdict
            .end_unseen_at
            .is_some_and(|last| last.get() == frame)
        {
            facts.events.insert(Event::EndUnseen);
        }
        let receiver = 1 - self.sender;
        // Data sent to a peer that had closed: to a closed reader?
        if let Some(related) = self.if_receiver_stopped_reading {
            if verdict.endpoints[receiver].stopped_reading_at_fin {
                facts.events.insert(Event::DataToClosed);
                facts.related = Some(related);
            }
        }
        // The FINs crossed: the lone FIN's receiver never was in CLOSE-WAIT.
        if let Some([sender_state, receiver_state]) = self.if_fins_crossed {
            if verdict.simultaneous {
                facts.sender_state = sender_state;
                facts.receiver_state = receiver_state;
                if facts.events.contains(Event::FinActive) {
                    facts.events.remove(Event::FinActive);
                    facts.events.insert(Event::FinSimultaneous);
                }
            }
        }
        // The order of the closes is the verdict's: a first FIN's row
        // claims no more of it (first, in reply, crossed) than the verdict
        // knows (docs/semantics.md, "What the capture point saw").
        let sender_is_client = self.sender == verdict.client.index;
        let order = fin_order(facts.events, verdict, sender_is_client);
        if let Some(order) = order {
            FIN_ORDER.iter().for_each(|&e| facts.events.remove(e));
            order.event.into_iter().for_each(|e| facts.events.insert(e));
        }
        let order = order.unwrap_or_default();
        // A refused connection that starts with an RST: the refusal,
        // captured before the SYN it answers (capture order is not time
        // order), not an abort of a connection the capture joined late.
        if verdict.outcome == Outcome::Refused
            && facts.events.contains(Event::MidStream)
            && facts.events.contains(Event::RstAbort)
        {
            facts.events.remove(Event::MidStream);
            facts.events.remove(Event::RstAbort);
            facts.events.insert(Event::RstRefused);
        }
        // An RST the sender never sent (docs/semantics.md, forged resets).
        if verdict.endpoints[self.sender].rst_forged {
            let mut forged = false;
            for event in [Event::RstAbort, Event::RstStray, Event::RstAfterClose] {
                forged |= facts.events.contains(event);
                facts.events.remove(event);
            }
            // An ignored RST stays ignored, and says it was forged too.
            if forged || facts.events.contains(Event::RstIgnored) {
                facts.events.insert(Event::RstForged);
            }
        }
        let idle_ms = verdict
            .idle_reset
            .filter(|_| self.idle_rst)
            .map(|idle| idle.idle_ms);
        if idle_ms.is_some() {
            facts.events.insert(Event::RstIdle);
        }
        let sender_calls = verdict.endpoints[self.sender].calls;
        let forged_why = if facts.events.contains(Event::RstForged) {
            verdict.endpoints[self.sender].forged_why
        } else {
            Why::default()
        };
        ResolvedFacts {
            idle_ms,
            order_unknown: order.unknown_because,
            forged_why,
            facts,
            sender_calls,
            revealed_calls: self.reveals.then_some(sender_calls),
            sender_is_client,
            after_peer: order.after_peer,
        }
    }
}

/// The events that place a FIN in the order of the closes.
const FIN_ORDER: [Event; 4] = [
    Event::FinActive,
    Event::FinPassive,
    Event::FinSimultaneous,
    Event::FinOrderUnknown,
];

/// A FIN row's place in the order of the closes, as the verdict tells it.
#[derive(Clone, Copy, Debug, Default)]
struct FinOrder {
    /// The event the row gets (none: nobody closed, a refused
    /// connection's FIN closes nothing).
    event: Option<Event>,
    /// On `fin-order-unknown`: what the capture point did not see.
    unknown_because: Option<Unseen>,
    /// A `fin-passive` that answers no FIN: its peer had closed first by
    /// an RST that never reached it.
    after_peer: bool,
}

/// The place of the FIN a row with `events` shows (`None`: it places
/// none), from the verdict's closer.
fn fin_order(events: EventSet, verdict: &ConnVerdict, sender_is_client: bool) -> Option<FinOrder> {
    if !FIN_ORDER.iter().any(|&e| events.contains(e)) {
        return None;
    }
    let sender = if sender_is_client {
        Closer::Client
    } else {
        Closer::Server
    };
    let event = |event| FinOrder {
        event: Some(event),
        ..FinOrder::default()
    };
    Some(match verdict.closer {
        Closer::Unknown => FinOrder {
            unknown_because: verdict.widened,
            ..event(Event::FinOrderUnknown)
        },
        Closer::None => FinOrder::default(),
        Closer::Both => event(Event::FinSimultaneous),
        closer if closer == sender => event(Event::FinActive),
        _ => FinOrder {
            after_peer: !events.contains(Event::FinPassive),
            ..event(Event::FinPassive)
        },
    })
}

/// One segment on its way through [`Connection::observe`]: who sent it
/// (`x`) to whom (`y`), and what its row collects.
struct Step<'s, 'a> {
    seg: &'s Segment<'a>,
    x: usize,
    y: usize,
    events: EventSet,
    related: Option<u64>,
    if_receiver_stopped_reading: Option<u64>,
    /// It is the sender's FIN that an ACK captured before it had shown
    /// (`fin-unseen` until now): it reveals the sender's calls.
    late_fin: bool,
}

impl<'s, 'a> Step<'s, 'a> {
    /// `seg`, sent by endpoint `x`, before any rule.
    #[inline]
    fn of(seg: &'s Segment<'a>, x: usize) -> Self {
        Step {
            seg,
            x,
            y: 1 - x,
            events: EventSet::default(),
            related: None,
            if_receiver_stopped_reading: None,
            late_fin: false,
        }
    }
}

/// New payload from an endpoint whose ACK goes beyond everything the
/// capture has shown of its peer so far: if the peer's FIN turns up
/// later, captured behind this data, the data was sent after that FIN.
#[derive(Clone, Copy, Debug)]
struct AheadPayload {
    /// Where its new part starts.
    from: u32,
    ack: u32,
    frame: FrameNumber,
}

/// Which parts of the three-way handshake the capture showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    pub syn: bool,
    pub syn_ack: bool,
    pub ack: bool,
}

/// One TCP connection between two endpoints.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: u32,
    /// The tunnels its segments came through (part of its identity;
    /// boxed, as few connections have one).
    tunnel: Option<Box<Tunnel>>,
    /// Index 0 sent the first segment the capture shows.
    pub endpoints: [Endpoint; 2],
    pub evidence: [Evidence; 2],
    pub first_frame: u64,
    pub last_frame: u64,
    pub handshake: Handshake,
    pub mid_stream: bool,
    /// Both FINs were sent before either was acknowledged.
    pub simultaneous: bool,
    /// The SYN was answered by an RST.
    pub refused: bool,
    /// An accepted RST closed an endpoint that was still open.
    pub reset: bool,
    /// An RST fell outside its receiver's window.
    pub rst_ignored: bool,
    /// An RST was accepted while neither endpoint's state was known to be
    /// open (a capture that starts with it): the connection may have been
    /// closed before.
    pub rst_on_unknown: bool,
    /// Per endpoint: it sent a segment with the ACK flag, which shows its
    /// peer sent at least a SYN: a peer never seen sending was not silent,
    /// its direction was not captured.
    acked: [bool; 2],
    /// Per endpoint: the sequence number up to which the capture proves it
    /// had not sent a FIN (just past its SYN, or its newest payload).
    open_until: [Option<u32>; 2],
    /// The connection this one reuses the 4-tuple of.
    pub reuses: Option<u32>,
    /// Each endpoint's marks, to check who really sent its RSTs.
    pub origin: OriginTrack,
    /// Silences, and an RST right after one.
    pub idle: IdleTrack,
    /// When things happened, for reports.
    pub timeline: Timeline,
    /// The last new payload each endpoint received after its own FIN and
    /// has not answered yet: an RST right after it answers that data.
    unanswered_data_after_fin: [Option<FrameNumber>; 2],
    /// Per endpoint: its first bare RST after its own FIN that answered no
    /// data the capture had shown (frame, seq). Linux's reset copies the
    /// ACK number of the segment it answers into its seq, so data with
    /// that ACK, captured after it, is what it answered.
    early_rst_after_fin: [Option<(FrameNumber, u32)>; 2],
    /// Per endpoint: payload it sent that acknowledges more than the
    /// capture has shown of its peer ([`AheadPayload`]).
    ahead_payload: [Option<AheadPayload>; 2],
    /// Per endpoint: the ACK number of its first teardown signal, which
    /// says what it had received of the peer when it closed.
    signal_ack: [Option<u32>; 2],
    /// The connection's first segment was an RST+ACK with this ACK
    /// number, and nothing but copies of it followed: the refusal of a SYN
    /// the capture may show after it.
    opened_by_rst_ack: Option<u32>,
    /// Per endpoint: sequence number just past the highest payload byte it
    /// sent (SYN and FIN excluded), for telling new data from old.
    payload_end: [Option<u32>; 2],
    /// Window scaling is in effect (both SYNs carried the option).
    window_scaling: bool,
    /// The shift each endpoint's windows take (RFC 7323): its SYN's
    /// window scale, at most 14, while window scaling is in effect, else
    /// 0. Worked out when a SYN changes it, not on every segment.
    window_shift: [u8; 2],
    /// A SYN's options were cut by the snaplen: whether the window is
    /// scaled, and so the receive window, is unknown.
    window_unknown: bool,
    /// The client as the handshake showed it (SYN sender), an index into
    /// `endpoints` in a byte ([`side_byte`]).
    handshake_client: Option<u8>,
    /// While one endpoint alone has sent a FIN: the other endpoint, and
    /// the state it would be in had its own FIN (still to come) crossed
    /// that one. It follows the same events as the endpoint itself
    /// ([`Connection::apply`]), for [`SegmentFacts::if_fins_crossed`].
    /// The endpoint's index is a byte ([`side_byte`]).
    if_fins_crossed: Option<(u8, TcpState)>,
    /// [`Connection::is_closed`] as of its last segment: the flow table
    /// learns from [`Connection::observe`] whether that segment closed it
    /// ([`Connection::closed_by_last_segment`]).
    closed: bool,
}

/// Endpoint index `i` (0 or 1) in a byte: the connection keeps the indexes
/// it stores that small, so that its box stays within glibc's per-thread
/// cache (see the size test in `tracking::flow`).
fn side_byte(i: usize) -> u8 {
    debug_assert!(i < 2, "a connection has two endpoints");
    i as u8
}

impl Connection {
    /// The tunnels its segments came through (empty for most).
    #[inline]
    pub fn tunnel(&self) -> &Tunnel {
        self.tunnel.as_deref().unwrap_or(&Tunnel::NONE)
    }

    /// Did its segments come through `tunnel` (a segment's, optional as
    /// the segment holds it: most have none, and two without one need no
    /// look at `Tunnel::NONE`)?
    #[inline]
    pub fn came_through(&self, tunnel: Option<&Tunnel>) -> bool {
        match (&self.tunnel, tunnel) {
            (None, None) => true,
            (None, Some(tunnel)) => tunnel.is_none(),
            (Some(own), tunnel) => **own == *tunnel.unwrap_or(&Tunnel::NONE),
        }
    }

    /// Takes the GTP-U TEIDs a segment of it shows that it had not seen
    /// (its tunnel then tells it from a connection with other TEIDs).
    pub fn learn_teids(&mut self, seen: &Tunnel) {
        if let Some(tunnel) = &mut self.tunnel {
            tunnel.learn_teids(seen);
        }
    }

    /// The connection `first` opens. `#[inline]`: out of line (in another
    /// codegen unit than the flow table) it is made on the stack and
    /// copied into its box.
    #[inline]
    pub fn new(id: u32, first: &Segment<'_>, reuses: Option<u32>) -> Self {
        Connection {
            id,
            tunnel: first.tunnel.clone(),
            endpoints: [Endpoint::new(first.src), Endpoint::new(first.dst)],
            evidence: [Evidence::default(); 2],
            first_frame: first.frame,
            last_frame: first.frame,
            handshake: Handshake::default(),
            mid_stream: !first.flags.syn(),
            simultaneous: false,
            refused: false,
            reset: false,
            rst_ignored: false,
            rst_on_unknown: false,
            acked: [false; 2],
            open_until: [None; 2],
            reuses,
            origin: OriginTrack::default(),
            idle: IdleTrack::default(),
            timeline: Timeline::starting(first.ts),
            unanswered_data_after_fin: [None; 2],
            early_rst_after_fin: [None; 2],
            ahead_payload: [None; 2],
            signal_ack: [None; 2],
            opened_by_rst_ack: (first.flags.rst() && first.flags.ack()).then_some(first.ack),
            payload_end: [None; 2],
            window_scaling: false,
            window_shift: [0; 2],
            window_unknown: false,
            handshake_client: None,
            if_fins_crossed: None,
            closed: false,
        }
    }

    /// Index of the endpoint that sent `seg`.
    #[inline]
    pub fn sender_of(&self, seg: &Segment<'_>) -> usize {
        if self.endpoints[0].addr == seg.src && self.endpoints[1].addr == seg.dst {
            0
        } else {
            1
        }
    }

    /// The connection is one RST+ACK that acknowledges exactly this SYN of
    /// endpoint `x`: the refusal, captured before the SYN it answers (RFC
    /// 9293 3.10.7.1: the RST's ACK is the SYN's sequence number plus one).
    /// Inlined: every segment asks, and all but a SYN answer at once.
    #[inline]
    fn refusal_ahead_of(&self, seg: &Segment<'_>, x: usize) -> bool {
        seg.flags.syn()
            && !seg.flags.ack()
            && x == 1
            && self.opened_by_rst_ack == Some(seg.seq.wrapping_add(1))
    }

    /// Each endpoint's state.
    fn states(&self) -> [TcpState; 2] {
        [self.endpoints[0].state, self.endpoints[1].state]
    }

    /// Both directions are done: nothing more can legitimately follow.
    pub fn is_closed(&self) -> bool {
        self.reset
            || self.refused
            || self.endpoints.iter().all(|e| e.state.is_finished())
            || self.evidence.iter().all(|e| e.fin_frame.is_some())
    }

    /// Was it open before its last segment and closed after it
    /// ([`Connection::is_closed`])? Asked after each segment but a quiet
    /// one, which changes nothing the question reads: the answer before
    /// it is the one kept from the segment before.
    #[inline]
    fn closed_by_last_segment(&mut self) -> bool {
        let was_closed = self.closed;
        self.closed = self.is_closed();
        self.closed && !was_closed
    }

    /// Should a SYN from `sender` start a new connection on this 4-tuple?
    pub fn reopened_by(&self, seg: &Segment<'_>) -> bool {
        if !seg.flags.syn() || seg.flags.rst() {
            return false;
        }
        // A SYN+ACK reopens only a closed connection (below): most answer
        // the SYN of an open one, which `closed` (`is_closed` as of the
        // last segment) tells without the questions before.
        if seg.flags.ack() && !self.closed {
            return false;
        }
        let x = self.sender_of(seg);
        // A router's second copy of its sender's previous segment, or a SYN
        // this connection already knows: its own.
        if self.origin.is_copy(seg, x) || self.knows_syn(seg, x) {
            return false;
        }
        let sender = &self.endpoints[x];
        if seg.flags.ack() {
            // A SYN+ACK with a new ISN from the server of a closed
            // connection answers a new SYN, which the capture shows after
            // it (capture order is not time order) or not at all.
            return self.is_closed()
                && self.handshake_client == Some(side_byte(1 - x))
                && sender.seq_base.is_some_and(|isn| isn != seg.seq);
        }
        if self.is_closed() {
            return true;
        }
        // A new ISN on an attempt that was never answered (its sender has
        // sent nothing since) is a new attempt.
        !self.handshake.syn_ack
            && sender.state == TcpState::SynSent
            && sender.seq_base.is_some_and(|isn| isn != seg.seq)
    }

    /// Is `seg` (from endpoint `x`) a SYN this connection already knows:
    /// its ISN is the one the connection learnt from the SYN itself, or
    /// from the SYN+ACK or refusal that answered it, which the capture may
    /// show first (capture order is not time order)?
    fn knows_syn(&self, seg: &Segment<'_>, x: usize) -> bool {
        let learnt =
            self.handshake.syn || self.handshake.syn_ack || self.opened_by_rst_ack.is_some();
        // After a refusal, the same SYN again is a new attempt (a
        // retransmission the RST crossed), as Zeek counts it.
        !seg.flags.ack() && learnt && !self.refused && self.endpoints[x].seq_base == Some(seg.seq)
    }

    /// Who the client is: the SYN sender, else the SYN+ACK receiver, else
    /// a guess from the ports (the lower port serves; ties: first sender).
    pub fn client(&self) -> ClientChoice {
        if let Some(index) = self.handshake_client.map(usize::from) {
            return ClientChoice {
                index,
                guessed: false,
            };
        }
        let [a, b] = [self.endpoints[0].addr.port(), self.endpoints[1].addr.port()];
        ClientChoice {
            index: usize::from(b > a),
            guessed: true,
        }
    }

    /// What the capture point saw of the connection.
    pub fn sight(&self) -> Sight {
        let unseen = |i: usize| !self.endpoints[i].sent_any && self.acked[1 - i];
        // A late start proves an endpoint open only by payload it sends.
        let past_unseen = |i: usize| self.mid_stream && self.open_until[i].is_none();
        Sight {
            start: !self.mid_stream,
            unseen: [unseen(0), unseen(1)],
            past_unseen: [past_unseen(0), past_unseen(1)],
            rst_on_unknown: self.rst_on_unknown,
            last_sent: [0, 1].map(|i| self.endpoints[i].last_sent_frame),
            acked_peer_fin: [0, 1].map(|i| self.endpoints[1 - i].fin_acked_frame.is_some()),
        }
    }

    /// The verdict, once the connection is over (or the capture is).
    pub fn verdict(&self) -> ConnVerdict {
        // A forged RST is no call of the endpoint it names: infer as if it
        // had not aborted.
        let origins = [0, 1].map(|x| self.origin.judge(x).filter(|_| !self.refused));
        let forged = origins.clone().map(|o| o.is_some_and(|o| o.forged()));
        let mut evidence = self.evidence;
        for (own, forged) in evidence.iter_mut().zip(forged) {
            if forged {
                own.abort_frame = None;
                own.received_payload_before_abort = false;
            }
        }
        let mut verdict = infer(&ConnFacts {
            evidence: [&evidence[0], &evidence[1]],
            client: self.client(),
            simultaneous: self.simultaneous,
            refused: self.refused,
            reset: self.reset,
            sight: self.sight(),
        });
        // Neither endpoint finished (CLOSED, TIME-WAIT) when the capture
        // ended: its end is not in the capture. Unless both closed by FIN:
        // a simultaneous close leaves both in CLOSING until the ACKs of
        // the FINs, which add nothing to the close when the capture
        // misses them.
        let finished = self.endpoints.iter().any(|e| e.state.is_finished());
        if !finished && verdict.outcome != Outcome::Graceful {
            verdict.end_unseen_at = std::num::NonZeroU64::new(self.last_frame);
        }
        for ((endpoint, forged), origin) in verdict.endpoints.iter_mut().zip(forged).zip(&origins) {
            endpoint.rst_forged = forged;
            if forged {
                endpoint.forged_why = origin.as_ref().map_or_else(Why::default, |o| o.why());
            }
        }
        verdict.idle_reset = self
            .idle
            .candidate
            .filter(|idle| idle.stray || forged[idle.sender]);
        verdict
    }

    /// Endpoint `i` goes through `event` (the only way states change),
    /// and so does its state in case the FINs cross. `#[inline]`, as
    /// [`Endpoint::apply`]: a hint that holds across codegen units.
    #[inline]
    fn apply(&mut self, i: usize, event: EndpointEvent) {
        self.endpoints[i].apply(event);
        if let Some((endpoint, state)) = &mut self.if_fins_crossed {
            if usize::from(*endpoint) == i {
                *state = transition(*state, event);
            }
        }
    }

    /// Processes one segment sent by endpoint `x` ([`Connection::sender_of`],
    /// which the flow table's look-up has found already): updates states
    /// and evidence, and says what the segment meant, as far as the
    /// segments so far tell, and whether it closed the connection
    /// ([`Connection::closed_by_last_segment`]). Inlined into its one
    /// caller on the hot path, the flow table, which then builds the
    /// segment's facts in place instead of copying them back.
    ///
    /// A quiet segment ([`Connection::quiet`]: most of them) takes a short
    /// path that updates only what such a segment moves; any other plain
    /// segment ([`Connection::plain`]: the handshake's last ACK, the ACKs
    /// and data of a closing connection) the rules' path without the
    /// rules that only a SYN, FIN or RST, a connection's first segment, cut
    /// options or a router's copy reach, inlined too (out of line its
    /// facts came back through memory: 3.8 instructions a frame more);
    /// every other segment goes through every rule, out of line (inlined,
    /// the block's registers cost 4.8 a frame more).
    #[inline]
    pub fn observe(&mut self, seg: &Segment<'_>, x: usize) -> (SegmentFacts, bool) {
        debug_assert_eq!(x, self.sender_of(seg));
        let plain = self.plain(seg);
        let quiet = plain && self.quiet(x);
        // The same packet seen again one TTL lower (a router's `-i any`
        // capture sees it coming in and going out) is one packet. The
        // marks read nothing of the connection's, so they are noted first.
        let copy = self.origin.observe(seg, x);
        if quiet && !copy {
            // It changes nothing `is_closed` reads: `closed` stays right.
            return (self.observe_quietly(seg, x), false);
        }
        let facts = if plain && !copy {
            self.observe_plainly(seg, x)
        } else {
            self.observe_by_the_rules(seg, x, copy)
        };
        (facts, self.closed_by_last_segment())
    }

    /// Is `seg` plain, as far as the connection can tell before its marks
    /// are noted (a router's copy is not)? An ACK, with or without
    /// payload, and no SYN, FIN or RST; not the connection's first
    /// segment, its options whole. The rules that only a SYN, FIN or RST,
    /// a first segment or cut options reach then come to nothing
    /// ([`Connection::observe_plainly`]).
    #[inline]
    fn plain(&self, seg: &Segment<'_>) -> bool {
        const DECIDING: u8 = TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST | TcpFlags::ACK;
        seg.flags.0 & DECIDING == TcpFlags::ACK && seg.frame != self.first_frame && !seg.options.cut
    }

    /// Is a [`Connection::plain`] segment from endpoint `x` quiet too?
    /// Both endpoints ESTABLISHED, no FIN of the receiver known, and no
    /// FIN awaiting its crossing one. Every rule then comes to nothing: no
    /// event, no state change, no "what if" marker; what such a segment
    /// still moves is [`Connection::observe_quietly`]'s.
    #[inline]
    fn quiet(&self, x: usize) -> bool {
        let y = 1 - x;
        self.endpoints[x].state == TcpState::Established
            && self.endpoints[y].state == TcpState::Established
            && self.endpoints[y].fin_seq.is_none()
            && self.if_fins_crossed.is_none()
    }

    /// [`Connection::observe_by_the_rules`] of a quiet segment (not a
    /// copy), by the parts that move anything: the rules' other parts ask
    /// what [`Connection::quiet`] has answered. Its sender's SendMidStream
    /// and its receiver's ACK of SYN leave ESTABLISHED as it is, and with
    /// no FIN of the receiver its payload is only new data or old.
    #[inline]
    fn observe_quietly(&mut self, seg: &Segment<'_>, x: usize) -> SegmentFacts {
        let y = 1 - x;
        self.opened_by_rst_ack = None;
        self.last_frame = seg.frame;
        self.learn_sequence_bases(seg, x, y);
        self.acked[x] = true;
        self.note_ack_sent(seg, x);
        if seg.payload_len != 0 {
            if let Some(from) = self.new_payload(seg, x, y) {
                self.payload_ahead(seg, x, y, from);
            }
        }
        self.unanswered_data_after_fin[x] = None;
        let idle_rst = self.idle.observe(seg.ts, x, None);
        let reveals = self.reveals(seg, x);
        self.note_sender(seg, x, false);
        self.timeline.note_time(seg.ts);
        SegmentFacts {
            idle_rst,
            ..self.facts(seg, x, reveals)
        }
    }

    /// [`Connection::observe_by_the_rules`] of a [`Connection::plain`]
    /// segment that is not a router's copy (most of those that are not
    /// quiet: the handshake's last ACK, the ACKs and data of a closing
    /// connection), by the rules it reaches: the opening of a mid-stream
    /// sender, the ACK, the payload. The other rules ask what
    /// [`Connection::plain`] has answered.
    #[inline]
    fn observe_plainly(&mut self, seg: &Segment<'_>, x: usize) -> SegmentFacts {
        let y = 1 - x;
        let states_before = self.states();
        let mut step = Step::of(seg, x);
        self.opened_by_rst_ack = None;
        self.last_frame = seg.frame;
        self.learn_sequence_bases(seg, x, y);
        self.acked[x] = true;
        self.observe_open(&mut step);
        self.observe_ack(&mut step);
        if seg.payload_len != 0 {
            self.observe_payload(&mut step);
        }
        self.unanswered_data_after_fin[x] = None;
        let idle_rst = self.idle.observe(seg.ts, x, None);
        let reveals = self.reveals(seg, x);
        self.note_sender(seg, x, false);
        self.step_facts(step, states_before, idle_rst, reveals)
    }

    /// [`Connection::observe`] by every rule: any segment, `copy` when it
    /// is a router's second copy of its sender's previous one (its marks
    /// noted already). Out of line: the quiet segments keep their short
    /// path's registers.
    #[inline(never)]
    fn observe_by_the_rules(&mut self, seg: &Segment<'_>, x: usize, copy: bool) -> SegmentFacts {
        let y = 1 - x;
        let states_before = self.states();
        let mut step = Step::of(seg, x);
        let refusal_seen_late = self.refusal_ahead_of(seg, x);
        if seg.frame != self.first_frame && !copy {
            self.opened_by_rst_ack = None;
        }
        self.last_frame = seg.frame;
        if seg.frame == self.first_frame {
            if self.mid_stream {
                step.events.insert(Event::MidStream);
            }
            if self.reuses.is_some() {
                step.events.insert(Event::PortReuse);
            }
        }
        if seg.options.cut {
            step.events.insert(Event::OptionsCut);
            self.window_unknown |= seg.flags.syn();
        }
        // RFC 9293 3.10.7.4 (fourth check) and RFC 5961 4.2: a SYN from an
        // endpoint that is already synchronized, other than a repeat of its
        // own SYN, is not accepted (Linux answers with a challenge ACK and
        // drops it), so nothing it carries (a FIN, data) takes effect.
        let stray_syn = seg.flags.syn()
            && !seg.flags.rst()
            && is_synchronized(self.endpoints[x].state)
            && self.endpoints[x].seq_base != Some(seg.seq);
        let stray_syn = stray_syn || copy;
        if !stray_syn {
            self.learn_sequence_bases(seg, x, y);
        }

        self.acked[x] |= seg.flags.ack();
        if !stray_syn && (seg.flags.fin() || seg.flags.rst() && seg.flags.ack()) && !seg.flags.syn()
        {
            self.check_peer_open(seg, x, y);
        }
        if stray_syn {
            // Changes nothing.
        } else if seg.flags.rst() {
            self.observe_rst(&mut step);
        } else {
            self.observe_open(&mut step);
            self.observe_ack(&mut step);
            // Asked here, not in the call: most segments carry no payload.
            if seg.payload_len != 0 {
                self.observe_payload(&mut step);
            }
            // Linux discards a SYN+FIN (tcp_rcv_state_process, LISTEN): the
            // FIN of a SYN is no teardown.
            let mut ahead = None;
            if seg.flags.fin() && !seg.flags.syn() {
                ahead = self.observe_fin(&mut step);
            }
            // Its segment answers the data before it, but not data sent
            // after this FIN that the capture showed ahead of it.
            self.unanswered_data_after_fin[x] = ahead;
        }
        if refusal_seen_late {
            self.refused_before_syn();
        }

        // This is the connection's first RST and its idle reset candidate
        // (a copy changes nothing).
        let mut idle_rst = false;
        if !copy {
            // Only an RST (`observe_rst`) has these events.
            let accepted = [Event::RstAbort, Event::RstStray, Event::RstAfterClose];
            let rst = (seg.flags.rst() && accepted.iter().any(|&e| step.events.contains(e)))
                .then(|| step.events.contains(Event::RstStray));
            idle_rst = self.idle.observe(seg.ts, x, rst);
        }
        let reveals = self.reveals(seg, x) || step.late_fin;
        self.note_sender(seg, x, stray_syn);
        self.step_facts(step, states_before, idle_rst, reveals)
    }

    /// The end of a segment's way through the rules (`step`, the states
    /// before it): its time and what it changed go on the timeline, and
    /// its facts are made, with the states had the FINs crossed.
    #[inline(always)]
    fn step_facts(
        &mut self,
        step: Step<'_, '_>,
        states_before: [TcpState; 2],
        idle_rst: bool,
        reveals: bool,
    ) -> SegmentFacts {
        let (seg, x, y) = (step.seg, step.x, step.y);
        self.timeline
            .note(seg.ts, x, step.events, states_before, self.states());
        let (sender, receiver) = (&self.endpoints[x], &self.endpoints[y]);
        let if_fins_crossed = self.if_fins_crossed.map(|(endpoint, state)| {
            if usize::from(endpoint) == x {
                [state, receiver.state]
            } else {
                [sender.state, state]
            }
        });
        SegmentFacts {
            events: step.events,
            related: step.related,
            if_receiver_stopped_reading: step.if_receiver_stopped_reading,
            if_fins_crossed,
            idle_rst,
            ..self.facts(seg, x, reveals)
        }
    }

    /// Does `seg` reveal its sender's (`x`) teardown: is it the sender's
    /// first FIN or its first abortive RST?
    #[inline]
    fn reveals(&self, seg: &Segment<'_>, x: usize) -> bool {
        let own = &self.evidence[x];
        own.fin_frame == seg.frame_number() || own.abort_frame == seg.frame_number()
    }

    /// What the sender (`x`) of `seg` shows of itself: what it has sent
    /// (unless the segment took no effect, `stray_syn`), and its window.
    #[inline]
    fn note_sender(&mut self, seg: &Segment<'_>, x: usize, stray_syn: bool) {
        // RFC 7323 2.2: the window of a SYN is never scaled.
        let scale = if seg.flags.syn() {
            0
        } else {
            self.window_shift[x]
        };
        let sender = &mut self.endpoints[x];
        if !stray_syn {
            sender.note_sent(seg.end_seq());
        }
        sender.sent_any = true;
        sender.last_sent_frame = seg.frame_number();
        sender.window = u32::from(seg.window) << scale;
    }

    /// The facts of `seg` from endpoint `x` (`reveals` its teardown or
    /// not) as a quiet segment has them: the endpoints' states and the
    /// relative numbers, no event, nothing related, no marker.
    #[inline]
    fn facts(&self, seg: &Segment<'_>, x: usize, reveals: bool) -> SegmentFacts {
        let (sender, receiver) = (&self.endpoints[x], &self.endpoints[1 - x]);
        SegmentFacts {
            conn: self.id,
            sender: x,
            events: EventSet::default(),
            sender_state: sender.state,
            receiver_state: receiver.state,
            related: None,
            rel_seq: sender.relative(seg.seq),
            rel_ack: if seg.flags.ack() {
                receiver.relative(seg.ack)
            } else {
                0
            },
            reveals,
            if_receiver_stopped_reading: None,
            if_fins_crossed: None,
            idle_rst: false,
        }
    }

    /// Relative numbers count from the ISN; without a SYN, from one before
    /// the first number seen, so that the first segment shows 1 (as
    /// Wireshark does).
    fn learn_sequence_bases(&mut self, seg: &Segment<'_>, x: usize, y: usize) {
        let sender = &mut self.endpoints[x];
        if seg.flags.syn() && !seg.flags.rst() {
            sender.seq_base = Some(seg.seq);
        } else if sender.seq_base.is_none() {
            sender.seq_base = Some(seg.seq.wrapping_sub(1));
        }
        let receiver = &mut self.endpoints[y];
        if receiver.seq_base.is_none() && seg.flags.ack() {
            receiver.seq_base = Some(seg.ack.wrapping_sub(1));
        }
    }

    /// At an endpoint's first FIN or RST: does the capture prove its peer
    /// had not closed before? Its ACK number says what it had received of
    /// the peer. Up to where the peer is proven open (its SYN, its newest
    /// payload): it closed first. One more: it acknowledges a FIN of the
    /// peer that the capture did not show (lost, or sent before the
    /// capture began), which is then taken as sent. Anything else (no
    /// ACK, a peer never proven open, an ACK beyond unseen data): the
    /// order of the closes cannot be told.
    fn check_peer_open(&mut self, seg: &Segment<'_>, x: usize, y: usize) {
        let own = &self.evidence[x];
        if own.first_signal().is_some() || self.evidence[y].first_signal().is_some() {
            return;
        }
        self.signal_ack[x] = seg.flags.ack().then_some(seg.ack);
        let open_until = self.open_until[y];
        let gap = open_until
            .filter(|_| seg.flags.ack())
            .map(|open| seq_diff(seg.ack, open));
        self.evidence[x].peer_may_have_closed_first = !matches!(gap, Some(g) if g <= 0);
        match gap {
            Some(1) if seg.flags.ack() => {
                // The peer's FIN sits just past where it was proven open.
                let fin_seq = open_until.unwrap_or_default();
                let peer = &mut self.endpoints[y];
                peer.fin_seq = Some(fin_seq);
                peer.note_sent(fin_seq.wrapping_add(1));
                self.apply(y, EndpointEvent::SendFin);
                self.evidence[y].fin_frame = seg.frame_number();
                self.evidence[y].fin_unseen = true;
                self.evidence[y].ordered_before = seg.frame_number();
                self.evidence[x].peer_may_have_closed_first = false;
                self.apply(x, EndpointEvent::RecvFin);
            }
            _ => {}
        }
    }

    /// SYN and SYN+ACK, or the first plain segment of a mid-stream sender.
    #[inline(always)]
    fn observe_open(&mut self, step: &mut Step<'_, '_>) {
        let (seg, x, y) = (step.seg, step.x, step.y);
        if seg.flags.syn() {
            let past_syn = seg.seq.wrapping_add(1);
            let open = &mut self.open_until[x];
            *open = Some(open.map_or(past_syn, |o| seq_max(o, past_syn)));
        }
        if seg.flags.syn() && !seg.flags.ack() {
            step.events.insert(Event::Syn);
            self.handshake.syn = true;
            self.handshake_client = Some(side_byte(x));
            let sender = &mut self.endpoints[x];
            sender.syn_frame = sender.syn_frame.or(seg.frame_number());
            sender.window_scale = seg.options.window_scale;
            self.note_window_shifts();
            // A SYN its peer has already answered (the capture showed the
            // answer first) moves its sender nowhere it has not been.
            if self.endpoints[y].acked_beyond(seg.seq).is_none() {
                self.apply(x, EndpointEvent::SendSyn);
            }
        } else if seg.flags.syn() {
            step.events.insert(Event::SynAck);
            self.handshake.syn_ack = true;
            self.handshake_client.get_or_insert(side_byte(y));
            let scale = seg.options.window_scale;
            self.window_scaling = scale.is_some() && self.endpoints[y].window_scale.is_some();
            self.endpoints[x].window_scale = scale;
            self.note_window_shifts();
            self.apply(x, EndpointEvent::SendSynAck);
            self.apply(y, EndpointEvent::RecvSynAck);
        } else {
            self.apply(x, EndpointEvent::SendMidStream);
        }
    }

    /// Each endpoint's [`Connection::window_shift`], after a SYN changed
    /// its window scale or whether scaling is in effect.
    fn note_window_shifts(&mut self) {
        self.window_shift = [0, 1].map(|i| match self.endpoints[i].window_scale {
            Some(shift) if self.window_scaling => shift.min(14),
            _ => 0,
        });
    }

    /// The ACK field: completes the handshake, acknowledges FINs, and shows
    /// whether an endpoint that sent FIN still reads (class 1 evidence).
    #[inline(always)]
    fn observe_ack(&mut self, step: &mut Step<'_, '_>) {
        let (seg, x, y) = (step.seg, step.x, step.y);
        if !seg.flags.ack() {
            return;
        }
        let ack = seg.ack;
        let peer = &self.endpoints[y];
        // It acknowledges the peer's SYN: the handshake's ACK if the peer
        // waits for it (the event changes nothing otherwise, but the
        // peer's state had the FINs crossed may be waiting).
        if !seg.flags.syn() && peer.seq_base.is_some_and(|isn| seq_gt(ack, isn)) {
            if peer.state == TcpState::SynReceived {
                self.handshake.ack = true;
            }
            self.apply(y, EndpointEvent::RecvAckOfSyn);
        }
        let peer = &mut self.endpoints[y];
        if let Some(fin_seq) = peer.fin_seq {
            if peer.fin_acked_frame.is_none() && seq_gt(ack, fin_seq) {
                peer.fin_acked_frame = seg.frame_number();
                self.apply(y, EndpointEvent::RecvAckOfFin);
                step.events.insert(Event::FinAcked);
                step.related.get_or_insert(
                    self.evidence[y]
                        .fin_frame
                        .map_or(seg.frame, FrameNumber::get),
                );
                if self.endpoints[y].state == TcpState::TimeWait {
                    step.events.insert(Event::TimeWait);
                }
            }
        }
        self.note_ack_sent(seg, x);
    }

    /// The ACK number of `seg` (which has the flag), sent by `x`: its
    /// highest, and whether it acknowledges the new data `x` received
    /// after its own FIN (class 1 evidence).
    #[inline]
    fn note_ack_sent(&mut self, seg: &Segment<'_>, x: usize) {
        let ack = seg.ack;
        let own = &mut self.evidence[x];
        if own.acked_new_data_frame.is_none()
            && own.reset_new_data_frame.is_none()
            && own
                .new_peer_data_from
                .is_some_and(|start| seq_gt(ack, start))
        {
            own.acked_new_data_frame = seg.frame_number();
        }
        self.endpoints[x].note_ack_sent(ack, seg.frame);
    }

    /// Payload (the segment has some): who received data when, and data
    /// sent after a FIN.
    #[inline(always)]
    fn observe_payload(&mut self, step: &mut Step<'_, '_>) {
        let (seg, x, y) = (step.seg, step.x, step.y);
        let Some(from) = self.new_payload(seg, x, y) else {
            return;
        };
        let (Some(peer_fin), Some(fin_seq)) =
            (self.evidence[y].fin_frame, self.endpoints[y].fin_seq)
        else {
            self.payload_ahead(seg, x, y, from);
            return;
        };
        // Data after the peer's FIN is data its sender sent once it had
        // received that FIN (its ACK covers it): data crossing the FIN may
        // have been sent before it, and proves nothing of the reader.
        if !(seg.flags.ack() && seq_gt(seg.ack, fin_seq)) {
            return;
        }
        self.data_after_fin(y, from, seg.ack, seg.frame_number());
        // Its ACK covers the peer's FIN: it read the FIN and still sends.
        if self.endpoints[y].fin_acked_frame.is_some() {
            step.events.insert(Event::DataAfterFin);
        }
        // Whether the peer still reads is only known in hindsight: the row
        // shows `data-to-closed` when the verdict says it stopped at its FIN
        // (`SegmentFacts::resolved`). Later steps only fill `related` if
        // empty, so this is its final value in that case.
        step.if_receiver_stopped_reading = Some(step.related.unwrap_or(peer_fin.get()));
    }

    /// The payload of `seg` (it has some), from `x` to `y`: its receiver
    /// has received payload, and if it is new (beyond the sender's payload
    /// seen so far: its own segments keep their order), where its new part
    /// starts. Not beyond its SND.NXT, which a FIN seen out of order
    /// (ahead of the data sent before it) has already moved past that data.
    #[inline]
    fn new_payload(&mut self, seg: &Segment<'_>, x: usize, y: usize) -> Option<u32> {
        self.endpoints[y].received_payload = true;
        let data_start = seg.seq.wrapping_add(u32::from(seg.flags.syn()));
        let data_end = data_start.wrapping_add(seg.payload_len);
        let seen = self.payload_end[x];
        if !seen.is_none_or(|end| seq_gt(data_end, end)) {
            return None;
        }
        self.payload_end[x] = Some(data_end);
        let open = &mut self.open_until[x];
        *open = Some(open.map_or(data_end, |o| seq_max(o, data_end)));
        // The receiver's first signal acknowledged no more than this: it
        // had not received a FIN of this sender, whatever the capture order.
        if self.signal_ack[y].is_some_and(|ack| !seq_gt(ack, data_end)) {
            self.evidence[y].peer_may_have_closed_first = false;
        }
        Some(seen.map_or(data_start, |end| seq_max(end, data_start)))
    }

    /// New payload of `seg` from `from` on, sent by `x` before any FIN of
    /// `y` the capture has shown: `y`'s FIN may still turn up, captured
    /// behind this data ([`AheadPayload`]).
    #[inline]
    fn payload_ahead(&mut self, seg: &Segment<'_>, x: usize, y: usize, from: u32) {
        let peer_nxt = self.endpoints[y].snd_nxt;
        if seg.flags.ack()
            && peer_nxt.is_none_or(|nxt| seq_gt(seg.ack, nxt))
            && self.ahead_payload[x].is_none_or(|a| peer_nxt.is_some_and(|n| !seq_gt(a.ack, n)))
        {
            self.ahead_payload[x] = seg.frame_number().map(|frame| AheadPayload {
                from,
                ack: seg.ack,
                frame,
            });
        }
    }

    /// Endpoint `y`, after its FIN, receives new data from `from` on (in
    /// `frame`, acknowledging `ack`): class 1 or 2 evidence once `y`
    /// answers it, and `y` may have answered already, in a segment the
    /// capture showed first (capture order is not time order).
    fn data_after_fin(&mut self, y: usize, from: u32, ack: u32, frame: Option<FrameNumber>) {
        let own = &mut self.evidence[y];
        let from = *own.new_peer_data_from.get_or_insert(from);
        self.unanswered_data_after_fin[y] = frame;
        if own.acked_new_data_frame.is_some() || own.reset_new_data_frame.is_some() {
            return;
        }
        if let Some(acked) = self.endpoints[y].acked_beyond(from) {
            own.acked_new_data_frame = Some(acked);
        } else if let Some((rst, _)) = self.early_rst_after_fin[y].filter(|(_, seq)| *seq == ack) {
            own.reset_new_data_frame = Some(rst);
        }
    }

    /// A FIN: active, passive, simultaneous or retransmitted. Returns the
    /// frame of data its receiver sent after it that the capture showed
    /// ahead of it, which the sender has yet to answer.
    fn observe_fin(&mut self, step: &mut Step<'_, '_>) -> Option<FrameNumber> {
        let (seg, x, y) = (step.seg, step.x, step.y);
        let fin_seq = seg.end_seq().wrapping_sub(1);
        if let Some(first) = self.evidence[x].fin_frame {
            let own = &mut self.evidence[x];
            if own.fin_unseen && self.endpoints[x].fin_seq == Some(fin_seq) {
                // The FIN an ACK captured before it had shown: seen after
                // all, late (it still comes first in the order of closes).
                own.fin_unseen = false;
                step.events.insert(Event::FinActive);
                step.late_fin = true;
            } else {
                // Same FIN again (or a FIN the sender moved; either way not new).
                step.events.insert(Event::FinRetransmit);
                step.related.get_or_insert(first.get());
            }
            return None;
        }
        self.endpoints[x].fin_seq = Some(fin_seq);
        self.evidence[x].fin_frame = seg.frame_number();
        // Its own FIN ends the time its state could read otherwise.
        self.if_fins_crossed = None;

        // The peer's first signal, captured before this FIN, acknowledged it
        // (and this endpoint went on as if it had received that signal).
        let own = &self.endpoints[x];
        let preceded = self.evidence[y].first_signal().filter(|_| {
            self.signal_ack[y].is_some_and(|ack| seq_gt(ack, fin_seq))
                && own.seq_base.is_none_or(|isn| seq_gt(fin_seq, isn))
                && matches!(own.state, TcpState::CloseWait | TcpState::Closed)
        });
        let peer = &self.endpoints[y];
        let peer_before = peer.state;
        match peer.fin_seq {
            _ if preceded.is_some() => {
                // RFC 9293 3.6 case 1, seen backwards: the peer received this
                // FIN before it signalled itself.
                step.events.insert(Event::FinActive);
                self.evidence[x].ordered_before = preceded;
                self.apply(x, EndpointEvent::SendFinSeenLate);
                if self.endpoints[x].state == TcpState::TimeWait {
                    step.events.insert(Event::TimeWait);
                }
                self.apply(y, EndpointEvent::RecvFinSeenLate);
                self.fin_acknowledged_before(step, fin_seq);
                return None;
            }
            // observe_ack already recorded an ACK of the peer's FIN, this one's included.
            Some(_) if peer.fin_acked_frame.is_some() => {
                // RFC 9293 3.6 case 1: it had received the peer's FIN.
                step.events.insert(Event::FinPassive);
                self.apply(x, EndpointEvent::SendFin);
            }
            Some(_) => {
                // RFC 9293 3.6 case 3: both sent FIN before hearing of the other's.
                step.events.insert(Event::FinSimultaneous);
                self.simultaneous = true;
                self.apply(x, EndpointEvent::SendCrossingFin);
            }
            None => {
                // Provisionally: whether the peer's FIN will cross this one
                // is known only when it comes (`if_fins_crossed`).
                step.events.insert(Event::FinActive);
                self.apply(x, EndpointEvent::SendFin);
            }
        }
        self.apply(y, EndpointEvent::RecvFin);
        if self.endpoints[y].state == TcpState::TimeWait {
            step.events.insert(Event::TimeWait);
        }
        self.fin_acknowledged_before(step, fin_seq);
        if self.endpoints[y].fin_seq.is_none() {
            self.if_fins_crossed = Some((
                side_byte(y),
                transition(peer_before, EndpointEvent::RecvCrossingFin),
            ));
        }
        // Data the peer sent after receiving this FIN, captured ahead of it.
        let ahead = self.ahead_payload[y].take()?;
        if !seq_gt(ahead.ack, fin_seq) {
            return None;
        }
        self.data_after_fin(x, ahead.from, ahead.ack, Some(ahead.frame));
        self.unanswered_data_after_fin[x]
    }

    /// RFC 9293 3.10.7.4 fifth check: the peer acknowledged the FIN of
    /// `step`'s sender, at `fin_seq`, in a segment the capture showed first.
    fn fin_acknowledged_before(&mut self, step: &mut Step<'_, '_>, fin_seq: u32) {
        let (x, y) = (step.x, step.y);
        if let Some(acked) = self.endpoints[y].acked_beyond(fin_seq) {
            self.endpoints[x].fin_acked_frame = Some(acked);
            let before = self.endpoints[x].state;
            self.apply(x, EndpointEvent::RecvAckOfFin);
            let now = self.endpoints[x].state;
            if now != before && now == TcpState::TimeWait {
                step.events.insert(Event::TimeWait);
            }
        }
    }

    /// The connection so far was an RST+ACK, and the SYN just observed is
    /// the one it refused (RFC 9293 3.10.7.1), captured after it: the
    /// connection opened and was refused, and the RST aborted nothing.
    fn refused_before_syn(&mut self) {
        self.evidence = [Evidence::default(); 2];
        self.reset = false;
        self.rst_on_unknown = false;
        self.mid_stream = false;
        self.refused = true;
        for i in [0, 1] {
            self.apply(i, EndpointEvent::Reset);
        }
    }

    /// An RST: refused, after close, stray, abortive, or ignored.
    fn observe_rst(&mut self, step: &mut Step<'_, '_>) {
        let (seg, x, y) = (step.seg, step.x, step.y);
        if !self.rst_acceptable(seg, x, y) {
            step.events.insert(Event::RstIgnored);
            self.rst_ignored = true;
            return;
        }
        let (sender, receiver) = (&self.endpoints[x], &self.endpoints[y]);
        if receiver.state == TcpState::SynSent && !sender.sent_any {
            // RFC 9293 3.10.7.1: a SYN to a port nobody listens on.
            step.events.insert(Event::RstRefused);
            step.related = receiver.syn_frame.map(FrameNumber::get);
            self.refused = true;
        } else if let (Some(_), Some(data), false) = (
            self.evidence[x].fin_frame,
            self.unanswered_data_after_fin[x],
            seg.flags.ack(),
        ) {
            // RFC 1122 4.2.2.13 / RFC 2525 2.17: data to a closed reader is reset.
            step.events.insert(Event::RstAfterClose);
            step.related = Some(data.get());
            let own = &mut self.evidence[x];
            own.reset_new_data_frame = own.reset_new_data_frame.or(seg.frame_number());
        } else if sender.state.is_finished() || !seg.flags.ack() {
            // RFC 9293 3.5.2 group 1: it answers a segment of a connection it no longer has.
            step.events.insert(Event::RstStray);
            // After its FIN, a bare RST that answers no data seen yet may
            // answer data the capture shows after it (`data_after_fin`).
            if self.evidence[x].fin_frame.is_some()
                && !seg.flags.ack()
                && !sender.state.is_finished()
            {
                let early = &mut self.early_rst_after_fin[x];
                *early = early.or(seg.frame_number().map(|frame| (frame, seg.seq)));
            }
            // It no longer has it, yet the capture showed no close: that
            // close happened where the capture point could not see it.
            let own = &mut self.evidence[x];
            own.closed_unseen |= own.first_signal().is_none();
        } else {
            // RFC 9293 3.10.5 (ABORT call): an abortive close.
            step.events.insert(Event::RstAbort);
            // A live endpoint aborted: whatever the capture saw before.
            self.reset = true;
            // Its ACK number says it had received payload, even payload
            // the capture shows after this RST.
            let received = sender.received_payload || acks_payload(seg, receiver);
            let own = &mut self.evidence[x];
            if own.abort_frame.is_none() {
                own.abort_frame = seg.frame_number();
                own.received_payload_before_abort = received;
            }
        }
        for i in [x, y] {
            let state = self.endpoints[i].state;
            if !state.is_finished() && state != TcpState::Unknown {
                self.reset |= !self.refused;
            }
            self.rst_on_unknown |= state == TcpState::Unknown;
            self.apply(i, EndpointEvent::Reset);
        }
    }

    /// RFC 5961 section 3.2: an RST outside the receiver's window is
    /// ignored. The receiver's RCV.NXT is what the sender has sent (or, if
    /// the capture never saw it send, what the receiver has ACKed). When
    /// the window is unknown (a SYN's options cut), the RST is accepted.
    fn rst_acceptable(&self, seg: &Segment<'_>, x: usize, y: usize) -> bool {
        let (sender, receiver) = (&self.endpoints[x], &self.endpoints[y]);
        match receiver.state {
            // RFC 9293 3.10.7.3: in SYN-SENT the ACK field decides.
            TcpState::SynSent => {
                return !seg.flags.ack() || receiver.snd_nxt.is_none_or(|nxt| seg.ack == nxt)
            }
            // Without state (or a window) the receiver has nothing to check against.
            TcpState::Unknown | TcpState::Closed => return true,
            _ if !receiver.sent_any || self.window_unknown => return true,
            _ => {}
        }
        let Some(rcv_nxt) = sender.snd_nxt.or(receiver.max_ack_sent) else {
            return true;
        };
        let window = i64::from(receiver.window.max(1));
        let offset = i64::from(seq_diff(seg.seq, rcv_nxt));
        (-1..window).contains(&offset)
    }
}

/// Does `seg` acknowledge payload of `peer` (beyond its SYN, and its FIN)?
fn acks_payload(seg: &Segment<'_>, peer: &Endpoint) -> bool {
    let Some(isn) = peer.seq_base.filter(|_| seg.flags.ack()) else {
        return false;
    };
    let fin = peer.fin_seq.is_some_and(|fin| seq_gt(seg.ack, fin));
    seq_diff(seg.ack, isn.wrapping_add(1)) > i32::from(fin)
}

/// Synchronized states (RFC 9293 3.3.2): the handshake is behind the endpoint.
fn is_synchronized(state: TcpState) -> bool {
    matches!(
        state,
        TcpState::Established
            | TcpState::FinWait1
            | TcpState::FinWait2
            | TcpState::CloseWait
            | TcpState::Closing
            | TcpState::LastAck
            | TcpState::TimeWait
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::idle::IdleRst;

    /// The capture files under `dir`, in every folder below it.
    fn captures(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                captures(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                out.push(path);
            }
        }
    }

    /// The quiet and the plain segments' short paths leave their
    /// connection and their facts as every rule would: each quiet or plain
    /// segment of the test captures (retransmissions, keep-alives, zero
    /// windows, merged and reordered directions, cut snaplens, the
    /// handshake's last ACK, ACKs of FINs, data and ACKs after a FIN...)
    /// goes through its path and through every rule, on two copies of its
    /// connection, which must then read alike (a router's copy takes the
    /// rules either way).
    #[test]
    fn quiet_and_plain_segments_are_observed_as_by_the_rules() {
        use crate::wire::capture::CaptureReader;
        use crate::wire::link::{decode, DecodeStats};
        use std::collections::HashMap;
        use std::net::SocketAddr;

        let mut files = Vec::new();
        captures(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata")),
            &mut files,
        );
        // Quiet, plain; plain with an event or a "what if" marker.
        let (mut quiet, mut plain, mut plain_marked) = (0, 0, 0);
        for path in &files {
            let Ok(mut reader) = CaptureReader::open(path) else {
                continue;
            };
            let mut stats = DecodeStats::default();
            let mut conns: HashMap<[SocketAddr; 2], Connection> = HashMap::new();
            while let Ok(Some(frame)) = reader.next_frame() {
                let Some(seg) = decode(&frame, &mut stats) else {
                    continue;
                };
                let key = [seg.src.min(seg.dst), seg.src.max(seg.dst)];
                let id = conns.len() as u32;
                let conn = conns
                    .entry(key)
                    .or_insert_with(|| Connection::new(id, &seg, None));
                if conn.first_frame != seg.frame && conn.reopened_by(&seg) {
                    *conn = Connection::new(id, &seg, Some(conn.id));
                }
                let x = conn.sender_of(&seg);
                if !conn.plain(&seg) {
                    conn.observe(&seg, x);
                    continue;
                }
                let is_quiet = conn.quiet(x);
                let mut by_the_rules = conn.clone();
                let copy = by_the_rules.origin.observe(&seg, x);
                let expected = by_the_rules.observe_by_the_rules(&seg, x, copy);
                let closed = by_the_rules.closed_by_last_segment();
                let (facts, quietly_closed) = conn.observe(&seg, x);
                let at = format!("{}, frame {}", path.display(), seg.frame);
                assert_eq!(format!("{facts:?}"), format!("{expected:?}"), "{at}");
                assert_eq!(format!("{conn:?}"), format!("{by_the_rules:?}"), "{at}");
                assert_eq!(quietly_closed, closed, "{at}");
                if !copy && is_quiet {
                    quiet += 1;
                } else if !copy {
                    plain += 1;
                    let marked = !facts.events.is_empty()
                        || facts.if_fins_crossed.is_some()
                        || facts.if_receiver_stopped_reading.is_some();
                    plain_marked += usize::from(marked);
                }
            }
        }
        assert!(
            quiet > 1000 && plain > 500 && plain_marked > 100,
            "{quiet} quiet and {plain} plain segments ({plain_marked} with an event or a marker) in {} captures",
            files.len()
        );
    }

    /// Quiet facts (no event, no marker) resolve as every rule applied
    /// would resolve them, whatever the verdict.
    #[test]
    fn quiet_facts_resolve_as_the_rules_do() {
        let mut verdicts = Vec::new();
        for client in 0..2 {
            for forged in [false, true] {
                for closer in [
                    Closer::Unknown,
                    Closer::Client,
                    Closer::Server,
                    Closer::Both,
                ] {
                    let mut v = ConnVerdict::default();
                    v.client.index = client;
                    v.closer = closer;
                    v.widened = Some(Unseen::End);
                    v.simultaneous = closer == Closer::Both;
                    v.outcome = Outcome::Refused;
                    v.endpoints[1].rst_forged = forged;
                    v.endpoints[0].stopped_reading_at_fin = true;
                    v.endpoints[1].stopped_reading_at_fin = true;
                    v.idle_reset = Some(IdleRst {
                        idle_ms: 5,
                        sender: 1,
                        stray: true,
                    });
                    v.end_unseen_at = std::num::NonZeroU64::new(8);
                    verdicts.push(v);
                }
            }
        }
        verdicts.push(ConnVerdict::default());
        for verdict in &verdicts {
            for sender in 0..2 {
                for reveals in [false, true] {
                    let facts = SegmentFacts {
                        conn: 3,
                        sender,
                        events: EventSet::default(),
                        sender_state: TcpState::Established,
                        receiver_state: TcpState::CloseWait,
                        related: Some(2),
                        rel_seq: 10,
                        rel_ack: 20,
                        reveals,
                        if_receiver_stopped_reading: None,
                        if_fins_crossed: None,
                        idle_rst: false,
                    };
                    assert!(facts.quiet(verdict, 7));
                    assert_eq!(
                        format!("{:?}", facts.resolved(verdict, 7)),
                        format!("{:?}", facts.resolved_by_the_rules(verdict, 7)),
                        "{verdict:?}"
                    );
                    // Its connection's last segment, the capture ending first.
                    assert!(!facts.quiet(verdict, 8) || verdict.end_unseen_at.is_none());
                }
            }
        }
    }
}
