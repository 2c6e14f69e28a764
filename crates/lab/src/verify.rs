//! A run against the scenario table: what the wire must show (read back
//! with `wire`, independently of the engine), that the calls the table
//! expects were made, and what the engine infers from the capture
//! compared with the calls really made. Every check returns differences
//! as sentences; none means the run and the table agree.

use std::fmt;
use std::path::Path;

use anyhow::Result;
use tcpshut_engine::report::{ConnectionReport, EndpointReport};

use crate::experiment::Run;
use crate::scenarios::{Call, Scenario, SideExpect};
use crate::wire::{self, Conn, Counts};

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} FIN, {} RST+ACK, {} RST",
            self.fin, self.rst_ack, self.rst
        )
    }
}

/// The expected steps must appear, in order, among the calls really made:
/// guards the hand-written expectations against the recorded ground truth.
pub fn calls_fit(calls: &[Call], expected: &[Vec<Call>]) -> bool {
    let mut rest = calls.iter();
    expected.iter().all(|step| rest.any(|c| step.contains(c)))
}

/// What the capture holds, read back, and how it differs from the table.
pub struct WireCheck {
    pub packets: usize,
    pub conns: Vec<Conn>,
    pub differences: Vec<String>,
}

fn codes(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "nothing".into();
    }
    let names: Vec<&str> = calls.iter().map(|c| c.code()).collect();
    names.join(", ")
}

fn steps(steps: &[Vec<Call>]) -> String {
    let shown: Vec<String> = steps
        .iter()
        .map(|s| {
            let names: Vec<&str> = s.iter().map(|c| c.code()).collect();
            names.join("|")
        })
        .collect();
    if shown.is_empty() {
        "-".into()
    } else {
        shown.join(" then ")
    }
}

/// Reads `capture` back and compares it with what `sc` says the wire and
/// the calls must be.
pub fn check_wire(sc: &Scenario, run: &Run, capture: &Path) -> Result<WireCheck> {
    let (packets, conns) = wire::connections(capture)?;
    let mut differences = Vec::new();
    if packets as u64 != run.captured {
        differences.push(format!(
            "the file holds {packets} packets, tcpdump captured {}",
            run.captured
        ));
    }
    if conns.len() != sc.conns.len() {
        differences.push(format!(
            "{} connections on the wire, the table expects {}",
            conns.len(),
            sc.conns.len()
        ));
    }
    for (i, (w, exp)) in conns.iter().zip(&sc.conns).enumerate() {
        if w.client.ip() != run.client_ip || w.server.ip() != run.server_ip {
            differences.push(format!(
                "connection {i} was opened by {} instead of the client",
                w.client
            ));
        }
        for (who, sent, log, side) in [
            ("client", w.from_client, &run.client.calls, &exp.client),
            ("server", w.from_server, &run.server.calls, &exp.server),
        ] {
            if sent != side.wire {
                differences.push(format!(
                    "connection {i}: the {who} sent {sent}; the table expects {}",
                    side.wire
                ));
            }
            let made = log.get(i).map(Vec::as_slice).unwrap_or_default();
            if !calls_fit(made, &side.calls) {
                differences.push(format!(
                    "connection {i}: the {who} called {}, which does not fit the table's {}",
                    codes(made),
                    steps(&side.calls)
                ));
            }
        }
    }
    Ok(WireCheck {
        packets,
        conns,
        differences,
    })
}

fn side_differences(
    at: &str,
    made: &[Call],
    expected: &SideExpect,
    got: &EndpointReport,
) -> Vec<String> {
    let mut differences = Vec::new();
    let inferred: Vec<Vec<Call>> = got
        .calls
        .steps()
        .iter()
        .map(|step| step.iter().collect())
        .collect();
    if inferred != expected.calls {
        differences.push(format!(
            "{at}: tcpshut infers {}, the table expects {}",
            steps(&inferred),
            steps(&expected.calls)
        ));
    }
    for step in &inferred {
        if !step.iter().any(|c| made.contains(c)) {
            differences.push(format!(
                "{at}: tcpshut infers {}, but the application called {}",
                steps(std::slice::from_ref(step)),
                codes(made)
            ));
        }
    }
    if got.role != expected.role {
        differences.push(format!(
            "{at}: role {}, the table expects {}",
            got.role.name(),
            expected.role.name()
        ));
    }
    if got.closed_by != expected.closed_by {
        differences.push(format!(
            "{at}: closed by {}, the table expects {}",
            got.closed_by.name(),
            expected.closed_by.name()
        ));
    }
    differences
}

/// The engine's reports on the capture against the table and the calls
/// each side really made.
pub fn inference_differences(
    sc: &Scenario,
    run: &Run,
    reports: &[ConnectionReport],
) -> Vec<String> {
    let mut differences = Vec::new();
    if reports.len() != sc.conns.len() {
        differences.push(format!(
            "tcpshut sees {} connections, the table expects {}",
            reports.len(),
            sc.conns.len()
        ));
    }
    for (i, (got, exp)) in reports.iter().zip(&sc.conns).enumerate() {
        if got.outcome != exp.outcome {
            differences.push(format!(
                "connection {i}: tcpshut says {}, the table expects {}",
                got.outcome.name(),
                exp.outcome.name()
            ));
        }
        for (who, log, expected, endpoint) in [
            ("client", &run.client.calls, &exp.client, &got.endpoints[0]),
            ("server", &run.server.calls, &exp.server, &got.endpoints[1]),
        ] {
            let made = log.get(i).map(Vec::as_slice).unwrap_or_default();
            differences.extend(side_differences(
                &format!("connection {i} {who}"),
                made,
                expected,
                endpoint,
            ));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_must_fit_expected_steps_in_order() {
        use Call::*;
        let two = [vec![ShutWr], vec![CloseUnread, Linger0, ShutRd]];
        assert!(calls_fit(&[ShutWr, CloseUnread], &two));
        assert!(!calls_fit(&[CloseUnread, ShutWr], &two));
        assert!(!calls_fit(&[Close], &[vec![Linger0]]));
        assert!(calls_fit(&[Close], &[]));
    }
}
