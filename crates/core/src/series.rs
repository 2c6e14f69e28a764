//! `--series`: the files of a rotated capture read as one (the engine's
//! `Series`), and each file's sidecars written beside it as the read
//! moves past it (`SeriesSink`), committed one by one. What each file gave
//! (a file that is no capture, one cut short, files that overlap in time)
//! is said per file, by name.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::bail;
use tcpshut_engine::{
    ConnectionReport, ConnectionsCsvSink, CsvSink, Detail, Row, RowSink, Schedule, Series,
    SeriesFile, SeriesSink, Verdicts,
};

use crate::commands::connections_path;
use crate::messages::shown;
use crate::output::{sidecar_path, AtomicFile, Guard};
use crate::{BatchArgs, Status};

/// A series is made of files: standard input and FIFOs cannot be part of
/// one (their first timestamp cannot be read ahead).
pub fn refuse_streams(batch: &BatchArgs) -> anyhow::Result<()> {
    if !batch.series {
        return Ok(());
    }
    if let Some(stream) = batch.paths.iter().find(|p| tcpshut_engine::is_stream(p)) {
        bail!(
            "--series reads files in time order: {} is not a regular file",
            stream.display()
        );
    }
    Ok(())
}

/// How reading each file of the series went, after the run: the worst
/// status, and a line for each file that failed, was cut short, or
/// overlaps the one before it in time.
pub fn file_lines(series: &Series) -> (Status, Vec<String>) {
    let mut worst = Status::Complete;
    let mut lines = Vec::new();
    for file in series.log().files().iter() {
        let name = shown(&file.path);
        if let Some((first, last)) = file.overlaps {
            lines.push(format!(
                "tcpshut: {name}: warning: the files overlap in time: it starts at {first}, \
                 before the end of the file read before it ({last}); files are read in the \
                 order of their first frames"
            ));
        }
        match (&file.problem, file.format) {
            (None, _) => {}
            (Some(why), None) => {
                worst = worst.max(Status::Failed);
                lines.push(format!(
                    "tcpshut: {name}: {why}; the series was read on without it"
                ));
            }
            (Some(why), Some(_)) => {
                worst = worst.max(Status::Incomplete);
                lines.push(format!(
                    "tcpshut: {name}: incomplete: {why}; annotated the first {} frames, \
                     the series read on from the next file",
                    file.span.frames
                ));
            }
        }
    }
    (worst, lines)
}

/// `tcpshut annotate --series`: the CSV sidecar and the connections
/// sidecar beside each file. The verdicts, or why the series could not
/// be read at all.
pub fn annotate(series: &Series, guard: &Guard) -> anyhow::Result<Verdicts> {
    let mut make = |file: &SeriesFile| -> io::Result<Box<dyn RowSink>> {
        Ok(Box::new(FileSidecars::create(&file.path, guard)?))
    };
    let mut sink = SeriesSink::new(series.log().clone(), &mut make);
    Ok(tcpshut_engine::annotate_series(
        series,
        Detail::Brief,
        &mut sink,
        Schedule::default(),
    )?)
}

/// Where the files' sidecars go, for the user.
pub fn written(series: &Series) -> String {
    match series.files() {
        [one] => shown(&sidecar_path(one, "csv")),
        files => format!("a sidecar beside each of the {} files", files.len()),
    }
}

/// An output being written, shared by the sink that writes it and the
/// owner that commits it when the sink is done.
#[derive(Clone)]
struct Shared(Rc<RefCell<Option<AtomicFile>>>);

impl Shared {
    fn create(dest: &Path) -> io::Result<Shared> {
        let file = AtomicFile::create(dest).map_err(io::Error::other)?;
        Ok(Shared(Rc::new(RefCell::new(Some(file)))))
    }

    /// Renames the file into place; nothing more is written to it.
    fn commit(&self) -> io::Result<()> {
        match self.0.borrow_mut().take() {
            Some(file) => file.commit().map_err(io::Error::other),
            None => Ok(()),
        }
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.borrow_mut().as_mut() {
            Some(file) => file.write(buf),
            None => Err(io::Error::other("written after it was committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.0.borrow_mut().as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// One file's sidecars (`FILE.tcpshut.csv` and
/// `FILE.tcpshut.connections.csv`), renamed into place when the file is
/// done; removed if the run fails first.
struct FileSidecars {
    csv: CsvSink<Shared>,
    connections: ConnectionsCsvSink<Shared>,
    files: [Shared; 2],
}

impl FileSidecars {
    fn create(capture: &Path, guard: &Guard) -> io::Result<FileSidecars> {
        let sidecar = sidecar_path(capture, "csv");
        let conns: PathBuf = connections_path(&sidecar).expect("a sidecar's name ends in .csv");
        for dest in [&sidecar, &conns] {
            if let Err(refusal) = guard.check(dest) {
                return Err(io::Error::other(format!(
                    "not written: {}: {refusal}",
                    shown(dest)
                )));
            }
        }
        let files = [Shared::create(&sidecar)?, Shared::create(&conns)?];
        Ok(FileSidecars {
            csv: CsvSink::new(files[0].clone()),
            connections: ConnectionsCsvSink::new(files[1].clone()),
            files,
        })
    }
}

impl RowSink for FileSidecars {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn begin(
        &mut self,
        capture: &tcpshut_engine::CaptureSummary,
        connections: &[ConnectionReport],
    ) -> io::Result<()> {
        self.csv.begin(capture, connections)?;
        self.connections.begin(capture, connections)
    }
    fn row(&mut self, row: &Row) -> io::Result<()> {
        self.csv.row(row)
    }
    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        self.connections.connection(report)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.csv.finish()?;
        self.connections.finish()?;
        for file in &self.files {
            file.commit()?;
        }
        Ok(())
    }
}
