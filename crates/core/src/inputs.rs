//! Finding the captures to work on: files named on the command line, and
//! captures found by content (not by extension) in directories, walked
//! recursively in a stable order.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

/// First bytes of pcap (µs and ns, both byte orders) and pcapng files.
const CAPTURE_MAGICS: [[u8; 4]; 5] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x0a, 0x0d, 0x0d, 0x0a],
];

/// Files tcpshut writes itself, which must never be read back as input.
const OWN_OUTPUT_SUFFIX: &str = ".tcpshut.pcapng";

/// One thing to work on, or a problem found while looking for it.
pub enum Input {
    Capture(PathBuf),
    Problem(PathBuf, String),
}

/// Whether the file starts like a capture.
pub fn looks_like_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| CAPTURE_MAGICS.contains(&magic))
}

/// Expands the command line's paths. Files named explicitly are always
/// taken (reading them says what is wrong); directories contribute the
/// files that look like captures.
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
                    let own = file.to_string_lossy().ends_with(OWN_OUTPUT_SUFFIX);
                    if !own && looks_like_capture(&file) {
                        inputs.push(Input::Capture(file));
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
