//! The `annotate` and `summary` commands: run the engine over every
//! input in parallel, write sidecars, and tell the user what happened,
//! in input order whatever order the work finished in.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tcpshut_engine::ConnectionReport;
use tcpshut_engine::ConnectionsCsvSink;
use tcpshut_engine::TcpState;
use tcpshut_engine::{Closer, ConnVerdict, Outcome, Series, Unseen};

use tcpshut_engine::{
    CsvSink, Detail, JsonSink, OutcomeCounts, Pass, PcapngCopy, Peers, RowSink, Schedule,
    SightCounts, Tee, Verdicts, ZeekForm, ZeekLogSink,
};
use tcpshut_parquet::ParquetSink;

use crate::inputs::{self, Input};
use crate::messages::{self, shown};
use crate::output::{self, sidecar_path, write_atomically, Guard, Refusal};
use crate::queue;
use crate::{BatchArgs, Format, Status};

/// What one input produced: text for the user, and how it ended.
struct Done {
    status: Status,
    /// Lines for standard output (or standard error, when stdout has data).
    lines: Vec<String>,
    /// Then one line per connection, made only when printed: a capture
    /// can hold millions of connections, and their verdicts are smaller
    /// than their lines.
    connections: Option<Verdicts>,
    /// `tcpshut: PATH: error` lines.
    errors: Vec<String>,
    /// Standard output was closed by its reader while this input wrote
    /// to it: the run ends there, as a normal end.
    stdout_closed: bool,
}

impl Done {
    fn failed(path: &Path, err: &anyhow::Error) -> Self {
        Done {
            status: Status::Failed,
            lines: Vec::new(),
            connections: None,
            errors: vec![messages::error_line(path, err)],
            stdout_closed: false,
        }
    }

    /// A series that could not be read at all: what each file gave
    /// (`file_lines`), or `err` if that says nothing.
    fn series_failed(series: &Series, err: &anyhow::Error, mut lines: Vec<String>) -> Self {
        if lines.is_empty() {
            lines.push(messages::error_line(Path::new(&series.name()), err));
        }
        Done {
            status: Status::Failed,
            lines: Vec::new(),
            connections: None,
            errors: lines,
            stdout_closed: false,
        }
    }

    /// `err` ended an input that wrote to standard output: a reader
    /// that went away ends the run quietly, anything else is a failure.
    fn failed_writing_stdout(path: &Path, err: &anyhow::Error) -> Self {
        let mut done = Done::failed(path, err);
        if messages::is_broken_pipe(err) {
            done.stdout_closed = true;
            done.errors.clear();
        }
        done
    }
}

/// Runs `work` on every input (`series` on each rotated series, with
/// `--series`), in parallel, the largest first ([`queue`]), and prints the
/// results in input order.
/// Returns the worst status.
fn run_batch(
    batch: &BatchArgs,
    to_stderr: bool,
    force: bool,
    work: impl Fn(&Path, &Guard) -> Done + Sync,
    series: impl Fn(&Series, &Guard) -> Done + Sync,
) -> anyhow::Result<Status> {
    crate::series::refuse_streams(batch)?;
    let inputs = inputs::collect(&batch.paths, batch.series);
    if inputs.is_empty() {
        bail!("no captures found in the given paths");
    }
    let guard = Guard::new(
        inputs
            .iter()
            .flat_map(|input| input.captures().iter().map(PathBuf::as_path)),
        force,
    );
    let many = inputs.len() > 1;
    let progress = if many && !batch.no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(inputs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} captures {elapsed_precise} {msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers(batch.jobs, inputs.len()))
        .build()
        .context("cannot start worker threads")?;
    let results: Vec<Done> = queue::map(&pool, &inputs, |input| {
        let result = match input {
            Input::Capture(path) => work(path, &guard),
            Input::Series(files) => series(&Series::new(files.clone()), &guard),
            Input::Problem(path, why) => Done::failed(path, &anyhow::anyhow!("{why}")),
        };
        progress.inc(1);
        result
    });
    progress.finish_and_clear();

    let mut out: Box<dyn Write> = if to_stderr {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(output::stdout())
    };
    if results.iter().any(|r| r.stdout_closed) {
        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
    }
    let mut worst = Status::Complete;
    let (mut failed, mut incomplete) = (0, 0);
    for result in &results {
        for line in &result.lines {
            writeln!(out, "{line}")?;
        }
        if let Some(conns) = &result.connections {
            let all = conns.peers.iter().zip(&conns.verdicts).enumerate();
            for (id, (peers, verdict)) in all.take(SHORT_SUMMARY_LINES) {
                writeln!(out, "{}", one_line(id, peers, verdict))?;
            }
            let more = (conns.capture.connections as usize).saturating_sub(SHORT_SUMMARY_LINES);
            if more > 0 {
                writeln!(
                    out,
                    "  ... and {more} more (`tcpshut summary` lists them all)"
                )?;
            }
        }
        out.flush()?;
        for line in &result.errors {
            messages::say(line);
        }
        worst = worst.max(result.status);
        failed += usize::from(result.status == Status::Failed);
        incomplete += usize::from(result.status == Status::Incomplete);
    }
    if many {
        writeln!(
            out,
            "tcpshut: {} of {} captures done, {failed} failed, {incomplete} incomplete",
            results.len() - failed,
            results.len()
        )?;
    }
    out.flush()?;
    Ok(worst)
}

/// A capture none of whose frames could be decoded (all of a link type
/// tcpshut does not know) cannot be used: that is a failure, not an
/// empty result.
fn usable(verdicts: Verdicts) -> anyhow::Result<Verdicts> {
    let decode = &verdicts.capture.decode;
    if decode.frames > 0 && decode.unknown_link == decode.frames {
        bail!(
            "none of its {} frames has a link type tcpshut decodes (see the README for the list)",
            decode.frames
        );
    }
    Ok(verdicts)
}

/// A capture that is not a regular file (standard input, a FIFO, a
/// device, `/proc/self/fd/N`) has no directory to write "beside": it
/// needs `-o`, and cannot have an annotated copy beside it.
fn streams_need_output(batch: &BatchArgs, dest: Option<&Path>, pcapng: bool) -> anyhow::Result<()> {
    let stdin_count = batch
        .paths
        .iter()
        .filter(|p| p.as_os_str() == tcpshut_engine::STDIN)
        .count();
    if stdin_count > 1 {
        bail!("standard input (`-`) can be read only once");
    }
    for path in batch.paths.iter().filter(|p| has_no_beside(p)) {
        let name = path.display();
        if dest.is_none() {
            bail!(
                "{name} is not a regular file, so there is nowhere beside it for the sidecar: \
                 give -o FILE (or -o - for standard output)"
            );
        }
        if pcapng {
            bail!("{name} is not a regular file: --pcapng writes its copy beside the capture");
        }
    }
    Ok(())
}

/// Whether a capture path has no place beside it for a sidecar: it is not
/// a regular file, or it sits among the kernel's files (`/dev/stdin`,
/// `/proc/self/fd/N` name a regular file's descriptor, not its folder).
fn has_no_beside(path: &Path) -> bool {
    if tcpshut_engine::is_stream(path) {
        return true;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    ["/dev", "/proc"]
        .iter()
        .any(|root| absolute.starts_with(root))
}

/// Workers started for each core, at most: captures are read from
/// memory-mapped files, so a worker waits on the disk at times, but more
/// than a few per core only adds threads, memory and contention.
const MAX_JOBS_PER_CORE: usize = 4;

/// How many workers to start for `inputs` captures when `--jobs` asks
/// for `asked` (default: one per core): never more than the captures,
/// nor [`MAX_JOBS_PER_CORE`] per core. Says so when `--jobs` asks for
/// more than the cores allow.
pub fn workers(asked: Option<usize>, inputs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = cores * MAX_JOBS_PER_CORE;
    let asked = asked.unwrap_or(cores);
    let started = asked.min(most).min(inputs).max(1);
    if asked > most {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        messages::say(&format!(
            "tcpshut: --jobs {asked} capped at {most} ({MAX_JOBS_PER_CORE} per core, {cores} \
             core{}): {started} worker{} for {inputs} capture{}",
            plural(cores),
            plural(started),
            plural(inputs),
        ));
    }
    started
}

/// Status of a finished analysis, with a line about an early end and one
/// about segments the snaplen cut (for standard error).
fn finished(path: &Path, verdicts: &Verdicts) -> (Status, Vec<String>) {
    let mut lines: Vec<String> = snaplen_warning(&verdicts.capture.decode)
        .map(|warning| format!("tcpshut: {}: warning: {warning}", path.display()))
        .into_iter()
        .collect();
    let status = match &verdicts.capture.incomplete {
        None => Status::Complete,
        Some(why) => {
            lines.push(format!(
                "tcpshut: {}: incomplete: {why}; annotated the first {} frames",
                shown(path),
                verdicts.capture.frames
            ));
            Status::Incomplete
        }
    };
    (status, lines)
}

/// What the snaplen cut: segments decoded from what was left (never
/// silently), and frames cut too short to use.
fn snaplen_warning(decode: &tcpshut_engine::DecodeStats) -> Option<String> {
    let mut parts = Vec::new();
    if decode.options_cut > 0 {
        parts.push(format!(
            "{} segments had their TCP options cut by the snaplen (decoded from the fixed header; rows carry options-cut)",
            decode.options_cut
        ));
    }
    if decode.payload_cut > 0 {
        parts.push(format!(
            "{} segments had their payload cut (lengths taken from the IP header)",
            decode.payload_cut
        ));
    }
    if decode.truncated > 0 {
        parts.push(format!(
            "{} frames were cut before the TCP fields needed and could not be used",
            decode.truncated
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `annotate`'s short summary of one capture (or series): its
/// connections by outcome, its segments with what the snaplen cut and the
/// frames it made unusable, where the output went; then, as `summary`
/// ends, the connections whose end the capture did not see and the
/// answers widened by what it did not see.
fn annotated_lines(name: &str, verdicts: &Verdicts, written: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "{name}: {}, {} -> {written}",
        count_outcomes(&verdicts.outcomes),
        count_segments(&verdicts.capture.decode),
    )];
    lines.extend(sight_lines(
        &verdicts.capture.sight,
        verdicts.outcomes.total(),
    ));
    lines
}

/// "N segments", with what the snaplen cut of them and the frames it cut
/// too short to use, when it cut anything.
fn count_segments(decode: &tcpshut_engine::DecodeStats) -> String {
    let cut: Vec<String> = [
        (decode.options_cut, "options cut"),
        (decode.payload_cut, "payload cut"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let mut text = format!("{} segments", decode.tcp_segments);
    if !cut.is_empty() {
        text.push_str(&format!(" ({})", cut.join(", ")));
    }
    if decode.truncated > 0 {
        let plural = if decode.truncated == 1 { "" } else { "s" };
        text.push_str(&format!(
            ", {} frame{plural} too short to use",
            decode.truncated
        ));
    }
    text
}

fn count_outcomes(outcomes: &OutcomeCounts) -> String {
    let parts: Vec<String> = Outcome::ALL
        .iter()
        .filter_map(|kind| {
            let n = outcomes.get(*kind);
            (n > 0).then(|| format!("{n} {kind}"))
        })
        .collect();
    let n = outcomes.total();
    let plural = if n == 1 { "" } else { "s" };
    if parts.is_empty() {
        return format!("{n} connection{plural}");
    }
    format!("{n} connection{plural} ({})", parts.join(", "))
}

/// How each capture of a batch is annotated: on two threads when a
/// single worker runs and `--jobs` allows two threads (its default, one
/// per core, does on two cores), on one otherwise: several workers
/// already share the cores (`run_batch`'s pool), and `--jobs 1` means one
/// thread. Threads never outnumber what `--jobs` asked for.
pub(crate) fn schedule(jobs: Option<usize>) -> Schedule {
    let workers = rayon::current_num_threads();
    if workers == 1 && jobs.is_none_or(|asked| asked >= 2) {
        Schedule::default()
    } else {
        Schedule::one_thread()
    }
}

/// `tcpshut annotate`.
pub fn annotate(
    batch: &BatchArgs,
    dest: Option<&Path>,
    format: Format,
    pcapng: bool,
    force: bool,
) -> anyhow::Result<Status> {
    streams_need_output(batch, dest, pcapng)?;
    if batch.series {
        // Each file's sidecars beside it, for the plugin.
        if !matches!(format, Format::Csv | Format::Parquet) || dest.is_some() || pcapng {
            bail!(
                "--series writes each file's sidecars beside it as the read moves past \
                 the file: CSV (the default) or Parquet, with no -o and no --pcapng"
            );
        }
    }
    // Parquet with -o DIR: one dataset for every capture of the run.
    let dataset = dest.filter(|_| format == Format::Parquet);
    if let Some(dir) = dataset {
        output::make_dataset(dir)?;
    } else if let Some(dest) = dest {
        if batch.paths.len() != 1 || batch.paths[0].is_dir() {
            bail!("-o/--output takes exactly one capture file");
        }
        let guard = Guard::new([batch.paths[0].as_path()], force);
        if dest != Path::new("-") {
            if let Err(refusal) = guard.check(dest) {
                bail!("-o/--output {} {refusal}", shown(dest));
            }
        }
    }
    let to_stdout = dest == Some(Path::new("-"));
    // One capture: a line per connection follows the counts.
    let single = batch.paths.len() == 1 && !batch.paths[0].is_dir();
    let detail = match format {
        Format::Json => Detail::Reports,
        // The first connections' lines and the counts: memory stays flat
        // (the Parquet and conn.log sinks take the reports one at a time).
        Format::Csv | Format::Zeek | Format::ZeekJson | Format::Parquet => Detail::Brief,
    };
    // A batch shows one bar for all its captures; a single capture, which
    // may take a while when it is large, shows its own through both passes.
    let bar_for_one = single
        && !batch.no_progress
        && std::io::stderr().is_terminal()
        && !tcpshut_engine::is_stream(&batch.paths[0]);
    let one = |path: &Path, guard: &Guard| {
        let run = |mut sink: Box<dyn RowSink + '_>| -> anyhow::Result<Verdicts> {
            if bar_for_one {
                sink = Box::new(WithProgress::new(sink, path));
            }
            if !pcapng {
                return usable(tcpshut_engine::annotate_with(
                    path,
                    detail,
                    sink.as_mut(),
                    schedule(batch.jobs),
                )?);
            }
            let copy_path = sidecar_path(path, "pcapng");
            guarded(guard.check_copy(&copy_path), &copy_path)?;
            write_atomically(&copy_path, |copy| {
                let source = tcpshut_engine::CaptureReader::open(path)?;
                let mut comments = PcapngCopy::new(copy, source)?;
                let mut both = Tee(sink.as_mut(), &mut comments);
                usable(tcpshut_engine::annotate_with(
                    path,
                    detail,
                    &mut both,
                    schedule(batch.jobs),
                )?)
            })
        };
        let analyse = |out: &mut dyn Write, dest: &Path| -> anyhow::Result<Verdicts> {
            match format {
                // The connections sidecar beside the CSV one (not on
                // standard output, nor beside a device or FIFO).
                Format::Csv if dest.is_file() || !dest.exists() => {
                    let conns = connections_path(dest);
                    if let Some(conns) = &conns {
                        guarded(guard.check(conns), conns)?;
                    }
                    csv_with_connections(out, conns.as_deref(), |sink| run(Box::new(sink)))
                }
                // Two tables: the connections file beside the segments'.
                Format::Parquet => {
                    let conns_path = match dataset {
                        Some(dir) => output::dataset_file(dir, "connections", path),
                        None => sidecar_path(path, "connections.parquet"),
                    };
                    guarded(guard.check(&conns_path), &conns_path)?;
                    write_atomically(&conns_path, |conns| {
                        run(Box::new(ParquetSink::for_schedule(
                            out,
                            conns,
                            &schedule(batch.jobs),
                        )?))
                    })
                }
                _ => run(sink_for(format, out)),
            }
        };
        let ext = sidecar_extension(format);
        let (written, result) = match dest {
            Some(dir) if dataset.is_some() => {
                let file = output::dataset_file(dir, "segments", path);
                let result = guarded(guard.check(&file), &file)
                    .and_then(|()| write_atomically(&file, |w| analyse(w, &file)));
                (shown(&file), result)
            }
            Some(d) if d == Path::new("-") => (
                "standard output".to_string(),
                analyse(&mut output::stdout(), Path::new("-")),
            ),
            Some(d) => (shown(d), write_atomically(d, |w| analyse(w, d))),
            None => {
                let sidecar = sidecar_path(path, ext);
                let result = guarded(guard.check(&sidecar), &sidecar)
                    .and_then(|()| write_atomically(&sidecar, |w| analyse(w, &sidecar)));
                (shown(&sidecar), result)
            }
        };
        match result {
            Err(err) if to_stdout => Done::failed_writing_stdout(path, &err),
            Err(err) => Done::failed(path, &err),
            Ok(verdicts) => {
                let (status, errors) = finished(path, &verdicts);
                let lines = annotated_lines(&shown(path), &verdicts, &written);
                Done {
                    status,
                    lines,
                    connections: single.then_some(verdicts),
                    errors,
                    stdout_closed: false,
                }
            }
        }
    };
    let series = |series: &Series, guard: &Guard| {
        let result =
            crate::series::annotate(series, guard, format, schedule(batch.jobs)).and_then(usable);
        let (status, errors) = crate::series::file_lines(series);
        match result {
            Err(err) => Done::series_failed(series, &err, errors),
            Ok(verdicts) => Done {
                status,
                lines: annotated_lines(
                    &series.name(),
                    &verdicts,
                    &crate::series::written(series, format),
                ),
                connections: None,
                errors,
                stdout_closed: false,
            },
        }
    };
    run_batch(batch, to_stdout, force, one, series)
}

/// A [`Guard`]'s refusal as the error of writing `dest`.
fn guarded(check: Result<(), Refusal>, dest: &Path) -> anyhow::Result<()> {
    check.with_context(|| format!("not written: {}", shown(dest)))
}

/// Shows how far the passes over one capture have got.
struct WithProgress<'a> {
    inner: Box<dyn RowSink + 'a>,
    bar: ProgressBar,
    size: u64,
}

impl<'a> WithProgress<'a> {
    fn new(inner: Box<dyn RowSink + 'a>, path: &Path) -> Self {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let bar = ProgressBar::new(size.max(1));
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {percent:>3}% pass {msg} {elapsed_precise}")
                .expect("valid template"),
        );
        WithProgress { inner, bar, size }
    }
}

impl RowSink for WithProgress<'_> {
    fn needs_first_pass(&self) -> bool {
        self.inner.needs_first_pass()
    }
    fn begin(
        &mut self,
        capture: &tcpshut_engine::CaptureSummary,
        connections: &[ConnectionReport],
    ) -> std::io::Result<()> {
        self.inner.begin(capture, connections)
    }
    fn row(&mut self, row: &tcpshut_engine::Row) -> std::io::Result<()> {
        self.inner.row(row)
    }
    fn frame(
        &mut self,
        frame: &tcpshut_engine::Frame<'_>,
        row: Option<&tcpshut_engine::Row>,
    ) -> std::io::Result<()> {
        self.inner.frame(frame, row)
    }
    fn finish(&mut self) -> std::io::Result<()> {
        self.inner.finish()
    }
    fn wants_connections(&self) -> bool {
        self.inner.wants_connections()
    }
    fn connection(&mut self, report: &ConnectionReport) -> std::io::Result<()> {
        self.inner.connection(report)
    }
    fn settled(&mut self, settled: &tcpshut_engine::SettledConnection<'_>) -> std::io::Result<()> {
        self.inner.settled(settled)
    }
    fn wants_zeek_view(&self) -> bool {
        self.inner.wants_zeek_view()
    }
    fn brief_reports(&self) -> bool {
        self.inner.brief_reports()
    }
    fn row_formatter(&self) -> Option<Box<dyn tcpshut_engine::RowFormatter>> {
        self.inner.row_formatter()
    }
    fn formatted_rows(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.formatted_rows(bytes)
    }
    fn ignores_rows(&self) -> bool {
        self.inner.ignores_rows()
    }
    /// Rows skip the bar: they go straight to the sink that takes them
    /// (one call through `dyn RowSink` a row), progress still comes here.
    fn rows_to(&mut self) -> Option<&mut dyn RowSink> {
        Some(tcpshut_engine::rows_sink(&mut *self.inner))
    }
    fn progress(&mut self, pass: Pass, bytes: u64) {
        self.bar.set_message(format!("{}/{}", pass.number, pass.of));
        self.bar.set_length(u64::from(pass.of) * self.size.max(1));
        let done_before = u64::from(pass.number - 1) * self.size;
        self.bar.set_position(done_before + bytes.min(self.size));
    }
}

impl Drop for WithProgress<'_> {
    /// Done or failed, the bar leaves the terminal clean.
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// What a sidecar of `format` adds to its capture's name (`CAPTURE.tcpshut.EXT`).
pub fn sidecar_extension(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Zeek => "conn.log",
        Format::ZeekJson => "conn.json",
        Format::Parquet => "segments.parquet",
    }
}

pub fn sink_for<'w, W: Write + 'w>(format: Format, out: W) -> Box<dyn RowSink + 'w> {
    match format {
        Format::Csv => Box::new(CsvSink::new(out)),
        Format::Json => Box::new(JsonSink::new(out)),
        Format::Zeek => Box::new(ZeekLogSink::new(out, ZeekForm::Tsv)),
        Format::ZeekJson => Box::new(ZeekLogSink::new(out, ZeekForm::Json)),
        Format::Parquet => unreachable!("the Parquet sink writes two files"),
    }
}

/// `annotate` prints at most this many per-connection lines: a summary
/// stays short however many connections the capture holds.
const SHORT_SUMMARY_LINES: usize = tcpshut_engine::BRIEF_CONNECTIONS;

/// One connection in one line, for `annotate`'s short summary: its
/// client and server, and its verdict.
fn one_line(id: usize, peers: &Peers, v: &ConnVerdict) -> String {
    let c = v.client.index;
    let closer = match v.closer {
        Closer::Client => "client closed first",
        Closer::Server => "server closed first",
        Closer::Both => "both closed at once",
        Closer::None => "nobody closed",
        Closer::Unknown => "who closed first cannot be told",
    };
    format!(
        "  #{id} {} -> {}: {}, {closer}; client {}, server {}",
        peers.client(),
        peers.server(),
        outcome_text(
            v.outcome,
            v.idle_reset.map(|i| f64::from(i.idle_ms) / 1000.0)
        ),
        calls_or_dash(&v.endpoints[c].calls.to_string()),
        calls_or_dash(&v.endpoints[1 - c].calls.to_string()),
    )
}

/// The outcome, and for an idle reset the silence before it:
/// `reset (idle 3.5 s)`.
fn outcome_text(outcome: Outcome, idle_secs: Option<f64>) -> String {
    match idle_secs {
        Some(secs) => format!("{outcome} (idle {secs:.1} s)"),
        None => outcome.to_string(),
    }
}

fn calls_or_dash(calls: &str) -> &str {
    if calls.is_empty() {
        "-"
    } else {
        calls
    }
}

/// `tcpshut summary`: the per-connection table for people.
/// `tcpshut summary`; with `only`, the table lists just those outcomes
/// (the counts still cover every connection).
pub fn summary(batch: &BatchArgs, only: &[Outcome]) -> anyhow::Result<Status> {
    crate::series::refuse_streams(batch)?;
    if let [path] = batch.paths.as_slice() {
        if tcpshut_engine::is_stream(path) {
            return summary_of_stream(path, only);
        }
    }
    let one = |path: &Path, _: &Guard| {
        let verdicts = tcpshut_engine::verdicts(path, Detail::Reports)
            .map_err(anyhow::Error::from)
            .and_then(usable);
        match verdicts {
            Err(err) => Done::failed(path, &err),
            Ok(verdicts) => {
                let (status, errors) = finished(path, &verdicts);
                summary_done(&shown(path), &verdicts, only, status, errors)
            }
        }
    };
    let series = |series: &Series, _: &Guard| {
        let verdicts = tcpshut_engine::verdicts_series(series, Detail::Reports)
            .map_err(anyhow::Error::from)
            .and_then(usable);
        let (status, errors) = crate::series::file_lines(series);
        match verdicts {
            Err(err) => Done::series_failed(series, &err, errors),
            Ok(verdicts) => summary_done(&series.name(), &verdicts, only, status, errors),
        }
    };
    run_batch(batch, false, false, one, series)
}

/// `summary`'s table of one capture (or series) named `name`.
fn summary_done(
    name: &str,
    verdicts: &Verdicts,
    only: &[Outcome],
    status: Status,
    errors: Vec<String>,
) -> Done {
    let mut lines = vec![format!("{name}: {}", count_outcomes(&verdicts.outcomes))];
    let shown: Vec<&ConnectionReport> = verdicts
        .reports
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.outcome))
        .collect();
    lines.extend(table(&shown));
    lines.extend(lingering(&verdicts.reports));
    lines.extend(sight_lines(
        &verdicts.capture.sight,
        verdicts.outcomes.total(),
    ));
    Done {
        status,
        lines,
        connections: None,
        errors,
        stdout_closed: false,
    }
}

/// One line counting the endpoints left in a state that still holds a
/// socket when the capture ends (TIME-WAIT pile-ups, CLOSE-WAIT leaks),
/// by side; none when there are none.
fn lingering(reports: &[ConnectionReport]) -> Option<String> {
    let mut holding = Holding::default();
    reports.iter().for_each(|r| holding.add(r));
    holding.line()
}

/// Endpoints left in a state that still holds a socket, by state and side.
#[derive(Default)]
struct Holding([[usize; 2]; 5]);

impl Holding {
    const STATES: [TcpState; 5] = [
        TcpState::TimeWait,
        TcpState::CloseWait,
        TcpState::FinWait2,
        TcpState::LastAck,
        TcpState::Closing,
    ];

    fn add(&mut self, report: &ConnectionReport) {
        for (side, endpoint) in report.endpoints.iter().enumerate() {
            if let Some(i) = Self::STATES.iter().position(|&s| s == endpoint.final_state) {
                self.0[i][side] += 1;
            }
        }
    }

    fn line(&self) -> Option<String> {
        let parts: Vec<String> = Self::STATES
            .iter()
            .zip(&self.0)
            .filter(|(_, [client, server])| client + server > 0)
            .map(|(state, [client, server])| {
                format!(
                    "{} in {state} (client {client}, server {server})",
                    client + server
                )
            })
            .collect();
        (!parts.is_empty()).then(|| format!("  at the end: {}", parts.join(", ")))
    }
}

/// The columns of `tcpshut summary` (the last only when a connection has
/// something to show there).
const TABLE_HEADER: [&str; 11] = [
    "conn",
    "client",
    "server",
    "outcome",
    "closer",
    "client calls",
    "server calls",
    "client state",
    "server state",
    "capture saw",
    "tunnel",
];

/// What the capture point did not see of a connection, in words (its
/// visibility notes).
fn sight_words(r: &ConnectionReport) -> String {
    let words: Vec<&str> = r
        .notes
        .iter()
        .filter_map(|note| match *note {
            "one-direction" => Some("one direction only"),
            "mid-stream" => Some("start unseen"),
            "fin-unseen" => Some("FIN unseen"),
            "end-unseen" => Some("end unseen"),
            _ => None,
        })
        .collect();
    words.join(", ")
}

/// The lines after the table: connections whose end the capture did not
/// see, and answers widened by what it did not see, by cause.
fn sight_lines(sight: &SightCounts, connections: u64) -> Vec<String> {
    let mut lines = Vec::new();
    if sight.end_unseen > 0 {
        lines.push(format!(
            "  end unseen: {} of {connections} connections still open when the capture stopped",
            sight.end_unseen
        ));
    }
    let total = sight.widened_total();
    if total > 0 {
        let causes: Vec<String> = Unseen::ALL
            .iter()
            .filter(|cause| sight.widened(**cause) > 0)
            .enumerate()
            .map(|(i, cause)| {
                let n = sight.widened(*cause);
                let what = match (i, n) {
                    (0, 1) => "answer widened ",
                    (0, _) => "answers widened ",
                    _ => "",
                };
                format!("{n} {what}because {}", cause.because())
            })
            .collect();
        let plural = if connections == 1 { "" } else { "s" };
        lines.push(format!(
            "  widened: {connections} connection{plural}: {}",
            causes.join("; ")
        ));
    }
    lines
}

/// A connection's cells in the table.
fn table_cells(r: &ConnectionReport) -> [String; 11] {
    [
        r.id.to_string(),
        r.client.clone(),
        r.server.clone(),
        outcome_text(r.outcome, r.idle_reset_secs),
        r.closer.to_string(),
        calls_or_dash(&r.endpoints[0].calls.to_string()).to_string(),
        calls_or_dash(&r.endpoints[1].calls.to_string()).to_string(),
        r.endpoints[0].final_state.to_string(),
        r.endpoints[1].final_state.to_string(),
        sight_words(r),
        r.tunnel.to_string(),
    ]
}

/// Cells padded to `widths`, two spaces apart.
fn table_row<S: AsRef<str>>(cells: &[S], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{:<w$}", c.as_ref()))
        .collect();
    format!("  {}", padded.join("  ").trim_end())
}

/// Aligned columns: endpoints, outcome, who closed, calls, final states,
/// and a `tunnel` column when a connection came through one (a capture
/// without tunnels shows none).
fn table(reports: &[&ConnectionReport]) -> Vec<String> {
    if reports.is_empty() {
        return Vec::new();
    }
    let rows: Vec<[String; 11]> = reports.iter().map(|r| table_cells(r)).collect();
    // The last columns only when some connection has something in them
    // (a capture without tunnels shows no tunnel column).
    let filled = |column: usize| rows.iter().any(|row| !row[column].is_empty());
    let columns = if filled(10) {
        11
    } else if filled(9) {
        10
    } else {
        9
    };
    let mut widths = TABLE_HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut lines = vec![table_row(&TABLE_HEADER[..columns], &widths)];
    lines.extend(rows.iter().map(|row| table_row(&row[..columns], &widths)));
    lines
}

/// Column widths of the table printed as connections end, when the
/// widest cell cannot be known ahead (IPv4 endpoints fit).
const STREAM_WIDTHS: [usize; 11] = [5, 21, 21, 11, 6, 24, 24, 12, 12, 11, 0];

/// `tcpshut summary` of a stream (standard input, a FIFO): each
/// connection is printed when it ends, in the order they end, while the
/// capture is still being read; the counts follow at the end.
fn summary_of_stream(path: &Path, only: &[Outcome]) -> anyhow::Result<Status> {
    let mut out = output::stdout();
    let mut outcomes = OutcomeCounts::default();
    let mut holding = Holding::default();
    let mut written = Ok(());
    let mut header_done = false;
    let mut each = |report: &ConnectionReport| {
        outcomes.add(report.outcome);
        holding.add(report);
        if written.is_err() || !(only.is_empty() || only.contains(&report.outcome)) {
            return;
        }
        if !header_done {
            header_done = true;
            written = writeln!(out, "{}", table_row(&TABLE_HEADER, &STREAM_WIDTHS));
        }
        if written.is_ok() {
            written = writeln!(out, "{}", table_row(&table_cells(report), &STREAM_WIDTHS))
                .and_then(|()| out.flush());
        }
    };
    // One thread: on two, a connection would wait for its batch to fill
    // before it is printed.
    let read = tcpshut_engine::each_report_with(path, Schedule::one_thread(), &mut each);
    written?;
    let capture = match read {
        Ok(capture) => capture,
        Err(err) => {
            eprintln!(
                "tcpshut: {}: {:#}",
                path.display(),
                anyhow::Error::from(err)
            );
            return Ok(Status::Failed);
        }
    };
    writeln!(out, "{}: {}", path.display(), count_outcomes(&outcomes))?;
    if let Some(line) = holding.line() {
        writeln!(out, "{line}")?;
    }
    for line in sight_lines(&capture.sight, outcomes.total()) {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if let Some(why) = &capture.incomplete {
        eprintln!(
            "tcpshut: {}: incomplete: {why}; annotated the first {} frames",
            path.display(),
            capture.frames
        );
        return Ok(Status::Incomplete);
    }
    Ok(Status::Complete)
}

/// The CSV sidecar of `capture`, written first if it is missing or older
/// than the capture.
pub fn fresh_sidecar(capture: &Path) -> anyhow::Result<std::path::PathBuf> {
    let sidecar = sidecar_path(capture, "csv");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let capture_time = std::fs::metadata(capture)
        .and_then(|m| m.modified())
        .context("cannot read")?;
    if modified(&sidecar).is_some_and(|t| t >= capture_time) {
        return Ok(sidecar);
    }
    guarded(Guard::new([capture], false).check(&sidecar), &sidecar)?;
    let conns = connections_path(&sidecar);
    if let Some(conns) = &conns {
        guarded(Guard::new([capture], false).check(conns), conns)?;
    }
    write_atomically(&sidecar, |out| {
        csv_with_connections(out, conns.as_deref(), |sink| {
            tcpshut_engine::annotate(capture, Detail::Brief, sink)?;
            Ok(())
        })
    })?;
    Ok(sidecar)
}

/// The connections sidecar that goes with the CSV sidecar `sidecar`:
/// `NAME.csv` gives `NAME.connections.csv` (docs/sidecar.md); `None` for
/// another name (or one that is not UTF-8).
pub fn connections_path(sidecar: &Path) -> Option<std::path::PathBuf> {
    let stem = sidecar.file_name()?.to_str()?.strip_suffix(".csv")?;
    Some(sidecar.with_file_name(format!("{stem}.connections.csv")))
}

/// Runs `run` with a CSV sink on `out` and, when `conns` is given, the
/// connections sidecar written there too (atomically, like the sidecar).
fn csv_with_connections<T>(
    out: &mut dyn Write,
    conns: Option<&Path>,
    run: impl FnOnce(&mut dyn RowSink) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut csv = CsvSink::new(out);
    match conns {
        None => run(&mut csv),
        Some(path) => write_atomically(path, |c| {
            let mut conns = ConnectionsCsvSink::new(c);
            run(&mut Tee(&mut csv, &mut conns))
        }),
    }
}
