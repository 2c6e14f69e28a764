//! The invariants every annotation must satisfy, whatever the input: one
//! row per decoded TCP segment, rows in frame order, connection ids in
//! range, `related` never pointing forward, one report per connection
//! whose outcome, closer, `closed_by` and final states agree
//! ([`consistent`]), and the same rows whether made in one pass, in two,
//! or in one whose held rows wait on a spill file.
//! The mangled-input test, the property tests and the fuzz target all run
//! captures through [`annotate_checked`]; a broken invariant panics. The
//! property tests also hold each row's states to the endpoint's table
//! ([`state_change_allowed`]).

use crate::output::csv::CsvSink;
use crate::output::reports::ConnectionReport;
use crate::output::rows::{Row, Side};
use crate::pipeline::schedule::{annotate_bytes, Schedule};
use crate::pipeline::sinks::RowSink;
use crate::pipeline::summary::{CaptureSummary, Detail, Verdicts};
use crate::tracking::endpoint::{transition, EndpointEvent, TcpState};
use crate::tracking::event::Event;
use crate::tracking::inference::{ClosedBy, Closer, Outcome, Role};

/// A sink that asserts the row invariants as rows arrive.
#[derive(Default)]
struct InvariantSink<'n> {
    name: &'n str,
    rows: u64,
    last_frame: u64,
    connections: u32,
    /// Each connection's closer, by id (from the reports the two-pass
    /// schedule hands `begin`).
    closers: Vec<Closer>,
}

impl RowSink for InvariantSink<'_> {
    fn begin(
        &mut self,
        capture: &CaptureSummary,
        reports: &[ConnectionReport],
    ) -> std::io::Result<()> {
        self.connections = capture.connections;
        self.closers = vec![Closer::Unknown; capture.connections as usize];
        for report in reports {
            self.closers[report.id as usize] = report.closer;
        }
        Ok(())
    }

    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        assert!(row.frame > self.last_frame, "rows in frame order");
        assert!(row.conn < self.connections, "connection id in range");
        assert!(
            row.related.is_none_or(|r| r <= row.frame),
            "related points back"
        );
        if let Err(why) = fin_order_claimed(row, self.closers[row.conn as usize]) {
            panic!("{}: frame {}: {why}", self.name, row.frame);
        }
        // The sentence is produced lazily: make sure it can be.
        let _ = row.summary.to_string();
        self.last_frame = row.frame;
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Annotates `bytes` as a capture, checking every invariant. Returns the
/// result, or `None` when the bytes could not be read as a capture at all.
pub fn annotate_checked(bytes: &[u8], name: &str) -> Option<Verdicts> {
    let mut sink = InvariantSink {
        name,
        ..InvariantSink::default()
    };
    let result =
        annotate_bytes(bytes, name, Detail::Reports, &mut sink, Schedule::TwoPasses).ok()?;
    assert_eq!(
        sink.rows, result.capture.decode.tcp_segments,
        "{name}: one row per TCP frame"
    );
    assert_eq!(
        result.reports.len() as u32,
        result.capture.connections,
        "{name}: one report per connection"
    );
    for report in &result.reports {
        if let Err(why) = consistent(report) {
            panic!("{name}: connection {}: {why}", report.id);
        }
    }
    // The capture's counts are the connections' own.
    let mut sight = crate::pipeline::summary::SightCounts::default();
    for report in &result.reports {
        sight.add_report(report);
    }
    assert_eq!(sight, result.capture.sight, "{name}: sight counts");
    let csv = |schedule| {
        let mut out = Vec::new();
        annotate_bytes(
            bytes,
            name,
            Detail::Verdicts,
            &mut CsvSink::new(&mut out),
            schedule,
        )
        .map(|_| out)
        .map_err(|e| e.to_string())
    };
    let two = csv(Schedule::TwoPasses);
    assert_eq!(
        csv(Schedule::default()),
        two,
        "{name}: one pass = two passes"
    );
    // Every held row but one waits on the spill file; on one thread, and
    // on two.
    for spilling in [
        Schedule::OnePass { max_held_rows: 1 },
        Schedule::OnePassThreaded { max_held_rows: 1 },
    ] {
        assert_eq!(csv(spilling), two, "{name}: {spilling:?} = two passes");
    }
    Some(result)
}

/// A FIN row claims no more of the order of the closes than its
/// connection's verdict knows: `fin-active` only from the closer,
/// `fin-passive` only from the other endpoint, `fin-simultaneous` only when
/// both closed at once, and `fin-order-unknown` exactly when the closer is
/// unknown.
pub fn fin_order_claimed(row: &Row, closer: Closer) -> Result<(), String> {
    let sender = match row.summary.sender() {
        Side::Client => Closer::Client,
        Side::Server => Closer::Server,
    };
    let e = row.events;
    let claims = [
        (Event::FinActive, closer == sender),
        (
            Event::FinPassive,
            matches!(closer, Closer::Client | Closer::Server) && closer != sender,
        ),
        (Event::FinSimultaneous, closer == Closer::Both),
        (Event::FinOrderUnknown, closer == Closer::Unknown),
    ];
    for (event, allowed) in claims {
        if e.contains(event) && !allowed {
            return Err(format!(
                "a {event} row from the {sender} where the closer is {closer}"
            ));
        }
    }
    Ok(())
}

/// Outcome, closer, `closed_by`, roles and final states never contradict
/// each other; `Err` says which rule a report breaks.
pub fn consistent(r: &ConnectionReport) -> Result<(), String> {
    let closed_by = [r.endpoints[0].closed_by, r.endpoints[1].closed_by];
    let roles = [r.endpoints[0].role, r.endpoints[1].role];
    let states = [r.endpoints[0].final_state, r.endpoints[1].final_state];
    let fins = closed_by
        .iter()
        .filter(|c| matches!(c, ClosedBy::Fin | ClosedBy::FinRst))
        .count();
    let check = |ok: bool, rule: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{rule}: outcome {}, closer {}, closed_by {closed_by:?}, roles {roles:?}, states {states:?}",
                r.outcome, r.closer
            ))
        }
    };
    let aborted = closed_by
        .iter()
        .any(|c| matches!(c, ClosedBy::Rst | ClosedBy::FinRst));
    check(
        !aborted || r.outcome == Outcome::Reset,
        "an abortive RST makes the outcome reset",
    )?;
    match r.outcome {
        Outcome::Graceful => check(
            closed_by == [ClosedBy::Fin; 2],
            "graceful: both closed by FIN",
        )?,
        Outcome::HalfClosed => check(
            fins == 1 && closed_by.contains(&ClosedBy::None),
            "half-closed: one FIN, nothing from the other",
        )?,
        Outcome::Open | Outcome::Refused => check(
            closed_by == [ClosedBy::None; 2]
                && r.closer == Closer::None
                && !states
                    .iter()
                    .any(|s| s.is_finished() && r.outcome == Outcome::Open),
            "open or refused: nobody closed, no endpoint finished while open",
        )?,
        Outcome::Reset | Outcome::Unknown => {}
    }
    match r.closer {
        Closer::None => check(
            roles == [Role::None; 2] && matches!(r.outcome, Outcome::Open | Outcome::Refused),
            "nobody closed: no roles, and the connection is open or refused",
        ),
        Closer::Unknown => check(roles == [Role::Unknown; 2], "closer unknown: roles unknown"),
        Closer::Both => check(
            roles == [Role::Simultaneous; 2] && fins == 2,
            "both closed: both simultaneous, both sent FIN",
        ),
        Closer::Client | Closer::Server => {
            let (closer, other) = if r.closer == Closer::Client {
                (0, 1)
            } else {
                (1, 0)
            };
            check(
                roles[closer] == Role::Active
                    && roles[other] == Role::Passive
                    && !matches!(closed_by[closer], ClosedBy::None | ClosedBy::Unknown),
                "the closer is the active endpoint, and closed",
            )
        }
    }?;
    // An endpoint that closed is not left ESTABLISHED.
    for (by, state) in closed_by.iter().zip(states) {
        check(
            matches!(by, ClosedBy::None | ClosedBy::Unknown) || state != TcpState::Established,
            "an endpoint that closed is not still established",
        )?;
    }
    // The end is unseen exactly when no endpoint finished and the close
    // is not whole (both FINs: a simultaneous close whose final ACKs the
    // capture missed has ended); then nothing ended it (no RST, no
    // refusal), and no call is narrower than the wire can prove (class 5,
    // `linger0` alone, needs an abort).
    let end_unseen = r.notes.contains(&"end-unseen");
    check(
        end_unseen == (states.iter().all(|s| !s.is_finished()) && r.outcome != Outcome::Graceful),
        "end unseen exactly when no endpoint finished and the close is not whole",
    )?;
    check(
        !end_unseen
            || (!matches!(r.outcome, Outcome::Reset | Outcome::Refused)
                && r.endpoints.iter().all(|e| e.calls.to_string() != "linger0")),
        "end unseen: not reset or refused, no narrow abort class",
    )?;
    // Every unknown is explained by what the capture point did not see.
    let unknown = r.outcome == Outcome::Unknown
        || r.closer == Closer::Unknown
        || closed_by.contains(&ClosedBy::Unknown);
    check(
        !unknown || r.widened.is_some(),
        "an unknown answer says why it is widened",
    )?;
    check(
        r.widened.is_none()
            || unknown
            || r.endpoints
                .iter()
                .any(|e| e.calls.to_string().contains("close_unread")),
        "a widened connection has an unknown or a wider class",
    )?;
    Ok(())
}

/// Events one segment can chain; `Reset` is handled apart (it ends a chain).
const EVENTS: [EndpointEvent; 8] = [
    EndpointEvent::SendSyn,
    EndpointEvent::SendSynAck,
    EndpointEvent::RecvSynAck,
    EndpointEvent::RecvAckOfSyn,
    EndpointEvent::SendMidStream,
    EndpointEvent::SendFin,
    EndpointEvent::RecvFin,
    EndpointEvent::RecvAckOfFin,
];

/// Can `to` be reached from `from` in at most `steps` table transitions?
fn reachable(from: TcpState, to: TcpState, steps: usize) -> bool {
    if from == to {
        return true;
    }
    steps > 0
        && EVENTS.iter().any(|&e| {
            let next = transition(from, e);
            next != from && reachable(next, to, steps - 1)
        })
}

/// May an endpoint's state go from `from` (its state in its previous row)
/// to `to` in `row` (as its sender when `is_sender`)? At most three table
/// transitions per segment, or a reset.
pub fn state_change_allowed(from: TcpState, to: TcpState, row: &Row, is_sender: bool) -> bool {
    if reachable(from, to, 3) || to == transition(from, EndpointEvent::Reset) {
        return true;
    }
    // The simultaneous-close correction (connection.rs observe_fin): the
    // sender had already been moved to CLOSE-WAIT by the peer's FIN, which
    // it had not received when it sent its own; and the peer may have
    // acknowledged that FIN in a segment captured before it.
    // Both corrections happen on a sender's first FIN, whatever place in
    // the order of the closes its verdict gives it (`fin-simultaneous`,
    // `fin-active`, `fin-order-unknown`, or none on a refused
    // connection's 4-tuple: `SegmentFacts::resolved`).
    let first_fin = row.flags.fin() && !row.events.contains(Event::FinRetransmit);
    let closing = TcpState::Closing;
    let simultaneous = is_sender
        && first_fin
        && (to == closing || to == transition(closing, EndpointEvent::RecvAckOfFin));
    // The FIN seen late (connection.rs observe_fin): its peer's FIN,
    // captured first, had acknowledged it, so its sender ends in TIME-WAIT
    // and the peer in LAST-ACK (or CLOSED) at once.
    let seen_late = if is_sender {
        EndpointEvent::SendFinSeenLate
    } else {
        EndpointEvent::RecvFinSeenLate
    };
    simultaneous || (first_fin && to == transition(from, seen_late))
}

#[cfg(test)]
mod tests {
    use super::reachable;
    use crate::tracking::endpoint::TcpState as S;

    #[test]
    fn reachable_follows_the_table() {
        assert!(reachable(S::FinWait1, S::TimeWait, 2));
        assert!(!reachable(S::TimeWait, S::Established, 3));
        assert!(!reachable(S::Closed, S::FinWait2, 1));
    }
}
