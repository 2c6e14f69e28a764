//! Ratios of paired runs: a command with something (the plugin) and
//! without, run as adjacent pairs, give one ratio per pair; their median
//! and range are the figure and its noise.
//!
//! Why per pair and not the ratio of the two medians: on a shared VM a
//! process's CPU time drifts by tens of percent over minutes (other
//! guests, other processes' cache use). The two runs of one pair follow
//! each other within seconds and see the same drift, so their ratio
//! cancels most of it; the ratio of two medians picks each median from
//! whichever pair happened to be in the middle, possibly two different
//! pairs measured at different speeds.

use std::time::Duration;

use crate::measure::Run;

/// The median of a set of ratios and the range they spread over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// How many ratios (pairs) it summarizes.
    pub count: usize,
}

impl Spread {
    /// The median and range of `values` (the middle two's mean for an
    /// even count); `None` for no values or any that is not a number.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            count: n,
        })
    }

    /// `1.04 [0.98–1.10]`: the median, then the range.
    pub fn show(&self) -> String {
        format!("{:.2} [{:.2}–{:.2}]", self.median, self.min, self.max)
    }
}

/// `with[i] / without[i]` for each pair (a zero `without` counts as 1 ns,
/// as `Targets::ratio` does). The two slices are the pairs' two sides in
/// the order they were measured; a length mismatch is a caller's bug.
pub fn pair_ratios(without: &[Duration], with: &[Duration]) -> Vec<f64> {
    assert_eq!(without.len(), with.len(), "pairs need both sides");
    without
        .iter()
        .zip(with)
        .map(|(a, b)| b.as_secs_f64() / a.as_secs_f64().max(1e-9))
        .collect()
}

/// The median over pairs of `with.system - without.system` in seconds:
/// the kernel time the plugin adds, which an instruction count of user
/// space does not see. `None` when a run does not know its system time.
pub fn system_added(without: &[Run], with: &[Run]) -> Option<f64> {
    assert_eq!(without.len(), with.len(), "pairs need both sides");
    let added = without
        .iter()
        .zip(with)
        .map(|(a, b)| Some(b.system?.as_secs_f64() - a.system?.as_secs_f64()))
        .collect::<Option<Vec<f64>>>()?;
    Spread::of(&added).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn odd_count_takes_the_middle_value() {
        let s = Spread::of(&[1.30, 0.90, 1.05, 1.00, 1.10]).unwrap();
        assert_eq!(s.median, 1.05);
        assert_eq!((s.min, s.max, s.count), (0.90, 1.30, 5));
    }

    #[test]
    fn even_count_takes_the_mean_of_the_middle_two() {
        let s = Spread::of(&[1.2, 1.0, 1.1, 2.0]).unwrap();
        assert!((s.median - 1.15).abs() < 1e-12, "{s:?}");
        assert_eq!((s.min, s.max), (1.0, 2.0));
    }

    #[test]
    fn nothing_or_not_a_number_has_no_spread() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn shows_median_then_range() {
        let s = Spread::of(&[0.98, 1.04, 1.104]).unwrap();
        assert_eq!(s.show(), "1.04 [0.98–1.10]");
    }

    #[test]
    fn ratios_are_taken_within_each_pair() {
        // the machine halves its speed after the first two pairs: each
        // pair's ratio stays 1.10
        let without = ms(&[1000, 1000, 2000, 2000, 2000]);
        let with = ms(&[1100, 1100, 2200, 2200, 2200]);
        let ratios = pair_ratios(&without, &with);
        for r in &ratios {
            assert!((r - 1.1).abs() < 1e-9, "{ratios:?}");
        }
        assert_eq!(Spread::of(&ratios).unwrap().count, 5);
    }

    #[test]
    fn a_zero_baseline_does_not_divide_by_zero() {
        let r = pair_ratios(&ms(&[0]), &ms(&[1]));
        assert!(r[0].is_finite() && r[0] > 1.0, "{r:?}");
    }

    fn runs(system: &[Option<u64>]) -> Vec<Run> {
        system
            .iter()
            .map(|s| Run {
                wall: Duration::ZERO,
                cpu: Duration::ZERO,
                system: s.map(Duration::from_millis),
                max_rss: 0,
            })
            .collect()
    }

    #[test]
    fn system_time_added_is_the_median_of_the_pairs_differences() {
        let without = runs(&[Some(10), Some(30), Some(10)]);
        let with = runs(&[Some(14), Some(31), Some(20)]);
        let added = system_added(&without, &with).unwrap();
        assert!((added - 0.004).abs() < 1e-9, "{added}");
    }

    #[test]
    fn system_time_unknown_on_either_side_gives_none() {
        assert_eq!(system_added(&runs(&[Some(1)]), &runs(&[None])), None);
        assert_eq!(system_added(&runs(&[None]), &runs(&[Some(1)])), None);
    }

    #[test]
    #[should_panic(expected = "pairs need both sides")]
    fn unequal_sides_are_refused() {
        pair_ratios(&ms(&[1, 2]), &ms(&[1]));
    }
}
