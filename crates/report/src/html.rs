//! The HTML report: one self-contained file (inline CSS, inline SVG, a
//! few lines of inline script for sorting tables; nothing fetched), made
//! with maud, which escapes every text and attribute. It shows the
//! findings with a ladder diagram of an example of each, bar charts per
//! service, the teardown and RST timelines, and the tables, sortable.
//!
//! Bounded whatever the input: at most [`MAX_FINDINGS`] findings,
//! [`MAX_LADDERS`] ladders, [`MAX_ROWS`] rows per table and
//! [`MAX_BARS`] services in the chart; the counts left out are said.

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::chart;
use crate::document::Document;
use crate::findings::{by_count, duration, thousands, Finding, Severity};
use crate::ladder::{self, Ladder};

pub const MAX_FINDINGS: usize = 60;
pub const MAX_LADDERS: usize = 12;
pub const MAX_ROWS: usize = 300;
pub const MAX_BARS: usize = 30;

/// Ladders by (capture, connection id).
pub type Ladders = BTreeMap<(String, u32), Ladder>;

/// The examples whose ladders the page shows: the first example of each
/// of the first [`MAX_LADDERS`] findings.
pub fn ladder_examples(doc: &Document) -> Vec<(String, u32)> {
    let mut wanted: Vec<(String, u32)> = doc
        .findings
        .iter()
        .filter_map(|f| f.examples.first())
        .map(|e| (e.capture.clone(), e.conn))
        .collect();
    wanted.dedup();
    wanted.truncate(MAX_LADDERS);
    wanted
}

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; }
.muted { color: #666; }
.finding { border: 1px solid #ddd; border-left: 6px solid #999; border-radius: 4px; padding: 0.6em 1em; margin: 1em 0; }
.finding.error { border-left-color: #c62828; }
.finding.warn { border-left-color: #f9a825; }
.finding.note { border-left-color: #0277bd; }
.finding.info { border-left-color: #2e7d32; }
.badge { display: inline-block; font-size: 0.8em; font-weight: bold; padding: 0.1em 0.5em; border-radius: 3px; color: #fff; background: #999; margin-right: 0.5em; }
.badge.error { background: #c62828; } .badge.warn { background: #f9a825; color: #222; } .badge.note { background: #0277bd; } .badge.info { background: #2e7d32; }
.title { font-weight: 600; }
code { background: #f4f4f4; padding: 0.1em 0.3em; border-radius: 3px; font-size: 0.9em; word-break: break-all; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.25em 0.6em; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #fafafa; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \25B2"; } th[aria-sort=descending]::after { content: " \25BC"; }
.ladder-box { overflow-x: auto; border: 1px solid #eee; margin: 0.5em 0; }
svg { display: block; }
"#;

/// Sorts a table by the clicked column (numbers as numbers); marks the
/// page ready for the browser test.
const SCRIPT: &str = r#"
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[col].getAttribute("data-sort") || row.cells[col].textContent;
        var n = parseFloat(text.replace(/,/g, ""));
        return isNaN(n) ? text : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.body.setAttribute("data-ready", "yes");
"#;

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warn => "warn",
        Severity::Note => "note",
        Severity::Info => "info",
    }
}

/// A sortable table: cells that start with a digit are numbers.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> Markup {
    let more = rows.len().saturating_sub(MAX_ROWS);
    let numeric = |c: &str| c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
    html! {
        table class="sortable" {
            thead { tr { @for h in header { th { (h) } } } }
            tbody {
                @for row in rows.iter().take(MAX_ROWS) {
                    tr {
                        @for (i, cell) in row.iter().enumerate() {
                            @if i > 0 && numeric(cell) {
                                td class="n" { (cell) }
                            } @else {
                                td { (cell) }
                            }
                        }
                    }
                }
            }
        }
        @if more > 0 {
            p class="muted" { (more) " more rows in " code { "--format json" } "." }
        }
    }
}

fn finding(f: &Finding, ladders: &Ladders) -> Markup {
    let class = severity_class(f.severity);
    let ladder = f
        .examples
        .first()
        .and_then(|e| ladders.get(&(e.capture.clone(), e.conn)));
    html! {
        div class=(format!("finding {class}")) id=(format!("finding-{}", f.rank)) {
            div {
                span class=(format!("badge {class}")) { (class.to_uppercase()) }
                span class="title" { (f.rank) ". " (f.title) }
            }
            p { (f.advice) }
            p class="muted" { "Confidence " strong { (format!("{:?}", f.confidence).to_lowercase()) } ": " (f.confidence_why) "." }
            ul {
                @for e in &f.evidence { li { (e) } }
            }
            @if !f.examples.is_empty() {
                table {
                    thead { tr { th { "example" } th { "frames" } th { "Wireshark display filter" } } }
                    tbody {
                        @for e in &f.examples {
                            tr {
                                td { (e.capture) ", conn " (e.conn) br; span class="muted" { (e.client) " → " (e.server) } }
                                td class="n" { (e.first_frame) "–" (e.last_frame) }
                                td { code { (e.filter) } br; code { (e.filter_tcpshut) } }
                            }
                        }
                    }
                }
            }
            @if let Some(l) = ladder {
                details open[f.rank <= 3] {
                    summary { "Ladder diagram of " (l.capture) ", connection " (l.conn) }
                    div class="ladder-box" { (ladder::svg(l, &f.rank.to_string())) }
                }
            }
        }
    }
}

/// The whole page.
pub fn render(doc: &Document, ladders: &Ladders) -> String {
    let i = &doc.inputs;
    let a = &doc.assumptions;
    let tally_header = [
        "conns",
        "graceful",
        "reset",
        "refused",
        "half-closed",
        "open",
        "client first",
        "server first",
        "both",
        "none",
    ];
    let with_key = |key: &'static str| -> Vec<&'static str> {
        std::iter::once(key).chain(tally_header).collect()
    };
    let tally = |t: &crate::aggregate::Tally| -> Vec<String> {
        let mut cells = vec![t.connections.to_string()];
        cells.extend(t.outcomes.0.iter().map(u64::to_string));
        cells.extend(t.closer.0.iter().map(u64::to_string));
        cells
    };
    let series: Vec<&str> = doc.teardown_timeline.series.clone();
    let bars: Vec<(String, Vec<u64>)> = doc
        .services
        .iter()
        .take(MAX_BARS)
        .map(|s| (s.service.clone(), s.tally.outcomes.0.to_vec()))
        .collect();
    let classes = |m: &BTreeMap<String, u64>| by_count(m, |k, n| format!("{k} ({n})"));
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "tcpshut report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "tcpshut report" }
                p {
                    (thousands(i.captures)) " capture(s), " (thousands(i.connections)) " connections: "
                    @for (n, o) in doc.outcomes.0.iter().zip(&series) {
                        @if *n > 0 { (thousands(*n)) " " (o) "; " }
                    }
                    @if i.failed > 0 { strong { (i.failed) " input(s) could not be read. " } }
                    @if i.incomplete > 0 { strong { (i.incomplete) " capture(s) were cut short. " } }
                }
                p class="muted" {
                    "Assumed: Linux's " (a.time_wait_secs) " s TIME-WAIT; " (thousands(a.ephemeral_ports))
                    " local ports per client and service (ip_local_port_range 32768–60999); CLOSE-WAIT older than "
                    (a.close_wait_old_secs) " s counts as old. Verdicts assume Linux peers."
                }
                h2 { "Findings" }
                @if doc.findings.is_empty() {
                    p { "None: no resets, refusals, TIME-WAIT pile-ups or CLOSE-WAIT leaks worth reporting." }
                }
                @for f in doc.findings.iter().take(MAX_FINDINGS) {
                    (finding(f, ladders))
                }
                @if doc.findings.len() > MAX_FINDINGS {
                    p class="muted" { (doc.findings.len() - MAX_FINDINGS) " more findings in " code { "--format json" } "." }
                }
                h2 { "Connections per service, by outcome" }
                (chart::stacked_bars(&bars, &series))
                @if doc.services.len() > MAX_BARS {
                    p class="muted" { "The " (MAX_BARS) " services with the most connections of " (doc.services.len()) "." }
                }
                h2 { "Teardowns over time, by outcome" }
                (chart::stacked_columns(&doc.teardown_timeline.buckets.buckets, doc.teardown_timeline.buckets.width_secs, &series))
                @if !doc.rst_timeline.buckets.buckets.is_empty() {
                    h2 { "Connections with an RST over time" }
                    (chart::stacked_columns(&doc.rst_timeline.buckets.buckets, doc.rst_timeline.buckets.width_secs, &doc.rst_timeline.series))
                }
                h2 { "Services" }
                (table(&with_key("service"), doc.services.iter().map(|r| std::iter::once(r.service.clone()).chain(tally(&r.tally)).collect()).collect()))
                h2 { "Inferred calls per side" }
                p class="muted" { "A class such as close|shut_rdwr is what the wire can tell; it is counted as it is." }
                (table(&["service", "client calls", "server calls", "half-close", "FINs sent again"], doc.services.iter().map(|r| vec![r.service.clone(), classes(&r.client_calls), classes(&r.server_calls), r.half_close.to_string(), r.fin_retransmits.to_string()]).collect()))
                h2 { "Server ports" }
                (table(&with_key("port"), doc.ports.iter().map(|r| std::iter::once(format!(":{}", r.port)).chain(tally(&r.tally)).collect()).collect()))
                h2 { "Client hosts" }
                (table(&with_key("client"), doc.clients.iter().map(|r| std::iter::once(r.host.clone()).chain(tally(&r.tally)).collect()).collect()))
                h2 { "Outcomes and causes" }
                (table(&["outcome", "cause", "conns"], doc.causes.iter().map(|r| vec![r.outcome.to_string(), r.cause.clone(), r.connections.to_string()]).collect()))
                h2 { "TIME-WAIT holders at their peak" }
                (table(&["holder", "side", "service", "peak", "conns", "ports used %"], doc.time_wait.iter().map(|r| vec![r.holder.clone(), r.side.name().to_string(), r.service.clone(), r.peak.to_string(), r.connections.to_string(), r.port_pressure_pct.map_or("-".into(), |p| format!("{p:.2}"))]).collect()))
                h2 { "CLOSE-WAIT at the end of the capture" }
                (table(&["service", "holder", "sockets", "oldest", "older than limit", "not seen opening"], doc.close_wait.iter().map(|r| vec![r.service.clone(), r.side.name().to_string(), r.connections.to_string(), duration(r.oldest_secs), r.older_than_limit.to_string(), r.partial.to_string()]).collect()))
                h2 { "Refused" }
                (table(&["service", "attempts", "client hosts"], doc.refused.iter().map(|r| vec![r.service.clone(), r.attempts.to_string(), r.client_hosts.to_string()]).collect()))
                h2 { "Idle resets" }
                (table(&["client", "service", "conns", "forged", "shortest silence", "longest"], doc.idle_resets.iter().map(|r| vec![r.client.clone(), r.service.clone(), r.idle.connections.to_string(), r.idle.forged.to_string(), duration(r.idle.shortest_secs), duration(r.idle.longest_secs)]).collect()))
                p class="muted" { "Made by tcpshut report (schema " (doc.schema) "); docs/report.md explains every figure." }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    page.into_string()
}
