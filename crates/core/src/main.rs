//! tcpshut: the command-line front end. It parses arguments, finds the
//! captures, runs the engine on them in parallel, shows progress and sets
//! the exit code; the engine (`tcpshut-engine`) does the work.
//!
//! Exit codes: 0 every capture was processed completely; 1 at least one
//! input failed (unreadable, not a capture, output not written); 2 usage
//! error; 3 no failures, but at least one capture was cut short (a
//! truncated or corrupt record) and was annotated up to its last whole
//! record; 4 `wireshark install --native` could not build the native
//! plugin and installed the Lua plugin only.

mod child_group;
mod commands;
mod inputs;
#[cfg(target_os = "linux")]
mod lab;
mod messages;
mod output;
mod queue;
mod report;
mod series;
mod wireshark;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tcpshut_engine::Outcome;
use tcpshut_engine::{set_tunnel_ports, TunnelPorts};

/// Explains how every TCP connection in a capture was torn down.
#[derive(Parser)]
#[command(
    name = "tcpshut",
    version,
    about,
    after_help = "Exit codes: 0 every capture done; 1 at least one input failed (each failure is \
                  printed as `tcpshut: PATH: error`); 2 usage error; 3 no failure, but a capture \
                  was cut short and annotated up to its last whole record; 4 `wireshark install \
                  --native` installed the Lua plugin only (the native one could not be built)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    tunnels: TunnelArgs,
}

/// UDP ports tunnels are recognised on, besides the IANA ones (VXLAN
/// 4789, Geneve 6081, Teredo 3544, GTP-U 2152): for mirrors and overlays
/// on other ports (Linux's VXLAN default 8472, say). Each is repeatable.
#[derive(clap::Args)]
struct TunnelArgs {
    /// Also decode VXLAN on this UDP port (repeatable).
    #[arg(long, global = true, value_name = "PORT")]
    vxlan_port: Vec<u16>,
    /// Also decode Geneve on this UDP port (repeatable).
    #[arg(long, global = true, value_name = "PORT")]
    geneve_port: Vec<u16>,
    /// Also decode Teredo on this UDP port (repeatable).
    #[arg(long, global = true, value_name = "PORT")]
    teredo_port: Vec<u16>,
    /// Also decode GTP-U on this UDP port (repeatable).
    #[arg(long, global = true, value_name = "PORT")]
    gtp_port: Vec<u16>,
}

impl TunnelArgs {
    /// The IANA ports plus the ones given.
    fn ports(&self) -> TunnelPorts {
        let with = |mut ports: Vec<u16>, more: &[u16]| {
            ports.extend_from_slice(more);
            ports.sort_unstable();
            ports.dedup();
            ports
        };
        let iana = TunnelPorts::default();
        TunnelPorts {
            vxlan: with(iana.vxlan, &self.vxlan_port),
            geneve: with(iana.geneve, &self.geneve_port),
            teredo: with(iana.teredo, &self.teredo_port),
            gtp: with(iana.gtp, &self.gtp_port),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The CSV sidecar, one row per segment (CAPTURE.tcpshut.csv).
    Csv,
    /// One JSON document: capture, connections, segments (CAPTURE.tcpshut.json).
    Json,
    /// Zeek's conn.log, TSV with Zeek's header lines (CAPTURE.tcpshut.conn.log).
    Zeek,
    /// Zeek's conn.log in Zeek's JSON form, one object per line (CAPTURE.tcpshut.conn.json).
    ZeekJson,
    /// Two Parquet tables: CAPTURE.tcpshut.segments.parquet and CAPTURE.tcpshut.connections.parquet.
    Parquet,
}

/// How `tcpshut report` prints.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned text (colour on a terminal, unless NO_COLOR is set).
    Text,
    /// The `tcpshut-report/1` document (docs/report.md).
    Json,
}

#[derive(clap::Args)]
pub struct BatchArgs {
    /// Captures (pcap, pcapng), `-` for standard input, and directories to search for them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Captures to work on at once (default: one per core; at most the
    /// number of captures and 4 per core).
    #[arg(short, long, value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Read the captures as a rotated series (tcpdump -C/-G, dumpcap's
    /// ring buffer, editcap -c): one capture in time order, connections
    /// followed across the files, each file keeping its own sidecar. The
    /// files named form one series; in a directory, the files whose names
    /// differ only by a counter or a timestamp do (docs/inputs.md).
    #[arg(long)]
    series: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Annotate every TCP segment; writes CAPTURE.tcpshut.csv beside each capture.
    Annotate {
        #[command(flatten)]
        batch: BatchArgs,
        /// Write to FILE instead (`-` for standard output); one capture only.
        /// With `--format parquet`: the directory of one dataset for all
        /// the captures (DIR/connections/ and DIR/segments/, docs/queries.md).
        #[arg(short, long, value_name = "FILE|DIR")]
        output: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// Also write CAPTURE.tcpshut.pcapng: the packets with each summary as its comment.
        #[arg(long)]
        pcapng: bool,
        /// Replace an output file even if it is a capture (an input of the
        /// run is never replaced).
        #[arg(long)]
        force: bool,
    },
    /// Print the per-connection table: outcome, who closed, inferred calls.
    Summary {
        #[command(flatten)]
        batch: BatchArgs,
        /// Only connections with these outcomes (comma-separated), e.g. `reset,refused`.
        #[arg(long, value_delimiter = ',', value_parser = parse_outcome)]
        only: Vec<Outcome>,
    },
    /// Diagnose the system: ranked findings and aggregates over captures and directories.
    Report {
        #[command(flatten)]
        batch: BatchArgs,
        /// Output format on standard output.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Also write one self-contained HTML report (findings, ladder diagrams, charts, sortable tables) to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Draw one connection's ladder (sequence) diagram as SVG.
    Ladder {
        capture: PathBuf,
        /// The connection's id (as `tcpshut summary` and the sidecar's `conn` give it).
        #[arg(long)]
        conn: u32,
        /// Write to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Wireshark integration: the Lua plugin, the Shutdown column, opening a capture.
    Wireshark {
        #[command(subcommand)]
        action: WiresharkAction,
    },
    /// Run a teardown on this machine's kernel in two network namespaces, capture and explain it.
    #[cfg(target_os = "linux")]
    Lab(lab::LabArgs),
}

#[derive(Subcommand)]
enum WiresharkAction {
    /// Install the plugin and the `tcpshut` profile (Shutdown column) for
    /// this user: the native (C) plugin where it can be built here, with
    /// the Lua plugin beside it (which then adds only the connections
    /// table); where it cannot, the Lua plugin alone, saying why.
    Install {
        /// Only print where the files would go.
        #[arg(long)]
        print: bool,
        /// Require the native (C) plugin, much cheaper per frame (Linux;
        /// needs cc, make, pkg-config and libwireshark-dev): when it
        /// cannot be built, says why, installs the Lua plugin alone and
        /// exits 4.
        #[arg(long, conflicts_with = "lua")]
        native: bool,
        /// Install the Lua plugin only: nothing is built.
        #[arg(long)]
        lua: bool,
    },
    /// Annotate the capture if its sidecar is missing or stale, then open it in Wireshark.
    Open { capture: PathBuf },
}

/// How one input ended, for the exit code and the final count.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Complete,
    /// `wireshark install --native` installed the Lua plugin only: the
    /// native one could not be built here.
    WithoutNative,
    Incomplete,
    Failed,
}

impl Status {
    fn exit_code(worst: Status) -> ExitCode {
        match worst {
            Status::Complete => ExitCode::SUCCESS,
            Status::Failed => ExitCode::from(1),
            Status::Incomplete => ExitCode::from(3),
            Status::WithoutNative => ExitCode::from(4),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = set_tunnel_ports(cli.tunnels.ports()) {
        messages::say(&format!("tcpshut: {err}"));
        return ExitCode::from(2);
    }
    // `tcpshut lab` removes its own namespaces and folders on these
    // signals (`tcpshut_lab::cleanup`), and writes no sidecars.
    #[cfg(target_os = "linux")]
    let lab = matches!(cli.command, Command::Lab(_));
    #[cfg(not(target_os = "linux"))]
    let lab = false;
    // A stream's first SIGINT ends its input instead (what was read is
    // annotated and written); a second one cleans up like SIGTERM.
    let streams = match &cli.command {
        Command::Annotate { batch, .. } | Command::Summary { batch, .. } => {
            batch.paths.iter().any(|p| tcpshut_engine::is_stream(p))
        }
        _ => false,
    };
    let watched = if lab {
        Ok(())
    } else {
        output::clean_up_on_signals(streams)
    };
    if let Err(err) = watched {
        messages::say(&format!(
            "tcpshut: cannot watch for signals ({err}): an interrupted run may leave .tcpshut-*.tmp files"
        ));
    }
    let worst = match cli.command {
        Command::Annotate {
            batch,
            output,
            format,
            pcapng,
            force,
        } => commands::annotate(&batch, output.as_deref(), format, pcapng, force),
        Command::Summary { batch, only } => commands::summary(&batch, &only),
        Command::Report {
            batch,
            format,
            html,
        } => report::report(&batch, format, html.as_deref()),
        Command::Ladder {
            capture,
            conn,
            output,
        } => report::ladder(&capture, conn, output.as_deref()),
        Command::Wireshark { action } => match action {
            WiresharkAction::Install { print, native, lua } => {
                let plugins = match (native, lua) {
                    (true, _) => Plugins::NativeRequired,
                    (_, true) => Plugins::LuaOnly,
                    _ => Plugins::NativeWherePossible,
                };
                wireshark_install(print, plugins)
            }
            WiresharkAction::Open { capture } => wireshark_open(&capture),
        },
        #[cfg(target_os = "linux")]
        Command::Lab(args) => lab::lab(&args),
    };
    match worst {
        Ok(worst) => Status::exit_code(worst),
        // Whoever read the output stopped reading (`| head`): a normal end.
        Err(err) if messages::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            messages::say(&format!("tcpshut: {}", messages::describe(&err)));
            ExitCode::from(2)
        }
    }
}

/// `--jobs`: a count of workers, at least one.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("at least one worker is needed".to_string()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

/// An outcome by its name in the sidecar contract (`half-closed`, …).
fn parse_outcome(name: &str) -> Result<Outcome, String> {
    serde_json::from_value(serde_json::Value::from(name)).map_err(|_| {
        format!("unknown outcome `{name}` (graceful, reset, refused, half-closed, open)")
    })
}

/// Which plugins `wireshark install` puts in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plugins {
    /// The default: the native plugin where it can be built (the one that
    /// meets issue #13's cost targets), else the Lua plugin alone, said
    /// once, and still a success.
    NativeWherePossible,
    /// `--native`: as the default, but the Lua plugin alone is exit 4.
    NativeRequired,
    /// `--lua`: the Lua plugin only, nothing built.
    LuaOnly,
}

/// `tcpshut wireshark install`: prints each path written (or, with
/// `--print`, that would be written). A folder that cannot be written, or
/// another user could write, is a failure (exit 1), not a usage error; a
/// native plugin that cannot be built here is said once, and the Lua
/// plugin is installed alone (exit 0, or 4 with `--native`).
fn wireshark_install(print_only: bool, plugins: Plugins) -> anyhow::Result<Status> {
    let native = plugins != Plugins::LuaOnly;
    let result = if native {
        wireshark::install_native(print_only)
    } else {
        wireshark::install(print_only)
    };
    let installed = match result {
        Ok(installed) => installed,
        Err(err) => {
            messages::say(&format!("tcpshut: {}", messages::describe(&err)));
            return Ok(Status::Failed);
        }
    };
    let mut out = output::stdout();
    for path in &installed.written {
        writeln!(out, "{}", path.display())?;
    }
    out.flush()?;
    for note in &installed.notes {
        messages::say(note);
    }
    if let Some(warning) = wireshark::root_skip_warning() {
        messages::say(&warning);
    }
    let native_written = native && installed.native_unavailable.is_none();
    if let Some(warning) = wireshark::root_native_warning().filter(|_| native_written) {
        messages::say(&warning);
    }
    if let Some(why) = &installed.native_unavailable {
        let done = if print_only {
            "would install the Lua plugin only"
        } else {
            "installed the Lua plugin only"
        };
        if plugins == Plugins::NativeRequired {
            messages::say(&format!(
                "tcpshut: wireshark install --native: cannot build the native plugin: {why}; {done}"
            ));
            return Ok(Status::WithoutNative);
        }
        messages::say(&format!(
            "tcpshut: wireshark install: {done}: the native plugin, much cheaper per frame, \
             cannot be built here: {why}"
        ));
    }
    Ok(Status::Complete)
}

/// `tcpshut wireshark open`: refreshes the sidecar, then runs Wireshark
/// and waits for it, so that its errors come before the prompt and its
/// failure sets the exit code. Without Wireshark, prints the command to
/// run; without a display to show it on, says so instead of starting it.
fn wireshark_open(capture: &std::path::Path) -> anyhow::Result<Status> {
    let sidecar = match commands::fresh_sidecar(capture) {
        Ok(sidecar) => sidecar,
        Err(err) => {
            messages::say(&messages::error_line(capture, &err));
            return Ok(Status::Failed);
        }
    };
    if let Some(warning) = wireshark::root_skip_warning() {
        messages::say(&warning);
    }
    let mut command = match wireshark::open_command(capture, &sidecar) {
        Ok(command) => command,
        Err(err) => {
            messages::say(&format!("tcpshut: {}", messages::describe(&err)));
            return Ok(Status::Failed);
        }
    };
    let line = wireshark::shell_words(&command);
    let program = std::path::PathBuf::from(command.get_program());
    let not_installed = || -> anyhow::Result<Status> {
        let mut out = output::stdout();
        writeln!(out, "Wireshark is not installed here; with it, run:")?;
        writeln!(out, "  {line}")?;
        out.flush()?;
        Ok(Status::Complete)
    };
    if wireshark::find_program(&program).is_none() {
        return not_installed();
    }
    if let Some(why) = wireshark::no_display() {
        messages::say(&format!(
            "tcpshut: cannot open Wireshark: {why}; where there is one, run:\n  {line}"
        ));
        return Ok(Status::Failed);
    }
    match command.status() {
        Ok(status) if status.success() => Ok(Status::Complete),
        Ok(status) => {
            messages::say(&format!(
                "tcpshut: {}: Wireshark failed ({status})",
                messages::shown(&program)
            ));
            Ok(Status::Failed)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => not_installed(),
        Err(err) => {
            let err = anyhow::Error::new(err).context("cannot start Wireshark");
            messages::say(&messages::error_line(&program, &err));
            Ok(Status::Failed)
        }
    }
}
