//! Charts for the HTML report, as inline SVG written with maud (which
//! escapes every label): stacked horizontal bars (connections per service
//! by outcome) and stacked columns over time (teardowns by outcome, RSTs
//! by kind). Two shapes, one module: the page has no other pictures but
//! the ladders.

use maud::{html, Markup};

/// Colours of the series, in order (outcomes: graceful, reset, refused,
/// half-closed, open, unknown).
pub const PALETTE: [&str; 6] = [
    "#4caf50", "#e53935", "#fb8c00", "#1e88e5", "#8e8e8e", "#6d4c41",
];

fn legend(series: &[&str], y: f64) -> Markup {
    html! {
        @for (i, name) in series.iter().enumerate() {
            @let x = 10.0 + i as f64 * 130.0;
            rect x=(x) y=(y - 10.0) width="12" height="12" fill=(PALETTE[i % PALETTE.len()]) {}
            text x=(x + 18.0) y=(y) { (name) }
        }
    }
}

/// The pieces of one stacked bar: for each non-zero count, its offset
/// from the bar's start, its length (`scale` per unit), series and count.
fn stack(counts: &[u64], scale: f64) -> Vec<(f64, f64, usize, u64)> {
    let mut offset = 0.0;
    let mut pieces = Vec::new();
    for (s, &n) in counts.iter().enumerate() {
        if n > 0 {
            let length = scale * n as f64;
            pieces.push((offset, length, s, n));
            offset += length;
        }
    }
    pieces
}

/// One bar per row (label, counts per series), stacked, longest scaled
/// to the chart's width.
pub fn stacked_bars(rows: &[(String, Vec<u64>)], series: &[&str]) -> Markup {
    const LABEL: f64 = 230.0;
    const BAR: f64 = 600.0;
    const ROW: f64 = 22.0;
    let max = rows
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let height = 40.0 + rows.len() as f64 * ROW;
    let width = LABEL + BAR + 80.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart" width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) font-family="sans-serif" font-size="12" role="img" {
            (legend(series, 16.0))
            @for (i, (label, counts)) in rows.iter().enumerate() {
                @let y = 30.0 + i as f64 * ROW;
                @let total: u64 = counts.iter().sum();
                text x=(LABEL - 8.0) y=(y + 14.0) text-anchor="end" { (label) }
                @let pieces = stack(counts, BAR / max as f64);
                @for &(offset, w, s, n) in &pieces {
                    rect x=(LABEL + offset) y=(y) width=(w) height=(ROW - 6.0) fill=(PALETTE[s % PALETTE.len()]) {
                        title { (label) ": " (n) " " (series.get(s).copied().unwrap_or("")) }
                    }
                }
                @let x = LABEL + pieces.last().map_or(0.0, |p| p.0 + p.1);
                text x=(x + 6.0) y=(y + 14.0) fill="#444444" { (total) }
            }
        }
    }
}

/// Columns over time: `buckets` of (start, counts per series), `width`
/// seconds each; times are written relative to the first bucket.
pub fn stacked_columns(buckets: &[(i64, Vec<u64>)], width_secs: i64, series: &[&str]) -> Markup {
    const LEFT: f64 = 50.0;
    const PLOT_W: f64 = 860.0;
    const PLOT_H: f64 = 180.0;
    const TOP: f64 = 30.0;
    let first = buckets.first().map_or(0, |b| b.0);
    let last = buckets.last().map_or(0, |b| b.0);
    let slots = ((last - first) / width_secs.max(1) + 1).max(1) as f64;
    let column = PLOT_W / slots;
    let max = buckets
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let height = TOP + PLOT_H + 40.0;
    let width = LEFT + PLOT_W + 20.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart" width=(width) height=(height) viewBox=(format!("0 0 {width} {height}")) font-family="sans-serif" font-size="12" role="img" {
            (legend(series, 16.0))
            line x1=(LEFT) y1=(TOP + PLOT_H) x2=(LEFT + PLOT_W) y2=(TOP + PLOT_H) stroke="#333333" {}
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + PLOT_H) stroke="#333333" {}
            text x=(LEFT - 6.0) y=(TOP + 10.0) text-anchor="end" { (max) }
            text x=(LEFT - 6.0) y=(TOP + PLOT_H) text-anchor="end" { "0" }
            text x=(LEFT) y=(TOP + PLOT_H + 18.0) { "+0 s (" (first) ")" }
            text x=(LEFT + PLOT_W) y=(TOP + PLOT_H + 18.0) text-anchor="end" { "+" (last - first + width_secs) " s; columns of " (width_secs) " s" }
            @for (start, counts) in buckets {
                @let x = LEFT + ((start - first) / width_secs.max(1)) as f64 * column;
                @for (offset, h, s, n) in stack(counts, PLOT_H / max as f64) {
                    rect x=(x) y=(TOP + PLOT_H - offset - h) width=((column - 1.0).max(1.0)) height=(h) fill=(PALETTE[s % PALETTE.len()]) {
                        title { "+" (start - first) " s: " (n) " " (series.get(s).copied().unwrap_or("")) }
                    }
                }
            }
        }
    }
}
