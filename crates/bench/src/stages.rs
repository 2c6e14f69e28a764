//! Where `annotate`'s time goes: the one-pass pipeline run in-process up
//! to each stage in turn (read, decode, flow table, held rows, CSV
//! formatting, writing), so that each stage's cost is the difference
//! between two lines. The stages drive the engine's own `Tracker` and
//! held rows in the order its one-pass schedule does.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use tcpshut_engine::CaptureReader;
use tcpshut_engine::PendingRows;
use tcpshut_engine::Tracker;
use tcpshut_engine::{CsvSink, Detail, RowSink};

/// The stages, each including those before it.
const STAGES: [&str; 6] = [
    "read every frame",
    "+ decode to TCP segments",
    "+ flow table and connections",
    "+ rows held until their verdict, made in frame order",
    "+ CSV formatting",
    "+ writing the CSV file",
];

/// Runs the pipeline up to stage `upto` (0-based) once; returns seconds.
fn run_once(path: &Path, upto: usize, out_dir: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut reader = CaptureReader::open(path)?;
    let mut tracker = Tracker::concluding(Detail::Brief);
    let mut held = PendingRows::new(tcpshut_engine::MAX_HELD_ROWS);
    let out: Box<dyn Write> = if upto >= 5 {
        let file = std::fs::File::create(out_dir.join("stages.tcpshut.csv"))?;
        Box::new(file)
    } else {
        Box::new(std::io::sink())
    };
    let mut csv = CsvSink::new(out);
    let mut frames = 0u64;
    let mut emit = |row: &tcpshut_engine::Row| -> std::io::Result<()> {
        if upto >= 4 {
            csv.row(row)
        } else {
            std::hint::black_box(row);
            Ok(())
        }
    };
    while let Some(frame) = reader.next_frame()? {
        frames += 1;
        if upto == 0 {
            std::hint::black_box(frame.data.len());
            continue;
        }
        let Some(seg) = tracker.decode(&frame) else {
            continue;
        };
        if upto == 1 {
            std::hint::black_box(&seg);
            continue;
        }
        let facts = tracker.observe(&seg);
        if upto == 2 {
            tracker.conclude_retired(|flow, verdict| {
                std::hint::black_box((flow, verdict));
            });
            std::hint::black_box(facts);
            continue;
        }
        held.hold(&seg, &facts)?;
        let mut settled = Ok(false);
        tracker.conclude_retired(|flow, verdict| {
            if settled.is_ok() {
                settled = held.settle(&flow.conn, verdict).map(|()| true);
            }
        });
        if settled? {
            held.release(&mut emit)?;
        }
    }
    if upto >= 3 {
        let read = (frames, None);
        let mut settled = Ok(());
        tracker.finish(
            |flow, verdict| {
                if settled.is_ok() {
                    settled = held.settle(&flow.conn, verdict);
                }
            },
            path,
            "",
            read,
        );
        settled?;
        held.release(&mut emit)?;
    }
    csv.finish()?;
    std::hint::black_box(frames);
    Ok(started.elapsed().as_secs_f64())
}

/// Runs every stage `reps` times, interleaved, and prints the medians and
/// what each stage adds.
pub fn report(path: &Path, reps: usize, out_dir: &Path) -> anyhow::Result<()> {
    let mut times = vec![Vec::new(); STAGES.len()];
    for _ in 0..reps.max(1) {
        for (upto, samples) in times.iter_mut().enumerate() {
            samples.push(run_once(path, upto, out_dir)?);
        }
    }
    println!("| stage | median s | adds s |");
    println!("|---|---|---|");
    let mut before = 0.0;
    for (name, samples) in STAGES.iter().zip(&mut times) {
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        println!("| {name} | {median:.3} | {:+.3} |", median - before);
        before = median;
    }
    let _ = std::fs::remove_file(out_dir.join("stages.tcpshut.csv"));
    Ok(())
}
