//! tcpshut-bench: generates large synthetic captures and measures tcpshut
//! against a bare read loop, tcptrace and tshark on the same files.
//!
//! `tcpshut-bench run` does everything: builds nothing itself (run it with
//! `cargo run --release -p tcpshut-bench -- run`, which builds tcpshut
//! first), generates the captures into `target/bench/`, runs each tool as
//! a child process several times and prints medians as Markdown tables.

mod gen;
mod inputs;
mod instructions;
mod leftovers;
mod measure;
mod paired;
mod plugin;
mod stages;
mod targets;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tcpshut_engine::{CaptureReader, FramesRun};
use tcpshut_engine::{Detail, Tracker};

use gen::GenConfig;
use measure::Summary;
use targets::{Bound, Targets};

#[derive(Parser)]
#[command(name = "tcpshut-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate one synthetic capture.
    Gen {
        #[arg(long, default_value_t = 20_000)]
        connections: u32,
        #[arg(long, default_value_t = 500)]
        concurrency: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// The floor: read every frame with tcpshut's reader and do nothing
    /// else (with --decode: also decode it to a TCP segment as annotate
    /// does, with the CSV sidecar's decode options).
    #[command(hide = true)]
    Read {
        path: PathBuf,
        #[arg(long)]
        decode: bool,
    },
    /// Generate the captures and run the whole benchmark.
    Run(RunArgs),
    /// Where annotate's time goes: the pipeline up to each stage in turn,
    /// in-process, on one capture (medians of `--reps` runs).
    Stages {
        path: PathBuf,
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Where captures and sidecars go.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Connections in each single-file capture.
    #[arg(long, value_delimiter = ',', default_value = "20000,50000")]
    sizes: Vec<u32>,
    /// The long capture: this many times the largest size (0: skip).
    #[arg(long, default_value_t = 10)]
    long_factor: u32,
    #[arg(long, default_value_t = 500)]
    concurrency: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs of tcpshut and the read loop per file (medians are reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Untimed runs of a command right before each of its timed runs (the
    /// plugin part excepted, which times pairs). One by default: the
    /// commands run in turn, and a run times the state the run before it
    /// left behind, of another tool unless warmed up: annotate right
    /// after a tshark run took 0.48-0.51 s, right after another annotate
    /// 0.37-0.44 s (docs/performance.md, "Fourteenth round: warm-up
    /// runs"). Every command gets the same, tshark and tcptrace included.
    #[arg(long, default_value_t = 1)]
    warmups: usize,
    /// Runs of tcptrace and tshark per file (they are slow); in the plugin
    /// part, the pairs of runs (without, with) of the GUI rows, the Lua
    /// plugin's rows and the rows shown without a target.
    #[arg(long, default_value_t = 3)]
    tool_reps: usize,
    /// The plugin part: pairs of runs (without, with) of the native
    /// plugin's tshark rows, whose targets are within reach, and of the
    /// A/A rows (tshark against itself: the noise); each pair gives a CPU
    /// ratio, the median of the pairs' ratios is checked. Fifteen: the two
    /// runs of a pair share one CPU, and there A/A pairs spread over
    /// ±5 % (one after the other, ±50 %), within the 2 % margin of the
    /// no-sidecar target only as a median of many.
    #[arg(long, default_value_t = 15)]
    plugin_reps: usize,
    /// The plugin part: the native plugin's tshark rows' instructions
    /// (cachegrind) are counted on the capture's first frame and first this
    /// many frames, and modelled for the whole capture (0: not counted).
    #[arg(long, default_value_t = 10_000)]
    plugin_cut: u64,
    /// Captures in the batch directory, and connections in each.
    #[arg(long, default_value_t = 40)]
    batch_files: u32,
    #[arg(long, default_value_t = 2_500)]
    batch_connections: u32,
    /// Skip tcptrace and tshark.
    #[arg(long)]
    no_tools: bool,
    /// Which parts to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sizes,long,batch,inputs,formats,plugin"
    )]
    parts: Vec<Part>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// The single captures of `--sizes`, with every tool.
    Sizes,
    /// The capture `--long-factor` times as long, tcpshut and the floor.
    Long,
    /// The directory of `--batch-files` captures, `--jobs 1` and `--jobs 2`.
    Batch,
    /// The largest capture compressed (gzip, zstd, lz4) and through a
    /// pipe, against the plain file.
    Inputs,
    /// The largest capture written as CSV, Parquet and Zeek's conn.log:
    /// time, memory and the size of what each writes.
    Formats,
    /// The Wireshark plugin on the smallest capture: tshark with the
    /// plugin and its sidecar (`-r`, `-T fields`, `-z expert`), with the
    /// plugin and no sidecar, and Wireshark (Xvfb) with the `tcpshut`
    /// profile opening it until idle, each against without; then tshark
    /// 4.4 and 4.6 from the project's chroots (`-r`, `-T fields`).
    Plugin,
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    leftovers::clean_up_on_signals()?;
    let result = run_command(command);
    if result.is_err() {
        // A tool the signal thread ended is not the failure to report.
        leftovers::wait_if_ending();
    }
    result
}

fn run_command(command: Cmd) -> anyhow::Result<()> {
    match command {
        Cmd::Gen {
            connections,
            concurrency,
            seed,
            output,
        } => {
            let config = GenConfig {
                connections,
                concurrency,
                seed,
            };
            let stats = gen::generate(&config, &output)?;
            println!("{}: {stats:?}", output.display());
            Ok(())
        }
        Cmd::Read { path, decode } => {
            let (frames, segments) = read_loop(&path, decode)?;
            println!("{frames} frames, {segments} TCP segments");
            Ok(())
        }
        Cmd::Run(args) => run(&args),
        Cmd::Stages { path, reps } => {
            let dir = path.parent().unwrap_or(Path::new("."));
            stages::report(&path, reps, dir)
        }
    }
}

/// Reads every frame (and decodes it, if asked); returns frames and segments.
/// The decoding is annotate's own: the CSV sidecar's [`Tracker`] (the same
/// decode options, so no checksum verification, and the same reassembly of
/// fragmented tunnel packets), so that the floor holds exactly the reading
/// and decoding that `annotate FILE` does, and nothing more.
fn read_loop(path: &Path, decode: bool) -> anyhow::Result<(u64, u64)> {
    let mut reader = CaptureReader::open(path)?;
    let mut tracker = Tracker::concluding(Detail::Brief);
    let mut segments = 0u64;
    let mut bytes = 0u64;
    // Read as annotate's frame loop reads (`CaptureReader::read_frames`).
    let (_, ended) = reader.read_frames(u64::MAX, |frame| {
        bytes = bytes.wrapping_add(frame.data.len() as u64);
        if decode {
            let seg = tracker.decode(frame);
            segments += u64::from(seg.is_some());
            std::hint::black_box(seg);
        }
        std::ops::ControlFlow::Continue(())
    });
    if let FramesRun::Broke(e) = ended {
        return Err(e.into());
    }
    std::hint::black_box(bytes);
    Ok((reader.frames_read(), segments))
}

/// Locates (and under `cargo run`, builds) the release tcpshut binary.
fn tcpshut_binary() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "tcpshut",
                "--manifest-path",
            ])
            .arg(workspace.join("Cargo.toml"))
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("cargo build --release -p tcpshut failed");
        }
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("tcpshut");
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p tcpshut`",
            bin.display()
        );
    }
    Ok(bin)
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024 / 1024);
    format!(
        "{cpu}, {cores} cores, {mem} GiB RAM, Linux {}",
        first_line("uname", &["-r"])
    )
}

/// A capture of the benchmark, generated once and reused (same name, same bytes).
struct Capture {
    path: PathBuf,
    segments: u64,
    bytes: u64,
}

fn capture(dir: &Path, config: &GenConfig) -> anyhow::Result<Capture> {
    let path = dir.join(format!(
        "synthetic-{}conn-c{}-s{}.pcap",
        config.connections, config.concurrency, config.seed
    ));
    if !path.exists() {
        let partial = path.with_extension("partial");
        let stats = gen::generate(config, &partial)?;
        std::fs::rename(&partial, &path)?;
        eprintln!(
            "generated {}: {} packets, {} MB, {} s of capture time, at most {} connections open, {} left open",
            path.display(),
            stats.packets,
            stats.bytes / 1_000_000,
            stats.span_secs,
            stats.max_open,
            stats.left_open
        );
    }
    read_back_from_disk(&path)?;
    let (_, segments) = read_loop(&path, true)?;
    Ok(Capture {
        bytes: std::fs::metadata(&path)?.len(),
        path,
        segments,
    })
}

/// A tool to measure on one capture.
struct Tool {
    name: &'static str,
    command: Box<dyn Fn(&Path) -> Command>,
    reps: usize,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Deletes the sidecars of `path` (a capture, or the captures of a
/// directory): every `CAPTURE.tcpshut.*` file but the annotated pcapng
/// copy, so that every run writes its output anew: replacing the
/// previous run's would also time the kernel freeing that file's pages
/// (and waiting for their writeback), which varies from run to run.
/// Writes every dirty page to disk before a run starts, outside the
/// measurement: otherwise the kernel writes back the generator's capture
/// (4.4 GB for the long one) or an earlier run's sidecar while a later run
/// is timed, and that run pays for I/O that is not its own (the long
/// capture read 0.72 of the short one's rate right after it was generated,
/// 1.03–1.28 with the file settled).
fn settle_writeback() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Drops `path` from the page cache and reads it back from the disk,
/// so that every part's capture is in the page cache as a capture is that
/// was read once from the disk, whoever wrote it and whatever the kernel
/// has evicted of it since. How a file came into the page cache changes
/// how fast it is mapped: written by the generator (8 KB writes, small
/// folios), the bench capture's read + decode floor took 0.095 s; copied
/// with `cp`, 0.072 s; dropped and read back (readahead's large folios,
/// 547 page faults instead of 6,749), 0.060 s, while annotate took 0.18 s
/// in either of the last two (docs/performance.md, "Fourteenth round: a
/// faster machine, and the page cache").
pub(crate) fn read_back_from_disk(path: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    use std::os::unix::io::AsRawFd;
    // Only clean pages are dropped.
    settle_writeback();
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: a valid descriptor; the call only advises the kernel.
    let dropped = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if dropped != 0 {
        bail!(
            "cannot drop {} from the page cache: {}",
            path.display(),
            std::io::Error::from_raw_os_error(dropped)
        );
    }
    let mut buf = vec![0; 1 << 20];
    while file.read(&mut buf)? > 0 {}
    Ok(())
}

fn remove_sidecars(path: &Path) -> anyhow::Result<()> {
    for sidecar in sidecars(path)? {
        match std::fs::remove_file(&sidecar) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", sidecar.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The files tcpshut wrote beside `path` (a capture, or the captures of
/// a directory).
fn sidecars(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (dir, prefix) = if path.is_dir() {
        (path.to_path_buf(), String::new())
    } else {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            name.into_owned(),
        )
    };
    Ok(std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix)
                && name.contains(".tcpshut.")
                && !name.ends_with(".tcpshut.pcapng")
        })
        .collect())
}

/// Measures every tool on `file`, runs interleaved so that background
/// noise spreads evenly, each timed run right after `warmups` untimed
/// runs of the same command (so that it follows itself, not another
/// tool); returns each tool's summary.
fn measure_all(tools: &[Tool], file: &Path, warmups: usize) -> anyhow::Result<Vec<Summary>> {
    let mut runs: Vec<Vec<measure::Run>> = tools.iter().map(|_| Vec::new()).collect();
    let max_reps = tools.iter().map(|t| t.reps).max().unwrap_or(0);
    for rep in 0..max_reps {
        for (tool, runs) in tools.iter().zip(&mut runs) {
            if rep < tool.reps {
                for _ in 0..warmups {
                    remove_sidecars(file)?;
                    settle_writeback();
                    measure::run(&mut (tool.command)(file))?;
                }
                remove_sidecars(file)?;
                settle_writeback();
                runs.push(measure::run(&mut (tool.command)(file))?);
            }
        }
    }
    Ok(runs.iter().map(|r| measure::summarize(r)).collect())
}

fn print_table(cap: &Capture, tools: &[Tool], results: &[Summary]) {
    println!(
        "\n### {} ({} TCP segments, {} MB)\n",
        cap.path.file_name().unwrap_or_default().to_string_lossy(),
        cap.segments,
        cap.bytes / 1_000_000
    );
    println!("| tool | runs | wall s (median) | CPU s (median) | segments/s (wall) | segments/s (CPU) | time vs tcpshut | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|---|");
    let base = results[0].wall;
    for (tool, r) in tools.iter().zip(results) {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.2} M | {:.2} M | {:.2}× | {:.1} |",
            tool.name,
            r.runs,
            secs(r.wall),
            secs(r.cpu),
            cap.segments as f64 / secs(r.wall) / 1e6,
            cap.segments as f64 / secs(r.cpu).max(1e-9) / 1e6,
            secs(r.wall) / secs(base),
            mb(r.max_rss)
        );
    }
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let tcpshut = tcpshut_binary()?;
    let me = std::env::current_exe()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    println!("## tcpshut benchmark\n");
    println!("Machine: {}", machine());
    println!("tcpshut: {}", tcpshut.display());
    // Other work on the machine skews wall times; CPU times much less.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("Load average at start: {}", load.trim());

    let annotate = {
        let bin = tcpshut.clone();
        move |f: &Path| {
            let mut c = Command::new(&bin);
            c.arg("annotate").arg(f).arg("--no-progress");
            c
        }
    };
    // tcpshut report's target: at most 1.5× annotate on the same capture;
    // on two threads (the default) at most 1.15× the CPU of one.
    let report = |one_thread: bool| {
        let bin = tcpshut.clone();
        move |f: &Path| {
            let mut c = Command::new(&bin);
            c.arg("report")
                .arg(f)
                .args(["--format", "json", "--no-progress"]);
            if one_thread {
                c.args(["--jobs", "1"]);
            }
            c
        }
    };
    let read = |decode: bool| {
        let me = me.clone();
        move |f: &Path| {
            let mut c = Command::new(&me);
            c.arg("read").arg(f);
            if decode {
                c.arg("--decode");
            }
            c
        }
    };
    // `--jobs 1` on one capture: the one-pass pipeline on one thread.
    let annotate_one_thread = {
        let bin = tcpshut.clone();
        move |f: &Path| {
            let mut c = Command::new(&bin);
            c.arg("annotate")
                .arg(f)
                .args(["--no-progress", "--jobs", "1"]);
            c
        }
    };
    // The indices of `tools` the targets use.
    const ANNOTATE: usize = 0;
    const ONE_THREAD: usize = 1;
    const REPORT: usize = 2;
    const DECODE: usize = 4;
    const REPORT_ONE_THREAD: usize = 5;
    let mut tools = vec![
        Tool {
            name: "tcpshut annotate (CSV sidecar, two threads)",
            command: Box::new(annotate.clone()),
            reps: args.reps,
        },
        Tool {
            name: "tcpshut annotate --jobs 1 (one thread)",
            command: Box::new(annotate_one_thread.clone()),
            reps: args.reps,
        },
        Tool {
            name: "tcpshut report --format json",
            command: Box::new(report(false)),
            reps: args.reps,
        },
        Tool {
            name: "read loop (floor)",
            command: Box::new(read(false)),
            reps: args.reps,
        },
        Tool {
            name: "read + link decode",
            command: Box::new(read(true)),
            reps: args.reps,
        },
        Tool {
            name: "tcpshut report --format json --jobs 1 (one thread)",
            command: Box::new(report(true)),
            reps: args.reps,
        },
    ];
    if !args.no_tools && on_path("tcptrace") {
        println!("tcptrace: {}", first_line("tcptrace", &["-v"]));
        tools.push(Tool {
            name: "tcptrace -n -l",
            command: Box::new(|f: &Path| {
                let mut c = Command::new("tcptrace");
                c.args(["-n", "-l"]).arg(f);
                c
            }),
            reps: args.tool_reps,
        });
    } else if !args.no_tools {
        println!("tcptrace: not installed (scripts/install-deps --bench), skipped");
    }
    if !args.no_tools && on_path("tshark") {
        println!("tshark: {}", first_line("tshark", &["--version"]));
        tools.push(Tool {
            name: "tshark TCP analysis fields",
            command: Box::new(|f: &Path| {
                let mut c = Command::new("tshark");
                c.arg("-r").arg(f).args([
                    "-T",
                    "fields",
                    "-e",
                    "tcp.connection.fin_active",
                    "-e",
                    "tcp.connection.rst",
                    "-e",
                    "tcp.completeness",
                ]);
                c
            }),
            reps: args.tool_reps,
        });
    } else if !args.no_tools {
        println!("tshark: not installed, skipped");
    }
    println!(
        "\nMedians of {} runs for tcpshut and the read loops, {} for tcptrace and tshark, each right after {} untimed run(s) of the same command; \
         files in the page cache, each read back from the disk once before its part (dropped, then read, so that all are cached alike); each tcpshut run writes its sidecars anew (the previous run's are deleted first, outside the measurement).",
        args.reps, args.tool_reps, args.warmups
    );

    let config = |connections: u32, seed: u64| GenConfig {
        connections,
        concurrency: args.concurrency,
        seed,
    };
    let sizes = if args.parts.contains(&Part::Sizes) {
        args.sizes.as_slice()
    } else {
        &[]
    };
    let mut targets = Targets::default();
    for &size in sizes {
        let cap = capture(&dir, &config(size, args.seed))?;
        let mut left = leftovers::Leftovers::default();
        left.sidecars_of(&cap.path);
        let results = measure_all(&tools, &cap.path, args.warmups)?;
        print_table(&cap, &tools, &results);
        let name = format!("{size} connections");
        let annotate = &results[ANNOTATE];
        let wall = |i: usize| results[i].wall;
        targets.check(
            format!("{name}: annotate's CPU time, two threads / one"),
            Targets::ratio(annotate.cpu, results[ONE_THREAD].cpu),
            Bound::AtMost(1.15),
        );
        targets.check(
            format!("{name}: annotate's wall time, one thread / two"),
            Targets::ratio(wall(ONE_THREAD), annotate.wall),
            Bound::Shown,
        );
        targets.check(
            format!("{name}: annotate's wall time / read + decode's"),
            Targets::ratio(annotate.wall, wall(DECODE)),
            Bound::AtMost(2.0),
        );
        targets.check(
            format!("{name}: report's wall time / annotate's"),
            Targets::ratio(wall(REPORT), annotate.wall),
            Bound::AtMost(1.5),
        );
        targets.check(
            format!("{name}: report's CPU time, two threads / one"),
            Targets::ratio(results[REPORT].cpu, results[REPORT_ONE_THREAD].cpu),
            Bound::AtMost(1.15),
        );
        for (i, tool) in tools.iter().enumerate() {
            let (tool_name, at_least) = match tool.name {
                n if n.starts_with("tcptrace") => ("tcptrace -n -l", 10.0),
                n if n.starts_with("tshark") => ("tshark's TCP analysis", 100.0),
                _ => continue,
            };
            targets.check(
                format!("{name}: wall time of {tool_name} / annotate's"),
                Targets::ratio(results[i].wall, annotate.wall),
                Bound::AtLeast(at_least),
            );
        }
    }

    let largest = args.sizes.iter().copied().max().unwrap_or(0);
    if args.parts.contains(&Part::Long) && args.long_factor > 0 && largest > 0 {
        // The largest capture and the long one with the same tools, the
        // sidecar to a file and to /dev/null (without the kernel's
        // page-cache copy).
        let to_null = |threads: &'static str| {
            let bin = tcpshut.clone();
            move |f: &Path| {
                let mut c = Command::new(&bin);
                c.arg("annotate").arg(f).args([
                    "--no-progress",
                    "--jobs",
                    threads,
                    "-o",
                    "/dev/null",
                ]);
                c
            }
        };
        let long_tools = [
            Tool {
                name: "tcpshut annotate (two threads)",
                command: Box::new(annotate.clone()),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut annotate --jobs 1 (one thread)",
                command: Box::new(annotate_one_thread.clone()),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut annotate -o /dev/null (two threads)",
                command: Box::new(to_null("2")),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut annotate -o /dev/null --jobs 1",
                command: Box::new(to_null("1")),
                reps: args.reps,
            },
            Tool {
                name: "read loop (floor)",
                command: Box::new(read(false)),
                reps: args.reps,
            },
        ];
        let short = capture(&dir, &config(largest, args.seed))?;
        let long = capture(&dir, &config(largest * args.long_factor, args.seed))?;
        let mut left = leftovers::Leftovers::default();
        left.sidecars_of(&short.path);
        left.sidecars_of(&long.path);
        let short_results = measure_all(&long_tools, &short.path, args.warmups)?;
        let long_results = measure_all(&long_tools, &long.path, args.warmups)?;
        println!(
            "\nThe long capture: {}× the connections over {}× the time, same concurrency, \
             against the largest capture.",
            args.long_factor, args.long_factor
        );
        print_table(&short, &long_tools, &short_results);
        print_table(&long, &long_tools, &long_results);
        for (i, tool) in long_tools.iter().enumerate() {
            let rate = |cap: &Capture, r: &Summary| cap.segments as f64 / secs(r.wall);
            targets.check(
                format!(
                    "{}× as long: segments/s (wall) long / short, {}",
                    args.long_factor, tool.name
                ),
                rate(&long, &long_results[i]) / rate(&short, &short_results[i]),
                if i == 0 {
                    Bound::AtLeast(0.85)
                } else {
                    Bound::Shown
                },
            );
        }
    }

    if args.parts.contains(&Part::Inputs) && largest > 0 {
        let cap = capture(&dir, &config(largest, args.seed))?;
        let mut left = leftovers::Leftovers::default();
        left.sidecars_of(&cap.path);
        let tools = inputs::tools(&tcpshut, &cap.path, args.reps)?;
        let results = measure_all(&tools, &cap.path, args.warmups)?;
        println!(
            "\nInputs as they arrive: the capture compressed by the usual tools' defaults \
             (decompressed on a second thread), and read from a pipe; each writes the same sidecar."
        );
        print_table(&cap, &tools, &results);
        inputs::check_ratios(&tools, &results, &mut targets);
    }

    if args.parts.contains(&Part::Formats) && largest > 0 {
        let cap = capture(&dir, &config(largest, args.seed))?;
        let mut left = leftovers::Leftovers::default();
        left.sidecars_of(&cap.path);
        let format = |format: &'static str| {
            let bin = tcpshut.clone();
            move |f: &Path| {
                let mut c = Command::new(&bin);
                c.arg("annotate")
                    .arg(f)
                    .args(["--no-progress", "--format", format]);
                c
            }
        };
        let formats = ["csv", "parquet", "zeek"];
        let format_tools = [
            Tool {
                name: "tcpshut annotate --format csv",
                command: Box::new(format("csv")),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut annotate --format parquet",
                command: Box::new(format("parquet")),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut annotate --format zeek",
                command: Box::new(format("zeek")),
                reps: args.reps,
            },
        ];
        let results = measure_all(&format_tools, &cap.path, args.warmups)?;
        println!("\nOutput formats on the same capture (CSV is the sidecar of the tables above).");
        print_table(&cap, &format_tools, &results);
        // What each writes, from one more run each (not timed).
        targets.check(
            "annotate's wall time, Parquet / CSV",
            Targets::ratio(results[1].wall, results[0].wall),
            Bound::AtMost(1.0),
        );
        targets.check(
            "annotate's wall time, Zeek's conn.log / CSV",
            Targets::ratio(results[2].wall, results[0].wall),
            Bound::Shown,
        );
        println!("\n| format | files | MB | vs CSV |\n|---|---|---|---|");
        let mut csv_bytes = 0;
        for (name, tool) in formats.iter().zip(&format_tools) {
            remove_sidecars(&cap.path)?;
            // Its summary on standard output is not the benchmark's report.
            let status = (tool.command)(&cap.path)
                .stdout(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                bail!("{} failed: {status}", tool.name);
            }
            let files = sidecars(&cap.path)?;
            let bytes: u64 = files
                .iter()
                .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
                .sum();
            if *name == "csv" {
                csv_bytes = bytes;
            }
            if *name == "parquet" {
                targets.check(
                    "size, CSV / Parquet",
                    csv_bytes as f64 / bytes.max(1) as f64,
                    Bound::AtLeast(4.0),
                );
            }
            let mut names: Vec<String> = files
                .iter()
                .map(|f| {
                    f.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.sort();
            println!(
                "| {name} | {} | {:.1} | {:.2}× smaller |",
                names.join(", "),
                bytes as f64 / 1e6,
                csv_bytes as f64 / bytes.max(1) as f64
            );
        }
    }

    if args.parts.contains(&Part::Batch) && args.batch_files > 0 {
        let batch = dir.join(format!(
            "batch-{}x{}conn-c{}",
            args.batch_files, args.batch_connections, args.concurrency
        ));
        std::fs::create_dir_all(&batch)?;
        let mut left = leftovers::Leftovers::default();
        left.sidecars_of(&batch);
        let mut segments = 0;
        for k in 0..args.batch_files {
            segments +=
                capture(&batch, &config(args.batch_connections, 1000 + u64::from(k)))?.segments;
        }
        let jobs = |command: &'static str, n: &'static str| {
            let bin = tcpshut.clone();
            move |d: &Path| {
                let mut c = Command::new(&bin);
                c.arg(command).arg(d).args(["--no-progress", "--jobs", n]);
                c
            }
        };
        let batch_tools = [
            Tool {
                name: "tcpshut annotate DIR --jobs 1",
                command: Box::new(jobs("annotate", "1")),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut annotate DIR --jobs 2",
                command: Box::new(jobs("annotate", "2")),
                reps: args.reps,
            },
            // Both cores: --jobs 2 should take about half of --jobs 1.
            Tool {
                name: "tcpshut report DIR --jobs 1",
                command: Box::new(jobs("report", "1")),
                reps: args.reps,
            },
            Tool {
                name: "tcpshut report DIR --jobs 2",
                command: Box::new(jobs("report", "2")),
                reps: args.reps,
            },
        ];
        let results = measure_all(&batch_tools, &batch, args.warmups)?;
        let cap = Capture {
            path: batch.clone(),
            segments,
            bytes: 0,
        };
        print_table(&cap, &batch_tools, &results);
        for (command, one, two) in [("annotate", 0, 1), ("report", 2, 3)] {
            targets.check(
                format!(
                    "{} captures: {command} wall time, --jobs 1 / --jobs 2",
                    args.batch_files
                ),
                Targets::ratio(results[one].wall, results[two].wall),
                Bound::AtLeast(1.8),
            );
        }
    }

    let smallest = args.sizes.iter().copied().min().unwrap_or(0);
    if args.parts.contains(&Part::Plugin) && smallest > 0 {
        let cap = capture(&dir, &config(smallest, args.seed))?;
        let reps = plugin::Reps {
            tool: args.tool_reps,
            native: args.plugin_reps,
            cut: args.plugin_cut,
        };
        plugin::run(&tcpshut, &cap.path, &dir, reps, &mut targets)?;
    }
    targets.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each timed run comes right after `warmups` untimed runs of the same
    /// command, rounds interleaving the tools, and only the timed runs are
    /// summarised; the sidecars of each run are gone before the next.
    #[test]
    fn every_timed_run_follows_its_own_warm_up_runs() {
        let dir = tempfile::tempdir().unwrap();
        let capture = dir.path().join("cap.pcap");
        std::fs::write(&capture, b"").unwrap();
        let log = dir.path().join("log");
        let tool = |name: &'static str, reps: usize| {
            let log = log.clone();
            Tool {
                name,
                command: Box::new(move |file: &Path| {
                    let mut c = Command::new("sh");
                    // Logs its name and whether the previous run's sidecar
                    // was still there, then leaves one of its own.
                    c.arg("-c")
                        .arg(r#"s="$1.tcpshut.csv"; [ -e "$s" ] && n=stale || n=fresh; echo "$0 $n" >> "$2"; touch "$s""#)
                        .arg(name)
                        .arg(file)
                        .arg(&log);
                    c
                }),
                reps,
            }
        };
        let tools = [tool("a", 2), tool("b", 1)];
        let summaries = measure_all(&tools, &capture, 1).unwrap();
        let runs: Vec<usize> = summaries.iter().map(|s| s.runs).collect();
        assert_eq!(runs, [2, 1]);
        let order = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            order.lines().collect::<Vec<_>>(),
            ["a fresh", "a fresh", "b fresh", "b fresh", "a fresh", "a fresh"]
        );
    }
}
