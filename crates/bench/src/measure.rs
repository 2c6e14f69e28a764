//! Running a command as a child process and measuring it: wall time, CPU
//! time and peak resident memory (the child's `ru_maxrss`, from wait4).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// One run of one command.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub wall: Duration,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// The system (kernel) share of `cpu`, where known: what an
    /// instruction count of user space leaves out.
    pub system: Option<Duration>,
    /// Peak resident set size in bytes.
    pub max_rss: u64,
}

/// Runs `cmd` to completion with standard output discarded.
pub fn run(cmd: &mut Command) -> anyhow::Result<Run> {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if waited != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (wait status {status:#x})");
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Run {
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        system: Some(time(usage.ru_stime)),
        // Linux reports kilobytes.
        max_rss: usage.ru_maxrss as u64 * 1024,
    })
}

/// Medians of several runs (peak memory: the largest).
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub wall: Duration,
    pub cpu: Duration,
    pub max_rss: u64,
    pub runs: usize,
}

pub fn summarize(runs: &[Run]) -> Summary {
    let median = |mut v: Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    Summary {
        wall: median(runs.iter().map(|r| r.wall).collect()),
        cpu: median(runs.iter().map(|r| r.cpu).collect()),
        max_rss: runs.iter().map(|r| r.max_rss).max().unwrap_or(0),
        runs: runs.len(),
    }
}
