//! TIME-WAIT holders at their peak. A socket that closes first stays in
//! TIME-WAIT after the last ACK; Linux keeps it there for a fixed 60 s
//! (`TCP_TIMEWAIT_LEN`), which a capture cannot see, so that is the
//! assumption. The peak is the most entries into TIME-WAIT within any 60 s
//! window of capture time, per holder and peer, over every capture of the
//! report: captures of one host in turn (a rotating tcpdump), or of
//! several hosts with clocks in step, add up where they overlap. For a
//! client, each of these sockets keeps one local port towards that peer
//! (address and port) out of use.
//!
//! Entry times are counted in buckets of [`QUANTUM_MS`]; past
//! [`MAX_ENTRY_BUCKETS`] buckets their width doubles (the same whatever
//! order captures merge in), so memory stays bounded per holder whatever
//! the captures' length. The peak counts the whole buckets that fit in
//! 60 s: exact while buckets are 0.1 s (entries at fewer than
//! [`MAX_ENTRY_BUCKETS`] distinct 0.1 s ticks), a lower bound after.

use crate::histogram::Histogram;

/// How long Linux keeps a socket in TIME-WAIT (`TCP_TIMEWAIT_LEN`, 60 s).
pub const TIME_WAIT_SECS: i64 = 60;

/// Local ports a Linux client picks from by default
/// (`net.ipv4.ip_local_port_range` = 32768–60999).
pub const EPHEMERAL_PORTS: u64 = 60999 - 32768 + 1;

/// Resolution of entry times, milliseconds.
pub const QUANTUM_MS: i64 = 100;

/// Buckets of entry times kept per holder and peer.
pub const MAX_ENTRY_BUCKETS: usize = 4096;

/// One holder's entries into TIME-WAIT towards one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeWaitPeak {
    /// Entries by time, in [`QUANTUM_MS`] ticks.
    entries: Histogram<1, MAX_ENTRY_BUCKETS>,
    /// Entries ever seen.
    pub total: u64,
}

impl TimeWaitPeak {
    /// Notes a socket entering TIME-WAIT at `millis` (epoch ms).
    pub fn enter(&mut self, millis: i64) {
        self.entries.add(millis.div_euclid(QUANTUM_MS), 0);
        self.total += 1;
    }

    /// Adds another capture's entries (or a group of captures').
    pub fn merge(&mut self, other: &TimeWaitPeak) {
        self.entries.merge(&other.entries);
        self.total += other.total;
    }

    /// The peak, the time (epoch ms) its 60 s window starts, and whether
    /// it is exact (else a lower bound: see the module's comment).
    pub fn peak(&self) -> (u64, i64, bool) {
        let width = self.entries.width_secs();
        let window = TIME_WAIT_SECS * 1000 / QUANTUM_MS;
        // Whole buckets within the window; at least one.
        let span = (window / width).max(1) * width;
        let buckets: Vec<(i64, u64)> = self.entries.iter().map(|(t, c)| (t, c[0])).collect();
        let (mut best, mut best_start) = (0, 0);
        let mut end = 0;
        let mut in_window = 0;
        for (i, &(start, _)) in buckets.iter().enumerate() {
            while end < buckets.len() && buckets[end].0 < start.saturating_add(span) {
                in_window += buckets[end].1;
                end += 1;
            }
            if in_window > best {
                (best, best_start) = (in_window, start);
            }
            in_window -= buckets[i].1;
        }
        (best, best_start * QUANTUM_MS, width == 1)
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
        assert_eq!(tw.peak(), (21, 100_000, true));
        assert_eq!(tw.total, 36);
    }

    /// Two captures of one client, one after the other, that overlap by
    /// 30 s: the peak is over both, whatever order they merge in.
    #[test]
    fn captures_add_up_where_they_overlap() {
        let (mut a, mut b) = (TimeWaitPeak::default(), TimeWaitPeak::default());
        for i in 0..60 {
            a.enter(i * 1000);
        }
        for i in 30..90 {
            b.enter(i * 1000 + 500);
        }
        assert_eq!(a.peak().0, 60);
        assert_eq!(b.peak().0, 60);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        // From 0 s: a's 60 and b's first 30 (30.5 s to 59.5 s); from 30 s
        // as many (a's last 30, b's 60): the first window is kept.
        assert_eq!(ab.peak(), (90, 0, true));
        assert_eq!(ab, ba);
        assert_eq!(ab.total, 120);
    }

    #[test]
    fn many_entry_times_widen_the_buckets_and_stay_bounded() {
        let mut tw = TimeWaitPeak::default();
        // One every 0.1 s for 500 s: more ticks than buckets.
        for i in 0..5000 {
            tw.enter(i * 100);
        }
        let (peak, at, exact) = tw.peak();
        assert!(!exact);
        assert_eq!((peak, at), (600, 0));
        assert!(tw.entries.iter().count() <= MAX_ENTRY_BUCKETS);
        assert_eq!(tw.total, 5000);
    }
}
