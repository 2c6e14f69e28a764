//! tcpshut-record: records real Linux TCP teardowns into test captures.
//!
//! For every scenario it builds two fresh network namespaces joined by a
//! veth pair, captures the client's veth with tcpdump while a client and a
//! server thread run their scripted socket calls, checks that the kernel
//! put the expected FINs and RSTs on the wire, and writes manifest.json
//! with what each application really called and what the wire can prove.

mod degrade;
mod derive;
mod hard;
mod loss;
mod manifest;
mod mix;
mod router;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use clap::Parser;

use manifest::{Capture, Connection, Manifest, Side, Variant};
use tcpshut_lab::netns as lab;
use tcpshut_lab::scenarios::{self, Scenario, SideExpect};
use tcpshut_lab::script::Call;
use tcpshut_lab::{experiment, tcpdump, verify, wire};

/// Timing-dependent scenarios get this many tries before we give up.
const ATTEMPTS: usize = 3;

#[derive(Parser)]
#[command(about = "Record real Linux TCP teardowns into pcap test captures (needs root)")]
struct Cli {
    /// Directory for the captures and manifest.json.
    #[arg(long, default_value = "testdata")]
    out: PathBuf,
    /// Record only these captures (file stem) or scenarios (all variants);
    /// `derived` remakes the derived captures, `router` the router set,
    /// `loss` only its losses (the router drops a FIN or an RST),
    /// `router-ipv6` only its IPv6 runs.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// List the captures this would record, and exit.
    #[arg(long)]
    list: bool,
    /// Record only the report mix (OUT/report-mix/mix.pcap and mix.json:
    /// a few hundred connections with planted problems, for `tcpshut report`).
    #[arg(long)]
    report_mix: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Pcap,
    PcapNano,
    Pcapng,
}

/// One capture file: a scenario in one variant.
struct Recording<'a> {
    sc: &'a Scenario,
    ipv6: bool,
    sll2: bool,
    format: Format,
    /// Captured with `tcpdump -s 80` (IPv4 only: the TCP header still fits).
    snap80: bool,
}

/// Variants besides plain IPv4/Ethernet/pcap: (scenario, ipv6, sll2, format).
const VARIANTS: &[(&str, bool, bool, Format)] = &[
    ("close-client-first", true, false, Format::Pcap),
    ("shut_rd-client-first", true, false, Format::Pcap),
    ("shut_rdwr-server-first", true, false, Format::Pcap),
    ("linger0-after-data", true, false, Format::Pcap),
    ("refused", true, false, Format::Pcap),
    ("close-client-first", false, true, Format::Pcap),
    ("half-close-data-after-fin", false, true, Format::Pcap),
    ("shut_rdwr-client-first", false, false, Format::PcapNano),
    ("close-unread", false, false, Format::Pcapng),
    ("simultaneous-close", false, false, Format::Pcapng),
];

/// Scenarios also recorded with `tcpdump -s 80`: payload cut off, TCP
/// header complete (Ethernet 14 + IPv4 20 + TCP 32 with timestamps = 66).
const SNAP80: &[&str] = &["half-close-data-after-fin"];

impl Recording<'_> {
    fn stem(&self) -> String {
        let mut s = self.sc.name.clone();
        if self.ipv6 {
            s.push_str("-ipv6");
        }
        if self.sll2 {
            s.push_str("-sll2");
        }
        if self.format == Format::PcapNano {
            s.push_str("-nano");
        }
        if self.snap80 {
            s.push_str("-snap80");
        }
        s
    }

    fn file(&self) -> String {
        let ext = if self.format == Format::Pcapng {
            "pcapng"
        } else {
            "pcap"
        };
        format!("{}.{ext}", self.stem())
    }

    fn variant(&self) -> Variant {
        Variant {
            ip: if self.ipv6 { 6 } else { 4 },
            link_type: if self.sll2 { "LINUX_SLL2" } else { "ETHERNET" }.into(),
            format: match self.format {
                Format::Pcap => "pcap",
                Format::PcapNano => "pcap-nsec",
                Format::Pcapng => "pcapng",
            }
            .into(),
        }
    }
}

fn recordings(scenarios: &[Scenario]) -> Vec<Recording<'_>> {
    let mut v: Vec<Recording> = scenarios
        .iter()
        .map(|sc| Recording {
            sc,
            ipv6: false,
            sll2: false,
            format: Format::Pcap,
            snap80: false,
        })
        .collect();
    for &(name, ipv6, sll2, format) in VARIANTS {
        let sc = scenarios
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("variant of unknown scenario {name}"));
        v.push(Recording {
            sc,
            ipv6,
            sll2,
            format,
            snap80: false,
        });
    }
    for name in SNAP80 {
        let sc = scenarios
            .iter()
            .find(|s| s.name == *name)
            .unwrap_or_else(|| panic!("variant of unknown scenario {name}"));
        v.push(Recording {
            sc,
            ipv6: false,
            sll2: false,
            format: Format::Pcap,
            snap80: true,
        });
    }
    v
}

/// A manifest side: the calls made and what the table expects of them.
fn side_entry(calls: Vec<Call>, wire: wire::Counts, exp: &SideExpect) -> Side {
    Side {
        calls,
        expected_calls: exp.calls.clone(),
        expected_role: exp.role,
        expected_closed_by: exp.closed_by,
        segments: wire,
    }
}

fn record_once(rec: &Recording, out: &Path) -> Result<Capture> {
    let file = out.join(rec.file());
    // tcpdump cannot write pcapng: record pcap, convert afterwards.
    let raw = if rec.format == Format::Pcapng {
        out.join(format!("{}.pcap.tmp", rec.stem()))
    } else {
        file.clone()
    };
    let opts = tcpdump::Options {
        any_sll2: rec.sll2,
        nano: rec.format == Format::PcapNano,
        snap80: rec.snap80,
    };
    let setup = experiment::Setup {
        ipv6: rec.ipv6,
        capture: opts,
        keep_going: false,
    };
    let run = experiment::run(&rec.sc.client, &rec.sc.server, setup, &raw)?;
    if rec.format == Format::Pcapng {
        wire::pcap_to_pcapng(&raw, &file)?;
        fs::remove_file(&raw)?;
    }

    let check = verify::check_wire(rec.sc, &run, &file)?;
    ensure!(
        check.differences.is_empty(),
        "{}",
        check.differences.join("; ")
    );
    let packets = check.packets;
    let mut connections = Vec::new();
    for (i, (w, exp)) in check.conns.iter().zip(&rec.sc.conns).enumerate() {
        let calls = |log: &[Vec<Call>]| log.get(i).cloned().unwrap_or_default();
        connections.push(Connection {
            client_addr: w.client.to_string(),
            server_addr: w.server.to_string(),
            expected_outcome: exp.outcome,
            client: side_entry(calls(&run.client.calls), w.from_client, &exp.client),
            server: side_entry(calls(&run.server.calls), w.from_server, &exp.server),
        });
    }
    Ok(Capture {
        file: rec.file(),
        scenario: rec.sc.name.clone(),
        description: rec.sc.description.clone(),
        variant: rec.variant(),
        packets,
        connections,
        derived_from: None,
        transformation: None,
        expected_events: hard::recorded_events(&rec.sc.name, &file)?,
        expected_decode: if hard::HARD_SCENARIOS.contains(&rec.stem().as_str()) {
            Some(hard::decode_counts(&file)?)
        } else {
            None
        },
    })
}

/// Records with retries: a loaded machine can stretch a 100 ms pause past
/// a retransmission timer, which shows up as a wrong FIN/RST count.
fn record(rec: &Recording, out: &Path) -> Result<Capture> {
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        match record_once(rec, out) {
            Ok(c) => return Ok(c),
            Err(e) => {
                eprintln!("  attempt {attempt} of {}: {e:#}", rec.file());
                let _ = fs::remove_file(out.join(rec.file()));
                let _ = fs::remove_file(out.join(format!("{}.pcap.tmp", rec.stem())));
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one attempt"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.report_mix {
        return mix::record(&cli.out.join("report-mix"));
    }
    let scenarios = scenarios::all();
    let all = recordings(&scenarios);
    if cli.list {
        for r in &all {
            println!("{:40} {}", r.file(), r.sc.description);
        }
        for (file, from, how) in hard::derived_list() {
            println!("{file:40} derived from {from}: {how}");
        }
        for (file, from, how) in degrade::degraded_list() {
            println!("{}/{file:40} derived from {from}: {how}", degrade::DIR);
        }
        for (file, description) in router::list() {
            println!("{file:40} {description}");
        }
        return Ok(());
    }
    let chosen: Vec<&Recording> = all
        .iter()
        .filter(|r| {
            cli.only.is_empty() || cli.only.iter().any(|o| *o == r.stem() || *o == r.sc.name)
        })
        .collect();
    ensure!(
        !chosen.is_empty()
            || cli
                .only
                .iter()
                .any(|o| ["derived", "router", "loss", "router-ipv6"].contains(&o.as_str())),
        "--only matched nothing (see --list)"
    );
    // SAFETY: trivial libc getter.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root (network namespaces, tcpdump, nftables)");
    }
    tcpshut_lab::cleanup::on_interrupt_clean_up()?;
    lab::remove_stale();
    fs::create_dir_all(&cli.out)?;

    // Resets forged by a router: their own directory and manifest.
    let mut failed = Vec::new();
    let asked = |what: &str| cli.only.iter().any(|o| o == what);
    let which = if cli.only.is_empty() || asked("router") {
        Some(router::Which::All)
    } else if asked("loss") {
        Some(router::Which::Loss)
    } else if asked("router-ipv6") {
        Some(router::Which::Ipv6)
    } else {
        None
    };
    if let Some(which) = which {
        if let Err(e) = router::record_all(&cli.out, which) {
            eprintln!("FAILED router: {e:#}");
            failed.push("router".to_string());
        }
        if chosen.is_empty() {
            ensure!(failed.is_empty(), "failed to record the router captures");
            return Ok(());
        }
    }
    let manifest_path = cli.out.join("manifest.json");
    // A partial run (--only) keeps the entries of captures it did not redo.
    let (recorded_on, mut entries): (Option<String>, Vec<Capture>) =
        match Manifest::load(&manifest_path) {
            Some(m) => (Some(m.kernel), m.captures),
            None => (None, Vec::new()),
        };
    let mut recorded_now = 0;
    for rec in chosen {
        eprintln!("recording {}", rec.file());
        match record(rec, &cli.out) {
            Ok(capture) => {
                entries.retain(|c| c.file != capture.file);
                entries.push(capture);
                recorded_now += 1;
            }
            Err(e) => {
                eprintln!("FAILED {}: {e:#}", rec.file());
                failed.push(rec.file());
            }
        }
    }
    // Derived captures are remade from the recordings every time (cheap,
    // deterministic), unless --only names recordings alone.
    if cli.only.is_empty() || cli.only.iter().any(|o| o == "derived") {
        eprintln!("deriving {}", hard::derived_files().join(", "));
        let derived = hard::derive_all(&cli.out, &entries)?;
        entries.retain(|c| c.derived_from.is_none());
        entries.extend(derived);
        eprintln!("degrading into {}/", degrade::DIR);
        degrade::degrade_all(&cli.out, &entries)?;
    }
    // Manifest order follows the scenario table; unknown files are dropped.
    let mut order: Vec<String> = all.iter().map(Recording::file).collect();
    order.extend(hard::derived_files());
    entries.retain(|c| order.contains(&c.file));
    entries.sort_by_key(|c| order.iter().position(|f| *f == c.file));
    let this_kernel = fs::read_to_string("/proc/sys/kernel/osrelease")?
        .trim()
        .to_string();
    let kernel = manifest::manifest_kernel(recorded_on, &this_kernel, recorded_now, entries.len());
    Manifest {
        generator: "tcpshut-record".into(),
        kernel,
        captures: entries,
    }
    .save(&manifest_path)?;
    if !failed.is_empty() {
        bail!("failed to record: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed captures still show what the committed manifest says
    /// (runs without root: only reads files).
    #[test]
    fn committed_captures_match_manifest() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        let manifest = Manifest::load(&dir.join("manifest.json")).expect("readable manifest");
        let scenarios = scenarios::all();
        assert_eq!(
            manifest.captures.len(),
            recordings(&scenarios).len() + hard::derived_files().len()
        );
        for cap in &manifest.captures {
            let (packets, conns) = wire::connections(&dir.join(&cap.file)).unwrap();
            assert_eq!(packets, cap.packets, "{}", cap.file);
            assert_eq!(conns.len(), cap.connections.len(), "{}", cap.file);
            for (w, m) in conns.iter().zip(&cap.connections) {
                assert_eq!(w.client.to_string(), m.client_addr, "{}", cap.file);
                assert_eq!(w.server.to_string(), m.server_addr, "{}", cap.file);
                assert_eq!(w.from_client, m.client.segments, "{}", cap.file);
                assert_eq!(w.from_server, m.server.segments, "{}", cap.file);
            }
        }
    }
}
