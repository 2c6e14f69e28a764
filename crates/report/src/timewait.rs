//! TIME-WAIT holders at their peak. A socket that closes first stays in
//! TIME-WAIT after the last ACK; Linux keeps it there for a fixed 60 s
//! (`TCP_TIMEWAIT_LEN`), which a capture cannot see, so that is the
//! assumption. The peak is the most entries into TIME-WAIT within any 60 s
//! window of capture time, per holder and peer: for a client, each of these
//! sockets keeps one local port towards that peer (address and port) out
//! of use.
//!
//! Entries come in the order connections leave the engine's flow table,
//! which is close to time order (a closed connection leaves it a fixed
//! time after closing). Entries are kept, at [`QUANTUM_MS`] resolution,
//! for [`HORIZON_SECS`] behind the latest; older ones are swept into the
//! peak and forgotten, so memory stays bounded per holder whatever the
//! capture's length.

use std::collections::BTreeMap;

/// How long Linux keeps a socket in TIME-WAIT (`TCP_TIMEWAIT_LEN`, 60 s).
pub const TIME_WAIT_SECS: i64 = 60;

/// Local ports a Linux client picks from by default
/// (`net.ipv4.ip_local_port_range` = 32768–60999).
pub const EPHEMERAL_PORTS: u64 = 60999 - 32768 + 1;

/// Resolution of entry times, milliseconds.
pub const QUANTUM_MS: i64 = 100;

/// Entries older than this behind the latest are swept into the peak:
/// longer than a TIME-WAIT plus the time a closed connection lingers in the
/// engine's flow table (120 s), so entries that arrive late are still seen.
pub const HORIZON_SECS: i64 = 300;

/// One holder's entries into TIME-WAIT towards one peer, and its peak.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeWaitPeak {
    /// Entries by quantum (time in ms / [`QUANTUM_MS`]).
    entries: BTreeMap<i64, u32>,
    /// Entries ever seen.
    pub total: u64,
    /// Most sockets in TIME-WAIT at once, and the quantum the window starts.
    peak: u64,
    peak_start: i64,
}

impl TimeWaitPeak {
    /// Notes a socket entering TIME-WAIT at `millis` (epoch ms).
    pub fn enter(&mut self, millis: i64) {
        let q = millis.div_euclid(QUANTUM_MS);
        *self.entries.entry(q).or_default() += 1;
        self.total += 1;
        let newest = *self.entries.keys().next_back().expect("just inserted");
        let horizon = newest - HORIZON_SECS * 1000 / QUANTUM_MS;
        if *self.entries.keys().next().expect("just inserted") < horizon {
            self.sweep(Some(horizon));
        }
    }

    /// Sweeps every entry into the peak (at the end of a capture).
    pub fn finish(&mut self) {
        self.sweep(None);
    }

    /// The peak, and the time (epoch ms) its 60 s window starts; after
    /// [`TimeWaitPeak::finish`].
    pub fn peak(&self) -> (u64, i64) {
        (self.peak, self.peak_start * QUANTUM_MS)
    }

    /// Takes the larger peak of two captures (their clocks are not
    /// assumed to be comparable).
    pub fn merge(&mut self, other: &TimeWaitPeak) {
        self.total += other.total;
        if (other.peak, -other.peak_start) > (self.peak, -self.peak_start) {
            self.peak = other.peak;
            self.peak_start = other.peak_start;
        }
    }

    /// Counts, for every window starting at an entry before `until` (all
    /// when `None`), the entries in it, then forgets those entries.
    fn sweep(&mut self, until: Option<i64>) {
        let window = TIME_WAIT_SECS * 1000 / QUANTUM_MS;
        let mut ahead = self.entries.iter().peekable();
        let mut in_window: u64 = 0;
        let mut done = Vec::new();
        for (&start, &count) in &self.entries {
            if until.is_some_and(|u| start >= u) {
                break;
            }
            // Entries at or after `start` and before `start + window`.
            while let Some(&(&t, &c)) = ahead.peek() {
                if t >= start.saturating_add(window) {
                    break;
                }
                in_window += u64::from(c);
                ahead.next();
            }
            if in_window > self.peak {
                self.peak = in_window;
                self.peak_start = start;
            }
            in_window -= u64::from(count);
            done.push(start);
        }
        for start in done {
            self.entries.remove(&start);
        }
    }
}

/// Share of a client's local ports this many TIME-WAIT sockets towards
/// one peer take, in percent.
pub fn port_pressure(peak: u64) -> f64 {
    peak as f64 * 100.0 / EPHEMERAL_PORTS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_the_busiest_minute() {
        let mut tw = TimeWaitPeak::default();
        // 10 in the first second, 5 at 30 s, 20 at 100 s, 1 at 159.9 s.
        for _ in 0..10 {
            tw.enter(1_000);
        }
        for _ in 0..5 {
            tw.enter(30_000);
        }
        for _ in 0..20 {
            tw.enter(100_000);
        }
        tw.enter(159_900);
        tw.finish();
        assert_eq!(tw.peak(), (21, 100_000));
        assert_eq!(tw.total, 36);
    }

    #[test]
    fn old_entries_are_swept_and_still_count() {
        let mut tw = TimeWaitPeak::default();
        for i in 0..50 {
            tw.enter(i * 100);
        }
        // Far later: the first 50 are swept into the peak.
        tw.enter(10_000_000);
        assert_eq!(tw.entries.len(), 1);
        tw.finish();
        assert_eq!(tw.peak(), (50, 0));
    }
}
