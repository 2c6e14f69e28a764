//! Where a capture's bytes come from: a regular file, which each pass
//! opens again, or a stream (standard input, a FIFO, a character device),
//! which can be read only once.
//!
//! The pipeline reads a capture twice when the sink needs pass 1's
//! results (`pipeline::schedule`: the JSON document, an annotated copy);
//! the one pass reads it once whatever it holds.
//! A stream cannot be read again, so when a second read may follow, what
//! is read from it is also copied to an unlinked temporary file (the
//! spool, in `$TMPDIR`, gone when the run ends whatever happens): a later
//! pass reads the spool, then goes on with the stream where the last
//! read stopped. The spool costs disk space as large as the stream (memory
//! stays flat); a run that finishes in one pass never reads it back.
//!
//! A stream also ends when [`stop_streams`] is called (tcpshut's SIGINT
//! handler does): what has arrived by then is annotated as a whole
//! capture. Until then, reads wait for data in short polls so that the
//! stop is seen even while the writer is silent.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::wire::capture::{CaptureError, CaptureReader};

/// The path that names standard input.
pub const STDIN: &str = "-";

/// Set by [`stop_streams`]; read by every stream input.
static STOP: AtomicBool = AtomicBool::new(false);

/// Ends every stream input soon, as if its writer had closed it: after
/// [`STOP_DRAIN`] without new data, or [`STOP_DEADLINE`] at the latest.
/// Async-signal-safe (one atomic store), for a SIGINT handler.
pub fn stop_streams() {
    STOP.store(true, Ordering::SeqCst);
}

/// After a stop, a stream still reads what its writer flushes on the same
/// signal (`tcpdump` writes its last buffer when it gets the SIGINT a
/// terminal sends the whole pipeline), until it has been silent this long.
pub const STOP_DRAIN: Duration = Duration::from_millis(300);
/// A stream whose writer keeps writing ends this long after a stop.
pub const STOP_DEADLINE: Duration = Duration::from_secs(2);
/// How long one wait for data lasts before the stop flag is looked at.
const POLL_INTERVAL_MS: i32 = 100;

/// Whether a path names something that is not a regular file: standard
/// input (`-`), a FIFO, a device, a socket. Such a capture can be read
/// once only, and has no directory to write a sidecar "beside" it.
pub fn is_stream(path: &Path) -> bool {
    path == Path::new(STDIN) || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Whether a run may read the capture more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// One read only (a pass that just concludes connections).
    Once,
    /// A second read may follow: a stream is spooled.
    MaybeTwice,
}

/// A capture's bytes, opened once per pass with [`Source::open`].
pub struct Source {
    path: PathBuf,
    stream: Option<Arc<Mutex<Spool>>>,
}

impl Source {
    /// The capture at `path` (`-` is standard input).
    pub fn new(path: &Path, reads: Reads) -> Result<Source, CaptureError> {
        if !is_stream(path) {
            return Ok(Source {
                path: path.to_path_buf(),
                stream: None,
            });
        }
        let input = if path == Path::new(STDIN) {
            stdin_file()?
        } else {
            File::open(path)?
        };
        let copy = match reads {
            Reads::Once => None,
            Reads::MaybeTwice => Some(tempfile::tempfile()?),
        };
        Ok(Source {
            path: path.to_path_buf(),
            stream: Some(Arc::new(Mutex::new(Spool {
                input: Box::new(Stoppable::new(input)),
                copy,
                spooled: 0,
                reads: 0,
            }))),
        })
    }

    /// A stream from any reader (tests); `name` stands in for the path.
    #[cfg(test)]
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        name: &Path,
        reads: Reads,
    ) -> io::Result<Self> {
        let copy = match reads {
            Reads::Once => None,
            Reads::MaybeTwice => Some(tempfile::tempfile()?),
        };
        Ok(Source {
            path: name.to_path_buf(),
            stream: Some(Arc::new(Mutex::new(Spool {
                input: reader,
                copy,
                spooled: 0,
                reads: 0,
            }))),
        })
    }

    /// Opens the capture from its start.
    pub fn open(&self) -> Result<CaptureReader, CaptureError> {
        let Some(spool) = &self.stream else {
            return CaptureReader::open(&self.path);
        };
        {
            let mut spool = spool.lock().unwrap_or_else(|e| e.into_inner());
            if spool.reads > 0 && spool.copy.is_none() {
                return Err(CaptureError::Io(io::Error::other(
                    "a stream cannot be read twice",
                )));
            }
            spool.reads += 1;
        }
        let reader = SpoolReader {
            spool: Arc::clone(spool),
            position: 0,
        };
        CaptureReader::from_reader(Box::new(reader), self.path.display().to_string())
    }
}

/// A stream copied whole to an unlinked temporary file, for a command
/// that reads its capture more than once outside one schedule's passes
/// (`tcpshut ladder`: the reports, then the rows): the copy is named by
/// `/proc/self/fd/N`, read like a regular file, and disappears when
/// tcpshut ends, whatever ends it (nothing is left to clean up on a
/// signal).
pub struct WholeSpool {
    _file: File,
    path: PathBuf,
}

impl WholeSpool {
    /// The stream at `path` read to its end (or to [`stop_streams`]) into
    /// the spool; `None` when `path` is a regular file, which can be read
    /// again as it is.
    pub fn of(path: &Path) -> Result<Option<WholeSpool>, CaptureError> {
        if !is_stream(path) {
            return Ok(None);
        }
        let input = if path == Path::new(STDIN) {
            stdin_file()?
        } else {
            File::open(path)?
        };
        let mut file = tempfile::tempfile()?;
        io::copy(&mut Stoppable::new(input), &mut file)?;
        let path = fd_path(&file)?;
        Ok(Some(WholeSpool { _file: file, path }))
    }

    /// Where the copy can be opened again, for as long as `self` lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The name under which this process can open `file` again.
fn fd_path(file: &File) -> io::Result<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        Ok(PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Err(io::Error::other("reading a stream twice needs Unix"))
    }
}

/// Standard input as a `File` of its own (a duplicate descriptor), so it
/// can be polled and read without Rust's stdin lock and buffer.
fn stdin_file() -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        Ok(File::from(io::stdin().as_fd().try_clone_to_owned()?))
    }
    #[cfg(not(unix))]
    {
        Err(io::Error::other("reading standard input needs Unix"))
    }
}

/// A stream read once, and what of it has been copied to the spool.
struct Spool {
    input: Box<dyn Read + Send>,
    /// The spool file, when a second read may follow.
    copy: Option<File>,
    /// Bytes read from `input` so far (and, with a spool, copied to it).
    spooled: u64,
    /// Readers opened so far.
    reads: u32,
}

/// One read of a spooled stream: the spool first, then the stream where
/// the last read stopped (copying as it goes). Passes never overlap, so
/// readers share the spool under a lock that is never contended.
struct SpoolReader {
    spool: Arc<Mutex<Spool>>,
    position: u64,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut spool = self.spool.lock().unwrap_or_else(|e| e.into_inner());
        let spool = &mut *spool;
        if self.position < spool.spooled {
            let copy = spool
                .copy
                .as_mut()
                .expect("only a spooled stream is read again");
            copy.seek(SeekFrom::Start(self.position))?;
            let left = (spool.spooled - self.position).min(buf.len() as u64) as usize;
            let n = copy.read(&mut buf[..left])?;
            self.position += n as u64;
            return Ok(n);
        }
        let n = spool.input.read(buf)?;
        if let Some(copy) = spool.copy.as_mut() {
            copy.seek(SeekFrom::Start(spool.spooled))?;
            copy.write_all(&buf[..n])?;
        }
        spool.spooled += n as u64;
        self.position += n as u64;
        Ok(n)
    }
}

/// A stream that ends at [`stop_streams`] (after draining what its writer
/// still flushes), waiting for data in short polls.
struct Stoppable {
    file: File,
    stopped_at: Option<Instant>,
}

impl Stoppable {
    fn new(file: File) -> Self {
        Stoppable {
            file,
            stopped_at: None,
        }
    }

    /// Waits up to `timeout_ms` for data (or the writer's end); whether
    /// a read would not block now.
    #[cfg(unix)]
    fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut fd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length given.
        match unsafe { libc::poll(&mut fd, 1, timeout_ms) } {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    #[cfg(not(unix))]
    fn wait_readable(&self, _timeout_ms: i32) -> io::Result<bool> {
        Ok(true)
    }
}

impl Read for Stoppable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stopped_at.is_none() && STOP.load(Ordering::SeqCst) {
                self.stopped_at = Some(Instant::now());
            }
            let wait = match self.stopped_at {
                None => POLL_INTERVAL_MS,
                Some(at) if at.elapsed() >= STOP_DEADLINE => return Ok(0),
                Some(_) => STOP_DRAIN.as_millis() as i32,
            };
            match self.wait_readable(wait) {
                Ok(true) => return self.file.read(buf),
                // Silent since the stop: the writer has said all it will.
                Ok(false) if self.stopped_at.is_some() => return Ok(0),
                Ok(false) => {}
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read, like a pipe.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn read_all(mut reader: impl Read, stop_after: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 || stop_after.is_some_and(|s| out.len() >= s) {
                out.extend_from_slice(&buf[..n]);
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn spooled(bytes: &[u8], reads: Reads) -> Arc<Mutex<Spool>> {
        let input = Trickle {
            bytes: bytes.to_vec(),
            at: 0,
            chunk: 5,
        };
        let source = Source::from_reader(Box::new(input), Path::new("-"), reads).unwrap();
        source.stream.unwrap()
    }

    #[test]
    fn a_second_read_gets_the_spool_then_the_rest_of_the_stream() {
        let bytes: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let spool = spooled(&bytes, Reads::MaybeTwice);
        let reader = |position| SpoolReader {
            spool: Arc::clone(&spool),
            position,
        };
        // The first read stops part of the way (a reader may stop early).
        let first = read_all(reader(0), Some(300));
        assert!(first.len() >= 300 && first.len() < 320);
        assert_eq!(first, bytes[..first.len()]);
        assert_eq!(read_all(reader(0), None), bytes);
        assert_eq!(read_all(reader(0), None), bytes);
    }

    #[test]
    fn a_stream_read_once_keeps_no_copy() {
        let spool = spooled(b"abcdefghij", Reads::Once);
        assert!(spool.lock().unwrap().copy.is_none());
        let reader = SpoolReader {
            spool: Arc::clone(&spool),
            position: 0,
        };
        assert_eq!(read_all(reader, None), b"abcdefghij");
    }
}
