//! The invariants every annotation must satisfy, whatever the input: one
//! row per decoded TCP segment, rows in frame order, connection ids in
//! range, `related` never pointing forward, one report per connection
//! whose outcome, closer, `closed_by` and final states agree
//! ([`consistent`]), and the same rows whether made in one pass, in two,
//! or in one that gave way to two.
//! The mangled-input test, the property tests and the fuzz target all run
//! captures through [`annotate_checked`]; a broken invariant panics.

use crate::csv::CsvSink;
use crate::endpoint::TcpState;
use crate::inference::{ClosedBy, Closer, Outcome, Role};
use crate::reports::ConnectionReport;
use crate::rows::Row;
use crate::schedule::{annotate_bytes, Schedule};
use crate::sinks::RowSink;
use crate::summary::{CaptureSummary, Detail, Verdicts};

/// A sink that asserts the row invariants as rows arrive.
#[derive(Default)]
struct InvariantSink {
    rows: u64,
    last_frame: u64,
    connections: u32,
}

impl RowSink for InvariantSink {
    fn begin(&mut self, capture: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        self.connections = capture.connections;
        Ok(())
    }

    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        assert!(row.frame > self.last_frame, "rows in frame order");
        assert!(row.conn < self.connections, "connection id in range");
        assert!(
            row.related.is_none_or(|r| r <= row.frame),
            "related points back"
        );
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
    let mut sink = InvariantSink::default();
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
    let gives_way = Schedule::OnePass { max_held_rows: 3 };
    assert_eq!(
        csv(gives_way),
        two,
        "{name}: one pass giving way = two passes"
    );
    Some(result)
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
    Ok(())
}
