//! What a part of the benchmark makes beside the captures it keeps: the
//! sidecars its runs write, its work folder, and the mount points it makes
//! inside the Wireshark chroots (`scripts/wireshark-chroots`). A part notes
//! each in its [`Leftovers`], which removes them when the part ends, also
//! when it ends by an error, so that neither `target/bench` nor the shared
//! chroots keep anything of a run.

use std::path::{Path, PathBuf};

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

/// What a part made, removed (last made first) when dropped.
#[derive(Default)]
pub struct Leftovers {
    made: Vec<Made>,
}

impl Leftovers {
    /// The sidecars of `capture` go when the part ends.
    pub fn sidecars_of(&mut self, capture: &Path) {
        self.made.push(Made::Sidecars(capture.to_path_buf()));
    }

    /// `dir`, made by the part, goes with everything in it.
    pub fn tree(&mut self, dir: &Path) {
        self.made.push(Made::Tree(dir.to_path_buf()));
    }

    /// Makes `dir` and the folders missing above it, one at a time, each
    /// to be removed when the part ends if it is still empty then.
    pub fn make_folders(&mut self, dir: &Path) -> std::io::Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        for folder in missing.into_iter().rev() {
            std::fs::create_dir(folder)?;
            self.made.push(Made::Empty(folder.to_path_buf()));
        }
        Ok(())
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for made in self.made.drain(..).rev() {
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
