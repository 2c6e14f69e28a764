//! The terminal view of a run: each side's calls at the time they began,
//! beside the segments tcpshut annotated (frame, direction, flags, bytes,
//! and the row's sentence), then each connection's verdict next to the
//! calls the applications really made.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tcpshut_engine::Row;
use tcpshut_engine::{ConnectionReport, EndpointReport};

use crate::experiment::Run;
use crate::scenarios::Call;
use crate::script::Called;

/// Width of each side's call column.
const CALL_WIDTH: usize = 24;
const ARROW_RIGHT: &str = "────────────▶";
const ARROW_LEFT: &str = "◀────────────";

enum Entry<'a> {
    Client(&'a Called),
    Server(&'a Called),
    Segment(&'a Row),
}

/// A call as shown: the step, and what it returned.
fn call(c: &Called) -> String {
    match &c.result {
        Some(result) => format!("{} -> {result}", c.step),
        None => c.step.to_string(),
    }
}

fn nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn row_nanos(row: &Row) -> i128 {
    i128::from(row.ts.secs) * 1_000_000_000 + i128::from(row.ts.nanos)
}

/// The timeline: calls and segments in time order (a call before the
/// segments it caused, when the clock cannot tell them apart).
pub fn timeline(out: &mut dyn Write, run: &Run, rows: &[Row]) -> io::Result<()> {
    let mut entries: Vec<(i128, u8, Entry)> = Vec::new();
    for c in &run.client.timeline {
        entries.push((nanos(c.at), 0, Entry::Client(c)));
    }
    for c in &run.server.timeline {
        entries.push((nanos(c.at), 0, Entry::Server(c)));
    }
    for row in rows {
        entries.push((row_nanos(row), 1, Entry::Segment(row)));
    }
    // Stable: each side's calls, and the segments, stay in their order.
    entries.sort_by_key(|(t, kind, _)| (*t, *kind));
    let start = entries.first().map_or(0, |e| e.0);
    writeln!(
        out,
        "{:>9}  {:<CALL_WIDTH$}  {:>5}  {:<25}  {:<CALL_WIDTH$}  tcpshut",
        "ms", "client calls", "frame", "  wire", "server calls"
    )?;
    for (t, _, entry) in &entries {
        let ms = (t - start) as f64 / 1e6;
        let line = match entry {
            Entry::Client(c) => format!("{ms:>9.3}  {}", call(c)),
            Entry::Server(c) => format!(
                "{ms:>9.3}  {:<CALL_WIDTH$}  {:>5}  {:<25}  {}",
                "",
                "",
                "",
                call(c)
            ),
            Entry::Segment(row) => {
                let label = if row.len > 0 {
                    format!("{} {}", row.flags, row.len)
                } else {
                    row.flags.to_string()
                };
                let wire = if row.src.ip() == run.client_ip {
                    format!("{label:<11} {ARROW_RIGHT}")
                } else {
                    format!("{ARROW_LEFT} {label:>11}")
                };
                let mut line = format!(
                    "{ms:>9.3}  {:<CALL_WIDTH$}  {:>5}  {wire:<25}  {:<CALL_WIDTH$}",
                    "", row.frame, ""
                );
                let sentence = row.summary.to_string();
                if !row.events.is_empty() {
                    line.push_str(&format!("  {}", row.events));
                    if !sentence.is_empty() {
                        line.push_str(&format!(": {sentence}"));
                    }
                }
                line.trim_end().to_string()
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Calls made, as their codes: `shut_wr, close`, or `nothing`.
pub fn calls_text(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "nothing".into();
    }
    let names: Vec<&str> = calls.iter().map(|c| c.code()).collect();
    names.join(", ")
}

/// Steps of candidate calls: `shut_wr then close_unread|linger0|shut_rd`,
/// or `-` when nothing is inferred.
pub fn steps_text(steps: &[Vec<Call>]) -> String {
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

/// The steps tcpshut infers for an endpoint, as lists of calls.
pub fn inferred(endpoint: &EndpointReport) -> Vec<Vec<Call>> {
    endpoint
        .calls
        .steps()
        .iter()
        .map(|step| step.iter().collect())
        .collect()
}

/// Each connection: outcome, and per side the calls made beside what
/// tcpshut infers from the wire, and whether every inferred step holds a
/// call really made.
pub fn verdicts(out: &mut dyn Write, run: &Run, reports: &[ConnectionReport]) -> io::Result<()> {
    for (i, report) in reports.iter().enumerate() {
        writeln!(
            out,
            "connection {i} {} -> {}: {}, closed first by {}",
            report.client,
            report.server,
            report.outcome.name(),
            report.closer.name()
        )?;
        for (who, log, endpoint) in [
            ("client", &run.client.calls, &report.endpoints[0]),
            ("server", &run.server.calls, &report.endpoints[1]),
        ] {
            let made = log.get(i).map(Vec::as_slice).unwrap_or_default();
            let steps = inferred(endpoint);
            let fits = steps.iter().all(|s| s.iter().any(|c| made.contains(c)));
            writeln!(
                out,
                "  {who}: called {:<22} tcpshut infers {:<34} ({}, closed by {}){}",
                calls_text(made),
                steps_text(&steps),
                endpoint.role.name(),
                endpoint.closed_by.name(),
                if fits { "" } else { "  <- not what was called" }
            )?;
        }
    }
    Ok(())
}
