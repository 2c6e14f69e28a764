//! The `report` command: aggregates over every input (in parallel, each
//! capture's merged into the result as it ends: the result is the same
//! in any order), printed for a terminal or as JSON, optionally an
//! HTML file; and `ladder`, one connection's diagram. The work is
//! tcpshut-report's; this is the glue.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use tcpshut_engine::Schedule;
use tcpshut_report::{Aggregate, Document};

use crate::inputs::{self, Input};
use crate::output::{self, write_atomically};

use crate::{BatchArgs, ReportFormat, Status};

/// What the inputs gave: the merged aggregates, how many failed, the worst
/// status, and the error lines by input position.
#[derive(Default)]
struct Partial {
    agg: Aggregate,
    failed: u64,
    worst: Option<Status>,
    errors: Vec<(usize, String)>,
}

impl Partial {
    fn merge(mut self, other: Partial) -> Partial {
        self.agg.merge(other.agg);
        self.failed += other.failed;
        self.worst = self.worst.max(other.worst);
        self.errors.extend(other.errors);
        self
    }

    /// `schedule`: one thread or two for the capture, as for `annotate`
    /// ([`crate::commands::schedule`]).
    fn of(position: usize, input: &Input, spools: &Spools, schedule: Schedule) -> Partial {
        let (path, result) = match input {
            Input::Capture(path) => {
                let name = path.display().to_string();
                let read_from = spools.get(&name).map_or(path.as_path(), |s| s.path());
                (
                    path,
                    tcpshut_report::aggregate_capture_as(position, read_from, name, schedule),
                )
            }
            Input::Series(files) => return Partial::of_series(position, files, schedule),
            Input::Problem(path, why) => {
                return Partial::failed(position, path, why);
            }
        };
        match result {
            Err(err) => Partial::failed(position, path, &format!("{err:#}")),
            Ok((agg, summary)) => {
                let mut errors = Vec::new();
                let status = match &summary.incomplete {
                    None => Status::Complete,
                    Some(why) => {
                        errors.push((
                            position,
                            format!(
                                "tcpshut: {}: incomplete: {why}; reported the first {} frames",
                                path.display(),
                                summary.frames
                            ),
                        ));
                        Status::Incomplete
                    }
                };
                Partial {
                    agg,
                    failed: 0,
                    worst: Some(status),
                    errors,
                }
            }
        }
    }

    /// A rotated series, aggregated as one capture; what each file gave
    /// is said by name.
    fn of_series(position: usize, files: &[std::path::PathBuf], schedule: Schedule) -> Partial {
        let series = tcpshut_engine::Series::new(files.to_vec());
        let result = tcpshut_report::aggregate_series(position, &series, schedule);
        let (status, lines) = crate::series::file_lines(&series);
        let mut errors: Vec<(usize, String)> = lines.into_iter().map(|l| (position, l)).collect();
        match result {
            Err(err) => {
                if errors.is_empty() {
                    errors.push((position, format!("tcpshut: {}: {err:#}", series.name())));
                }
                Partial {
                    agg: Aggregate::default(),
                    failed: 1,
                    worst: Some(Status::Failed),
                    errors,
                }
            }
            Ok((agg, _)) => Partial {
                agg,
                failed: 0,
                worst: Some(status),
                errors,
            },
        }
    }

    fn failed(position: usize, path: &Path, why: &str) -> Partial {
        Partial {
            agg: Aggregate::default(),
            failed: 1,
            worst: Some(Status::Failed),
            errors: vec![(position, format!("tcpshut: {}: {why}", path.display()))],
        }
    }
}

/// `tcpshut report`.
pub fn report(
    batch: &BatchArgs,
    format: ReportFormat,
    html: Option<&Path>,
) -> anyhow::Result<Status> {
    if let Some(file) = html {
        refuse_capture(file)?;
    }
    crate::series::refuse_streams(batch)?;
    let inputs = inputs::collect(&batch.paths, batch.series);
    if inputs.is_empty() {
        bail!("no captures found in the given paths");
    }
    // The page's diagrams read their captures again: a stream is copied
    // whole first, and both reads read the copy.
    let mut spools = Spools::new();
    if html.is_some() {
        for path in inputs.iter().flat_map(Input::captures) {
            match tcpshut_engine::WholeSpool::of(path) {
                Ok(None) => {}
                Ok(Some(spool)) => {
                    spools.insert(path.display().to_string(), spool);
                }
                Err(err) => {
                    eprintln!("tcpshut: {}: {err:#}", path.display());
                    return Ok(Status::Failed);
                }
            }
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(crate::commands::workers(batch.jobs, inputs.len()))
        .build()
        .context("cannot start worker threads")?;
    // Each worker merges its captures' aggregates into its own, and the
    // workers' are merged when all have ended. Merged into one shared
    // result as they were made, under a lock, the aggregates of one
    // worker's captures were freed and grown by the other, and glibc's
    // malloc then takes the first worker's arena lock for each such
    // free: the two workers waited for each other's allocator ~2,000
    // times on the bench's batch (`futex`), which instruction counts do
    // not show ("Fourteenth round: batches on a faster machine").
    let partials = crate::queue::fold(
        &pool,
        &inputs,
        || None,
        |merged: Option<Partial>, i, input| {
            let partial = Partial::of(i, input, &spools, crate::commands::schedule(batch.jobs));
            Some(match merged {
                None => partial,
                Some(all) => all.merge(partial),
            })
        },
    );
    let mut all = partials
        .into_iter()
        .flatten()
        .reduce(Partial::merge)
        .unwrap_or_default();
    all.errors.sort();
    for (_, line) in &all.errors {
        eprintln!("{line}");
    }
    let worst = all.worst.unwrap_or(Status::Complete);
    let doc = Document::new(&all.agg, all.failed);
    // The aggregates are freed on a worker while the report is printed:
    // the end of a batch is one thread's, and freeing need not be in it.
    let agg = std::mem::take(&mut all.agg);
    let (printed, ()) = pool.join(|| print(&doc, format), move || drop(agg));
    printed?;
    if let Some(file) = html {
        let series: BTreeMap<String, tcpshut_engine::Series> = inputs
            .iter()
            .filter_map(|input| match input {
                Input::Series(files) => {
                    let series = tcpshut_engine::Series::new(files.clone());
                    Some((series.name(), series))
                }
                _ => None,
            })
            .collect();
        let page = tcpshut_report::html::render(&doc, &ladders(&doc, &spools, &series));
        if let Err(err) = write_atomically(file, |out| Ok(out.write_all(page.as_bytes())?)) {
            eprintln!("tcpshut: {}: {err:#}", file.display());
            return Ok(Status::Failed);
        }
    }
    Ok(worst)
}

/// The report on standard output: for a terminal, or as JSON.
fn print(doc: &Document, format: ReportFormat) -> anyhow::Result<()> {
    let mut out = output::stdout();
    match format {
        ReportFormat::Text => {
            let colour = tcpshut_report::terminal::wants_colour(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            tcpshut_report::terminal::write(doc, colour, &mut out)?;
        }
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Never write over a capture (`--html capture.pcap` is a slip).
fn refuse_capture(file: &Path) -> anyhow::Result<()> {
    // By its name, or by its first bytes (also once decompressed), as
    // the sidecar's guard does.
    let holds_a_capture = tcpshut_engine::file_looks_like_capture(file).unwrap_or(false);
    if inputs::named_like_capture(file) || holds_a_capture {
        bail!(
            "{}: looks like a capture; tcpshut will not replace it with a report or diagram",
            file.display()
        );
    }
    Ok(())
}

/// Copies of the streams read, by the name the user gave them.
type Spools = BTreeMap<String, tcpshut_engine::WholeSpool>;

/// The ladders the page shows (one example of each first finding), one
/// pass per capture (a stream's from its copy in `spools`, a series' over
/// its files); a capture that cannot be read again loses its ladders,
/// said once.
fn ladders(
    doc: &Document,
    spools: &Spools,
    series: &BTreeMap<String, tcpshut_engine::Series>,
) -> tcpshut_report::html::Ladders {
    let mut by_capture: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for (capture, conn) in tcpshut_report::html::ladder_examples(doc) {
        by_capture.entry(capture).or_default().insert(conn);
    }
    let mut all = tcpshut_report::html::Ladders::new();
    for (capture, conns) in by_capture {
        let read_from = spools
            .get(&capture)
            .map_or(Path::new(&capture), |s| s.path());
        let found = match series.get(&capture) {
            Some(series) => tcpshut_report::ladder::collect_series(series, &conns),
            None => tcpshut_report::ladder::collect(read_from, &conns),
        };
        match found {
            Ok(found) => {
                // Named as the user named it, not as a stream's copy is.
                all.extend(found.into_iter().map(|(id, mut l)| {
                    l.capture.clone_from(&capture);
                    ((capture.clone(), id), l)
                }));
            }
            Err(err) => eprintln!("tcpshut: {capture}: no ladder diagrams: {err:#}"),
        }
    }
    all
}

/// `tcpshut ladder`: one connection's ladder diagram as SVG.
pub fn ladder(capture: &Path, conn: u32, output: Option<&Path>) -> anyhow::Result<Status> {
    // The diagram reads the capture twice (its report, then its rows): a
    // stream is copied whole first, and read from the copy.
    let spooled = match tcpshut_engine::WholeSpool::of(capture) {
        Ok(spooled) => spooled,
        Err(err) => {
            eprintln!("tcpshut: {}: {err:#}", capture.display());
            return Ok(Status::Failed);
        }
    };
    let read_from = spooled.as_ref().map_or(capture, |s| s.path());
    let found = match tcpshut_report::ladder::collect(read_from, &BTreeSet::from([conn])) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("tcpshut: {}: {err:#}", capture.display());
            return Ok(Status::Failed);
        }
    };
    let Some(mut ladder) = found
        .into_iter()
        .find_map(|(id, l)| (id == conn).then_some(l))
    else {
        eprintln!(
            "tcpshut: {}: no connection {conn} (ids are those of `tcpshut summary`)",
            capture.display()
        );
        return Ok(Status::Failed);
    };
    // Named as the user named it, not as the spool is.
    ladder.capture = capture.display().to_string();
    let svg = tcpshut_report::ladder::svg_document(&ladder);
    match output {
        None => {
            let mut out = output::stdout();
            out.write_all(svg.as_bytes())?;
            out.flush()?;
        }
        Some(file) => {
            refuse_capture(file)?;
            if let Err(err) = write_atomically(file, |out| Ok(out.write_all(svg.as_bytes())?)) {
                eprintln!("tcpshut: {}: {err:#}", file.display());
                return Ok(Status::Failed);
            }
        }
    }
    Ok(Status::Complete)
}
