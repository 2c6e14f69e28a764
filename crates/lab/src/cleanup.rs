//! Nothing is left behind: every namespace, tcpdump child and temporary
//! directory the lab makes is listed here while it exists, so that a
//! Ctrl-C (SIGINT, SIGTERM, SIGHUP) removes them before the process exits,
//! and leftovers of a run that could not clean up (SIGKILL, a crash) are
//! found by the pid in their name and removed by the next run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Everything that must go if the process is interrupted.
struct Live {
    namespaces: Vec<String>,
    children: Vec<u32>,
    dirs: Vec<PathBuf>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    namespaces: Vec::new(),
    children: Vec::new(),
    dirs: Vec::new(),
});

/// Held while something is made and listed, so an interruption waits
/// until the listing says what exists. The signal handler keeps it until
/// the process exits, so nothing new is made after it has cleaned.
fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the handler: on SIGINT, SIGTERM or SIGHUP, kill tcpdump,
/// delete the namespaces and temporary directories, exit 130.
pub fn on_interrupt_clean_up() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        let live = live();
        for pid in &live.children {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        for ns in &live.namespaces {
            delete_namespace(ns);
        }
        for dir in &live.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("tcpshut: interrupted; namespaces and temporary files removed");
        std::process::exit(130);
    })?;
    Ok(())
}

pub(crate) fn delete_namespace(ns: &str) {
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

/// Makes namespaces with `make` and lists them, as one step.
pub(crate) fn with_namespaces<T>(names: &[&str], make: impl FnOnce() -> T) -> T {
    let mut live = live();
    live.namespaces.extend(names.iter().map(|n| n.to_string()));
    make()
}

pub(crate) fn namespaces_gone(names: &[&str]) {
    live().namespaces.retain(|n| !names.contains(&n.as_str()));
}

pub(crate) fn child_started(pid: u32) {
    live().children.push(pid);
}

pub(crate) fn child_gone(pid: u32) {
    live().children.retain(|p| *p != pid);
}

/// Prefix of everything the lab names after its process: namespaces and
/// temporary directories are `PREFIX<pid>-...`.
pub const PREFIX: &str = "tcpshut-lab-";

/// The pid in a name made by [`PREFIX`], if it is one of ours.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A temporary directory in `parent` (`PREFIX<pid>-N`), removed on drop
/// and on interruption.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(parent: &Path) -> std::io::Result<TempDir> {
        let mut live = live();
        let pid = std::process::id();
        for n in 0.. {
            let path = parent.join(format!(".{PREFIX}{pid}-{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    live.dirs.push(path.clone());
                    return Ok(TempDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("some directory name is free")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        live().dirs.retain(|d| *d != self.path);
    }
}

/// Removes what runs that are gone left behind: their namespaces, and
/// their temporary directories in `dirs`. Returns what was removed.
pub fn remove_stale(dirs: &[&Path]) -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if owner(name).is_some_and(|pid| !alive(pid)) {
                delete_namespace(name);
                removed.push(format!("namespace {name}"));
            }
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name
                .strip_prefix('.')
                .and_then(owner)
                .is_some_and(|pid| !alive(pid));
            if stale && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(entry.path());
                removed.push(entry.path().display().to_string());
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_their_owner() {
        assert_eq!(owner("tcpshut-lab-1234-0-c"), Some(1234));
        assert_eq!(owner("tcpshut-lab-x-0-c"), None);
        assert_eq!(owner("other-1234"), None);
    }

    #[test]
    fn stale_directories_go_live_ones_stay() {
        let parent = std::env::temp_dir().join(format!("tcpshut-lab-test-{}", std::process::id()));
        std::fs::create_dir_all(&parent).unwrap();
        // pid 0 is never a process of ours: /proc/0 does not exist.
        let dead = parent.join(format!(".{PREFIX}0-0"));
        std::fs::create_dir_all(dead.join("inside")).unwrap();
        let mine = TempDir::new(&parent).unwrap();
        let removed = remove_stale(&[&parent]);
        assert!(!dead.exists(), "{removed:?}");
        assert!(mine.path().exists());
        let kept = mine.path().to_path_buf();
        drop(mine);
        assert!(!kept.exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
