//! Annotation: one row per TCP segment, from what the segment meant with
//! its connection's verdict applied ([`ResolvedFacts`]), and
//! the plain sentence that Wireshark's "Shutdown" column shows.

use std::fmt;
use std::net::SocketAddr;

use crate::tracking::connection::ResolvedFacts;
use crate::tracking::endpoint::TcpState;
use crate::tracking::event::{Event, EventSet, Severity};
use crate::tracking::inference::{
    CallSet, CallSteps, ConnVerdict, Unseen, ABORT_AFTER_DATA, ABORT_WITHOUT_DATA,
    FIN_STILL_READING, FIN_STOPPED_READING, FIN_UNDECIDED,
};
use crate::wire::segment::{Segment, TcpFlags, Timestamp};

/// Client or server, for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn of(endpoint: usize, verdict: &ConnVerdict) -> Side {
        Side::client_if(endpoint == verdict.client.index)
    }
    fn client_if(client: bool) -> Side {
        if client {
            Side::Client
        } else {
            Side::Server
        }
    }
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Side::Client => "Client",
            Side::Server => "Server",
        }
    }
}

/// One sidecar row: a TCP segment and its teardown meaning.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub frame: u64,
    pub ts: Timestamp,
    pub conn: u32,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub sender_state: TcpState,
    pub receiver_state: TcpState,
    pub events: EventSet,
    /// The sender's inferred calls, on the segments that reveal them.
    pub calls: Option<CallSteps>,
    pub summary: Summary,
    pub severity: Severity,
    pub related: Option<u64>,
}

impl Row {
    /// The row of `seg`, from its facts with hindsight applied.
    pub fn new(seg: &Segment<'_>, resolved: &ResolvedFacts) -> Row {
        Row::of_fields(
            seg.frame,
            seg.ts,
            [seg.src, seg.dst],
            seg.flags,
            seg.payload_len,
            resolved,
        )
    }

    /// The row of the segment sent from `src_dst[0]` to `src_dst[1]`,
    /// given only the fields of it a row shows (held rows keep no more).
    /// Always inlined: the held rows make a row at two sites, so that
    /// each writes its own facts straight into it.
    #[inline(always)]
    pub(crate) fn of_fields(
        frame: u64,
        ts: Timestamp,
        src_dst: [SocketAddr; 2],
        flags: TcpFlags,
        payload_len: u32,
        resolved: &ResolvedFacts,
    ) -> Row {
        let facts = &resolved.facts;
        Row {
            frame,
            ts,
            conn: facts.conn,
            src: src_dst[0],
            dst: src_dst[1],
            flags,
            seq: facts.rel_seq,
            ack: facts.rel_ack,
            len: payload_len,
            sender_state: facts.sender_state,
            receiver_state: facts.receiver_state,
            events: facts.events,
            calls: resolved.revealed_calls,
            summary: Summary {
                events: facts.events,
                sender: Side::client_if(resolved.sender_is_client),
                calls: resolved.sender_calls,
                forged_why: resolved.forged_why,
                idle_ms: resolved.idle_ms,
                order_unknown: resolved.order_unknown,
                after_peer: resolved.after_peer,
            },
            severity: facts.events.severity(),
            related: facts.related,
        }
    }
}

/// The row's sentence, produced only when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Summary {
    events: EventSet,
    sender: Side,
    calls: CallSteps,
    /// On a forged RST: why.
    forged_why: crate::tracking::origin::Why,
    /// On an idle reset: the silence before it, milliseconds.
    idle_ms: Option<u32>,
    /// On a FIN whose place in the order of the closes cannot be told:
    /// what the capture point did not see.
    order_unknown: Option<Unseen>,
    /// On a `fin-passive` that answers no FIN: its peer had closed by an
    /// RST first.
    after_peer: bool,
}

impl Summary {
    /// What tells most sentences apart (the events, the sender's side
    /// and calls): cheaper to hash than the whole, for a cache's slot
    /// (the cache still compares the whole).
    pub(crate) fn gist(&self) -> (EventSet, Side, CallSteps) {
        (self.events, self.sender, self.calls)
    }
}

/// What a step of calls means, in words.
fn describe_step(step: CallSet) -> &'static str {
    if step == CallSet::of(FIN_STILL_READING) {
        "shutdown(SHUT_WR), a half-close: it still reads"
    } else if step == CallSet::of(FIN_STOPPED_READING) {
        "close() or shutdown(SHUT_RDWR): it no longer reads"
    } else if step == CallSet::of(FIN_UNDECIDED) {
        "close(), shutdown(SHUT_RDWR) or shutdown(SHUT_WR)"
    } else if step == CallSet::of(ABORT_AFTER_DATA) {
        "close() with unread data, SO_LINGER 0, or shutdown(SHUT_RD) then close()"
    } else if step == CallSet::of(ABORT_WITHOUT_DATA) {
        "close() with SO_LINGER 0"
    } else {
        "an unusual sequence of calls"
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.sender.name();
        let peer = self.sender.other().name();
        let e = self.events;
        let steps = self.calls.steps();
        if e.contains(Event::RstForged) {
            write!(
                f,
                "RST in the {}'s name that it did not send (forged on the path): ",
                who.to_lowercase()
            )?;
            write!(f, "{}", self.forged_why)?;
            return self.idle_clause(f);
        }
        if e.contains(Event::RstIgnored) {
            return write!(
                f,
                "{who} sends an RST outside the receiver's window; it is ignored (RFC 5961)"
            );
        }
        if e.contains(Event::RstRefused) {
            return write!(
                f,
                "{who} refuses the connection: nothing listens on the port"
            );
        }
        if e.contains(Event::RstAfterClose) {
            return write!(
                f,
                "{who} resets data that arrived after it closed; {peer} sees \"connection reset by peer\""
            );
        }
        if e.contains(Event::RstAbort) {
            let how = steps.last().map_or("", |s| describe_step(*s));
            return write!(f, "{who} aborts the connection (RST): {how}");
        }
        if e.contains(Event::RstStray) {
            write!(
                f,
                "{who} answers with RST: it no longer has this connection"
            )?;
            return self.idle_clause(f);
        }
        let fin_kind = if e.contains(Event::FinActive) {
            Some("closes first")
        } else if e.contains(Event::FinPassive) && self.after_peer {
            Some(if self.sender == Side::Client {
                "closes after the server did"
            } else {
                "closes after the client did"
            })
        } else if e.contains(Event::FinPassive) {
            Some("closes in reply")
        } else if e.contains(Event::FinSimultaneous) {
            Some("closes at the same time as its peer")
        } else {
            None
        };
        if e.contains(Event::FinOrderUnknown) {
            let how = steps.first().map_or("", |s| describe_step(*s));
            write!(f, "FIN from the {}: {how}", who.to_lowercase())?;
            if steps.len() > 1 {
                f.write_str(", then aborts (RST)")?;
            }
            write!(
                f,
                "; who closed first cannot be told: {}",
                self.order_unknown.unwrap_or(Unseen::Segments).because()
            )?;
            return self.time_wait_clause(f);
        }
        if let Some(kind) = fin_kind {
            let how = steps.first().map_or("", |s| describe_step(*s));
            write!(f, "{who} {kind} (FIN): {how}")?;
            if steps.len() > 1 {
                f.write_str(", then aborts (RST)")?;
            }
            return self.time_wait_clause(f);
        }
        if e.contains(Event::FinRetransmit) {
            return write!(f, "{who} retransmits its FIN");
        }
        if e.contains(Event::DataToClosed) {
            return write!(
                f,
                "{who} sends data to a peer that closed for reading; it will be reset"
            );
        }
        if e.contains(Event::DataAfterFin) {
            return write!(
                f,
                "{who} still sends after the peer's FIN (half-close in use)"
            );
        }
        if e.contains(Event::FinAcked) {
            write!(f, "{who} acknowledges the peer's FIN")?;
            return self.time_wait_clause(f);
        }
        if e.contains(Event::Syn) {
            let again = if e.contains(Event::PortReuse) {
                " on the ports of an earlier one"
            } else {
                ""
            };
            return write!(f, "{who} opens a connection{again}");
        }
        if e.contains(Event::SynAck) {
            return write!(f, "{who} accepts the connection");
        }
        if e.contains(Event::MidStream) {
            return f.write_str("The capture starts mid-connection (no handshake seen)");
        }
        if e.contains(Event::TimeWait) {
            return write!(f, "{peer} enters TIME-WAIT");
        }
        if e.contains(Event::OptionsCut) {
            return f.write_str("The snaplen cut this segment's TCP options");
        }
        if e.contains(Event::EndUnseen) {
            return f.write_str(
                "The capture ends here, before the connection does (its end is not seen)",
            );
        }
        Ok(())
    }
}

impl Summary {
    /// Who sent the row's segment.
    pub fn sender(&self) -> Side {
        self.sender
    }

    /// On an idle reset: how long the connection had been silent.
    fn idle_clause(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.idle_ms {
            Some(ms) => write!(
                f,
                "; after {:.1} s of silence: a NAT or firewall dropped the idle connection",
                f64::from(ms) / 1000.0
            ),
            None => Ok(()),
        }
    }

    fn time_wait_clause(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.events.contains(Event::TimeWait) {
            return Ok(());
        }
        // Only the receiver can enter TIME-WAIT on a segment: by the ACK
        // of its FIN (from CLOSING) or by the peer's FIN (from FIN-WAIT-2).
        write!(f, "; {} enters TIME-WAIT", self.sender.other().name())
    }
}

impl serde::Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
