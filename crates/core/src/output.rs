//! Writing results safely: sidecars beside their capture, written to a
//! temporary file in the same directory and renamed into place, so a
//! reader never sees half a file and a failed run leaves nothing behind.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The sidecar path for a capture: `CAPTURE.tcpshut.<ext>`.
pub fn sidecar_path(capture: &Path, ext: &str) -> PathBuf {
    let mut name = capture.as_os_str().to_owned();
    name.push(".tcpshut.");
    name.push(ext);
    PathBuf::from(name)
}

/// Runs `write` against a temporary file beside `dest`, then renames it
/// to `dest`. On any error the temporary file is removed.
///
/// A `dest` that exists and is neither a file nor a directory (a device
/// such as `/dev/null`, a named pipe) is written in place: renaming a
/// file over it would replace the device itself.
pub fn write_atomically<T>(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if fs::metadata(dest).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let file = OpenOptions::new()
            .write(true)
            .open(dest)
            .with_context(|| format!("cannot open {}", dest.display()))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let value = write(&mut out)?;
        out.flush()
            .with_context(|| format!("cannot write {}", dest.display()))?;
        return Ok(value);
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tcpshut-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let value = {
        let mut out = BufWriter::with_capacity(1 << 16, &mut tmp);
        let value = write(&mut out)?;
        out.flush()
            .with_context(|| format!("cannot write {}", dest.display()))?;
        value
    };
    tmp.persist(dest)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename into {}", dest.display()))?;
    Ok(value)
}

/// Standard output, buffered.
pub fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}
