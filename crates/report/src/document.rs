//! The report as one document: what `--format json` prints (schema
//! `tcpshut-report/1`, documented in docs/report.md) and what the terminal
//! and HTML renderers show. Every list has a fixed order (largest first,
//! ties by key), so the same captures give the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;
use tcpshut_engine::{Closer, Outcome};

use crate::aggregate::{
    Aggregate, IdleResets, Outcomes, SideKey, Tally, CLOSE_WAIT_LEAK_SECS, RST_SERIES,
};
use crate::findings::{findings, Finding, TIME_WAIT_MIN_PEAK};
use crate::histogram::Buckets;
use crate::timewait::{port_pressure, EPHEMERAL_PORTS, TIME_WAIT_SECS};

/// The schema's name and version; a change that removes or renames a
/// field bumps the version, new fields do not.
pub const SCHEMA: &str = "tcpshut-report/1";

#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub schema: &'static str,
    pub assumptions: Assumptions,
    pub inputs: Inputs,
    pub outcomes: Outcomes,
    pub findings: Vec<Finding>,
    pub services: Vec<ServiceRow>,
    pub ports: Vec<PortRow>,
    pub clients: Vec<ClientRow>,
    pub causes: Vec<CauseRow>,
    pub time_wait: Vec<TimeWaitRow>,
    pub close_wait: Vec<CloseWaitRow>,
    pub refused: Vec<RefusedRow>,
    pub idle_resets: Vec<IdleResetRow>,
    pub teardown_timeline: Timeline,
    pub rst_timeline: Timeline,
    /// RSTs (segments) over time, in the buckets of `rst_timeline`.
    pub rst_count_timeline: Timeline,
}

/// What the report assumes where the wire is silent.
#[derive(Clone, Debug, Serialize)]
pub struct Assumptions {
    /// Linux's TIME-WAIT length, seconds.
    pub time_wait_secs: i64,
    /// Local ports a Linux client picks from (32768-60999).
    pub ephemeral_ports: u64,
    /// CLOSE-WAIT older than this at the end counts as old.
    pub close_wait_old_secs: f64,
    /// Smallest TIME-WAIT peak reported as a finding.
    pub time_wait_min_peak: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Inputs {
    pub captures: u64,
    /// Inputs that could not be read at all.
    pub failed: u64,
    /// Captures read only up to a damaged record.
    pub incomplete: u64,
    pub frames: u64,
    pub connections: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceRow {
    pub service: String,
    #[serde(flatten)]
    pub tally: Tally,
    /// Inferred call classes, with connection counts.
    pub client_calls: BTreeMap<String, u64>,
    pub server_calls: BTreeMap<String, u64>,
    /// Abortive closes by the server after receiving data, without, and
    /// the same for clients.
    pub server_aborts_after_data: u64,
    pub server_aborts_without_data: u64,
    pub client_aborts_after_data: u64,
    pub client_aborts_without_data: u64,
    pub resets_after_close: u64,
    pub forged_resets: u64,
    pub half_close: u64,
    pub fin_retransmit_connections: u64,
    pub fin_retransmits: u64,
    pub client_hosts: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PortRow {
    pub port: u16,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClientRow {
    pub host: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Clone, Debug, Serialize)]
pub struct CauseRow {
    pub outcome: &'static str,
    pub cause: String,
    pub connections: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimeWaitRow {
    pub holder: String,
    pub side: SideKey,
    pub service: String,
    /// Most sockets in TIME-WAIT within one window of `time_wait_secs`.
    pub peak: u64,
    /// Start of that window, epoch seconds.
    pub peak_at: f64,
    /// False when entry times were counted in wider buckets than 0.1 s
    /// (very many of them): the peak is then a lower bound.
    pub peak_exact: bool,
    /// Connections that left the holder in TIME-WAIT.
    pub connections: u64,
    /// For a client: the peak as a share of its ephemeral ports, percent.
    pub port_pressure_pct: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CloseWaitRow {
    pub service: String,
    pub side: SideKey,
    pub connections: u64,
    pub oldest_secs: f64,
    pub older_than_limit: u64,
    /// Of these, connections not seen opening (less certain).
    pub partial: u64,
}

/// Idle resets on one path.
#[derive(Clone, Debug, Serialize)]
pub struct IdleResetRow {
    pub client: String,
    pub service: String,
    #[serde(flatten)]
    pub idle: IdleResets,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefusedRow {
    pub service: String,
    pub attempts: u64,
    pub client_hosts: u64,
}

/// Counts over time in buckets; `series` names each count.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    pub series: Vec<&'static str>,
    #[serde(flatten)]
    pub buckets: Buckets,
}

/// Column names of a [`Tally`]'s cells ([`tally_cells`]), after the key.
pub fn tally_columns() -> Vec<String> {
    let mut columns = vec!["conns".to_string()];
    columns.extend(Outcome::ALL.iter().map(|o| o.name().to_string()));
    columns.extend(Closer::ALL.iter().map(|c| match c {
        Closer::Client | Closer::Server => format!("{c} first"),
        _ => format!("closer {c}"),
    }));
    columns
}

/// A [`Tally`] as table cells: connections, by outcome, by who closed first.
pub fn tally_cells(t: &Tally) -> Vec<String> {
    let mut cells = vec![t.connections.to_string()];
    cells.extend(t.outcomes.0.iter().map(u64::to_string));
    cells.extend(t.closer.0.iter().map(u64::to_string));
    cells
}

/// Sorts largest first, ties by key (stably). Each row's key is made
/// once: it parses addresses from text, and made at every comparison it
/// cost a fifth of the document's time on the bench capture (thousands of
/// clients), all of it after the capture is read.
fn ranked<T, K: Ord>(mut rows: Vec<T>, key: impl Fn(&T) -> (std::cmp::Reverse<u64>, K)) -> Vec<T> {
    rows.sort_by_cached_key(|r| key(r));
    rows
}

impl Document {
    /// The document of `agg`; `failed` inputs could not be read.
    pub fn new(agg: &Aggregate, failed: u64) -> Document {
        use std::cmp::Reverse;
        let services = agg
            .services
            .iter()
            .map(|(addr, s)| ServiceRow {
                service: addr.to_string(),
                tally: s.tally,
                client_calls: s.calls[0].clone(),
                server_calls: s.calls[1].clone(),
                server_aborts_after_data: s.aborts[1][0],
                server_aborts_without_data: s.aborts[1][1],
                client_aborts_after_data: s.aborts[0][0],
                client_aborts_without_data: s.aborts[0][1],
                resets_after_close: s.resets_after_close,
                forged_resets: s.forged_resets,
                half_close: s.half_close,
                fin_retransmit_connections: s.fin_retransmit_connections,
                fin_retransmits: s.fin_retransmits,
                client_hosts: s.clients.len() as u64,
            })
            .collect();
        let services = ranked(services, |r: &ServiceRow| {
            (Reverse(r.tally.connections), addr_key(&r.service))
        });
        let ports = agg
            .ports
            .iter()
            .map(|(&port, &tally)| PortRow { port, tally })
            .collect();
        let ports = ranked(ports, |r: &PortRow| (Reverse(r.tally.connections), r.port));
        let clients = agg
            .clients
            .iter()
            .map(|(host, &tally)| ClientRow {
                host: host.to_string(),
                tally,
            })
            .collect();
        let clients = ranked(clients, |r: &ClientRow| {
            (Reverse(r.tally.connections), addr_key(&r.host))
        });
        let causes = agg
            .causes
            .iter()
            .map(|((outcome, cause), &n)| CauseRow {
                outcome,
                cause: cause.clone(),
                connections: n,
            })
            .collect();
        let causes = ranked(causes, |r: &CauseRow| {
            (
                Reverse(r.connections),
                (outcome_order(r.outcome), r.cause.clone()),
            )
        });
        let time_wait = agg
            .time_wait
            .iter()
            .map(|(key, tw)| {
                let (peak, at, exact) = tw.peak();
                TimeWaitRow {
                    peak_exact: exact,
                    holder: key.holder.to_string(),
                    side: key.side,
                    service: key.peer.to_string(),
                    peak,
                    peak_at: at as f64 / 1000.0,
                    connections: tw.total,
                    port_pressure_pct: (key.side == SideKey::Client)
                        .then(|| (port_pressure(peak) * 100.0).round() / 100.0),
                }
            })
            .collect();
        let time_wait = ranked(time_wait, |r: &TimeWaitRow| {
            (
                Reverse(r.peak),
                (addr_key(&r.holder), r.side, addr_key(&r.service)),
            )
        });
        let close_wait = agg
            .close_wait
            .iter()
            .map(|((service, side), cw)| CloseWaitRow {
                service: service.to_string(),
                side: *side,
                connections: cw.connections,
                oldest_secs: (cw.oldest_secs * 1000.0).round() / 1000.0,
                older_than_limit: cw.older_than_limit,
                partial: cw.partial,
            })
            .collect();
        let close_wait = ranked(close_wait, |r: &CloseWaitRow| {
            (Reverse(r.connections), (addr_key(&r.service), r.side))
        });
        let refused = agg
            .services
            .iter()
            .filter(|(_, s)| s.tally.outcomes.get(Outcome::Refused) > 0)
            .map(|(addr, s)| RefusedRow {
                service: addr.to_string(),
                attempts: s.tally.outcomes.get(Outcome::Refused),
                client_hosts: s.clients.len() as u64,
            })
            .collect();
        let refused = ranked(refused, |r: &RefusedRow| {
            (Reverse(r.attempts), addr_key(&r.service))
        });
        let idle_resets = agg
            .idle
            .iter()
            .map(|((client, service), idle)| IdleResetRow {
                client: client.to_string(),
                service: service.to_string(),
                idle: *idle,
            })
            .collect();
        let idle_resets = ranked(idle_resets, |r: &IdleResetRow| {
            (
                Reverse(r.idle.connections),
                (addr_key(&r.client), addr_key(&r.service)),
            )
        });
        Document {
            schema: SCHEMA,
            assumptions: Assumptions {
                time_wait_secs: TIME_WAIT_SECS,
                ephemeral_ports: EPHEMERAL_PORTS,
                close_wait_old_secs: CLOSE_WAIT_LEAK_SECS,
                time_wait_min_peak: TIME_WAIT_MIN_PEAK,
            },
            inputs: Inputs {
                captures: agg.captures,
                failed,
                incomplete: agg.incomplete,
                frames: agg.frames,
                connections: agg.tally.connections,
            },
            outcomes: agg.tally.outcomes,
            findings: findings(agg),
            services,
            ports,
            clients,
            causes,
            time_wait,
            close_wait,
            refused,
            idle_resets,
            teardown_timeline: Timeline {
                series: Outcome::ALL.iter().map(|o| o.name()).collect(),
                buckets: agg.teardowns.to_buckets(),
            },
            rst_timeline: Timeline {
                series: RST_SERIES.to_vec(),
                buckets: agg.rsts.to_buckets(),
            },
            rst_count_timeline: Timeline {
                series: vec!["rsts"],
                buckets: agg.rst_segments.to_buckets(),
            },
        }
    }
}

/// Orders addresses as addresses (10.0.0.9 before 10.0.0.10).
fn addr_key(
    text: &str,
) -> (
    Option<std::net::SocketAddr>,
    Option<std::net::IpAddr>,
    String,
) {
    (text.parse().ok(), text.parse().ok(), text.to_string())
}

fn outcome_order(name: &str) -> usize {
    Outcome::ALL
        .iter()
        .position(|o| o.name() == name)
        .unwrap_or(usize::MAX)
}
