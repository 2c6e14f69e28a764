//! `--series`: the files of a rotated capture read as one (the engine's
//! `Series`), and each file's sidecars (CSV with the connections sidecar,
//! or the two Parquet tables) written beside it as the read moves past it
//! (`SeriesSink`), committed one by one. What each file gave
//! (a file that is no capture, one cut short, files that overlap in time)
//! is said per file, by name.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;

use anyhow::bail;
use tcpshut_engine::{
    ConnectionReport, ConnectionsCsvSink, Detail, Row, RowSink, Schedule, Series, SeriesFile,
    SeriesSink, Verdicts,
};
use tcpshut_parquet::ParquetSink;

use crate::commands::{connections_path, sidecar_extension, sink_for};
use crate::messages::shown;
use crate::output::{sidecar_path, AtomicFile, Guard};
use crate::{BatchArgs, Format, Status};

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

/// `tcpshut annotate --series`: each file's sidecars beside it in
/// `format` (CSV: with the connections sidecar; Parquet: both tables).
/// The verdicts, or why the series could not be read at all.
/// `schedule`: one thread or two, as for a single capture
/// (`commands::schedule`).
pub fn annotate(
    series: &Series,
    guard: &Guard,
    format: Format,
    schedule: Schedule,
) -> anyhow::Result<Verdicts> {
    let mut make = |file: &SeriesFile| -> io::Result<Box<dyn RowSink>> {
        Ok(Box::new(FileOutputs::create(
            &file.path, guard, format, &schedule,
        )?))
    };
    let zeek_view = format == Format::Parquet;
    // The connections sidecar beside each file's CSV shows nothing a
    // brief report leaves out (`FileOutputs::brief_reports`).
    let brief_reports = format == Format::Csv;
    let mut sink = SeriesSink::new(series.log().clone(), &mut make)
        .with_zeek_view(zeek_view)
        .with_brief_reports(brief_reports);
    Ok(tcpshut_engine::annotate_series(
        series,
        Detail::Brief,
        &mut sink,
        schedule,
    )?)
}

/// Where the files' sidecars go, for the user.
pub fn written(series: &Series, format: Format) -> String {
    let ext = sidecar_extension(format);
    match series.files() {
        [one] => shown(&sidecar_path(one, ext)),
        files => format!(
            "FILE.tcpshut.{ext} beside each of the {} files",
            files.len()
        ),
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

/// One file's sidecars in the run's format, renamed into place when the
/// file is done; removed if the run fails first.
struct FileOutputs {
    sinks: Vec<Box<dyn RowSink>>,
    files: Vec<Shared>,
}

impl FileOutputs {
    fn create(
        capture: &Path,
        guard: &Guard,
        format: Format,
        schedule: &Schedule,
    ) -> io::Result<FileOutputs> {
        let main = sidecar_path(capture, sidecar_extension(format));
        let beside = match format {
            Format::Csv => connections_path(&main),
            Format::Parquet => Some(sidecar_path(capture, "connections.parquet")),
            _ => None,
        };
        let mut files = Vec::new();
        for dest in std::iter::once(&main).chain(&beside) {
            if let Err(refusal) = guard.check(dest) {
                return Err(io::Error::other(format!(
                    "not written: {}: {refusal}",
                    shown(dest)
                )));
            }
            files.push(Shared::create(dest)?);
        }
        let sinks: Vec<Box<dyn RowSink>> = match format {
            Format::Csv => vec![
                sink_for(format, files[0].clone()),
                Box::new(ConnectionsCsvSink::new(files[1].clone())),
            ],
            Format::Parquet => vec![Box::new(ParquetSink::for_schedule(
                files[0].clone(),
                files[1].clone(),
                schedule,
            )?)],
            _ => vec![sink_for(format, files[0].clone())],
        };
        Ok(FileOutputs { sinks, files })
    }
}

impl RowSink for FileOutputs {
    fn needs_first_pass(&self) -> bool {
        false
    }
    fn wants_connections(&self) -> bool {
        true
    }
    fn wants_zeek_view(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_zeek_view())
    }
    fn brief_reports(&self) -> bool {
        self.sinks
            .iter()
            .filter(|s| s.wants_connections())
            .all(|s| s.brief_reports())
    }
    fn begin(
        &mut self,
        capture: &tcpshut_engine::CaptureSummary,
        connections: &[ConnectionReport],
    ) -> io::Result<()> {
        for sink in &mut self.sinks {
            sink.begin(capture, connections)?;
        }
        Ok(())
    }
    fn row(&mut self, row: &Row) -> io::Result<()> {
        for sink in &mut self.sinks {
            sink.row(row)?;
        }
        Ok(())
    }
    fn connection(&mut self, report: &ConnectionReport) -> io::Result<()> {
        for sink in self.sinks.iter_mut().filter(|s| s.wants_connections()) {
            sink.connection(report)?;
        }
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        for sink in &mut self.sinks {
            sink.finish()?;
        }
        for file in &self.files {
            file.commit()?;
        }
        Ok(())
    }
}
