//! Inference: from what the wire showed of each endpoint to the socket
//! calls its application most likely made, its role in the teardown and
//! the connection's outcome. Linux semantics; see `docs/semantics.md`.
//!
//! The wire decides between classes of calls, never between the calls of
//! one class, so a verdict is a list of steps, each a set of candidates.

use std::fmt;

use crate::wire::segment::FrameNumber;

/// Gives an enum its text codes once, for both `Display` and serde.
macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name,)* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                match text.as_ref() {
                    $($name => Ok($ty::$variant),)*
                    other => Err(serde::de::Error::unknown_variant(other, &[$($name),*])),
                }
            }
        }
    };
}

/// A socket call (or call pattern) that shapes a teardown on the wire.
/// Declared in the sorted order of the codes, so sorting calls sorts codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Call {
    /// close() with nothing unread, or process exit.
    Close,
    /// close() with unread received data.
    CloseUnread,
    /// close() with SO_LINGER {1, 0}.
    Linger0,
    ShutRd,
    ShutRdwr,
    ShutWr,
}

/// `Call::ALL` (from `named!`) is in sorted order of the codes, which is
/// also the bit order of [`CallSet`].
impl Call {
    pub fn code(self) -> &'static str {
        self.name()
    }

    pub fn from_code(code: &str) -> Option<Call> {
        Call::ALL.iter().copied().find(|c| c.code() == code)
    }
}

named!(Call {
    Close => "close",
    CloseUnread => "close_unread",
    Linger0 => "linger0",
    ShutRd => "shut_rd",
    ShutRdwr => "shut_rdwr",
    ShutWr => "shut_wr",
});

/// The candidates of one step: a set of calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallSet(u8);

impl CallSet {
    pub fn of(calls: &[Call]) -> CallSet {
        CallSet(calls.iter().fold(0, |bits, c| bits | 1 << *c as u8))
    }
    pub fn contains(self, call: Call) -> bool {
        self.0 & (1 << call as u8) != 0
    }
    /// Candidates in sorted order.
    pub fn iter(self) -> impl Iterator<Item = Call> {
        Call::ALL.iter().copied().filter(move |c| self.contains(*c))
    }
}

impl CallSet {
    /// The text `Display` writes, piece by piece (codes joined by `|`):
    /// for writers that take texts without the `fmt` machinery.
    pub fn pieces(self, mut piece: impl FnMut(&'static str)) {
        for (i, call) in self.iter().enumerate() {
            if i > 0 {
                piece("|");
            }
            piece(call.code());
        }
    }
}

/// Writes `pieces` to `f`, stopping at its first error.
fn write_pieces(
    f: &mut fmt::Formatter<'_>,
    pieces: impl FnOnce(&mut dyn FnMut(&'static str)),
) -> fmt::Result {
    let mut written = Ok(());
    pieces(&mut |piece| {
        if written.is_ok() {
            written = f.write_str(piece);
        }
    });
    written
}

impl fmt::Display for CallSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pieces(f, |piece| self.pieces(piece))
    }
}

impl serde::Serialize for CallSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Call::code))
    }
}

/// The teardown steps of one endpoint: at most a FIN and a later abort.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CallSteps {
    steps: [CallSet; 2],
    len: u8,
}

impl CallSteps {
    pub fn push(&mut self, step: CallSet) {
        if (self.len as usize) < self.steps.len() {
            self.steps[self.len as usize] = step;
            self.len += 1;
        }
    }
    pub fn steps(&self) -> &[CallSet] {
        &self.steps[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The steps in three bytes (their count, then each step's call bits),
    /// for held rows' verdicts on a spill file (`pipeline/spill.rs`).
    pub fn to_bytes(self) -> [u8; 3] {
        [self.len, self.steps[0].0, self.steps[1].0]
    }
    pub fn from_bytes(bytes: [u8; 3]) -> CallSteps {
        CallSteps {
            steps: [CallSet(bytes[1]), CallSet(bytes[2])],
            len: bytes[0].min(2),
        }
    }
}

impl CallSteps {
    /// The text `Display` writes, piece by piece: for writers that take
    /// texts without the `fmt` machinery (a connection's line).
    pub fn pieces(&self, mut piece: impl FnMut(&'static str)) {
        for (i, step) in self.steps().iter().enumerate() {
            if i > 0 {
                piece(">");
            }
            step.pieces(&mut piece);
        }
    }
}

impl fmt::Display for CallSteps {
    /// Steps joined by `>`, candidates by `|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pieces(f, |piece| self.pieces(piece))
    }
}

impl serde::Serialize for CallSteps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.steps())
    }
}

/// The first step after a FIN. Class 1: the endpoint later ACKed new
/// payload, so it could still read: only SHUT_WR leaves a socket readable.
pub const FIN_STILL_READING: &[Call] = &[Call::ShutWr];
/// Class 2: new payload after the FIN was answered by an RST.
pub const FIN_STOPPED_READING: &[Call] = &[Call::Close, Call::ShutRdwr];
/// Class 3: a FIN and nothing later that tells more.
pub const FIN_UNDECIDED: &[Call] = &[Call::Close, Call::ShutRdwr, Call::ShutWr];
/// Class 4: an abortive RST after payload was received.
pub const ABORT_AFTER_DATA: &[Call] = &[Call::CloseUnread, Call::Linger0, Call::ShutRd];
/// Class 5: an abortive RST, never having received payload.
pub const ABORT_WITHOUT_DATA: &[Call] = &[Call::Linger0];

/// The teardown evidence one endpoint gathers (filled by the connection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Its first FIN.
    pub fin_frame: Option<FrameNumber>,
    /// Sequence number where new peer payload after its FIN starts.
    pub new_peer_data_from: Option<u32>,
    /// It ACKed new peer payload after its FIN (class 1).
    pub acked_new_data_frame: Option<FrameNumber>,
    /// It reset new peer payload after its FIN (class 2).
    pub reset_new_data_frame: Option<FrameNumber>,
    /// Its first abortive RST.
    pub abort_frame: Option<FrameNumber>,
    /// It had received peer payload before that RST.
    pub received_payload_before_abort: bool,
    /// Its FIN was not captured: the peer's `fin_frame` acknowledged it,
    /// one beyond where the peer was last proven open.
    pub fin_unseen: bool,
    /// Its first signal came before this frame's, whatever the capture
    /// order: the peer's segment in that frame acknowledged its FIN (a FIN
    /// the capture shows later, or never).
    pub ordered_before: Option<FrameNumber>,
    /// At its first teardown signal, nothing proved that the peer had not
    /// closed before (see `Connection::check_peer_open`).
    pub peer_may_have_closed_first: bool,
    /// It answered with a stray RST (it no longer had the connection)
    /// before any teardown signal of its was seen: without a later one, it
    /// closed unseen (a FIN or RST lost before the capture point, or sent
    /// before it began).
    pub closed_unseen: bool,
}

impl Evidence {
    /// Frame of its first teardown signal: FIN or abortive RST.
    pub fn first_signal(&self) -> Option<FrameNumber> {
        match (self.fin_frame, self.abort_frame) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Its first signal, ordered: a FIN came before the frame that
    /// acknowledged it.
    fn signal_order(&self) -> Option<(FrameNumber, bool)> {
        match self.ordered_before {
            Some(frame) => Some((frame, false)),
            None => self.first_signal().map(|frame| (frame, true)),
        }
    }

    /// The steps the wire allows, per the classes of `docs/semantics.md`.
    /// `whole_history`: the capture saw everything the peer sent to it
    /// (its start, and the peer's direction), so that "never received
    /// payload" is known rather than unseen.
    pub fn calls(&self, whole_history: bool) -> CallSteps {
        let mut steps = CallSteps::default();
        if self.fin_frame.is_some() {
            steps.push(CallSet::of(if self.acked_new_data_frame.is_some() {
                FIN_STILL_READING
            } else if self.reset_new_data_frame.is_some() {
                FIN_STOPPED_READING
            } else {
                FIN_UNDECIDED
            }));
        }
        if self.abort_frame.is_some() {
            steps.push(CallSet::of(
                if self.received_payload_before_abort || !whole_history {
                    ABORT_AFTER_DATA
                } else {
                    ABORT_WITHOUT_DATA
                },
            ));
        }
        steps
    }

    pub fn closed_by(&self) -> ClosedBy {
        match (self.fin_frame, self.abort_frame) {
            (Some(_), Some(_)) => ClosedBy::FinRst,
            (Some(_), None) => ClosedBy::Fin,
            (None, Some(_)) => ClosedBy::Rst,
            (None, None) => ClosedBy::None,
        }
    }

    /// It stopped reading at its FIN: later data to it is `data-to-closed`.
    pub fn stopped_reading_at_fin(&self) -> bool {
        self.fin_frame.is_some()
            && self.reset_new_data_frame.is_some()
            && self.acked_new_data_frame.is_none()
    }

    /// Frames that decided its verdict, in frame order.
    pub fn frames(&self) -> Vec<u64> {
        let mut frames: Vec<u64> = [
            self.fin_frame,
            self.acked_new_data_frame,
            self.reset_new_data_frame,
            self.abort_frame,
        ]
        .into_iter()
        .flatten()
        .map(FrameNumber::get)
        .collect();
        frames.sort_unstable();
        frames.dedup();
        frames
    }
}

/// An endpoint's part in the teardown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sent the first teardown signal before any came from the peer.
    Active,
    /// Its peer was active.
    Passive,
    /// Both sent FIN before acknowledging the other's.
    Simultaneous,
    /// No teardown (refused, or still open).
    #[default]
    None,
    /// The capture cannot tell: the peer may have closed first unseen.
    Unknown,
}

/// How an endpoint closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClosedBy {
    Fin,
    Rst,
    FinRst,
    #[default]
    None,
    /// Its direction was never captured.
    Unknown,
}

/// How the connection ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Both FINs, no accepted RST.
    Graceful,
    /// An accepted RST closed an endpoint that was still open.
    Reset,
    /// The SYN was answered by an RST.
    Refused,
    /// One FIN only.
    HalfClosed,
    #[default]
    Open,
    /// The capture cannot tell: a direction was never captured, or an RST
    /// came with nothing showing the connection was still open.
    Unknown,
}

/// Which side closed first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Closer {
    Client,
    Server,
    Both,
    #[default]
    None,
    /// The capture cannot tell who closed first.
    Unknown,
}

/// What the capture point did not see that made a verdict wider than a
/// whole capture would (`docs/semantics.md`, "What the capture point saw").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unseen {
    /// One endpoint's direction was never captured.
    OneDirection,
    /// The capture started after the connection did.
    Start,
    /// The capture stopped before its end: a first FIN never answered.
    End,
    /// A close lost before the capture point (a stray RST shows it).
    Close,
    /// Segments the capture missed otherwise (an ACK beyond unseen data).
    Segments,
}

named!(Role { Active => "active", Passive => "passive", Simultaneous => "simultaneous", None => "none", Unknown => "unknown" });
named!(ClosedBy { Fin => "fin", Rst => "rst", FinRst => "fin+rst", None => "none", Unknown => "unknown" });
named!(Outcome {
    Graceful => "graceful",
    Reset => "reset",
    Refused => "refused",
    HalfClosed => "half-closed",
    Open => "open",
    Unknown => "unknown",
});
named!(Closer { Client => "client", Server => "server", Both => "both", None => "none", Unknown => "unknown" });
named!(Unseen {
    OneDirection => "one-direction",
    Start => "start-unseen",
    End => "end-unseen",
    Close => "close-unseen",
    Segments => "segments-unseen",
});

impl Unseen {
    /// Why an answer is wider than a whole capture's, in words: one phrase
    /// for a FIN row's "cannot be told" and for `summary`'s count of
    /// widened answers, so the two never say it differently.
    pub fn because(self) -> &'static str {
        match self {
            Unseen::OneDirection => "the capture saw one direction only",
            Unseen::Start => "the capture started after the connection did",
            Unseen::End => {
                "the capture saw no answer to a close (it stopped first, or the answer was lost)"
            }
            Unseen::Close => "a close was lost before the capture point",
            Unseen::Segments => "the capture missed segments",
        }
    }
}

/// Which endpoint is the client, and whether the capture showed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientChoice {
    /// Index of the client endpoint in the connection.
    pub index: usize,
    /// No SYN or SYN+ACK told: decided from the ports.
    pub guessed: bool,
}

/// What the engine concludes about one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointVerdict {
    pub calls: CallSteps,
    pub role: Role,
    pub closed_by: ClosedBy,
    pub stopped_reading_at_fin: bool,
    /// The RSTs in its name were forged on the path (`tracking/origin.rs`).
    pub rst_forged: bool,
    /// Why (`origin::Why`).
    pub forged_why: crate::tracking::origin::Why,
}

/// The per-connection hindsight kept between the two passes: small, so
/// that it costs little even for millions of connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnVerdict {
    pub endpoints: [EndpointVerdict; 2],
    pub client: ClientChoice,
    pub simultaneous: bool,
    pub outcome: Outcome,
    pub closer: Closer,
    /// The first RST came right after a long silence and was forged or
    /// stray: the path dropped the idle connection (`tracking/idle.rs`).
    pub idle_reset: Option<crate::tracking::idle::IdleRst>,
    /// The answers are wider than a whole capture would make them (an
    /// outcome, closer or `closed_by` `unknown`, or an abort's calls the
    /// wider class), and what the capture point did not see that made
    /// them so (the first that applies).
    pub widened: Option<Unseen>,
    /// The capture ends before the connection does (no endpoint finished,
    /// as seen): the frame of its last segment, whose row says so.
    pub end_unseen_at: Option<std::num::NonZeroU64>,
}

/// What the capture point saw of a connection; every verdict depends on
/// it (the table in `docs/semantics.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sight {
    /// The connection's first segment is a SYN: its whole history is there.
    pub start: bool,
    /// Per endpoint: it sent something (its peer ACKed) but the capture
    /// never shows it sending: its direction was not captured.
    pub unseen: [bool; 2],
    /// Per endpoint: the capture started late and it sent no payload in
    /// it, so nothing shows it had not closed before the capture began.
    pub past_unseen: [bool; 2],
    /// An RST was accepted while no endpoint was known to be open.
    pub rst_on_unknown: bool,
    /// Per endpoint: the frame of the last segment it sent.
    pub last_sent: [Option<FrameNumber>; 2],
    /// Per endpoint: it acknowledged the peer's FIN, whatever the capture
    /// order (an ACK captured before the FIN still answered it).
    pub acked_peer_fin: [bool; 2],
}

impl Sight {
    /// Endpoint `i` sent nothing at or after `frame` (to the end of the
    /// capture).
    fn silent_from(&self, i: usize, frame: FrameNumber) -> bool {
        self.last_sent[i].is_none_or(|last| last < frame)
    }
}

/// The facts about a finished connection that the verdict is built from.
pub struct ConnFacts<'a> {
    pub evidence: [&'a Evidence; 2],
    pub client: ClientChoice,
    pub simultaneous: bool,
    pub refused: bool,
    pub reset: bool,
    pub sight: Sight,
}

/// Builds the verdict of a connection from its facts, as wide as the
/// capture point requires: who closed first is `unknown` when the peer of
/// the first closer may have closed before unseen (never seen, a stray
/// RST from it, or silent after the first FIN to the end of the capture);
/// the outcome is `unknown` when a direction was never captured and no
/// RST settles it, or when an RST came with nothing showing the
/// connection still open.
pub fn infer(facts: &ConnFacts<'_>) -> ConnVerdict {
    let [a, b] = facts.evidence;
    let sight = facts.sight;
    let one_sided = sight.unseen.contains(&true);
    // Per endpoint: its peer's first signal is a FIN it never answered,
    // sending nothing from then to the end of the capture. Its own close
    // may have been lost on the way (or still be in flight): whether it
    // had closed, and so who closed first, is untold.
    let unanswered = [(0, a, b), (1, b, a)].map(|(i, own, peer)| {
        own.first_signal().is_none()
            && peer.fin_frame.is_some_and(|fin| {
                peer.ordered_before.is_none()
                    && peer.first_signal() == Some(fin)
                    && !sight.acked_peer_fin[i]
                    && sight.silent_from(i, fin)
            })
    });
    let roles = if facts.refused {
        [Role::None, Role::None]
    } else if facts.simultaneous && a.fin_frame.is_some() && b.fin_frame.is_some() {
        [Role::Simultaneous, Role::Simultaneous]
    } else {
        let (first, by_frames) = match (a.signal_order(), b.signal_order()) {
            (Some(x), Some(y)) if x <= y => (a, [Role::Active, Role::Passive]),
            (Some(_), Some(_)) => (b, [Role::Passive, Role::Active]),
            (Some(_), None) => (a, [Role::Active, Role::Passive]),
            (None, Some(_)) => (b, [Role::Passive, Role::Active]),
            (None, None) => (a, [Role::None, Role::None]),
        };
        let peer = usize::from(by_frames[0] == Role::Active);
        let untold = by_frames[0] != Role::None
            && (one_sided
                || (first.peer_may_have_closed_first && first.ordered_before.is_none())
                || facts.evidence[peer].closed_unseen
                || unanswered[peer]);
        if untold {
            [Role::Unknown, Role::Unknown]
        } else {
            by_frames
        }
    };
    let whole_history = sight.start && !one_sided;
    // Its direction never captured, a stray RST from it before any close
    // of its was seen, or (late start) no signal and nothing proving it
    // had not closed before: how it closed is unknown.
    let untold_close = |i: usize, e: &Evidence| {
        let no_signal = e.first_signal().is_none();
        sight.unseen[i] || (no_signal && (e.closed_unseen || sight.past_unseen[i])) || unanswered[i]
    };
    let untold = [untold_close(0, a), untold_close(1, b)];
    let verdict_of = |i: usize, e: &Evidence, role: Role| {
        if facts.refused {
            // A refused connection never opened: what follows on its
            // 4-tuple (short of a new SYN) closes nothing.
            return EndpointVerdict::default();
        }
        EndpointVerdict {
            calls: e.calls(whole_history),
            role,
            closed_by: if untold[i] {
                ClosedBy::Unknown
            } else {
                e.closed_by()
            },
            stopped_reading_at_fin: e.stopped_reading_at_fin(),
            rst_forged: false,
            forged_why: crate::tracking::origin::Why::default(),
        }
    };
    let outcome = if facts.refused {
        Outcome::Refused
    } else if facts.reset {
        Outcome::Reset
    } else if untold.contains(&true) || sight.rst_on_unknown {
        Outcome::Unknown
    } else {
        match (a.fin_frame.is_some(), b.fin_frame.is_some()) {
            (true, true) => Outcome::Graceful,
            (true, false) | (false, true) => Outcome::HalfClosed,
            (false, false) => Outcome::Open,
        }
    };
    let client = facts.client.index;
    let closer = match roles {
        [Role::Simultaneous, _] => Closer::Both,
        [Role::Active, _] if client == 0 => Closer::Client,
        [Role::Active, _] => Closer::Server,
        [_, Role::Active] if client == 1 => Closer::Client,
        [_, Role::Active] => Closer::Server,
        [Role::Unknown, _] => Closer::Unknown,
        // Something ended it (an RST no teardown signal explains), or the
        // capture cannot tell: not "nobody".
        _ if !matches!(outcome, Outcome::Open | Outcome::Refused) => Closer::Unknown,
        _ => Closer::None,
    };
    let roles = if closer == Closer::Unknown {
        [Role::Unknown, Role::Unknown]
    } else {
        roles
    };
    let endpoints = [verdict_of(0, a, roles[0]), verdict_of(1, b, roles[1])];
    // An abort in a capture that cannot show every byte received: the
    // wider class 4 where class 5 might have been told.
    let wide_abort = [a, b]
        .iter()
        .any(|e| e.abort_frame.is_some() && !e.received_payload_before_abort && !whole_history);
    let widened = (outcome == Outcome::Unknown
        || closer == Closer::Unknown
        || endpoints.iter().any(|e| e.closed_by == ClosedBy::Unknown)
        || wide_abort)
        .then(|| {
            if one_sided {
                Unseen::OneDirection
            } else if a.closed_unseen || b.closed_unseen {
                Unseen::Close
            } else if unanswered.contains(&true) {
                Unseen::End
            } else if !sight.start {
                Unseen::Start
            } else {
                Unseen::Segments
            }
        });
    ConnVerdict {
        endpoints,
        client: facts.client,
        simultaneous: facts.simultaneous,
        outcome,
        closer,
        idle_reset: None,
        widened,
        end_unseen_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin_at(frame: u64) -> Evidence {
        Evidence {
            fin_frame: FrameNumber::new(frame),
            ..Evidence::default()
        }
    }

    #[test]
    fn classes_print_as_the_sidecar_wants() {
        let mut shut_wr_then_abort = fin_at(5);
        shut_wr_then_abort.acked_new_data_frame = FrameNumber::new(8);
        shut_wr_then_abort.abort_frame = FrameNumber::new(10);
        shut_wr_then_abort.received_payload_before_abort = true;
        assert_eq!(
            shut_wr_then_abort.calls(true).to_string(),
            "shut_wr>close_unread|linger0|shut_rd"
        );
        assert_eq!(shut_wr_then_abort.closed_by(), ClosedBy::FinRst);

        let mut stopped = fin_at(5);
        stopped.reset_new_data_frame = FrameNumber::new(9);
        assert_eq!(stopped.calls(true).to_string(), "close|shut_rdwr");
        assert!(stopped.stopped_reading_at_fin());

        assert_eq!(fin_at(5).calls(true).to_string(), "close|shut_rdwr|shut_wr");

        let linger = Evidence {
            abort_frame: FrameNumber::new(4),
            ..Evidence::default()
        };
        assert_eq!(linger.calls(true).to_string(), "linger0");
        assert_eq!(Evidence::default().calls(true).to_string(), "");
    }

    #[test]
    fn a_fin_never_answered_leaves_the_peer_and_the_order_untold() {
        let client = fin_at(7);
        let server = Evidence::default();
        let sight = |server_last: u64| Sight {
            start: true,
            last_sent: [FrameNumber::new(9), FrameNumber::new(server_last)],
            ..Sight::default()
        };
        let verdict = |server_last| {
            infer(&ConnFacts {
                evidence: [&client, &server],
                client: ClientChoice::default(),
                simultaneous: false,
                refused: false,
                reset: false,
                sight: sight(server_last),
            })
        };
        // The server sent nothing from the FIN on: its close may be lost.
        let silent = verdict(6);
        assert_eq!(silent.closer, Closer::Unknown);
        assert_eq!(silent.outcome, Outcome::Unknown);
        assert_eq!(silent.endpoints[1].closed_by, ClosedBy::Unknown);
        // It acknowledged the FIN (frame 8): it was open, the client closed first.
        let answered = verdict(8);
        assert_eq!(answered.closer, Closer::Client);
        assert_eq!(answered.outcome, Outcome::HalfClosed);
        assert_eq!(answered.endpoints[1].closed_by, ClosedBy::None);
    }

    #[test]
    fn the_first_signal_makes_the_active_side() {
        let client = fin_at(7);
        let server = Evidence {
            abort_frame: FrameNumber::new(3),
            ..Evidence::default()
        };
        let facts = ConnFacts {
            evidence: [&client, &server],
            client: ClientChoice::default(),
            simultaneous: false,
            refused: false,
            reset: true,
            sight: Sight {
                start: true,
                ..Sight::default()
            },
        };
        let verdict = infer(&facts);
        assert_eq!(verdict.endpoints[0].role, Role::Passive);
        assert_eq!(verdict.endpoints[1].role, Role::Active);
        assert_eq!(verdict.closer, Closer::Server);
        assert_eq!(verdict.outcome, Outcome::Reset);
    }
}
