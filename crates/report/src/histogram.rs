//! Counts over capture time in buckets whose width grows (doubling) so
//! that a capture of any length keeps at most [`MAX_BUCKETS`] of them (or
//! `MAX`): the teardown timeline, the RST bursts, and TIME-WAIT entries
//! (`timewait`, in 0.1 s ticks). The width a set of times
//! ends with depends only on the times, not on the order they came in or
//! how partial histograms were merged, so reports are the same whatever
//! `--jobs` says.

use std::collections::BTreeMap;

use serde::Serialize;

/// Most buckets a histogram keeps.
pub const MAX_BUCKETS: usize = 240;

/// `N` counts per bucket (one per series), buckets keyed by their start
/// in whole seconds since the epoch (or the ticks the caller counts in), a
/// multiple of the width; at most `MAX` buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram<const N: usize, const MAX: usize = MAX_BUCKETS> {
    width_secs: i64,
    buckets: BTreeMap<i64, [u64; N]>,
}

impl<const N: usize, const MAX: usize> Default for Histogram<N, MAX> {
    fn default() -> Self {
        Histogram {
            width_secs: 1,
            buckets: BTreeMap::new(),
        }
    }
}

/// The histogram as the JSON schema writes it.
#[derive(Clone, Debug, Serialize)]
pub struct Buckets {
    /// Width of a bucket, seconds (a power of two).
    pub width_secs: i64,
    /// Non-empty buckets in time order: start (epoch seconds) and counts.
    pub buckets: Vec<(i64, Vec<u64>)>,
}

impl<const N: usize, const MAX: usize> Histogram<N, MAX> {
    /// Counts one event of `series` at `secs` (epoch seconds).
    pub fn add(&mut self, secs: i64, series: usize) {
        self.add_n(secs, series, 1);
    }

    /// Counts `n` events of `series` at `secs`.
    pub fn add_n(&mut self, secs: i64, series: usize, n: u64) {
        let start = secs.div_euclid(self.width_secs) * self.width_secs;
        self.buckets.entry(start).or_insert([0; N])[series] += n;
        self.coarsen();
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram<N, MAX>) {
        self.widen_to(other.width_secs);
        for (&start, counts) in &other.buckets {
            let start = start.div_euclid(self.width_secs) * self.width_secs;
            let slot = self.buckets.entry(start).or_insert([0; N]);
            for (a, b) in slot.iter_mut().zip(counts) {
                *a += b;
            }
        }
        self.coarsen();
    }

    pub fn width_secs(&self) -> i64 {
        self.width_secs
    }

    /// Non-empty buckets in time order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u64; N])> {
        self.buckets.iter().map(|(&k, v)| (k, v))
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn to_buckets(&self) -> Buckets {
        Buckets {
            width_secs: self.width_secs,
            buckets: self.buckets.iter().map(|(&k, v)| (k, v.to_vec())).collect(),
        }
    }

    fn coarsen(&mut self) {
        while self.buckets.len() > MAX && self.width_secs < i64::MAX / 4 {
            self.widen_to(self.width_secs * 2);
        }
    }

    fn widen_to(&mut self, width: i64) {
        if width <= self.width_secs {
            return;
        }
        self.width_secs = width;
        let old = std::mem::take(&mut self.buckets);
        for (start, counts) in old {
            let slot = self
                .buckets
                .entry(start.div_euclid(width) * width)
                .or_insert([0; N]);
            for (a, b) in slot.iter_mut().zip(counts) {
                *a += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_depends_on_the_times_not_the_merge_order() {
        let times: Vec<i64> = (0..2000).map(|i| i * 7 % 5000).collect();
        let mut whole = Histogram::<1>::default();
        for &t in &times {
            whole.add(t, 0);
        }
        let (mut a, mut b) = (Histogram::<1>::default(), Histogram::<1>::default());
        for &t in &times[..300] {
            a.add(t, 0);
        }
        for &t in &times[300..] {
            b.add(t, 0);
        }
        b.merge(&a);
        assert_eq!(whole, b);
        assert!(whole.buckets.len() <= MAX_BUCKETS);
        assert_eq!(whole.iter().map(|(_, c)| c[0]).sum::<u64>(), 2000);
    }
}
