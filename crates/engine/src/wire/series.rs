//! A rotated series: one capture split into many files (`tcpdump -C/-G/-W`,
//! dumpcap's ring buffer, `editcap -c`), read as one stream of frames so
//! that a connection crossing a file boundary stays one connection.
//!
//! The files are read in time order (by their first frame's timestamp;
//! ties and files with no readable frame keep the order given, the latter
//! last). The frames of all files are numbered on from one file to the
//! next (file 2's first frame follows file 1's last); [`SeriesLog`] keeps
//! where each file starts in that numbering, so that an output can give
//! each file its own frame numbers, as Wireshark numbers that file alone.
//!
//! A file that cannot be read, or breaks in the middle, does not stop the
//! series: what it gave is kept, its problem is logged, and reading goes
//! on with the next file. Connections crossing it are followed across the
//! gap as across a capture that lost packets (`docs/inputs.md`).
//!
//! Each pass over the series opens it again ([`Series::open`]) and the log
//! starts again with it: after a run it describes the last read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::wire::capture::{CaptureError, CaptureFormat, CaptureReader};
use crate::wire::segment::Timestamp;

/// What reading one file of a series gave.
#[derive(Clone, Debug)]
pub struct SeriesFile {
    pub path: PathBuf,
    /// Its container format, when it could be opened as a capture at all.
    pub format: Option<CaptureFormat>,
    /// Which of the series' frames are its own.
    pub span: FileSpan,
    /// Why it could not be opened, or why reading it stopped early.
    pub problem: Option<String>,
    /// It starts before the file read before it ended: the time of its
    /// first frame, and of that file's last.
    pub overlaps: Option<(Timestamp, Timestamp)>,
}

/// Where a file's frames are in the series' numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// The series' number of the frame before this file's first: the
    /// file's frame `n` is the series' frame `base + n`.
    pub base: u64,
    /// Frames read from it, numbered as Wireshark numbers them in this
    /// file alone (the last frame's number).
    pub frames: u64,
    /// Read to its end (or to its problem): `frames` is final.
    pub done: bool,
}

impl FileSpan {
    /// Whether the series' frame `frame` is one of this file's.
    pub fn holds(&self, frame: u64) -> bool {
        frame > self.base && (!self.done || frame <= self.base + self.frames)
    }

    /// The series' frame `frame` as this file numbers it, if it holds it.
    pub fn local(&self, frame: u64) -> Option<u64> {
        self.holds(frame).then(|| frame - self.base)
    }
}

/// The files read so far in the current pass, in reading order; shared
/// between the reader (which appends) and the outputs (which look up
/// where a frame belongs).
#[derive(Clone, Debug, Default)]
pub struct SeriesLog(Arc<Mutex<Vec<SeriesFile>>>);

impl SeriesLog {
    /// The files as read so far (all of them after a whole pass).
    pub fn files(&self) -> MutexGuard<'_, Vec<SeriesFile>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index (in reading order) of the file that holds the series'
    /// frame `frame`, among those read so far, and its span.
    pub fn file_of(&self, frame: u64) -> Option<(usize, FileSpan)> {
        let files = self.files();
        // Files start in order; the last one starting before `frame`
        // holds it (a file that gave no frame starts where the next does).
        let after = files.partition_point(|f| f.span.base < frame);
        let index = after.checked_sub(1)?;
        let span = files[index].span;
        span.holds(frame).then_some((index, span))
    }

    fn push(&self, file: SeriesFile) {
        self.files().push(file);
    }
}

/// The files of one series, in reading order.
pub struct Series {
    files: Vec<PathBuf>,
    /// Each file's first timestamp, where it could be read.
    firsts: Vec<Option<Timestamp>>,
    log: SeriesLog,
}

impl Series {
    /// The series of `files` (at least one), put in time order: each file
    /// is opened to read its first frame's timestamp.
    pub fn new(files: Vec<PathBuf>) -> Series {
        let mut keyed: Vec<(Option<Timestamp>, PathBuf)> = files
            .into_iter()
            .map(|path| (first_timestamp(&path), path))
            .collect();
        // Stable: ties keep the order given; files with no first frame last.
        keyed.sort_by_key(|(first, _)| (first.is_none(), *first));
        let (firsts, files) = keyed.into_iter().unzip();
        Series {
            files,
            firsts,
            log: SeriesLog::default(),
        }
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// What the last pass read of each file.
    pub fn log(&self) -> &SeriesLog {
        &self.log
    }

    /// The series as one capture, from the start: a reader that goes on
    /// from each file to the next. Fails only when no file can be opened
    /// (each file's problem is in the log).
    pub fn open(&self) -> Result<CaptureReader, CaptureError> {
        self.log.files().clear();
        let mut chain = Chain {
            files: self.files.clone(),
            firsts: self.firsts.clone(),
            next: 0,
            base: 0,
            last_ts: None,
            log: self.log.clone(),
        };
        let mut first_error = None;
        while chain.next < chain.files.len() {
            match chain.open_next() {
                Ok(mut reader) => {
                    reader.chain = Some(Box::new(chain));
                    return Ok(reader);
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        Err(first_error.unwrap_or(CaptureError::Empty))
    }

    /// A name for the series in messages: `FIRST .. LAST (N files)`.
    pub fn name(&self) -> String {
        match self.files.as_slice() {
            [one] => one.display().to_string(),
            [first, .., last] => format!(
                "{} .. {} ({} files)",
                first.display(),
                last.display(),
                self.files.len()
            ),
            [] => String::new(),
        }
    }
}

/// The timestamp of a file's first frame, if it has one that can be read.
fn first_timestamp(path: &Path) -> Option<Timestamp> {
    let mut reader = CaptureReader::open(path).ok()?;
    let frame = reader.next_frame().ok()??;
    Some(frame.ts)
}

/// The files after the one being read, kept by the reader of a series.
pub(crate) struct Chain {
    files: Vec<PathBuf>,
    firsts: Vec<Option<Timestamp>>,
    /// The next file to open.
    next: usize,
    /// The series' number of the frame before the current file's first.
    pub(crate) base: u64,
    /// The last frame's timestamp so far, to tell when files overlap.
    pub(crate) last_ts: Option<Timestamp>,
    log: SeriesLog,
}

impl Chain {
    /// Whether a file follows the one being read.
    pub(crate) fn has_next(&self) -> bool {
        self.next < self.files.len()
    }

    /// The current file ended after `frames` frames (its numbering),
    /// with `problem` if it broke: logged; the numbering goes on after it.
    pub(crate) fn ended(&mut self, frames: u64, problem: Option<String>) {
        let mut files = self.log.files();
        if let Some(file) = files.last_mut() {
            file.span.frames = frames;
            file.span.done = true;
            file.problem = problem;
        }
        self.base += frames;
    }

    /// Opens the next file (logged either way).
    pub(crate) fn open_next(&mut self) -> Result<CaptureReader, CaptureError> {
        let path = self.files[self.next].clone();
        let first = self.firsts[self.next];
        self.next += 1;
        let opened = CaptureReader::open(&path);
        let overlaps = match (first, self.last_ts) {
            (Some(first), Some(last)) if first < last => Some((first, last)),
            _ => None,
        };
        self.log.push(SeriesFile {
            path,
            format: opened.as_ref().ok().map(CaptureReader::format),
            span: FileSpan {
                base: self.base,
                frames: 0,
                done: opened.is_err(),
            },
            problem: opened.as_ref().err().map(ToString::to_string),
            overlaps,
        });
        opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(base: u64, frames: u64) -> SeriesFile {
        SeriesFile {
            path: PathBuf::new(),
            format: Some(CaptureFormat::PcapNg),
            span: FileSpan {
                base,
                frames,
                done: true,
            },
            problem: None,
            overlaps: None,
        }
    }

    #[test]
    fn frames_are_found_in_their_file_even_past_empty_ones() {
        let log = SeriesLog::default();
        for f in [file(0, 3), file(3, 0), file(3, 2), file(5, 4)] {
            log.push(f);
        }
        let found: Vec<Option<usize>> = (0..=10).map(|n| log.file_of(n).map(|(i, _)| i)).collect();
        assert_eq!(
            found,
            [
                None,
                Some(0),
                Some(0),
                Some(0),
                Some(2),
                Some(2),
                Some(3),
                Some(3),
                Some(3),
                Some(3),
                None
            ]
        );
    }
}
