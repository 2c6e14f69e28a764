//! Writing results safely: sidecars beside their capture, written to a
//! temporary file in the same directory and renamed into place, so a
//! reader never sees half a file and a failed run leaves nothing behind,
//! nor does one ended by SIGINT, SIGTERM or SIGHUP ([`clean_up_on_signals`]);
//! and never over an input of the run or over a capture (see [`Guard`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;

/// The sidecar path for a capture: `CAPTURE.tcpshut.<ext>`.
pub fn sidecar_path(capture: &Path, ext: &str) -> PathBuf {
    let mut name = capture.as_os_str().to_owned();
    name.push(".tcpshut.");
    name.push(ext);
    PathBuf::from(name)
}

/// Makes the directories of a Parquet dataset (`-o DIR` with `--format
/// parquet`): `DIR/connections/` and `DIR/segments/`, one file per
/// capture in each, so that DuckDB (`read_parquet('DIR/segments/*.parquet')`)
/// and Spark (`spark.read.parquet('DIR/segments')`) read each table whole.
pub fn make_dataset(dir: &Path) -> anyhow::Result<()> {
    if dir == Path::new("-") {
        anyhow::bail!("--format parquet writes files: -o takes the dataset's directory, not `-`");
    }
    if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        anyhow::bail!(
            "-o/--output {}: with --format parquet, -o names the dataset's directory, and this is not a directory",
            crate::messages::shown(dir)
        );
    }
    for table in DATASET_TABLES {
        let path = dir.join(table);
        fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", crate::messages::shown(&path)))?;
    }
    Ok(())
}

/// The dataset's two tables, each a directory.
pub const DATASET_TABLES: [&str; 2] = ["connections", "segments"];

/// A capture's file in one table of a dataset: `DIR/TABLE/HASH-NAME.parquet`,
/// NAME the capture's file name, HASH the first 12 hex digits of the
/// SHA-1 of its full path (canonical when it exists), so that captures
/// with the same name in different folders get different files, and a
/// capture run again replaces its own. The hash comes first so that no
/// file starts with `.` or `_`, which Spark and Hadoop skip as hidden.
pub fn dataset_file(dir: &Path, table: &str, capture: &Path) -> PathBuf {
    use sha1::{Digest, Sha1};
    let full = fs::canonicalize(capture).unwrap_or_else(|_| capture.to_path_buf());
    let digest = Sha1::digest(full.as_os_str().as_encoded_bytes());
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let name = match capture.file_name() {
        Some(name) => name.to_owned(),
        None => "stdin".into(),
    };
    let mut file = std::ffi::OsString::from(format!("{hash}-"));
    file.push(name);
    file.push(".parquet");
    dir.join(table).join(file)
}

/// What a run must not write over: its inputs, recognised as files
/// (device and inode), not by name, so that a hard link, a bind mount or
/// a second name of a capture is still that capture; and, unless
/// `--force`, any other file that is a capture by its first bytes.
pub struct Guard {
    inputs: Vec<FileId>,
    force: bool,
}

/// A file's identity: device and inode where there are such.
#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    path.canonicalize().ok()
}

/// Why [`Guard::check`] refused a destination.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The destination is one of the run's inputs (perhaps by another name).
    IsAnInput,
    /// The destination is a capture, and `--force` was not given.
    IsACapture,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::IsAnInput => {
                "is an input of this run (the same file, perhaps by another name); \
                 an input is never replaced"
            }
            Refusal::IsACapture => "is a capture; it is replaced only with --force",
        })
    }
}

impl std::error::Error for Refusal {}

impl Guard {
    /// Guards `inputs` (files that do not exist need no guarding).
    pub fn new<'a>(inputs: impl IntoIterator<Item = &'a Path>, force: bool) -> Guard {
        let mut inputs: Vec<FileId> = inputs.into_iter().filter_map(file_id).collect();
        inputs.sort_unstable();
        Guard { inputs, force }
    }

    /// Whether `dest` may be written (replaced, if it exists). Only a
    /// regular file is read to see whether it is a capture: reading a
    /// pipe or a terminal would wait for input.
    pub fn check(&self, dest: &Path) -> Result<(), Refusal> {
        let Some(id) = file_id(dest) else {
            return Ok(());
        };
        if self.inputs.binary_search(&id).is_ok() {
            return Err(Refusal::IsAnInput);
        }
        let regular = fs::metadata(dest).is_ok_and(|m| m.is_file());
        let capture = regular && tcpshut_engine::file_looks_like_capture(dest).unwrap_or(false);
        if !self.force && capture {
            return Err(Refusal::IsACapture);
        }
        Ok(())
    }

    /// [`Guard::check`] for the annotated pcapng copy at the name tcpshut
    /// gives it (`CAPTURE.tcpshut.pcapng`): a capture there is tcpshut's
    /// earlier copy, replaced without `--force`; an input never is.
    pub fn check_copy(&self, dest: &Path) -> Result<(), Refusal> {
        match self.check(dest) {
            Err(Refusal::IsACapture) => Ok(()),
            other => other,
        }
    }
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
    let mut file = AtomicFile::create(dest)?;
    let value = write(&mut file)?;
    file.commit()?;
    Ok(value)
}

/// An output being written to a temporary file beside its destination,
/// renamed into place by [`AtomicFile::commit`]; dropped before that, it
/// is removed ([`write_atomically`] for one written in one go; a rotated
/// series' sidecars are each committed when their file is done).
pub struct AtomicFile {
    dest: PathBuf,
    out: BufWriter<Reserving>,
    /// `None` for a device or FIFO, written in place.
    tmp: Option<Unfinished>,
}

impl AtomicFile {
    /// Starts writing `dest` (see [`write_atomically`]).
    pub fn create(dest: &Path) -> anyhow::Result<AtomicFile> {
        if fs::metadata(dest).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            let file = OpenOptions::new()
                .write(true)
                .open(dest)
                .with_context(|| format!("cannot open {}", dest.display()))?;
            return Ok(AtomicFile {
                dest: dest.to_path_buf(),
                out: BufWriter::with_capacity(1 << 16, Reserving::new(file, false)),
                tmp: None,
            });
        }
        let tmp = Unfinished::beside(dest).with_context(|| {
            format!(
                "cannot create a temporary file in {}",
                folder_of(dest).display()
            )
        })?;
        let file = tmp
            .file()
            .try_clone()
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, Reserving::new(file, cfg!(target_os = "linux"))),
            tmp: Some(tmp),
        })
    }

    /// Writes out what is buffered and renames the file into place.
    pub fn commit(self) -> anyhow::Result<()> {
        let dest = self.dest;
        let cannot_write = || format!("cannot write {}", dest.display());
        let reserving = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(cannot_write)?;
        reserving.release_unused().with_context(cannot_write)?;
        if let Some(tmp) = self.tmp {
            tmp.persist(&dest)
                .with_context(|| format!("cannot rename into {}", dest.display()))?;
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What a signal must take back ([`clean_up_on_signals`]): the temporary
/// files and folders being written, and the folders a [`Batch`] made for
/// files not yet in place.
struct Pending {
    /// Temporary files and folders, removed with their contents.
    paths: Vec<PathBuf>,
    /// Folders made for a [`Batch`] before its commit, parents first:
    /// removed deepest first, each only if empty (by then the batch's
    /// temporary files are gone; anything else put there is left alone).
    made_folders: Vec<PathBuf>,
}

static UNFINISHED: Mutex<Pending> = Mutex::new(Pending {
    paths: Vec::new(),
    made_folders: Vec::new(),
});

/// A temporary file listed in [`UNFINISHED`] while it exists. It is
/// created, renamed or removed with the list locked, so that a signal
/// finds every temporary file in the list, and each file either still
/// temporary or already in place, never half a step.
struct Unfinished {
    /// `None` once renamed.
    file: Option<tempfile::NamedTempFile>,
}

/// The folder `dest` is in (`.` for a bare name).
fn folder_of(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Unfinished {
    /// A temporary file beside `dest`, to be renamed onto it. It gets the
    /// mode any new file of the user gets (0666 less the umask), or the
    /// mode of the file it replaces: the temporary file's own 0600 would
    /// hide a sidecar from another user's Wireshark.
    fn beside(dest: &Path) -> io::Result<Unfinished> {
        let existing = fs::metadata(dest).ok().map(|m| m.permissions());
        let mut builder = tempfile::Builder::new();
        builder.prefix(".tcpshut-").suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let tmp = Unfinished::create_in(&builder, folder_of(dest))?;
        if let Some(mode) = existing {
            fs::set_permissions(tmp.path(), mode)?;
        }
        Ok(tmp)
    }

    fn create_in(builder: &tempfile::Builder, dir: &Path) -> io::Result<Unfinished> {
        let mut list = unfinished();
        let file = builder.tempfile_in(dir)?;
        list.paths.push(file.path().to_path_buf());
        Ok(Unfinished { file: Some(file) })
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("not renamed yet").as_file()
    }

    fn path(&self) -> &Path {
        self.file.as_ref().expect("not renamed yet").path()
    }

    /// Renames the file to `dest` (removing it if that fails).
    fn persist(mut self, dest: &Path) -> io::Result<()> {
        let mut list = unfinished();
        let file = self.file.take().expect("not renamed yet");
        forget(&mut list.paths, file.path());
        file.persist(dest).map(drop).map_err(|e| e.error)
    }
}

impl Drop for Unfinished {
    /// Removes a file that was not renamed into place.
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let mut list = unfinished();
            forget(&mut list.paths, file.path());
            drop(file);
        }
    }
}

/// Files written to temporary files beside their destinations
/// ([`Batch::stage`]), then put in place together ([`Batch::commit`]): all
/// of them, or, when one cannot be, none, every destination as it was
/// (`tcpshut wireshark install`: a plugin with no profile, or a new
/// native plugin beside an old Lua one, is no install). Dropped before
/// the commit, the temporary files are removed; on a signal too, like
/// any temporary file ([`clean_up_on_signals`]). The folders made for it
/// ([`Batch::create_folder`]) go with them: when the commit fails, when
/// it is dropped uncommitted, and on a signal before the commit.
#[derive(Default)]
pub struct Batch {
    staged: Vec<(Unfinished, PathBuf)>,
    /// Folders made for the staged files, parents first.
    made_folders: Vec<PathBuf>,
}

impl Batch {
    /// Creates the folder `dir` (whose parent exists) for files to be
    /// staged, with `mode` on Unix, listed for removal until the commit
    /// succeeds. Created with the list locked, so a signal finds every
    /// folder made.
    pub fn create_folder(&mut self, dir: &Path, mode: u32) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut list = unfinished();
        builder.create(dir)?;
        list.made_folders.push(dir.to_path_buf());
        self.made_folders.push(dir.to_path_buf());
        Ok(())
    }

    /// Removes the folders made for this batch, deepest first, each only
    /// if empty, and forgets them; `list` is the locked list.
    fn remove_made_folders(&mut self, list: &mut Pending) {
        for dir in self.made_folders.drain(..).rev() {
            let _ = fs::remove_dir(&dir);
            forget(&mut list.made_folders, &dir);
        }
    }

    /// Writes `contents` to a temporary file beside `dest` (with the mode
    /// of the file it will replace, or that the umask gives a new one).
    pub fn stage(&mut self, dest: &Path, contents: &[u8]) -> anyhow::Result<()> {
        let tmp = Unfinished::beside(dest).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot create a temporary file: {}",
                crate::messages::shown(folder_of(dest)),
                without_path(&e)
            )
        })?;
        let mut file = tmp.file();
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", crate::messages::shown(dest)))?;
        self.staged.push((tmp, dest.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file onto its destination, in the order
    /// staged. A file it replaces is kept meanwhile as a hidden hard link
    /// beside it; when a rename fails, the files already renamed are
    /// taken back (a replaced file put back from its link, a new one
    /// removed), the other temporary files are removed, and the error
    /// says what could not be put back, if anything. It all happens with
    /// the list of temporary files locked, so a signal's clean-up waits
    /// for it and finds either every file in place or none.
    pub fn commit(mut self) -> anyhow::Result<()> {
        use crate::messages::shown;
        let mut list = unfinished();
        let staged: Vec<(tempfile::NamedTempFile, PathBuf)> = self
            .staged
            .drain(..)
            .map(|(mut tmp, dest)| {
                let file = tmp.file.take().expect("not renamed yet");
                forget(&mut list.paths, file.path());
                (file, dest)
            })
            .collect();
        let mut placed: Vec<(PathBuf, Option<tempfile::NamedTempFile<()>>)> = Vec::new();
        let mut failure = None;
        for (file, dest) in staged {
            if failure.is_some() {
                continue; // dropped: removed
            }
            match put_in_place(file, &dest) {
                Ok(replaced) => placed.push((dest, replaced)),
                Err(err) => failure = Some(err),
            }
        }
        let Some(failure) = failure else {
            // in place: the folders made for them stay
            for dir in self.made_folders.drain(..) {
                forget(&mut list.made_folders, &dir);
            }
            return Ok(()); // the replaced files' links are removed
        };
        let mut not_undone = Vec::new();
        for (dest, replaced) in placed.into_iter().rev() {
            let undone = match replaced {
                Some(old) => old.persist(&dest).map(drop).map_err(|e| e.error),
                None => fs::remove_file(&dest),
            };
            if let Err(e) = undone {
                not_undone.push(format!("{}: {e}", shown(&dest)));
            }
        }
        self.remove_made_folders(&mut list);
        drop(list);
        if not_undone.is_empty() {
            Err(failure)
        } else {
            Err(failure.context(format!(
                "and what was renamed could not all be put back ({})",
                not_undone.join("; ")
            )))
        }
    }
}

impl Drop for Batch {
    /// Uncommitted (a step before the commit failed): the temporary files
    /// are removed, then the folders made for them.
    fn drop(&mut self) {
        self.staged.clear();
        if !self.made_folders.is_empty() {
            let mut list = unfinished();
            self.remove_made_folders(&mut list);
        }
    }
}

/// Renames `file` onto `dest`, and returns a hidden hard link to the file
/// it replaced, if any (removed when dropped, or renamed back to undo).
fn put_in_place(
    file: tempfile::NamedTempFile,
    dest: &Path,
) -> anyhow::Result<Option<tempfile::NamedTempFile<()>>> {
    use crate::messages::shown;
    let replaced = match fs::symlink_metadata(dest) {
        // a folder cannot be linked, nor replaced by the rename below
        Ok(meta) if !meta.is_dir() => Some(
            tempfile::Builder::new()
                .prefix(".tcpshut-")
                .suffix(".old")
                .make_in(folder_of(dest), |link| fs::hard_link(dest, link))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: cannot keep the file it replaces: {}",
                        shown(dest),
                        without_path(&e)
                    )
                })?,
        ),
        _ => None,
    };
    file.persist(dest)
        .map_err(|e| anyhow::anyhow!("{}: cannot rename into place: {}", shown(dest), e.error))?;
    Ok(replaced)
}

/// An error of tempfile's without the ` at path "…"` it appends: the
/// message names the folder first, in the project's `PATH: error` form.
fn without_path(err: &io::Error) -> String {
    let text = err.to_string();
    match text.split_once(" at path \"") {
        Some((plain, _)) => plain.to_string(),
        None => text,
    }
}

/// A fresh private folder (a build folder) listed in [`UNFINISHED`] while
/// it exists: removed with its contents when dropped, also on an error,
/// and by [`clean_up_on_signals`] on a signal, like the temporary files.
pub struct TemporaryFolder {
    dir: Option<tempfile::TempDir>,
}

impl TemporaryFolder {
    /// Creates the folder as `builder` says (prefix, mode).
    pub fn create(builder: &tempfile::Builder) -> io::Result<TemporaryFolder> {
        let mut list = unfinished();
        let dir = builder.tempdir()?;
        list.paths.push(dir.path().to_path_buf());
        Ok(TemporaryFolder { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("not removed yet").path()
    }
}

impl Drop for TemporaryFolder {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let mut list = unfinished();
            forget(&mut list.paths, dir.path());
            drop(dir);
        }
    }
}

fn forget(list: &mut Vec<PathBuf>, path: &Path) {
    if let Some(at) = list.iter().position(|p| p == path) {
        list.swap_remove(at);
    }
}

/// The list, even if a thread panicked holding it (it stays consistent:
/// each change is one push or one removal).
fn unfinished() -> MutexGuard<'static, Pending> {
    UNFINISHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// On SIGINT, SIGTERM or SIGHUP, ends the children running in groups of
/// their own ([`crate::child_group::end_all`]), removes the temporary
/// files and folders being written, then the folders made for files not
/// yet in place ([`Batch::create_folder`]), and ends the process as the
/// signal would have (older outputs
/// stay as they were). A thread waits for the signals, so the clean-up
/// runs as ordinary code, not in a signal handler. SIGKILL cannot be
/// caught: it can leave `.tcpshut-*.tmp` files (docs/reliability.md).
/// With `first_sigint_ends_streams` (a run reading standard input or a
/// FIFO), the first SIGINT only ends those inputs, so that what was read
/// is annotated and written; the next signal cleans up as above.
#[cfg(unix)]
pub fn clean_up_on_signals(first_sigint_ends_streams: bool) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut streams_open = first_sigint_ends_streams;
            for signal in signals.forever() {
                if signal == SIGINT && streams_open {
                    streams_open = false;
                    tcpshut_engine::stop_streams();
                    continue;
                }
                // Kept locked until the end: nothing is renamed into place
                // after the clean-up.
                let list = unfinished();
                // Children in groups of their own (a build) may still be
                // writing into a temporary folder: ended first.
                crate::child_group::end_all();
                for path in list.paths.iter() {
                    // a TemporaryFolder (never a link: listed as made)
                    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                        let _ = fs::remove_dir_all(path);
                    } else {
                        let _ = fs::remove_file(path);
                    }
                }
                // emptied of the temporary files above: deepest first
                for dir in list.made_folders.iter().rev() {
                    let _ = fs::remove_dir(dir);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

#[cfg(not(unix))]
pub fn clean_up_on_signals(_first_sigint_ends_streams: bool) -> io::Result<()> {
    Ok(())
}

/// A file whose disk blocks are reserved ahead of the writes
/// (`fallocate`, keeping its size), so that nothing is left for ext4 to
/// allocate when the file is renamed over an older sidecar: that rename
/// otherwise allocates and starts writing out the whole file at once
/// (`auto_da_alloc`), 60–90 ms for a 170 MB sidecar on the benchmark
/// machine, 0.3 ms with the blocks reserved. Reservation is a hint: where
/// the file system does not support it, writes go on as usual.
struct Reserving {
    file: File,
    written: u64,
    reserved: u64,
    supported: bool,
}

/// Blocks are reserved this much at a time.
const RESERVE_STEP: u64 = 8 << 20;

impl Reserving {
    /// Writes `file`, reserving ahead where `supported`.
    fn new(file: File, supported: bool) -> Self {
        Reserving {
            file,
            written: 0,
            reserved: 0,
            supported,
        }
    }

    /// Reserves the blocks of `len` bytes from `offset`; false if the
    /// file system cannot.
    #[cfg(target_os = "linux")]
    fn reserve(&self, offset: u64, len: u64) -> bool {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return false;
        };
        // SAFETY: fallocate on an open descriptor we own; it only changes
        // which disk blocks back the file (the size is kept).
        unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                offset,
                len,
            ) == 0
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn reserve(&self, _offset: u64, _len: u64) -> bool {
        false
    }

    /// Gives back the blocks reserved past the end of what was written.
    fn release_unused(self) -> io::Result<()> {
        if self.reserved > self.written {
            // On ext4, setting the size it already has frees the blocks past it.
            self.file.set_len(self.written)?;
        }
        Ok(())
    }
}

impl Write for Reserving {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.written + buf.len() as u64;
        if self.supported && end > self.reserved {
            let len = (end - self.reserved).max(RESERVE_STEP);
            self.supported = self.reserve(self.reserved, len);
            if self.supported {
                self.reserved += len;
            }
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Standard output, buffered.
pub fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is written arrives whole, and no block reserved past its end
    /// stays allocated after the rename.
    #[test]
    fn reserved_blocks_past_the_end_are_given_back() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 100_000, 3 * RESERVE_STEP as usize + 12_345] {
            let dest = dir.path().join(format!("out-{len}.csv"));
            std::fs::write(&dest, b"an older sidecar").unwrap();
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            write_atomically(&dest, |out| Ok(out.write_all(&data)?)).unwrap();
            assert_eq!(std::fs::read(&dest).unwrap(), data, "{len} bytes");
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let allocated = std::fs::metadata(&dest).unwrap().blocks() * 512;
                // Whole blocks of what was written, and no reserved step.
                assert!(
                    allocated < len as u64 + RESERVE_STEP / 2,
                    "{len} bytes: {allocated} allocated"
                );
            }
        }
    }

    #[test]
    fn writes_past_the_reservation_reserve_more() {
        let file = tempfile::tempfile().unwrap();
        let mut reserving = Reserving::new(file.try_clone().unwrap(), cfg!(target_os = "linux"));
        let block = vec![7u8; 1 << 20];
        for _ in 0..10 {
            reserving.write_all(&block).unwrap();
        }
        assert_eq!(reserving.written, 10 << 20);
        if reserving.supported {
            assert!(reserving.reserved >= reserving.written);
        }
        reserving.release_unused().unwrap();
        assert_eq!(file.metadata().unwrap().len(), 10 << 20);
    }
}
