//! Child programs run in a process group of their own (the native plugin's
//! build: `make` and the compilers it starts), so that tcpshut can end all
//! of them when a signal stops it. A SIGTERM sent to tcpshut alone (`kill
//! PID`, a service manager) never reaches its children, and a terminal's
//! Ctrl-C no longer reaches a group of their own: either way
//! [`output::clean_up_on_signals`](crate::output::clean_up_on_signals)
//! calls [`end_all`], which ends every such group and waits for it, before
//! it removes the folders the children were writing into. Linux only (the
//! only system the native plugin is built on); elsewhere a child stays in
//! tcpshut's group.

use std::io;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The process groups running (each the id of its leader), for [`end_all`].
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The list, even if a thread panicked holding it (each change is one
/// push or one removal).
fn groups() -> MutexGuard<'static, Vec<i32>> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `command` to its end, as [`Command::output`] does, as the leader
/// of a new process group listed for [`end_all`]. It is started with the
/// list locked, so a signal either comes before it starts or finds it.
pub fn output(command: &mut Command) -> io::Result<Output> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(target_os = "linux")]
    std::os::unix::process::CommandExt::process_group(command, 0);
    let (child, leader) = {
        let mut list = groups();
        let child = command.spawn()?;
        let leader = i32::try_from(child.id()).expect("a pid fits in pid_t");
        list.push(leader);
        (child, leader)
    };
    let out = child.wait_with_output();
    let mut list = groups();
    if let Some(at) = list.iter().position(|&g| g == leader) {
        list.swap_remove(at);
    }
    out
}

/// How long the groups get to end on SIGTERM before SIGKILL.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends every listed group: SIGTERM, then SIGKILL to what is left after
/// [`GRACE`], waiting each time until no process of the groups runs
/// (zombies, which run no code, do not count: the leader's is reaped by
/// the thread that started it, the others by whoever adopted them). The
/// list stays locked, so nothing new starts before the process ends.
pub fn end_all() {
    let list = groups();
    #[cfg(target_os = "linux")]
    if !list.is_empty() {
        for (signal, wait) in [
            (libc::SIGTERM, GRACE),
            (libc::SIGKILL, std::time::Duration::from_secs(1)),
        ] {
            for &leader in list.iter() {
                // SAFETY: kill has no memory preconditions; a group that
                // is already gone gives ESRCH, which is what we want.
                unsafe { libc::kill(-leader, signal) };
            }
            let start = std::time::Instant::now();
            while list.iter().any(|&g| group_runs(g)) && start.elapsed() < wait {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if !list.iter().any(|&g| group_runs(g)) {
                break;
            }
        }
    }
    std::mem::forget(list);
}

/// Whether a process of the group `leader` still runs (is not a zombie),
/// from `/proc/PID/stat` (`PID (COMM) STATE PPID PGRP …`; COMM may hold
/// spaces and parentheses, so the fields are counted after the last `)`).
#[cfg(target_os = "linux")]
fn group_runs(leader: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // cannot look: trust kill, zombies included
        // SAFETY: signal 0 only checks that the group exists.
        return unsafe { libc::kill(-leader, 0) } == 0;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, fields)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = fields.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(leader) && !matches!(state, Some("Z" | "X" | "x"))
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_seen_running_until_it_ends() {
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 30 & sleep 30 & wait"]);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap();
        let leader = child.id() as i32;
        assert!(group_runs(leader));
        // SAFETY: ends the group just started.
        unsafe { libc::kill(-leader, libc::SIGKILL) };
        child.wait().unwrap();
        let start = std::time::Instant::now();
        while group_runs(leader) && start.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            !group_runs(leader),
            "the sleeps outlived their group's SIGKILL"
        );
    }
}
