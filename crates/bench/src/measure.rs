//! Running a command as a child process and measuring it: wall time, CPU
//! time and peak resident memory (the child's `ru_maxrss`, from wait4).

use std::os::unix::process::CommandExt;
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
    let pid = spawn(cmd)?;
    wait(pid, start, cmd)
}

/// Runs `a` and `b` at the same time, both bound to the one CPU `cpu`, to
/// completion (standard output discarded): the scheduler then shares that
/// CPU between them in slices of a few milliseconds, so whatever slows the
/// machine down for longer than that (another guest on the host, another
/// process's use of the caches) slows both alike. `a` starts first.
pub fn run_together(a: &mut Command, b: &mut Command, cpu: usize) -> anyhow::Result<(Run, Run)> {
    for cmd in [&mut *a, &mut *b] {
        // SAFETY: the closure runs in the forked child before exec and only
        // makes one system call (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || bind_to_cpu(cpu));
        }
    }
    let start = Instant::now();
    let first = spawn(a)?;
    let second = match spawn(b) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = wait(first, start, a);
            return Err(e);
        }
    };
    let ran_a = wait(first, start, a);
    let ran_b = wait(second, start, b);
    Ok((ran_a?, ran_b?))
}

/// The CPUs this process may run on (its affinity mask), in order; CPU 0
/// alone if it cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data that sched_getaffinity fills.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let got =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| got == 0 && unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

fn bind_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn spawn(cmd: &mut Command) -> anyhow::Result<libc::pid_t> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    Ok(child.id() as libc::pid_t)
}

/// Waits for `pid` (started at `start` from `cmd`) and measures it.
fn wait(pid: libc::pid_t, start: Instant, cmd: &Command) -> anyhow::Result<Run> {
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
