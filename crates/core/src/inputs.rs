//! Finding the captures to work on: files named on the command line
//! (`-` is standard input), and in directories, walked recursively in a
//! stable order, every file that is named like a capture or starts like
//! one (once decompressed, if it is compressed). A file of a directory that is named or looks like a capture but
//! cannot be used is a problem, reported by name; other files (notes,
//! sidecars) are skipped in silence.

use std::path::{Path, PathBuf};

use tcpshut_engine::file_looks_like_capture;
use walkdir::WalkDir;

/// Files tcpshut writes itself (`CAPTURE.tcpshut.csv`, `.json`,
/// `.pcapng`), which are never read back as input.
const OWN_OUTPUT_MARK: &str = ".tcpshut.";

/// Extensions of capture files (Wireshark's for pcap and pcapng), also
/// followed by a compression suffix or by a rotation counter
/// (`tcpdump -C` writes `x.pcap`, `x.pcap1`, `x.pcap2`, …).
const CAPTURE_EXTENSIONS: [&str; 4] = ["pcap", "pcapng", "cap", "ntar"];
/// Compression suffixes: those tcpshut reads, and those it names in its
/// error (a `x.pcap.bz2` is a capture it cannot use, so an error).
const COMPRESSION_EXTENSIONS: [&str; 6] = ["gz", "zst", "zstd", "lz4", "bz2", "xz"];

/// One thing to work on, or a problem found while looking for it.
pub enum Input {
    Capture(PathBuf),
    /// A rotated series (`--series`): files read as one capture.
    Series(Vec<PathBuf>),
    Problem(PathBuf, String),
}

impl Input {
    /// The capture files it names.
    pub fn captures(&self) -> &[PathBuf] {
        match self {
            Input::Capture(path) => std::slice::from_ref(path),
            Input::Series(files) => files,
            Input::Problem(..) => &[],
        }
    }
}

/// Whether the file's name says it is a capture: `x.pcap`, `x.pcapng.gz`,
/// `x.cap`, `x.pcap3`, …
pub fn named_like_capture(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    let mut parts = name.rsplit('.');
    let mut ext = parts.next().unwrap_or("");
    if COMPRESSION_EXTENSIONS.contains(&ext) {
        ext = parts.next().unwrap_or("");
    }
    // A name with no dot has no extension.
    if !name.contains('.') {
        return false;
    }
    let base = ext.trim_end_matches(|c: char| c.is_ascii_digit());
    CAPTURE_EXTENSIONS.contains(&base)
}

/// Expands the command line's paths. Files named explicitly are always
/// taken (reading them says what is wrong); directories contribute the
/// files that are named or look like captures. With `series`, the files
/// named form one series, and each directory's captures are grouped into
/// series by [`series_key`] (a group of one stays a capture).
pub fn collect(paths: &[PathBuf], series: bool) -> Vec<Input> {
    if !series {
        return walk(paths);
    }
    let named: Vec<PathBuf> = paths.iter().filter(|p| !p.is_dir()).cloned().collect();
    let mut inputs = Vec::new();
    if !named.is_empty() {
        inputs.push(Input::Series(named));
    }
    for dir in paths.iter().filter(|p| p.is_dir()) {
        // Groups in the order their first file was found.
        let mut groups: Vec<((PathBuf, String), Vec<PathBuf>)> = Vec::new();
        for input in walk(std::slice::from_ref(dir)) {
            let Input::Capture(file) = input else {
                inputs.push(input);
                continue;
            };
            let key = series_key(&file);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, files)) => files.push(file),
                None => groups.push((key, vec![file])),
            }
        }
        inputs.extend(groups.into_iter().map(|(_, mut files)| {
            if files.len() == 1 {
                Input::Capture(files.remove(0))
            } else {
                Input::Series(files)
            }
        }));
    }
    inputs
}

/// Which series a file of a directory belongs to (`--series`): its folder,
/// and its name with the digits that count or date the files left out: a
/// number right after the capture extension (`tcpdump -C`'s `x.pcap`,
/// `x.pcap1`, ...) is dropped, every other run of digits stands for any
/// (`tcpdump -G`'s strftime names, dumpcap's `x_00001_20261130152500.pcapng`,
/// editcap's `x_00000_20261130152500.pcap`).
pub fn series_key(path: &Path) -> (PathBuf, String) {
    let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (stem, compression) = match name.rsplit_once('.') {
        Some((stem, ext))
            if COMPRESSION_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) =>
        {
            (stem.to_string(), format!(".{ext}"))
        }
        _ => (name.clone(), String::new()),
    };
    let uncounted = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let counted = uncounted
        .rsplit_once('.')
        .is_some_and(|(_, ext)| CAPTURE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()));
    let stem = if counted { uncounted } else { stem.as_str() };
    let mut key = String::new();
    for c in stem.chars() {
        if !c.is_ascii_digit() {
            key.push(c);
        } else if !key.ends_with('#') {
            key.push('#');
        }
    }
    (folder, key + &compression)
}

/// The captures of `paths`, each file on its own.
fn walk(paths: &[PathBuf]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for path in paths {
        if !path.is_dir() {
            inputs.push(Input::Capture(path.clone()));
            continue;
        }
        let walk = WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter();
        for entry in walk {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let file = entry.into_path();
                    if let Some(input) = classify(file) {
                        inputs.push(input);
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    let at = err.path().unwrap_or(path).to_path_buf();
                    let why = if err.loop_ancestor().is_some() {
                        "symbolic link loop, not followed".to_string()
                    } else {
                        err.io_error()
                            .map_or_else(|| err.to_string(), |e| e.to_string())
                    };
                    inputs.push(Input::Problem(at, why));
                }
            }
        }
    }
    inputs
}

/// What a regular file found in a directory is: a capture to read (named
/// or starting like one), a problem (cannot be read, so whether it is a
/// capture cannot be told), or nothing to do with tcpshut.
fn classify(file: PathBuf) -> Option<Input> {
    if file.to_string_lossy().contains(OWN_OUTPUT_MARK) {
        return None;
    }
    if named_like_capture(&file) {
        return Some(Input::Capture(file));
    }
    match file_looks_like_capture(&file) {
        Ok(true) => Some(Input::Capture(file)),
        Ok(false) => None,
        Err(err) => Some(Input::Problem(
            file,
            format!("cannot read ({err}), so cannot tell whether it is a capture"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_names() {
        for name in [
            "a.pcap",
            "a.PCAPNG",
            "dir/a.cap",
            "a.pcap.gz",
            "a.pcapng.zst",
            "a.pcap.lz4",
            "a.pcap1",
            "a.pcap12",
            "ring_00001_20240101120000.pcapng",
        ] {
            assert!(named_like_capture(Path::new(name)), "{name}");
        }
        for name in [
            "pcap",
            "a.csv",
            "a.pcap.tcpshut",
            "notes.txt.gz",
            "a.gz",
            "README",
            "a.pcapx",
        ] {
            assert!(!named_like_capture(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn series_names_differ_only_by_counters_and_times() {
        let key = |name: &str| series_key(Path::new(name)).1;
        let same = [
            &["dir/x.pcap", "dir/x.pcap1", "dir/x.pcap12"][..],
            &[
                "ring_00001_20261130152500.pcapng",
                "ring_00002_20261130152600.pcapng",
            ],
            &[
                "part_00000_20261130100648.pcap",
                "part_00004_20261130100650.pcap",
            ],
            &["cap-20261130-1525.pcap.gz", "cap-20261130-1530.pcap.gz"],
        ];
        for names in same {
            for name in names {
                assert_eq!(key(name), key(names[0]), "{name} and {}", names[0]);
            }
        }
        for (a, b) in [
            ("x.pcap", "y.pcap"),
            (
                "ring_00001_20261130152500.pcapng",
                "ring_00001_20261130152500.pcap",
            ),
            ("x.pcap.gz", "x.pcap"),
            ("eth0-1.pcap", "eth1-1.pcapng"),
        ] {
            assert_ne!(key(a), key(b), "{a} and {b}");
        }
        // Same names in two folders are two series.
        assert_ne!(
            series_key(Path::new("a/x.pcap1")),
            series_key(Path::new("b/x.pcap1"))
        );
    }
}
