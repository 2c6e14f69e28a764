//! Child programs run in a process group of their own (the native plugin's
//! build: `make` and the compilers it starts), so that tcpshut can end all
//! of them when a signal stops it. A SIGTERM sent to tcpshut alone (`kill
//! PID`, a service manager) never reaches its children, and a terminal's
//! Ctrl-C no longer reaches a group of their own: either way
//! [`output::clean_up_on_signals`](crate::output::clean_up_on_signals)
//! calls [`end_all`], which ends every such group and waits for it, before
//! it removes the folders the children were writing into. On any Unix
//! (the native plugin is built on Linux; the other Unixes get the same
//! groups, seen through kill instead of `/proc`).

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
    #[cfg(unix)]
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
    #[cfg(unix)]
    end_groups(
        &list,
        |leader, signal| {
            // SAFETY: kill has no memory preconditions; a group that is
            // already gone gives ESRCH, which is what we want.
            unsafe { libc::kill(-leader, signal) };
        },
        any_runs,
    );
    std::mem::forget(list);
}

/// [`end_all`]'s rounds on `list`, with `signal` sending a signal to a
/// group and `runs` telling whether a process of the groups still runs:
/// each check looks once (one scan of `/proc` for all the groups), and
/// the check that ends a round's wait also decides whether the next
/// round is needed.
#[cfg(unix)]
fn end_groups(list: &[i32], signal: impl Fn(i32, i32), mut runs: impl FnMut(&[i32]) -> bool) {
    if list.is_empty() {
        return;
    }
    for (sig, wait) in [
        (libc::SIGTERM, GRACE),
        (libc::SIGKILL, std::time::Duration::from_secs(1)),
    ] {
        for &leader in list {
            signal(leader, sig);
        }
        let start = std::time::Instant::now();
        let mut running = runs(list);
        while running && start.elapsed() < wait {
            std::thread::sleep(std::time::Duration::from_millis(10));
            running = runs(list);
        }
        if !running {
            break;
        }
    }
}

/// Whether a process of one of the groups `leaders` still runs (is not a
/// zombie). On Linux from one pass over `/proc/PID/stat` (`PID (COMM)
/// STATE PPID PGRP …`; COMM may hold spaces and parentheses, so the
/// fields are counted after the last `)`); elsewhere, or when `/proc`
/// cannot be read, from kill's signal 0, which counts zombies too.
#[cfg(unix)]
fn any_runs(leaders: &[i32]) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(entries) = std::fs::read_dir("/proc") {
        return entries.flatten().any(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let Some((_, fields)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = fields.split_whitespace();
            let state = fields.next();
            let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
            group.is_some_and(|g| leaders.contains(&g)) && !matches!(state, Some("Z" | "X" | "x"))
        });
    }
    // SAFETY: signal 0 only checks that the group exists.
    leaders
        .iter()
        .any(|&leader| unsafe { libc::kill(-leader, 0) } == 0)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_group_is_seen_running_until_it_ends() {
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 30 & sleep 30 & wait"]);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap();
        let leader = child.id() as i32;
        assert!(any_runs(&[leader]));
        // SAFETY: ends the group just started.
        unsafe { libc::kill(-leader, libc::SIGKILL) };
        child.wait().unwrap();
        let start = std::time::Instant::now();
        while any_runs(&[leader]) && start.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            !any_runs(&[leader]),
            "the sleeps outlived their group's SIGKILL"
        );
    }

    /// One look per check: groups that end after three looks get SIGTERM
    /// only and are looked at three times, all groups at once each time.
    #[test]
    fn each_check_looks_once_for_all_groups() {
        let sent = std::cell::RefCell::new(Vec::new());
        let mut looks = 0;
        end_groups(
            &[11, 12],
            |leader, signal| sent.borrow_mut().push((leader, signal)),
            |groups| {
                assert_eq!(groups, [11, 12]);
                looks += 1;
                looks < 3
            },
        );
        assert_eq!(looks, 3);
        assert_eq!(*sent.borrow(), [(11, libc::SIGTERM), (12, libc::SIGTERM)]);
    }
}
