//! Instruction counts (valgrind's cachegrind, `I refs`) of a command, and
//! the whole capture's count modelled from two cuts of it.
//!
//! Why: this VM has no hardware counters (`perf stat -e instructions`
//! fails), and its CPU times drift by tens of percent over minutes, while
//! a count of instructions is the same from run to run (two runs of one
//! command differ by less than 0.01 %). Cachegrind without its cache
//! simulation takes well under half of callgrind's time and counts within
//! about 1 % of it (tshark 4.0 on 10,000 frames: 1,313.8 M against
//! callgrind's 1,298.9 M), but a program still runs some 20–50 times
//! slower, so the counts are taken on cuts of the capture (its first
//! frames, `editcap -r`), not on the whole.
//!
//! The model: a run over n frames costs a start-up S plus f a frame,
//! I(n) = S + f·n. Two cuts, of 1 and of n frames, give S and f; the whole
//! capture of N frames is then I(N) = I(1) + (I(n) − I(1))·(N − 1)/(n − 1).
//! A ratio of two such counts weighs the start-up as much as the whole
//! capture's CPU time does (a ratio of the cut's counts would give it
//! N/n times too much weight, drawing the ratio towards 1).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Where this machine's valgrind keeps its launcher and its tools, to show
/// them inside a chroot (the launcher is a dynamic program that needs only
/// libc; the tools are static).
pub struct Valgrind {
    /// The launcher's binary (Debian's `/usr/bin/valgrind` is a shell
    /// script around `valgrind.bin`).
    pub launcher: PathBuf,
    /// The folder with `cachegrind-amd64-linux` and the preloads.
    pub lib: PathBuf,
}

impl Valgrind {
    /// This machine's valgrind, or why there is none to use.
    pub fn find() -> anyhow::Result<Valgrind> {
        let launcher = ["/usr/bin/valgrind.bin", "/usr/bin/valgrind"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("valgrind is not installed (scripts/install-deps --bench installs it)")?;
        let lib = [
            "/usr/libexec/valgrind",
            "/usr/lib/x86_64-linux-gnu/valgrind",
            "/usr/lib/valgrind",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cachegrind-amd64-linux").is_file())
        .context("valgrind has no cachegrind tool")?;
        Ok(Valgrind { launcher, lib })
    }
}

/// The arguments that put a command under cachegrind: instructions only
/// (no cache simulation), no profile written (the total is read from its
/// report on stderr).
pub const CACHEGRIND: &[&str] = &[
    "--tool=cachegrind",
    "--cache-sim=no",
    "--cachegrind-out-file=/dev/null",
];

/// Runs `cmd` (a command that runs the program under cachegrind) and
/// returns the instructions it counted.
pub fn count(cmd: &mut Command) -> anyhow::Result<u64> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", last_lines(&stderr, 5));
    }
    refs(&stderr).with_context(|| format!("valgrind reported no count: {}", last_lines(&stderr, 5)))
}

/// The total of valgrind's last `==PID== I   refs:      1,313,769,491`
/// line (cachegrind's and callgrind's summary).
pub fn refs(stderr: &str) -> Option<u64> {
    stderr.lines().rev().find_map(|line| {
        let rest = line.split_once("I   refs:")?.1;
        rest.trim().replace(',', "").parse().ok()
    })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The count of the whole capture of `frames` frames, from the counts of
/// a cut of 1 frame (`one`) and of `cut_frames` frames (`cut`): the
/// straight line through the two points, at `frames`.
pub fn whole(one: u64, cut: u64, cut_frames: u64, frames: u64) -> f64 {
    if cut_frames <= 1 {
        return cut as f64;
    }
    let per_frame = (cut as f64 - one as f64) / (cut_frames - 1) as f64;
    one as f64 + per_frame * frames.saturating_sub(1) as f64
}

/// The first `frames` frames of `capture` as a pcap at `out` (`editcap`).
pub fn cut(capture: &Path, out: &Path, frames: u64) -> anyhow::Result<()> {
    let status = Command::new("editcap")
        .args(["-F", "pcap", "-r"])
        .arg(capture)
        .arg(out)
        .arg(format!("1-{frames}"))
        .stdout(Stdio::null())
        .status()
        .context("editcap (wireshark-common)")?;
    if !status.success() {
        bail!("editcap could not cut {}", capture.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_total() {
        let stderr = "==12== Cachegrind, a cache and branch-prediction profiler\n\
                      tshark: some warning\n\
                      ==12== I   refs:      1,313,769,491\n";
        assert_eq!(refs(stderr), Some(1_313_769_491));
        assert_eq!(
            refs("==1== I   refs:      12\n==1== I   refs:      1,000\n"),
            Some(1_000)
        );
        assert_eq!(refs("==1== Collected : 12\n"), None);
        assert_eq!(refs("==1== I   refs:      many\n"), None);
        assert_eq!(refs(""), None);
    }

    #[test]
    fn the_whole_capture_lies_on_the_line_through_both_cuts() {
        // start-up 800, 40 a frame: 1 frame 840, 10,001 frames 400,840
        assert_eq!(whole(840, 400_840, 10_001, 10_001), 400_840.0);
        assert_eq!(whole(840, 400_840, 10_001, 100_001), 4_000_840.0);
    }

    #[test]
    fn a_ratio_of_wholes_weighs_the_start_up_as_the_whole_run_does() {
        // both start at 1,000; the plugin adds 10 % a frame (40 -> 44)
        let frames = 1_000_000;
        let without = whole(1_040, 1_000 + 40 * 1_000, 1_000, frames);
        let with = whole(1_044, 1_000 + 44 * 1_000, 1_000, frames);
        let expected = (1_000.0 + 44.0 * 1e6) / (1_000.0 + 40.0 * 1e6);
        assert!(((with / without) - expected).abs() < 1e-9);
        // the cut's own ratio is drawn towards 1 by the start-up
        let cut_ratio = (1_000.0 + 44_000.0) / (1_000.0 + 40_000.0);
        assert!(with / without > cut_ratio);
    }

    /// The benchmark's dependency step, `scripts/install-deps --bench`,
    /// installs valgrind on a machine without it (a fresh one: only an
    /// empty folder on PATH), not again where it is, and the tests' step
    /// (without `--bench`, what CI runs) never.
    #[test]
    fn the_bench_dependency_step_installs_valgrind_when_missing() {
        use std::os::unix::fs::PermissionsExt;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-deps");
        let bin = tempfile::tempdir().unwrap();
        let packages = |args: &[&str]| -> Vec<String> {
            let out = Command::new("/bin/bash")
                .arg(&script)
                .args(args)
                .arg("--print")
                .env("PATH", bin.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from)
                .collect()
        };
        let fresh = packages(&["--bench"]);
        for package in ["valgrind", "tcptrace", "wireshark-qt", "xvfb", "tshark"] {
            assert!(fresh.iter().any(|p| p == package), "{package}: {fresh:?}");
        }
        let tests = packages(&[]);
        assert!(tests.iter().any(|p| p == "tshark"), "{tests:?}");
        assert!(!tests.iter().any(|p| p == "valgrind"), "CI: {tests:?}");
        let valgrind = bin.path().join("valgrind");
        std::fs::write(&valgrind, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&valgrind, std::fs::Permissions::from_mode(0o755)).unwrap();
        let there = packages(&["--bench"]);
        assert!(!there.iter().any(|p| p == "valgrind"), "{there:?}");
        assert_eq!(there.len(), fresh.len() - 1, "{there:?}");
    }

    #[test]
    fn a_one_frame_cut_is_its_own_count() {
        assert_eq!(whole(5, 7, 1, 100), 7.0);
    }
}
