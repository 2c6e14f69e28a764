//! A run against the scenario table: what the wire must show (read back
//! with `wire`, independently of the engine), that the calls the table
//! expects were made, and what the engine infers from the capture
//! compared with the calls really made. Every check returns differences
//! as sentences; none means the run and the table agree.

use std::fmt;
use std::path::Path;

use anyhow::Result;
use tcpshut_engine::{ConnectionReport, EndpointReport};

use crate::experiment::Run;
use crate::scenarios::{Call, ConnExpect, Scenario, SideExpect};
use crate::show::{calls_text, inferred, steps_text};
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
                    calls_text(made),
                    steps_text(&side.calls)
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
    let inferred = inferred(got);
    if inferred != expected.calls {
        differences.push(format!(
            "{at}: tcpshut infers {}, the table expects {}",
            steps_text(&inferred),
            steps_text(&expected.calls)
        ));
    }
    for step in &inferred {
        if !step.iter().any(|c| made.contains(c)) {
            differences.push(format!(
                "{at}: tcpshut infers {}, but the application called {}",
                steps_text(std::slice::from_ref(step)),
                calls_text(made)
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
        let made = [&run.client.calls, &run.server.calls]
            .map(|log| log.get(i).map(Vec::as_slice).unwrap_or_default());
        differences.extend(connection_differences(i, exp, made, got));
    }
    differences
}

/// Connection `i`'s report against what the table expects of it and the
/// calls each side (`made`: client, server) really made. A lab run and
/// the recorded test captures (tcpshut-record's manifest test) are held
/// to the table by this one function.
pub fn connection_differences(
    i: usize,
    exp: &ConnExpect,
    made: [&[Call]; 2],
    got: &ConnectionReport,
) -> Vec<String> {
    let mut differences = Vec::new();
    if got.outcome != exp.outcome {
        differences.push(format!(
            "connection {i}: tcpshut says {}, the table expects {}",
            got.outcome.name(),
            exp.outcome.name()
        ));
    }
    for (who, made, expected, endpoint) in [
        ("client", made[0], &exp.client, &got.endpoints[0]),
        ("server", made[1], &exp.server, &got.endpoints[1]),
    ] {
        differences.extend(side_differences(
            &format!("connection {i} {who}"),
            made,
            expected,
            endpoint,
        ));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::SideLog;

    /// A run as the recorder made `shut_wr-client-first.pcap` (the calls
    /// are those of testdata/manifest.json), with its table entry.
    fn committed(client_calls: Vec<Call>) -> (Scenario, Run, std::path::PathBuf) {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/shut_wr-client-first.pcap");
        let sc = crate::scenarios::all()
            .into_iter()
            .find(|s| s.name == "shut_wr-client-first")
            .unwrap();
        let (packets, _) = wire::connections(&file).unwrap();
        let (client_ip, server_ip) = crate::netns::addrs(false);
        let run = Run {
            client: SideLog {
                calls: vec![client_calls],
                ..SideLog::default()
            },
            server: SideLog {
                calls: vec![vec![Call::Close]],
                ..SideLog::default()
            },
            captured: packets as u64,
            client_ip,
            server_ip,
        };
        (sc, run, file)
    }

    fn inference(sc: &Scenario, run: &Run, file: &Path) -> Vec<String> {
        let verdicts = tcpshut_engine::verdicts(file, tcpshut_engine::Detail::Reports).unwrap();
        inference_differences(sc, run, &verdicts.reports)
    }

    #[test]
    fn a_run_as_the_table_says_has_no_differences() {
        let (sc, run, file) = committed(vec![Call::ShutWr, Call::Close]);
        assert_eq!(
            check_wire(&sc, &run, &file).unwrap().differences,
            Vec::<String>::new()
        );
        assert_eq!(inference(&sc, &run, &file), Vec::<String>::new());
    }

    #[test]
    fn a_kernel_that_sends_otherwise_is_a_difference() {
        let (mut sc, run, file) = committed(vec![Call::ShutWr, Call::Close]);
        sc.conns[0].client.wire.rst = 1;
        let differences = check_wire(&sc, &run, &file).unwrap().differences;
        assert_eq!(
            differences,
            [
                "connection 0: the client sent 1 FIN, 0 RST+ACK, 0 RST; the table expects \
              1 FIN, 0 RST+ACK, 1 RST"
            ]
        );
    }

    #[test]
    fn an_inference_without_the_call_made_is_a_difference() {
        // Had the client called only shutdown(SHUT_RD), the inferred
        // close|shut_rdwr|shut_wr would hold none of its calls.
        let (sc, run, file) = committed(vec![Call::ShutRd]);
        let differences = inference(&sc, &run, &file);
        assert_eq!(
            differences,
            [
                "connection 0 client: tcpshut infers close|shut_rdwr|shut_wr, but the application \
              called shut_rd"
            ]
        );
        let wire = check_wire(&sc, &run, &file).unwrap().differences;
        assert!(
            wire[0].contains("the client called shut_rd, which does not fit"),
            "{wire:?}"
        );
    }

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
