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
    Problem(PathBuf, String),
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
/// files that are named or look like captures.
pub fn collect(paths: &[PathBuf]) -> Vec<Input> {
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
}
