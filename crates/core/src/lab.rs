//! `tcpshut lab`: the seed's experiment on this machine's kernel, with the
//! lab of crate tcpshut-lab and the recorder's scenario table (one table
//! for both). Glue: arguments, where files go, exit codes; the lab crate
//! builds the namespaces, runs the calls, captures and checks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tcpshut_engine::ConnectionReport;
use tcpshut_engine::{CsvSink, Detail, MemorySink, Tee};
use tcpshut_lab::experiment::{self, Run};
use tcpshut_lab::scenarios::{self, Scenario};
use tcpshut_lab::script::{Step, StepFailed};
use tcpshut_lab::script_file::{self, Script, Side};
use tcpshut_lab::{cleanup, netns, show, tcpdump, verify};

use crate::output::{self, sidecar_path};
use crate::Status;

#[derive(clap::Args)]
#[command(
    after_help = "Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 and tcpdump; \
                        nothing outside the two namespaces is touched. The script format is in \
                        docs/lab.md."
)]
pub struct LabArgs {
    /// The scenario to run (`--list` shows them).
    #[arg(required_unless_present_any = ["list", "script", "verify"])]
    scenario: Option<String>,
    /// List the scenarios, with what each side calls.
    #[arg(long, conflicts_with_all = ["scenario", "script", "verify"])]
    list: bool,
    /// Run your own steps from FILE (one `client|server STEP` a line).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "verify"])]
    script: Option<PathBuf>,
    /// Run every scenario and compare tcpshut's inference with the calls made.
    #[arg(long, conflicts_with = "scenario")]
    verify: bool,
    /// Over IPv6 instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// Keep the capture, its sidecar and its ladder diagrams in DIR (with --verify: the captures that differ).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Open the result in Wireshark with the tcpshut plugin.
    #[arg(long, requires = "output", conflicts_with_all = ["verify", "list"])]
    open: bool,
}

/// `tcpshut lab`.
pub fn lab(args: &LabArgs) -> anyhow::Result<Status> {
    if args.list {
        list();
        return Ok(Status::Complete);
    }
    // A script with a syntax error fails before anything is built.
    let script = match &args.script {
        Some(path) => match read_script(path) {
            Ok(script) => Some((path, script)),
            Err(err) => {
                eprintln!("tcpshut: {}: {err:#}", path.display());
                return Ok(Status::Failed);
            }
        },
        None => None,
    };
    let table = scenarios::all();
    let scenario = match &args.scenario {
        Some(name) => match table.iter().find(|s| s.name == *name) {
            Some(sc) => Some(sc),
            None => bail!("no scenario `{name}` (`tcpshut lab --list` shows them)"),
        },
        None => None,
    };
    let parent = args.output.clone().unwrap_or_else(std::env::temp_dir);
    let name = match (&script, scenario) {
        (Some((path, _)), _) => path
            .file_stem()
            .map_or("script".into(), |s| s.to_string_lossy().into_owned()),
        (None, Some(sc)) => sc.name.clone(),
        (None, None) => "verify".into(),
    };
    let stem = if args.ipv6 {
        format!("{name}-ipv6")
    } else {
        name
    };
    let experiment = Experiment {
        stem: &stem,
        ipv6: args.ipv6,
        output: args.output.as_deref(),
        parent: &parent,
    };
    // Everything that can be refused is refused before anything is built.
    if let (false, Err(taken)) = (args.verify, experiment.check_free()) {
        eprintln!(
            "tcpshut: {}: exists; a capture is never replaced (choose another -o DIR)",
            taken.display()
        );
        return Ok(Status::Failed);
    }
    if let Err(why) = netns::preflight() {
        eprintln!("tcpshut: lab: {why}");
        return Ok(Status::Failed);
    }
    if let Some(dir) = &args.output {
        let new = !dir.exists();
        if let Err(err) = std::fs::create_dir_all(dir) {
            eprintln!("tcpshut: {}: cannot create: {err}", dir.display());
            return Ok(Status::Failed);
        }
        if new {
            give_to_sudo_user(dir);
        }
    }
    cleanup::on_interrupt_clean_up()?;
    for what in cleanup::remove_stale(&[&parent]) {
        eprintln!("tcpshut: lab: removed the {what} of an earlier run that did not end");
    }
    if args.verify {
        return verify_all(&table, args.ipv6, &parent, args.output.is_some());
    }
    let result = match (&script, scenario) {
        (Some((path, script)), _) => experiment.script(path, script),
        (None, Some(sc)) => experiment.scenario(sc),
        (None, None) => unreachable!("clap requires a scenario, --script or --verify"),
    };
    let status = match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("tcpshut: lab: {err:#}");
            Status::Failed
        }
    };
    if args.open && status == Status::Complete {
        if let Some(dir) = &args.output {
            return crate::wireshark_open(&dir.join(format!("{stem}.pcap")));
        }
    }
    Ok(status)
}

/// `--list`: the scenario table, one line each, with each side's calls.
fn list() {
    let calls = |steps: &[Step]| {
        let shown: Vec<String> = steps
            .iter()
            .filter(|s| !s.is_choreography() && !matches!(s, Step::Listen))
            .map(Step::to_string)
            .collect();
        if shown.is_empty() {
            "-".to_string()
        } else {
            shown.join(", ")
        }
    };
    let mut out = output::stdout();
    for sc in scenarios::all() {
        let _ = writeln!(
            out,
            "{:<28} client: {}; server: {}",
            sc.name,
            calls(&sc.client),
            calls(&sc.server)
        );
    }
    let _ = out.flush();
}

fn read_script(path: &Path) -> anyhow::Result<Script> {
    use std::io::Read;
    let file = File::open(path).context("cannot open")?;
    let mut text = String::new();
    file.take(script_file::MAX_BYTES + 1)
        .read_to_string(&mut text)
        .context("cannot read (a script is UTF-8 text)")?;
    if text.len() as u64 > script_file::MAX_BYTES {
        bail!("longer than {} bytes", script_file::MAX_BYTES);
    }
    Ok(script_file::parse(&text)?)
}

/// One run of `tcpshut lab SCENARIO` or `--script`.
struct Experiment<'a> {
    /// File names: `STEM.pcap`, `STEM.pcap.tcpshut.csv`.
    stem: &'a str,
    ipv6: bool,
    output: Option<&'a Path>,
    /// Where the temporary directory goes (DIR, so files move by rename).
    parent: &'a Path,
}

/// How `tcpshut lab` runs: nanosecond timestamps, so the timeline orders
/// calls and segments finely; a scenario's call that fails ends the run
/// (the table says how it must go), a script's is shown and the run goes on.
fn setup(ipv6: bool, keep_going: bool) -> experiment::Setup {
    experiment::Setup {
        ipv6,
        capture: tcpdump::Options {
            nano: true,
            ..Default::default()
        },
        keep_going,
    }
}

impl Experiment<'_> {
    fn files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let capture = dir.join(format!("{}.pcap", self.stem));
        let sidecar = sidecar_path(&capture, "csv");
        (capture, sidecar)
    }

    /// The file in -o DIR the result would replace, if there is one.
    fn check_free(&self) -> Result<(), PathBuf> {
        if let Some(dir) = self.output {
            for path in <[PathBuf; 2]>::from(self.files(dir)) {
                if path.symlink_metadata().is_ok() {
                    return Err(path);
                }
            }
        }
        Ok(())
    }

    fn scenario(&self, sc: &Scenario) -> anyhow::Result<Status> {
        let mut out = output::stdout();
        for line in wrap(&format!("{}: {}", sc.name, sc.description), 100) {
            writeln!(out, "{line}")?;
        }
        let tmp = cleanup::TempDir::new(self.parent)?;
        let (capture, sidecar) = self.files(tmp.path());
        let run = experiment::run(&sc.client, &sc.server, setup(self.ipv6, false), &capture)?;
        let reports = self.annotate_and_show(&mut out, &run, &capture, &sidecar)?;
        let mut differences = verify::check_wire(sc, &run, &capture)?.differences;
        differences.extend(verify::inference_differences(sc, &run, &reports));
        if differences.is_empty() {
            writeln!(out, "As the scenario table expects, on Linux {}.", kernel())?;
        } else {
            writeln!(
                out,
                "This kernel ({}) differs from the scenario table:",
                kernel()
            )?;
            for d in &differences {
                writeln!(out, "  {d}")?;
            }
        }
        self.keep(&mut out, &capture, &sidecar, &reports)?;
        out.flush()?;
        Ok(if differences.is_empty() {
            Status::Complete
        } else {
            Status::Failed
        })
    }

    fn script(&self, path: &Path, script: &Script) -> anyhow::Result<Status> {
        let tmp = cleanup::TempDir::new(self.parent)?;
        let (capture, sidecar) = self.files(tmp.path());
        let run = match experiment::run(
            &script.client,
            &script.server,
            setup(self.ipv6, true),
            &capture,
        ) {
            Ok(run) => run,
            Err(err) => {
                eprintln!(
                    "tcpshut: {}: {}",
                    path.display(),
                    script_error(script, &err)
                );
                return Ok(Status::Failed);
            }
        };
        let mut out = output::stdout();
        writeln!(out, "{}: on Linux {}", path.display(), kernel())?;
        let reports = self.annotate_and_show(&mut out, &run, &capture, &sidecar)?;
        self.keep(&mut out, &capture, &sidecar, &reports)?;
        out.flush()?;
        Ok(Status::Complete)
    }

    /// Writes the sidecar and prints the timeline and the verdicts.
    fn annotate_and_show(
        &self,
        out: &mut dyn Write,
        run: &Run,
        capture: &Path,
        sidecar: &Path,
    ) -> anyhow::Result<Vec<ConnectionReport>> {
        let mut rows = MemorySink::default();
        let file = File::create(sidecar)
            .with_context(|| format!("cannot create {}", sidecar.display()))?;
        let mut csv = CsvSink::new(BufWriter::new(file));
        let verdicts =
            tcpshut_engine::annotate(capture, Detail::Reports, &mut Tee(&mut csv, &mut rows))
                .with_context(|| capture.display().to_string())?;
        csv.into_inner()
            .and_then(|mut w| w.flush())
            .with_context(|| format!("cannot write {}", sidecar.display()))?;
        writeln!(
            out,
            "client {}:{}, server {}:{}",
            run.client_ip,
            tcpshut_lab::script::CLIENT_PORT,
            run.server_ip,
            tcpshut_lab::script::SERVER_PORT
        )?;
        writeln!(out)?;
        show::timeline(out, run, &rows.rows)?;
        writeln!(out)?;
        show::verdicts(out, run, &verdicts.reports)?;
        Ok(verdicts.reports)
    }

    /// Moves capture, sidecar and each connection's ladder diagram
    /// (`STEM.connN.svg`, as `tcpshut ladder` draws it) into -o DIR (link,
    /// then unlink: never over an existing file); without -o they go with
    /// the temporary directory.
    fn keep(
        &self,
        out: &mut dyn Write,
        capture: &Path,
        sidecar: &Path,
        reports: &[ConnectionReport],
    ) -> anyhow::Result<()> {
        let Some(dir) = self.output else {
            return Ok(());
        };
        let (to_capture, to_sidecar) = self.files(dir);
        let mut kept = vec![
            (capture.to_path_buf(), to_capture),
            (sidecar.to_path_buf(), to_sidecar),
        ];
        let ids = reports.iter().map(|r| r.id).collect();
        let ladders = tcpshut_report::ladder::collect(capture, &ids)
            .with_context(|| capture.display().to_string())?;
        for (id, ladder) in &ladders {
            let name = format!("{}.conn{id}.svg", self.stem);
            let svg = capture.with_file_name(&name);
            std::fs::write(&svg, tcpshut_report::ladder::svg_document(ladder))
                .with_context(|| format!("cannot write {}", svg.display()))?;
            kept.push((svg, dir.join(name)));
        }
        for (from, to) in &kept {
            std::fs::hard_link(from, to)
                .with_context(|| format!("cannot write {}", to.display()))?;
            give_to_sudo_user(to);
        }
        let names: Vec<String> = kept
            .iter()
            .map(|(_, to)| to.display().to_string())
            .collect();
        writeln!(out, "wrote {}", names.join(", "))?;
        Ok(())
    }
}

/// Under sudo, what the run keeps belongs to the user who ran sudo
/// (`SUDO_UID`, `SUDO_GID`), so they can move and delete it; as
/// plain root it stays root's. Best effort: ownership is a convenience.
fn give_to_sudo_user(path: &Path) {
    let id = |name| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
        let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    }
}

/// A failed script run, by the line of the step that failed.
fn script_error(script: &Script, err: &anyhow::Error) -> String {
    for (side, prefix) in [(Side::Client, "client"), (Side::Server, "server")] {
        let at_side = err.chain().any(|e| e.to_string() == prefix);
        if !at_side {
            continue;
        }
        if let Some(failed) = err.downcast_ref::<StepFailed>() {
            let cause = err.root_cause();
            return match script.line_of(side, failed.index) {
                Some(line) => format!("line {line} ({prefix} {}): {cause}", failed.step),
                None => format!("{prefix}: {cause}"),
            };
        }
    }
    format!("{err:#}")
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "(unknown version)".into())
}

/// Scenarios run at once by `--verify`: each has its own namespaces, and
/// most of a run is spent waiting, so a few fit on two cores.
const VERIFY_JOBS: usize = 4;
/// A run that differs is tried again: a loaded machine can stretch a
/// 100 ms pause past a retransmission timer.
const ATTEMPTS: usize = 3;

/// How one scenario came out.
struct Verified {
    attempts: usize,
    elapsed: Duration,
    /// Empty when the run agreed with the table.
    differences: Vec<String>,
    /// The last differing capture, kept.
    kept: Option<PathBuf>,
}

fn verify_one(sc: &Scenario, ipv6: bool, dir: &Path) -> Verified {
    let started = Instant::now();
    let mut differences = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let capture = dir.join(format!(
            "{}{}.pcap",
            sc.name,
            if ipv6 { "-ipv6" } else { "" }
        ));
        let _ = std::fs::remove_file(&capture);
        differences = match check_run(sc, ipv6, &capture) {
            Ok(d) => d,
            Err(err) => vec![format!("the run failed: {err:#}")],
        };
        if differences.is_empty() {
            let _ = std::fs::remove_file(&capture);
            return Verified {
                attempts: attempt,
                elapsed: started.elapsed(),
                differences,
                kept: None,
            };
        }
        if attempt < ATTEMPTS {
            // A pause that grows: the load spike that stretched a timer
            // (a FIN retransmitted, three FINs where two were due) passes.
            std::thread::sleep(Duration::from_secs(attempt as u64));
        }
    }
    let kept = dir.join(format!(
        "{}{}.pcap",
        sc.name,
        if ipv6 { "-ipv6" } else { "" }
    ));
    Verified {
        attempts: ATTEMPTS,
        elapsed: started.elapsed(),
        differences,
        kept: kept.exists().then_some(kept),
    }
}

fn check_run(sc: &Scenario, ipv6: bool, capture: &Path) -> anyhow::Result<Vec<String>> {
    let run = experiment::run(&sc.client, &sc.server, setup(ipv6, false), capture)?;
    let mut differences = verify::check_wire(sc, &run, capture)?.differences;
    let verdicts = tcpshut_engine::verdicts(capture, Detail::Reports)?;
    differences.extend(verify::inference_differences(sc, &run, &verdicts.reports));
    Ok(differences)
}

/// `--verify`: every scenario, a few at a time; results in table order.
fn verify_all(
    table: &[Scenario],
    ipv6: bool,
    parent: &Path,
    keep_in_parent: bool,
) -> anyhow::Result<Status> {
    let started = Instant::now();
    let tmp = cleanup::TempDir::new(parent)?;
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Verified>>> = table.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..VERIFY_JOBS.min(table.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(sc) = table.get(i) else { break };
                let verified = verify_one(sc, ipv6, tmp.path());
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(verified);
            });
        }
    });
    let mut out = output::stdout();
    let mut passed = 0;
    // Differing captures are kept: in -o DIR, or in a directory of their own.
    let keep_dir = if keep_in_parent {
        parent.to_path_buf()
    } else {
        std::env::temp_dir().join(format!("tcpshut-lab-verify-{}", std::process::id()))
    };
    for (sc, result) in table.iter().zip(results) {
        let v = result
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .expect("every scenario ran");
        let secs = v.elapsed.as_secs_f64();
        if v.differences.is_empty() {
            passed += 1;
            let retried = if v.attempts > 1 {
                format!(", attempt {}", v.attempts)
            } else {
                String::new()
            };
            writeln!(out, "ok      {:<28} {secs:.1} s{retried}", sc.name)?;
            continue;
        }
        writeln!(
            out,
            "DIFFERS {:<28} {secs:.1} s, {} attempts",
            sc.name, v.attempts
        )?;
        for d in &v.differences {
            writeln!(out, "          {d}")?;
        }
        if let Some(capture) = &v.kept {
            std::fs::create_dir_all(&keep_dir)
                .with_context(|| format!("cannot create {}", keep_dir.display()))?;
            let to = keep_dir.join(capture.file_name().expect("a file"));
            // Never over an existing file: a capture is never replaced.
            match std::fs::hard_link(capture, &to) {
                Ok(_) => {
                    give_to_sudo_user(&to);
                    writeln!(out, "          capture kept: {}", to.display())?
                }
                Err(e) => writeln!(out, "          capture not kept ({}): {e}", to.display())?,
            }
        }
    }
    writeln!(
        out,
        "tcpshut lab --verify: {passed}/{} scenarios as the table expects on Linux {} ({}), {:.1} s",
        table.len(),
        kernel(),
        if ipv6 { "IPv6" } else { "IPv4" },
        started.elapsed().as_secs_f64()
    )?;
    out.flush()?;
    Ok(if passed == table.len() {
        Status::Complete
    } else {
        Status::Failed
    })
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_between_words() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("toolongword x", 4), ["toolongword", "x"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
