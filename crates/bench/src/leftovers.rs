//! What a part of the benchmark makes beside the captures it keeps: the
//! sidecars its runs write, its work folder, and the mount points it makes
//! inside the Wireshark chroots (`scripts/wireshark-chroots`). A part notes
//! each in its [`Leftovers`], which removes them when the part ends, also
//! when it ends by an error, so that neither `target/bench` nor the shared
//! chroots keep anything of a run; and so does a signal that stops the
//! benchmark ([`clean_up_on_signals`]), for which no destructor runs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One thing a part made.
enum Made {
    /// The sidecars of a capture (or of the captures of a folder), as
    /// [`crate::remove_sidecars`] finds them.
    Sidecars(PathBuf),
    /// A folder and everything in it.
    Tree(PathBuf),
    /// A folder made empty (a mount point inside a chroot): removed only
    /// while empty, so nothing the part did not make goes with it.
    Empty(PathBuf),
}

/// What the parts still running made, each under its part's number in the
/// order the parts began: kept here, not in the parts, so that the signal
/// thread finds them.
static LIVE: Mutex<Vec<(u64, Vec<Made>)>> = Mutex::new(Vec::new());
static NEXT_PART: AtomicU64 = AtomicU64::new(0);
/// A signal is ending the benchmark ([`clean_up_on_signals`]).
static ENDING: AtomicBool = AtomicBool::new(false);

/// [`LIVE`], whatever a panic elsewhere left it as.
fn live() -> MutexGuard<'static, Vec<(u64, Vec<Made>)>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a part made, removed (last made first) when dropped.
pub struct Leftovers {
    part: u64,
}

impl Default for Leftovers {
    fn default() -> Self {
        let part = NEXT_PART.fetch_add(1, Ordering::Relaxed);
        live().push((part, Vec::new()));
        Leftovers { part }
    }
}

impl Leftovers {
    fn note(&self, made: Made) {
        if let Some((_, list)) = live().iter_mut().find(|(part, _)| *part == self.part) {
            list.push(made);
        }
    }

    /// The sidecars of `capture` go when the part ends.
    pub fn sidecars_of(&mut self, capture: &Path) {
        self.note(Made::Sidecars(capture.to_path_buf()));
    }

    /// `dir`, made by the part, goes with everything in it.
    pub fn tree(&mut self, dir: &Path) {
        self.note(Made::Tree(dir.to_path_buf()));
    }

    /// Makes `dir` and the folders missing above it, one at a time, each
    /// to be removed when the part ends if it is still empty then.
    pub fn make_folders(&mut self, dir: &Path) -> std::io::Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        for folder in missing.into_iter().rev() {
            std::fs::create_dir(folder)?;
            self.note(Made::Empty(folder.to_path_buf()));
        }
        Ok(())
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let mut live = live();
        if let Some(at) = live.iter().position(|(part, _)| *part == self.part) {
            let (_, made) = live.remove(at);
            // Still locked: the signal thread does not remove these twice.
            remove(made);
        }
    }
}

/// Removes what every part still running made, the last part's first,
/// and keeps [`LIVE`] locked: nothing more is noted or removed after it.
/// What a signal that stops the benchmark runs.
fn remove_all_live() -> MutexGuard<'static, Vec<(u64, Vec<Made>)>> {
    let mut live = live();
    while let Some((_, made)) = live.pop() {
        remove(made);
    }
    live
}

/// Removes `made`, last made first, saying what could not go.
fn remove(mut made: Vec<Made>) {
    for made in made.drain(..).rev() {
        let (path, removed) = match &made {
            Made::Sidecars(capture) => (capture, crate::remove_sidecars(capture)),
            Made::Tree(dir) => (
                dir,
                match std::fs::remove_dir_all(dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                },
            ),
            Made::Empty(dir) => (
                dir,
                // only when empty: a folder inside a chroot
                match std::fs::remove_dir(dir) {
                    Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                        Err(anyhow::anyhow!("not empty, kept"))
                    }
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                },
            ),
        };
        if let Err(e) = removed {
            eprintln!("tcpshut-bench: {}: cannot remove: {e:#}", path.display());
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP, ends the tools the benchmark is running
/// and removes what the running parts made ([`Leftovers`]), then ends as
/// the signal would have (exit code 128 + the signal). The tools go
/// first: a `tcpshut annotate` left running would rename its sidecar into
/// place after the clean-up.
pub fn clean_up_on_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                ENDING.store(true, Ordering::SeqCst);
                end_descendants(std::process::id(), Duration::from_secs(5));
                let _held = remove_all_live();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// When a signal is ending the benchmark, waits for that end (the signal
/// thread exits the process): a tool it ended is not a failure to report.
pub fn wait_if_ending() {
    while ENDING.load(Ordering::SeqCst) {
        std::thread::park();
    }
}

/// The processes below `pid` (children, their children…) still running,
/// read from `/proc`: each process's state and parent are the first and
/// second fields of its `stat` after the command name in parentheses
/// (which may itself hold spaces and parentheses, so it is found from the
/// last `)`). A zombie (state `Z`) has ended; its children, if any, are
/// still followed.
fn running_below(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let processes: Vec<(u32, u32, bool)> = dir
        .filter_map(|entry| {
            let process: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            let running = fields.next()? != "Z";
            let parent = fields.next()?.parse().ok()?;
            Some((process, parent, running))
        })
        .collect();
    let mut below = vec![(pid, false)];
    let mut at = 0;
    while at < below.len() {
        let parent = below[at].0;
        below.extend(
            processes
                .iter()
                .filter(|(_, p, _)| *p == parent)
                .map(|&(child, _, running)| (child, running)),
        );
        at += 1;
    }
    below
        .into_iter()
        .filter(|&(_, running)| running)
        .map(|(p, _)| p)
        .collect()
}

/// Sends SIGTERM to every process below `pid` and waits, up to `patience`,
/// until none is left running (a tool that ignores the signal is left
/// after that). Nothing is reaped here: ended children stay zombies until
/// the benchmark itself ends.
fn end_descendants(pid: u32, patience: Duration) {
    for process in running_below(pid) {
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(process as libc::pid_t, libc::SIGTERM) };
    }
    let start = Instant::now();
    while !running_below(pid).is_empty() && start.elapsed() < patience {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part that fails leaves nothing it made: the sidecars of its
    /// capture (not the capture, its annotated pcapng copy nor another
    /// capture's sidecar), its work folder, and the folders it made inside
    /// a chroot (not those that were there, nor one something else put a
    /// file in).
    #[test]
    fn what_a_part_made_is_removed_when_it_ends_also_on_an_error() {
        let _serial = one_at_a_time();
        let top = tempfile::tempdir().unwrap();
        let at = |name: &str| top.path().join(name);
        let capture = at("cap.pcap");
        let kept = [
            capture.clone(),
            at("cap.pcap.tcpshut.pcapng"),
            at("other.pcap.tcpshut.csv"),
            at("root/work/theirs"),
            at("root/work/wt/b/file"),
        ];
        std::fs::create_dir_all(at("root/work")).unwrap();
        let part = || -> anyhow::Result<()> {
            let mut left = Leftovers::default();
            left.sidecars_of(&capture);
            let work = at("work");
            std::fs::create_dir(&work).unwrap();
            left.tree(&work);
            left.make_folders(&at("root/work/wt/a/bench"))?;
            left.make_folders(&at("root/work/wt/b"))?;
            for file in [
                &work.join("home/x"),
                &at("cap.pcap.tcpshut.csv"),
                &at("cap.pcap.tcpshut.connections.csv"),
            ]
            .into_iter()
            .chain(&kept)
            {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, "").unwrap();
            }
            anyhow::bail!("the part failed")
        };
        assert!(part().is_err());
        let mut left: Vec<PathBuf> = walkdir(top.path());
        left.sort();
        let mut expected: Vec<PathBuf> = kept.to_vec();
        expected.extend([
            at("root"),
            at("root/work"),
            at("root/work/wt"),
            at("root/work/wt/b"),
        ]);
        expected.sort();
        assert_eq!(left, expected);
    }

    /// What the parts still running made goes when a signal stops the
    /// benchmark (the signal thread's clean-up, called here directly), the
    /// last part's first (its folder inside the first's made empty before
    /// the first's goes); a part that ends afterwards removes nothing twice
    /// and says nothing.
    #[test]
    fn a_signal_removes_what_the_running_parts_made() {
        let _serial = one_at_a_time();
        let top = tempfile::tempdir().unwrap();
        let outer = top.path().join("outer");
        let inner = outer.join("inner/bench");
        let kept = top.path().join("kept");
        std::fs::create_dir_all(&kept).unwrap();
        let mut first = Leftovers::default();
        first.make_folders(&outer).unwrap();
        let mut second = Leftovers::default();
        second.make_folders(&inner).unwrap();
        let work = inner.join("work");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("x"), "").unwrap();
        second.tree(&work);
        drop(remove_all_live());
        assert!(!outer.exists(), "the folders both parts made are gone");
        assert!(kept.exists());
        // Made again by someone else: the parts' ends leave it.
        std::fs::create_dir_all(&inner).unwrap();
        drop((second, first));
        assert!(inner.exists());
    }

    /// The tools a part runs are ended with the benchmark, a grandchild
    /// too: here the two below a shell, which then ends at once, not after
    /// its minute.
    #[test]
    fn the_processes_below_are_ended() {
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 60 & sleep 60; wait"])
            .spawn()
            .unwrap();
        let start = Instant::now();
        while running_below(shell.id()).len() < 2 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(running_below(shell.id()).len(), 2, "the two sleeps");
        end_descendants(shell.id(), Duration::from_secs(10));
        assert!(running_below(shell.id()).is_empty());
        shell.wait().unwrap();
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    /// The tests of this module one at a time: the signal's clean-up
    /// removes every running part's leftovers, another test's too.
    fn one_at_a_time() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything below `dir`.
    fn walkdir(dir: &Path) -> Vec<PathBuf> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                all.extend(walkdir(&path));
            }
            all.push(path);
        }
        all
    }
}
