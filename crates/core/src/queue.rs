//! The order a batch's inputs are worked on: one shared queue, largest
//! input first, each worker taking the next input when it is free.
//!
//! A batch ends when its last input ends, and its end is the one part
//! the workers cannot share: one worker finishes that input while the
//! others wait. Taken one at a time from a queue (not split in ranges, as
//! `par_iter` does, which leaves several inputs on one worker's range at
//! the end), the inputs still running at the end are at most one per
//! worker; taken largest first, they are the smallest. What is worked out
//! comes back in input order, so nothing a run prints or writes depends
//! on the order the work was done in.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::inputs::Input;

/// Runs `step` on every input, in `pool`'s workers, each worker folding
/// what its inputs give into its own `init()`; returns each worker's
/// result. `step` gets an input's position among `inputs`.
pub fn fold<A: Send>(
    pool: &rayon::ThreadPool,
    inputs: &[Input],
    init: impl Fn() -> A + Sync,
    step: impl Fn(A, usize, &Input) -> A + Sync,
) -> Vec<A> {
    let order = largest_first(inputs);
    let next = AtomicUsize::new(0);
    pool.broadcast(|_| {
        let mut acc = init();
        while let Some(&at) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            acc = step(acc, at, &inputs[at]);
        }
        acc
    })
}

/// [`fold`] for work whose results are kept: `work`'s result for each
/// input, in input order.
pub fn map<T: Send>(
    pool: &rayon::ThreadPool,
    inputs: &[Input],
    work: impl Fn(&Input) -> T + Sync,
) -> Vec<T> {
    let done = fold(pool, inputs, Vec::new, |mut done, at, input| {
        done.push((at, work(input)));
        done
    });
    let mut all: Vec<(usize, T)> = done.into_iter().flatten().collect();
    all.sort_unstable_by_key(|(at, _)| *at);
    all.into_iter().map(|(_, result)| result).collect()
}

/// Positions of `inputs`, the largest (in bytes, a series' files summed)
/// first; inputs of the same size, and those that have none (standard
/// input, a problem), in input order.
fn largest_first(inputs: &[Input]) -> Vec<usize> {
    let size = |input: &Input| -> u64 {
        input
            .captures()
            .iter()
            .map(|path| std::fs::metadata(path).map_or(0, |m| m.len()))
            .sum()
    };
    let sizes: Vec<u64> = inputs.iter().map(size).collect();
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&at| std::cmp::Reverse(sizes[at]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn results_come_back_in_input_order_whatever_ran_first() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes out of order, so the queue's order is not the input's.
        let inputs: Vec<Input> = [3usize, 10, 1, 7, 0, 7]
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let path = dir.path().join(format!("{i}.pcap"));
                std::fs::write(&path, vec![0u8; len]).unwrap();
                Input::Capture(path)
            })
            .chain([Input::Problem("gone".into(), "why".into())])
            .collect();
        assert_eq!(largest_first(&inputs), [1, 3, 5, 0, 2, 4, 6]);
        for threads in [1, 2, 3] {
            let names = map(&pool(threads), &inputs, |input| match input {
                Input::Capture(path) => path.file_name().unwrap().to_owned(),
                _ => "problem".into(),
            });
            let expected = [
                "0.pcap", "1.pcap", "2.pcap", "3.pcap", "4.pcap", "5.pcap", "problem",
            ];
            assert_eq!(names, expected);
        }
    }

    #[test]
    fn every_input_is_folded_once() {
        let inputs: Vec<Input> = (0..50)
            .map(|i| Input::Problem(format!("{i}").into(), String::new()))
            .collect();
        let sums = fold(&pool(3), &inputs, || 0usize, |sum, at, _| sum + at + 1);
        assert_eq!(sums.len(), 3);
        assert_eq!(sums.iter().sum::<usize>(), (1..=50).sum::<usize>());
    }
}
