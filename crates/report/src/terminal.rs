//! The report for a terminal: findings first, then aligned tables. Colour
//! only when asked for ([`wants_colour`]: a terminal, and no `NO_COLOR`).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use crate::document::Document;
use crate::findings::{by_count, duration, share, thousands, Severity};

/// Rows per table on a terminal; JSON and HTML have more.
const TERMINAL_ROWS: usize = 15;

/// Width findings are wrapped to.
const WIDTH: usize = 100;

/// Colour when writing to a terminal, unless `NO_COLOR` is set to
/// anything non-empty (no-color.org).
pub fn wants_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

struct Paint {
    colour: bool,
}

impl Paint {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
    fn heading(&self, text: &str) -> String {
        self.paint(Style::new().bold().underline(), text)
    }
    fn severity(&self, severity: Severity) -> String {
        let (word, colour) = match severity {
            Severity::Error => ("ERROR", AnsiColor::Red),
            Severity::Warn => ("WARN ", AnsiColor::Yellow),
            Severity::Note => ("NOTE ", AnsiColor::Cyan),
            Severity::Info => ("INFO ", AnsiColor::Green),
        };
        self.paint(Style::new().fg_color(Some(colour.into())).bold(), word)
    }
    fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }
}

/// Writes the report.
pub fn write(doc: &Document, colour: bool, out: &mut dyn Write) -> io::Result<()> {
    let p = Paint { colour };
    let i = &doc.inputs;
    let outcomes: Vec<String> = doc
        .outcomes
        .0
        .iter()
        .zip(tcpshut_engine::Outcome::ALL)
        .filter(|(n, _)| **n > 0)
        .map(|(n, o)| format!("{} {o}", thousands(*n)))
        .collect();
    writeln!(
        out,
        "{}",
        p.heading(&format!(
            "tcpshut report: {} capture{}, {} connections ({})",
            thousands(i.captures),
            if i.captures == 1 { "" } else { "s" },
            thousands(i.connections),
            if outcomes.is_empty() {
                "none".into()
            } else {
                outcomes.join(", ")
            }
        ))
    )?;
    if i.failed > 0 || i.incomplete > 0 {
        writeln!(
            out,
            "  {} input(s) could not be read, {} capture(s) were cut short (read up to their last whole record)",
            i.failed, i.incomplete
        )?;
    }
    writeln!(out)?;
    findings(doc, &p, out)?;
    tables(doc, &p, out)
}

fn findings(doc: &Document, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", p.heading("Findings"))?;
    if doc.findings.is_empty() {
        writeln!(
            out,
            "  none: no resets, refusals, TIME-WAIT pile-ups or CLOSE-WAIT leaks worth reporting"
        )?;
    }
    let indent = " ".repeat(11);
    let wrap = |text: &str| {
        textwrap::wrap(
            text,
            textwrap::Options::new(WIDTH).subsequent_indent(&indent),
        )
        .join("\n")
    };
    for f in &doc.findings {
        // Wrap the uncoloured text, then colour the severity word.
        let plain = format!(
            "{:>3}. {:<5} {}",
            f.rank,
            severity_word(f.severity),
            f.title
        );
        let wrapped = wrap(&plain);
        let wrapped = if p.colour {
            wrapped.replacen(
                &format!("{:<5}", severity_word(f.severity)),
                &p.severity(f.severity),
                1,
            )
        } else {
            wrapped
        };
        writeln!(out, "{wrapped}")?;
        for line in [
            format!("{indent}{}", f.advice),
            format!(
                "{indent}confidence {}: {}",
                confidence_word(f.confidence),
                f.confidence_why
            ),
        ]
        .iter()
        .chain(
            f.evidence
                .iter()
                .map(|e| format!("{indent}evidence: {e}"))
                .collect::<Vec<_>>()
                .iter(),
        ) {
            writeln!(out, "{}", p.dim(&wrap(line)))?;
        }
        // One example here; JSON and HTML list them all.
        for e in f.examples.iter().take(1) {
            let frames: Vec<String> = e.frames.iter().map(u64::to_string).collect();
            writeln!(
                out,
                "{}",
                wrap(&format!(
                    "{indent}example: {} conn {} ({} -> {}), frames {}-{}{}; Wireshark filter: {}",
                    e.capture,
                    e.conn,
                    e.client,
                    e.server,
                    e.first_frame,
                    e.last_frame,
                    if frames.is_empty() {
                        String::new()
                    } else {
                        format!(" (evidence {})", frames.join(", "))
                    },
                    e.filter
                ))
            )?;
        }
    }
    writeln!(out)
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "ERROR",
        Severity::Warn => "WARN",
        Severity::Note => "NOTE",
        Severity::Info => "INFO",
    }
}

fn confidence_word(c: crate::findings::Confidence) -> &'static str {
    match c {
        crate::findings::Confidence::High => "high",
        crate::findings::Confidence::Medium => "medium",
        crate::findings::Confidence::Low => "low",
    }
}

/// A table's first rows, with the count of rows left out. The rows are
/// made as they are taken, so only those shown are (a table of client
/// hosts can have many thousands).
fn table(
    p: &Paint,
    out: &mut dyn Write,
    title: &str,
    header: &[&str],
    rows: impl ExactSizeIterator<Item = Vec<String>>,
) -> io::Result<()> {
    if rows.len() == 0 {
        return Ok(());
    }
    writeln!(out, "{}", p.heading(title))?;
    let more = rows.len().saturating_sub(TERMINAL_ROWS);
    let rows: Vec<Vec<String>> = rows.take(TERMINAL_ROWS).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers right-aligned, text left-aligned; the first column is a key.
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                let numeric = i > 0 && c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
                if numeric {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    writeln!(out, "{}", p.dim(&line(&head)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    if more > 0 {
        writeln!(
            out,
            "  ... and {more} more (--format json or --html list them all)"
        )?;
    }
    writeln!(out)
}

fn tables(doc: &Document, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let tally = crate::document::tally_cells;
    let header = |key: &'static str| -> Vec<String> {
        std::iter::once(key.to_string())
            .chain(crate::document::tally_columns())
            .collect()
    };
    let rows = doc.services.iter().map(|r| {
        std::iter::once(r.service.clone())
            .chain(tally(&r.tally))
            .collect()
    });
    table(
        p,
        out,
        "Services (server address:port)",
        &strs(&header("service")),
        rows,
    )?;
    let rows = doc.services.iter().map(|r| {
        let classes = |m| by_count(m, |k, n| format!("{k} {n}"));
        vec![
            r.service.clone(),
            classes(&r.client_calls),
            classes(&r.server_calls),
        ]
    });
    table(
        p,
        out,
        "Inferred calls per side (a class such as close|shut_rdwr is what the wire can tell)",
        &["service", "client calls", "server calls"],
        rows,
    )?;
    let rows = doc.ports.iter().map(|r| {
        std::iter::once(format!(":{}", r.port))
            .chain(tally(&r.tally))
            .collect()
    });
    table(p, out, "Server ports", &strs(&header("port")), rows)?;
    let rows = doc.clients.iter().map(|r| {
        std::iter::once(r.host.clone())
            .chain(tally(&r.tally))
            .collect()
    });
    table(p, out, "Client hosts", &strs(&header("client")), rows)?;
    let rows = doc.causes.iter().map(|r| {
        vec![
            r.outcome.to_string(),
            r.cause.clone(),
            r.connections.to_string(),
        ]
    });
    table(
        p,
        out,
        "Outcomes and causes",
        &["outcome", "cause", "conns"],
        rows,
    )?;
    let a = &doc.assumptions;
    let rows = doc.time_wait.iter().map(|r| {
        vec![
            r.holder.clone(),
            r.side.name().to_string(),
            r.service.clone(),
            thousands(r.peak),
            thousands(r.connections),
            r.port_pressure_pct
                .map_or("-".into(), |p| format!("{p:.2}%")),
        ]
    });
    table(
        p,
        out,
        &format!(
            "TIME-WAIT holders at their peak (assuming Linux's {} s TIME-WAIT; a client has {} local ports per service)",
            a.time_wait_secs,
            thousands(a.ephemeral_ports)
        ),
        &["holder", "side", "service", "peak", "conns", "ports used"],
        rows,
    )?;
    let rows = doc.close_wait.iter().map(|r| {
        vec![
            r.service.clone(),
            r.side.name().to_string(),
            thousands(r.connections),
            duration(r.oldest_secs),
            thousands(r.older_than_limit),
        ]
    });
    table(
        p,
        out,
        "CLOSE-WAIT at the end of the capture (the application has not called close())",
        &[
            "service",
            "holder",
            "sockets",
            "oldest",
            &format!("over {} s", a.close_wait_old_secs),
        ],
        rows,
    )?;
    let rows = doc.refused.iter().map(|r| {
        vec![
            r.service.clone(),
            thousands(r.attempts),
            thousands(r.client_hosts),
        ]
    });
    table(
        p,
        out,
        "Refused (nothing listening)",
        &["service", "attempts", "client hosts"],
        rows,
    )?;
    let rows = doc.idle_resets.iter().map(|r| {
        vec![
            r.client.clone(),
            r.service.clone(),
            thousands(r.idle.connections),
            thousands(r.idle.forged),
            duration(r.idle.shortest_secs),
            duration(r.idle.longest_secs),
        ]
    });
    table(
        p,
        out,
        "Idle resets (reset by the first packet after a silence: a middlebox forgot the connection)",
        &["client", "service", "conns", "forged", "shortest silence", "longest"],
        rows,
    )?;
    let rows = doc
        .services
        .iter()
        .filter(|r| r.half_close > 0 || r.fin_retransmit_connections > 0)
        .map(|r| {
            vec![
                r.service.clone(),
                share(r.half_close, r.tally.connections),
                thousands(r.fin_retransmit_connections),
                thousands(r.fin_retransmits),
            ]
        })
        .collect::<Vec<_>>()
        .into_iter();
    table(
        p,
        out,
        "Half-close and retransmitted FINs",
        &[
            "service",
            "half-close",
            "conns with FIN again",
            "FINs again",
        ],
        rows,
    )?;
    let t = &doc.rst_timeline;
    // The RST counts share the connections' buckets.
    let rsts = &doc.rst_count_timeline.buckets.buckets;
    let rows = t
        .buckets
        .buckets
        .iter()
        .zip(rsts)
        .map(|((start, counts), (_, segments))| {
            let mut row = vec![format!("{start}"), segments[0].to_string()];
            row.extend(counts.iter().map(u64::to_string));
            row
        });
    let mut header = vec!["from (epoch s)", "RSTs"];
    header.extend(t.series.iter().copied());
    let title = format!(
        "RSTs, and the connections they reset by kind, per {} s",
        t.buckets.width_secs
    );
    table(p, out, &title, &header, rows)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
