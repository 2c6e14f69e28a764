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

use std::process::Command;
use std::time::Duration;

use crate::measure::{self, Run};

/// `pairs` pairs of runs, without and with, each pair's two runs started
/// together on one CPU (`measure::run_together`), the CPU going round
/// `cpus` from pair to pair and the side started first alternating;
/// `command(with)` makes the command of one side. The two lists are the
/// pairs' sides, in order.
///
/// Why together on one CPU, and not one after the other: on this VM a
/// process's CPU time moves by tens of percent within seconds. tshark
/// against itself ("A/A", where every ratio should be 1): two runs one
/// after the other gave pair ratios from 0.60 to 1.58, and the median of
/// fifteen such pairs read from 0.82 to 1.21 in seven repetitions; two
/// runs at once, one on each CPU, 0.66 to 1.65 (the two CPUs are slowed
/// apart), medians 0.95 to 1.03; two runs sharing one CPU, in slices of
/// milliseconds, see the same machine: pairs 0.96 to 1.09, medians 0.993
/// to 1.008 in three repetitions, at load averages of 5 to 20
/// (docs/performance.md, "Tenth round").
pub fn together(
    pairs: usize,
    cpus: &[usize],
    mut command: impl FnMut(bool) -> anyhow::Result<Command>,
) -> anyhow::Result<(Vec<Run>, Vec<Run>)> {
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        let cpu = cpus[pair % cpus.len().max(1)];
        let with_first = pair % 2 == 1;
        let (mut first, mut second) = (command(with_first)?, command(!with_first)?);
        let (a, b) = measure::run_together(&mut first, &mut second, cpu)?;
        let (run_without, run_with) = if with_first { (b, a) } else { (a, b) };
        without.push(run_without);
        with.push(run_with);
    }
    Ok((without, with))
}

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

    /// Both runs of a pair are bound to the pair's CPU, the CPUs go
    /// round, and the side started first alternates.
    #[test]
    fn together_binds_each_pair_to_one_cpu_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let cpus = measure::allowed_cpus();
        let mut asked = Vec::new();
        let mut n = 0;
        let (without, with) = together(3, &cpus, |plugin| {
            asked.push(plugin);
            n += 1;
            let out = dir.path().join(format!("{n}-{plugin}"));
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg("grep Cpus_allowed_list /proc/self/status > \"$1\"")
                .arg("sh")
                .arg(&out);
            Ok(c)
        })
        .unwrap();
        assert_eq!((without.len(), with.len()), (3, 3));
        assert_eq!(asked, [false, true, true, false, false, true]);
        for (i, pair) in asked.chunks(2).enumerate() {
            let cpu = cpus[i % cpus.len()];
            for (j, plugin) in pair.iter().enumerate() {
                let file = dir.path().join(format!("{}-{plugin}", 2 * i + j + 1));
                let text = std::fs::read_to_string(&file).unwrap();
                assert_eq!(
                    text.split_whitespace().last(),
                    Some(cpu.to_string().as_str()),
                    "pair {i}: {text}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "pairs need both sides")]
    fn unequal_sides_are_refused() {
        pair_ratios(&ms(&[1, 2]), &ms(&[1]));
    }
}
