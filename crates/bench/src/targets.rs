//! The targets of the benchmark (issue #17 and the issues it names), each
//! checked against ratios measured side by side in the same run, and
//! printed together at the end: the figure, the target, met or not.

use std::time::Duration;

/// Which way a ratio must go.
#[derive(Clone, Copy)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
    /// A figure shown for comparison, with no target.
    Shown,
}

struct Checked {
    what: String,
    measured: f64,
    bound: Bound,
    /// Shown after the figure: its noise, a steadier measure beside it.
    note: Option<String>,
}

/// Targets checked so far in the run.
#[derive(Default)]
pub struct Targets(Vec<Checked>);

impl Targets {
    /// Records `measured` against `bound` under the name `what`.
    pub fn check(&mut self, what: impl Into<String>, measured: f64, bound: Bound) {
        self.0.push(Checked {
            what: what.into(),
            measured,
            bound,
            note: None,
        });
    }

    /// As `check`, with `note` printed after the figure (`1.04 (pairs
    /// 0.98–1.10)`); only the figure is judged.
    pub fn check_noted(
        &mut self,
        what: impl Into<String>,
        measured: f64,
        bound: Bound,
        note: impl Into<String>,
    ) {
        self.0.push(Checked {
            what: what.into(),
            measured,
            bound,
            note: Some(note.into()),
        });
    }

    /// `a / b` of two durations (wall or CPU times of one run).
    pub fn ratio(a: Duration, b: Duration) -> f64 {
        a.as_secs_f64() / b.as_secs_f64().max(1e-9)
    }

    pub fn print(&self) {
        if self.0.is_empty() {
            return;
        }
        println!("\n### Targets\n");
        println!("| what | measured | target | met? |");
        println!("|---|---|---|---|");
        for c in &self.0 {
            let (target, met) = match c.bound {
                Bound::AtMost(t) => (format!("≤ {t:.2}"), Some(c.measured <= t)),
                Bound::AtLeast(t) => (format!("≥ {t:.2}"), Some(c.measured >= t)),
                Bound::Shown => ("—".to_string(), None),
            };
            let met = match met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            };
            let note = c
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            println!(
                "| {} | {:.2}{note} | {target} | {met} |",
                c.what, c.measured
            );
        }
    }
}
