//! Resets forged on the path: recordings through a router namespace
//! (`tcpshut_lab::router`) whose nftables reset connections in an
//! endpoint's name, and the genuine resets recorded through the same
//! router as controls. Each run is captured at the client, at the server
//! and on the router (`-i any`, where every forwarded packet is seen twice),
//! over IPv4 and, the forged resets and their controls, again over IPv6
//! (hop limit instead of TTL, no IP ID).
//!
//! Which RSTs were forged is found on the wire, independently of tcpshut:
//! an RST is forged when the capture on its claimed sender's own veth never
//! carried it (same ports, sequence, acknowledgment, flags and IP ID).
//! testdata/router/manifest.json records them, in whose name, and the
//! calls each application made.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};

use crate::degrade::Truth;
use crate::derive;
use crate::loss;
use tcpshut_lab::experiment::{join, spawn_sides, Party};
use tcpshut_lab::router::{RoutedLab, CLIENT, SERVER};

use tcpshut_lab::scenarios::{self, ConnExpect};
use tcpshut_lab::script::{self, Board, Call, Step};
use tcpshut_lab::tcpdump::{self, Tcpdump};

const ATTEMPTS: usize = 3;
/// Wait after the lab comes up, before the captures start.
const SETTLE: Duration = Duration::from_millis(2000);
/// Idle time after which the router's conntrack forgets an established
/// connection in `idle-reset` (seconds), and how long the client waits.
const IDLE_TIMEOUT_SECS: u64 = 2;
const IDLE_WAIT_MS: u64 = 3500;

/// A stateful firewall: packets conntrack cannot place (a non-SYN of a
/// connection it does not know, with `nf_conntrack_tcp_loose=0`) are
/// answered with a reset in the destination's name. `family` is nftables'
/// `ip` or `ip6`.
fn firewall(family: &str) -> String {
    format!(
        "add table {family} mb; \
         add chain {family} mb path {{ type filter hook forward priority 0; }}; \
         add rule {family} mb path ct state invalid tcp flags & rst == 0 reject with tcp reset"
    )
}

/// nftables' family for the addresses of a run.
fn family(ipv6: bool) -> &'static str {
    if ipv6 {
        "ip6"
    } else {
        "ip"
    }
}

/// What the router does during a run.
#[derive(Clone, Copy)]
pub enum Middlebox {
    /// The stateful firewall only; it must forge nothing.
    Firewall,
    /// Once the sides mark "got": data (PSH) from the client is rejected
    /// with a reset towards the client, in the server's name.
    ResetClientData,
    /// Once the sides mark "got": data from either side is rejected.
    ResetAllData,
    /// The firewall with a short established timeout: an idle connection
    /// is forgotten and its next packet reset.
    IdleTimeout,
    /// No firewall: the router drops a segment on its way (`loss.rs`).
    Lose(Loss),
}

/// A segment the router drops (a real network loss: the sender's kernel
/// sees it leave, unlike a drop inside its own namespace).
#[derive(Clone, Copy)]
pub struct Loss {
    /// Its kind: FINs, or RSTs.
    pub rst: bool,
    /// Sent by the client (else the server).
    pub from_client: bool,
    /// Only the first one (its retransmission passes); else every one.
    pub once: bool,
}

impl Loss {
    /// The nftables rule that drops it. Once is `limit ... burst 1`: the
    /// first match takes the one token (dropped), later ones are over the
    /// limit for an hour and pass.
    fn rule(self) -> String {
        let from = if self.from_client { CLIENT } else { SERVER };
        let flag = if self.rst { "rst" } else { "fin" };
        let once = if self.once {
            "limit rate 1/hour burst 1 packets "
        } else {
            ""
        };
        format!(
            "add table ip loss; \
             add chain ip loss path {{ type filter hook forward priority 0; }}; \
             add rule ip loss path ip saddr {from} tcp flags & {flag} == {flag} {once}counter drop"
        )
    }
}

pub struct RouterScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub client: Vec<Step>,
    pub server: Vec<Step>,
    pub middlebox: Middlebox,
    /// Forged RSTs expected: (claimed sender, count).
    pub forged: &'static [(&'static str, usize)],
    /// What the applications' calls make of the connection, when the
    /// manifest judges each answer against it (`loss.rs`).
    pub truth: Option<ConnExpect>,
}

fn router_scenarios() -> Vec<RouterScenario> {
    use Step::*;
    let table = scenarios::all();
    let steps = |name: &str| {
        let sc = table
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no scenario {name}"));
        (sc.client.clone(), sc.server.clone())
    };
    let control = |name: &'static str, description: &'static str| {
        let (client, server) = steps(name);
        RouterScenario {
            name,
            description,
            client,
            server,
            middlebox: Middlebox::Firewall,
            forged: &[],
            truth: None,
        }
    };
    vec![
        RouterScenario {
            name: "forged-to-client",
            description: "After 100 bytes from the client, the router rejects the client's next data \
                 with `reject with tcp reset`: an RST to the client in the server's name. The \
                 server, which never reset, sends 200 bytes afterwards; the client's kernel, which \
                 no longer has the connection, answers them with its own RST.",
            client: vec![Connect, Send(100), Wait("got"), Wait("armed"), Send(10), Sleep(300), Mark("forged"), Close],
            server: vec![Listen, Accept, Recv(100), Mark("got"), Wait("forged"), Send(200), Sleep(200), Close],
            middlebox: Middlebox::ResetClientData,
            forged: &[("server", 1)],
            truth: None,
        },
        RouterScenario {
            name: "forged-both",
            description: "After 100 bytes from the client, the router rejects data in both \
                 directions: the client's 10 bytes get an RST in the server's name, then the \
                 server's 10 bytes an RST in the client's name. Neither application reset.",
            client: vec![Connect, Send(100), Wait("got"), Wait("armed"), Send(10), Sleep(200), Mark("client-reset"), Close],
            server: vec![Listen, Accept, Recv(100), Mark("got"), Wait("client-reset"), Send(10), Sleep(200), Close],
            middlebox: Middlebox::ResetAllData,
            forged: &[("server", 1), ("client", 1)],
            truth: None,
        },
        RouterScenario {
            name: "idle-reset",
            description: "The router's conntrack forgets established connections after 2 s idle \
                 (nf_conntrack_tcp_timeout_established=2, tcp_loose=0) and resets what it cannot \
                 place. The client sends 10 bytes after 3.5 s of silence: an RST in the server's \
                 name. The server's close() then sends a FIN: an RST in the client's name.",
            client: vec![Connect, Send(100), Recv(100), Sleep(IDLE_WAIT_MS), Send(10), Sleep(300), Mark("reset"), Close],
            server: vec![Listen, Accept, Recv(100), Send(100), Wait("reset"), Close],
            middlebox: Middlebox::IdleTimeout,
            forged: &[("server", 1), ("client", 1)],
            truth: None,
        },
        control("close-unread", "Control: the server closes with 100 bytes unread (a genuine RST+ACK), through the stateful firewall."),
        control("linger0-after-data", "Control: the client closes with SO_LINGER 0 (a genuine RST+ACK), through the stateful firewall."),
        control("refused", "Control: the client connects to a closed port; the server's kernel answers with RST+ACK, through the stateful firewall."),
    ]
    .into_iter()
    .chain(loss::scenarios())
    .collect()
}

/// The capture points, as file suffixes.
const POINTS: [&str; 3] = ["client", "server", "router"];

#[derive(Serialize, Deserialize)]
pub struct RouterManifest {
    pub generator: String,
    pub kernel: String,
    pub captures: Vec<RouterCapture>,
}

#[derive(Serialize, Deserialize)]
pub struct RouterCapture {
    pub file: String,
    pub scenario: String,
    pub description: String,
    /// Where it was captured: client, server or router (`-i any`).
    pub point: String,
    /// IP version: 4, or 6 (hop limit instead of TTL, no IP ID).
    #[serde(default = "ipv4")]
    pub ip: u8,
    pub packets: usize,
    pub client: String,
    pub server: String,
    pub client_calls: Vec<Call>,
    pub server_calls: Vec<Call>,
    /// RSTs the router forged, by frame, and in whose name.
    pub forged: Vec<ForgedRst>,
    /// Every other RST frame: sent by the endpoint it names.
    pub genuine_rsts: Vec<u64>,
    /// For idle-reset: how long the connection was idle before the reset
    /// (at least), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<f64>,
    /// For a loss: the frames of this capture that never reached the
    /// other end (what the router dropped; none where the capture point
    /// is past the drop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<Vec<u64>>,
    /// For a loss: the truth, and what this capture point's wire cannot
    /// prove (`degrade::Truth`, checked like `testdata/degraded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Truth>,
}

fn ipv4() -> u8 {
    4
}

#[derive(Serialize, Deserialize, Clone)]
pub struct ForgedRst {
    pub frame: u64,
    /// `client` or `server`: the endpoint whose address it carries.
    pub claimed: String,
}

/// One TCP packet of a capture, as far as forging goes.
#[derive(Clone, Copy)]
struct Pkt {
    frame: u64,
    ts: f64,
    from_client: bool,
    key: RstKey,
    rst: bool,
    /// Its TCP facts, for judging a loss (`loss::judge`; IPv4 only).
    tcp: Option<derive::Tcp>,
}

/// What identifies one packet on every hop (TTL and link headers change).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RstKey {
    src: (IpAddr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    ip_id: u16,
}

/// The TCP packets of a little-endian pcap (Ethernet or SLL2), IPv4 or
/// IPv6; `client` is the client's address.
fn packets(path: &Path, client: IpAddr) -> Result<Vec<Pkt>> {
    let bytes = fs::read(path).with_context(|| path.display().to_string())?;
    ensure!(
        bytes.len() >= 24 && bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1],
        "{}: not a little-endian pcap",
        path.display()
    );
    let link_len = match u32::from_le_bytes(bytes[20..24].try_into()?) {
        1 => 14,
        276 => 20,
        other => bail!("{}: link type {other}", path.display()),
    };
    let mut out = Vec::new();
    let (mut at, mut frame) = (24, 0u64);
    while at + 16 <= bytes.len() {
        let secs = u32::from_le_bytes(bytes[at..at + 4].try_into()?);
        let micros = u32::from_le_bytes(bytes[at + 4..at + 8].try_into()?);
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into()?) as usize;
        let data = bytes
            .get(at + 16..at + 16 + caplen)
            .context("record truncated")?;
        at += 16 + caplen;
        frame += 1;
        let Some(ip) = data.get(link_len..) else {
            continue;
        };
        let Ok(sliced) = SlicedPacket::from_ip(ip) else {
            continue;
        };
        let Some(TransportSlice::Tcp(t)) = &sliced.transport else {
            continue;
        };
        let (src, ip_id): (IpAddr, u16) = match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().identification(),
            ),
            Some(NetSlice::Ipv6(ip)) => (ip.header().source_addr().into(), 0),
            _ => continue,
        };
        out.push(Pkt {
            frame,
            ts: f64::from(secs) + f64::from(micros) * 1e-6,
            from_client: src == client,
            key: RstKey {
                src: (src, t.source_port()),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: t.header_slice()[13],
                ip_id,
            },
            rst: t.rst(),
            tcp: derive::tcp_of_ip(ip),
        });
    }
    Ok(out)
}

fn router_thread(lab: &RoutedLab, board: &Board, middlebox: Middlebox, ipv6: bool) -> Result<()> {
    let (f, (client, _)) = (family(ipv6), RoutedLab::addrs(ipv6));
    let rule = match middlebox {
        Middlebox::Firewall | Middlebox::IdleTimeout | Middlebox::Lose(_) => return Ok(()),
        Middlebox::ResetClientData => format!(
            "add rule {f} mb path {f} saddr {client} tcp flags & (rst|psh) == psh reject with tcp reset"
        ),
        Middlebox::ResetAllData => {
            format!("add rule {f} mb path tcp flags & (rst|psh) == psh reject with tcp reset")
        }
    };
    board.wait_named("got")?;
    lab.nft(&rule)?;
    board.mark_named("armed");
    Ok(())
}

/// A scenario's name in file names and the manifest: `-ipv6` for IPv6.
fn run_name(sc: &RouterScenario, ipv6: bool) -> String {
    if ipv6 {
        format!("{}-ipv6", sc.name)
    } else {
        sc.name.to_string()
    }
}

fn record_once(sc: &RouterScenario, ipv6: bool, out: &Path) -> Result<Vec<RouterCapture>> {
    let name = run_name(sc, ipv6);
    let lab = RoutedLab::new()?;
    // Interfaces just up send IPv6 router solicitations and MLD reports
    // for a second or so; a capture socket opened meanwhile counts what
    // reached it before its filter as dropped. Let them pass first.
    std::thread::sleep(SETTLE);
    match sc.middlebox {
        Middlebox::Lose(loss) => lab.nft(&loss.rule())?,
        _ => lab.nft(&firewall(family(ipv6)))?,
    }
    if let Middlebox::IdleTimeout = sc.middlebox {
        lab.sysctl("net.netfilter.nf_conntrack_tcp_loose", "0")?;
        lab.sysctl(
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            &IDLE_TIMEOUT_SECS.to_string(),
        )?;
    }
    let file = |point: &str| format!("{name}-at-{point}.pcap");
    let opts = tcpdump::Options::default();
    let any = tcpdump::Options {
        any_sll2: true,
        ..opts
    };
    // At the router a dropped packet is seen once, on its way in, like a
    // forged one on its way out.
    let points = POINTS;
    let dumps = points
        .iter()
        .map(|&point| match point {
            "client" => Tcpdump::start(
                &lab.client,
                tcpshut_lab::netns::IFACE,
                &out.join(file(point)),
                opts,
            ),
            "server" => Tcpdump::start(
                &lab.server,
                tcpshut_lab::netns::IFACE,
                &out.join(file(point)),
                opts,
            ),
            _ => Tcpdump::start(&lab.router, "any", &out.join(file(point)), any),
        })
        .collect::<Result<Vec<_>>>()?;
    let (client_ip, server_ip) = RoutedLab::addrs(ipv6);
    let board = Board::default();
    let parties = [
        Party {
            ns: &lab.client,
            local: client_ip,
            steps: &sc.client,
        },
        Party {
            ns: &lab.server,
            local: server_ip,
            steps: &sc.server,
        },
    ];
    let (c, s, r) = std::thread::scope(|scope| {
        let [c, s] = spawn_sides(scope, parties, &board, server_ip, false);
        let r = scope.spawn(|| router_thread(&lab, &board, sc.middlebox, ipv6));
        (
            join(c),
            join(s),
            r.join().map_err(|_| anyhow!("router thread panicked")),
        )
    });
    let (client, server) = (c.context("client")?, s.context("server")?);
    r??;
    // A segment lost for good is retransmitted (200 ms, 400 ms, 800 ms
    // after): long enough to see a few of them go unanswered.
    let settle = match sc.middlebox {
        Middlebox::Lose(Loss { once: false, .. }) => Duration::from_millis(1500),
        _ => Duration::from_millis(200),
    };
    std::thread::sleep(tcpshut_lab::experiment::GRACE + settle);
    // A capture that lost packets is never kept: the run is tried again.
    for (td, point) in dumps.into_iter().zip(points) {
        td.stop()
            .with_context(|| format!("the capture at the {point}"))?;
    }
    drop(lab);

    let at: Vec<Vec<Pkt>> = points
        .iter()
        .map(|p| packets(&out.join(file(p)), client_ip))
        .collect::<Result<_>>()?;
    // Forged: an RST one endpoint received that the other's veth never carried.
    let sent_by = |pkts: &[Pkt], client: bool| -> BTreeSet<RstKey> {
        pkts.iter()
            .filter(|p| p.from_client == client)
            .map(|p| p.key)
            .collect()
    };
    let sent_at_client = sent_by(&at[0], true);
    let sent_at_server = sent_by(&at[1], false);
    let forged: BTreeSet<RstKey> = at[0]
        .iter()
        .filter(|p| p.rst && !p.from_client && !sent_at_server.contains(&p.key))
        .chain(
            at[1]
                .iter()
                .filter(|p| p.rst && p.from_client && !sent_at_client.contains(&p.key)),
        )
        .map(|p| p.key)
        .collect();
    for (claimed, count) in [("server", false), ("client", true)].map(|(n, c)| {
        (
            n,
            forged
                .iter()
                .filter(|k| (k.src.0 == client_ip) == c)
                .count(),
        )
    }) {
        let want = sc
            .forged
            .iter()
            .find(|(n, _)| *n == claimed)
            .map_or(0, |(_, k)| *k);
        ensure!(
            count == want,
            "{name}: {count} RSTs forged in the {claimed}'s name, expected {want}"
        );
    }
    // The idle time: from the last packet before the first forged RST's
    // trigger to that trigger (at the client, where the trigger leaves).
    let idle_secs = match sc.middlebox {
        Middlebox::IdleTimeout => {
            let first = at[0]
                .iter()
                .position(|p| forged.contains(&p.key))
                .context("no forged RST at the client")?;
            let trigger = first.checked_sub(1).context("RST first")?;
            let before = trigger.checked_sub(1).context("trigger first")?;
            let idle = at[0][trigger].ts - at[0][before].ts;
            ensure!(
                idle >= IDLE_TIMEOUT_SECS as f64,
                "{name}: idle only {idle:.3} s before the reset"
            );
            Some((idle * 1000.0).round() / 1000.0)
        }
        _ => None,
    };
    // Lost: a packet one end sent that the other end's veth never carried.
    let received_by = |pkts: &[Pkt], client: bool| -> BTreeSet<RstKey> {
        pkts.iter()
            .filter(|p| p.from_client != client)
            .map(|p| p.key)
            .collect()
    };
    let received = [received_by(&at[0], true), received_by(&at[1], false)];
    let lost = |pkts: &[Pkt]| -> Vec<u64> {
        pkts.iter()
            .filter(|p| !received[usize::from(p.from_client)].contains(&p.key))
            .map(|p| p.frame)
            .collect()
    };
    if let Middlebox::Lose(loss) = sc.middlebox {
        let sender = &at[usize::from(!loss.from_client)];
        let n = lost(sender).len();
        ensure!(
            if loss.once { n == 1 } else { n >= 1 },
            "{name}: {n} segments lost on the way"
        );
    }
    let calls = |log: &script::SideLog| log.calls.first().cloned().unwrap_or_default();
    points
        .iter()
        .zip(&at)
        .map(|(point, pkts)| {
            let connections = match &sc.truth {
                Some(truth) => {
                    let kept: Vec<derive::Tcp> = pkts.iter().filter_map(|p| p.tcp).collect();
                    vec![loss::judge(truth, point, &kept)?]
                }
                None => Vec::new(),
            };
            Ok(RouterCapture {
                file: file(point),
                scenario: name.clone(),
                description: sc.description.into(),
                point: (*point).into(),
                ip: if ipv6 { 6 } else { 4 },
                packets: pkts.len(),
                client: SocketAddr::new(client_ip, script::CLIENT_PORT).to_string(),
                server: SocketAddr::new(server_ip, script::SERVER_PORT).to_string(),
                client_calls: calls(&client),
                server_calls: calls(&server),
                forged: pkts
                    .iter()
                    .filter(|p| p.rst && forged.contains(&p.key))
                    .map(|p| ForgedRst {
                        frame: p.frame,
                        claimed: if p.from_client { "client" } else { "server" }.into(),
                    })
                    .collect(),
                genuine_rsts: pkts
                    .iter()
                    .filter(|p| p.rst && !forged.contains(&p.key))
                    .map(|p| p.frame)
                    .collect(),
                idle_secs,
                lost: match sc.middlebox {
                    Middlebox::Lose(_) => Some(lost(pkts)),
                    _ => None,
                },
                connections,
            })
        })
        .collect()
}

/// Which router recordings a run makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    /// The losses alone (IPv4).
    Loss,
    /// The IPv6 runs alone.
    Ipv6,
}

/// The runs: every scenario over IPv4, and the forged resets and their
/// controls again over IPv6 (the losses need no second IP version).
fn runs(which: Which) -> Vec<(RouterScenario, bool)> {
    let is_loss = |sc: &RouterScenario| matches!(sc.middlebox, Middlebox::Lose(_));
    let v4 = router_scenarios().into_iter().map(|sc| (sc, false));
    let v6 = router_scenarios()
        .into_iter()
        .filter(|sc| !is_loss(sc))
        .map(|sc| (sc, true));
    v4.chain(v6)
        .filter(|(sc, ipv6)| match which {
            Which::All => true,
            Which::Loss => is_loss(sc),
            Which::Ipv6 => *ipv6,
        })
        .collect()
}

/// The recordings' names (for `--list`).
pub fn list() -> Vec<(String, &'static str)> {
    runs(Which::All)
        .iter()
        .flat_map(|(sc, ipv6)| {
            let name = run_name(sc, *ipv6);
            POINTS
                .iter()
                .map(move |p| (format!("router/{name}-at-{p}.pcap"), sc.description))
        })
        .collect()
}

/// Records the router scenarios into `out/router`, with its manifest: all
/// of them, or some (`which`), keeping the other entries.
pub fn record_all(out: &Path, which: Which) -> Result<()> {
    let dir = out.join("router");
    fs::create_dir_all(&dir)?;
    let runs = runs(which);
    let names: Vec<String> = runs.iter().map(|(sc, v6)| run_name(sc, *v6)).collect();
    let (recorded_on, mut captures): (Option<String>, Vec<RouterCapture>) = if which == Which::All {
        (None, Vec::new())
    } else {
        let path = dir.join("manifest.json");
        let kept: RouterManifest =
            serde_json::from_str(&fs::read_to_string(&path).context("router/manifest.json")?)?;
        let captures = kept
            .captures
            .into_iter()
            .filter(|c| !names.contains(&c.scenario))
            .collect();
        (Some(kept.kernel), captures)
    };
    let kept_before = captures.len();
    let mut failed = Vec::new();
    for ((sc, ipv6), name) in runs.iter().zip(names) {
        eprintln!("recording router/{name}");
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            match record_once(sc, *ipv6, &dir) {
                Ok(c) => {
                    captures.extend(c);
                    last = None;
                    break;
                }
                Err(e) => {
                    // A capture that lost packets, or a run the load
                    // stretched: never kept; tried again after a pause
                    // that lets the machine catch up.
                    eprintln!("  attempt {attempt} of router/{name}: {e:#}");
                    last = Some(e);
                    std::thread::sleep(Duration::from_secs(attempt as u64));
                }
            }
        }
        if let Some(e) = last {
            eprintln!("FAILED router/{name}: {e:#}");
            failed.push(name);
        }
    }
    let this_kernel = fs::read_to_string("/proc/sys/kernel/osrelease")?
        .trim()
        .to_string();
    let kernel = crate::manifest::manifest_kernel(
        recorded_on,
        &this_kernel,
        captures.len() - kept_before,
        captures.len(),
    );
    let manifest = RouterManifest {
        generator: "tcpshut-record".into(),
        kernel,
        captures,
    };
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    ensure!(failed.is_empty(), "failed to record: {}", failed.join(", "));
    Ok(())
}
