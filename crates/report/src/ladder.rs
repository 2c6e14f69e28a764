//! Ladder (sequence) diagrams of single connections: two vertical lines
//! for the endpoints, an arrow per segment with its flags, relative
//! seq/ack, length and events, each side's state changes written beside
//! its line, and the inferred calls where they show on the wire. The
//! pictures the seed article drew by hand from Wireshark screenshots.
//!
//! Rows come from the engine's annotation pass (one pass, hindsight
//! applied); only the connections asked for are kept, at most
//! [`HEAD_ROWS`] + [`TAIL_ROWS`] segments each (the middle of a long
//! transfer says nothing about its teardown). The SVG is written with
//! maud, which escapes every text and attribute.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::Path;

use maud::{html, Markup};
use tcpshut_engine::ConnectionReport;
use tcpshut_engine::Row;
use tcpshut_engine::Timestamp;
use tcpshut_engine::{AnalyzeError, CaptureSummary, Detail, RowSink, Schedule, Series};

use crate::aggregate::calls_text;

/// Segments kept from the start of a connection ...
pub const HEAD_ROWS: usize = 24;
/// ... and from its end.
pub const TAIL_ROWS: usize = 36;

/// One segment of a ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub frame: u64,
    /// Seconds since the connection's first segment.
    pub secs: f64,
    pub from_client: bool,
    pub flags: String,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub events: String,
    pub sender_state: &'static str,
    pub receiver_state: &'static str,
    /// The sender's inferred calls, on the segment that reveals them.
    pub calls: Option<String>,
}

/// A connection's ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct Ladder {
    pub capture: String,
    pub conn: u32,
    pub client: String,
    pub server: String,
    pub outcome: &'static str,
    pub closer: &'static str,
    pub calls: [String; 2],
    /// The first segments, then (after `omitted` others) the last.
    pub head: Vec<Step>,
    pub omitted: u64,
    pub tail: Vec<Step>,
}

/// What is kept of one connection while the rows stream by.
struct Pending {
    client: SocketAddr,
    first: Option<Timestamp>,
    head: Vec<Step>,
    tail: VecDeque<Step>,
    omitted: u64,
}

struct Collect<'a> {
    wanted: &'a mut BTreeMap<u32, Pending>,
}

impl RowSink for Collect<'_> {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn begin(&mut self, _: &CaptureSummary, _: &[ConnectionReport]) -> std::io::Result<()> {
        Ok(())
    }
    fn row(&mut self, row: &Row) -> std::io::Result<()> {
        let Some(p) = self.wanted.get_mut(&row.conn) else {
            return Ok(());
        };
        let first = *p.first.get_or_insert(row.ts);
        let step = Step {
            frame: row.frame,
            secs: row.ts.secs_since(first),
            from_client: row.src == p.client,
            flags: row.flags.to_string(),
            seq: row.seq,
            ack: row.ack,
            len: row.len,
            events: row.events.to_string(),
            sender_state: row.sender_state.name(),
            receiver_state: row.receiver_state.name(),
            calls: row.calls.map(|c| calls_text(&c)),
        };
        if p.head.len() < HEAD_ROWS {
            p.head.push(step);
        } else {
            p.tail.push_back(step);
            if p.tail.len() > TAIL_ROWS {
                p.tail.pop_front();
                p.omitted += 1;
            }
        }
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The ladders of connections `conns` of the capture at `path` (those
/// that exist), by id: one pass for their reports, one for their rows.
pub fn collect(path: &Path, conns: &BTreeSet<u32>) -> Result<BTreeMap<u32, Ladder>, AnalyzeError> {
    collect_with(
        &path.display().to_string(),
        conns,
        &mut |each| tcpshut_engine::each_report(path, each).map(drop),
        &mut |sink| tcpshut_engine::annotate(path, Detail::Brief, sink).map(drop),
    )
}

/// [`collect`] over a rotated series, read as one capture (the ladders'
/// frame numbers are the series').
pub fn collect_series(
    series: &Series,
    conns: &BTreeSet<u32>,
) -> Result<BTreeMap<u32, Ladder>, AnalyzeError> {
    collect_with(
        &series.name(),
        conns,
        &mut |each| tcpshut_engine::each_report_series(series, Schedule::default(), each).map(drop),
        &mut |sink| {
            tcpshut_engine::annotate_series(series, Detail::Brief, sink, Schedule::default())
                .map(drop)
        },
    )
}

/// What one read of a capture for its reports is.
type ReadReports<'a> =
    dyn FnMut(&mut dyn FnMut(&ConnectionReport)) -> Result<(), AnalyzeError> + 'a;
/// What one read of a capture for its rows is.
type ReadRows<'a> = dyn FnMut(&mut dyn RowSink) -> Result<(), AnalyzeError> + 'a;

/// [`collect`] of the capture named `name`, read by `reports` then `rows`.
fn collect_with(
    name: &str,
    conns: &BTreeSet<u32>,
    read_reports: &mut ReadReports,
    read_rows: &mut ReadRows,
) -> Result<BTreeMap<u32, Ladder>, AnalyzeError> {
    let mut reports = BTreeMap::new();
    read_reports(&mut |r| {
        if conns.contains(&r.id) {
            reports.insert(r.id, r.clone());
        }
    })?;
    let mut wanted: BTreeMap<u32, Pending> = reports
        .iter()
        .filter_map(|(&id, r)| {
            Some((
                id,
                Pending {
                    client: r.client.parse().ok()?,
                    first: None,
                    head: Vec::new(),
                    tail: VecDeque::new(),
                    omitted: 0,
                },
            ))
        })
        .collect();
    if !wanted.is_empty() {
        read_rows(&mut Collect {
            wanted: &mut wanted,
        })?;
    }
    Ok(wanted
        .into_iter()
        .filter_map(|(id, p)| {
            let r = reports.remove(&id)?;
            Some((
                id,
                Ladder {
                    capture: name.to_string(),
                    conn: id,
                    client: r.client,
                    server: r.server,
                    outcome: r.outcome.name(),
                    closer: r.closer.name(),
                    calls: [
                        calls_text(&r.endpoints[0].calls),
                        calls_text(&r.endpoints[1].calls),
                    ],
                    head: p.head,
                    omitted: p.omitted,
                    tail: p.tail.into(),
                },
            ))
        })
        .collect())
}

const WIDTH: f64 = 980.0;
const CLIENT_X: f64 = 300.0;
const SERVER_X: f64 = 720.0;
const TOP: f64 = 96.0;
const STEP: f64 = 46.0;
/// How far an arrow drops from its start to its end.
const DROP: f64 = 16.0;

fn colour(step: &Step) -> &'static str {
    if step.flags.contains('R') {
        "#c0392b"
    } else if step.flags.contains('F') {
        "#1f5fa8"
    } else if step.flags.contains('S') {
        "#2e7d32"
    } else {
        "#666666"
    }
}

/// The ladder as an SVG element; `id` makes its marker ids unique within
/// an HTML page holding several.
pub fn svg(l: &Ladder, id: &str) -> Markup {
    let rows = l.head.len() + l.tail.len() + usize::from(l.omitted > 0);
    let height = TOP + rows as f64 * STEP + 40.0;
    let arrow = format!("arrow-{id}");
    // Each side's state, to write it only where it changes.
    let mut shown = ["", ""];
    let mut slots = Vec::new();
    for s in &l.head {
        slots.push(Some(s));
    }
    if l.omitted > 0 {
        slots.push(None);
    }
    for s in &l.tail {
        slots.push(Some(s));
    }
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="ladder" width=(WIDTH) height=(height) viewBox=(format!("0 0 {WIDTH} {height}")) font-family="DejaVu Sans Mono, monospace" font-size="11" {
            title { "tcpshut ladder: " (l.capture) ", connection " (l.conn) }
            defs {
                marker id=(arrow) viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#333333" {}
                }
            }
            rect x="0" y="0" width=(WIDTH) height=(height) fill="#ffffff" {}
            text x="10" y="18" font-size="13" font-weight="bold" {
                (l.capture) " — connection " (l.conn) ": " (l.outcome) ", closed first by " (l.closer)
            }
            text x=(CLIENT_X) y="46" text-anchor="middle" font-weight="bold" { "client " (l.client) }
            text x=(SERVER_X) y="46" text-anchor="middle" font-weight="bold" { "server " (l.server) }
            text x=(CLIENT_X) y="62" text-anchor="middle" fill="#555555" { "calls: " (l.calls[0]) }
            text x=(SERVER_X) y="62" text-anchor="middle" fill="#555555" { "calls: " (l.calls[1]) }
            text x="10" y="84" fill="#555555" { "frame   time (s)" }
            line x1=(CLIENT_X) y1="70" x2=(CLIENT_X) y2=(height - 20.0) stroke="#333333" stroke-width="2" {}
            line x1=(SERVER_X) y1="70" x2=(SERVER_X) y2=(height - 20.0) stroke="#333333" stroke-width="2" {}
            @for (i, slot) in slots.iter().enumerate() {
                @let y = TOP + i as f64 * STEP;
                @match slot {
                    None => {
                        text x=((CLIENT_X + SERVER_X) / 2.0) y=(y + 8.0) text-anchor="middle" fill="#888888" {
                            "… " (l.omitted) " segments not shown …"
                        }
                    }
                    Some(s) => {
                        @let (x1, x2) = if s.from_client { (CLIENT_X, SERVER_X) } else { (SERVER_X, CLIENT_X) };
                        @let mid = (CLIENT_X + SERVER_X) / 2.0;
                        @let sender = usize::from(!s.from_client);
                        text x="10" y=(y + 8.0) { (format!("{:<7} {:.6}", s.frame, s.secs)) }
                        line x1=(x1) y1=(y) x2=(x2) y2=(y + DROP) stroke=(colour(s)) stroke-width="1.6" marker-end=(format!("url(#{arrow})")) {}
                        text x=(mid) y=(y - 3.0) text-anchor="middle" fill=(colour(s)) {
                            (s.flags) " seq=" (s.seq) " ack=" (s.ack) @if s.len > 0 { " len=" (s.len) }
                        }
                        @if !s.events.is_empty() {
                            text x=(mid) y=(y + DROP + 12.0) text-anchor="middle" font-style="italic" fill="#444444" { (s.events) }
                        }
                        @if let Some(calls) = &s.calls {
                            @let (cx, anchor) = if s.from_client { (CLIENT_X - 8.0, "end") } else { (SERVER_X + 8.0, "start") };
                            text x=(cx) y=(y - 3.0) text-anchor=(anchor) font-weight="bold" fill="#8e24aa" { "calls " (calls) }
                        }
                        @for side in [sender, 1 - sender] {
                            @let state = if side == sender { s.sender_state } else { s.receiver_state };
                            @if std::mem::replace(&mut shown[side], state) != state {
                                @let (sx, anchor) = if side == 0 { (CLIENT_X - 8.0, "end") } else { (SERVER_X + 8.0, "start") };
                                text x=(sx) y=(y + DROP + 4.0) text-anchor=(anchor) fill="#00695c" { (state) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A standalone SVG document.
pub fn svg_document(l: &Ladder) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        svg(l, "0").into_string()
    )
}
